//! Raw clients for the hardening tests: HTTP/1.1 over a bare `TcpStream`
//! and WebSocket through tokio-tungstenite, speaking the wire formats by
//! hand, so that they can send what no friendly client would.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socketio_tokio::{RawArgs, Socket, SocketIo, SocketIoBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[path = "log.rs"]
mod log;
pub use log::Log;

/// How long any single wait may take: generous, for a loaded machine.
pub const WAIT: Duration = Duration::from_secs(20);

static PANICS: AtomicUsize = AtomicUsize::new(0);
static INIT: Once = Once::new();

/// Shows the server's tracing output in a failing test, and counts panics
/// on any thread (a server task's panic would otherwise go unseen).
pub fn init() {
    INIT.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "socketio_tokio=debug".into()),
            )
            .try_init();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The tests' own assertions do not count: only the server's.
            let ours = info.location().is_some_and(|l| l.file().contains("tests/"));
            if !ours {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// How many panics outside the tests' own code happened so far, in this
/// test binary.
pub fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}

/// A server on 127.0.0.1:0 with a small application: `/` and `/admin`
/// echo (`echo` -> `echo-back`), `count` acknowledges the length of its
/// array argument, `join` joins a room; every disconnect is logged as
/// `disconnect <nsp> <reason>`.
pub struct Server {
    pub io: SocketIo,
    pub addr: SocketAddr,
    pub log: Log,
}

impl Server {
    pub fn url(&self, query: &str) -> String {
        format!("http://{}/socket.io/?{query}", self.addr)
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/socket.io/?{query}", self.addr)
    }
}

pub fn app(io: &SocketIo, log: &Log) {
    for nsp in ["/", "/admin"] {
        let log = log.clone();
        io.ns(nsp, move |socket: Socket| {
            let log = log.clone();
            async move {
                socket.on(
                    "echo",
                    |socket: Socket, RawArgs(args): RawArgs| async move {
                        socket.emit_raw("echo-back", args)
                    },
                );
                socket.on(
                    "count",
                    |socketio_tokio::Data(items): socketio_tokio::Data<Vec<serde_json::Value>>,
                     ack: socketio_tokio::AckSender| async move {
                        ack.send(&items.len())
                    },
                );
                socket.on(
                    "join",
                    |socket: Socket,
                     socketio_tokio::Data(room): socketio_tokio::Data<String>,
                     ack: socketio_tokio::AckSender| async move {
                        socket.join(room);
                        ack.send(&())
                    },
                );
                let l = log.clone();
                socket.on_disconnect(
                    move |socket: Socket, reason: socketio_tokio::DisconnectReason| {
                        let l = l.clone();
                        async move { l.push(format!("disconnect {} {reason}", socket.ns())) }
                    },
                );
            }
        });
    }
}

pub async fn start_with(builder: SocketIoBuilder) -> Server {
    init();
    let io = builder.build().unwrap();
    let log = Log::default();
    app(&io, &log);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let io2 = io.clone();
    tokio::spawn(async move { io2.serve(listener).await });
    Server { io, addr, log }
}

pub async fn start() -> Server {
    start_with(SocketIo::builder()).await
}

/// A response: status, lowercase headers, body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a JSON error `{"code":code,"message":message}` with `status`.
    pub fn assert_error(&self, status: u16, code: u64, message: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let v: serde_json::Value =
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"));
        assert_eq!(
            v,
            serde_json::json!({ "code": code, "message": message }),
            "{self:?}"
        );
    }
}

/// Sends raw bytes as one HTTP/1.1 request (it should say
/// `Connection: close`) and reads the response.
pub async fn raw_request(addr: SocketAddr, bytes: &[u8]) -> Reply {
    let work = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        read_reply(&mut stream).await
    };
    tokio::time::timeout(WAIT, work)
        .await
        .expect("the server answers")
}

/// Reads one response from `stream` (by Content-Length, or to the end).
pub async fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n: usize = stream.read(&mut chunk).await.unwrap_or_default();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                buf.truncate(end + 4 + len);
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One request with `method` to the Engine.IO path with `query`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    query: &str,
    headers: &str,
    body: &[u8],
) -> Reply {
    let mut req = format!(
        "{method} /socket.io/?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}"
    )
    .into_bytes();
    if method == "POST" || !body.is_empty() {
        req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    raw_request(addr, &req).await
}

pub async fn get(addr: SocketAddr, query: &str) -> Reply {
    request(addr, "GET", query, "", b"").await
}

pub async fn post(addr: SocketAddr, query: &str, body: &[u8]) -> Reply {
    request(
        addr,
        "POST",
        query,
        "Content-Type: text/plain;charset=UTF-8\r\n",
        body,
    )
    .await
}

/// A polling handshake: the session id.
pub async fn polling_open(addr: SocketAddr) -> String {
    let r = get(addr, "EIO=4&transport=polling").await;
    assert_eq!(r.status, 200, "{r:?}");
    let open: serde_json::Value = serde_json::from_str(r.body.strip_prefix('0').unwrap()).unwrap();
    open["sid"].as_str().unwrap().to_owned()
}

/// A polling session joined to `/` (CONNECT answered).
pub async fn polling_connect(addr: SocketAddr) -> String {
    let sid = polling_open(addr).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    assert_eq!(post(addr, &q, b"40").await.body, "ok");
    let r = get(addr, &q).await;
    assert!(r.body.starts_with("40{\"sid\""), "{r:?}");
    sid
}

pub type Ws = WebSocketStream<TcpStream>;

/// Opens a WebSocket to `url` (its HTTP refusal as `Err(status)`).
pub async fn ws_open(url: &str) -> Result<Ws, u16> {
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let stream = TcpStream::connect(addr).await.unwrap();
    ws_open_on(url, stream).await
}

/// Opens a WebSocket to `url` over `stream`.
pub async fn ws_open_on(url: &str, stream: TcpStream) -> Result<Ws, u16> {
    // The client accepts any size: the server is the one under test.
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    match tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)),
    )
    .await
    .expect("the upgrade is answered")
    {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("websocket handshake: {e}"),
    }
}

/// The next text frame (pings are answered with pongs on the way).
pub async fn recv_text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a frame");
        match msg {
            Message::Text(t) if t.as_str() == "2" => ws.send(Message::text("3")).await.unwrap(),
            Message::Text(t) => return t.as_str().to_owned(),
            Message::Close(_) => panic!("closed while waiting for a text frame"),
            _ => {}
        }
    }
}

/// Waits until the server closes `ws`; returns the text frames received
/// meanwhile (pings are answered).
pub async fn expect_closed(ws: &mut Ws) -> Vec<String> {
    let mut texts = Vec::new();
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Text(t)) if t.as_str() == "2" => {
                    let _ = ws.send(Message::text("3")).await;
                }
                Ok(Message::Text(t)) => texts.push(t.as_str().to_owned()),
                Ok(Message::Close(_)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server did not close; got {texts:?}");
    texts
}

/// A WebSocket session: the open packet read, the engine sid.
pub async fn ws_engine(server: &Server) -> (Ws, String) {
    let mut ws = ws_open(&server.ws_url("EIO=4&transport=websocket"))
        .await
        .unwrap();
    let open = recv_text(&mut ws).await;
    let v: serde_json::Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    (ws, v["sid"].as_str().unwrap().to_owned())
}

/// A WebSocket session joined to `/`: (socket, engine sid, socket id).
pub async fn ws_connect(server: &Server) -> (Ws, String, String) {
    let (mut ws, sid) = ws_engine(server).await;
    ws.send(Message::text("40")).await.unwrap();
    let connected = recv_text(&mut ws).await;
    let v: serde_json::Value = serde_json::from_str(connected.strip_prefix("40").unwrap()).unwrap();
    (ws, sid, v["sid"].as_str().unwrap().to_owned())
}

/// Asserts that `ws` (joined to `/`) still gets its echo.
pub async fn assert_echo(ws: &mut Ws, text: &str) {
    ws.send(Message::text(format!("42[\"echo\",\"{text}\"]")))
        .await
        .unwrap();
    assert_eq!(recv_text(ws).await, format!("42[\"echo-back\",\"{text}\"]"));
}

/// The resident set size of this process, from /proc/self/status.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Polls `f` until it holds (bounded).
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let ok = tokio::time::timeout(WAIT * 3, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "never: {what}");
}
