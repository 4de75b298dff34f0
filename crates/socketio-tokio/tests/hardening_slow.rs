//! Slow consumers: a client that stops reading costs a bounded amount of
//! memory. Its connection is closed with "transport error" once over
//! `max_buffer_size`, volatile packets are dropped, `emit` reports the
//! condition, and healthy clients in the same room get everything.

#![allow(clippy::unwrap_used)]

#[path = "common/raw.rs"]
mod raw;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{SinkExt, StreamExt};
use raw::*;
use socketio_tokio::{EmitError, SocketIo};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

/// A raw WebSocket client joined to `/` and to `room`, over a socket with
/// a small receive buffer (so that the kernel holds little for it).
async fn joined(server: &Server, room: &str, small_buffer: bool) -> (Ws, String) {
    let socket = TcpSocket::new_v4().unwrap();
    if small_buffer {
        socket.set_recv_buffer_size(4096).unwrap();
    }
    let stream = socket.connect(server.addr).await.unwrap();
    let mut ws = ws_open_on(&server.ws_url("EIO=4&transport=websocket"), stream)
        .await
        .unwrap();
    let _open = recv_text(&mut ws).await;
    ws.send(Message::text("40")).await.unwrap();
    let connected = recv_text(&mut ws).await;
    let v: serde_json::Value = serde_json::from_str(connected.strip_prefix("40").unwrap()).unwrap();
    ws.send(Message::text(format!("421[\"join\",\"{room}\"]")))
        .await
        .unwrap();
    assert_eq!(recv_text(&mut ws).await, "431[]");
    (ws, v["sid"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_and_the_others_get_everything() {
    const MESSAGES: usize = 10_000;
    let server = start().await;
    let rss_start = rss_kib();
    let (mut healthy, _) = joined(&server, "room", false).await;
    let (slow, _) = joined(&server, "room", true).await;
    assert_eq!(server.io.connection_count(), 2);

    // The healthy client reads everything, in a task of its own.
    let received = Arc::new(AtomicUsize::new(0));
    let r = received.clone();
    let reader = tokio::spawn(async move {
        let mut next = 0usize;
        while next < MESSAGES {
            match healthy.next().await {
                Some(Ok(Message::Text(t))) => {
                    let t = t.as_str();
                    if t == "2" {
                        healthy.send(Message::text("3")).await.unwrap();
                        continue;
                    }
                    let expected = format!("42[\"news\",{next},");
                    assert!(
                        t.starts_with(&expected),
                        "message {next} out of order: {t:.40}"
                    );
                    next += 1;
                    r.store(next, Ordering::Relaxed);
                }
                Some(Ok(_)) => {}
                other => panic!("the healthy client lost its connection: {other:?}"),
            }
        }
        healthy
    });

    // 10k messages of 1 KiB to the room; paced on the healthy client so
    // that only the one that does not read falls behind.
    let filler = "x".repeat(1024);
    for i in 0..MESSAGES {
        server.io.to("room").emit("news", &(i, &filler)).unwrap();
        if i % 100 == 99 {
            let target = (i + 1).saturating_sub(500);
            eventually("the healthy client keeps up", || {
                received.load(Ordering::Relaxed) >= target
            })
            .await;
        }
    }
    let mut healthy = tokio::time::timeout(WAIT * 3, reader)
        .await
        .expect("the healthy client receives all")
        .unwrap();
    assert_eq!(received.load(Ordering::Relaxed), MESSAGES);

    server.log.wait_for("disconnect / transport error").await;
    eventually("only the healthy connection is left", || {
        server.io.connection_count() == 1
    })
    .await;
    assert_eq!(server.io.socket_count("/"), 1);
    assert_echo(&mut healthy, "after").await;
    drop(slow);
    let rss_end = rss_kib();
    println!(
        "slow consumer: {MESSAGES} messages of 1 KiB; VmRSS {rss_start:?} KiB at start, \
         {rss_end:?} KiB at the end"
    );
    assert_eq!(panics(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_reports_a_full_buffer_and_volatile_emits_are_dropped() {
    let server = start_with(SocketIo::builder().max_buffer_size(64 * 1024)).await;
    let (mut healthy, _, _) = ws_connect(&server).await;
    let (slow, _) = joined(&server, "slow", true).await;
    let socket = server
        .io
        .of("/")
        .to("slow")
        .sockets()
        .pop()
        .expect("the slow socket");
    let filler = "y".repeat(1024);
    let mut sent = 0usize;
    let error = loop {
        // Volatile emits never fail for a slow client: they are dropped.
        socket.volatile().emit("tick", &sent).unwrap();
        match socket.emit("data", &(sent, &filler)) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        if sent.is_multiple_of(64) {
            // Let the connection's task move what it can to the socket.
            tokio::task::yield_now().await;
        }
        assert!(sent < 1_000_000, "the buffer never filled");
    };
    assert!(
        matches!(error, EmitError::BufferFull),
        "expected BufferFull, got {error:?}"
    );
    // Over the bound, a volatile emit is dropped, never a BufferFull (it
    // may find the socket already disconnected).
    let volatile = socket.volatile().emit("tick", &sent);
    assert!(
        matches!(volatile, Ok(()) | Err(EmitError::Disconnected)),
        "{volatile:?}"
    );
    println!("emit reported a full buffer after {sent} messages of 1 KiB");
    server.log.wait_for("disconnect / transport error").await;
    // Once closed, emits say so.
    eventually("the socket is disconnected", || !socket.connected()).await;
    assert!(matches!(
        socket.emit("data", &1),
        Err(EmitError::Disconnected)
    ));
    eventually("the slow connection is gone", || {
        server.io.connection_count() == 1
    })
    .await;
    assert_echo(&mut healthy, "after").await;
    drop(slow);
    assert_eq!(panics(), 0);
}

/// A bare Engine.IO server whose application never reads, or whose
/// client never reads: both directions are bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_engine_io_is_bounded_both_ways() {
    init();
    let results = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let r = results.clone();
    let io = SocketIo::builder()
        .max_buffer_size(64 * 1024)
        .build_engine(move |socket: socketio_tokio::EngineSocket| {
            let r = r.clone();
            async move {
                if socket.handshake().query_param("mode").as_deref() == Some("flood-me") {
                    // Send to a client that does not read, until refused.
                    let chunk = socketio_tokio::Message::Text("z".repeat(1024).into());
                    let mut sent = 0usize;
                    let error = loop {
                        match socket.send(chunk.clone()) {
                            Ok(()) => sent += 1,
                            Err(e) => break e,
                        }
                        if sent.is_multiple_of(64) {
                            tokio::task::yield_now().await;
                        }
                    };
                    r.lock().unwrap().push(format!("send: {error:?}"));
                    // Stay alive until the connection is gone.
                    std::future::pending::<()>().await;
                } else {
                    // Never read: hold the socket.
                    let _socket = socket;
                    std::future::pending::<()>().await;
                }
            }
        })
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let io2 = io.clone();
    tokio::spawn(async move { io2.serve(listener).await });

    // Inbound: the application never reads; the client floods.
    let mut ws = ws_open(&format!("ws://{addr}/engine.io/?EIO=4&transport=websocket"))
        .await
        .unwrap();
    let _open = recv_text(&mut ws).await;
    let msg = format!("4{}", "m".repeat(1024));
    let mut flooded = 0usize;
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            if ws.send(Message::text(msg.clone())).await.is_err() {
                return;
            }
            flooded += 1;
            assert!(flooded < 100_000, "never closed");
            if flooded.is_multiple_of(16) {
                // Notice the close.
                if let Ok(Some(m)) =
                    tokio::time::timeout(std::time::Duration::from_millis(1), ws.next()).await
                    && m.map(|m| m.is_close()).unwrap_or(true)
                {
                    return;
                }
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the flooding client was not closed");
    println!("inbound: closed after {flooded} unread messages of 1 KiB");

    // Outbound: the client never reads.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let ws2 = ws_open_on(
        &format!("ws://{addr}/engine.io/?EIO=4&transport=websocket&mode=flood-me"),
        stream,
    )
    .await
    .unwrap();
    eventually("send reports a full buffer", || {
        results
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == "send: BufferFull")
    })
    .await;
    eventually("no connection left", || io.connection_count() == 0).await;
    drop(ws2);
    assert_eq!(panics(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_with_ack_reports_a_full_buffer() {
    let server = start_with(SocketIo::builder().max_buffer_size(64 * 1024)).await;
    let (slow, _) = joined(&server, "slow", true).await;
    let socket = server.io.of("/").to("slow").sockets().pop().unwrap();
    let filler = "q".repeat(1024);
    let mut pending = Vec::new();
    let error = loop {
        match socket.emit_with_ack::<(), _>("question", &filler) {
            Ok(ack) => pending.push(ack),
            Err(e) => break e,
        }
        if pending.len().is_multiple_of(64) {
            tokio::task::yield_now().await;
        }
        assert!(pending.len() < 1_000_000, "the buffer never filled");
    };
    assert!(matches!(error, EmitError::BufferFull), "{error:?}");
    server.log.wait_for("disconnect / transport error").await;
    // The acknowledgements awaited fail, none hangs.
    for ack in pending {
        let r = tokio::time::timeout(WAIT, ack).await.expect("settled");
        assert!(r.is_err(), "{r:?}");
    }
    drop(slow);
    assert_eq!(panics(), 0);
}
