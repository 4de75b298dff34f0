//! Connection state recovery with the official JavaScript client: the
//! connection is cut under it (a proxy drops both sides) while the server
//! keeps broadcasting to its room and emitting to it; the client comes back
//! with the same id and gets every packet once, in order.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultproxy::Proxy;
use serde_json::{Value, json};
use socketio_tokio::{
    AckSender, ConnectError, ConnectHandler, ConnectRequest, Data, Recovery, Socket, SocketIo,
};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const PACKETS: u64 = 60;

/// What the connect middleware attaches: it does not run again for a
/// recovered socket, whose extensions come back with its session.
#[derive(Clone, Debug)]
struct Checked(#[allow(dead_code, reason = "read through its Debug form in the log")] u32);

/// The first handle the application got for each socket id: the test
/// emits through it, also while the client is away and after it is back.
type Handles = Arc<Mutex<HashMap<String, Socket>>>;

fn app(io: &SocketIo, log: &common::Log, handles: &Handles) {
    let log = log.clone();
    let handles = handles.clone();
    let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let on_connect = move |socket: Socket| {
        let log = log.clone();
        let handles = handles.clone();
        async move {
            handles
                .lock()
                .unwrap()
                .entry(socket.id().to_owned())
                .or_insert_with(|| socket.clone());
            log.push(format!(
                "connect {} recovered={} data={:?} checked={:?}",
                socket.id(),
                socket.recovered(),
                socket.data::<Value>(),
                socket.extensions().get::<Checked>(),
            ));
            if !socket.recovered() {
                socket.set_data(&json!({ "name": "ann" })).unwrap();
            }
            socket.on(
                "join",
                |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
                    socket.join(room);
                    let _ = ack.send(&());
                },
            );
        }
    };
    let check = move |req: ConnectRequest| {
        let runs = runs.clone();
        async move {
            let n = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            req.extensions().insert(Checked(n));
            Ok::<_, ConnectError>(())
        }
    };
    io.ns("/", on_connect.with(check));
}

struct Run {
    io: SocketIo,
    log: common::Log,
    handles: Handles,
    proxy: Proxy,
    client: Child,
    lines: Lines<BufReader<ChildStdout>>,
    task: tokio::task::JoinHandle<()>,
}

impl Run {
    async fn start(recovery: Recovery, transports: &str, delay_ms: u64) -> Run {
        let log = common::Log::default();
        let io = common::builder()
            .connection_state_recovery(recovery)
            .build()
            .unwrap();
        let handles = Handles::default();
        app(&io, &log, &handles);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = io.clone();
        let task = tokio::spawn(async move { serving.serve(listener).await.unwrap() });
        let proxy = Proxy::start(addr).await.unwrap();
        let mut client = common::spawn_bare_script(
            "recovery.mjs",
            &[&proxy.url(), transports, &delay_ms.to_string()],
        );
        let stdout = client.stdout.take().unwrap();
        Run {
            io,
            log,
            handles,
            proxy,
            client,
            lines: BufReader::new(stdout).lines(),
            task,
        }
    }

    /// The client's next line.
    async fn line(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("a line from the client in time")
            .unwrap()
            .expect("the client is still running");
        serde_json::from_str(&line).unwrap()
    }

    /// The client's next line about a connection.
    async fn connect(&mut self) -> Value {
        loop {
            let line = self.line().await;
            assert!(line.get("error").is_none(), "{line:#}");
            if line["event"] == "connect" {
                return line;
            }
        }
    }

    /// Broadcasts to the room and emits to socket `id` (through the first
    /// handle the application got for it), `n` each; after `cut_at`, the
    /// network fails for `down`.
    async fn send(&self, id: &str, range: std::ops::Range<u64>, cut_at: Option<(u64, Duration)>) {
        for n in range {
            self.io.to("r").emit("tick", &n).unwrap();
            let socket = self.handles.lock().unwrap()[id].clone();
            socket.emit("direct", &n).unwrap();
            if let Some((at, down)) = cut_at
                && at == n
            {
                // Between two polls no connection may be open: the network
                // stays down for `down` all the same, so the next poll
                // fails. That the client was cut shows in its next
                // connection, which the caller waits for.
                self.proxy.blackout(down);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn finish(mut self) -> Value {
        self.io.to("r").emit("done", &()).unwrap();
        let result = loop {
            let line = self.line().await;
            if line.get("ticks").is_some() {
                break line;
            }
        };
        let _ = self.client.wait().await;
        self.io.shutdown().await;
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .unwrap()
            .unwrap();
        assert!(result.get("error").is_none(), "{result:#}");
        result
    }
}

/// Cuts the client's connection, the network down for `down`; it comes
/// back after `delay_ms`.
async fn recovers_every_packet(transports: &str, down: Duration, delay_ms: u64) {
    let mut run = Run::start(Recovery::default(), transports, delay_ms).await;
    let first = run.connect().await;
    assert_eq!(first["recovered"], false);
    assert_eq!(first["joined"], true);
    let id = first["id"].as_str().unwrap().to_owned();

    run.send(&id, 0..PACKETS / 2, Some((PACKETS / 4, down)))
        .await;
    let second = run.connect().await;
    assert_eq!(second["recovered"], true, "{second}");
    assert_eq!(second["id"], id.as_str(), "the same socket id");
    run.send(&id, PACKETS / 2..PACKETS, None).await;

    let log = run.log.clone();
    let result = run.finish().await;
    let all: Vec<u64> = (0..PACKETS).collect();
    assert_eq!(
        result["ticks"],
        json!(all),
        "every broadcast once, in order"
    );
    assert_eq!(result["direct"], json!(all), "every emit once, in order");
    assert_eq!(result["offsets"], json!(2 * PACKETS));
    // The application saw the same socket come back with its data.
    // The middleware ran once, for the first connection: the recovered
    // socket skipped it and has what it attached then.
    log.wait_for(&format!(
        "connect {id} recovered=true data=Some(Object {{\"name\": String(\"ann\")}}) \
         checked=Some(Checked(1))"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_cut_under_the_client_loses_nothing() {
    recovers_every_packet("websocket", Duration::ZERO, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_cut_under_the_client_loses_nothing() {
    // Between two polls a cut may hit no request: the network stays down
    // long enough for the next poll to fail. The server learns of the lost
    // client by its heartbeat (0.5 s + 1 s here): the client comes back
    // after that.
    recovers_every_packet("polling", Duration::from_millis(1000), 2000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_window_the_client_gets_a_new_session() {
    let recovery = Recovery::default().with_max_disconnection_duration(Duration::from_millis(500));
    let mut run = Run::start(recovery, "websocket", 1500).await;
    let first = run.connect().await;
    let id = first["id"].as_str().unwrap().to_owned();
    run.send(&id, 0..10, Some((5, Duration::ZERO))).await;
    let second = run.connect().await;
    assert_eq!(second["recovered"], false, "{second}");
    assert_ne!(second["id"], id.as_str());
    assert_eq!(second["joined"], true, "the client resynchronizes");
    let new_id = second["id"].as_str().unwrap().to_owned();
    run.send(&new_id, 10..12, None).await;
    let result = run.finish().await;
    let ticks: Vec<u64> = serde_json::from_value(result["ticks"].clone()).unwrap();
    assert_eq!(&ticks[ticks.len() - 2..], [10, 11]);
    assert!(
        !ticks.contains(&9),
        "nothing replayed into a new session: {ticks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_not_recovered_goes_through_the_middlewares() {
    // The client misses more than one session may: a new session, and the
    // middleware runs for it even though recovered sockets skip it.
    let recovery = Recovery::default().with_missed_bounds(5, 1 << 20);
    let mut run = Run::start(recovery, "websocket", 600).await;
    let first = run.connect().await;
    let id = first["id"].as_str().unwrap().to_owned();
    run.send(&id, 0..30, Some((2, Duration::ZERO))).await;
    let second = run.connect().await;
    assert_eq!(second["recovered"], false, "{second}");
    let new_id = second["id"].as_str().unwrap().to_owned();
    let log = run.log.clone();
    run.finish().await;
    log.wait_for(&format!(
        "connect {new_id} recovered=false data=None checked=Some(Checked(2))"
    ))
    .await;
}
