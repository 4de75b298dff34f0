//! Two chat instances in one cluster over a real `redis-server` (the chat's
//! `--redis`, and its `--redis-streams`): presence, messages and typing of a
//! room reach its members on the other instance
//! (`interop/cluster/chat-cluster.mjs`).

#![allow(clippy::unwrap_used)]

#[path = "../examples/chat/server.rs"]
#[allow(dead_code)]
mod chat;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Redis(std::process::Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chat_instances_share_their_rooms() {
    share_rooms(chat::Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chat_instances_share_their_rooms_through_redis_streams() {
    share_rooms(chat::Backend::RedisStreams).await;
}

/// The scenario, the instances joined through `backend` of a Redis URL.
async fn share_rooms(backend: fn(String) -> chat::Backend) {
    assert!(
        workspace()
            .join("interop/node_modules/socket.io-client/package.json")
            .exists(),
        "the official JavaScript client is missing: run `npm ci --prefix interop` at the workspace root"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _redis = Redis(
        std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is missing (apt-get install redis-server)"),
    );
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let url = format!("redis://127.0.0.1:{port}");
    let mut addrs = Vec::new();
    let mut adapters = Vec::new();
    for _ in 0..2 {
        let io = chat::new_server().unwrap();
        adapters.push(backend(url.clone()).join(&io).await.unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        tokio::spawn(chat::serve_on(
            io,
            listener,
            Bytes::new(),
            std::future::pending(),
        ));
    }
    let out = Command::new("node")
        .arg(workspace().join("interop/cluster/chat-cluster.mjs"))
        .arg(format!("http://{}", addrs[0]))
        .arg(format!("http://{}", addrs[1]))
        .output()
        .await
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    let seen: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|_| panic!("no result: {line} {}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{seen}");
    assert_eq!(seen["joined"][0], true);
    assert_eq!(seen["joined"][1], true);
    assert_eq!(
        seen["joined"][2],
        serde_json::json!({"room": "lobby", "name": "bob"})
    );
    assert_eq!(seen["ack"], true);
    assert_eq!(seen["message"]["text"], "hi from 1");
    assert_eq!(seen["message"]["name"], "ana");
    assert_eq!(seen["reply"]["text"], "hi from 2");
    assert_eq!(seen["reply"]["name"], "bob");
    assert_eq!(
        seen["typing"],
        serde_json::json!({"room": "lobby", "name": "bob"})
    );
    assert_eq!(
        seen["left"],
        serde_json::json!({"room": "lobby", "name": "bob"})
    );
}
