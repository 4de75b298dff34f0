//! Debian's PostgreSQL started in a temporary directory as the unprivileged
//! user `nobody` (it refuses to run as root), Rust servers in the cluster,
//! and the Node processes of `socketio-redis`'s cluster tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

#[path = "../../../socketio-redis/tests/common/node.rs"]
mod node;

pub use node::*;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use socketio_postgres::{Heartbeat, PostgresAdapter};
use socketio_tokio::{Socket, SocketIo};
use tokio::net::TcpListener;

/// The uid and gid the server runs as.
const NOBODY: u32 = 65534;

/// The binaries of the newest PostgreSQL installed.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is missing (apt-get install postgresql)")
        .flatten()
        .map(|v| v.path().join("bin"))
        .filter(|b| b.join("postgres").exists() && b.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("PostgreSQL is missing (apt-get install postgresql)")
}

/// A command run as `nobody` (when this process is root; as it is otherwise).
fn as_nobody(program: PathBuf) -> Command {
    let root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if root.unwrap_or(false) {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--reset-env",
        ])
        .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL server (no fsync, trust authentication, user `postgres`)
/// on a free port, stopped on drop, its directory removed.
pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = std::env::temp_dir().join(format!(
            "socketio-postgres-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY));
        let mut pg = Postgres {
            port: 0,
            dir,
            child: None,
        };
        let out = as_nobody(bin_dir().join("initdb"))
            .arg("-D")
            .arg(pg.data())
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A port found free can be taken before the server binds it: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port();
            match pg.spawn() {
                Ok(()) => return pg,
                Err(e) => last = e,
            }
        }
        panic!("{last}");
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The connection string.
    pub fn config(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// The connection URL (for node's `pg`).
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut child = as_nobody(bin_dir().join("postgres"))
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Generous: the machine may be busy building and testing.
        for _ in 0..1200 {
            let ready = Command::new(bin_dir().join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "postgres exited ({status}) instead of listening on port {}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("postgres did not start on port {}", self.port))
    }

    /// Stops the server (fast shutdown: its clients see their connections
    /// close); killed if it takes more than 20 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            for _ in 0..400 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it and starts it again on the same port, with the same data.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("{e}");
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Heartbeats fast enough for the tests (the Node server uses the same).
pub const HEARTBEAT: Heartbeat = Heartbeat {
    interval: Duration::from_secs(1),
    timeout: Duration::from_secs(3),
};

/// A Rust server in the cluster: sockets join the room of their `room`
/// query parameter.
pub async fn rust_server(config: &str) -> (SocketIo, PostgresAdapter, SocketAddr) {
    let io = SocketIo::new().unwrap();
    io.ns("/", |socket: Socket| async move {
        if let Some(room) = socket.handshake().query_param("room") {
            socket.join(room);
        }
    });
    let adapter = PostgresAdapter::builder(config)
        .requests_timeout(Duration::from_secs(3))
        .heartbeat(HEARTBEAT)
        .attach(&io)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = io.clone();
    tokio::spawn(async move { served.serve(listener).await });
    (io, adapter, addr)
}

pub fn node_ready() {
    let adapter = workspace().join("interop/node_modules/@socket.io/postgres-adapter/package.json");
    assert!(
        adapter.exists(),
        "the Node packages are missing: run `npm ci --prefix interop` at the workspace root"
    );
}
