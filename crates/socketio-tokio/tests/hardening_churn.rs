//! Churn: many connect/disconnect cycles, with peers that vanish at the
//! worst moments (TCP resets mid-handshake, mid-upgrade, mid-poll) and
//! peers that never answer pings. Afterwards no session, socket or task is
//! left. `CHURN_CYCLES` sets the number of cycles (default 5000; the
//! target for a long run is 100000), `CHURN_CONCURRENCY` how many run at
//! once (default 16).

#![allow(clippy::unwrap_used)]

#[path = "common/raw.rs"]
mod raw;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use raw::*;
use socketio_tokio::SocketIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Drops `stream` with a TCP reset (SO_LINGER 0).
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

const KINDS: usize = 6;

/// One cycle of kind `kind`.
async fn cycle(server: &Server, kind: usize, silent: &Arc<Semaphore>) {
    let addr = server.addr;
    match kind {
        // A well-behaved WebSocket client: connect, join, close.
        0 => {
            let (mut ws, _, _) = ws_connect(server).await;
            ws.send(Message::text("41")).await.unwrap();
            ws.close(None).await.unwrap();
            expect_closed(&mut ws).await;
            reset(ws.get_ref());
        }
        // A reset in the middle of a polling handshake's request head.
        1 => {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHo")
                .await
                .unwrap();
            reset(&stream);
        }
        // A reset right after a whole WebSocket handshake request, before
        // reading the answer.
        2 => {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(
                    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
                      Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                      Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                )
                .await
                .unwrap();
            reset(&stream);
        }
        // A reset mid-upgrade: after `2probe` / `3probe`.
        3 => {
            let sid = polling_connect(addr).await;
            let mut ws = ws_open(&server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}")))
                .await
                .unwrap();
            ws.send(Message::text("2probe")).await.unwrap();
            assert_eq!(recv_text(&mut ws).await, "3probe");
            reset(ws.get_ref());
        }
        // A reset while a long-polling GET is held.
        4 => {
            let sid = polling_connect(addr).await;
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(
                    format!(
                        "GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            reset(&stream);
        }
        // A client that joins, then never answers pings: held open (in the
        // background, bounded) until the server gives up on it.
        _ => {
            let permit = silent.clone().acquire_owned().await.unwrap();
            let (mut ws, _) = ws_engine(server).await;
            ws.send(Message::text("40")).await.unwrap();
            tokio::spawn(async move {
                // Read without answering: the server closes (ping timeout).
                use futures_util::StreamExt;
                let closed = tokio::time::timeout(WAIT, async {
                    while let Some(Ok(m)) = ws.next().await {
                        if m.is_close() {
                            break;
                        }
                    }
                })
                .await;
                assert!(closed.is_ok(), "a silent client was never closed");
                reset(ws.get_ref());
                drop(permit);
            });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_leaves_no_session_socket_or_task_behind() {
    let cycles = env("CHURN_CYCLES", 5_000);
    let concurrency = env("CHURN_CONCURRENCY", 16).max(1);
    let server = start_with(
        SocketIo::builder()
            .ping_interval(Duration::from_millis(300))
            .ping_timeout(Duration::from_millis(300))
            .upgrade_timeout(Duration::from_millis(500))
            .connect_timeout(Duration::from_secs(2)),
    )
    .await;
    let rss_before = rss_kib();
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let silent = Arc::new(Semaphore::new(64));
    let server = Arc::new(server);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let silent = silent.clone();
        let server = server.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= cycles {
                    break;
                }
                cycle(&server, i % KINDS, &silent).await;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let ran = started.elapsed();
    // Every silent client is closed by the server.
    let _ = silent.acquire_many(64).await.unwrap();
    eventually("no session left", || server.io.connection_count() == 0).await;
    eventually("no socket left", || server.io.socket_count("/") == 0).await;
    eventually("no task left", || server.io.task_count() == 0).await;
    let rss_after = rss_kib();
    let lines = server.log.lines();
    let count = |reason: &str| lines.iter().filter(|l| l.ends_with(reason)).count();
    println!(
        "churn: {cycles} cycles ({concurrency} at once) in {:.1} s; disconnects: \
         {} client namespace disconnect, {} transport error, {} transport close, \
         {} ping timeout; VmRSS {rss_before:?} KiB before, {rss_after:?} KiB after",
        ran.as_secs_f64(),
        count("client namespace disconnect"),
        count("transport error"),
        count("transport close"),
        count("ping timeout"),
    );
    // Every cycle that joined `/` left it, one way or another.
    let joined = (0..cycles)
        .filter(|i| [0, 3, 4, 5].contains(&(i % KINDS)))
        .count();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("disconnect /"))
            .count(),
        joined,
        "every socket that joined disconnected once"
    );
    // The server still serves.
    let (mut ws, _, _) = ws_connect(&server).await;
    assert_echo(&mut ws, "after the churn").await;
    assert_eq!(panics(), 0);
}
