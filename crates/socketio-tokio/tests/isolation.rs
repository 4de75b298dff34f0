//! A failure stays where it happened: an outgoing listener that panics, a
//! connect handler that panics before it returns its future, a connection
//! task that goes away with acknowledgements awaited elsewhere. And a change
//! stays with the socket it is made to: sockets that registered the same
//! handlers share their list until one of them changes it.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use socketio_tokio::{AckError, Data, NotFound, Socket, SocketIo, SocketIoService};
use tower::ServiceExt;

async fn call(svc: &SocketIoService<NotFound>, method: &str, sid: &str, body: &str) -> String {
    let sid = match sid {
        "" => String::new(),
        sid => format!("&sid={sid}"),
    };
    let req = http::Request::builder()
        .method(method)
        .uri(format!("/socket.io/?EIO=4&transport=polling{sid}"))
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// A polling session whose client joined `/`: its id.
async fn connected(svc: &SocketIoService<NotFound>) -> String {
    let open = call(svc, "GET", "", "").await;
    let open: serde_json::Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    assert_eq!(call(svc, "POST", &sid, "40").await, "ok");
    assert!(call(svc, "GET", &sid, "").await.starts_with("40{"));
    sid
}

#[tokio::test]
async fn an_outgoing_listener_that_panics_harms_neither_the_broadcaster_nor_the_others() {
    let io = SocketIo::new().unwrap();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    io.ns("/", move |socket: Socket| {
        let seen_tx = seen_tx.clone();
        async move {
            if socket.handshake().query_param("panics").is_some() {
                socket.on_any_outgoing(|_, _, _| panic!("an outgoing listener"));
            }
            socket.on_any_outgoing(move |socket, event, _| {
                let _ = seen_tx.send((socket.id().to_owned(), event.to_owned()));
            });
        }
    });
    let svc = io.service();
    let open = {
        let req = http::Request::builder()
            .uri("/socket.io/?EIO=4&transport=polling&panics=1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = svc.clone().oneshot(req).await.unwrap();
        res.into_body().collect().await.unwrap().to_bytes()
    };
    let open: serde_json::Value = serde_json::from_slice(&open[1..]).unwrap();
    let panicky = open["sid"].as_str().unwrap().to_owned();
    assert_eq!(call(&svc, "POST", &panicky, "40").await, "ok");
    assert!(call(&svc, "GET", &panicky, "").await.starts_with("40{"));
    let calm = connected(&svc).await;

    // The broadcaster goes on; both clients get the packet.
    io.emit("news", &1).unwrap();
    assert_eq!(call(&svc, "GET", &panicky, "").await, "42[\"news\",1]");
    assert_eq!(call(&svc, "GET", &calm, "").await, "42[\"news\",1]");
    // The listener after the panicking one still runs, on each socket.
    let mut events = vec![seen.recv().await.unwrap(), seen.recv().await.unwrap()];
    events.sort();
    assert!(
        events.iter().all(|(_, event)| event == "news"),
        "{events:?}"
    );
    assert_eq!(io.connection_count(), 2);
}

#[tokio::test]
async fn a_connect_handler_that_panics_before_its_future_is_logged_and_the_session_goes_on() {
    let io = SocketIo::new().unwrap();
    io.ns("/", |socket: Socket| async move {
        socket.on("ping", |socket: Socket| async move {
            let _ = socket.emit("pong", &());
        });
    });
    io.ns("/b", |_socket: Socket| -> std::future::Ready<()> {
        panic!("the synchronous part of a connect handler")
    });
    let svc = io.service();
    let sid = connected(&svc).await;
    assert_eq!(call(&svc, "POST", &sid, "40/b,").await, "ok");
    assert!(call(&svc, "GET", &sid, "").await.starts_with("40/b,{"));
    // The connection's task lives on: `/` still answers.
    assert_eq!(call(&svc, "POST", &sid, "42[\"ping\"]").await, "ok");
    assert_eq!(call(&svc, "GET", &sid, "").await, "42[\"pong\"]");
    assert_eq!(io.socket_count("/b"), 1);
}

#[tokio::test]
async fn a_change_to_one_sockets_handlers_leaves_the_others_alone() {
    let io = SocketIo::new().unwrap();
    // Handlers that capture nothing, the same on every socket: their lists
    // are shared.
    io.ns("/", |socket: Socket| async move {
        socket.once("first", |socket: Socket| async move {
            let _ = socket.emit("first-back", &());
        });
        socket.on("echo", |socket: Socket, Data(n): Data<u32>| async move {
            let _ = socket.emit("echo-back", &n);
        });
        socket.on("drop-echo", |socket: Socket| async move {
            socket.remove_all_listeners("echo");
            let _ = socket.emit("dropped", &());
        });
    });
    let svc = io.service();
    let a = connected(&svc).await;
    let b = connected(&svc).await;
    let c = connected(&svc).await;

    // A's once-only handler runs once, and is gone for A only.
    for _ in 0..2 {
        assert_eq!(call(&svc, "POST", &a, "42[\"first\"]").await, "ok");
        assert_eq!(call(&svc, "POST", &a, "42[\"echo\",1]").await, "ok");
    }
    assert_eq!(
        call(&svc, "GET", &a, "").await,
        "42[\"first-back\"]\u{1e}42[\"echo-back\",1]\u{1e}42[\"echo-back\",1]"
    );
    assert_eq!(call(&svc, "POST", &b, "42[\"first\"]").await, "ok");
    assert_eq!(call(&svc, "GET", &b, "").await, "42[\"first-back\"]");

    // B drops its echo handler: A and C keep theirs.
    assert_eq!(call(&svc, "POST", &b, "42[\"drop-echo\"]").await, "ok");
    assert_eq!(call(&svc, "GET", &b, "").await, "42[\"dropped\"]");
    for sid in [&b, &a, &c] {
        assert_eq!(call(&svc, "POST", sid, "42[\"echo\",2]").await, "ok");
    }
    assert_eq!(call(&svc, "GET", &a, "").await, "42[\"echo-back\",2]");
    assert_eq!(call(&svc, "GET", &c, "").await, "42[\"echo-back\",2]");
    assert_eq!(call(&svc, "POST", &c, "42[\"first\"]").await, "ok");
    assert_eq!(call(&svc, "GET", &c, "").await, "42[\"first-back\"]");
    // B's echo and second "first" are answered by nothing: its next poll
    // carries only what its "drop-echo" sends.
    assert_eq!(call(&svc, "POST", &b, "42[\"first\"]").await, "ok");
    assert_eq!(call(&svc, "POST", &b, "42[\"drop-echo\"]").await, "ok");
    assert_eq!(call(&svc, "GET", &b, "").await, "42[\"dropped\"]");
}

#[test]
fn acknowledgements_awaited_elsewhere_fail_when_the_connection_task_goes_away() {
    // The server runs on a runtime of its own, dropped under its sessions.
    let server = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ack_tx, ack_rx) = std::sync::mpsc::channel();
    let (socket_tx, socket_rx) = std::sync::mpsc::channel();
    let io = server.block_on(async {
        let io = SocketIo::new().unwrap();
        io.ns("/", move |socket: Socket| {
            let ack_tx = ack_tx.clone();
            let socket_tx = socket_tx.clone();
            async move {
                let ack = socket
                    .timeout(Duration::from_secs(3600))
                    .emit_with_ack::<(String,), _>("question", &1)
                    .unwrap();
                let _ = ack_tx.send(ack);
                let _ = socket_tx.send(socket);
            }
        });
        let svc = io.service();
        let open = call(&svc, "GET", "", "").await;
        let open: serde_json::Value =
            serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
        let sid = open["sid"].as_str().unwrap().to_owned();
        assert_eq!(call(&svc, "POST", &sid, "40").await, "ok");
        // The CONNECT answer, then the question (in one payload or two).
        let mut received = call(&svc, "GET", &sid, "").await;
        if !received.contains("question") {
            received = call(&svc, "GET", &sid, "").await;
        }
        assert!(received.contains("\"question\",1]"), "{received}");
        io
    });
    let ack = ack_rx.recv().unwrap();
    // The application keeps the socket.
    let socket = socket_rx.recv().unwrap();
    drop(server);

    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = other.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), ack)
            .await
            .expect("the acknowledgement is answered")
    });
    assert!(matches!(answer, Err(AckError::Disconnected)), "{answer:?}");
    // What is sent on it now is refused.
    assert!(socket.emit("late", &()).is_err());
    assert_eq!(io.connection_count(), 0);
}
