//! `HttpServer` serving an axum application with the Socket.IO layer: the
//! limits of a request head, the client's address in every request, and
//! the graceful shutdown.

#![allow(clippy::unwrap_used)]

#[path = "common/raw.rs"]
mod raw;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Extension;
use axum::routing::get;
use raw::{WAIT, raw_request};
use socketio_tokio::{HttpServer, RemoteAddr, SocketIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An axum application on an `HttpServer`: `GET /` answers the client's
/// address, `GET /forever` never answers; Socket.IO allows one session per
/// address.
struct App {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn start(server: HttpServer) -> App {
    raw::init();
    let io = SocketIo::builder().max_sessions_per_ip(1).build().unwrap();
    let app = axum::Router::new()
        .route(
            "/",
            get(|Extension(RemoteAddr(from)): Extension<RemoteAddr>| async move {
                from.to_string()
            }),
        )
        .route("/forever", get(std::future::pending::<&'static str>))
        .layer(io.layer());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve_until(listener, app, async move {
                let _ = stopped.await;
                io.shutdown().await;
            })
            .await
            .unwrap();
    });
    App { addr, stop, task }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_over_the_limits_get_431() {
    let app = start(HttpServer::new().max_headers(20).max_header_size(8 * 1024)).await;
    let mut many = String::from("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n");
    for i in 0..30 {
        many.push_str(&format!("x-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(raw_request(app.addr, many.as_bytes()).await.status, 431);
    let big = format!(
        "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-big: {}\r\n\r\n",
        "z".repeat(16 * 1024)
    );
    assert_eq!(raw_request(app.addr, big.as_bytes()).await.status, 431);
    let fine = raw_request(
        app.addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(fine.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_carries_the_clients_address() {
    let app = start(HttpServer::new()).await;
    let reply = raw_request(
        app.addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
    let from: SocketAddr = reply.body.parse().unwrap();
    assert!(from.ip().is_loopback(), "{from}");
    // The layer sees it too: one session per address.
    let first = raw::polling_open(app.addr).await;
    assert!(!first.is_empty());
    raw::get(app.addr, "EIO=4&transport=polling")
        .await
        .assert_error(403, 4, "Forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stops_when_its_signal_ends() {
    let app = start(HttpServer::new().shutdown_timeout(Duration::from_secs(5))).await;
    let reply = raw_request(
        app.addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
    let _ = app.stop.send(());
    tokio::time::timeout(WAIT, app.task)
        .await
        .expect("the server returns")
        .unwrap();
    let refused = tokio::net::TcpStream::connect(app.addr).await;
    assert!(refused.is_err(), "still listening after the shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_still_open_past_the_shutdown_timeout_are_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = start(HttpServer::new().shutdown_timeout(Duration::from_millis(300))).await;
    let mut stuck = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stuck
        .write_all(b"GET /forever HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    // Let the request reach its handler.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = app.stop.send(());
    tokio::time::timeout(WAIT, app.task)
        .await
        .expect("the server returns")
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, stuck.read_to_end(&mut rest))
        .await
        .expect("the connection is closed");
    assert!(read.is_err() || rest.is_empty(), "{rest:?}");
}

/// Opens an HTTP/2 connection with prior knowledge and sends one request
/// for `path` (HPACK: GET, http, then the path).
async fn h2_request(addr: SocketAddr, path: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // An empty SETTINGS frame.
    bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    // HEADERS on stream 1, END_STREAM | END_HEADERS.
    let mut block = vec![0x82, 0x86];
    if path == b"/" {
        block.push(0x84);
    } else {
        block.push(0x04);
        block.push(u8::try_from(path.len()).unwrap());
        block.extend_from_slice(path);
    }
    bytes.extend_from_slice(&[0, 0, u8::try_from(block.len()).unwrap(), 1, 5, 0, 0, 0, 1]);
    bytes.extend_from_slice(&block);
    stream.write_all(&bytes).await.unwrap();
    stream
}

/// Reads until the server closes the connection (true) or `within` passes.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_idle_after_its_requests_is_closed_but_not_one_with_a_request_in_flight()
 {
    let app = start(HttpServer::new().header_read_timeout(Duration::from_secs(1))).await;
    let mut idle = h2_request(app.addr, b"/").await;
    let mut waiting = h2_request(app.addr, b"/forever").await;
    // The first is answered, then has nothing in flight: closed.
    assert!(
        closed_within(&mut idle, WAIT).await,
        "an idle HTTP/2 connection stays open"
    );
    // The second still waits for its answer: kept, past three timeouts.
    assert!(
        !closed_within(&mut waiting, Duration::from_secs(3)).await,
        "a connection with a request in flight was closed"
    );
    let _ = app.stop.send(());
    let _ = app.task.await;
}
