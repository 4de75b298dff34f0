//! Slow and idle clients against applications served by `HttpServer`: the
//! chat example, and a plain axum application with the Socket.IO layer.
//!
//! Each server runs in a process of its own (this test binary, started
//! again as `server_process`), so that its file descriptors and memory can
//! be read from `/proc/<pid>`. Against it, a thousand connections trickle
//! their request heads, send nothing at all, or stop in the HTTP/2 preface,
//! round after round, while two Socket.IO clients chat (and, against the
//! chat, fifty official JavaScript clients follow its event contract); then
//! the connection caps are filled, and new connections past them are
//! refused at once.

#![allow(clippy::unwrap_used)]

#[path = "common/raw.rs"]
mod raw;

#[path = "../examples/chat/server.rs"]
#[allow(dead_code)]
mod chat;

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use raw::{Ws, recv_text};
use socketio_tokio::{AckSender, Data, HttpServer, Socket, SocketIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// The bound on every wait of these tests: far beyond the servers'
/// timeouts, far short of "forever".
const BOUND: Duration = Duration::from_secs(30);

/// How the server process is told what to run.
const ENV_APP: &str = "SLOW_CLIENTS_APP";
const ENV_HEADER_MS: &str = "SLOW_CLIENTS_HEADER_MS";
const ENV_FIRST_MS: &str = "SLOW_CLIENTS_FIRST_MS";
const ENV_MAX: &str = "SLOW_CLIENTS_MAX_CONNECTIONS";
const ENV_MAX_PER_IP: &str = "SLOW_CLIENTS_MAX_CONNECTIONS_PER_IP";

/// The applications under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum App {
    /// The chat example, as its binary serves it.
    Chat,
    /// An axum router with a route and the Socket.IO layer, as the axum
    /// example builds it.
    Axum,
}

impl App {
    fn name(self) -> &'static str {
        match self {
            App::Chat => "chat",
            App::Axum => "axum",
        }
    }
}

// ---------------------------------------------------------------------------
// The server process.

fn env_ms(name: &str) -> Option<Duration> {
    let ms: u64 = std::env::var(name).ok()?.parse().ok()?;
    Some(Duration::from_millis(ms))
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok()
}

/// The server the other tests run in a process of their own: it prints
/// `listening <addr>`, and serves until its standard input closes.
#[test]
#[ignore = "the server process of the other tests, started by them"]
fn server_process() {
    let Ok(app) = std::env::var(ENV_APP) else {
        return;
    };
    // Gone with the test that started it.
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let io = chat::new_server().unwrap();
        let mut server = chat::http_server(&io);
        if let Some(t) = env_ms(ENV_HEADER_MS) {
            server = server.header_read_timeout(t);
        }
        if let Some(t) = env_ms(ENV_FIRST_MS) {
            server = server.first_bytes_timeout(t);
        }
        if let Some(max) = env_usize(ENV_MAX) {
            server = server.max_connections(max);
        }
        if let Some(max) = env_usize(ENV_MAX_PER_IP) {
            server = server.max_connections_per_ip(max);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening {}", listener.local_addr().unwrap());
        let forever = std::future::pending::<()>();
        if app == "chat" {
            chat::serve_with(io, server, listener, Bytes::new(), forever)
                .await
                .unwrap();
        } else {
            serve_axum(io, server, listener).await;
        }
    });
}

/// The axum example's application: `GET /` answers "hello", and a `chat`
/// event goes to every other socket, acknowledged with "delivered".
async fn serve_axum(io: SocketIo, server: HttpServer, listener: tokio::net::TcpListener) {
    io.ns("/", |socket: Socket| async move {
        socket.on(
            "chat",
            |socket: Socket, Data(chat): Data<serde_json::Value>, ack: AckSender| async move {
                socket.broadcast().emit("chat", &chat)?;
                ack.send(&"delivered")
            },
        );
    });
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "hello" }))
        .layer(io.layer());
    server
        .serve_until(listener, app, std::future::pending())
        .await
        .unwrap();
}

/// A server process, killed (by its pid) and reaped when dropped, also
/// when a test fails.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// Held so that the process never writes to a closed pipe.
    _stdout: Option<BufReader<ChildStdout>>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    fn start(app: App, env: &[(&str, String)]) -> ServerProcess {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                "server_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_APP, app.name())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take();
        // From here on, a failure kills the process.
        let mut process = ServerProcess {
            child,
            addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            _stdout: None,
        };
        // Read on a thread of its own, so that a server that says nothing
        // fails the test instead of hanging it. The test harness may print
        // the test's name first, on the same line.
        let (tx, rx) = std::sync::mpsc::channel();
        let mut stdout = BufReader::new(stdout.unwrap());
        std::thread::spawn(move || {
            let mut line = String::new();
            while stdout.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some((_, addr)) = line.trim().split_once("listening ") {
                    let _ = tx.send((addr.parse::<SocketAddr>().ok(), stdout));
                    return;
                }
                line.clear();
            }
        });
        match rx.recv_timeout(BOUND) {
            Ok((Some(addr), stdout)) => {
                process.addr = addr;
                process._stdout = Some(stdout);
                process
            }
            _ => panic!("the server process did not start"),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's open file descriptors.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The server's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Waits (bounded) until the server holds `want(fds)`; returns the count.
    async fn wait_fds(&self, what: &str, want: impl Fn(usize) -> bool) -> usize {
        let deadline = Instant::now() + BOUND;
        loop {
            let n = self.fds();
            if want(n) {
                return n;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the server holds {n} file descriptors"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Clients.

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// How a slow connection ended.
#[derive(Debug, Default)]
struct Ended {
    /// The server closed it (end of stream or reset).
    closed: bool,
    /// Header lines written before that.
    lines: usize,
    /// The response, if any.
    answer: String,
}

/// Sends a request line, then one header line every `every`, never ending
/// the head, until the server closes the connection.
async fn trickle(stream: TcpStream, every: Duration) -> Ended {
    let (mut read, mut write) = stream.into_split();
    let mut ended = Ended::default();
    let mut buf = [0u8; 1024];
    if write
        .write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n")
        .await
        .is_err()
    {
        ended.closed = true;
        return ended;
    }
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            n = read.read(&mut buf) => {
                match n {
                    Ok(n) if n > 0 => ended.answer.push_str(&String::from_utf8_lossy(&buf[..n])),
                    _ => {
                        ended.closed = true;
                        return ended;
                    }
                }
            }
            _ = tick.tick() => {
                let line = format!("x-slow-{}: {}\r\n", ended.lines, "y".repeat(16));
                if write.write_all(line.as_bytes()).await.is_err() {
                    ended.closed = true;
                    return ended;
                }
                ended.lines += 1;
            }
        }
    }
}

/// Sends `first` (perhaps nothing), then nothing more; returns once the
/// server closes the connection.
async fn silent(mut stream: TcpStream, first: &'static [u8]) -> Ended {
    let mut ended = Ended::default();
    if stream.write_all(first).await.is_err() {
        ended.closed = true;
        return ended;
    }
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => ended.answer.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => {
                ended.closed = true;
                return ended;
            }
        }
    }
}

/// A Socket.IO client over WebSocket from `from`, connected to `/`.
async fn sio_connect(from: Ipv4Addr, addr: SocketAddr) -> Ws {
    let stream = connect_from(from, addr).await;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let mut ws = raw::ws_open_on(&url, stream).await.unwrap();
    let open = recv_text(&mut ws).await;
    assert!(open.starts_with('0'), "{open}");
    ws.send(Message::text("40")).await.unwrap();
    let connected = recv_text(&mut ws).await;
    assert!(connected.starts_with("40{"), "{connected}");
    ws
}

/// A WebSocket handshake from `from` that the server must refuse: the
/// connection ends before any upgrade.
async fn sio_refused(from: Ipv4Addr, addr: SocketAddr) {
    let stream = connect_from(from, addr).await;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let handshake = tokio::time::timeout(BOUND, tokio_tungstenite::client_async(url, stream))
        .await
        .expect("the refusal comes at once");
    assert!(
        handshake.is_err(),
        "the WebSocket was accepted past the cap"
    );
}

/// Two Socket.IO clients in one conversation.
struct Conversation {
    app: App,
    a: Ws,
    b: Ws,
    next: u64,
}

impl Conversation {
    async fn open(app: App, from: Ipv4Addr, addr: SocketAddr) -> Conversation {
        let mut a = sio_connect(from, addr).await;
        let mut b = sio_connect(from, addr).await;
        if app == App::Chat {
            for (ws, name) in [(&mut a, "ana"), (&mut b, "bob")] {
                let join = format!(r#"420["join",{{"room":"lobby","name":"{name}"}}]"#);
                ws.send(Message::text(join)).await.unwrap();
                let ack = frame_where(ws, |t| t.starts_with("430[")).await;
                assert!(ack.contains(r#""ok":true"#), "{ack}");
            }
        }
        Conversation { app, a, b, next: 1 }
    }

    /// `a` sends a message: it is acknowledged, and `b` gets it.
    async fn exchange(&mut self) {
        let id = self.next;
        self.next += 1;
        let text = format!("hello {id}");
        let send = match self.app {
            App::Chat => format!(r#"42{id}["message",{{"room":"lobby","text":"{text}"}}]"#),
            App::Axum => format!(r#"42{id}["chat",{{"user":"ana","text":"{text}"}}]"#),
        };
        self.a.send(Message::text(send)).await.unwrap();
        let ack = frame_where(&mut self.a, |t| t.starts_with(&format!("43{id}["))).await;
        match self.app {
            App::Chat => assert!(ack.contains(r#""ok":true"#), "{ack}"),
            App::Axum => assert_eq!(ack, format!(r#"43{id}["delivered"]"#)),
        }
        let quoted = format!(r#""text":"{text}""#);
        let event = match self.app {
            App::Chat => r#"42["message","#,
            App::Axum => r#"42["chat","#,
        };
        frame_where(&mut self.b, |t| t.starts_with(event) && t.contains(&quoted)).await;
    }
}

/// The next text frame that satisfies `f` (others are skipped).
async fn frame_where(ws: &mut Ws, f: impl Fn(&str) -> bool) -> String {
    loop {
        let t = recv_text(ws).await;
        if f(&t) {
            return t;
        }
    }
}

/// Keeps `conversation` going until `stop`; counts the exchanges.
fn chat_throughout(
    mut conversation: Conversation,
    stop: Arc<AtomicBool>,
    exchanges: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<Conversation> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            conversation.exchange().await;
            exchanges.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        conversation
    })
}

/// A plain HTTP request on a connection of its own: the status.
async fn get_status(from: Ipv4Addr, addr: SocketAddr) -> u16 {
    let mut stream = connect_from(from, addr).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let reply = tokio::time::timeout(BOUND, raw::read_reply(&mut stream))
        .await
        .expect("an answer");
    reply.status
}

/// Runs the chat's event contract with fifty official JavaScript clients
/// (`interop/clients/chat-contract.mjs`) against `addr`; the future checks
/// its result. The node process is killed if the test fails first.
fn official_clients(addr: SocketAddr) -> impl std::future::Future<Output = ()> {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert!(
        workspace
            .join("interop/node_modules/socket.io-client/package.json")
            .exists(),
        "the official JavaScript client is missing: install Node.js, then run \
         `npm ci --prefix interop` at the workspace root"
    );
    let child = tokio::process::Command::new("node")
        .arg(workspace.join("interop/clients/chat-contract.mjs"))
        .arg(format!("http://{addr}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    async move {
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("the clients finish in time")
            .expect("the clients' output");
        let text = String::from_utf8_lossy(&out.stdout);
        let result: serde_json::Value = text
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        assert!(
            out.status.success() && result["ok"] == true,
            "the contract failed: {text}"
        );
        assert_eq!(result["clients"], 50);
        println!("fifty official clients followed the contract: {result}");
    }
}

// ---------------------------------------------------------------------------
// Slow clients.

/// How many slow connections each round opens: half trickle their heads,
/// the others send nothing, or stop in (or right after) the HTTP/2 preface.
const SLOW: usize = 1000;
/// How many rounds of `SLOW` connections: enough for the server's memory
/// to reach its high-water mark, and show that it stays there.
const ROUNDS: usize = 12;
/// The server's header read and first-bytes timeouts in these tests.
const TIMEOUT_MS: u64 = 1500;

/// One round: `SLOW` slow connections from four addresses, all closed by
/// the server, while the conversation goes on. Returns the most file
/// descriptors and memory the server held meanwhile.
async fn slow_round(server: &ServerProcess, round: usize) -> (usize, u64) {
    let addr = server.addr;
    let mut slow = JoinSet::new();
    let started = Instant::now();
    for i in 0..SLOW {
        // Spread over addresses, under the chat's cap per address.
        let from = Ipv4Addr::new(127, 0, 0, 10 + (i % 4) as u8);
        let stream = connect_from(from, addr).await;
        let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        match i % 10 {
            // Half trickle a request head.
            0 | 2 | 4 | 6 | 8 => slow.spawn(trickle(stream, Duration::from_millis(250))),
            // A few open as HTTP/2 clients do, and stop: in the preface,
            // or before their settings.
            7 => slow.spawn(silent(stream, &h2[..10])),
            9 => slow.spawn(silent(stream, h2)),
            // The others send nothing at all.
            _ => slow.spawn(silent(stream, b"")),
        };
    }
    let (mut peak_fds, mut peak_rss) = (0, 0);
    let mut ended = Vec::new();
    let all = tokio::time::timeout(BOUND, async {
        loop {
            peak_fds = peak_fds.max(server.fds());
            peak_rss = peak_rss.max(server.rss_kib());
            tokio::select! {
                next = slow.join_next() => match next {
                    Some(e) => ended.push(e.unwrap()),
                    None => return,
                },
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    })
    .await;
    assert!(
        all.is_ok(),
        "round {round}: {} of {SLOW} slow connections still open",
        SLOW - ended.len()
    );
    let trickled: Vec<_> = ended.iter().filter(|e| e.lines > 0).collect();
    println!(
        "round {round}: {SLOW} slow connections all closed {:.1} s after the first opened \
         (timeouts {TIMEOUT_MS} ms); tricklers sent {}..={} header lines; \
         the server held up to {peak_fds} fds and {peak_rss} KiB",
        started.elapsed().as_secs_f64(),
        trickled.iter().map(|e| e.lines).min().unwrap_or(0),
        trickled.iter().map(|e| e.lines).max().unwrap_or(0),
    );
    assert!(ended.iter().all(|e| e.closed));
    // The server read the heads for a while, and never answered them: it
    // closed them for their slowness, not for anything they sent.
    assert_eq!(trickled.len(), SLOW / 2, "every trickler got to send");
    assert!(
        trickled
            .iter()
            .all(|e| e.answer.is_empty() || e.answer.starts_with("HTTP/1.1 408")),
        "{:?}",
        trickled.iter().find(|e| !e.answer.is_empty())
    );
    (peak_fds, peak_rss)
}

async fn slow_clients_are_closed(app: App) {
    let server = ServerProcess::start(
        app,
        &[
            (ENV_HEADER_MS, TIMEOUT_MS.to_string()),
            (ENV_FIRST_MS, TIMEOUT_MS.to_string()),
        ],
    );
    let addr = server.addr;
    let conversation = Conversation::open(app, Ipv4Addr::LOCALHOST, addr).await;
    let stop = Arc::new(AtomicBool::new(false));
    let exchanges = Arc::new(AtomicUsize::new(0));
    let chatting = chat_throughout(conversation, stop.clone(), exchanges.clone());
    // A first exchange, then the server's resting state.
    raw::eventually("a first exchange", || exchanges.load(Ordering::Relaxed) > 0).await;
    let fds_before = server.fds();
    let rss_before = server.rss_kib();

    let mut rss_after = Vec::new();
    for round in 1..=ROUNDS {
        let during = exchanges.load(Ordering::Relaxed);
        // In the first round, fifty official JavaScript clients follow the
        // chat's whole event contract meanwhile.
        let contract = (app == App::Chat && round == 1).then(|| official_clients(addr));
        let (peak_fds, _) = slow_round(&server, round).await;
        if let Some(contract) = contract {
            contract.await;
        }
        assert!(
            peak_fds >= fds_before + SLOW / 4,
            "the slow connections were accepted and held a while: {peak_fds} fds at most"
        );
        assert!(
            exchanges.load(Ordering::Relaxed) > during,
            "the conversation went on during round {round}"
        );
        assert_eq!(get_status(Ipv4Addr::LOCALHOST, addr).await, 200);
        let fds = server
            .wait_fds("the slow connections' descriptors are given back", |n| {
                n <= fds_before
            })
            .await;
        assert_eq!(fds, fds_before);
        rss_after.push(server.rss_kib());
    }
    println!(
        "{}: {} exchanges; fds {fds_before} before, {fds_before} after; \
         VmRSS {rss_before} KiB before, {rss_after:?} KiB after each round",
        app.name(),
        exchanges.load(Ordering::Relaxed),
    );
    // Memory comes back to a level that rounds no longer raise. The first
    // rounds raise what the allocator and the runtime keep for reuse (their
    // high-water marks, reached ever more slowly); past them, a server that
    // kept half a KiB per connection would grow by 2 MiB over the last
    // four rounds (4000 connections).
    let last = rss_after[ROUNDS - 1];
    let earlier = rss_after[ROUNDS - 5];
    assert!(
        last < earlier + 2 * 1024,
        "the server grew by {} KiB over the last four rounds: {rss_after:?}",
        last.saturating_sub(earlier)
    );

    stop.store(true, Ordering::Relaxed);
    let mut conversation = tokio::time::timeout(BOUND, chatting)
        .await
        .expect("the conversation ends")
        .expect("the conversation never failed");
    conversation.exchange().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_closes_a_thousand_slow_connections_and_chats_on() {
    slow_clients_are_closed(App::Chat).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_app_with_the_layer_closes_a_thousand_slow_connections() {
    slow_clients_are_closed(App::Axum).await;
}

// ---------------------------------------------------------------------------
// Connection caps.

/// The caps of these tests.
const MAX: usize = 300;
const MAX_PER_IP: usize = 200;

/// Silent connections from `from`, each seen by the server.
///
/// `base` is what the server holds with only the connections in place: a
/// count read now could include a connection the server is still closing
/// (an answered `GET` a moment ago), and `base + n` would never come.
async fn hold(server: &ServerProcess, from: Ipv4Addr, n: usize, base: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(connect_from(from, server.addr).await);
    }
    server
        .wait_fds("the held connections are accepted", |fds| fds == base + n)
        .await;
    held
}

/// A new connection from `from` is refused at once: a 503 or nothing,
/// and the end of the connection, long before any timeout.
async fn refused(from: Ipv4Addr, addr: SocketAddr) {
    let stream = connect_from(from, addr).await;
    let ended = tokio::time::timeout(BOUND, silent(stream, b""))
        .await
        .expect("refused at once");
    assert!(ended.answer.starts_with("HTTP/1.1 503"), "{ended:?}");
}

async fn caps_refuse_at_once_and_recover(app: App) {
    // Timeouts far beyond the test: only the caps close anything.
    let server = ServerProcess::start(
        app,
        &[
            (ENV_HEADER_MS, "600000".to_owned()),
            (ENV_FIRST_MS, "600000".to_owned()),
            (ENV_MAX, MAX.to_string()),
            (ENV_MAX_PER_IP, MAX_PER_IP.to_string()),
        ],
    );
    let addr = server.addr;
    let local = Ipv4Addr::LOCALHOST;
    let (crowd, others, outsider, newcomer) = (
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 3),
        Ipv4Addr::new(127, 0, 0, 4),
        Ipv4Addr::new(127, 0, 0, 5),
    );
    // Two connections from 127.0.0.1.
    let mut conversation = Conversation::open(app, local, addr).await;
    conversation.exchange().await;
    let fds_before = server.fds();

    // One address fills its cap; its next connection is refused, others
    // still get in.
    let crowd_held = hold(&server, crowd, MAX_PER_IP, fds_before).await;
    refused(crowd, addr).await;
    assert_eq!(get_status(outsider, addr).await, 200);
    conversation.exchange().await;

    // The server fills up: everyone's next connection is refused.
    let others_held = hold(
        &server,
        others,
        MAX - MAX_PER_IP - 2,
        fds_before + crowd_held.len(),
    )
    .await;
    refused(outsider, addr).await;
    refused(others, addr).await;
    sio_refused(newcomer, addr).await;
    // The connections in place go on.
    conversation.exchange().await;
    println!(
        "{}: at the caps ({MAX} in all, {MAX_PER_IP} per address) the server holds {} fds \
         ({fds_before} before)",
        app.name(),
        server.fds()
    );

    // The crowd leaves: its places are free again, for it and for others.
    drop(crowd_held);
    server
        .wait_fds("the crowd's connections are gone", |n| {
            n <= fds_before + others_held.len()
        })
        .await;
    let mut newcomers = Conversation::open(app, newcomer, addr).await;
    newcomers.exchange().await;
    assert_eq!(get_status(crowd, addr).await, 200);
    conversation.exchange().await;

    drop((others_held, newcomers));
    let fds = server
        .wait_fds("every descriptor is given back", |n| n <= fds_before)
        .await;
    assert_eq!(fds, fds_before);
    conversation.exchange().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_refuses_connections_past_its_caps_and_recovers() {
    caps_refuse_at_once_and_recover(App::Chat).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_app_refuses_connections_past_its_caps_and_recovers() {
    caps_refuse_at_once_and_recover(App::Axum).await;
}
