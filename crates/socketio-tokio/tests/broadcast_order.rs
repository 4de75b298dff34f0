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
//! is more than a new socket's send buffer takes. The same races run
//! with the packets sent by another connection's event handler, whose
//! broadcasts are held while its step runs and written together after it.

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

/// Broadcasts the broadcaster wrote whole, and in part, in this binary;
/// writes of several frames held by a batch.
static WHOLE: AtomicUsize = AtomicUsize::new(0);
static PART: AtomicUsize = AtomicUsize::new(0);
static SEVERAL: AtomicUsize = AtomicUsize::new(0);

/// Counts the server's `socketio_tokio::broadcast::written` events.
struct CountWrites;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountWrites {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Whole(Option<bool>, u64);
        impl tracing::field::Visit for Whole {
            fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
                if field.name() == "whole" {
                    self.0 = Some(value);
                }
            }
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "frames" {
                    self.1 = value;
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        if event.metadata().target() != "socketio_tokio::broadcast::written" {
            return;
        }
        let mut whole = Whole(None, 0);
        event.record(&mut whole);
        if whole.1 > 1 {
            SEVERAL.fetch_add(1, Ordering::SeqCst);
        }
        match whole.0 {
            Some(true) => WHOLE.fetch_add(1, Ordering::SeqCst),
            Some(false) => PART.fetch_add(1, Ordering::SeqCst),
            None => 0,
        };
    }
}

/// Taken by every test here for its whole run: the counts above are the
/// binary's, and each test reads what its own run added.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

/// Connects `ws` to `/` and puts its socket in the room `r`: the
/// WebSocket, past its CONNECT, and the socket.
async fn join_r(server: &Server, mut ws: Ws) -> (Ws, socketio_tokio::Socket) {
    let _open = recv_text(&mut ws).await;
    ws.send(Message::text("40")).await.unwrap();
    let connected = recv_text(&mut ws).await;
    let v: serde_json::Value = serde_json::from_str(connected.strip_prefix("40").unwrap()).unwrap();
    let sid = v["sid"].as_str().unwrap();
    let socket = server
        .io
        .sockets()
        .into_iter()
        .find(|s| s.id() == sid)
        .unwrap();
    socket.join("r");
    (ws, socket)
}

/// Another connection, on `/sender`, that sends the `go` event there;
/// kept open by the caller until its packets are in.
async fn go(server: &Server) -> Ws {
    let mut other = ws_open(&server.ws_url("EIO=4&transport=websocket"))
        .await
        .unwrap();
    let _open = recv_text(&mut other).await;
    other.send(Message::text("40/sender,")).await.unwrap();
    let connected = recv_text(&mut other).await;
    assert!(connected.starts_with("40/sender,"), "{connected}");
    other
        .send(Message::text("42/sender,[\"go\"]"))
        .await
        .unwrap();
    other
}

/// Who sends the packets of a race.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sender {
    /// A task of the application's, outside any connection: each broadcast
    /// to an idle WebSocket is written at once.
    Task,
    /// An event handler of another connection: the broadcasts of one of its
    /// steps are held, and each connection's go out together when the step
    /// ends.
    Handler,
    /// A task of the application's that holds its broadcasts between two
    /// yields in a batch of its own (`SocketIo::batch`).
    BatchedTask,
}

/// Runs one race: `own` says which packets go as the socket's own emits
/// (the others are broadcasts to its room); the sender yields to the
/// runtime every `yield_every` packets, so that the connection's task runs
/// between them and finds its WebSocket idle or not.
async fn race(own: fn(usize) -> bool, yield_every: usize) {
    race_from(Sender::Task, own, yield_every).await;
}

/// [`race`], with the packets sent by `sender`.
async fn race_from(sender: Sender, own: fn(usize) -> bool, yield_every: usize) {
    // Before the server's own log subscriber, which then stays out.
    count_writes();
    let server = start_with(SocketIo::builder().max_buffer_size(256 << 20)).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let ws = ws_open_on(&server.ws_url("EIO=4&transport=websocket"), stream)
        .await
        .unwrap();
    let (mut ws, target) = join_r(&server, ws).await;

    let batched = sender == Sender::BatchedTask;
    let send = move |io: SocketIo| async move {
        let mut i = 0;
        while i < COUNT {
            let mut run = || loop {
                let args = (i, padding(i));
                if own(i) {
                    target.emit("n", &args).unwrap();
                } else {
                    io.to("r").emit("n", &args).unwrap();
                }
                i += 1;
                if (i - 1) % yield_every == 0 || i == COUNT {
                    break;
                }
            };
            match batched {
                true => io.batch(run),
                false => run(),
            }
            tokio::task::yield_now().await;
        }
    };
    let io = server.io.clone();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    // The other connection, for a handler that sends; kept open to the end.
    let mut _other = None;
    match sender {
        Sender::Task | Sender::BatchedTask => {
            tokio::spawn(async move {
                send(io).await;
                let _ = done_tx.send(());
            });
        }
        Sender::Handler => {
            let start = std::sync::Mutex::new(Some((send, done_tx)));
            let start = std::sync::Arc::new(start);
            io.ns("/sender", move |socket: socketio_tokio::Socket| {
                let start = start.clone();
                async move {
                    socket.on("go", move |io: SocketIo| {
                        let start = start.lock().unwrap().take();
                        async move {
                            if let Some((send, done_tx)) = start {
                                send(io).await;
                                let _ = done_tx.send(());
                            }
                        }
                    });
                }
            });
            _other = Some(go(&server).await);
        }
    }

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
    done_rx.await.unwrap();
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
    let _serial = SERIAL.lock().await;
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
    let _serial = SERIAL.lock().await;
    race(|i| i % 3 == 0, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_own_emits_between_broadcasts_arrive_in_order() {
    let _serial = SERIAL.lock().await;
    race(|i| (i / 5) % 2 == 0, 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_from_a_handler_arrive_in_order() {
    let _serial = SERIAL.lock().await;
    count_writes();
    let several = SEVERAL.load(Ordering::SeqCst);
    race_from(Sender::Handler, |_| false, 3).await;
    assert!(
        SEVERAL.load(Ordering::SeqCst) > several,
        "no frames held by a handler's step were written together"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_and_own_emits_from_a_handler_arrive_in_order() {
    let _serial = SERIAL.lock().await;
    race_from(Sender::Handler, |i| i % 3 == 0, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_own_emits_between_broadcasts_from_a_handler_arrive_in_order() {
    let _serial = SERIAL.lock().await;
    race_from(Sender::Handler, |i| (i / 5) % 2 == 0, 7).await;
}

/// A handler that broadcasts thousands of packets in one step, megabytes
/// in all: its batch writes what it holds whenever it reaches its bound,
/// and every packet still arrives once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handlers_long_run_of_broadcasts_arrives_in_order() {
    let _serial = SERIAL.lock().await;
    race_from(Sender::Handler, |_| false, usize::MAX).await;
}

/// A connection for which a handler's step holds a broadcast writes
/// nothing on its WebSocket before that broadcast, even when its own task
/// runs meanwhile on another thread: here, after each broadcast, a thread
/// outside the runtime emits to the recipient's socket (which wakes its
/// task, for any worker to run), while the handler's step keeps its own
/// thread a while before it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_broadcast_goes_before_what_its_connection_sends_meanwhile() {
    let _serial = SERIAL.lock().await;
    held_race(false).await;
}

/// The same with the thread outside the runtime broadcasting to the room:
/// its broadcast finds the recipient's frame held by the handler's batch,
/// and queues behind it rather than writing first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_broadcast_goes_before_another_threads_broadcast() {
    let _serial = SERIAL.lock().await;
    held_race(true).await;
}

/// Packets `0, 2, 4, …` broadcast by a handler's step, and after each the
/// next odd one sent by a thread outside the runtime while the step goes
/// on: to the recipient's socket, or broadcast to its room.
async fn held_race(outside_broadcasts: bool) {
    const N: usize = 12;
    // Before the server's own log subscriber, as every test here.
    count_writes();
    let server = start().await;
    let ws = ws_open(&server.ws_url("EIO=4&transport=websocket"))
        .await
        .unwrap();
    let (mut ws, target) = join_r(&server, ws).await;
    // The thread outside the runtime: emits `i + 1` when told `i`, then says so.
    let (ask, asked) = std::sync::mpsc::channel::<usize>();
    let (tell, told) = std::sync::mpsc::channel::<()>();
    let io = server.io.clone();
    let emitter = std::thread::spawn(move || {
        for i in asked {
            match outside_broadcasts {
                true => io.to("r").emit("n", &(i + 1,)).unwrap(),
                false => target.emit("n", &(i + 1,)).unwrap(),
            }
            let _ = tell.send(());
        }
    });
    let exchange = std::sync::Arc::new(std::sync::Mutex::new((ask, told)));
    server
        .io
        .ns("/sender", move |socket: socketio_tokio::Socket| {
            let exchange = exchange.clone();
            async move {
                socket.on("go", move |io: SocketIo| {
                    let exchange = exchange.clone();
                    async move {
                        let exchange = exchange.lock().unwrap();
                        for i in (0..N).step_by(2) {
                            io.to("r").emit("n", &(i,)).unwrap();
                            exchange.0.send(i).unwrap();
                            exchange.1.recv().unwrap();
                            // The step goes on (blocking its thread, as a slow
                            // handler would) while the recipient's task runs.
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                });
            }
        });
    let other = go(&server).await;
    let mut got = Vec::new();
    while got.len() < N {
        let text = recv_text(&mut ws).await;
        let v: serde_json::Value = serde_json::from_str(text.strip_prefix("42").unwrap()).unwrap();
        got.push(v[1].as_u64().unwrap() as usize);
    }
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    server
        .io
        .ns("/sender", |_: socketio_tokio::Socket| async {});
    drop(other);
    let _ = emitter;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_held_by_a_tasks_batch_arrive_in_order() {
    let _serial = SERIAL.lock().await;
    count_writes();
    let several = SEVERAL.load(Ordering::SeqCst);
    race_from(Sender::BatchedTask, |i| i % 4 == 0, 5).await;
    assert!(
        SEVERAL.load(Ordering::SeqCst) > several,
        "no frames held by the task's batch were written together"
    );
}
