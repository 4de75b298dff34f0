//! A real `redis-server` on a free port, Rust servers in the cluster, and
//! the Node processes (server, clients) the cluster tests drive.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

mod node;

pub use node::*;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use socketio_redis::RedisAdapter;
use socketio_tokio::{Socket, SocketIo};
use tokio::net::TcpListener;

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
            // A PING answered: this server, not another process that took
            // the port between the look and the bind (this one then exits).
            if answers_ping(self.port) && matches!(child.try_wait(), Ok(None)) {
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

/// Whether a Redis server on `port` answers PING.
fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
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
    join_room_of_query(&io);
    let adapter = RedisAdapter::builder(redis)
        .requests_timeout(Duration::from_secs(3))
        .max_backoff(Duration::from_millis(500))
        .attach(&io)
        .await
        .unwrap();
    let addr = serve(&io).await;
    (io, adapter, addr)
}

/// The cluster tests' `/`: a socket joins the room of its `room` query
/// parameter.
pub fn join_room_of_query(io: &SocketIo) {
    io.ns("/", |socket: Socket| async move {
        if let Some(room) = socket.handshake().query_param("room") {
            socket.join(room);
        }
    });
}

/// Serves `io` on a free port of 127.0.0.1, on a task of its own; its
/// address.
pub async fn serve(io: &SocketIo) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = io.clone();
    tokio::spawn(async move { served.serve(listener).await });
    addr
}

pub fn node_ready() {
    let client = workspace().join("interop/node_modules/@socket.io/redis-adapter/package.json");
    assert!(
        client.exists(),
        "the Node packages are missing: run `npm ci --prefix interop` at the workspace root"
    );
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

    /// Waits (bounded, 60 s) until every node says the cluster is up, knows
    /// every node, sees every slot served, and sees every node connected
    /// with no failure flag, twice in a row: a client that reads the slots
    /// from any node then finds every channel's node. (A node that said
    /// `cluster_state:ok` could still miss another's slots for a moment,
    /// and node-redis does not retry a subscription refused then.)
    pub fn wait_ok(&self) {
        let masters = self.ports.len();
        let mut in_a_row = 0;
        for _ in 0..600 {
            let ok = (0..masters).all(|i| {
                if self.children[i].is_none() {
                    return false;
                }
                let info = self.cli(i, &["cluster", "info"]);
                let nodes = self.cli(i, &["cluster", "nodes"]);
                let says = |line: String| info.lines().any(|l| l.trim() == line);
                says("cluster_state:ok".into())
                    && says("cluster_slots_ok:16384".into())
                    && says(format!("cluster_known_nodes:{masters}"))
                    && nodes.lines().count() == masters
                    && nodes.lines().all(|line| {
                        line.contains(" connected")
                            && !["fail", "handshake", "noaddr"]
                                .iter()
                                .any(|flag| line.contains(flag))
                    })
            });
            in_a_row = if ok { in_a_row + 1 } else { 0 };
            if in_a_row == 2 {
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

    /// How many clients subscribe to the sharded channel `channel` (on the
    /// node that serves it).
    pub fn subscribers(&self, channel: &str) -> u64 {
        let out = self.cli(self.owner_of(channel), &["pubsub", "shardnumsub", channel]);
        out.lines().nth(1).unwrap_or("0").trim().parse().unwrap()
    }

    /// Waits (bounded, 10 s) until the sharded channel `channel` has `n`
    /// subscribers.
    pub async fn wait_subscribers(&self, channel: &str, n: u64) {
        for _ in 0..400 {
            if self.subscribers(channel) == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(self.subscribers(channel), n, "{channel}");
    }

    /// The sharded channels with subscribers, over every node.
    pub fn shard_channels(&self) -> usize {
        (0..self.ports.len())
            .map(|i| {
                self.cli(i, &["pubsub", "shardchannels"])
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .count()
            })
            .sum()
    }

    /// Forgets every node's command statistics.
    pub fn reset_stats(&self) {
        for i in 0..self.ports.len() {
            self.cli(i, &["config", "resetstat"]);
        }
    }

    /// How many times `command` (lowercase) ran, over every node, since
    /// the last [`reset_stats`](Self::reset_stats).
    pub fn calls(&self, command: &str) -> u64 {
        let prefix = format!("cmdstat_{command}:calls=");
        (0..self.ports.len())
            .filter_map(|i| {
                let stats = self.cli(i, &["info", "commandstats"]);
                let line = stats.lines().find(|l| l.starts_with(&prefix))?;
                line[prefix.len()..].split(',').next()?.parse::<u64>().ok()
            })
            .sum()
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
