//! `cargo xtask bench --instructions`: the costs a server controls, counted
//! exactly per operation, ours (`bench-ours`) beside socketioxide
//! (`bench-socketioxide`) in the same run.
//!
//! For each scenario and server, the server runs from its start to `SIGTERM`
//! under a counting tool while one load generator process (`loadgen`) drives
//! it, and once more with the same clients and no operation (the subtracted
//! run); the difference is divided by the operations:
//! - user-space instructions: `valgrind --tool=callgrind` (`Ir` of the whole
//!   process, malloc and free included), the median of `--runs` runs, with
//!   the range;
//! - system calls: `strace -c -f` (every thread), one run;
//! - heap allocations: `valgrind --tool=dhat` (the blocks allocated), one run.
//!
//! The operations are the echoes answered, the broadcast deliveries
//! received, the handshakes completed, and for long-polling the HTTP
//! requests the server parsed (the calls of httparse's request parser in the
//! callgrind output, [`PARSER`]; in the strace and dhat runs, which give no
//! call counts, the requests the generator made).
//!
//! The servers listen on port 0 (they print `listening on <addr>`) and are
//! pinned to CPU 0, the generator to CPU 1; each run waits until the server
//! has used no CPU for a second after the generator exits, then stops it by
//! its pid with `SIGTERM` (so that the tool writes its output), and kills it
//! if it is still there after a minute, also when the run fails.
//! Pings are put off (`--ping-interval 3600`): a run under valgrind takes many
//! times as long as without, and a ping in one run and not in the other
//! would be counted as work of the operation.
//!
//! Writes `target/bench/instructions.json` and `target/bench/instructions.md`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, root};

/// The servers compared, in the order of the table's columns.
const SERVERS: [&str; 2] = ["ours", "socketioxide"];

/// Each server's ping interval in these runs, in seconds: longer than any run.
const PING_INTERVAL_SECS: &str = "3600";

/// What a run's operations are counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ops {
    /// The answers or deliveries the generator received (`received`).
    Received,
    /// The handshakes the generator completed (`connected`).
    Connected,
    /// The HTTP requests the server parsed.
    HttpRequests,
}

/// One row of the table: a scenario, its generator arguments and the
/// arguments of the run it is measured against.
struct Scenario {
    key: &'static str,
    /// What one operation is, for the table ("echo", "delivery", ...).
    title: &'static str,
    measured: Vec<String>,
    base: Vec<String>,
    ops: Ops,
    /// Flags for the servers, beyond the port and the ping interval.
    server_args: &'static [&'static str],
    /// At most this many instruction runs, whatever `--runs` says (the
    /// 10,000-recipient broadcast takes minutes under valgrind).
    max_runs: usize,
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The generator arguments of a broadcast scenario.
fn broadcasts(scenario: &str, clients: &str, rate: &str, d: &str) -> Vec<String> {
    args(&[
        "--scenario",
        scenario,
        "--clients",
        clients,
        "--rate",
        rate,
        "--warmup",
        "0",
        "--duration",
        d,
        "--drain",
        "300",
        "--sources",
        "4",
        "--source-base",
        "2",
    ])
}

/// The generator arguments of a scenario, with `duration` (or `clients`
/// for the handshakes) set for the measured run and zeroed for the base.
fn scenarios(quick: bool) -> Vec<Scenario> {
    let (echo_secs, bcast_secs, bcast10k_secs, poll_secs, handshakes) = if quick {
        ("2", "3", "4", "2", "200")
    } else {
        ("12", "10", "12", "5", "1000")
    };
    let echo = |d: &str| {
        args(&[
            "--scenario",
            "echo",
            "--clients",
            "50",
            "--rate",
            "500",
            "--warmup",
            "0",
            "--duration",
            d,
            "--drain",
            "120",
        ])
    };
    let broadcast = |clients: &str, rate: &str, d: &str| broadcasts("broadcast", clients, rate, d);
    // Each request asks for four broadcasts to the room: the packets one
    // handler broadcasts in one go, four frames to each recipient.
    let broadcast_burst =
        |clients: &str, rate: &str, d: &str| broadcasts("broadcast_burst", clients, rate, d);
    let poll = |d: &str| {
        args(&[
            "--scenario",
            "poll",
            "--clients",
            "20",
            "--warmup",
            "0",
            "--duration",
            d,
        ])
    };
    // Each request asks for four echoes: the packets one handler emits to
    // its own connection in one go.
    let burst = |d: &str| {
        args(&[
            "--scenario",
            "burst",
            "--clients",
            "50",
            "--rate",
            "125",
            "--warmup",
            "0",
            "--duration",
            d,
            "--drain",
            "120",
        ])
    };
    let connect = |scenario: &str, clients: &str| {
        args(&[
            "--scenario",
            scenario,
            "--clients",
            clients,
            "--sources",
            "4",
            "--source-base",
            "2",
        ])
    };
    vec![
        Scenario {
            key: "echo",
            title: "echo (WebSocket, 50 clients)",
            measured: echo(echo_secs),
            base: echo("0"),
            ops: Ops::Received,
            server_args: &[],
            max_runs: usize::MAX,
        },
        Scenario {
            key: "burst",
            title: "packet of a burst (4 emits by one handler, WebSocket, 50 clients)",
            measured: burst(echo_secs),
            base: burst("0"),
            ops: Ops::Received,
            server_args: &["--burst"],
            max_runs: usize::MAX,
        },
        Scenario {
            key: "broadcast",
            title: "broadcast delivery (WebSocket, room of 1,000, 1 broadcast/s)",
            measured: broadcast("1000", "1", bcast_secs),
            base: broadcast("1000", "1", "0"),
            ops: Ops::Received,
            server_args: &[],
            max_runs: usize::MAX,
        },
        Scenario {
            key: "broadcast_burst",
            title: "broadcast delivery of a burst (4 broadcasts by one handler, room of 1,000, 1 burst/s)",
            measured: broadcast_burst("1000", "1", bcast_secs),
            base: broadcast_burst("1000", "1", "0"),
            ops: Ops::Received,
            server_args: &["--burst"],
            max_runs: usize::MAX,
        },
        Scenario {
            key: "broadcast10k",
            title: "broadcast delivery (WebSocket, room of 10,000, 1 broadcast per 4 s)",
            measured: broadcast("10000", "0.25", bcast10k_secs),
            base: broadcast("10000", "0.25", "0"),
            ops: Ops::Received,
            server_args: &[],
            max_runs: 1,
        },
        Scenario {
            key: "poll",
            title: "long-polling request (20 clients)",
            measured: poll(poll_secs),
            base: poll("0"),
            ops: Ops::HttpRequests,
            server_args: &[],
            max_runs: usize::MAX,
        },
        Scenario {
            key: "connect",
            title: "handshake (WebSocket)",
            measured: connect("connect", handshakes),
            base: connect("connect", "0"),
            ops: Ops::Connected,
            server_args: &[],
            max_runs: usize::MAX,
        },
        Scenario {
            key: "connect_poll",
            title: "handshake (long-polling)",
            measured: connect("connect_poll", handshakes),
            base: connect("connect_poll", "0"),
            ops: Ops::Connected,
            server_args: &[],
            max_runs: usize::MAX,
        },
    ]
}

/// The counting tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Callgrind,
    Strace,
    Dhat,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Callgrind => "callgrind",
            Tool::Strace => "strace",
            Tool::Dhat => "dhat",
        }
    }
}

/// httparse's request parser, as callgrind names it: the function every
/// entry point of the parser calls once per parse (hyper calls it directly,
/// a caller of `Request::parse` through it), so that each parse counts once.
const PARSER: &str = "httparse::Request::parse_with_config_and_uninit_headers";

/// What one run of a server under a tool gave.
#[derive(Debug, Clone, Copy, Default)]
struct Count {
    /// Instructions, system calls or blocks allocated, over the whole run.
    total: u64,
    /// The calls of httparse's request parser (callgrind only).
    parsed: u64,
    /// The generator's figures.
    received: u64,
    expected: u64,
    sent: u64,
    connected: u64,
    requests: u64,
}

/// The cost per operation of one measured run against its base run.
#[derive(Debug, Clone, Copy)]
struct PerOp {
    value: f64,
    ops: u64,
}

fn per_op(scenario: &Scenario, tool: Tool, measured: &Count, base: &Count) -> Result<PerOp> {
    let ops = match scenario.ops {
        Ops::Received => measured.received,
        Ops::Connected => measured.connected.saturating_sub(base.connected),
        Ops::HttpRequests if tool == Tool::Callgrind => measured.parsed.saturating_sub(base.parsed),
        Ops::HttpRequests => measured.requests,
    };
    if ops == 0 {
        return Err(format!(
            "{} under {}: no operation was counted",
            scenario.key,
            tool.name()
        ));
    }
    let value = (measured.total as f64 - base.total as f64) / ops as f64;
    Ok(PerOp { value, ops })
}

/// Paths and options of a run.
struct Ctx {
    bins: PathBuf,
    out: PathBuf,
}

/// A server under a tool; stopped by its pid when dropped.
struct Server {
    child: Child,
    /// The pid of the server process itself (under strace, the tracee).
    pid: u32,
    addr: String,
}

impl Server {
    fn start(
        ctx: &Ctx,
        server: &str,
        server_args: &[&str],
        tool: Tool,
        out: &Path,
    ) -> Result<Server> {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"]);
        match tool {
            Tool::Callgrind => {
                cmd.args(["valgrind", "--tool=callgrind"])
                    .arg(format!("--callgrind-out-file={}", out.display()));
            }
            Tool::Dhat => {
                cmd.args(["valgrind", "--tool=dhat"])
                    .arg(format!("--dhat-out-file={}", out.display()));
            }
            Tool::Strace => {
                cmd.args(["strace", "-c", "-f", "-o"]).arg(out);
            }
        }
        cmd.arg(ctx.bins.join(format!("bench-{server}")))
            .args(["--port", "0", "--ping-interval", PING_INTERVAL_SECS])
            .args(server_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(log_path(out)).map_err(|e| e.to_string())?,
            ));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{server} under {}: {e}", tool.name()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        // taskset and valgrind exec in place: the child is the server, but
        // strace forks it.
        let name = server;
        let mut server = Server {
            pid: child.id(),
            child,
            addr: String::new(),
        };
        read.map_err(|e| e.to_string())?;
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            return Err(format!(
                "{name} under {} did not start: `{}` (see {})",
                tool.name(),
                line.trim(),
                log_path(out).display()
            ));
        };
        server.addr = addr.to_owned();
        if tool == Tool::Strace {
            server.pid =
                first_child(server.child.id()).ok_or("strace: the server's pid is not in /proc")?;
        }
        Ok(server)
    }

    /// Waits until the server has used no CPU time for a second (at most
    /// five minutes), then stops it with `SIGTERM` and waits for the tool.
    fn stop(mut self) -> Result<()> {
        wait_quiet(self.pid);
        self.terminate()
    }

    fn terminate(&mut self) -> Result<()> {
        signal(self.pid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    signal(self.pid, "KILL");
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("the server did not stop within a minute of SIGTERM".into());
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.terminate();
        }
    }
}

/// Sends a signal to one process by its pid.
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// The first child of a process (strace's tracee), waiting for it to appear.
fn first_child(pid: u32) -> Option<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    for _ in 0..100 {
        if let Some(child) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
        {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// User plus system CPU ticks of a process, from `/proc/<pid>/stat`.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Waits until a process's CPU time stays the same for a second.
fn wait_quiet(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = cpu_ticks(pid);
    let mut still = 0;
    while still < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        let now = cpu_ticks(pid);
        if now == last {
            still += 1;
        } else {
            still = 0;
            last = now;
        }
    }
}

/// Runs the generator against `addr` and returns its report line's JSON.
fn generate(ctx: &Ctx, addr: &str, args: &[String]) -> Result<String> {
    let output = Command::new("taskset")
        .args(["-c", "1"])
        .arg(ctx.bins.join("loadgen"))
        .args(["--addr", addr])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("loadgen: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("loadgen failed ({}): {stdout}", output.status));
    }
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("REPORT "))
        .map(str::to_owned)
        .ok_or_else(|| format!("loadgen printed no report: {stdout}"))
}

/// A whole number field of a flat JSON object (the generator's report).
fn json_u64(json: &str, key: &str) -> u64 {
    let pattern = format!("\"{key}\":");
    json.find(&pattern)
        .map(|i| &json[i + pattern.len()..])
        .map(|rest| {
            rest.trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

/// One server run under one tool: start, drive, stop, count.
fn measure(
    ctx: &Ctx,
    (server, server_args): (&str, &[&str]),
    tool: Tool,
    gen_args: &[String],
    tag: &str,
) -> Result<Count> {
    let out = ctx.out.join(format!("{tag}.{}", tool.name()));
    let _ = std::fs::remove_file(&out);
    let running = Server::start(ctx, server, server_args, tool, &out)?;
    let report = generate(ctx, &running.addr, gen_args)?;
    running.stop()?;
    let mut count = Count {
        received: json_u64(&report, "received"),
        expected: json_u64(&report, "expected"),
        sent: json_u64(&report, "sent"),
        connected: json_u64(&report, "connected"),
        requests: json_u64(&report, "requests"),
        ..Count::default()
    };
    match tool {
        Tool::Callgrind => {
            let text = read(&out)?;
            count.total =
                callgrind_total(&text).ok_or_else(|| format!("{}: no totals", out.display()))?;
            count.parsed = callgrind_calls(&text, PARSER);
        }
        Tool::Strace => {
            count.total = strace_total(&read(&out)?)
                .ok_or_else(|| format!("{}: no total line", out.display()))?;
        }
        Tool::Dhat => {
            let log = log_path(&out);
            count.total = dhat_blocks(&read(&log)?)
                .ok_or_else(|| format!("{}: no `Total:` line", log.display()))?;
        }
    }
    // The outputs are large; the figures are in the JSON.
    let _ = std::fs::remove_file(&out);
    Ok(count)
}

/// The tool's own messages (and the server's standard error) of a run:
/// `<tag>.<tool>.log` beside the tool's output `<tag>.<tool>`.
fn log_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".log");
    PathBuf::from(name)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The `totals:` (or `summary:`) line of a callgrind output: its first event, `Ir`.
fn callgrind_total(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("totals:"))
        .or_else(|| text.lines().find(|l| l.starts_with("summary:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The calls, from anywhere, of the functions whose names start with
/// `prefix`, from a callgrind output's `cfn=` and `calls=` lines (names may
/// be compressed: `(id) name` the first time, `(id)` after).
fn callgrind_calls(text: &str, prefix: &str) -> u64 {
    let mut names = std::collections::HashMap::<&str, &str>::new();
    let mut callee_matches = false;
    let mut total = 0;
    for line in text.lines() {
        let (is_callee, rest) = if let Some(rest) = line.strip_prefix("cfn=") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("fn=") {
            (false, rest)
        } else if let Some(rest) = line.strip_prefix("calls=") {
            if callee_matches {
                total += rest
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            continue;
        } else {
            continue;
        };
        let name = match rest.strip_prefix('(').and_then(|r| r.split_once(')')) {
            Some((id, name)) => {
                let name = name.trim();
                if name.is_empty() {
                    names.get(id).copied().unwrap_or("")
                } else {
                    names.insert(id, name);
                    name
                }
            }
            None => rest.trim(),
        };
        if is_callee {
            callee_matches = name.starts_with(prefix);
        }
    }
    total
}

/// The calls of strace's summary's `total` line.
fn strace_total(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with("total"))?;
    // % time, seconds, usecs/call, calls, [errors,] total
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The blocks of dhat's `Total:` line (`Total: N bytes in M blocks`).
fn dhat_blocks(log: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains("Total:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "in")?;
    words.get(at + 1)?.replace(',', "").parse().ok()
}

/// The figures of one scenario, one server, one tool.
#[derive(Debug, Default)]
struct Cell {
    per_op: Vec<f64>,
    ops: Vec<u64>,
    note: Vec<String>,
}

impl Cell {
    fn median(&self) -> Option<f64> {
        let mut v = self.per_op.clone();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }

    fn range(&self) -> Option<(f64, f64)> {
        let min = self.per_op.iter().copied().reduce(f64::min)?;
        let max = self.per_op.iter().copied().reduce(f64::max)?;
        Some((min, max))
    }
}

/// Runs every scenario (or those of `only`) and writes the JSON and the table.
pub(crate) fn bench(quick: bool, runs: Option<usize>, only: Option<&str>) -> Result<()> {
    for (tool, probe) in [("valgrind", "--version"), ("strace", "-V")] {
        if Command::new(tool).arg(probe).output().is_err() {
            return Err(format!("{tool} is missing: the instruction counts need it"));
        }
    }
    let target = crate::bench_servers::build_release(
        "build the benchmark servers and the load generator",
        &["bench-loadgen", "bench-servers"],
    )?;
    let ctx = Ctx {
        bins: target.join("release"),
        out: target.join("bench"),
    };
    std::fs::create_dir_all(ctx.out.join("instructions")).map_err(|e| e.to_string())?;
    let runs = runs.unwrap_or(if quick { 1 } else { 3 }).max(1);
    let all = scenarios(quick);
    let chosen: Vec<&Scenario> = match only {
        Some(list) => {
            let keys: Vec<&str> = list.split(',').map(str::trim).collect();
            if let Some(bad) = keys.iter().find(|k| !all.iter().any(|s| s.key == **k)) {
                let known: Vec<&str> = all.iter().map(|s| s.key).collect();
                return Err(format!(
                    "unknown scenario `{bad}` (known: {})",
                    known.join(",")
                ));
            }
            all.iter().filter(|s| keys.contains(&s.key)).collect()
        }
        None => all.iter().collect(),
    };
    let started = Instant::now();
    let loadavg_before = loadavg();
    // results[scenario][server][tool]
    let mut results: Vec<[[Cell; 3]; 2]> = chosen.iter().map(|_| Default::default()).collect();
    let tools = [Tool::Callgrind, Tool::Strace, Tool::Dhat];
    for round in 0..runs {
        for (si, scenario) in chosen.iter().enumerate() {
            for (vi, server) in SERVERS.iter().enumerate() {
                for (ti, &tool) in tools.iter().enumerate() {
                    // System calls and allocations: one run each.
                    if (tool != Tool::Callgrind && round > 0) || round >= scenario.max_runs {
                        continue;
                    }
                    let tag = format!("instructions/{}-{server}-{round}", scenario.key);
                    println!(
                        "==> {} {server} under {} (run {} of {runs}, {:.0} s in)",
                        scenario.key,
                        tool.name(),
                        round + 1,
                        started.elapsed().as_secs_f64()
                    );
                    let which = (*server, scenario.server_args);
                    let base = measure(&ctx, which, tool, &scenario.base, &format!("{tag}-base"))?;
                    let measured = measure(&ctx, which, tool, &scenario.measured, &tag)?;
                    let cell = &mut results[si][vi][ti];
                    if scenario.ops == Ops::Received {
                        let wanted = measured.expected.max(measured.sent);
                        if measured.received < wanted {
                            cell.note.push(format!(
                                "{} of {wanted} answered or delivered",
                                measured.received
                            ));
                        }
                    }
                    let figure = per_op(scenario, tool, &measured, &base)?;
                    println!(
                        "    {:.1} per operation ({} operations, {} against {})",
                        figure.value, figure.ops, measured.total, base.total
                    );
                    cell.per_op.push(figure.value);
                    cell.ops.push(figure.ops);
                }
            }
        }
    }
    let meta = Meta {
        date: utc_now(),
        commit: commit(),
        machine: machine(),
        loadavg_before,
        loadavg_after: loadavg(),
        runs,
        quick,
        minutes: started.elapsed().as_secs_f64() / 60.0,
    };
    let json = to_json(&meta, &chosen, &results);
    let md = to_markdown(&meta, &chosen, &results);
    std::fs::write(ctx.out.join("instructions.json"), json).map_err(|e| e.to_string())?;
    std::fs::write(ctx.out.join("instructions.md"), &md).map_err(|e| e.to_string())?;
    println!("\n{md}");
    println!(
        "wrote {} and {}",
        ctx.out.join("instructions.json").display(),
        ctx.out.join("instructions.md").display()
    );
    Ok(())
}

struct Meta {
    date: String,
    commit: String,
    machine: String,
    loadavg_before: String,
    loadavg_after: String,
    runs: usize,
    quick: bool,
    minutes: f64,
}

// The run's header as `bench_loadgen`'s `utc_now`, `machine` and `loadavg`
// write it: xtask does not depend on the benchmark crates (their async
// runtime and HTTP stacks would be built for every `cargo xtask`).
fn utc_now() -> String {
    output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
}

fn commit() -> String {
    output(
        Command::new("git")
            .current_dir(root())
            .args(["rev-parse", "--short", "HEAD"]),
    )
}

fn output(cmd: &mut Command) -> String {
    cmd.output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown CPU")
        .trim()
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_f64(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.2}"),
        _ => "null".into(),
    }
}

const METRICS: [&str; 3] = ["instructions", "syscalls", "allocations"];

fn to_json(meta: &Meta, chosen: &[&Scenario], results: &[[[Cell; 3]; 2]]) -> String {
    let mut s = String::from("{\n");
    let _ = writeln!(s, "  \"date\": {},", json_str(&meta.date));
    let _ = writeln!(s, "  \"commit\": {},", json_str(&meta.commit));
    let _ = writeln!(s, "  \"machine\": {},", json_str(&meta.machine));
    let _ = writeln!(
        s,
        "  \"loadavg_before\": {},\n  \"loadavg_after\": {},",
        json_str(&meta.loadavg_before),
        json_str(&meta.loadavg_after)
    );
    let _ = writeln!(
        s,
        "  \"runs\": {},\n  \"quick\": {},\n  \"minutes\": {:.1},",
        meta.runs, meta.quick, meta.minutes
    );
    s.push_str("  \"rows\": [\n");
    for (i, (scenario, cells)) in chosen.iter().zip(results).enumerate() {
        let _ = writeln!(
            s,
            "    {{\n      \"scenario\": {},\n      \"operation\": {},\n      \"measured_args\": {},\n      \"base_args\": {},",
            json_str(scenario.key),
            json_str(scenario.title),
            json_str(&scenario.measured.join(" ")),
            json_str(&scenario.base.join(" "))
        );
        for (m, metric) in METRICS.iter().enumerate() {
            let _ = writeln!(s, "      {}: {{", json_str(metric));
            for (v, server) in SERVERS.iter().enumerate() {
                let cell = &cells[v][m];
                let list = |xs: Vec<String>| xs.join(", ");
                let _ = writeln!(
                    s,
                    "        {}: {{ \"median\": {}, \"per_run\": [{}], \"operations\": [{}], \"notes\": [{}] }},",
                    json_str(server),
                    json_f64(cell.median()),
                    list(cell.per_op.iter().map(|v| json_f64(Some(*v))).collect()),
                    list(cell.ops.iter().map(u64::to_string).collect()),
                    list(cell.note.iter().map(|n| json_str(n)).collect()),
                );
            }
            let r = ratio_of(cells, m);
            let comma = if m + 1 < METRICS.len() { "," } else { "" };
            let _ = writeln!(s, "        \"ratio\": {}\n      }}{comma}", json_f64(r));
        }
        let comma = if i + 1 < chosen.len() { "," } else { "" };
        let _ = writeln!(s, "    }}{comma}");
    }
    s.push_str("  ]\n}\n");
    s
}

/// Ours over socketioxide's, the medians of metric `m`.
fn ratio_of(cells: &[[Cell; 3]; 2], m: usize) -> Option<f64> {
    let (ours, theirs) = (cells[0][m].median()?, cells[1][m].median()?);
    (theirs != 0.0).then(|| ours / theirs)
}

/// A figure with thousands separators, one decimal below 100.
fn figure(v: f64) -> String {
    if v.abs() < 100.0 {
        return format!("{v:.1}");
    }
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn cell_text(cell: &Cell, with_range: bool) -> String {
    let Some(median) = cell.median() else {
        return "n/a".into();
    };
    let mut text = figure(median);
    if with_range
        && cell.per_op.len() > 1
        && let Some((min, max)) = cell.range()
    {
        let _ = write!(text, " ({}–{})", figure(min), figure(max));
    }
    if !cell.note.is_empty() {
        text.push_str(" †");
    }
    text
}

fn to_markdown(meta: &Meta, chosen: &[&Scenario], results: &[[[Cell; 3]; 2]]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Costs per operation, ours beside socketioxide, {} at {} ({}; load average {} before, {} after; {:.0} minutes{}).",
        meta.date,
        meta.commit,
        meta.machine,
        meta.loadavg_before,
        meta.loadavg_after,
        meta.minutes,
        if meta.quick { ", quick mode" } else { "" }
    );
    let _ = writeln!(
        md,
        "Instructions: the median of {} callgrind run{} (the range in brackets; a figure with no range had one run); system calls (strace) and heap allocations (dhat): one run.",
        meta.runs,
        if meta.runs == 1 { "" } else { "s" }
    );
    md.push_str("The ratio is ours divided by socketioxide's: below 1, ours costs less.\n\n");
    md.push_str("| per | ours instr. | socketioxide instr. | ratio | ours syscalls | socketioxide syscalls | ratio | ours allocs | socketioxide allocs | ratio |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut notes = Vec::new();
    for (scenario, cells) in chosen.iter().zip(results) {
        let _ = write!(md, "| {} |", scenario.title);
        for m in 0..METRICS.len() {
            for (v, server) in SERVERS.iter().enumerate() {
                let _ = write!(md, " {} |", cell_text(&cells[v][m], m == 0));
                for note in &cells[v][m].note {
                    notes.push(format!(
                        "{} ({server}, {}): {note}",
                        scenario.key, METRICS[m]
                    ));
                }
            }
            let r = ratio_of(cells, m).map_or("n/a".into(), |r| format!("{r:.2}"));
            let _ = write!(md, " {r} |");
        }
        md.push('\n');
    }
    if !notes.is_empty() {
        md.push_str("\n† Not every operation came back:\n\n");
        for note in notes {
            let _ = writeln!(md, "- {note}");
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callgrind_calls_follow_compressed_names() {
        let text = "\
fn=(1) hyper::proto::h1::role::Server::parse
cfn=(2) httparse::Request::parse_with_config_and_uninit_headers
calls=3 0x1234
5 100
cfn=(3) memcpy
calls=7 0x99
5 10
fn=(4) other
cfn=(2)
calls=2 0x1234
1 50
fn=(5) socketio_tokio::http::h1::parse
cfn=(6) httparse::Request::parse_with_uninit_headers
calls=4 0x1234
2 80
fn=(6)
cfn=(2)
calls=4 0x1234
3 70
totals: 999
";
        // A parse through another entry point counts once.
        assert_eq!(callgrind_calls(text, PARSER), 9);
        assert_eq!(callgrind_calls(text, "httparse::Request"), 13);
        assert_eq!(callgrind_calls(text, "memcpy"), 7);
        assert_eq!(callgrind_total(text), Some(999));
    }

    #[test]
    fn strace_and_dhat_totals_are_read() {
        let strace = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.000600          10        60           writev
 40.00    0.000400           5        80        12 recvfrom
------ ----------- ----------- --------- --------- ----------------
100.00    0.001000           7       140        12 total
";
        assert_eq!(strace_total(strace), Some(140));
        let dhat = "==12== Total:     1,234,567 bytes in 8,910 blocks\n==12== At t-gmax: 1 bytes";
        assert_eq!(dhat_blocks(dhat), Some(8910));
    }

    #[test]
    fn reports_and_figures() {
        let report =
            r#"{"scenario":"echo","clients":50,"connected":50,"received":6000,"sent":6000}"#;
        assert_eq!(json_u64(report, "received"), 6000);
        assert_eq!(json_u64(report, "requests"), 0);
        assert_eq!(figure(24875.4), "24,875");
        assert_eq!(figure(7.25), "7.2");
        let cell = Cell {
            per_op: vec![3.0, 1.0, 2.0],
            ..Cell::default()
        };
        assert_eq!(cell.median(), Some(2.0));
        assert_eq!(cell_text(&cell, true), "2.0 (1.0–3.0)");
    }
}
