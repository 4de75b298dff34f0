//! The polling requests and WebSocket upgrades `SocketIo::serve` reads
//! itself, without hyper, on HTTP/1.1 connections: polling requests in
//! order when pipelined, bodies that come in pieces, the client's close,
//! the header read timeout, a WebSocket's first frames sent with its
//! upgrade, and every other request handed to hyper with the bytes
//! already read (the server's trace events say which served what).

#![allow(clippy::unwrap_used)]

#[path = "common/raw.rs"]
mod raw;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use raw::*;
use socketio_tokio::SocketIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Requests served without hyper, and connections handed to it, in this
/// binary.
static SERVED: AtomicUsize = AtomicUsize::new(0);
static HANDED: AtomicUsize = AtomicUsize::new(0);
/// WebSocket upgrade requests read without hyper.
static UPGRADES: AtomicUsize = AtomicUsize::new(0);

/// Counts the events of `socketio_tokio::http::h1`.
struct Count;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        if event.metadata().target() != "socketio_tokio::http::h1" {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        match message.0.as_str() {
            "polling request" => SERVED.fetch_add(1, Ordering::SeqCst),
            "the connection goes to hyper" => HANDED.fetch_add(1, Ordering::SeqCst),
            "websocket upgrade" => UPGRADES.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
    }
}

/// The tests of this file, one at a time (each reads the counts of its
/// own requests).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn counting() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::filter::Targets::new()
                    .with_target("socketio_tokio::http::h1", tracing::Level::TRACE),
            )
            .with(Count);
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

fn counts() -> (usize, usize) {
    (SERVED.load(Ordering::SeqCst), HANDED.load(Ordering::SeqCst))
}

/// A request on a kept-alive connection.
fn polling(method: &str, query: &str, body: &str) -> String {
    let mut req = format!("{method} /socket.io/?{query} HTTP/1.1\r\nHost: x\r\n");
    if method == "POST" {
        req.push_str("Content-Type: text/plain;charset=UTF-8\r\n");
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req
}

/// A kept-alive connection and what was read of it and not parsed.
struct Conn {
    stream: TcpStream,
    read: Vec<u8>,
}

impl Conn {
    async fn open(server: &Server) -> Conn {
        Conn {
            stream: TcpStream::connect(server.addr).await.unwrap(),
            read: Vec::new(),
        }
    }
}

async fn send(conn: &mut Conn, bytes: &str) {
    conn.stream.write_all(bytes.as_bytes()).await.unwrap();
}

/// The next answer on `conn` (answers may come several in one read).
async fn reply(conn: &mut Conn) -> Reply {
    let work = async {
        loop {
            if let Some(end) = conn.read.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&conn.read[..end]).into_owned();
                let mut lines = head.lines();
                let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        Some((n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    })
                    .collect();
                let len = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                if conn.read.len() >= end + 4 + len {
                    let body =
                        String::from_utf8_lossy(&conn.read[end + 4..end + 4 + len]).into_owned();
                    conn.read.drain(..end + 4 + len);
                    return Reply {
                        status: status.parse().unwrap(),
                        headers,
                        body,
                    };
                }
            }
            let mut chunk = [0u8; 65536];
            let n = conn.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed");
            conn.read.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(WAIT, work).await.expect("an answer")
}

/// The session id of an open packet's answer.
fn sid_of(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{r:?}");
    let open: serde_json::Value = serde_json::from_str(r.body.strip_prefix('0').unwrap()).unwrap();
    open["sid"].as_str().unwrap().to_owned()
}

/// A session opened and joined to `/` on `stream`, kept alive: its query.
async fn session_on(stream: &mut Conn) -> String {
    send(stream, &polling("GET", "EIO=4&transport=polling", "")).await;
    let q = format!(
        "EIO=4&transport=polling&sid={}",
        sid_of(&reply(stream).await)
    );
    send(stream, &polling("POST", &q, "40")).await;
    assert_eq!(reply(stream).await.body, "ok");
    send(stream, &polling("GET", &q, "")).await;
    let r = reply(stream).await;
    assert!(r.body.starts_with("40{\"sid\""), "{r:?}");
    q
}

/// This file's turn, a server, and a kept-alive connection to it with a
/// session joined to `/` (its query).
async fn with_session() -> (tokio::sync::MutexGuard<'static, ()>, Server, Conn, String) {
    counting();
    let serial = SERIAL.lock().await;
    let server = start().await;
    let mut conn = Conn::open(&server).await;
    let q = session_on(&mut conn).await;
    (serial, server, conn, q)
}

/// Whether the server closed `conn` within `within`.
async fn closed_within(conn: &mut Conn, within: Duration) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(within, conn.stream.read_to_end(&mut rest)).await,
        Ok(Ok(_))
    )
}

#[tokio::test]
async fn kept_alive_polling_requests_are_served_in_order() {
    counting();
    let _serial = SERIAL.lock().await;
    let server = start().await;
    let before = counts();
    let mut stream = Conn::open(&server).await;
    let q = session_on(&mut stream).await;
    // An echo and the poll that brings it back, in one write.
    let both = polling("POST", &q, "42[\"echo\",\"one\"]") + &polling("GET", &q, "");
    send(&mut stream, &both).await;
    let posted = reply(&mut stream).await;
    assert_eq!(
        (posted.status, posted.body.as_str()),
        (200, "ok"),
        "{posted:?}"
    );
    let polled = reply(&mut stream).await;
    assert_eq!(polled.body, "42[\"echo-back\",\"one\"]", "{polled:?}");
    assert_eq!(polled.header("content-length"), Some("21"));
    assert_eq!(
        polled.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(polled.header("cache-control"), Some("no-store"));
    assert_eq!(polled.header("connection"), None);
    let date = polled.header("date").unwrap();
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
    // Five requests, each served without hyper, on one connection.
    let after = counts();
    assert_eq!(after.0 - before.0, 5);
    assert_eq!(after.1, before.1);
    // The client asks for the close: answered, then closed.
    send(
        &mut stream,
        &format!("GET /socket.io/?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
    .await;
    server.io.emit("hello", &"all").unwrap();
    let r = reply(&mut stream).await;
    assert_eq!(r.body, "42[\"hello\",\"all\"]", "{r:?}");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed_within(&mut stream, WAIT).await);
}

#[tokio::test]
async fn a_socket_opened_here_knows_its_client_s_address() {
    // No hook reads the head here: the address reaches the socket all the
    // same, over long-polling and over a WebSocket.
    let (_serial, server, conn, _q) = with_session().await;
    let local = conn.stream.local_addr().unwrap();
    let sockets = server.io.sockets();
    assert_eq!(sockets.len(), 1);
    assert_eq!(sockets[0].handshake().remote_addr(), Some(local));
    let mut ws = Conn::open(&server).await;
    let local = ws.stream.local_addr().unwrap();
    send(&mut ws, &upgrade("EIO=4&transport=websocket", KEY)).await;
    let switched = reply(&mut ws).await;
    assert_eq!(switched.status, 101, "{switched:?}");
    assert!(next_text(&mut ws).await.starts_with("0{\"sid\""));
    ws.stream.write_all(&text_frame("40")).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40{"));
    let addresses: Vec<_> = server
        .io
        .sockets()
        .iter()
        .map(|s| s.handshake().remote_addr())
        .collect();
    assert_eq!(addresses.len(), 2);
    assert!(addresses.contains(&Some(local)), "{addresses:?}");
}

#[tokio::test]
async fn other_requests_go_to_hyper_with_what_was_read() {
    let (_serial, server, mut stream, q) = with_session().await;
    let before = counts();
    // A request for another path, and a polling request behind it in the
    // same write: hyper answers both, in order, and the connection stays.
    let both = "GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n".to_owned()
        + &polling("POST", &q, "42[\"echo\",\"two\"]");
    send(&mut stream, &both).await;
    assert_eq!(reply(&mut stream).await.status, 404);
    assert_eq!(reply(&mut stream).await.body, "ok");
    send(&mut stream, &polling("GET", &q, "")).await;
    assert_eq!(reply(&mut stream).await.body, "42[\"echo-back\",\"two\"]");
    let after = counts();
    assert_eq!(after.1 - before.1, 1, "one connection handed over");
    assert_eq!(after.0, before.0, "hyper served the rest");

    // A chunked body, HTTP/1.0, and a preflight go to hyper too.
    let mut chunked = Conn::open(&server).await;
    send(
        &mut chunked,
        &format!(
            "POST /socket.io/?{q} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
             10\r\n42[\"echo\",\"three\r\n2\r\n\"]\r\n0\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(reply(&mut chunked).await.body, "ok");
    send(&mut chunked, &polling("GET", &q, "")).await;
    assert_eq!(
        reply(&mut chunked).await.body,
        "42[\"echo-back\",\"three\"]"
    );
    let old = raw_request(
        server.addr,
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.0\r\nHost: x\r\n\r\n",
    )
    .await;
    sid_of(&old);
    assert_eq!(counts().1 - before.1, 3);
}

#[tokio::test]
async fn heads_over_the_limits_are_answered_by_hyper() {
    counting();
    let _serial = SERIAL.lock().await;
    let server = start().await;
    let before = counts();
    // More headers than are read here, fewer than the server's limit of
    // 100: hyper serves it.
    let many: String = (0..80).map(|i| format!("X-Filler-{i}: {i}\r\n")).collect();
    let r = raw_request(
        server.addr,
        format!("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n{many}\r\n")
            .as_bytes(),
    )
    .await;
    sid_of(&r);
    // A head over the server's 16 KiB: hyper's 431.
    let big = "a".repeat(20_000);
    let r = raw_request(
        server.addr,
        format!(
            "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 431, "{r:?}");
    assert_eq!(counts().1 - before.1, 2);
}

#[tokio::test]
async fn a_body_in_pieces_is_read_whole_and_the_connection_goes_on() {
    let (_serial, _server, mut stream, q) = with_session().await;
    let before = counts();
    let text = "x".repeat(200_000);
    let body = format!("42[\"echo\",\"{text}\"]");
    let request = polling("POST", &q, &body);
    for piece in request.as_bytes().chunks(70_000) {
        stream.stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reply(&mut stream).await.body, "ok");
    send(&mut stream, &polling("GET", &q, "")).await;
    let r = reply(&mut stream).await;
    assert_eq!(r.body, format!("42[\"echo-back\",\"{text}\"]"));
    let after = counts();
    assert_eq!((after.0 - before.0, after.1 - before.1), (2, 0));
}

#[tokio::test]
async fn a_client_that_leaves_its_poll_ends_its_session() {
    let (_serial, server, mut stream, q) = with_session().await;
    // The poll waits: nothing is queued for the session.
    send(&mut stream, &polling("GET", &q, "")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
    // As the reference: the poll's connection closed before its answer.
    server.log.wait_for("disconnect / transport error").await;
    let r = get(server.addr, &q).await;
    assert_eq!(r.status, 400, "{r:?}");
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_at_the_header_read_timeout() {
    counting();
    let _serial = SERIAL.lock().await;
    let timeout = Duration::from_millis(300);
    let server = start_with(SocketIo::builder().header_read_timeout(timeout)).await;
    let mut idle = Conn::open(&server).await;
    send(&mut idle, &polling("GET", "EIO=4&transport=polling", "")).await;
    sid_of(&reply(&mut idle).await);
    let mut slow = Conn::open(&server).await;
    send(
        &mut slow,
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost:",
    )
    .await;
    // Neither is closed early, both soon after the timeout.
    tokio::time::sleep(timeout / 3).await;
    send(&mut slow, " x\r\n").await;
    assert!(!closed_within(&mut idle, timeout / 3).await);
    assert!(closed_within(&mut idle, WAIT).await);
    assert!(closed_within(&mut slow, WAIT).await);
}

#[tokio::test]
async fn a_shutdown_answers_the_poll_then_closes_its_connection() {
    let (_serial, server, mut stream, q) = with_session().await;
    let mut idle = Conn::open(&server).await;
    send(&mut idle, &polling("GET", "EIO=4&transport=polling", "")).await;
    let idle_q = format!(
        "EIO=4&transport=polling&sid={}",
        sid_of(&reply(&mut idle).await)
    );
    // The poll waits for packets when the server shuts down.
    send(&mut stream, &polling("GET", &q, "")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let io = server.io.clone();
    let shutdown = tokio::spawn(async move { io.shutdown().await });
    // It gets the session's close packet; the other client's next poll
    // gets its own, on a connection kept open for it.
    let r = reply(&mut stream).await;
    assert_eq!(r.body, "1", "{r:?}");
    send(&mut idle, &polling("GET", &idle_q, "")).await;
    let r = reply(&mut idle).await;
    assert!(r.body.ends_with('1'), "{r:?}");
    // With no session left, the shutdown ends, and both connections close
    // then, well before the shutdown timeout (10 s).
    tokio::time::timeout(WAIT, shutdown).await.unwrap().unwrap();
    let soon = Duration::from_secs(5);
    assert!(closed_within(&mut stream, soon).await);
    assert!(closed_within(&mut idle, soon).await);
}

/// A WebSocket upgrade request for `query`, with the key of RFC 6455's
/// example.
fn upgrade(query: &str, key: &str) -> String {
    format!(
        "GET /socket.io/?{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A client's text frame (masked, with a zero mask) of a short `text`.
fn text_frame(text: &str) -> Vec<u8> {
    assert!(text.len() < 126);
    let mut frame = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(text.as_bytes());
    frame
}

/// The next text frame the server sent on `conn` (unmasked, short).
async fn next_text(conn: &mut Conn) -> String {
    let work = async {
        loop {
            if conn.read.len() >= 2 {
                assert_eq!(conn.read[0], 0x81, "a whole text frame");
                let len = usize::from(conn.read[1]);
                assert!(len < 126);
                if conn.read.len() >= 2 + len {
                    let text = String::from_utf8(conn.read[2..2 + len].to_vec()).unwrap();
                    conn.read.drain(..2 + len);
                    return text;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = conn.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed");
            conn.read.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(WAIT, work).await.expect("a frame")
}

/// An `echo` of `text` over the WebSocket on `conn`, answered.
async fn assert_echo_over(conn: &mut Conn, text: &str) {
    let event = format!("42[\"echo\",\"{text}\"]");
    conn.stream.write_all(&text_frame(&event)).await.unwrap();
    assert_eq!(
        next_text(conn).await,
        format!("42[\"echo-back\",\"{text}\"]")
    );
}

#[tokio::test]
async fn websocket_upgrades_are_served_without_hyper() {
    let (_serial, server, mut polled, q) = with_session().await;
    let before = counts();
    let upgrades = UPGRADES.load(Ordering::SeqCst);

    // A new session's WebSocket, its first frame (the connect to `/`)
    // sent with the upgrade request.
    let mut ws = Conn::open(&server).await;
    let mut bytes = upgrade("EIO=4&transport=websocket", KEY).into_bytes();
    bytes.extend(text_frame("40"));
    ws.stream.write_all(&bytes).await.unwrap();
    let r = reply(&mut ws).await;
    assert_eq!(r.status, 101, "{r:?}");
    assert_eq!(r.header("upgrade"), Some("websocket"));
    assert_eq!(r.header("connection"), Some("Upgrade"));
    // RFC 6455, section 1.3.
    assert_eq!(
        r.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(r.header("content-length"), None);
    assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
    assert!(next_text(&mut ws).await.starts_with("0{\"sid\""));
    assert!(next_text(&mut ws).await.starts_with("40{\"sid\""));
    assert_echo_over(&mut ws, "ws").await;

    // The polling session's upgrade, on a connection of its own.
    let mut up = Conn::open(&server).await;
    let query = q.replace("transport=polling", "transport=websocket");
    send(&mut up, &upgrade(&query, KEY)).await;
    assert_eq!(reply(&mut up).await.status, 101);
    up.stream.write_all(&text_frame("2probe")).await.unwrap();
    assert_eq!(next_text(&mut up).await, "3probe");
    // A poll while it upgrades is answered with a noop; then the upgrade
    // is done.
    send(&mut polled, &polling("GET", &q, "")).await;
    assert_eq!(reply(&mut polled).await.body, "6");
    up.stream.write_all(&text_frame("5")).await.unwrap();
    assert_echo_over(&mut up, "up").await;

    // A refused upgrade is answered as hyper answers it, and the
    // connection serves the next request.
    let mut refused = Conn::open(&server).await;
    let bad = upgrade("EIO=4&transport=websocket", "short") + &polling("GET", &q, "");
    send(&mut refused, &bad).await;
    let r = reply(&mut refused).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Missing or invalid Sec-WebSocket-Key header")
    );
    assert_eq!(
        reply(&mut refused).await.status,
        400,
        "the session upgraded"
    );

    assert_eq!(UPGRADES.load(Ordering::SeqCst) - upgrades, 3);
    assert_eq!(counts().1, before.1, "nothing handed to hyper");
}
