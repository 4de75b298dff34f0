//! Node processes speaking JSON lines (servers, clients), and the small
//! helpers of the cluster tests; shared with the other adapters' tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
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

    /// Writes one line of text on its stdin.
    pub async fn send_line(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
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

/// The clients of the cross-language cluster scripts: two on each of the
/// servers `a`, `b` and `n`.
pub const CLIENTS: [&str; 6] = ["a1", "a2", "b1", "b2", "n1", "n2"];

/// A set of client names.
pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Which of `names` received `event`.
pub fn receivers_among(clients: &Node, names: &[&str], event: &str) -> BTreeSet<String> {
    names
        .iter()
        .filter(|c| got(clients, c, event))
        .map(|c| (*c).to_owned())
        .collect()
}

/// Which of [`CLIENTS`] received `event`.
pub fn receivers(clients: &Node, event: &str) -> BTreeSet<String> {
    receivers_among(clients, &CLIENTS, event)
}

/// How many times client `name` received `event`.
pub fn times_got(clients: &Node, name: &str, event: &str) -> usize {
    events_of(clients, name)
        .iter()
        .filter(|(e, _)| e == event)
        .count()
}

/// Every client in `want` gets `event` exactly once, and no other of
/// `names`.
pub async fn exactly_among(clients: &Node, names: &[&str], event: &str, want: &BTreeSet<String>) {
    eventually(&format!("{event} reaches {want:?}"), || {
        receivers_among(clients, names, event) == *want
    })
    .await;
    // Nothing more arrives after a while: no duplicates, nothing leaked.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receivers_among(clients, names, event), *want, "{event}");
    for c in want {
        let n = times_got(clients, c, event);
        assert_eq!(n, 1, "{c} got {event} {n} times");
    }
}

/// Every client in `want` gets `event` exactly once, and no other of
/// [`CLIENTS`].
pub async fn exactly(clients: &Node, event: &str, want: &BTreeSet<String>) {
    exactly_among(clients, &CLIENTS, event, want).await;
}
