//! Runs the server scenarios with ours, socketioxide, the Node.js reference
//! and the raw ceiling (a WebSocket echo server; in the long-polling scenario
//! a minimal Engine.IO polling server on hyper) side by side, and prints a
//! table per scenario with the ratios ours/theirs.
//!
//! ```text
//! bench-run [--quick] [--root DIR] [--only echo,rate,broadcast,idle,poll]
//!           [--servers ours,socketioxide,node,raw]
//! ```
//!
//! Each server runs pinned to CPU 0 (`taskset -c 0`), the load generator
//! (`loadgen`, next to this binary) to CPU 1; a fresh server process serves
//! each run. Figures go to `target/bench/servers.json`, the tables to
//! `target/bench/servers.md`, and plots to `target/bench/*.svg`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bench_loadgen::{
    Report, TICKS_PER_SEC, cpu_ticks, decode, histogram, loadavg, machine, rss_kib, utc_now,
};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, String>;

/// A scenario: runs, adds its tables to the text, and gives its figures.
type Scenario = fn(&Opts, &mut String) -> Result<Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ours,
    Socketioxide,
    Node,
    Raw,
}

const ALL: [Kind; 4] = [Kind::Ours, Kind::Socketioxide, Kind::Node, Kind::Raw];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Socketioxide => "socketioxide",
            Kind::Node => "node",
            Kind::Raw => "raw",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Kind::Ours => "#d62728",
            Kind::Socketioxide => "#1f77b4",
            Kind::Node => "#2ca02c",
            Kind::Raw => "#7f7f7f",
        }
    }
}

struct Opts {
    quick: bool,
    root: PathBuf,
    bins: PathBuf,
    out: PathBuf,
    only: Vec<String>,
    servers: Vec<Kind>,
}

impl Opts {
    fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-run: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut opts = Opts {
        quick: false,
        root: std::env::current_dir().map_err(|e| e.to_string())?,
        bins: std::env::current_exe()
            .map_err(|e| e.to_string())?
            .parent()
            .ok_or("no binary directory")?
            .to_path_buf(),
        out: PathBuf::new(),
        only: Vec::new(),
        servers: ALL.to_vec(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => opts.quick = true,
            "--root" => opts.root = PathBuf::from(args.next().ok_or("--root needs a value")?),
            "--only" => {
                opts.only = args
                    .next()
                    .ok_or("--only needs a value")?
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            }
            "--servers" => {
                let names = args.next().ok_or("--servers needs a value")?;
                opts.servers = ALL
                    .into_iter()
                    .filter(|k| names.split(',').any(|n| n == k.name()))
                    .collect();
            }
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    if !opts.root.join("interop/node_modules/socket.io").is_dir()
        && opts.servers.contains(&Kind::Node)
    {
        eprintln!(
            "bench-run: interop/node_modules/socket.io is missing (npm ci --prefix interop); Node is left out"
        );
        opts.servers.retain(|k| *k != Kind::Node);
    }
    opts.out = opts.root.join("target/bench");
    std::fs::create_dir_all(&opts.out).map_err(|e| e.to_string())?;

    let started = Instant::now();
    let mut doc = json!({
        "date": utc_now(),
        "quick": opts.quick,
        "machine": machine(),
        "load_before": loadavg(),
        "servers": opts.servers.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "scenarios": {},
    });
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Server benchmarks, {} ({} mode), {}; load average before: {}.\n\
         Servers pinned to CPU 0, the load generator to CPU 1. A ratio is ours/theirs; \
         the row says whether lower or higher is better. `*`: the generator's core was \
         saturated (its CPU time at least 90% of the window), so the figure is a lower bound.\n",
        doc["date"].as_str().unwrap_or(""),
        if opts.quick { "quick" } else { "full" },
        doc["machine"].as_str().unwrap_or(""),
        doc["load_before"].as_str().unwrap_or("")
    );
    let mut results = serde_json::Map::new();
    let scenarios: [(&str, Scenario); 5] = [
        ("echo", echo_fixed),
        ("rate", echo_rate),
        ("broadcast", broadcast),
        ("idle", idle),
        ("poll", poll),
    ];
    for (name, f) in scenarios {
        if opts.wants(name) {
            let value = f(&opts, &mut md)?;
            results.insert(name.into(), value);
            doc["scenarios"] = Value::Object(results.clone());
            save(&opts, &doc, &md)?;
        }
    }
    doc["load_after"] = Value::from(loadavg());
    let _ = writeln!(
        md,
        "Load average after: {}; {:.0} s in all.",
        loadavg(),
        started.elapsed().as_secs_f64()
    );
    save(&opts, &doc, &md)?;
    println!("\n{md}");
    println!("figures: {}", opts.out.join("servers.json").display());
    Ok(())
}

fn save(opts: &Opts, doc: &Value, md: &str) -> Result<()> {
    let json = serde_json::to_string_pretty(doc).map_err(|e| e.to_string())?;
    std::fs::write(opts.out.join("servers.json"), json).map_err(|e| e.to_string())?;
    std::fs::write(opts.out.join("servers.md"), md).map_err(|e| e.to_string())
}

fn progress(line: &str) {
    eprintln!("  {line}");
}

// ---- processes ----

struct Server {
    child: Child,
    pid: String,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(opts: &Opts, kind: Kind) -> Result<Server> {
    start_binary(opts, kind, &format!("bench-{}", kind.name()))
}

/// Starts `kind` from the binary `binary` next to this one (Node from its
/// script): a scenario whose ceiling is another raw server names it here.
fn start_binary(opts: &Opts, kind: Kind, binary: &str) -> Result<Server> {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0"]);
    match kind {
        Kind::Node => {
            cmd.arg("node").arg(opts.root.join("bench/node/server.mjs"));
        }
        _ => {
            cmd.arg(opts.bins.join(binary));
        }
    }
    cmd.args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", kind.name()))?;
    let pid = child.id().to_string();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let Some(addr) = line.trim().strip_prefix("listening on ") else {
        let _ = child.kill();
        return Err(format!("{} did not start: `{}`", kind.name(), line.trim()));
    };
    let addr = addr.to_owned();
    // Let the runtime settle (Node compiles its modules lazily).
    std::thread::sleep(Duration::from_millis(300));
    Ok(Server { child, pid, addr })
}

/// What one run of the generator processes gave.
struct GenOut {
    merged: Merged,
    /// Server CPU ticks between the generator's START and END.
    server_ticks: u64,
    /// Server resident memory once every generator was READY and settled.
    rss_ready_kib: Option<u64>,
}

/// Runs one generator process per argument list, all against `server`.
/// With `hold`, the generators hold their clients after READY until the
/// server's memory has been read `hold` later.
fn generate(
    opts: &Opts,
    server: &Server,
    shards: &[Vec<String>],
    hold: Option<Duration>,
) -> Result<GenOut> {
    let (tx, rx) = mpsc::channel::<(usize, String)>();
    let mut children = Vec::new();
    for (i, args) in shards.iter().enumerate() {
        let mut child = Command::new("taskset")
            .args(["-c", "1"])
            .arg(opts.bins.join("loadgen"))
            .args(["--addr", &server.addr])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("loadgen: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout)
                .lines()
                .map_while(std::result::Result::ok)
            {
                if tx.send((i, line)).is_err() {
                    break;
                }
            }
        });
        children.push(child);
    }
    drop(tx);
    let mut ready = 0;
    let (mut cpu_start, mut cpu_end) = (None, None);
    let mut rss_ready_kib = None;
    let mut reports = Vec::new();
    for (i, line) in rx {
        match line.as_str() {
            "READY" => {
                ready += 1;
                if ready == shards.len()
                    && let Some(settle) = hold
                {
                    std::thread::sleep(settle);
                    rss_ready_kib = rss_kib(&server.pid);
                    for child in &mut children {
                        drop(child.stdin.take());
                    }
                }
            }
            "START" if i == 0 => cpu_start = cpu_ticks(&server.pid),
            "END" if i == 0 => cpu_end = cpu_ticks(&server.pid),
            other => {
                if let Some(json) = other.strip_prefix("REPORT ") {
                    reports.push(serde_json::from_str::<Report>(json).map_err(|e| e.to_string())?);
                }
            }
        }
    }
    for mut child in children {
        let _ = child.wait();
    }
    if reports.len() != shards.len() {
        return Err(format!(
            "{} of {} generator processes reported",
            reports.len(),
            shards.len()
        ));
    }
    Ok(GenOut {
        merged: merge(&reports),
        server_ticks: cpu_end.unwrap_or(0).saturating_sub(cpu_start.unwrap_or(0)),
        rss_ready_kib,
    })
}

/// The reports of several generator processes as one.
struct Merged {
    connected: u64,
    failed: u64,
    connect_secs: f64,
    sent: u64,
    received: u64,
    expected: u64,
    requests: u64,
    window_secs: f64,
    span_secs: f64,
    gen_cpu_secs: f64,
    latency: Histogram<u64>,
    service: Histogram<u64>,
    last: Histogram<u64>,
}

impl Merged {
    fn saturated(&self) -> bool {
        self.window_secs > 0.0 && self.gen_cpu_secs >= 0.9 * self.window_secs
    }
}

fn merge(reports: &[Report]) -> Merged {
    let mut m = Merged {
        connected: 0,
        failed: 0,
        connect_secs: 0.0,
        sent: 0,
        received: 0,
        expected: 0,
        requests: 0,
        window_secs: 0.0,
        span_secs: 0.0,
        gen_cpu_secs: 0.0,
        latency: histogram(),
        service: histogram(),
        last: histogram(),
    };
    for r in reports {
        m.connected += r.connected;
        m.failed += r.failed;
        m.connect_secs = m.connect_secs.max(r.connect_secs);
        m.sent += r.sent;
        m.received += r.received;
        m.expected += r.expected;
        m.requests += r.requests;
        m.window_secs = m.window_secs.max(r.window_secs);
        m.span_secs = m.span_secs.max(r.span_secs);
        m.gen_cpu_secs = m.gen_cpu_secs.max(r.gen_cpu_secs);
        let _ = m.latency.add(decode(&r.latency));
        let _ = m.service.add(decode(&r.service));
        let _ = m.last.add(decode(&r.last_recipient));
    }
    m
}

fn ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
}

fn strs(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

// ---- tables ----

#[derive(Clone, Copy)]
enum Better {
    Lower,
    Higher,
}

struct Row {
    label: String,
    better: Better,
    values: Vec<(Kind, Option<f64>, bool)>,
}

/// Empty rows with these labels.
fn rows(specs: &[(&str, Better)]) -> Vec<Row> {
    specs
        .iter()
        .map(|&(label, better)| Row {
            label: label.into(),
            better,
            values: Vec::new(),
        })
        .collect()
}

fn cell(v: Option<f64>, saturated: bool) -> String {
    match v {
        None => "n/a".into(),
        Some(v) => {
            let mark = if saturated { "*" } else { "" };
            if v >= 100.0 {
                format!("{v:.0}{mark}")
            } else if v >= 10.0 {
                format!("{v:.1}{mark}")
            } else {
                format!("{v:.3}{mark}")
            }
        }
    }
}

fn table(md: &mut String, title: &str, rows: &[Row]) {
    let _ = writeln!(md, "### {title}\n");
    let header: Vec<&str> = ALL.iter().map(|k| k.name()).collect();
    let _ = writeln!(
        md,
        "| | better | {} | ours/socketioxide | ours/node | ours/raw |",
        header.join(" | ")
    );
    let _ = writeln!(md, "|---|---|{}---:|---:|---:|", "---:|".repeat(ALL.len()));
    for row in rows {
        let get = |k: Kind| row.values.iter().find(|v| v.0 == k).and_then(|v| v.1);
        let cells: Vec<String> = ALL
            .iter()
            .map(|k| {
                let sat = row.values.iter().any(|v| v.0 == *k && v.2);
                cell(get(*k), sat)
            })
            .collect();
        let ratio = |k: Kind| match (get(Kind::Ours), get(k)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "n/a".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            row.label,
            match row.better {
                Better::Lower => "lower",
                Better::Higher => "higher",
            },
            cells.join(" | "),
            ratio(Kind::Socketioxide),
            ratio(Kind::Node),
            ratio(Kind::Raw)
        );
    }
    let _ = writeln!(md);
    eprintln!("\n{}", md.rsplit("### ").next().unwrap_or(""));
}

// ---- scenarios ----

/// Echo round trip at a fixed rate: latency percentiles and server CPU per message.
fn echo_fixed(opts: &Opts, md: &mut String) -> Result<Value> {
    let clients: &[usize] = if opts.quick {
        &[100, 1000]
    } else {
        &[100, 1000, 10_000]
    };
    let rate = 5000.0;
    let (warmup, duration) = if opts.quick { ("1", "3") } else { ("2", "10") };
    let mut out = Vec::new();
    let mut plot = Vec::new();
    for &n in clients {
        let mut rows = rows(&[
            ("p50 ms", Better::Lower),
            ("p99 ms", Better::Lower),
            ("p99.9 ms", Better::Lower),
            ("p99 ms from the actual send", Better::Lower),
            ("server CPU s per 1M messages", Better::Lower),
            ("answered %", Better::Higher),
        ]);
        for &kind in &opts.servers {
            let server = start(opts, kind)?;
            let mut args = strs(&[
                "--scenario",
                "echo",
                "--warmup",
                warmup,
                "--duration",
                duration,
            ]);
            args.extend(strs(&[
                "--clients",
                &n.to_string(),
                "--rate",
                &rate.to_string(),
            ]));
            args.extend(strs(&["--sources", "4", "--source-base", "2"]));
            if kind == Kind::Raw {
                args.push("--raw".into());
            }
            let g = generate(opts, &server, &[args], None)?;
            drop(server);
            let m = &g.merged;
            let sat = m.saturated();
            let cpu_per_million = (m.received > 0)
                .then(|| g.server_ticks as f64 / TICKS_PER_SEC / m.received as f64 * 1e6);
            let answered = (m.sent > 0).then(|| m.received as f64 * 100.0 / m.sent as f64);
            let values = [
                ms(&m.latency, 0.5),
                ms(&m.latency, 0.99),
                ms(&m.latency, 0.999),
                ms(&m.service, 0.99),
                cpu_per_million,
                answered,
            ];
            for (row, v) in rows.iter_mut().zip(values) {
                row.values.push((kind, v, sat && row.label != "answered %"));
            }
            progress(&format!(
                "echo n={n} rate={rate} {}: p50 {:?} ms p99 {:?} ms, {}/{} answered, server CPU {:.2} s, generator CPU {:.2} s of {:.1} s",
                kind.name(),
                values[0],
                values[1],
                m.received,
                m.sent,
                g.server_ticks as f64 / TICKS_PER_SEC,
                m.gen_cpu_secs,
                m.window_secs
            ));
            if n == 1000 {
                plot.push((kind, m.latency.clone()));
            }
            out.push(json!({
                "server": kind.name(), "clients": n, "rate": rate,
                "p50_ms": values[0], "p99_ms": values[1], "p999_ms": values[2],
                "p99_service_ms": values[3], "max_ms": ms(&m.latency, 1.0),
                "server_cpu_s_per_million": cpu_per_million,
                "sent": m.sent, "received": m.received,
                "generator_cpu_s": m.gen_cpu_secs, "window_s": m.window_secs,
                "generator_saturated": sat,
            }));
        }
        table(
            md,
            &format!("Echo round trip, {n} clients, {rate} messages/s in all"),
            &rows,
        );
    }
    if !plot.is_empty() {
        let svg = latency_svg(
            "Echo latency by percentile, 1000 clients, 5000 msg/s",
            &plot,
        );
        std::fs::write(opts.out.join("echo-latency.svg"), svg).map_err(|e| e.to_string())?;
    }
    Ok(Value::Array(out))
}

/// The highest echo rate with p99 under 50 ms: a short step search.
fn echo_rate(opts: &Opts, md: &mut String) -> Result<Value> {
    let n = if opts.quick { 100 } else { 1000 };
    let (warmup, duration) = if opts.quick { ("1", "2") } else { ("2", "5") };
    let mut row = Row {
        label: "messages/s".into(),
        better: Better::Higher,
        values: Vec::new(),
    };
    let mut out = Vec::new();
    for &kind in &opts.servers {
        let mut steps = Vec::new();
        let mut trial = |rate: f64| -> Result<(bool, bool)> {
            let server = start(opts, kind)?;
            let mut args = strs(&[
                "--scenario",
                "echo",
                "--warmup",
                warmup,
                "--duration",
                duration,
            ]);
            args.extend(strs(&[
                "--clients",
                &n.to_string(),
                "--rate",
                &format!("{rate:.0}"),
            ]));
            args.extend(strs(&["--drain", "2"]));
            if kind == Kind::Raw {
                args.push("--raw".into());
            }
            let g = generate(opts, &server, &[args], None)?;
            let m = &g.merged;
            let p99 = ms(&m.latency, 0.99).unwrap_or(f64::INFINITY);
            let pass = m.sent > 0 && m.received as f64 >= 0.999 * m.sent as f64 && p99 < 50.0;
            progress(&format!(
                "rate search {} at {rate:.0}/s: p99 {p99:.2} ms, {}/{} answered, generator CPU {:.2} s of {:.1} s: {}",
                kind.name(),
                m.received,
                m.sent,
                m.gen_cpu_secs,
                m.window_secs,
                if pass { "pass" } else { "fail" }
            ));
            steps.push(
                json!({"rate": rate, "p99_ms": p99, "sent": m.sent, "received": m.received,
                "generator_saturated": m.saturated(), "pass": pass}),
            );
            Ok((pass, m.saturated()))
        };
        // The machine is shared: a step fails only if it fails twice.
        let mut trial = |rate: f64| -> Result<(bool, bool)> {
            match trial(rate)? {
                (true, sat) => Ok((true, sat)),
                (false, _) => trial(rate),
            }
        };
        let mut rate = 8000.0;
        let (mut best, mut best_sat, mut fail) = (None, false, None);
        for _ in 0..9 {
            let (pass, sat) = trial(rate)?;
            if pass {
                best = Some(rate);
                best_sat = sat;
                rate *= 1.6;
            } else {
                fail = Some(rate);
                break;
            }
        }
        if let Some(mut hi) = fail {
            let mut lo = best.unwrap_or(hi / 4.0);
            for _ in 0..2 {
                let mid = (lo + hi) / 2.0;
                let (pass, sat) = trial(mid)?;
                if pass {
                    lo = mid;
                    best = Some(mid);
                    best_sat = sat;
                } else {
                    hi = mid;
                }
            }
        }
        row.values.push((kind, best, best_sat));
        out.push(
            json!({"server": kind.name(), "clients": n, "best_rate": best,
            "generator_saturated_at_best": best_sat, "steps": steps}),
        );
    }
    table(
        md,
        &format!("Highest echo rate with p99 under 50 ms, {n} clients"),
        &[row],
    );
    Ok(Value::Array(out))
}

/// Broadcast fan-out to a room: deliveries per second, per-recipient latency,
/// and the time to the last recipient.
fn broadcast(opts: &Opts, md: &mut String) -> Result<Value> {
    let plans: &[(usize, f64)] = if opts.quick {
        &[(1000, 10.0), (10_000, 10.0)]
    } else {
        &[
            (1000, 1.0),
            (1000, 10.0),
            (1000, 100.0),
            (10_000, 1.0),
            (10_000, 10.0),
            (10_000, 100.0),
        ]
    };
    let (warmup, duration) = if opts.quick { ("1", "3") } else { ("2", "5") };
    let mut out = Vec::new();
    for &(n, rate) in plans {
        let mut rows = rows(&[
            ("deliveries/s", Better::Higher),
            ("per-recipient p50 ms", Better::Lower),
            ("per-recipient p99 ms", Better::Lower),
            ("last recipient p50 ms", Better::Lower),
            ("last recipient max ms", Better::Lower),
            ("server CPU s per 1M deliveries", Better::Lower),
            ("delivered %", Better::Higher),
        ]);
        for &kind in opts.servers.iter().filter(|k| **k != Kind::Raw) {
            let server = start(opts, kind)?;
            let mut args = strs(&[
                "--scenario",
                "broadcast",
                "--warmup",
                warmup,
                "--duration",
                duration,
            ]);
            args.extend(strs(&[
                "--clients",
                &n.to_string(),
                "--rate",
                &rate.to_string(),
            ]));
            args.extend(strs(&[
                "--sources",
                "4",
                "--source-base",
                "2",
                "--drain",
                "15",
            ]));
            let g = generate(opts, &server, &[args], None)?;
            drop(server);
            let m = &g.merged;
            let sat = m.saturated();
            let per_sec = (m.span_secs > 0.0).then(|| m.received as f64 / m.span_secs);
            let delivered = (m.expected > 0).then(|| m.received as f64 * 100.0 / m.expected as f64);
            // The deliveries of the broadcasts sent in the window, against
            // the server's CPU time over that window.
            let cpu_per_million = (m.received > 0 && g.server_ticks > 0)
                .then(|| g.server_ticks as f64 / TICKS_PER_SEC / m.received as f64 * 1e6);
            let values = [
                per_sec,
                ms(&m.latency, 0.5),
                ms(&m.latency, 0.99),
                ms(&m.last, 0.5),
                ms(&m.last, 1.0),
                cpu_per_million,
                delivered,
            ];
            for (row, v) in rows.iter_mut().zip(values) {
                row.values
                    .push((kind, v, sat && row.label != "delivered %"));
            }
            progress(&format!(
                "broadcast n={n} rate={rate}/s {}: {:?} deliveries/s, p99 {:?} ms, server CPU {:.2} s, {}/{} delivered, generator CPU {:.2} s of {:.1} s, connect {:.1} s",
                kind.name(),
                values[0].map(|v| v.round()),
                values[2],
                g.server_ticks as f64 / TICKS_PER_SEC,
                m.received,
                m.expected,
                m.gen_cpu_secs,
                m.window_secs,
                m.connect_secs
            ));
            out.push(json!({
                "server": kind.name(), "recipients": n, "broadcasts_per_s": rate,
                "deliveries_per_s": per_sec, "p50_ms": values[1], "p99_ms": values[2],
                "last_recipient_p50_ms": values[3], "last_recipient_max_ms": values[4],
                "server_cpu_s_per_million": values[5],
                "delivered": m.received, "expected": m.expected,
                "generator_cpu_s": m.gen_cpu_secs, "window_s": m.window_secs,
                "generator_saturated": sat,
            }));
        }
        table(
            md,
            &format!("Broadcast to a room of {n}, {rate} broadcasts/s"),
            &rows,
        );
    }
    Ok(Value::Array(out))
}

/// Idle memory per WebSocket connection, and the connection storm.
fn idle(opts: &Opts, md: &mut String) -> Result<Value> {
    let counts: &[usize] = if opts.quick {
        &[1000, 5000, 10_000]
    } else {
        &[1000, 5000, 10_000, 19_000]
    };
    let mut mem_rows = Vec::new();
    let mut storm_rows = Vec::new();
    let mut out = Vec::new();
    let mut plot: Vec<(Kind, Vec<(f64, f64)>)> = Vec::new();
    for (step, &n) in counts.iter().enumerate() {
        let mut mem = Row {
            label: format!("KiB per connection at {n}"),
            better: Better::Lower,
            values: Vec::new(),
        };
        let mut storm = Row {
            label: format!("handshakes/s until {n} are up"),
            better: Better::Higher,
            values: Vec::new(),
        };
        // A different server goes first at each size: the first one meets
        // the sockets that earlier runs left in TIME_WAIT on the
        // generator's addresses.
        let mut order = opts.servers.clone();
        if !order.is_empty() {
            let len = order.len();
            order.rotate_left(step % len);
        }
        for &kind in &order {
            let server = start(opts, kind)?;
            let base = rss_kib(&server.pid).unwrap_or(0);
            // One generator process holds at most about 19.9k sockets: shard
            // beyond 9.5k clients, each shard on its own source addresses.
            let shards = n.div_ceil(9500);
            let per = n / shards;
            // 512 handshakes in flight in all, whatever the shards.
            let concurrency = (512 / shards).to_string();
            let args: Vec<Vec<String>> = (0..shards)
                .map(|i| {
                    let mut a = strs(&["--scenario", "idle", "--clients", &per.to_string()]);
                    a.extend(strs(&[
                        "--sources",
                        "4",
                        "--source-base",
                        &(2 + 4 * i).to_string(),
                    ]));
                    a.extend(strs(&["--concurrency", &concurrency]));
                    if kind == Kind::Raw {
                        a.push("--raw".into());
                    }
                    a
                })
                .collect();
            let g = generate(opts, &server, &args, Some(Duration::from_secs(2)))?;
            drop(server);
            let m = &g.merged;
            let per_conn = g
                .rss_ready_kib
                .filter(|_| m.connected > 0)
                .map(|rss| rss.saturating_sub(base) as f64 / m.connected as f64);
            let rate = (m.connect_secs > 0.0).then(|| m.connected as f64 / m.connect_secs);
            progress(&format!(
                "idle n={n} {}: {} connected ({} failed) in {:.2} s, RSS {} KiB -> {:?} KiB, {:?} KiB per connection",
                kind.name(),
                m.connected,
                m.failed,
                m.connect_secs,
                base,
                g.rss_ready_kib,
                per_conn.map(|v| (v * 100.0).round() / 100.0)
            ));
            mem.values.push((kind, per_conn, false));
            storm.values.push((kind, rate, false));
            if let (Some(rss), Some(slot)) = (g.rss_ready_kib, plot_slot(&mut plot, kind)) {
                slot.push((n as f64, rss.saturating_sub(base) as f64 / 1024.0));
            }
            out.push(json!({
                "server": kind.name(), "clients": n, "connected": m.connected, "failed": m.failed,
                "rss_base_kib": base, "rss_connected_kib": g.rss_ready_kib,
                "kib_per_connection": per_conn, "connect_s": m.connect_secs,
                "handshakes_per_s": rate,
            }));
        }
        mem_rows.push(mem);
        storm_rows.push(storm);
    }
    table(
        md,
        "Idle memory per WebSocket connection (VmRSS delta / N, KiB)",
        &mem_rows,
    );
    table(
        md,
        "Connection storm (512 handshakes in flight)",
        &storm_rows,
    );
    std::fs::write(opts.out.join("idle-memory.svg"), memory_svg(&plot))
        .map_err(|e| e.to_string())?;
    Ok(Value::Array(out))
}

fn plot_slot(plot: &mut Vec<(Kind, Vec<(f64, f64)>)>, kind: Kind) -> Option<&mut Vec<(f64, f64)>> {
    if !plot.iter().any(|p| p.0 == kind) {
        plot.push((kind, Vec::new()));
    }
    plot.iter_mut().find(|p| p.0 == kind).map(|p| &mut p.1)
}

/// Long-polling only: messages and requests per second. The raw column is
/// `bench-raw-poll`, hyper's HTTP/1 doing the least Engine.IO this loop needs.
fn poll(opts: &Opts, md: &mut String) -> Result<Value> {
    let counts: &[usize] = if opts.quick { &[100] } else { &[100, 1000] };
    let (warmup, duration) = if opts.quick { ("1", "3") } else { ("2", "10") };
    let mut out = Vec::new();
    for &n in counts {
        let mut rows = rows(&[
            ("messages/s", Better::Higher),
            ("requests/s", Better::Higher),
            ("round trip p50 ms", Better::Lower),
            ("round trip p99 ms", Better::Lower),
            ("server CPU s per 1M messages", Better::Lower),
        ]);
        for &kind in &opts.servers {
            let server = match kind {
                Kind::Raw => start_binary(opts, kind, "bench-raw-poll")?,
                _ => start(opts, kind)?,
            };
            let mut args = strs(&[
                "--scenario",
                "poll",
                "--warmup",
                warmup,
                "--duration",
                duration,
            ]);
            args.extend(strs(&[
                "--clients",
                &n.to_string(),
                "--sources",
                "4",
                "--source-base",
                "2",
            ]));
            let g = generate(opts, &server, &[args], None)?;
            drop(server);
            let m = &g.merged;
            let sat = m.saturated();
            let values = [
                Some(m.received as f64 / m.window_secs),
                Some(m.requests as f64 / m.window_secs),
                ms(&m.latency, 0.5),
                ms(&m.latency, 0.99),
                (m.received > 0)
                    .then(|| g.server_ticks as f64 / TICKS_PER_SEC / m.received as f64 * 1e6),
            ];
            for (row, v) in rows.iter_mut().zip(values) {
                row.values.push((kind, v, sat));
            }
            progress(&format!(
                "poll n={n} {}: {:?} messages/s, {:?} requests/s, generator CPU {:.2} s of {:.1} s",
                kind.name(),
                values[0].map(|v| v.round()),
                values[1].map(|v| v.round()),
                m.gen_cpu_secs,
                m.window_secs
            ));
            out.push(json!({
                "server": kind.name(), "clients": n, "messages_per_s": values[0],
                "requests_per_s": values[1], "p50_ms": values[2], "p99_ms": values[3],
                "server_cpu_s_per_million": values[4],
                "generator_cpu_s": m.gen_cpu_secs, "window_s": m.window_secs,
                "generator_saturated": sat,
            }));
        }
        table(
            md,
            &format!("Long-polling only, {n} clients (closed loop)"),
            &rows,
        );
    }
    Ok(Value::Array(out))
}

// ---- plots ----

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

fn svg_frame(title: &str, x_label: &str, y_label: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>
<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>
"#,
        W / 2.0,
        escape(title),
        W - LEFT - RIGHT,
        H - TOP - BOTTOM,
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 10.0,
        escape(x_label),
        TOP + (H - TOP - BOTTOM) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0,
        escape(y_label)
    );
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn legend(s: &mut String, i: usize, kind: Kind) {
    let y = TOP + 20.0 + i as f64 * 20.0;
    let x = W - RIGHT + 15.0;
    let _ = writeln!(
        s,
        r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
        x + 25.0,
        kind.color(),
        x + 30.0,
        y + 4.0,
        kind.name()
    );
}

/// Latency against percentile, both on log scales (x: 1/(1-q)).
fn latency_svg(title: &str, series: &[(Kind, Histogram<u64>)]) -> String {
    let mut s = svg_frame(title, "percentile", "latency (ms, log scale)");
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x_of = |q: f64| LEFT + pw * ((1.0 / (1.0 - q.min(0.99999))).log10() / 5.0);
    let (lo, hi) = (-2.0f64, 4.0f64); // 0.01 ms to 10 s
    let y_of =
        |v_ms: f64| TOP + ph * (1.0 - ((v_ms.max(0.01).log10() - lo) / (hi - lo)).clamp(0.0, 1.0));
    for (q, label) in [
        (0.0, "0"),
        (0.9, "90"),
        (0.99, "99"),
        (0.999, "99.9"),
        (0.9999, "99.99"),
        (0.99999, "99.999"),
    ] {
        let x = x_of(q);
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{TOP}" x2="{x}" y2="{}" stroke="#ddd"/><text x="{x}" y="{}" text-anchor="middle">{label}</text>"##,
            TOP + ph,
            TOP + ph + 16.0
        );
    }
    for e in -2..=4 {
        let v = 10f64.powi(e);
        let y = y_of(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{v}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for (i, (kind, h)) in series.iter().enumerate() {
        let mut points = String::new();
        for v in h.iter_quantiles(2) {
            let q = v.quantile_iterated_to();
            if q > 0.99999 {
                break;
            }
            let _ = write!(
                points,
                "{:.1},{:.1} ",
                x_of(q),
                y_of(v.value_iterated_to() as f64 / 1000.0)
            );
        }
        let _ = writeln!(
            s,
            r#"<polyline points="{points}" fill="none" stroke="{}" stroke-width="2"/>"#,
            kind.color()
        );
        legend(&mut s, i, *kind);
    }
    s.push_str("</svg>\n");
    s
}

/// Resident memory growth against connections.
fn memory_svg(series: &[(Kind, Vec<(f64, f64)>)]) -> String {
    let mut s = svg_frame(
        "Server memory with idle WebSocket connections",
        "connections",
        "VmRSS growth (MiB)",
    );
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let max_x = series
        .iter()
        .flat_map(|p| p.1.iter().map(|v| v.0))
        .fold(1.0, f64::max);
    let max_y = series
        .iter()
        .flat_map(|p| p.1.iter().map(|v| v.1))
        .fold(1.0, f64::max)
        * 1.1;
    let x_of = |x: f64| LEFT + pw * x / max_x;
    let y_of = |y: f64| TOP + ph * (1.0 - y / max_y);
    for i in 0..=4 {
        let x = max_x * f64::from(i) / 4.0;
        let y = max_y * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle">{x:.0}</text><line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{y:.0}</text>"##,
            x_of(x),
            TOP + ph + 16.0,
            y_of(y),
            LEFT + pw,
            y_of(y),
            LEFT - 6.0,
            y_of(y) + 4.0
        );
    }
    for (i, (kind, points)) in series.iter().enumerate() {
        let mut line = format!("{:.1},{:.1} ", x_of(0.0), y_of(0.0));
        for (x, y) in points {
            let _ = write!(line, "{:.1},{:.1} ", x_of(*x), y_of(*y));
        }
        let _ = writeln!(
            s,
            r#"<polyline points="{line}" fill="none" stroke="{}" stroke-width="2"/>"#,
            kind.color()
        );
        legend(&mut s, i, *kind);
    }
    s.push_str("</svg>\n");
    s
}
