//! Admission: the `Origin` allowlist on both transports, the
//! `allow_request` hook, session limits (in total and per address), and
//! the HTTP header limits of the standalone server.

#![allow(clippy::unwrap_used)]

#[path = "common/raw.rs"]
mod raw;

use std::net::SocketAddr;

use raw::*;
use socketio_tokio::SocketIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const HANDSHAKE: &str = "EIO=4&transport=polling";

async fn get_with(addr: SocketAddr, query: &str, headers: &str) -> Reply {
    request(addr, "GET", query, headers, b"").await
}

/// A WebSocket upgrade with extra headers: the status of the answer.
async fn ws_status(addr: SocketAddr, query: &str, headers: &str) -> u16 {
    let head = format!(
        "GET /socket.io/?{query} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{headers}\r\n"
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let reply = tokio::time::timeout(WAIT, read_head(&mut stream))
        .await
        .expect("an answer");
    reply.status
}

/// Reads a response head only (an upgrade's answer has no body).
async fn read_head(stream: &mut TcpStream) -> Reply {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        headers: Vec::new(),
        body: String::new(),
    }
}

#[tokio::test]
async fn origin_allowlist_on_both_transports() {
    let server = start_with(SocketIo::builder().allowed_origins(["https://good.example"])).await;
    let (mut healthy, _, _) = ws_connect(&server).await;
    let evil = "Origin: https://evil.example\r\n";
    let good = "Origin: https://good.example\r\n";
    get_with(server.addr, HANDSHAKE, evil)
        .await
        .assert_error(403, 4, "Forbidden");
    assert_eq!(get_with(server.addr, HANDSHAKE, good).await.status, 200);
    // Without an Origin (not a browser): served.
    assert_eq!(get(server.addr, HANDSHAKE).await.status, 200);
    // Requests of an existing session are checked too.
    let sid = polling_connect(server.addr).await;
    let q = format!("{HANDSHAKE}&sid={sid}");
    request(
        server.addr,
        "POST",
        &q,
        &format!("{evil}Content-Type: text/plain\r\n"),
        b"42[\"echo\",1]",
    )
    .await
    .assert_error(403, 4, "Forbidden");
    // WebSocket upgrades: refused with a plain 400.
    assert_eq!(
        ws_status(server.addr, "EIO=4&transport=websocket", evil).await,
        400
    );
    assert_eq!(
        ws_status(server.addr, "EIO=4&transport=websocket", good).await,
        101
    );
    assert_eq!(
        ws_status(
            server.addr,
            &format!("EIO=4&transport=websocket&sid={sid}"),
            evil
        )
        .await,
        400
    );
    assert_echo(&mut healthy, "after").await;
    assert_eq!(panics(), 0);
}

#[tokio::test]
async fn allow_request_sees_the_request_head() {
    let server = start_with(SocketIo::builder().allow_request(|req| {
        let ok = req
            .headers
            .get("x-token")
            .is_some_and(|v| v.as_bytes() == b"secret");
        std::future::ready(if ok { Ok(()) } else { Err(String::new()) })
    }))
    .await;
    get(server.addr, HANDSHAKE)
        .await
        .assert_error(403, 4, "Forbidden");
    get_with(server.addr, HANDSHAKE, "x-token: wrong\r\n")
        .await
        .assert_error(403, 4, "Forbidden");
    assert_eq!(
        get_with(server.addr, HANDSHAKE, "x-token: secret\r\n")
            .await
            .status,
        200
    );
    assert_eq!(
        ws_status(server.addr, "EIO=4&transport=websocket", "").await,
        400
    );
    assert_eq!(
        ws_status(
            server.addr,
            "EIO=4&transport=websocket",
            "x-token: secret\r\n"
        )
        .await,
        101
    );
    assert_eq!(panics(), 0);
}

#[tokio::test]
async fn a_limit_on_sessions() {
    let server = start_with(SocketIo::builder().max_sessions(2)).await;
    let (mut healthy, _, _) = ws_connect(&server).await;
    let sid = polling_open(server.addr).await;
    get(server.addr, HANDSHAKE)
        .await
        .assert_error(403, 4, "Forbidden");
    assert_eq!(
        ws_status(server.addr, "EIO=4&transport=websocket", "").await,
        400
    );
    // A session that ends gives its place back.
    let q = format!("{HANDSHAKE}&sid={sid}");
    assert_eq!(post(server.addr, &q, b"1").await.body, "ok");
    eventually("a place is free", || server.io.task_count() < 2).await;
    assert_eq!(get(server.addr, HANDSHAKE).await.status, 200);
    assert_echo(&mut healthy, "after").await;
    assert_eq!(panics(), 0);
}

/// A handshake from `local` (another loopback address).
async fn handshake_from(local: &str, server: SocketAddr) -> Reply {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    stream
        .write_all(
            format!("GET /socket.io/?{HANDSHAKE} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::timeout(WAIT, read_reply(&mut stream))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_limit_on_sessions_per_address() {
    let server = start_with(SocketIo::builder().max_sessions_per_ip(2)).await;
    assert_eq!(handshake_from("127.0.0.1", server.addr).await.status, 200);
    assert_eq!(handshake_from("127.0.0.1", server.addr).await.status, 200);
    handshake_from("127.0.0.1", server.addr)
        .await
        .assert_error(403, 4, "Forbidden");
    // Another address has places of its own.
    assert_eq!(handshake_from("127.0.0.2", server.addr).await.status, 200);
    assert_eq!(server.io.connection_count(), 3);
    assert_eq!(panics(), 0);
}

#[tokio::test]
async fn header_limits() {
    let server = start_with(
        SocketIo::builder()
            .max_header_size(16 * 1024)
            .max_headers(50),
    )
    .await;
    let (mut healthy, _, _) = ws_connect(&server).await;
    let big = format!("x-big: {}\r\n", "a".repeat(20 * 1024));
    let r = get_with(server.addr, HANDSHAKE, &big).await;
    assert_eq!(r.status, 431, "{r:?}");
    let many: String = (0..80).map(|i| format!("x-h{i}: v\r\n")).collect();
    let r = get_with(server.addr, HANDSHAKE, &many).await;
    assert_eq!(r.status, 431, "{r:?}");
    // Within the limits: served.
    let some: String = (0..20).map(|i| format!("x-h{i}: v\r\n")).collect();
    assert_eq!(get_with(server.addr, HANDSHAKE, &some).await.status, 200);
    assert_echo(&mut healthy, "after").await;
    assert_eq!(panics(), 0);
}

#[tokio::test]
async fn the_header_read_timeout_spares_held_polls_and_websockets() {
    use std::time::Duration;
    let server = start_with(
        SocketIo::builder()
            .header_read_timeout(Duration::from_millis(300))
            .ping_interval(Duration::from_millis(1200))
            .ping_timeout(Duration::from_secs(5)),
    )
    .await;
    let (mut ws, _, _) = ws_connect(&server).await;
    let sid = polling_connect(server.addr).await;
    // Held longer than the header timeout, answered by the ping.
    let r = get(server.addr, &format!("{HANDSHAKE}&sid={sid}")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "2"), "{r:?}");
    // The WebSocket, idle as long, still works.
    assert_echo(&mut ws, "after").await;
    // A client that never finishes its request head is disconnected.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"GET /socket.io/?EIO=4").await.unwrap();
    let cut = tokio::time::timeout(WAIT, async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 512];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(cut.is_ok(), "the slow client was not disconnected");
    assert_eq!(panics(), 0);
}
