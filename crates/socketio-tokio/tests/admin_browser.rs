//! The Socket.IO Admin UI served by the chat example (`--admin`), in
//! headless Chromium: two chat servers in one cluster over a real
//! `redis-server`, both instrumented; `interop/browser/admin.mjs` joins
//! official clients to chat rooms on both, logs in to the UI served by the
//! first, checks that their sockets, rooms and both servers are listed, and
//! disconnects a client with the UI's button. It saves a screenshot
//! (`target/admin/admin-ui.png`, or the path in `ADMIN_SCREENSHOT`, which
//! refreshes `docs/admin-ui.png`).

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

const CHROMIUM: &str = "/usr/bin/chromium";
const PASSWORD: &str = "correct horse";

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
async fn browser_admin_ui_lists_and_disconnects_the_chat_clients_of_a_cluster() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Chromium with \
         `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium`"
    );
    assert!(
        workspace()
            .join("interop/node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is missing: run `npm ci --prefix interop` at the workspace root"
    );
    let screenshot = match std::env::var_os("ADMIN_SCREENSHOT") {
        Some(path) => workspace().join(path),
        None => {
            let dir = workspace().join("target/admin");
            std::fs::create_dir_all(&dir).unwrap();
            dir.join("admin-ui.png")
        }
    };
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
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let url = format!("redis://127.0.0.1:{port}");
    let mut addrs = Vec::new();
    let mut adapters = Vec::new();
    for n in 1..=2 {
        let io = chat::new_server().unwrap();
        adapters.push(
            socketio_redis::RedisAdapter::builder(&url)
                .attach(&io)
                .await
                .unwrap(),
        );
        let ui = chat::admin(
            &io,
            PASSWORD,
            format!("chat-{n}"),
            &chat::default_admin_ui_path(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        let http = chat::http_server(&io);
        tokio::spawn(chat::serve_app(
            io,
            http,
            listener,
            Bytes::new(),
            Some(ui),
            std::future::pending(),
        ));
    }
    let mut child = Command::new("node")
        .arg(workspace().join("interop/browser/admin.mjs"))
        .arg(format!("http://{}", addrs[0]))
        .arg(format!("http://{}", addrs[1]))
        .arg(&screenshot)
        .arg(PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let run = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(line) = lines.next_line().await.expect("the script's output") {
            seen.push(line);
        }
    })
    .await;
    assert!(run.is_ok(), "the script did not finish in time: {seen:#?}");
    let status = child.wait().await.unwrap();
    let result: serde_json::Value = seen
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no result: {seen:#?}"));
    assert!(status.success() && result["ok"] == true, "{result:#}");
    assert!(
        result["checks"]
            .as_array()
            .unwrap()
            .contains(&"the disconnect button disconnects that socket".into()),
        "{result:#}"
    );
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
}
