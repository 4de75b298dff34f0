//! Servers that misbehave, scripted over raw TCP: a server that stops answering, sends garbage,
//! oversized bodies or too many attachments. The client disconnects with a reason and tries
//! again; it never panics.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use socketio_client::{DisconnectReason, ManagerEvent, Transports};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What the scripted server answers to a request: a body, or nothing (the request is held).
type Script = Arc<dyn Fn(&Request) -> Option<String> + Send + Sync>;

/// A request the scripted server read.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    body: String,
    /// How many handshakes (GETs without a sid) came before this request, this one included.
    handshakes: usize,
}

/// Serves `script` on a free port until the test ends; returns the port.
async fn scripted(script: Script) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(Mutex::new(0usize));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let script = script.clone();
            let handshakes = handshakes.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let mut words = head.split_whitespace();
                let method = words.next().unwrap_or_default().to_owned();
                let target = words.next().unwrap_or_default().to_owned();
                let handshakes = {
                    let mut h = handshakes.lock().unwrap();
                    if method == "GET" && !target.contains("sid=") {
                        *h += 1;
                    }
                    *h
                };
                let request = Request {
                    method,
                    target,
                    body: String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string(),
                    handshakes,
                };
                match script(&request) {
                    Some(body) => {
                        let response = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(response.as_bytes()).await;
                    }
                    None => {
                        // Held: the connection stays open, silent.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                }
            });
        }
    });
    port
}

const OPEN: &str =
    r#"0{"sid":"s","upgrades":[],"pingInterval":200,"pingTimeout":200,"maxPayload":100000}"#;

/// Connects to `script` over polling with quick reconnections; returns the reasons of the
/// disconnections and the manager's events as they come.
async fn client(
    script: Script,
    max_incoming: usize,
) -> (socketio_client::Socket, mpsc::UnboundedReceiver<String>) {
    let port = scripted(script).await;
    let (tx, rx) = mpsc::unbounded_channel();
    let (t1, t2, t3, t4) = (tx.clone(), tx.clone(), tx.clone(), tx);
    let socket = socketio_client::connect(&format!("http://127.0.0.1:{port}"))
        .transports(Transports::Polling)
        .reconnection_delay(Duration::from_millis(50))
        .reconnection_delay_max(Duration::from_millis(100))
        .max_incoming(max_incoming)
        .on_connect(move |_| {
            let _ = t1.send("connect".into());
        })
        .on_disconnect(move |_, reason: DisconnectReason| {
            let _ = t2.send(format!("disconnect {reason}"));
        })
        .on_connect_error(move |_, e| {
            let _ = t3.send(format!("connect_error {e}"));
        })
        .on_manager(move |e: ManagerEvent| {
            let _ = t4.send(format!("{e:?}"));
        })
        .connect()
        .unwrap();
    (socket, rx)
}

/// Waits for `line`; returns everything seen up to it.
async fn until(rx: &mut mpsc::UnboundedReceiver<String>, line: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(l) = rx.recv().await {
            let done = l == line;
            seen.push(l);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(found, Ok(true)), "no {line:?} in {seen:?}");
    seen
}

/// The first session connects `/`, then its next poll gets `then`; later sessions connect and
/// hold their polls.
fn first_poll_gets(then: &'static str) -> Script {
    let polls: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    Arc::new(move |r: &Request| {
        if r.method == "POST" {
            return Some("ok".into());
        }
        if !r.target.contains("sid=") {
            return Some(OPEN.into());
        }
        // Per session: the first poll answers the CONNECT; the one after, `then`.
        let mut polls = polls.lock().unwrap();
        if polls.len() < r.handshakes {
            polls.resize(r.handshakes, 0);
        }
        polls[r.handshakes - 1] += 1;
        match (polls[r.handshakes - 1], r.handshakes) {
            (1, _) => Some(r#"40{"sid":"x"}"#.into()),
            (2, 1) => Some(then.into()),
            _ => None,
        }
    })
}

#[tokio::test]
async fn a_server_that_stops_answering_pings_times_out_and_the_client_reconnects() {
    // Every poll after the CONNECT answer is held: no ping comes.
    let answered = Mutex::new(0usize);
    let script: Script = Arc::new(move |r: &Request| {
        if r.method == "POST" {
            return Some("ok".into());
        }
        if !r.target.contains("sid=") {
            return Some(OPEN.into());
        }
        let mut answered = answered.lock().unwrap();
        (*answered < r.handshakes).then(|| {
            *answered = r.handshakes;
            r#"40{"sid":"x"}"#.to_owned()
        })
    });
    let (socket, mut rx) = client(script, 1 << 20).await;
    until(&mut rx, "connect").await;
    let seen = until(&mut rx, "disconnect ping timeout").await;
    assert_eq!(seen, ["disconnect ping timeout"]);
    until(&mut rx, "Reconnect(1)").await;
    until(&mut rx, "connect").await;
    socket.close();
}

#[tokio::test]
async fn garbage_from_the_server_is_a_parse_error() {
    let (socket, mut rx) = client(first_poll_gets("42[\"unterminated"), 1 << 20).await;
    until(&mut rx, "disconnect parse error").await;
    until(&mut rx, "Reconnect(1)").await;
    until(&mut rx, "connect").await;
    socket.close();
}

#[tokio::test]
async fn too_many_attachments_are_a_parse_error() {
    let (socket, mut rx) = client(first_poll_gets("4599-[\"x\"]"), 1 << 20).await;
    until(&mut rx, "disconnect parse error").await;
    until(&mut rx, "Reconnect(1)").await;
    socket.close();
}

#[tokio::test]
async fn an_oversized_body_is_a_transport_error() {
    let big: &'static str =
        Box::leak(format!("42[\"x\",\"{}\"]", "y".repeat(5000)).into_boxed_str());
    let (socket, mut rx) = client(first_poll_gets(big), 1000).await;
    until(&mut rx, "disconnect transport error").await;
    until(&mut rx, "Reconnect(1)").await;
    socket.close();
}

#[tokio::test]
async fn a_handshake_that_is_not_one_fails_the_attempt() {
    let once = Mutex::new(false);
    let script: Script = Arc::new(move |r: &Request| {
        if r.handshakes == 1 {
            Some("this is not engine.io".into())
        } else if r.method == "POST" {
            Some("ok".into())
        } else if !r.target.contains("sid=") {
            Some(OPEN.into())
        } else if r.body.is_empty() {
            let mut once = once.lock().unwrap();
            (!*once).then(|| {
                *once = true;
                r#"40{"sid":"x"}"#.to_owned()
            })
        } else {
            None
        }
    });
    let (socket, mut rx) = client(script, 1 << 20).await;
    until(&mut rx, "connect_error connection failed: parse error").await;
    until(&mut rx, "connect").await;
    socket.close();
}
