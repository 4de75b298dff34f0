//! A real `redis-server` on a free port, Rust servers in the cluster, and
//! the Node processes (server, clients) the cluster tests drive.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use socketio_redis::RedisAdapter;
use socketio_tokio::{Socket, SocketIo};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdin, Command};

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` with no persistence, killed on drop.
pub struct Redis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl Redis {
    pub fn start() -> Redis {
        // A port found free can be taken again before the server binds it
        // (another test's connection): try a few.
        let mut last = String::new();
        for _ in 0..5 {
            let mut redis = Redis {
                port: free_port(),
                child: None,
            };
            match redis.spawn() {
                Ok(()) => return redis,
                Err(e) => last = e,
            }
        }
        panic!("{last}");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is missing (apt-get install redis-server)");
        // Generous: the machine may be busy building and testing.
        for _ in 0..1200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "redis-server exited ({status}) instead of listening on port {}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("redis-server did not start on port {}", self.port))
    }

    /// Kills the server (its clients see their connections drop).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.spawn() {
            panic!("{e}");
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Rust server in the cluster: sockets join the room of their `room`
/// query parameter.
pub async fn rust_server(redis: &str) -> (SocketIo, RedisAdapter, SocketAddr) {
    let io = SocketIo::new().unwrap();
    io.ns("/", |socket: Socket| async move {
        if let Some(room) = socket.handshake().query_param("room") {
            socket.join(room);
        }
    });
    let adapter = RedisAdapter::builder(redis)
        .requests_timeout(Duration::from_secs(3))
        .max_backoff(Duration::from_millis(500))
        .attach(&io)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = io.clone();
    tokio::spawn(async move { served.serve(listener).await });
    (io, adapter, addr)
}

/// A Node process speaking JSON lines: what it printed, and its stdin.
pub struct Node {
    child: Child,
    stdin: ChildStdin,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Node {
    pub async fn spawn(script: &str, args: &[String]) -> Node {
        let mut child = Command::new("node")
            .arg(workspace().join("interop/cluster").join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node is missing");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                match serde_json::from_str(&line) {
                    Ok(v) => sink.lock().unwrap().push(v),
                    Err(_) => eprintln!("node: {line}"),
                }
            }
        });
        Node {
            child,
            stdin,
            lines,
        }
    }

    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits (bounded) for a line that `f` accepts, and returns it.
    pub async fn wait_for(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..1000 {
            if let Some(v) = self.lines().into_iter().find(|v| f(v)) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never saw {what}; lines: {:#?}", self.lines());
    }

    pub async fn send(&mut self, cmd: Value) {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Sends a command and waits for its `done` (after its answer line, if any).
    pub async fn command(&mut self, cmd: Value) -> Vec<Value> {
        let before = self.lines().len();
        let op = cmd["op"].clone();
        self.send(cmd).await;
        for _ in 0..1000 {
            let lines = self.lines();
            let new = &lines[before..];
            if let Some(err) = new.iter().find(|v| v.get("error").is_some()) {
                panic!("node failed: {err}");
            }
            if new.iter().any(|v| v["done"] == op) {
                return new.to_vec();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("node never finished {op}");
    }

    pub async fn stop(mut self) {
        let _ = self.stdin.write_all(b"quit\n").await;
        let _ = self.child.kill().await;
    }
}

/// The events a client of the clients process received, in order.
pub fn events_of(clients: &Node, name: &str) -> Vec<(String, Value)> {
    clients
        .lines()
        .into_iter()
        .filter(|v| v["c"] == name)
        .map(|v| {
            (
                v["ev"].as_str().unwrap_or_default().to_owned(),
                v["args"].clone(),
            )
        })
        .collect()
}

/// Whether client `name` received `event`.
pub fn got(clients: &Node, name: &str, event: &str) -> bool {
    events_of(clients, name).iter().any(|(e, _)| e == event)
}

pub fn node_ready() {
    let client = workspace().join("interop/node_modules/@socket.io/redis-adapter/package.json");
    assert!(
        client.exists(),
        "the Node packages are missing: run `npm ci --prefix interop` at the workspace root"
    );
}

/// Waits (bounded, 20 s) until `f` holds.
pub async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..2000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

/// A Redis Cluster of `redis-server` masters (no replicas, no persistence)
/// in a directory of its own, made with `redis-cli --cluster create`;
/// every server is killed on drop.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    bus: Vec<u16>,
    dir: PathBuf,
    children: Vec<Option<std::process::Child>>,
}

impl RedisCluster {
    pub fn start(masters: usize) -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "socketio-redis-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = RedisCluster {
            ports: Vec::new(),
            bus: Vec::new(),
            dir,
            children: Vec::new(),
        };
        for _ in 0..masters {
            cluster.ports.push(free_port());
            cluster.bus.push(free_port());
            cluster.children.push(None);
        }
        for i in 0..masters {
            cluster.spawn(i);
        }
        let mut create = std::process::Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &cluster.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli is missing (apt-get install redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_ok();
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    fn spawn(&mut self, i: usize) {
        let port = self.ports[i].to_string();
        let conf = self.dir.join(format!("nodes-{port}.conf"));
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--cluster-enabled", "yes", "--cluster-port"])
            .arg(self.bus[i].to_string())
            .arg("--cluster-config-file")
            .arg(&conf)
            .args(["--cluster-node-timeout", "2000"])
            .args(["--cluster-require-full-coverage", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is missing (apt-get install redis-server)");
        for _ in 0..1200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.ports[i])).is_ok() {
                self.children[i] = Some(child);
                return;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("redis-server exited ({status}) instead of listening on port {port}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on port {port}");
    }

    /// `redis-cli` against node `i`.
    pub fn cli(&self, i: usize, args: &[&str]) -> String {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &self.ports[i].to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (bounded, 60 s) until every node says the cluster is up.
    pub fn wait_ok(&self) {
        for _ in 0..600 {
            let ok = (0..self.ports.len()).all(|i| {
                self.children[i].is_some()
                    && self
                        .cli(i, &["cluster", "info"])
                        .contains("cluster_state:ok")
            });
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the Redis Cluster never came up");
    }

    /// The node that serves the hash slot of `key`.
    pub fn owner_of(&self, key: &str) -> usize {
        let slot: u16 = self
            .cli(0, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .unwrap();
        let nodes = self.cli(0, &["cluster", "nodes"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let serves = fields.iter().skip(8).any(|range| {
                let mut ends = range.split('-').map(|s| s.parse::<u16>());
                match (ends.next(), ends.next()) {
                    (Some(Ok(a)), Some(Ok(b))) => (a..=b).contains(&slot),
                    (Some(Ok(a)), None) => a == slot,
                    _ => false,
                }
            });
            if serves {
                let port: u16 = fields[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
                return self.ports.iter().position(|p| *p == port).unwrap();
            }
        }
        panic!("no node serves slot {slot}: {nodes}");
    }

    /// Kills node `i` (its clients see their connections drop).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills node `i` and starts it again on the same port, with its
    /// cluster configuration (its identity and its slots).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_ok();
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
