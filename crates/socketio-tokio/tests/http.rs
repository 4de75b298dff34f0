//! The HTTP options on real sockets: CORS, `allow_request`, refused
//! upgrades, headers, mounting beside other routes, bare Engine.IO.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socketio_tokio::{Cors, EngineSocket, SocketIo};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

#[path = "common/raw.rs"]
mod raw;

use raw::Reply;

/// Sends one HTTP/1.1 request and reads the response (bounded).
async fn request(addr: SocketAddr, head: &str) -> Reply {
    raw::raw_request(addr, head.as_bytes()).await
}

async fn start(io: SocketIo) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { io.serve(listener).await });
    addr
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n")
}

#[tokio::test]
async fn polling_handshake_headers_and_cors() {
    let io = SocketIo::builder().cors(Cors::any()).build().unwrap();
    io.ns("/", |_s: socketio_tokio::Socket| async {});
    let addr = start(io).await;
    let r = request(
        addr,
        &get(
            "/socket.io/?EIO=4&transport=polling",
            "Origin: http://a.example\r\n",
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.body.starts_with("0{\"sid\":\""), "{}", r.body);
    assert!(r.body.contains("\"upgrades\":[\"websocket\"]"));

    let preflight = request(
        addr,
        "OPTIONS /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Origin: http://a.example\r\nAccess-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: content-type\r\n\r\n",
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("content-type")
    );
    assert!(
        preflight
            .header("access-control-allow-methods")
            .is_some_and(|m| m.contains("POST"))
    );
}

#[tokio::test]
async fn cors_allowlist_with_credentials() {
    let io = SocketIo::builder()
        .cors(Cors::origins(["http://good.example"]).credentials(true))
        .build()
        .unwrap();
    let addr = start(io).await;
    let good = request(
        addr,
        &get(
            "/socket.io/?EIO=4&transport=polling",
            "Origin: http://good.example\r\n",
        ),
    )
    .await;
    assert_eq!(
        good.header("access-control-allow-origin"),
        Some("http://good.example")
    );
    assert_eq!(
        good.header("access-control-allow-credentials"),
        Some("true")
    );
    let bad = request(
        addr,
        &get(
            "/socket.io/?EIO=4&transport=polling",
            "Origin: http://bad.example\r\n",
        ),
    )
    .await;
    assert_eq!(bad.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn allow_request_refuses_with_403_and_websockets_with_400() {
    let io = SocketIo::builder()
        .allow_request(|req| {
            std::future::ready(match req.headers.contains_key("x-ticket") {
                true => Ok(()),
                false => Err(String::new()),
            })
        })
        .build()
        .unwrap();
    let addr = start(io).await;
    let refused = request(addr, &get("/socket.io/?EIO=4&transport=polling", "")).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body, r#"{"code":4,"message":"Forbidden"}"#);
    let allowed = request(
        addr,
        &get("/socket.io/?EIO=4&transport=polling", "X-Ticket: 1\r\n"),
    )
    .await;
    assert_eq!(allowed.status, 200);
    let ws = request(
        addr,
        &get(
            "/socket.io/?EIO=4&transport=websocket",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        ),
    )
    .await;
    assert_eq!(ws.status, 400);
    assert_eq!(ws.body, "Forbidden");
}

#[tokio::test]
async fn protocol_errors_and_other_paths() {
    let io = SocketIo::new().unwrap();
    let addr = start(io).await;
    let unknown = request(
        addr,
        &get("/socket.io/?EIO=4&transport=polling&sid=nope", ""),
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body, r#"{"code":1,"message":"Session ID unknown"}"#);
    let ws = request(
        addr,
        &get(
            "/socket.io/?EIO=4&transport=websocket&sid=nope",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        ),
    )
    .await;
    assert_eq!(ws.status, 400);
    let other = request(addr, &get("/elsewhere", "")).await;
    assert_eq!(other.status, 404);
}

#[tokio::test]
async fn mounted_in_axum_beside_other_routes() {
    let io = SocketIo::new().unwrap();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "hello" }))
        .layer(io.layer());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let root = request(addr, &get("/", "")).await;
    assert_eq!(root.status, 200);
    assert_eq!(root.body, "hello");
    let sio = request(addr, &get("/socket.io/?EIO=4&transport=polling", "")).await;
    assert_eq!(sio.status, 200);
    assert!(sio.body.starts_with("0{"));
}

#[tokio::test]
async fn bare_engine_io_echoes_text_and_binary() {
    let io = SocketIo::builder()
        .build_engine(|mut socket: EngineSocket| async move {
            while let Some(m) = socket.recv().await {
                let _ = socket.send(m);
            }
        })
        .unwrap();
    assert_eq!(io.config().path, "/engine.io/");
    let addr = start(io).await;
    let work = async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/engine.io/?EIO=4&transport=websocket"),
            stream,
        )
        .await
        .unwrap();
        let open = ws.next().await.unwrap().unwrap();
        assert!(open.to_text().unwrap().starts_with("0{"));
        ws.send(Message::text("4hello")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("4hello"));
        ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::binary(vec![1u8, 2, 3])
        );
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .expect("echoes in time");
}

/// An opening handshake from `method` with `version` and `headers`: the
/// answer (reading its head and body; a refusal carries a length).
async fn handshake(addr: SocketAddr, method: &str, version: &str, headers: &str) -> Reply {
    let head = format!(
        "{method} /socket.io/?EIO=4&transport=websocket {version}\r\nHost: x\r\n{headers}\r\n"
    );
    request(addr, &head).await
}

#[tokio::test]
async fn an_opening_handshake_that_breaks_rfc_6455_is_refused() {
    let io = SocketIo::new().unwrap();
    io.ns("/", |_s: socketio_tokio::Socket| async {});
    let addr = start(io.clone()).await;
    const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    const VERSION: &str = "Sec-WebSocket-Version: 13\r\n";
    const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    let cases = [
        (
            "POST",
            format!("{UPGRADE}{KEY}{VERSION}Content-Length: 0\r\n"),
            405,
            "Invalid HTTP method",
        ),
        (
            "GET",
            format!("Upgrade: websocket\r\nConnection: keep-alive\r\n{KEY}{VERSION}"),
            400,
            "Invalid Connection header",
        ),
        (
            "GET",
            format!("{UPGRADE}{VERSION}"),
            400,
            "Missing or invalid Sec-WebSocket-Key header",
        ),
        (
            "GET",
            format!("{UPGRADE}Sec-WebSocket-Key: c2hvcnQ=\r\n{VERSION}"),
            400,
            "Missing or invalid Sec-WebSocket-Key header",
        ),
        (
            "GET",
            format!("{UPGRADE}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!=\r\n{VERSION}"),
            400,
            "Missing or invalid Sec-WebSocket-Key header",
        ),
        (
            "GET",
            format!("{UPGRADE}{KEY}{KEY}{VERSION}"),
            400,
            "Missing or invalid Sec-WebSocket-Key header",
        ),
        (
            "GET",
            format!("{UPGRADE}{KEY}"),
            400,
            "Missing or invalid Sec-WebSocket-Version header",
        ),
        (
            "GET",
            format!("{UPGRADE}{KEY}Sec-WebSocket-Version: 12\r\n"),
            400,
            "Missing or invalid Sec-WebSocket-Version header",
        ),
    ];
    for (method, headers, status, reason) in cases {
        let reply = handshake(addr, method, "HTTP/1.1", &headers).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (status, reason),
            "{method} with {headers:?}"
        );
        if reason.contains("Version") {
            // The versions this server speaks.
            assert_eq!(reply.header("sec-websocket-version"), Some("13"));
        }
    }
    // HTTP/1.0 cannot upgrade.
    let reply = handshake(addr, "GET", "HTTP/1.0", &format!("{UPGRADE}{KEY}{VERSION}")).await;
    assert_eq!(reply.status, 400);
    // No session was opened by any of them.
    assert_eq!(io.connection_count(), 0);

    // The same handshake, whole, is accepted (version 8 too, as the
    // reference's server takes it).
    for version in ["13", "8"] {
        let head = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n{UPGRADE}{KEY}\
             Sec-WebSocket-Version: {version}\r\n\r\n"
        );
        let mut stream = TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut buf = [0u8; 12];
        tokio::time::timeout(raw::WAIT, stream.read_exact(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(&buf, b"HTTP/1.1 101", "version {version}");
    }
}
