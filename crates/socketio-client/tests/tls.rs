//! `https` and `wss` through rustls (the `tls` feature) against the reference Node.js server
//! serving TLS with the test certificate of `tests/tls/` (self-signed, for `localhost` and
//! `127.0.0.1`), over polling, WebSocket and the upgrade.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use socketio_client::{TransportKind, Transports};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_with_an_added_root() {
    let root = dir().join("../..");
    assert!(
        root.join("interop/node_modules/socket.io").exists(),
        "the reference server is missing: run `npm ci --prefix interop`"
    );
    let mut child = Command::new("node")
        .arg(root.join("interop/servers/node-server.mjs"))
        .args(["0", "--tls"])
        .arg(dir().join("tests/tls"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let port = serde_json::from_str::<serde_json::Value>(&line).unwrap()["ready"]
        .as_u64()
        .unwrap();
    let pem = std::fs::read(dir().join("tests/tls/cert.pem")).unwrap();
    for transports in [
        Transports::Polling,
        Transports::WebSocket,
        Transports::PollingThenWebSocket,
    ] {
        let socket = socketio_client::connect(&format!("https://127.0.0.1:{port}"))
            .transports(transports)
            .tls_root_certificates_pem(&pem)
            .unwrap()
            .connect()
            .unwrap();
        let answer = tokio::time::timeout(
            Duration::from_secs(20),
            socket.emit_with_ack("ack", &("over tls", 1)).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            answer.args::<(String, u32)>().unwrap(),
            ("over tls".to_owned(), 1)
        );
        if transports == Transports::PollingThenWebSocket {
            tokio::time::timeout(Duration::from_secs(10), async {
                while socket.transport() != Some(TransportKind::WebSocket) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .unwrap();
        }
        socket.close();
    }
    // Without the root, the certificate is refused: the attempt fails, the client retries.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let socket = socketio_client::connect(&format!("https://127.0.0.1:{port}"))
        .reconnection(false)
        .on_connect_error(move |_, e| {
            let _ = tx.send(e.to_string());
        })
        .connect()
        .unwrap();
    let error = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(error, "connection failed: xhr poll error");
    assert!(!socket.connected());
    socket.close();
    let _ = child.kill().await;
}
