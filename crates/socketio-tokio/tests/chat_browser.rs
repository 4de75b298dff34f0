//! The chat example end to end in headless Chromium: the server runs here,
//! `interop/browser/chat.mjs` drives three pages with playwright-core, and
//! stops and restarts the server when the script asks, to see the pages
//! reconnect. The script also saves a screenshot (`target/chat/chat.png`,
//! or the path in `CHAT_SCREENSHOT`, which refreshes `docs/chat.png`).

#![allow(clippy::unwrap_used)]

#[path = "../examples/chat/server.rs"]
#[allow(dead_code)]
mod chat;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const CHROMIUM: &str = "/usr/bin/chromium";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Checks that Chromium, node, playwright-core and the browser client are
/// there; fails with how to install what is missing.
fn require_tools() -> Bytes {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Chromium with \
         `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium`"
    );
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        node,
        "node is not installed: install Node.js 18 or later (e.g. `apt-get install nodejs npm`), \
         then run `npm ci --prefix interop` at the workspace root"
    );
    let playwright = workspace().join("interop/node_modules/playwright-core/package.json");
    assert!(
        playwright.exists(),
        "playwright-core is missing: run `npm ci --prefix interop` at the workspace root"
    );
    chat::load_client(&chat::default_client_path()).unwrap_or_else(|e| panic!("{e}"))
}

/// The chat server, running on this process's runtime.
struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    /// Starts on `addr`; a port just freed may take a moment to bind again.
    async fn start(addr: SocketAddr, client_js: Bytes) -> Server {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) => {
                    tries += 1;
                    assert!(tries < 100, "cannot bind {addr}: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            chat::serve(listener, client_js, async {
                let _ = stopped.await;
            })
            .await
            .expect("the chat serves");
        });
        Server { addr, stop, task }
    }

    /// Stops gracefully and waits until the server is gone.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the server stops in time")
            .expect("the server task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_pages_chat_in_rooms_and_reconnect() {
    let client_js = require_tools();
    let mut server = Some(Server::start("127.0.0.1:0".parse().unwrap(), client_js.clone()).await);
    let addr = server.as_ref().unwrap().addr;
    // The README's screenshot is refreshed on demand (CHAT_SCREENSHOT=docs/chat.png);
    // an ordinary run writes under target/ and leaves the tree clean.
    let screenshot = match std::env::var_os("CHAT_SCREENSHOT") {
        Some(path) => workspace().join(path),
        None => {
            let dir = workspace().join("target/chat");
            std::fs::create_dir_all(&dir).expect("target/chat");
            dir.join("chat.png")
        }
    };
    // A page whose connection the script asks to cut goes through this.
    let proxy = faultproxy::Proxy::start(addr).await.unwrap();
    let mut child = Command::new("node")
        .arg(workspace().join("interop/browser/chat.mjs"))
        .arg(format!("http://{addr}/"))
        .arg(&screenshot)
        .arg(format!("{}/", proxy.url()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let run = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(line) = lines.next_line().await.expect("the script's output") {
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|_| serde_json::json!({ "raw": line }));
            match v["step"].as_str() {
                Some("cut") => {
                    assert!(proxy.cut() > 0, "a connection to cut");
                }
                Some("stop-server") => {
                    server.take().expect("a running server").stop().await;
                }
                Some("start-server") => {
                    assert!(server.is_none(), "the server is running already");
                    server = Some(Server::start(addr, client_js.clone()).await);
                }
                _ => {}
            }
            if v.get("step").is_some() {
                stdin.write_all(b"ok\n").await.expect("answer the script");
                stdin.flush().await.expect("answer the script");
            }
            seen.push(v);
        }
    })
    .await;
    assert!(
        run.is_ok(),
        "the browser script did not finish in time: {seen:#?}"
    );
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("node exits")
        .expect("node's status");
    let result = seen.last().cloned().unwrap_or_default();
    assert!(
        status.success() && result.get("error").is_none() && result["ok"] == true,
        "the browser scenario failed: {result:#}\n{seen:#?}"
    );
    assert_eq!(result["statuses"], serde_json::json!([["sending", "sent"]]));
    let checks: Vec<&str> = result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for expected in [
        "presence: both members of general see each other, random sees its own",
        "typing: Bo sees Ana typing",
        "ack: the message is shown sending, then sent",
        "isolation: nothing of general reached Cy's connection",
        "isolation: nothing of random reached Ana or Bo",
        "join: Bo is back and gets the room's last messages",
        "recovery: Di's page says it recovered and shows the messages it missed",
        "recovery: each missed message reached Di's page once",
        "recovery: Di's page did not join again",
        "reload: Bo's page comes back in general with the history",
        "reconnect: every page shows the reconnecting banner",
        "reconnect: the banner goes and the pages rejoin their rooms",
        "screenshot saved",
    ] {
        assert!(
            checks.contains(&expected),
            "missing check {expected:?}: {checks:?}"
        );
    }
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    if let Some(server) = server {
        server.stop().await;
    }
}
