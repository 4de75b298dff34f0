//! A broadcast's fan-out on one node, and across three nodes through Redis:
//! the same clients, the same emits, side by side in one run.
//!
//! ```text
//! cargo run --release -p socketio-redis --example fanout -- [--clients N] [--emits M] [--rate R]
//! ```
//!
//! Starts its own `redis-server` on a free port (it must be installed).
//! Clients are raw WebSockets speaking the protocol themselves (answering
//! pings); node 0 emits `tick` with the intended send time, R times a second,
//! M times, to every client: with one node, all clients are on it; with three,
//! a third on each (two thirds of the deliveries cross Redis). Prints, per
//! setup, the per-recipient latency (p50, p99, max) measured from the
//! intended send time, the time to the last recipient (p50, p99), and the
//! ratio of three nodes to one. A benchmark, not a test: no figure is
//! asserted.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use socketio_redis::RedisAdapter;
use socketio_tokio::SocketIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

struct Args {
    clients: usize,
    emits: usize,
    rate: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        clients: 600,
        emits: 200,
        rate: 50,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: `{value}` is not a number"))?;
        match flag.as_str() {
            "--clients" => args.clients = n.max(3) as usize,
            "--emits" => args.emits = n.max(1) as usize,
            "--rate" => args.rate = n.max(1),
            _ => return Err(format!("unknown argument `{flag}`")),
        }
    }
    Ok(args)
}

/// Every recipient's latency (µs), per emit.
type Latencies = Arc<Mutex<Vec<Vec<u64>>>>;

async fn node(redis: Option<&str>) -> Result<(SocketIo, SocketAddr), Box<dyn std::error::Error>> {
    let io = SocketIo::new()?;
    io.ns("/", |_socket: socketio_tokio::Socket| async move {});
    if let Some(url) = redis {
        // The adapter runs for as long as the process.
        std::mem::forget(RedisAdapter::builder(url).attach(&io).await?);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let served = io.clone();
    tokio::spawn(async move { served.serve(listener).await });
    Ok((io, addr))
}

/// One client: connects, joins `/`, then records the latency of each tick.
async fn client(
    addr: SocketAddr,
    epoch: Instant,
    latencies: Latencies,
    ready: tokio::sync::mpsc::Sender<()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    ws.send(Message::text("40")).await?;
    while let Some(msg) = ws.next().await {
        let Message::Text(text) = msg? else { continue };
        let text = text.as_str();
        if text == "2" {
            ws.send(Message::text("3")).await?;
        } else if text.starts_with("40") {
            let _ = ready.send(()).await;
        } else if let Some(json) = text.strip_prefix("42") {
            let (_, index, sent): (String, usize, u64) = serde_json::from_str(json)?;
            let now = epoch.elapsed().as_micros() as u64;
            let mut l = latencies.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = l.get_mut(index) {
                slot.push(now.saturating_sub(sent));
            }
        }
    }
    Ok(())
}

struct Report {
    p50: u64,
    p99: u64,
    max: u64,
    last_p50: u64,
    last_p99: u64,
    delivered: usize,
    /// Deliveries per second, from the first intended send to the last delivery.
    per_second: f64,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(nodes: &[(SocketIo, SocketAddr)], args: &Args) -> Report {
    let epoch = Instant::now();
    let latencies: Latencies = Arc::new(Mutex::new(vec![Vec::new(); args.emits]));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(args.clients);
    let mut tasks = Vec::new();
    for i in 0..args.clients {
        let addr = nodes[i % nodes.len()].1;
        tasks.push(tokio::spawn(client(
            addr,
            epoch,
            latencies.clone(),
            ready_tx.clone(),
        )));
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for _ in 0..args.clients {
        let _ = ready_rx.recv().await;
    }
    // Let every node's subscriptions settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let period = Duration::from_micros(1_000_000 / args.rate);
    let start = Instant::now();
    for index in 0..args.emits {
        let intended = start + period * index as u32;
        tokio::time::sleep_until(intended.into()).await;
        let sent = intended.duration_since(epoch).as_micros() as u64;
        let _ = nodes[0].0.emit("tick", &(index, sent));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for t in tasks {
        t.abort();
    }
    let per_emit = latencies.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut all: Vec<u64> = per_emit.iter().flatten().copied().collect();
    all.sort_unstable();
    let mut last: Vec<u64> = per_emit
        .iter()
        .map(|l| l.iter().copied().max().unwrap_or(0))
        .collect();
    last.sort_unstable();
    let period_us = 1_000_000 / args.rate;
    let span_us = per_emit
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.iter().max().map(|m| i as u64 * period_us + m))
        .max()
        .unwrap_or(0);
    Report {
        per_second: all.len() as f64 * 1e6 / span_us.max(1) as f64,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        max: all.last().copied().unwrap_or(0),
        last_p50: percentile(&last, 0.5),
        last_p99: percentile(&last, 0.99),
        delivered: all.len(),
    }
}

fn print(name: &str, r: &Report, expected: usize) {
    println!(
        "{name:<28} p50 {:>6} µs  p99 {:>6} µs  max {:>6} µs  last p50 {:>6} µs  last p99 {:>6} µs  delivered {}/{}  {:.0} deliveries/s",
        r.p50, r.p99, r.max, r.last_p50, r.last_p99, r.delivered, expected, r.per_second
    );
}

struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let _redis = RedisServer(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()?,
    );
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let url = format!("redis://127.0.0.1:{port}");
    let expected = args.clients * args.emits;
    println!(
        "{} clients, {} emits at {}/s, one emitting node",
        args.clients, args.emits, args.rate
    );

    let single = vec![node(None).await?];
    let one = run(&single, &args).await;
    print("1 node", &one, expected);

    let mut cluster = Vec::new();
    for _ in 0..3 {
        cluster.push(node(Some(&url)).await?);
    }
    let three = run(&cluster, &args).await;
    print("3 nodes through Redis", &three, expected);

    let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    println!(
        "3 nodes / 1 node: deliveries/s {:.2}x, p50 {:.2}x, p99 {:.2}x, last p50 {:.2}x",
        three.per_second / one.per_second.max(1.0),
        ratio(three.p50, one.p50),
        ratio(three.p99, one.p99),
        ratio(three.last_p50, one.last_p50)
    );
    Ok(())
}
