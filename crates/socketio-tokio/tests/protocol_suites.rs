//! The official protocol test suites, ported to node's test runner
//! (`interop/suites/*.mjs`), against the `conformance` example: the
//! Socket.IO v5 suite in `socketio` mode, the Engine.IO v4 suite in
//! `engineio` mode.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How long the server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a whole suite may take (it runs in a few seconds).
const SUITE_TIMEOUT: Duration = Duration::from_secs(120);
/// How many runs a suite gets (see [`suite_passes`]).
const ATTEMPTS: usize = 3;

/// The suites' heartbeat tests measure a few hundred milliseconds: run one
/// suite at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the crate lives in crates/")
        .to_path_buf()
}

/// The newest modification time of the files under `dir`.
fn newest_under(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_under(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(time);
    }
    newest
}

/// Whether the example binary is older than a source it is built from.
fn is_stale(bin: &Path) -> bool {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    let root = workspace_root();
    let sources = [
        "crates/engineio-packet/src",
        "crates/socketio-packet/src",
        "crates/socketio-proto/src",
        "crates/socketio-tokio/src",
    ];
    let example = root.join("crates/socketio-tokio/examples/conformance.rs");
    sources
        .iter()
        .filter_map(|dir| newest_under(&root.join(dir)))
        .chain(example.metadata().and_then(|m| m.modified()).ok())
        .any(|t| t > built)
}

/// The `conformance` example, built beside the tests (`cargo test` builds
/// the examples), and built here when it is missing or older than the
/// sources (when only this test was built).
fn conformance_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = profile_dir
        .join("examples")
        .join(format!("conformance{}", std::env::consts::EXE_SUFFIX));
    if is_stale(&bin) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(workspace_root()).args([
            "build",
            "-p",
            "socketio-tokio",
            "--example",
            "conformance",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "the conformance example does not build");
    }
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

/// Fails, saying how to install them, when node or the suites' packages are
/// missing.
fn require_node() {
    let version = Command::new("node").arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "node is not installed: install Node.js 18 or later (e.g. `apt-get install nodejs npm`), \
         then run `npm ci --prefix interop` at the workspace root"
    );
    let ws = workspace_root().join("interop/node_modules/ws/package.json");
    assert!(
        ws.exists(),
        "the suites' packages are not installed: run `npm ci --prefix interop` at the workspace root"
    );
}

/// Collects everything a pipe yields, on a thread of its own.
fn collect(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// The conformance server, killed on drop.
struct Server {
    child: Child,
    url: String,
    output: Option<JoinHandle<String>>,
}

impl Server {
    fn start(mode: &str) -> Server {
        let mut child = Command::new(conformance_binary())
            .args([mode, "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the conformance example starts");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = collect(child.stderr.take().expect("stderr"));
        // A line names the address (`<mode> conformance server on <addr>`);
        // the rest is kept for a failure.
        let (tx, rx) = mpsc::channel();
        let output = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut seen = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line.contains("conformance server on ") {
                    let _ = tx.send(line.clone());
                } else {
                    seen.push_str(&line);
                }
                line.clear();
            }
            seen
        });
        let first = rx.recv_timeout(START_TIMEOUT);
        let Ok(first) = first else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the {mode} conformance server did not start: {}",
                stderr.join().unwrap_or_default()
            );
        };
        let Some(addr) = first.trim().rsplit(' ').next().filter(|a| a.contains(':')) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the {mode} conformance server did not say where it listens: {first:?} {}",
                stderr.join().unwrap_or_default()
            );
        };
        Server {
            url: format!("http://{addr}"),
            child,
            output: Some(output),
        }
    }

    /// Stops the server; returns what it printed.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output
            .take()
            .and_then(|o| o.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a run of node's test runner said.
struct Run {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The value of a summary line (`# pass 25`).
    fn count(&self, what: &str) -> Option<usize> {
        let prefix = format!("# {what} ");
        self.stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|n| n.trim().parse().ok())
    }
}

/// Runs `node --test interop/suites/<suite>.mjs` against `url`, killing it
/// past [`SUITE_TIMEOUT`].
fn run_suite(suite: &str, url: &str) -> Run {
    let mut child = Command::new("node")
        .current_dir(workspace_root())
        .args(["--test", "--test-reporter=tap"])
        .arg(format!("interop/suites/{suite}.mjs"))
        .env("SERVER_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let stdout = collect(child.stdout.take().expect("stdout"));
    let stderr = collect(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + SUITE_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("node runs") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    Run {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Runs `suite` against a new conformance server in `mode`; whether every
/// one of its `cases` passed, and a report of the run.
fn attempt(mode: &str, suite: &str, cases: usize) -> (bool, String) {
    let server = Server::start(mode);
    let url = server.url.clone();
    let run = run_suite(suite, &url);
    let server_output = server.stop();
    let passed = run.status.is_some_and(|s| s.success())
        && run.count("tests") == Some(cases)
        && run.count("pass") == Some(cases)
        && run.count("fail") == Some(0);
    let failed: Vec<&str> = run
        .stdout
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("not ok "))
        .collect();
    let report = format!(
        "the {suite} suite against the {mode} server at {url}: exit {status}; \
         tests {tests:?}, pass {pass:?}, fail {fail:?} (expected {cases} passing)\n\
         failed: {failed:#?}\n\
         --- node stdout ---\n{stdout}\n--- node stderr ---\n{stderr}\n\
         --- server output ---\n{server_output}",
        status = run.status.map_or_else(
            || format!("killed after {SUITE_TIMEOUT:?}"),
            |s| s.to_string()
        ),
        tests = run.count("tests"),
        pass = run.count("pass"),
        fail = run.count("fail"),
        stdout = run.stdout,
        stderr = run.stderr,
    );
    (passed, report)
}

/// Every one of the suite's `cases` must pass. Some cases leave a few
/// milliseconds of slack (three 300 ms ping cycles within the 1000 ms
/// connect timeout, a poll aborted 5 ms after it was sent), so a machine
/// busy with other work may fail a run: a run is tried again, at most
/// [`ATTEMPTS`] times, and every failed run is printed.
fn suite_passes(mode: &str, suite: &str, cases: usize) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    require_node();
    let mut reports = Vec::new();
    for n in 1..=ATTEMPTS {
        let (passed, report) = attempt(mode, suite, cases);
        if passed {
            return;
        }
        eprintln!("run {n} of {ATTEMPTS} failed: {report}");
        reports.push(report);
    }
    panic!(
        "the {suite} suite failed {ATTEMPTS} times; the last run:\n{}",
        reports.last().map_or("", String::as_str)
    );
}

#[test]
fn the_official_engine_io_v4_suite_passes() {
    suite_passes("engineio", "engineio", 25);
}

#[test]
fn the_official_socket_io_v5_suite_passes() {
    suite_passes("socketio", "socketio", 32);
}
