//! The chat example's event contract (its README), checked with 50 official
//! JavaScript clients across several rooms (`interop/clients/chat-contract.mjs`):
//! every message reaches exactly the other members of its room, acks arrive,
//! refusals carry errors, presence and typing stay in their room, and a
//! joiner gets the last 50 messages.

#![allow(clippy::unwrap_used)]

#[path = "../examples/chat/server.rs"]
#[allow(dead_code)]
mod chat;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::oneshot;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Checks that node and the official client are there; fails with how to
/// install them otherwise.
fn require_node() {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        node,
        "node is not installed: install Node.js 18 or later (e.g. `apt-get install nodejs npm`), \
         then run `npm ci --prefix interop` at the workspace root"
    );
    assert!(
        workspace()
            .join("interop/node_modules/socket.io-client/package.json")
            .exists(),
        "the official JavaScript client is missing: run `npm ci --prefix interop` at the workspace root"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_follow_the_event_contract() {
    require_node();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    // The page is not used here: no browser client needed.
    let server = tokio::spawn(chat::serve(listener, Bytes::new(), async {
        let _ = stopped.await;
    }));

    let mut child = Command::new("node")
        .arg(workspace().join("interop/clients/chat-contract.mjs"))
        .arg(format!("http://{addr}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.expect("the client's output") {
            out.push(line);
        }
    })
    .await;
    assert!(read.is_ok(), "the clients did not finish in time: {out:?}");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("node exits")
        .expect("node's status");
    let result: serde_json::Value = out
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    assert!(
        status.success() && result.get("error").is_none() && result["ok"] == true,
        "the contract failed: {result:#}"
    );
    assert_eq!(result["clients"], 50);
    // 60 memberships, three messages each, and one of 2000 characters.
    assert_eq!(result["joins"], 60);
    assert_eq!(result["messages"], 181);
    // Each room has 12 members: each message reaches the 11 others.
    assert_eq!(result["deliveries"], 181 * 11);

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops in time")
        .expect("the server task")
        .expect("the server");
}
