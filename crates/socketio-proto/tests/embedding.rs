//! The core embedded without an async runtime (`examples/blocking.rs`:
//! `std::net`, a thread per connection, tungstenite's blocking API) serves
//! the official JavaScript client over every transport.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the crate lives in crates/")
        .to_path_buf()
}

/// The example binary, built by cargo beside the tests.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = dir.join("examples").join("blocking");
    if !bin.exists() {
        // `cargo test --test embedding` does not build examples: build it.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "-p", "socketio-proto", "--example", "blocking"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the example builds");
    }
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

fn node_client() -> PathBuf {
    let root = workspace_root();
    let modules = root.join("interop/node_modules/socket.io-client");
    assert!(
        modules.exists(),
        "the official client is not installed: run `npm ci --prefix interop`"
    );
    assert!(
        Command::new("node").arg("--version").output().is_ok(),
        "node is not installed: install Node.js 18 or later"
    );
    root.join("interop/clients/basic.mjs")
}

fn start() -> (Server, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(example_binary())
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .spawn()
        .expect("the example starts");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the example did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, port)
}

fn run_client(port: u16, transports: &str) -> serde_json::Value {
    let out = Command::new("node")
        .arg(node_client())
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(transports)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed over {transports}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON line")
}

#[test]
fn the_official_client_talks_to_the_blocking_server() {
    let (_server, port) = start();
    for (transports, expected) in [
        ("websocket", "websocket"),
        ("polling", "polling"),
        ("polling,websocket", "websocket"),
    ] {
        let r = run_client(port, transports);
        assert_eq!(r["transport"], expected, "{r}");
        assert_eq!(r["id"].as_str().map(str::len), Some(20), "{r}");
        assert_eq!(r["echo"], serde_json::json!(["hello", {"n": 1}]), "{r}");
        assert_eq!(r["binary"], serde_json::json!([1, 2, 3]), "{r}");
        assert_eq!(r["ack"], serde_json::json!(["a", 2]), "{r}");
    }
}
