//! The core embedded without an async runtime (`examples/blocking_client.rs`: `std::net`, threads,
//! tungstenite's blocking API) talks to the reference Node.js server over every transport.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A child process, killed by its pid when dropped.
struct Killed(Child);

impl Drop for Killed {
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
    // Not `blocking`: the server's core has an example of that name, built
    // to the same folder.
    let bin = dir.join("examples").join("blocking_client");
    if !bin.exists() {
        // `cargo test --test embedding` does not build examples: build it.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args([
                "build",
                "-p",
                "socketio-client-proto",
                "--example",
                "blocking_client",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the example builds");
    }
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

/// The reference server on a free port: the process and its port.
fn node_server() -> (Killed, u16) {
    let root = workspace_root();
    assert!(
        root.join("interop/node_modules/socket.io").exists(),
        "the reference server is not installed: run `npm ci --prefix interop`"
    );
    let mut child = Command::new("node")
        .arg(root.join("interop/servers/node-server.mjs"))
        .arg("0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("node starts");
    let stdout = child.stdout.take().expect("stdout");
    let server = Killed(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server prints its port");
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    let port = v["ready"].as_u64().expect("the port") as u16;
    (server, port)
}

#[test]
fn the_blocking_client_talks_to_the_reference_server() {
    let (_server, port) = node_server();
    let bin = example_binary();
    for transports in ["polling", "websocket", "both"] {
        let out = Command::new(&bin)
            .arg(format!("127.0.0.1:{port}"))
            .arg(transports)
            .output()
            .expect("the example runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.lines().any(|l| l == "ok"),
            "{transports}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
