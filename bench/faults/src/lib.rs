//! Reliability under faults and load: the scenarios that `faults-run` (`cargo xtask bench
//! --faults`) runs against ours, socketioxide and the Node.js server, and whose short
//! versions run as tests against ours.
//!
//! The clients are this workspace's `socketio-client`, which reconnects with the official
//! client's randomised delays (1 s growing to 5 s) and resumes sessions where the server
//! has connection state recovery; the network between them and the server is a
//! [`faultproxy::Proxy`].
//!
//! - [`Fleet`]: clients that join the room `bench` of the benchmark servers (see
//!   `bench-servers`) and record every `bcast` they get, by its sequence number.
//! - [`drops`]: broadcasts flow while the proxy drops connections at random; each client's
//!   record gives what was delivered, duplicated and reordered.
//! - [`storm`]: every connection dropped at once, and the time until every client is back.
//! - [`slow_http`]: request heads and bodies trickled a byte at a time, and how and
//!   when the server gives them up.
//! - [`OursServer`]: our benchmark server on a runtime of its own in this process, so that
//!   a test can count its tasks.
//!
//! It does not start other servers: the runner does, as processes.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use faultproxy::{Faults, Proxy};
use hdrhistogram::Histogram;
use socketio_client::{ManagerEvent, Socket, Transports};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The room the benchmark servers broadcast to.
pub const ROOM: &str = bench_servers::ROOM;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Microseconds since the Unix epoch: the send time a broadcast carries, read by clients
/// of the same machine.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// One client of a [`Fleet`].
pub struct Client {
    /// The client's socket on `/`.
    pub socket: Socket,
    /// The sequence numbers of the `bcast` events it got, in the order they came.
    pub arrivals: Arc<Mutex<Vec<u64>>>,
    joined: Arc<AtomicBool>,
    connects: Arc<AtomicU32>,
    recovered: Arc<AtomicU32>,
}

impl Client {
    /// Whether the client is connected and in the room (joined, or back in it by recovery).
    pub fn joined(&self) -> bool {
        self.joined.load(Ordering::SeqCst) && self.socket.connected()
    }

    /// How many times the client connected (the first time included).
    pub fn connects(&self) -> u32 {
        self.connects.load(Ordering::SeqCst)
    }
}

/// What every client of a fleet shares.
struct FleetShared {
    /// Broadcast latencies in microseconds, from the send time the broadcast carries.
    latency: Mutex<Histogram<u64>>,
    /// Refused handshakes and failed reconnection attempts.
    refused: AtomicU64,
    /// Reconnection attempts.
    attempts: AtomicU64,
}

/// Clients of the benchmark servers, each joined to the room [`ROOM`] (again after each
/// reconnection that did not recover its session).
pub struct Fleet {
    /// The clients, in the order they were started.
    pub clients: Vec<Client>,
    shared: Arc<FleetShared>,
}

impl Fleet {
    /// Starts `n` WebSocket clients, the i-th to `urls[i % urls.len()]`, `batch` at a time
    /// (the next batch once the previous one is in the room), and waits until all are in
    /// the room, `wait` at most.
    ///
    /// # Errors
    /// When a client cannot be started, or the fleet is not in the room within `wait`.
    pub async fn join(
        urls: &[String],
        n: usize,
        batch: usize,
        wait: Duration,
    ) -> Result<Fleet, String> {
        let shared = Arc::new(FleetShared {
            latency: Mutex::new(bench_loadgen::histogram()),
            refused: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
        });
        let mut fleet = Fleet {
            clients: Vec::with_capacity(n),
            shared,
        };
        let deadline = Instant::now() + wait;
        while fleet.clients.len() < n {
            let start = fleet.clients.len();
            for i in start..(start + batch.max(1)).min(n) {
                let client = fleet.client(&urls[i % urls.len()])?;
                fleet.clients.push(client);
            }
            fleet.wait_joined(deadline).await?;
        }
        Ok(fleet)
    }

    fn client(&self, url: &str) -> Result<Client, String> {
        let arrivals: Arc<Mutex<Vec<u64>>> = Arc::default();
        let joined = Arc::new(AtomicBool::new(false));
        let connects = Arc::new(AtomicU32::new(0));
        let recovered = Arc::new(AtomicU32::new(0));
        let shared = self.shared.clone();
        let (a, s) = (arrivals.clone(), shared.clone());
        let (j, c, r) = (joined.clone(), connects.clone(), recovered.clone());
        let j2 = joined.clone();
        let s2 = shared.clone();
        let s3 = shared.clone();
        let socket = socketio_client::connect(url)
            .transports(Transports::WebSocket)
            .on("bcast", move |_socket, msg| {
                let args: Vec<serde_json::Value> = msg.args().unwrap_or_default();
                let seq = args.first().and_then(serde_json::Value::as_u64);
                let sent = args.get(1).and_then(serde_json::Value::as_u64).unwrap_or(0);
                if let Some(seq) = seq {
                    lock(&a).push(seq);
                }
                if sent > 0 {
                    let _ = lock(&s.latency).record(now_micros().saturating_sub(sent).max(1));
                }
            })
            .on_connect(move |socket| {
                let epoch = c.fetch_add(1, Ordering::SeqCst) + 1;
                if socket.recovered() {
                    r.fetch_add(1, Ordering::SeqCst);
                    j.store(true, Ordering::SeqCst);
                    return;
                }
                let Ok(ack) = socket
                    .timeout(Duration::from_secs(20))
                    .emit_with_ack("join", &(ROOM,))
                else {
                    return;
                };
                let (j, c) = (j.clone(), c.clone());
                tokio::spawn(async move {
                    if ack.await.is_ok() && c.load(Ordering::SeqCst) == epoch {
                        j.store(true, Ordering::SeqCst);
                    }
                });
            })
            .on_disconnect(move |_socket, _reason| j2.store(false, Ordering::SeqCst))
            .on_connect_error(move |_socket, _error| {
                s2.refused.fetch_add(1, Ordering::SeqCst);
            })
            .on_manager(move |event| match event {
                ManagerEvent::ReconnectAttempt(_) => {
                    s3.attempts.fetch_add(1, Ordering::SeqCst);
                }
                ManagerEvent::ReconnectError(_) => {
                    s3.refused.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            })
            .connect()
            .map_err(|e| e.to_string())?;
        Ok(Client {
            socket,
            arrivals,
            joined,
            connects,
            recovered,
        })
    }

    /// How many clients are connected and in the room.
    pub fn joined_count(&self) -> usize {
        self.clients.iter().filter(|c| c.joined()).count()
    }

    /// Waits until every client is in the room.
    ///
    /// # Errors
    /// When `deadline` passes first.
    pub async fn wait_joined(&self, deadline: Instant) -> Result<(), String> {
        loop {
            let joined = self.joined_count();
            if joined == self.clients.len() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{joined} of {} clients in the room",
                    self.clients.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The broadcast latencies recorded so far (and starts a new record).
    pub fn take_latency(&self) -> Histogram<u64> {
        std::mem::replace(&mut lock(&self.shared.latency), bench_loadgen::histogram())
    }

    /// Refused handshakes and failed reconnection attempts so far.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Reconnection attempts so far.
    pub fn attempts(&self) -> u64 {
        self.shared.attempts.load(Ordering::SeqCst)
    }

    /// Closes every client.
    pub fn close(&self) {
        for client in &self.clients {
            client.socket.close();
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.close();
    }
}

/// A client straight to the server (not through the proxy) that emits `broadcast` with
/// increasing sequence numbers.
pub struct Broadcaster {
    socket: Socket,
}

impl Broadcaster {
    /// Connects to `url` and waits until connected, `wait` at most.
    ///
    /// # Errors
    /// When it does not connect in time.
    pub async fn connect(url: &str, wait: Duration) -> Result<Broadcaster, String> {
        let socket = socketio_client::connect(url)
            .transports(Transports::WebSocket)
            .connect()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + wait;
        while !socket.connected() {
            if Instant::now() > deadline {
                return Err("the broadcaster did not connect".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Broadcaster { socket })
    }

    /// Asks the server to broadcast `seq` to the room, with the time it is sent.
    ///
    /// # Errors
    /// When the client refuses the emit.
    pub fn send(&self, seq: u64) -> Result<(), String> {
        self.socket
            .emit("broadcast", &(seq, now_micros()))
            .map_err(|e| e.to_string())
    }

    /// Asks the server how many connections it holds.
    ///
    /// # Errors
    /// When no answer comes within 10 s.
    pub async fn server_connections(&self) -> Result<u64, String> {
        Ok(self.server_stats().await?.0)
    }

    /// Asks the server how many connections it holds and, from a Rust server, how many
    /// tasks are alive on its runtime.
    ///
    /// # Errors
    /// When no answer comes within 10 s.
    pub async fn server_stats(&self) -> Result<(u64, Option<u64>), String> {
        let ack = self
            .socket
            .timeout(Duration::from_secs(10))
            .emit_with_ack("stats", &())
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        let args: Vec<serde_json::Value> = ack.args().map_err(|e| e.to_string())?;
        let connections = args
            .first()
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| format!("stats answered {args:?}"))?;
        Ok((connections, args.get(1).and_then(serde_json::Value::as_u64)))
    }
}

impl Drop for Broadcaster {
    fn drop(&mut self) {
        self.socket.close();
    }
}

/// What the clients of a delivery scenario got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Clients.
    pub clients: usize,
    /// Broadcasts sent.
    pub broadcasts: u64,
    /// Deliveries expected: every broadcast to every client.
    pub expected: u64,
    /// Distinct broadcasts delivered, over all clients.
    pub delivered: u64,
    /// Broadcasts a client never got.
    pub lost: u64,
    /// Deliveries of a broadcast a client had already got.
    pub duplicated: u64,
    /// Deliveries of a broadcast older than one the client had already got.
    pub reordered: u64,
    /// Clients that lost at least one broadcast.
    pub clients_with_losses: usize,
    /// Connections after the first, over all clients.
    pub reconnects: u64,
    /// Of those, connections that recovered their session.
    pub recovered: u64,
    /// Connections the proxy dropped.
    pub drops: u64,
}

impl Delivery {
    /// Delivered as a percentage of expected.
    pub fn percent(&self) -> f64 {
        if self.expected == 0 {
            return 100.0;
        }
        100.0 * self.delivered as f64 / self.expected as f64
    }
}

/// Counts what each client got of the broadcasts `1..=broadcasts`.
pub fn tally(fleet: &Fleet, broadcasts: u64) -> Delivery {
    let mut d = Delivery {
        clients: fleet.clients.len(),
        broadcasts,
        expected: broadcasts * fleet.clients.len() as u64,
        ..Delivery::default()
    };
    for client in &fleet.clients {
        let arrivals = lock(&client.arrivals);
        let mut seen = HashSet::new();
        let mut highest = 0;
        for &seq in arrivals.iter().filter(|s| (1..=broadcasts).contains(*s)) {
            if !seen.insert(seq) {
                d.duplicated += 1;
            } else if seq < highest {
                d.reordered += 1;
            }
            highest = highest.max(seq);
        }
        let delivered = seen.len() as u64;
        d.delivered += delivered;
        if delivered < broadcasts {
            d.clients_with_losses += 1;
        }
        d.reconnects += u64::from(client.connects().saturating_sub(1));
        d.recovered += u64::from(client.recovered.load(Ordering::SeqCst));
    }
    d.lost = d.expected - d.delivered;
    d
}

/// The delivery-under-drops scenario.
#[derive(Debug, Clone)]
pub struct DropsOpts {
    /// Clients behind the proxy.
    pub clients: usize,
    /// Broadcasts to send.
    pub broadcasts: u64,
    /// Broadcasts per second.
    pub rate: u64,
    /// The faults of the connections while broadcasts flow.
    pub faults: Faults,
    /// The bound on every wait (a liveness bound, not a measure).
    pub wait: Duration,
}

/// Delivery under drops: `opts.clients` clients join the room through `proxy` (to the
/// server at `server`), and a broadcaster straight to the server sends `opts.broadcasts`
/// broadcasts at `opts.rate`; after the first second's, every connection is cut and the
/// proxy's faults are set to `opts.faults`, so that the clients are dropped and
/// reconnect while the rest flow. Then the faults stop, every
/// client comes back into the room, markers are broadcast until every client got one,
/// and each client's record is counted.
///
/// # Errors
/// When the clients do not join, or do not come back, within `opts.wait`.
pub async fn drops(
    server: SocketAddr,
    proxy: &Proxy,
    opts: &DropsOpts,
) -> Result<Delivery, String> {
    let fleet = Fleet::join(&[proxy.url()], opts.clients, 250, opts.wait).await?;
    let broadcaster = Broadcaster::connect(&format!("http://{server}"), opts.wait).await?;
    let before = proxy.stats();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate.max(1) as f64));
    for seq in 1..=opts.broadcasts {
        tick.tick().await;
        broadcaster.send(seq)?;
        // A second of broadcasts first, so that every client holds an offset (the
        // reference recovers no session without one), then the faults.
        if seq == opts.rate.min(opts.broadcasts) {
            proxy.set_faults(opts.faults.clone());
            proxy.cut();
        }
    }
    proxy.calm();
    let after = proxy.stats();
    let deadline = Instant::now() + opts.wait;
    fleet.wait_joined(deadline).await?;
    // Markers, until every client got one: whatever it was going to get has come.
    let mut marker = opts.broadcasts;
    loop {
        marker += 1;
        broadcaster.send(marker)?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let done = fleet
            .clients
            .iter()
            .all(|c| lock(&c.arrivals).iter().any(|s| *s > opts.broadcasts));
        if done {
            break;
        }
        if Instant::now() > deadline {
            return Err("not every client got a marker".into());
        }
    }
    let mut delivery = tally(&fleet, opts.broadcasts);
    delivery.drops = (after.dropped + after.cut) - (before.dropped + before.cut);
    fleet.close();
    Ok(delivery)
}

/// What a reconnect storm gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Storm {
    /// Clients dropped.
    pub clients: usize,
    /// Clients back in the room by the end.
    pub back: usize,
    /// Seconds from the drop until the last client was back in the room.
    pub secs: f64,
    /// Reconnection attempts.
    pub attempts: u64,
    /// Refused handshakes and failed attempts.
    pub refused: u64,
}

/// A reconnect storm: calls `cut` (which drops every client's connection at once), then
/// waits until every client of `fleet` has connected again and is back in the room,
/// `wait` at most.
pub async fn storm(fleet: &Fleet, cut: impl FnOnce(), wait: Duration) -> Storm {
    let before: Vec<u32> = fleet.clients.iter().map(Client::connects).collect();
    let (attempts, refused) = (fleet.attempts(), fleet.refused());
    let back = |fleet: &Fleet| {
        fleet
            .clients
            .iter()
            .zip(&before)
            .filter(|(c, b)| c.connects() > **b && c.joined())
            .count()
    };
    cut();
    let started = Instant::now();
    let deadline = started + wait;
    let mut n = back(fleet);
    while n < fleet.clients.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        n = back(fleet);
    }
    Storm {
        clients: fleet.clients.len(),
        back: n,
        secs: started.elapsed().as_secs_f64(),
        attempts: fleet.attempts() - attempts,
        refused: fleet.refused() - refused,
    }
}

/// Our benchmark server (`bench_servers::ours_handlers`) on a runtime of its own, on a
/// thread of this process: a test counts that runtime's tasks.
pub struct OursServer {
    /// The server.
    pub io: socketio_tokio::SocketIo,
    /// Where it listens.
    pub addr: SocketAddr,
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OursServer {
    /// Builds the server from `builder` with the benchmark handlers, and serves it on a
    /// free port of 127.0.0.1.
    ///
    /// # Panics
    /// When the server cannot be built or bound.
    pub fn start(builder: socketio_tokio::SocketIoBuilder) -> OursServer {
        let io = builder.build().expect("the server's options");
        bench_servers::ours_handlers(&io);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let handle = runtime.handle().clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = io.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                tokio::select! {
                    _ = served.serve(listener) => {}
                    _ = stopped => {}
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(5));
        });
        OursServer {
            io,
            addr,
            handle,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The tasks alive on the server's runtime.
    pub fn tasks(&self) -> usize {
        self.handle.metrics().num_alive_tasks()
    }
}

impl Drop for OursServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits until `f` holds, checking every 50 ms, `wait` at most; gives its last value.
pub async fn eventually<T>(wait: Duration, mut f: impl FnMut() -> (bool, T)) -> (bool, T) {
    let deadline = Instant::now() + wait;
    loop {
        let (ok, value) = f();
        if ok || Instant::now() > deadline {
            return (ok, value);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One sample of a soak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Seconds since the soak started.
    pub secs: u64,
    /// The server's resident memory, KiB.
    pub rss_kib: u64,
    /// The server's tasks (0 when not known): from `sample`, or else as the server's
    /// `stats` answer gives them.
    pub tasks: u64,
    /// The connections the server holds.
    pub connections: u64,
    /// Clients in the room.
    pub joined: u64,
}

/// The soak's settings.
#[derive(Debug, Clone)]
pub struct SoakOpts {
    /// How long traffic flows.
    pub duration: Duration,
    /// Clients at any time.
    pub clients: usize,
    /// Broadcasts per second to the room.
    pub rate: u64,
    /// Clients replaced by new ones every second.
    pub churn: usize,
    /// The time between two samples.
    pub every: Duration,
    /// The faults of the connections through the proxy.
    pub faults: Faults,
    /// The bound on every wait.
    pub wait: Duration,
}

/// A soak: `opts.clients` clients in the room through `proxy`, broadcasts at `opts.rate`,
/// `opts.churn` clients leaving and new ones arriving every second, the proxy's faults on,
/// for `opts.duration`. Every `opts.every`, `sample` gives the server's memory and tasks,
/// and the server is asked for its connection count (and its tasks, when `sample` does
/// not know them). Returns the samples; the fleet
/// closes at the end.
///
/// # Errors
/// When the clients do not join within `opts.wait`, or the broadcaster fails.
pub async fn soak(
    server: SocketAddr,
    proxy: &Proxy,
    opts: &SoakOpts,
    mut sample: impl FnMut() -> Sample,
) -> Result<Vec<Sample>, String> {
    let urls = [proxy.url()];
    let mut fleet = Fleet::join(&urls, opts.clients, 250, opts.wait).await?;
    let broadcaster = Broadcaster::connect(&format!("http://{server}"), opts.wait).await?;
    proxy.set_faults(opts.faults.clone());
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut next_sample = started;
    let mut next_churn = started + Duration::from_secs(1);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate.max(1) as f64));
    let mut seq = 0u64;
    let mut victim = 0usize;
    while started.elapsed() < opts.duration {
        tick.tick().await;
        seq += 1;
        broadcaster.send(seq)?;
        let now = Instant::now();
        if now >= next_churn {
            next_churn += Duration::from_secs(1);
            for _ in 0..opts.churn.min(fleet.clients.len()) {
                victim = (victim + 7919) % fleet.clients.len();
                fleet.clients[victim].socket.close();
                let fresh = fleet.client(&urls[0])?;
                fleet.clients[victim] = fresh;
            }
        }
        if now >= next_sample {
            next_sample += opts.every;
            // What the clients got is not counted here: their records would grow.
            for client in &fleet.clients {
                *lock(&client.arrivals) = Vec::new();
            }
            let mut s = sample();
            let (connections, tasks) = broadcaster.server_stats().await?;
            // The broadcaster's own connection is not a client's.
            s.connections = connections.saturating_sub(1);
            if s.tasks == 0 {
                s.tasks = tasks.unwrap_or(0);
            }
            s.secs = started.elapsed().as_secs();
            s.joined = fleet.joined_count() as u64;
            samples.push(s);
        }
    }
    proxy.calm();
    fleet.close();
    Ok(samples)
}

// ---- slow HTTP ----

/// The slow-HTTP scenario's settings.
#[derive(Debug, Clone)]
pub struct SlowHttpOpts {
    /// Connections that trickle the request head of a polling handshake.
    pub heads: usize,
    /// Polling POSTs, each to a session of its own opened just before, that send their
    /// head whole and trickle their body.
    pub bodies: usize,
    /// The time between two trickled bytes.
    pub pace: Duration,
    /// The size of a trickled head (padded with a header) and of a trickled body: enough
    /// that no request is whole within `wait`.
    pub bytes: usize,
    /// How long the trickled requests are watched; those still open then count as such.
    pub wait: Duration,
}

/// How a trickled request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The server closed (or reset) the connection with no answer.
    Closed,
    /// The server answered with this status (0: not an HTTP status line).
    Answered(u16),
    /// Still open when the wait ended.
    Open,
}

/// One trickled request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trickled {
    /// How it ended.
    pub ending: Ending,
    /// Seconds from its first byte to the first byte of the answer or to the close (to
    /// the end of the wait when still open).
    pub secs: f64,
    /// Whether its last byte had been sent by then.
    pub whole: bool,
}

/// What the slow-HTTP scenario gave. The connections still open at the end of the wait
/// stay open until [`SlowHttp::close`] (or the drop), so that the server can be read
/// while it holds them.
#[derive(Debug)]
pub struct SlowHttp {
    /// The trickled heads.
    pub heads: Vec<Trickled>,
    /// The trickled bodies.
    pub bodies: Vec<Trickled>,
    /// Handshakes that gave no session (no POST was sent for them).
    pub sessions_failed: usize,
    open: Vec<TcpStream>,
}

impl SlowHttp {
    /// Closes the connections still open.
    pub fn close(&mut self) {
        self.open.clear();
    }
}

/// The request head of a polling handshake, padded with a header to `len` bytes (when it
/// is shorter).
pub fn padded_handshake(len: usize) -> Vec<u8> {
    let start =
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\nX-Padding: ";
    let end = "\r\n\r\n";
    let pad = len.saturating_sub(start.len() + end.len()).max(1);
    format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
}

/// The head of a polling POST to `sid` with a body of `len` bytes.
pub fn polling_post_head(sid: &str, len: usize) -> Vec<u8> {
    format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len}\r\n\r\n"
    )
    .into_bytes()
}

/// Opens a polling session at `addr` (a handshake on a connection of its own, closed
/// after the answer) and gives its id, `wait` at most.
pub async fn polling_session(addr: SocketAddr, wait: Duration) -> Option<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(
                b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )
            .await
            .ok()?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&answer);
        let sid = text.split("\"sid\":\"").nth(1)?.split('"').next()?;
        Some(sid.to_owned())
    };
    tokio::time::timeout(wait, exchange).await.ok().flatten()
}

/// The status of an HTTP answer's status line (0 when it is not one).
fn status_of(answer: &[u8]) -> u16 {
    std::str::from_utf8(answer)
        .ok()
        .and_then(|t| t.strip_prefix("HTTP/1."))
        .and_then(|t| t.get(2..5))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Sends `request` on a new connection to `addr`: its first `at_once` bytes at once, then
/// the rest a byte every `pace`; and reads until the server answers or closes, or until
/// `deadline`. The connection is given back when still open then (its write side never
/// closed: the server sees a request that is still coming).
///
/// # Errors
/// When the connection cannot be made.
pub async fn trickle(
    addr: SocketAddr,
    request: &[u8],
    at_once: usize,
    pace: Duration,
    deadline: Instant,
) -> Result<(Trickled, Option<TcpStream>), String> {
    let started = Instant::now();
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut r, mut w) = stream.into_split();
    let mut sent = 0;
    let answer = {
        let writer = async {
            let at_once = at_once.min(request.len());
            if w.write_all(&request[..at_once]).await.is_ok() {
                sent = at_once;
                let mut tick = tokio::time::interval(pace);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                for byte in &request[at_once..] {
                    tick.tick().await;
                    if w.write_all(std::slice::from_ref(byte)).await.is_err() {
                        break;
                    }
                    sent += 1;
                }
            }
            // Whatever happened, the write side stays open.
            std::future::pending::<()>().await;
        };
        let reader = async {
            let mut answer = Vec::new();
            let mut at = None;
            let mut buf = [0u8; 512];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        at.get_or_insert_with(|| started.elapsed());
                        answer.extend_from_slice(&buf[..n]);
                        // The status line is enough.
                        if answer.len() >= 12 || answer.contains(&b'\n') {
                            break;
                        }
                    }
                }
            }
            (at.unwrap_or_else(|| started.elapsed()), answer)
        };
        tokio::select! {
            answer = reader => Some(answer),
            () = writer => None,
            () = tokio::time::sleep_until(deadline) => None,
        }
    };
    let whole = sent == request.len();
    Ok(match answer {
        Some((at, answer)) => (
            Trickled {
                ending: if answer.is_empty() {
                    Ending::Closed
                } else {
                    Ending::Answered(status_of(&answer))
                },
                secs: at.as_secs_f64(),
                whole,
            },
            None,
        ),
        None => (
            Trickled {
                ending: Ending::Open,
                secs: started.elapsed().as_secs_f64(),
                whole,
            },
            r.reunite(w).ok(),
        ),
    })
}

/// Slow HTTP: `opts.bodies` polling sessions are opened at `addr`, one handshake each;
/// then, all at once, `opts.heads` connections trickle the request head of a polling
/// handshake (padded to `opts.bytes`), and one POST to each session sends its head whole
/// and trickles its body of `opts.bytes` bytes, a byte every `opts.pace`. Each is watched
/// until the server answers or closes it, `opts.wait` at most. `every_second` is called
/// every second of the wait with the seconds since it started.
///
/// # Errors
/// When a connection cannot be made.
pub async fn slow_http(
    addr: SocketAddr,
    opts: &SlowHttpOpts,
    mut every_second: impl FnMut(f64),
) -> Result<SlowHttp, String> {
    let mut opening = JoinSet::new();
    for _ in 0..opts.bodies {
        opening.spawn(polling_session(addr, Duration::from_secs(30)));
    }
    let mut sids = Vec::new();
    let mut sessions_failed = 0;
    while let Some(done) = opening.join_next().await {
        match done.ok().flatten() {
            Some(sid) => sids.push(sid),
            None => sessions_failed += 1,
        }
    }
    let started = Instant::now();
    let deadline = started + opts.wait;
    let pace = opts.pace;
    let mut set = JoinSet::new();
    let head = Arc::new(padded_handshake(opts.bytes));
    for _ in 0..opts.heads {
        let head = head.clone();
        set.spawn(async move { (true, trickle(addr, &head, 0, pace, deadline).await) });
    }
    for sid in sids {
        let mut post = polling_post_head(&sid, opts.bytes);
        let at_once = post.len();
        // One message packet: `4` and its text.
        post.push(b'4');
        post.resize(at_once + opts.bytes, b'a');
        set.spawn(async move { (false, trickle(addr, &post, at_once, pace, deadline).await) });
    }
    let mut run = SlowHttp {
        heads: Vec::new(),
        bodies: Vec::new(),
        sessions_failed,
        open: Vec::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            done = set.join_next() => {
                let Some(done) = done else { break };
                let (is_head, result) = done.map_err(|e| e.to_string())?;
                let (trickled, open) = result?;
                if is_head {
                    run.heads.push(trickled);
                } else {
                    run.bodies.push(trickled);
                }
                run.open.extend(open);
            }
            _ = tick.tick() => every_second(started.elapsed().as_secs_f64()),
        }
    }
    Ok(run)
}
