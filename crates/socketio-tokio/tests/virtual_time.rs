//! The binding's timers in virtual time: the heartbeat, the ping timeout,
//! the connect timeout, acknowledgement timeouts and the upgrade timeout,
//! with tokio's clock paused. Requests go to the tower service itself, and
//! the WebSocket runs over an in-memory pipe, so no test waits for real
//! time and none opens a socket: the clock moves only when every task
//! waits for a timer.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioIo, TokioTimer};
use socketio_tokio::{AckError, DisconnectReason, NotFound, Socket, SocketIo, SocketIoService};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

/// A timer's deadline is kept to the millisecond: a deadline is met when
/// the virtual clock is within this of it.
const SLACK: Duration = Duration::from_millis(5);

fn assert_at(what: &str, elapsed: Duration, expected: Duration) {
    assert!(
        elapsed >= expected && elapsed <= expected + SLACK,
        "{what} after {elapsed:?}, expected {expected:?}"
    );
}

/// One request to the service: its status and body.
async fn call(
    svc: &SocketIoService<NotFound>,
    method: &str,
    query: &str,
    body: &str,
) -> (u16, String) {
    let req = http::Request::builder()
        .method(method)
        .uri(format!("/socket.io/?EIO=4&transport=polling{query}"))
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A polling handshake: the session id.
async fn open(svc: &SocketIoService<NotFound>) -> String {
    let (status, body) = call(svc, "GET", "", "").await;
    assert_eq!(status, 200, "{body}");
    let open: serde_json::Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
    open["sid"].as_str().unwrap().to_owned()
}

async fn get(svc: &SocketIoService<NotFound>, sid: &str) -> (u16, String) {
    call(svc, "GET", &format!("&sid={sid}"), "").await
}

async fn post(svc: &SocketIoService<NotFound>, sid: &str, body: &str) {
    assert_eq!(
        call(svc, "POST", &format!("&sid={sid}"), body).await,
        (200, "ok".to_owned())
    );
}

#[tokio::test(start_paused = true)]
async fn pings_come_every_interval_and_a_missing_pong_times_out() {
    let io = SocketIo::builder()
        .ping_interval(Duration::from_secs(25))
        .ping_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let (gone_tx, mut gone) = mpsc::unbounded_channel();
    io.ns("/", move |socket: Socket| {
        let gone_tx = gone_tx.clone();
        async move {
            socket.on_disconnect(move |_socket: Socket, reason: DisconnectReason| {
                let _ = gone_tx.send((reason, Instant::now()));
                async {}
            });
        }
    });
    let svc = io.service();
    let start = Instant::now();
    let sid = open(&svc).await;
    post(&svc, &sid, "40").await;
    let (_, connected) = get(&svc, &sid).await;
    assert!(connected.starts_with("40{\"sid\":"), "{connected}");

    // The next poll is held until the first ping.
    assert_eq!(get(&svc, &sid).await, (200, "2".to_owned()));
    assert_at("the first ping", start.elapsed(), Duration::from_secs(25));
    // A pong in time: the next ping one interval later.
    post(&svc, &sid, "3").await;
    assert_eq!(get(&svc, &sid).await, (200, "2".to_owned()));
    assert_at("the second ping", start.elapsed(), Duration::from_secs(50));

    // No pong: the socket goes one ping timeout later.
    let (reason, at) = gone.recv().await.unwrap();
    assert_eq!(reason, DisconnectReason::PingTimeout);
    assert_at("the ping timeout", at - start, Duration::from_secs(70));
    assert_eq!(get(&svc, &sid).await.0, 400, "the session is gone");
    assert_eq!(io.connection_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_session_that_joins_no_namespace_is_closed_at_the_connect_timeout() {
    let io = SocketIo::builder()
        .connect_timeout(Duration::from_secs(45))
        .ping_interval(Duration::from_secs(300))
        .ping_timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    io.ns("/", |_socket: Socket| async {});
    let svc = io.service();
    let start = Instant::now();
    let sid = open(&svc).await;
    // The held poll is answered with the close packet.
    assert_eq!(get(&svc, &sid).await, (200, "1".to_owned()));
    assert_at(
        "the connect timeout",
        start.elapsed(),
        Duration::from_secs(45),
    );
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_emit_with_ack_times_out() {
    let io = SocketIo::builder()
        .ping_interval(Duration::from_secs(300))
        .ping_timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let (acked_tx, mut acked) = mpsc::unbounded_channel();
    io.ns("/", move |socket: Socket| {
        let acked_tx = acked_tx.clone();
        async move {
            let start = Instant::now();
            let default = socket
                .emit_with_ack::<(String,), _>("question", &1)
                .unwrap();
            let short = socket
                .timeout(Duration::from_secs(2))
                .emit_with_ack::<(String,), _>("question", &2)
                .unwrap();
            let short = short.await;
            let _ = acked_tx.send((short, start.elapsed()));
            let default = default.await;
            let _ = acked_tx.send((default, start.elapsed()));
        }
    });
    let svc = io.service();
    let sid = open(&svc).await;
    post(&svc, &sid, "40").await;
    let (_, body) = get(&svc, &sid).await;
    assert!(body.contains("\"question\""), "{body}");

    let (result, after) = acked.recv().await.unwrap();
    assert!(matches!(result, Err(AckError::Timeout)), "{result:?}");
    assert_at("the 2 s ack timeout", after, Duration::from_secs(2));
    // The server's ack timeout (5 s by default) for the other.
    let (result, after) = acked.recv().await.unwrap();
    assert!(matches!(result, Err(AckError::Timeout)), "{result:?}");
    assert_at("the default ack timeout", after, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn an_upgrade_left_unfinished_is_dropped_at_the_upgrade_timeout() {
    let io = SocketIo::builder()
        .upgrade_timeout(Duration::from_secs(10))
        .ping_interval(Duration::from_secs(300))
        .ping_timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    io.ns("/", |socket: Socket| async move {
        socket.on("hello", |socket: Socket| async move {
            let _ = socket.emit("hello-back", &());
        });
    });
    let svc = io.service();
    let sid = open(&svc).await;
    post(&svc, &sid, "40").await;
    let _ = get(&svc, &sid).await;

    // The WebSocket over an in-memory pipe, served by hyper.
    let (client, server) = tokio::io::duplex(64 * 1024);
    let hyper_svc = hyper_util::service::TowerToHyperService::new(svc.clone());
    let served = tokio::spawn(
        hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(server), hyper_svc)
            .with_upgrades(),
    );
    let url = format!("ws://localhost/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = tokio_tungstenite::client_async(url, client).await.unwrap();
    let start = Instant::now();
    ws.send(Message::text("2probe")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("3probe"));

    // No upgrade packet: the server drops the WebSocket after 10 s...
    match ws.next().await {
        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {}
        Some(Ok(other)) => panic!("unexpected {other:?}"),
    }
    assert_at(
        "the upgrade timeout",
        start.elapsed(),
        Duration::from_secs(10),
    );
    // ...and the session goes on over polling.
    post(&svc, &sid, "42[\"hello\"]").await;
    assert_eq!(
        get(&svc, &sid).await,
        (200, "42[\"hello-back\"]".to_owned())
    );
    assert_eq!(io.connection_count(), 1);
    served.abort();
}

#[tokio::test(start_paused = true)]
async fn a_polling_body_slower_than_a_session_lives_is_given_up() {
    let io = SocketIo::builder()
        .ping_interval(Duration::from_secs(25))
        .ping_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    io.ns("/", |_socket: Socket| async {});
    let svc = io.service();
    let sid = open(&svc).await;
    // A body that starts and never ends.
    let (tx, rx) =
        futures_channel::mpsc::unbounded::<Result<http_body::Frame<Bytes>, std::io::Error>>();
    tx.unbounded_send(Ok(http_body::Frame::data(Bytes::from_static(b"4"))))
        .unwrap();
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("/socket.io/?EIO=4&transport=polling&sid={sid}"))
        .body(http_body_util::StreamBody::new(rx))
        .unwrap();
    let start = Instant::now();
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status().as_u16(), 408);
    assert_at(
        "the slow body given up",
        start.elapsed(),
        Duration::from_secs(45),
    );
    drop(tx);
}
