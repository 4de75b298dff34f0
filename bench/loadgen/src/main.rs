//! The load generator of the server benchmarks.
//!
//! It speaks Engine.IO v4 and Socket.IO v5 itself (through `engineio-packet`
//! and `socketio-packet`): a WebSocket straight away
//! (`/socket.io/?EIO=4&transport=websocket`), a CONNECT to `/`, a pong for
//! every ping. Sends are scheduled at fixed times (open loop) and latency is
//! measured from the intended send time, so a slow server is not hidden by a
//! generator that waits for it. Figures go into HDR histograms.
//!
//! ```text
//! loadgen --addr 127.0.0.1:3000 --scenario echo --clients 1000 --rate 10000
//!         [--warmup 1] [--duration 3] [--raw] [--sources 4] [--source-base 2]
//!         [--concurrency 256] [--room bench]
//! ```
//!
//! Scenarios:
//! - `echo`: each client emits `echo` with `[intended µs, sent µs]` and reads it back;
//! - `echo_ack`: the same with an ack id, answered by an ACK;
//! - `burst`: each client emits `burst` with `[intended µs, sent µs, 4]` and
//!   reads back four `echo`s, emitted by one handler in one go (the server
//!   registers that handler when started with `--burst`);
//! - `broadcast`: every client joins the room, one more client emits `broadcast`
//!   at the rate, each delivery of `bcast` is timed;
//! - `idle`: the clients connect, answer pings, and hold until standard input closes;
//! - `poll`: long-polling only, each client posts an `echo` and polls until it is back;
//! - `connect`: the clients connect (WebSocket, Engine.IO open, Socket.IO CONNECT) and
//!   the generator exits at once, closing them: what one handshake costs;
//! - `connect_poll`: the same over long-polling (the open packet's GET, the CONNECT's
//!   POST, the GET that brings its answer).
//!
//! `--raw` skips the Engine.IO and Socket.IO handshakes (for the raw WebSocket
//! echo server, the ceiling): the frames are the same.
//!
//! Clients bind to `127.0.0.<source-base + i % sources>` and at most
//! `--concurrency` handshakes are in flight at once (the listen backlog is bounded).
//! Phases are printed as lines on standard output (see the crate's library).

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bench_loadgen::{Report, TICKS_PER_SEC, cpu_ticks, encode, histogram};
use bytes::Bytes;
use engineio_packet::{self as eio, ProtocolVersion as EioVersion};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use socketio_packet::{self as sio, PacketType, ProtocolVersion as SioVersion, Str};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::sleep_until;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

type Ws = WebSocketStream<TcpStream>;
type BoxError = Box<dyn std::error::Error>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Echo,
    EchoAck,
    Burst,
    Broadcast,
    BroadcastBurst,
    Idle,
    Poll,
    Connect,
    ConnectPoll,
}

#[derive(Debug, Clone)]
struct Config {
    addr: SocketAddr,
    scenario: Scenario,
    clients: usize,
    rate: f64,
    warmup: Duration,
    duration: Duration,
    drain: Duration,
    raw: bool,
    sources: usize,
    source_base: usize,
    concurrency: usize,
    room: String,
}

fn usage(why: &str) -> ! {
    eprintln!("loadgen: {why}");
    eprintln!(
        "usage: loadgen --addr HOST:PORT \
         --scenario echo|echo_ack|burst|broadcast|broadcast_burst|idle|poll|connect|connect_poll \
         [--clients N] [--rate MSG/S] [--warmup S] [--duration S] [--drain S] [--raw] \
         [--sources K] [--source-base B] [--concurrency C] [--room NAME]"
    );
    std::process::exit(2)
}

fn parse_args() -> Config {
    let mut cfg = Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        scenario: Scenario::Echo,
        clients: 100,
        rate: 1000.0,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(3),
        drain: Duration::from_secs(3),
        raw: false,
        sources: 1,
        source_base: 1,
        concurrency: 256,
        room: "bench".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--raw" {
            cfg.raw = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            usage("the load generator of the server benchmarks");
        }
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let secs = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|s| *s >= 0.0)
                .map(Duration::from_secs_f64)
                .unwrap_or_else(|| usage(&format!("bad seconds `{v}`")))
        };
        let num = |v: &str| {
            v.parse::<usize>()
                .unwrap_or_else(|_| usage(&format!("bad number `{v}`")))
        };
        match flag.as_str() {
            "--addr" => cfg.addr = value.parse().unwrap_or_else(|_| usage("bad --addr")),
            "--scenario" => {
                cfg.scenario = match value.as_str() {
                    "echo" => Scenario::Echo,
                    "echo_ack" => Scenario::EchoAck,
                    "burst" => Scenario::Burst,
                    "broadcast" => Scenario::Broadcast,
                    "broadcast_burst" => Scenario::BroadcastBurst,
                    "idle" => Scenario::Idle,
                    "poll" => Scenario::Poll,
                    "connect" => Scenario::Connect,
                    "connect_poll" => Scenario::ConnectPoll,
                    other => usage(&format!("unknown scenario `{other}`")),
                }
            }
            "--clients" => cfg.clients = num(&value),
            "--rate" => {
                cfg.rate = value
                    .parse::<f64>()
                    .ok()
                    .filter(|r| *r > 0.0)
                    .unwrap_or_else(|| usage("bad --rate"))
            }
            "--warmup" => cfg.warmup = secs(&value),
            "--duration" => cfg.duration = secs(&value),
            "--drain" => cfg.drain = secs(&value),
            "--sources" => cfg.sources = num(&value).max(1),
            "--source-base" => cfg.source_base = num(&value),
            "--concurrency" => cfg.concurrency = num(&value).max(1),
            "--room" => cfg.room = value,
            other => usage(&format!("unknown flag `{other}`")),
        }
    }
    if cfg.source_base + cfg.sources > 255 {
        usage("source addresses beyond 127.0.0.254");
    }
    cfg
}

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// What all clients of the process record into (one thread: no locks).
struct Stats {
    t0: Instant,
    /// The measured window, microseconds since `t0`: intended send times in it count.
    window: (u64, u64),
    latency: Histogram<u64>,
    service: Histogram<u64>,
    sent: u64,
    received: u64,
    requests: u64,
    /// Microseconds of the last answer counted.
    last_us: u64,
    /// Broadcast: per sequence number, the intended send time and the last delivery.
    broadcasts: Vec<(u64, u64)>,
    connected: u64,
    failed: u64,
    first_error: Option<String>,
    /// CPU ticks of this process in the window.
    gen_ticks: u64,
}

/// Gathers the clients' handshakes as they finish, counting the failures
/// (and reporting the first).
async fn collect_connections<T>(
    up_rx: &mut mpsc::UnboundedReceiver<Result<T, String>>,
    stats: &RefCell<Stats>,
) -> Vec<T> {
    let mut connected = Vec::new();
    while let Some(result) = up_rx.recv().await {
        let mut s = stats.borrow_mut();
        match result {
            Ok(c) => {
                s.connected += 1;
                connected.push(c);
            }
            Err(e) => {
                s.failed += 1;
                s.first_error.get_or_insert(e);
            }
        }
    }
    let s = stats.borrow();
    if let Some(e) = &s.first_error {
        eprintln!("loadgen: {} handshakes failed, the first: {e}", s.failed);
    }
    connected
}

impl Stats {
    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    fn in_window(&self, intended_us: u64) -> bool {
        intended_us >= self.window.0 && intended_us < self.window.1
    }

    /// An answer to a message sent at `sent_us`, intended for `intended_us`.
    fn answer(&mut self, intended_us: u64, sent_us: u64) {
        if !self.in_window(intended_us) {
            return;
        }
        let now = self.now_us();
        self.latency
            .saturating_record(now.saturating_sub(intended_us).max(1));
        self.service
            .saturating_record(now.saturating_sub(sent_us).max(1));
        self.received += 1;
        self.last_us = self.last_us.max(now);
    }
}

type Shared = Rc<RefCell<Stats>>;

fn main() -> Result<(), BoxError> {
    let cfg = parse_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&runtime, run(cfg))?;
    say(&format!("REPORT {}", serde_json::to_string(&report)?));
    // Exiting closes every socket at once; no need to say goodbye to each.
    std::process::exit(0)
}

async fn run(cfg: Config) -> Result<Report, BoxError> {
    let stats = Rc::new(RefCell::new(Stats {
        t0: Instant::now(),
        window: (u64::MAX, u64::MAX),
        latency: histogram(),
        service: histogram(),
        sent: 0,
        received: 0,
        requests: 0,
        last_us: 0,
        broadcasts: Vec::new(),
        connected: 0,
        failed: 0,
        first_error: None,
        gen_ticks: 0,
    }));
    if matches!(cfg.scenario, Scenario::Poll | Scenario::ConnectPoll) {
        return run_poll(cfg, stats).await;
    }
    let cfg = Rc::new(cfg);
    let connect_start = Instant::now();
    let gate = Rc::new(Semaphore::new(cfg.concurrency));
    let (up_tx, mut up_rx) = mpsc::unbounded_channel();
    for i in 0..cfg.clients {
        let (cfg, gate, up_tx) = (cfg.clone(), gate.clone(), up_tx.clone());
        tokio::task::spawn_local(async move {
            let ws = {
                let Ok(_permit) = gate.acquire().await else {
                    return;
                };
                connect(&cfg, i, true).await
            };
            let _ = up_tx.send(ws.map_err(|e| e.to_string()));
        });
    }
    drop(up_tx);
    let sockets = collect_connections(&mut up_rx, &stats).await;
    let connect_secs = connect_start.elapsed().as_secs_f64();
    if cfg.scenario == Scenario::Connect {
        say("READY");
        return Ok(connect_report(&cfg, &stats.borrow(), connect_secs));
    }
    // The broadcast's sender is one more client, in no room.
    let sender = if cfg.scenario.broadcasts() {
        Some(connect(&cfg, cfg.clients, false).await?)
    } else {
        None
    };
    say("READY");

    let t0 = stats.borrow().t0;
    let start = Instant::now() + Duration::from_millis(100);
    let window_start = start + cfg.warmup;
    let window_end = window_start + cfg.duration;
    let us = |t: Instant| t.duration_since(t0).as_micros() as u64;
    stats.borrow_mut().window = (us(window_start), us(window_end));

    let period = Duration::from_secs_f64(cfg.clients as f64 / cfg.rate);
    let n = sockets.len();
    let mut tasks = Vec::with_capacity(n);
    for (i, ws) in sockets.into_iter().enumerate() {
        let (sink, stream) = ws.split();
        let (pong_tx, pong_rx) = mpsc::unbounded_channel();
        let schedule = match cfg.scenario {
            Scenario::Echo | Scenario::EchoAck | Scenario::Burst => Some(Schedule {
                first: start + Duration::from_secs_f64(i as f64 / cfg.rate),
                period,
                end: window_end,
            }),
            _ => None,
        };
        tokio::task::spawn_local(read_loop(stream, pong_tx, stats.clone()));
        tasks.push(tokio::task::spawn_local(write_loop(
            sink,
            pong_rx,
            schedule,
            cfg.scenario,
            stats.clone(),
        )));
    }
    if let Some(ws) = sender {
        let (sink, stream) = ws.split();
        let (pong_tx, pong_rx) = mpsc::unbounded_channel();
        let schedule = Schedule {
            first: start,
            period: Duration::from_secs_f64(1.0 / cfg.rate),
            end: window_end,
        };
        tokio::task::spawn_local(read_loop(stream, pong_tx, stats.clone()));
        tasks.push(tokio::task::spawn_local(write_loop(
            sink,
            pong_rx,
            Some(schedule),
            cfg.scenario,
            stats.clone(),
        )));
    }

    if cfg.scenario == Scenario::Idle {
        // Hold (answering pings) until the runner closes our standard input.
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while stdin.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    } else {
        sleep_until(window_start.into()).await;
        let cpu0 = cpu_ticks("self").unwrap_or(0);
        say("START");
        sleep_until(window_end.into()).await;
        let cpu1 = cpu_ticks("self").unwrap_or(0);
        say("END");
        // Wait for the answers still on their way, at most `drain`.
        let deadline = Instant::now() + cfg.drain;
        while Instant::now() < deadline && !all_answered(&stats.borrow(), n, cfg.scenario) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stats.borrow_mut().gen_ticks = cpu1.saturating_sub(cpu0);
    }
    let s = stats.borrow();
    if !s.latency.is_empty() {
        let ms = |q: f64| s.latency.value_at_quantile(q) as f64 / 1000.0;
        eprintln!(
            "loadgen: {} sent, {} answered; latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            s.sent,
            s.received,
            ms(0.5),
            ms(0.99),
            ms(0.999),
            s.latency.max() as f64 / 1000.0
        );
    }
    let mut report = Report {
        scenario: std::env::args()
            .skip_while(|a| a != "--scenario")
            .nth(1)
            .unwrap_or_default(),
        clients: cfg.clients as u64,
        connected: s.connected,
        failed: s.failed,
        connect_secs,
        window_secs: cfg.duration.as_secs_f64(),
        ..Report::default()
    };
    if cfg.scenario != Scenario::Idle {
        report.gen_cpu_secs = s.gen_ticks as f64 / TICKS_PER_SEC;
        report.sent = s.sent;
        report.received = s.received;
        report.latency = encode(&s.latency);
        report.service = encode(&s.service);
        report.span_secs = s.last_us.saturating_sub(s.window.0) as f64 / 1e6;
        if cfg.scenario == Scenario::Burst {
            report.expected = s.sent * BURST;
        }
        if cfg.scenario.broadcasts() {
            let mut last = histogram();
            let mut first_intended = u64::MAX;
            for &(intended, delivered) in &s.broadcasts {
                if s.in_window(intended) {
                    first_intended = first_intended.min(intended);
                    if delivered > 0 {
                        last.saturating_record(delivered.saturating_sub(intended).max(1));
                    }
                }
            }
            report.last_recipient = encode(&last);
            report.expected = s.sent * n as u64 * cfg.scenario.packets_per_request();
            if first_intended != u64::MAX {
                report.span_secs = s.last_us.saturating_sub(first_intended) as f64 / 1e6;
            }
        }
    }
    Ok(report)
}

/// The report of a scenario that only connects: its clients, the handshakes
/// that succeeded and failed, and how long they took.
fn connect_report(cfg: &Config, s: &Stats, connect_secs: f64) -> Report {
    let scenario = match cfg.scenario {
        Scenario::ConnectPoll => "connect_poll",
        _ => "connect",
    };
    Report {
        scenario: scenario.into(),
        clients: cfg.clients as u64,
        connected: s.connected,
        failed: s.failed,
        connect_secs,
        ..Report::default()
    }
}

fn all_answered(s: &Stats, recipients: usize, scenario: Scenario) -> bool {
    let packets = s.sent * scenario.packets_per_request();
    match s.broadcasts.is_empty() {
        true => s.received >= packets,
        false => s.received >= packets * recipients as u64,
    }
}

impl Scenario {
    /// Whether one more client, in no room, asks the server to broadcast.
    fn broadcasts(self) -> bool {
        matches!(self, Scenario::Broadcast | Scenario::BroadcastBurst)
    }

    /// The packets one request asks the server for (per recipient).
    fn packets_per_request(self) -> u64 {
        match self {
            Scenario::Burst | Scenario::BroadcastBurst => BURST,
            _ => 1,
        }
    }
}

/// The echoes a `burst` request asks for.
const BURST: u64 = 4;

/// Opens a TCP connection from the client's source address.
async fn tcp(cfg: &Config, i: usize) -> std::io::Result<TcpStream> {
    let last = (cfg.source_base + i % cfg.sources) as u8;
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, last), 0).into())?;
    let stream = socket.connect(cfg.addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A text frame holding one Socket.IO packet in an Engine.IO message.
fn frame(packet: &sio::Packet) -> Message {
    let text = packet.encode(SioVersion::V5);
    let message = eio::Packet::Message(eio::Data::Text(text));
    Message::text(String::from(message.encode_text(EioVersion::V4)))
}

/// Connects one client: WebSocket, Engine.IO open, Socket.IO CONNECT to `/`,
/// and in the broadcast scenario, the join of the room (when `join`).
async fn connect(cfg: &Config, i: usize, join: bool) -> Result<Ws, BoxError> {
    let stream = tcp(cfg, i).await?;
    let url = match cfg.raw {
        true => format!("ws://{}/", cfg.addr),
        false => format!("ws://{}/socket.io/?EIO=4&transport=websocket", cfg.addr),
    };
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    if cfg.raw {
        return Ok(ws);
    }
    // The Engine.IO open packet, then our CONNECT and the server's answer.
    match next_packet(&mut ws).await? {
        eio::Packet::Open(_) => {}
        other => return Err(format!("expected the open packet, got {other:?}").into()),
    }
    ws.send(frame(&sio::Packet::connect(Str::from("/"), None)))
        .await?;
    loop {
        let packet = next_socketio(&mut ws).await?;
        match packet.packet_type() {
            PacketType::Connect => break,
            PacketType::ConnectError => return Err("CONNECT refused".into()),
            _ => {}
        }
    }
    if join && cfg.scenario.broadcasts() {
        let join = sio::Packet::event(Str::from("/"), "join", &(cfg.room.as_str(),), Some(0))?;
        ws.send(frame(&join)).await?;
        loop {
            let packet = next_socketio(&mut ws).await?;
            if packet.packet_type() == PacketType::Ack {
                break;
            }
        }
    }
    Ok(ws)
}

/// The next Engine.IO packet of a WebSocket, answering pings on the way.
async fn next_packet(ws: &mut Ws) -> Result<eio::Packet, BoxError> {
    loop {
        let Some(msg) = ws.next().await else {
            return Err("connection closed during the handshake".into());
        };
        let Message::Text(text) = msg? else {
            continue;
        };
        let packet = eio::Packet::decode_text(Str::from_utf8(Bytes::from(text))?, EioVersion::V4)?;
        match packet {
            eio::Packet::Ping(data) => ws.send(pong(data)).await?,
            packet => return Ok(packet),
        }
    }
}

/// The next Socket.IO packet of a WebSocket.
async fn next_socketio(ws: &mut Ws) -> Result<sio::Packet, BoxError> {
    loop {
        if let eio::Packet::Message(eio::Data::Text(text)) = next_packet(ws).await? {
            return Ok(sio::decode_packet(text)?.0);
        }
    }
}

fn pong(data: Str) -> Message {
    Message::text(String::from(
        eio::Packet::Pong(data).encode_text(EioVersion::V4),
    ))
}

/// When a client sends: `first`, then every `period`, until `end`.
struct Schedule {
    first: Instant,
    period: Duration,
    end: Instant,
}

async fn write_loop(
    mut sink: SplitSink<Ws, Message>,
    mut pongs: mpsc::UnboundedReceiver<Message>,
    schedule: Option<Schedule>,
    scenario: Scenario,
    stats: Shared,
) {
    let t0 = stats.borrow().t0;
    let nsp = Str::from("/");
    let mut k: u32 = 0;
    let mut next = schedule.as_ref().map(|s| s.first);
    loop {
        let due = next.filter(|t| schedule.as_ref().is_some_and(|s| *t < s.end));
        tokio::select! {
            biased;
            pong = pongs.recv() => match pong {
                Some(msg) => {
                    if sink.send(msg).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            () = sleep_until(due.unwrap_or_else(Instant::now).into()), if due.is_some() => {
                let Some(intended) = due else { continue };
                let intended_us = intended.duration_since(t0).as_micros() as u64;
                let sent_us = t0.elapsed().as_micros() as u64;
                let packet = match scenario {
                    Scenario::EchoAck => sio::Packet::event(
                        nsp.clone(), "echo_ack", &(intended_us, sent_us), Some(u64::from(k)),
                    ),
                    Scenario::Burst => sio::Packet::event(
                        nsp.clone(), "burst", &(intended_us, sent_us, BURST), None,
                    ),
                    Scenario::Broadcast => {
                        let mut s = stats.borrow_mut();
                        let seq = s.broadcasts.len() as u64;
                        s.broadcasts.push((intended_us, 0));
                        sio::Packet::event(nsp.clone(), "broadcast", &(seq, intended_us), None)
                    }
                    Scenario::BroadcastBurst => {
                        let mut s = stats.borrow_mut();
                        let seq = s.broadcasts.len() as u64;
                        s.broadcasts.push((intended_us, 0));
                        sio::Packet::event(
                            nsp.clone(), "broadcast_burst", &(seq, intended_us, BURST), None,
                        )
                    }
                    _ => sio::Packet::event(nsp.clone(), "echo", &(intended_us, sent_us), None),
                };
                let Ok(packet) = packet else { return };
                {
                    let mut s = stats.borrow_mut();
                    if s.in_window(intended_us) {
                        s.sent += 1;
                    }
                }
                if sink.send(frame(&packet)).await.is_err() {
                    return;
                }
                k += 1;
                next = schedule.as_ref().map(|s| s.first + s.period * k);
            }
        }
    }
}

async fn read_loop(
    mut stream: SplitStream<Ws>,
    pongs: mpsc::UnboundedSender<Message>,
    stats: Shared,
) {
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else {
            continue;
        };
        let Ok(text) = Str::from_utf8(Bytes::from(text)) else {
            continue;
        };
        match eio::Packet::decode_text(text, EioVersion::V4) {
            Ok(eio::Packet::Ping(data)) => {
                let _ = pongs.send(pong(data));
            }
            Ok(eio::Packet::Message(eio::Data::Text(text))) => on_socketio(text, &stats),
            _ => {}
        }
    }
}

/// Records an echo, an ack or a broadcast delivery.
fn on_socketio(text: Str, stats: &Shared) {
    let Ok((packet, _)) = sio::decode_packet(text) else {
        return;
    };
    match packet.packet_type() {
        PacketType::Event => {
            let Ok((a, b)) = packet.event_args::<(u64, u64)>() else {
                return;
            };
            let mut s = stats.borrow_mut();
            if packet.event_name().is_some_and(|n| n.as_str() == "bcast") {
                // (sequence number, intended send time)
                let (seq, intended) = (a as usize, b);
                if !s.in_window(intended) {
                    return;
                }
                let now = s.now_us();
                s.latency
                    .saturating_record(now.saturating_sub(intended).max(1));
                s.received += 1;
                s.last_us = s.last_us.max(now);
                if let Some(entry) = s.broadcasts.get_mut(seq) {
                    entry.1 = entry.1.max(now);
                }
            } else {
                s.answer(a, b);
            }
        }
        PacketType::Ack => {
            if let Some(Ok((a, b))) = packet.payload().map(|p| p.deserialize::<(u64, u64)>()) {
                stats.borrow_mut().answer(a, b);
            }
        }
        _ => {}
    }
}

// ---- long-polling ----

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn run_poll(cfg: Config, stats: Shared) -> Result<Report, BoxError> {
    let cfg = Rc::new(cfg);
    let connect_start = Instant::now();
    let (up_tx, mut up_rx) = mpsc::unbounded_channel();
    let gate = Rc::new(Semaphore::new(cfg.concurrency));
    for i in 0..cfg.clients {
        let (cfg, up_tx, gate) = (cfg.clone(), up_tx.clone(), gate.clone());
        tokio::task::spawn_local(async move {
            let session = {
                let Ok(_permit) = gate.acquire().await else {
                    return;
                };
                poll_open(&cfg, i).await
            };
            let _ = up_tx.send(session.map_err(|e| e.to_string()));
        });
    }
    drop(up_tx);
    let sessions = collect_connections(&mut up_rx, &stats).await;
    let connect_secs = connect_start.elapsed().as_secs_f64();
    say("READY");
    if cfg.scenario == Scenario::ConnectPoll {
        return Ok(connect_report(&cfg, &stats.borrow(), connect_secs));
    }
    let t0 = stats.borrow().t0;
    let start = Instant::now() + Duration::from_millis(100);
    let window_start = start + cfg.warmup;
    let window_end = window_start + cfg.duration;
    let us = |t: Instant| t.duration_since(t0).as_micros() as u64;
    stats.borrow_mut().window = (us(window_start), us(window_end));
    for session in sessions {
        tokio::task::spawn_local(poll_loop(session, start, window_end, stats.clone()));
    }
    sleep_until(window_start.into()).await;
    let cpu0 = cpu_ticks("self").unwrap_or(0);
    say("START");
    sleep_until(window_end.into()).await;
    let cpu1 = cpu_ticks("self").unwrap_or(0);
    say("END");
    let s = stats.borrow();
    Ok(Report {
        scenario: "poll".into(),
        clients: cfg.clients as u64,
        connected: s.connected,
        failed: s.failed,
        connect_secs,
        sent: s.sent,
        received: s.received,
        requests: s.requests,
        window_secs: cfg.duration.as_secs_f64(),
        span_secs: cfg.duration.as_secs_f64(),
        gen_cpu_secs: cpu1.saturating_sub(cpu0) as f64 / TICKS_PER_SEC,
        latency: encode(&s.latency),
        service: encode(&s.service),
        ..Report::default()
    })
}

struct PollSession {
    sender: Sender,
    path: String,
    host: String,
}

async fn poll_open(cfg: &Config, i: usize) -> Result<PollSession, BoxError> {
    let stream = tcp(cfg, i).await?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::task::spawn_local(conn);
    let mut session = PollSession {
        sender,
        path: "/socket.io/?EIO=4&transport=polling".into(),
        host: cfg.addr.to_string(),
    };
    let open = poll_get(&mut session).await?;
    let Some(eio::Packet::Open(handshake)) = open.into_iter().next() else {
        return Err("expected the open packet".into());
    };
    session.path = format!("{}&sid={}", session.path, handshake.sid);
    let connect = sio::Packet::connect(Str::from("/"), None).encode(SioVersion::V5);
    poll_post(
        &mut session,
        &eio::Packet::Message(eio::Data::Text(connect)),
    )
    .await?;
    loop {
        for packet in poll_get(&mut session).await? {
            if let eio::Packet::Message(eio::Data::Text(text)) = packet
                && sio::decode_packet(text)?.0.packet_type() == PacketType::Connect
            {
                return Ok(session);
            }
        }
    }
}

async fn poll_get(session: &mut PollSession) -> Result<Vec<eio::Packet>, BoxError> {
    let request = hyper::Request::get(session.path.as_str())
        .header(hyper::header::HOST, session.host.as_str())
        .body(Full::new(Bytes::new()))?;
    let response = session.sender.send_request(request).await?;
    if !response.status().is_success() {
        return Err(format!("GET: {}", response.status()).into());
    }
    let body = response.into_body().collect().await?.to_bytes();
    Ok(eio::payload::v4::decode(body, 4096)?)
}

async fn poll_post(session: &mut PollSession, packet: &eio::Packet) -> Result<(), BoxError> {
    let mut body = Vec::new();
    eio::payload::v4::encode(std::slice::from_ref(packet), &mut body);
    let request = hyper::Request::post(session.path.as_str())
        .header(hyper::header::HOST, session.host.as_str())
        .header(hyper::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(Full::new(Bytes::from(body)))?;
    let response = session.sender.send_request(request).await?;
    if !response.status().is_success() {
        return Err(format!("POST: {}", response.status()).into());
    }
    response.into_body().collect().await?;
    Ok(())
}

/// Closed loop: post an `echo`, poll until it is back, again, until `end`.
async fn poll_loop(mut session: PollSession, start: Instant, end: Instant, stats: Shared) {
    sleep_until(start.into()).await;
    let t0 = stats.borrow().t0;
    let nsp = Str::from("/");
    while Instant::now() < end {
        let sent_us = t0.elapsed().as_micros() as u64;
        let Ok(packet) = sio::Packet::event(nsp.clone(), "echo", &(sent_us, sent_us), None) else {
            return;
        };
        let message = eio::Packet::Message(eio::Data::Text(packet.encode(SioVersion::V5)));
        if poll_post(&mut session, &message).await.is_err() {
            return;
        }
        let counted = stats.borrow().in_window(sent_us);
        if counted {
            let mut s = stats.borrow_mut();
            s.sent += 1;
            s.requests += 1;
        }
        let mut back = false;
        while !back {
            let Ok(packets) = poll_get(&mut session).await else {
                return;
            };
            if counted {
                stats.borrow_mut().requests += 1;
            }
            for packet in packets {
                match packet {
                    eio::Packet::Ping(data) => {
                        let pong = poll_post(&mut session, &eio::Packet::Pong(data)).await;
                        if pong.is_err() {
                            return;
                        }
                    }
                    eio::Packet::Message(eio::Data::Text(text)) => {
                        let before = stats.borrow().received;
                        on_socketio(text, &stats);
                        back |= stats.borrow().received > before || !counted;
                    }
                    _ => {}
                }
            }
        }
    }
}
