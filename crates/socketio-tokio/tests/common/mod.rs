//! The application the interoperability tests run against, and helpers to
//! start it and to run the official clients.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use socketio_tokio::{
    AckError, AckSender, ConnectError, ConnectHandler, ConnectRequest, Cors, Data,
    DisconnectReason, EventName, RawArgs, Socket, SocketIo, SocketIoBuilder,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

mod log;
pub use log::Log;

#[derive(Clone)]
struct Token(String);

#[derive(Deserialize)]
struct Person {
    name: String,
    age: u32,
}

#[derive(Deserialize)]
struct Auth {
    token: String,
}

/// Declares the test application on `io`.
pub fn app(io: &SocketIo, log: &Log) {
    let io2 = io.clone();
    let log2 = log.clone();
    io.ns("/", move |socket: Socket| {
        let io = io2.clone();
        let log = log2.clone();
        async move {
            let l = log.clone();
            socket.on_any(move |_s, event, _p| {
                if event == "greet" {
                    l.push("any:greet");
                }
            });
            let l = log.clone();
            socket.on_any_outgoing(move |_s, event, _p| {
                if event == "greeting" {
                    l.push("out:greeting");
                }
            });
            socket.use_middleware(|_s, event| async move {
                if event.name.starts_with("forbidden:") {
                    return Err("refused");
                }
                Ok(())
            });
            socket.on("echo", |socket: Socket, RawArgs(args): RawArgs| async move {
                socket.emit_raw("echo-back", args)
            });
            socket.on("greet", |socket: Socket, Data(p): Data<Person>| async move {
                socket.emit("greeting", &format!("hello {} ({})", p.name, p.age))
            });
            socket.on("send-bin", |socket: Socket| async move {
                socket.emit("bin", &(Bytes::from_static(&[7, 7, 7]), "label"))
            });
            socket.on("whoami", |socket: Socket, ack: AckSender| async move {
                ack.send(&socket.id())
            });
            socket.on("sum", |Data((a, b)): Data<(i64, i64)>, ack: AckSender| async move {
                ack.send(&(a + b))
            });
            socket.on("bin-ack", |ack: AckSender| async move {
                ack.send(&Bytes::from_static(&[5, 6]))
            });
            socket.on("ask-me", |socket: Socket, ack: AckSender| async move {
                let reply = socket
                    .emit_with_ack::<(String, Bytes), _>("question", &"life")?
                    .await;
                match reply {
                    Ok((text, bin)) => ack.send(&format!("{text}/{:?}", bin.to_vec())),
                    Err(e) => ack.send(&format!("error: {e}")),
                }?;
                Ok::<(), AckError>(())
            });
            socket.on("ask-silent", |socket: Socket, ack: AckSender| async move {
                let reply = socket
                    .timeout(Duration::from_millis(200))
                    .emit_with_ack::<(), _>("silent", &())?
                    .await;
                let answer = match reply {
                    Err(AckError::Timeout) => "timeout".to_owned(),
                    other => format!("unexpected: {other:?}"),
                };
                ack.send(&answer)?;
                Ok::<(), AckError>(())
            });
            socket.on_fallback(
                |EventName(name): EventName, RawArgs(args): RawArgs, ack: AckSender| async move {
                    ack.send(&("fallback", name.as_str(), args.json().as_str()))
                },
            );
            socket.on("join", |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
                socket.join(room);
                ack.send(&())
            });
            socket.on(
                "shout",
                |socket: Socket, Data((room, text)): Data<(String, String)>, ack: AckSender| async move {
                    socket.to(room).emit("shout", &text)?;
                    ack.send(&())
                },
            );
            socket.on(
                "shout-bin",
                |socket: Socket, Data((room, text)): Data<(String, String)>, ack: AckSender| async move {
                    socket
                        .to(room)
                        .emit("shout-bin", &(text, Bytes::from_static(&[1, 2, 3])))?;
                    ack.send(&())
                },
            );
            let io3 = io.clone();
            socket.on("everyone", move |Data(text): Data<String>, ack: AckSender| {
                let io = io3.clone();
                async move {
                    io.emit("all", &text)?;
                    ack.send(&())
                }
            });
            let io3 = io.clone();
            socket.on("collect-votes", move |ack: AckSender| {
                let io = io3.clone();
                async move {
                    let mut stream = io.emit_with_ack::<i64, _>("vote", &())?;
                    let mut votes = Vec::new();
                    while let Some(ack) = stream.next().await {
                        if let Ok(v) = ack.result {
                            votes.push(v);
                        }
                    }
                    votes.sort_unstable();
                    ack.send(&(votes,))
                }
            });
            let io3 = io.clone();
            socket.on("list", move |Data(room): Data<String>, ack: AckSender| {
                let io = io3.clone();
                async move {
                    let members = io.of("/").to(room.as_str()).sockets().len();
                    let rooms: Vec<String> = io
                        .rooms("/")
                        .iter()
                        .filter(|r| r.starts_with("room-"))
                        .map(|r| r.to_string())
                        .collect();
                    ack.send(&((members, rooms),))
                }
            });
            let io3 = io.clone();
            socket.on("kick-room", move |Data(room): Data<String>, ack: AckSender| {
                let io = io3.clone();
                async move {
                    io.of("/").to(room).disconnect()?;
                    ack.send(&())
                }
            });
            socket.on("kick-me", |socket: Socket| async move { socket.disconnect() });
            socket.on("close-me", |socket: Socket| async move { socket.close() });
            socket.on("panic", |s: Socket| async move {
                if s.connected() {
                    panic!("a handler panics");
                }
            });
            let l = log.clone();
            socket.on_disconnect(move |socket: Socket, reason: DisconnectReason| {
                let l = l.clone();
                async move {
                    l.push(format!("disconnect {} {reason}", socket.ns()));
                }
            });
        }
    });
    let admin = |socket: Socket| async move {
        let token = socket.extensions().get::<Token>().map(|t| t.0);
        socket.emit("hello", &token)
    };
    io.ns(
        "/admin",
        admin.with(|req: ConnectRequest| async move {
            let auth: Auth = req.auth().map_err(|_| ConnectError::new("no token"))?;
            if auth.token != "good" {
                return Err(ConnectError::new("forbidden")
                    .with_data(serde_json::json!({ "reason": "bad token" })));
            }
            req.extensions().insert(Token(auth.token));
            Ok(())
        }),
    );
    io.dyn_ns(
        |name| name.starts_with("/dyn-"),
        |socket: Socket| async move { socket.emit("hello", &(socket.ns(), socket.id())) },
    );
}

/// A running server.
pub struct Server {
    pub io: SocketIo,
    pub addr: SocketAddr,
    pub log: Log,
    pub task: JoinHandle<()>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts down gracefully and waits for `serve` to return.
    pub async fn stop(self) {
        self.io.shutdown().await;
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task");
    }
}

pub fn builder() -> SocketIoBuilder {
    SocketIo::builder()
        .cors(Cors::any())
        .ping_interval(Duration::from_millis(500))
        .ping_timeout(Duration::from_millis(1000))
}

/// Starts the test application on `addr` (port 0 for a free one).
pub async fn start_on(addr: &str, log: Log) -> Server {
    start_with(builder(), addr, log).await
}

/// Starts the test application, configured by `builder`, on `addr` (port 0
/// for a free one).
pub async fn start_with(builder: SocketIoBuilder, addr: &str, log: Log) -> Server {
    let io = builder.build().expect("server");
    app(&io, &log);
    let listener = TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let io2 = io.clone();
    let task = tokio::spawn(async move {
        io2.serve(listener).await.expect("serve");
    });
    Server {
        io,
        addr,
        log,
        task,
    }
}

pub async fn start() -> Server {
    start_on("127.0.0.1:0", Log::default()).await
}

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Checks that node and the official client are installed; fails with how
/// to install them otherwise.
pub fn require_node() {
    let ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "node is not installed: install Node.js (e.g. `apt-get install nodejs npm`), \
         then run `npm ci --prefix interop` at the workspace root"
    );
    for package in ["socket.io-client", "socket.io-client-v2"] {
        let client = workspace().join(format!("interop/node_modules/{package}/package.json"));
        assert!(
            client.exists(),
            "the official JavaScript client ({package}) is missing: run `npm ci --prefix interop` \
             at the workspace root (`cargo xtask test` does it)"
        );
    }
}

/// Starts a node scenario.
pub fn spawn_node(scenario: &str, url: &str, args: &[&str]) -> Child {
    spawn_script("scenarios.mjs", scenario, url, args)
}

/// Starts a scenario of the node script `interop/clients/<script>`; the
/// child is killed when dropped.
pub fn spawn_script(script: &str, scenario: &str, url: &str, args: &[&str]) -> Child {
    let mut all = vec![scenario, url];
    all.extend_from_slice(args);
    spawn_bare_script(script, &all)
}

/// Starts the node script `interop/clients/<script>` with `args`; the child
/// is killed when dropped.
pub fn spawn_bare_script(script: &str, args: &[&str]) -> Child {
    require_node();
    Command::new("node")
        .arg(workspace().join("interop/clients").join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts")
}

/// Reads a client's JSON lines until it exits (bounded); returns them all.
pub async fn lines(
    child: &mut Child,
    mut on_line: impl FnMut(&serde_json::Value),
) -> Vec<serde_json::Value> {
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout).lines();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = reader.next_line().await {
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|_| serde_json::json!({ "raw": line }));
            on_line(&v);
            out.push(v);
        }
    })
    .await;
    assert!(read.is_ok(), "the client did not finish in time: {out:?}");
    out
}

/// Runs a node scenario to its end; returns its result, which must have no error.
pub async fn run_node(scenario: &str, url: &str, args: &[&str]) -> serde_json::Value {
    run_script("scenarios.mjs", scenario, url, args).await
}

/// Runs a scenario of `interop/clients/<script>` to its end; returns its
/// result, which must have no error.
pub async fn run_script(
    script: &str,
    scenario: &str,
    url: &str,
    args: &[&str],
) -> serde_json::Value {
    let mut child = spawn_script(script, scenario, url, args);
    let out = lines(&mut child, |_| {}).await;
    let _ = child.wait().await;
    let result = out.last().cloned().unwrap_or_default();
    assert!(
        result.get("error").is_none(),
        "{script} scenario {scenario} failed: {result:#}"
    );
    result
}

/// Checks that the python client's virtualenv is there.
pub fn python() -> PathBuf {
    let py = workspace().join("interop/.venv/bin/python");
    assert!(
        py.exists(),
        "the python-socketio virtualenv is missing: run `python3 -m venv interop/.venv && \
         interop/.venv/bin/pip install -r interop/python/requirements.txt` at the workspace root"
    );
    py
}

/// Runs a python scenario to its end; returns its result, which must have no error.
pub async fn run_python(scenario: &str, url: &str, args: &[&str]) -> serde_json::Value {
    let mut child = Command::new(python())
        .arg(workspace().join("interop/python/client.py"))
        .arg(scenario)
        .arg(url)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let out = lines(&mut child, |_| {}).await;
    let _ = child.wait().await;
    let result = out.last().cloned().unwrap_or_default();
    assert!(
        result.get("error").is_none(),
        "python scenario {scenario} failed: {result:#}"
    );
    result
}

/// The `restart` scenario of the node script `script`: the client connects
/// to `first`, which shuts down gracefully; `start_second` brings a new
/// server up on the same address, and the client reconnects by itself.
/// Returns the script's last line and the second server.
pub async fn restart_scenario<F, Fut>(
    script: &str,
    transports: &str,
    first: Server,
    start_second: F,
) -> (serde_json::Value, Server)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Server>,
{
    let addr = first.addr.to_string();
    let url = first.url();
    let log = first.log.clone();
    let mut child = spawn_script(script, "restart", &url, &[transports]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        let out = lines(&mut child, move |line| {
            let _ = tx.send(line.clone());
        })
        .await;
        let _ = child.wait().await;
        out
    });
    let first_connect = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the client connects")
        .expect("a line");
    assert_eq!(first_connect["event"], "connect", "{first_connect}");
    first.stop().await;
    log.wait_until("the shutdown", |l| l == "disconnect / server shutting down")
        .await;
    // A new server on the same address: the client finds it on its own.
    let second = start_second(addr).await;
    let out = reader.await.expect("reader");
    (out.last().cloned().unwrap_or_default(), second)
}

/// The end of a round trip with the test application: the client's own
/// disconnection reaches the server, whose `on_any` and `on_any_outgoing`
/// listeners saw the greeting; then the server stops.
pub async fn client_left_after_greeting(server: Server) {
    server
        .log
        .wait_until("the client's disconnect", |l| {
            l == "disconnect / client namespace disconnect"
        })
        .await;
    let log = server.log.lines();
    assert!(log.contains(&"any:greet".to_owned()), "{log:?}");
    assert!(log.contains(&"out:greeting".to_owned()), "{log:?}");
    server.stop().await;
}
