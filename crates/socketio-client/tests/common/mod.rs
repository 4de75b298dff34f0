//! The servers the client's interoperability tests run against (the reference Node.js server,
//! python-socketio's, and this workspace's), all with the same application, and a recorder
//! of what the client saw.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use socketio_tokio::{
    AckSender, ConnectError, ConnectHandler, ConnectRequest, RawArgs, Recovery, Socket, SocketIo,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// Which implementation serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The reference `socket.io` server (`interop/servers/node-server.mjs`).
    Node,
    /// python-socketio (`interop/python/server.py`).
    Python,
    /// `socketio-tokio`.
    Ours,
}

/// A running server; killed (a child process, by its pid) or shut down when dropped.
pub struct TestServer {
    pub kind: Kind,
    pub port: u16,
    pub recovery: bool,
    child: Option<Child>,
    /// Our server runs on a runtime of its own, on its own thread: dropping that runtime ends
    /// every task and closes every socket at once, as a process that exits.
    ours: Option<(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    )>,
}

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl TestServer {
    /// Starts a server of `kind` on `port` of 127.0.0.1 (0: a free one).
    pub async fn start(kind: Kind, port: u16, recovery: bool) -> TestServer {
        match kind {
            Kind::Ours => start_ours(port, recovery).await,
            Kind::Node | Kind::Python => {
                let mut cmd = match kind {
                    Kind::Node => {
                        let node_modules = workspace().join("interop/node_modules/socket.io");
                        assert!(
                            node_modules.exists(),
                            "the reference server is missing: run `npm ci --prefix interop` \
                             at the workspace root (`cargo xtask test` does it)"
                        );
                        let mut c = Command::new("node");
                        c.arg(workspace().join("interop/servers/node-server.mjs"));
                        c
                    }
                    _ => {
                        let py = workspace().join("interop/.venv/bin/python");
                        assert!(
                            py.exists(),
                            "the python-socketio virtualenv is missing: run `cargo xtask setup`"
                        );
                        let mut c = Command::new(py);
                        c.arg(workspace().join("interop/python/server.py"));
                        c
                    }
                };
                cmd.arg(port.to_string());
                if recovery {
                    cmd.arg("--recovery");
                }
                let mut child = cmd
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("the server starts");
                let stdout = child.stdout.take().expect("stdout");
                let mut lines = BufReader::new(stdout).lines();
                let port = tokio::time::timeout(Duration::from_secs(20), async {
                    while let Some(line) = lines.next_line().await.expect("read") {
                        if let Ok(v) = serde_json::from_str::<Value>(&line)
                            && let Some(p) = v.get("ready").and_then(Value::as_u64)
                        {
                            return p as u16;
                        }
                    }
                    panic!("the server exited before it was ready");
                })
                .await
                .expect("the server is ready in time");
                // The rest of its output is drained, so that it never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                TestServer {
                    kind,
                    port,
                    recovery,
                    child: Some(child),
                    ours: None,
                }
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Stops the server at once, its connections with it.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
        if let Some((stop, thread)) = self.ours.take() {
            let _ = stop.send(());
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Stops the server, then starts another of the same kind on the same port.
    pub async fn restart(self) -> TestServer {
        let (kind, port, recovery) = (self.kind, self.port, self.recovery);
        self.stop().await;
        // The port may take a moment to be free again.
        for _ in 0..50 {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        TestServer::start(kind, port, recovery).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if let Some((stop, _thread)) = self.ours.take() {
            let _ = stop.send(());
        }
    }
}

async fn start_ours(port: u16, recovery: bool) -> TestServer {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (port_tx, port_rx) = tokio::sync::oneshot::channel::<u16>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let io = ours(recovery);
            let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
            let _ = port_tx.send(listener.local_addr().expect("addr").port());
            tokio::select! {
                _ = io.serve(listener) => {}
                _ = stop_rx => {}
            }
        });
        // Dropping the runtime ends every connection's task.
        drop(rt);
    });
    let port = port_rx.await.expect("our server starts");
    TestServer {
        kind: Kind::Ours,
        port,
        recovery,
        child: None,
        ours: Some((stop_tx, thread)),
    }
}

/// This workspace's server with the test application.
fn ours(recovery: bool) -> SocketIo {
    let mut builder = SocketIo::builder()
        .ping_interval(Duration::from_millis(2000))
        .ping_timeout(Duration::from_millis(1500));
    if recovery {
        builder = builder.connection_state_recovery(Recovery::default());
    }
    let io = builder.build().expect("server");
    for nsp in ["/", "/admin"] {
        io.ns(nsp, setup);
    }
    let authorize = |req: ConnectRequest| async move {
        let auth: Value = req.auth().unwrap_or_default();
        if auth.get("token").and_then(Value::as_str) == Some("secret") {
            Ok(())
        } else {
            Err(ConnectError::new("not authorized").with_data(serde_json::json!({ "code": 403 })))
        }
    };
    io.ns("/private", setup.with(authorize));
    io
}

/// The application of `interop/servers/node-server.mjs`, on this workspace's server.
async fn setup(io: SocketIo, socket: Socket) {
    let mut auth: Value = socket.auth().unwrap_or(Value::Object(Default::default()));
    if let Value::Object(m) = &mut auth {
        m.remove("pid");
        m.remove("offset");
    }
    if !socket.recovered() {
        let _ = socket.emit("welcome", &(auth, false, socket.ns()));
    }
    let count = Arc::new(Mutex::new(0u64));
    socket.on(
        "echo",
        |socket: Socket, RawArgs(args): RawArgs| async move { socket.emit_raw("echo-back", args) },
    );
    socket.on("ack", |RawArgs(args): RawArgs, ack: AckSender| async move {
        ack.send_raw(args)
    });
    socket.on("ask", |socket: Socket, RawArgs(args): RawArgs| async move {
        let (n,): (Value,) = args.args(0).unwrap_or((Value::Null,));
        let reply = socket
            .timeout(Duration::from_secs(5))
            .emit_with_ack::<(Value,), _>("question", &(n,))?
            .await;
        match reply {
            Ok((answer,)) => socket.emit("answered", &(answer,)),
            Err(e) => socket.emit("answered", &(format!("error: {e}"),)),
        }?;
        Ok::<(), socketio_tokio::AckError>(())
    });
    let c = count.clone();
    socket.on("count", move || {
        *c.lock().unwrap() += 1;
        async {}
    });
    let c = count.clone();
    socket.on("get-count", move |ack: AckSender| {
        let n = *c.lock().unwrap();
        async move { ack.send(&(n,)) }
    });
    socket.on("kick", |socket: Socket| async move { socket.disconnect() });
    let nsp = socket.ns().to_owned();
    socket.on("ticks", move |RawArgs(args): RawArgs| {
        let io = io.clone();
        let nsp = nsp.clone();
        async move {
            let (n, ms): (u64, u64) = args.args(0).unwrap_or((0, 0));
            tokio::spawn(async move {
                for i in 1..=n {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let _ = io.of(nsp.as_str()).emit("tick", &(i,));
                }
            });
        }
    });
}

/// What the client saw, in order, as short strings; a test waits for a line to appear.
#[derive(Clone, Default)]
pub struct Recorder {
    lines: Arc<Mutex<Vec<String>>>,
    changed: Arc<Notify>,
}

impl Recorder {
    pub fn push(&self, line: impl Into<String>) {
        self.lines.lock().unwrap().push(line.into());
        self.changed.notify_waiters();
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for some line; returns that line.
    pub async fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let result = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let notified = self.changed.notified();
                if let Some(l) = self.lines.lock().unwrap().iter().find(|l| pred(l)) {
                    return l.clone();
                }
                notified.await;
            }
        })
        .await;
        match result {
            Ok(l) => l,
            Err(_) => panic!("timed out waiting for {what}; saw {:#?}", self.lines()),
        }
    }

    /// Waits for a line equal to `line`.
    pub async fn wait_line(&self, line: &str) -> String {
        self.wait(line, |l| l == line).await
    }

    /// Waits until `line` has come `n` times.
    pub async fn wait_count(&self, line: &str, n: usize) {
        let result = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let notified = self.changed.notified();
                if self.count_line(line) >= n {
                    return;
                }
                notified.await;
            }
        })
        .await;
        if result.is_err() {
            panic!(
                "timed out waiting for {line:?} {n} times; saw {:#?}",
                self.lines()
            );
        }
    }

    /// How many lines are `line`.
    pub fn count_line(&self, line: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| *l == line)
            .count()
    }

    /// How many lines start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }
}

/// Some bytes, for the binary tests.
pub fn bin() -> Bytes {
    Bytes::from_static(&[0, 1, 2, 255])
}
