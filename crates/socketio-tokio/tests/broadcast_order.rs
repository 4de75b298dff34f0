//! Order per connection when broadcasts and a socket's own emits race a
//! slow reader: a broadcast to an idle WebSocket is written by the
//! broadcaster itself, a busy one's goes through the send buffer, and a
//! write the socket takes only in part leaves its rest ahead of everything
//! else. The client reads through a small receive buffer, in bursts, so
//! that the server's socket fills and empties again and again while
//! numbered packets of many sizes go out; every number must arrive, once,
//! in order. The run of broadcasts alone checks too that the broadcaster
//! wrote some packets itself, some of them only in part (the server's trace
//! events say so): its first packet, 70,000 bytes to an idle connection,
//! is more than a new socket's send buffer takes.

#![allow(clippy::unwrap_used)]

#[path = "common/raw.rs"]
mod raw;

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use raw::*;
use socketio_tokio::SocketIo;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Broadcasts the broadcaster wrote whole, and in part, in this binary.
static WHOLE: AtomicUsize = AtomicUsize::new(0);
static PART: AtomicUsize = AtomicUsize::new(0);

/// Counts the server's `socketio_tokio::broadcast::written` events.
struct CountWrites;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountWrites {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Whole(Option<bool>);
        impl tracing::field::Visit for Whole {
            fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
                if field.name() == "whole" {
                    self.0 = Some(value);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        if event.metadata().target() != "socketio_tokio::broadcast::written" {
            return;
        }
        let mut whole = Whole(None);
        event.record(&mut whole);
        match whole.0 {
            Some(true) => WHOLE.fetch_add(1, Ordering::SeqCst),
            Some(false) => PART.fetch_add(1, Ordering::SeqCst),
            None => 0,
        };
    }
}

fn count_writes() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::filter::Targets::new()
                    .with_target("socketio_tokio::broadcast::written", tracing::Level::TRACE),
            )
            .with(CountWrites);
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// Packets sent in each run.
const COUNT: usize = 3000;

/// The padding of packet `i`: sizes from a few bytes to past the 64 KiB of
/// a frame's 16-bit length, so that writes end anywhere in a frame.
fn padding(i: usize) -> String {
    let len = match i % 11 {
        0 => 70_000,
        n => (i * 397 + n * 1013) % 9000,
    };
    "x".repeat(len)
}

/// Runs one race: `own` says which packets go as the socket's own emits
/// (the others are broadcasts to its room); the sender yields to the
/// runtime every `yield_every` packets, so that the connection's task runs
/// between them and finds its WebSocket idle or not.
async fn race(own: fn(usize) -> bool, yield_every: usize) {
    // Before the server's own log subscriber, which then stays out.
    count_writes();
    let server = start_with(SocketIo::builder().max_buffer_size(256 << 20)).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let mut ws = ws_open_on(&server.ws_url("EIO=4&transport=websocket"), stream)
        .await
        .unwrap();
    let _open = recv_text(&mut ws).await;
    ws.send(Message::text("40")).await.unwrap();
    let connected = recv_text(&mut ws).await;
    let v: serde_json::Value = serde_json::from_str(connected.strip_prefix("40").unwrap()).unwrap();
    let sid = v["sid"].as_str().unwrap().to_owned();
    let target = server
        .io
        .sockets()
        .into_iter()
        .find(|s| s.id() == sid)
        .unwrap();
    target.join("r");

    let io = server.io.clone();
    let sender = tokio::spawn(async move {
        for i in 0..COUNT {
            let args = (i, padding(i));
            if own(i) {
                target.emit("n", &args).unwrap();
            } else {
                io.to("r").emit("n", &args).unwrap();
            }
            if i % yield_every == 0 {
                tokio::task::yield_now().await;
            }
        }
    });

    let mut got = Vec::with_capacity(COUNT);
    while got.len() < COUNT {
        let text = recv_text(&mut ws).await;
        let v: serde_json::Value = serde_json::from_str(text.strip_prefix("42").unwrap()).unwrap();
        assert_eq!(v[0], "n", "{text:.80}");
        let i = v[1].as_u64().unwrap() as usize;
        assert_eq!(v[2].as_str().unwrap().len(), padding(i).len(), "packet {i}");
        got.push(i);
        // Read in bursts: the server's socket fills meanwhile.
        if got.len() % 40 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    sender.await.unwrap();
    let expected: Vec<usize> = (0..COUNT).collect();
    if got != expected {
        let first = got
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(expected.len()));
        panic!(
            "packets out of order from {first}: got {:?}",
            &got[first..(first + 10).min(got.len())]
        );
    }
    assert_eq!(panics(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_alone_arrive_in_order() {
    count_writes();
    let (whole, part) = (WHOLE.load(Ordering::SeqCst), PART.load(Ordering::SeqCst));
    race(|_| false, 3).await;
    // Runs alongside in this binary only add to the counts.
    assert!(
        WHOLE.load(Ordering::SeqCst) > whole,
        "no broadcast was written by the broadcaster"
    );
    assert!(
        PART.load(Ordering::SeqCst) > part,
        "no broadcast was written in part by the broadcaster"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_and_own_emits_interleaved_arrive_in_order() {
    race(|i| i % 3 == 0, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_own_emits_between_broadcasts_arrive_in_order() {
    race(|i| (i / 5) % 2 == 0, 7).await;
}
