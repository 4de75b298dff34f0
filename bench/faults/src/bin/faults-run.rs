//! Runs the fault scenarios against ours, socketioxide and the Node.js server, side by
//! side, on the same clients and the same proxy, and writes `target/bench/faults.{json,md}`
//! and SVG plots.
//!
//! ```text
//! faults-run [--quick] [--root DIR] [--only drops,halfopen,slow,slowhttp,storm,soak]
//!            [--servers ours,ours-mimalloc,socketioxide,node] [--storm-clients N]
//!            [--soak-secs N]
//!            [--probe CMD]
//! ```
//!
//! `--probe CMD` runs `CMD <pid> <label>` (through `sh -c`) at each of the storm's memory
//! readings, the server's pid and a label such as `ours-before`, `ours-storm2`, then
//! `ours-end` once the storms are over: a hook to read what the allocator holds at those
//! moments (`bench/faults/probe-malloc.sh` does it with gdb and glibc's `malloc_info`).
//!
//! Each server is a fresh process pinned to CPU 0 (`taskset -c 0`), started from the
//! binaries next to this one (`bench-ours`, `bench-ours-mimalloc`, `bench-socketioxide`) or from
//! `bench/node/server.mjs`; the clients and the proxy run in this process, except in the
//! storm, where the proxy runs as two `faultproxy` processes (a proxy holds two
//! descriptors per connection, and the open-file limit is per process).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use bench_faults::{
    Broadcaster, DropsOpts, Ending, Fleet, Sample, SlowHttpOpts, SoakOpts, Trickled, drops,
    slow_http, soak, storm,
};
use bench_loadgen::{loadavg, rss_kib, utc_now};
use faultproxy::{Between, Faults, Proxy};
use serde_json::{Value, json};
use tokio::time::Instant;

type Result<T> = std::result::Result<T, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ours,
    /// Ours on mimalloc (`bench-ours-mimalloc`): only when asked for with `--servers`.
    OursMimalloc,
    Socketioxide,
    Node,
}

const ALL: [Kind; 4] = [
    Kind::Ours,
    Kind::OursMimalloc,
    Kind::Socketioxide,
    Kind::Node,
];

/// The servers run when `--servers` does not say.
const DEFAULT: [Kind; 3] = [Kind::Ours, Kind::Socketioxide, Kind::Node];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::OursMimalloc => "ours-mimalloc",
            Kind::Socketioxide => "socketioxide",
            Kind::Node => "node",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Kind::Ours => "#d62728",
            Kind::OursMimalloc => "#9467bd",
            Kind::Socketioxide => "#1f77b4",
            Kind::Node => "#2ca02c",
        }
    }

    /// Whether the server has connection state recovery.
    fn has_recovery(self) -> bool {
        self != Kind::Socketioxide
    }
}

struct Opts {
    quick: bool,
    root: PathBuf,
    bins: PathBuf,
    out: PathBuf,
    only: Vec<String>,
    servers: Vec<Kind>,
    storm_clients: usize,
    soak_secs: u64,
    probe: Option<String>,
}

impl Opts {
    fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

/// A server process, killed (by its pid) when dropped.
struct Server {
    child: Child,
    pid: String,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn rss(&self) -> u64 {
        rss_kib(&self.pid).unwrap_or(0)
    }

    /// The sockets the server's process holds: its descriptors that are sockets.
    fn sockets(&self) -> u64 {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, |dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                })
                .count() as u64
        })
    }
}

fn start(opts: &Opts, kind: Kind, recovery: bool) -> Result<Server> {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0"]);
    match kind {
        Kind::Node => {
            cmd.arg("node").arg(opts.root.join("bench/node/server.mjs"));
        }
        _ => {
            cmd.arg(opts.bins.join(format!("bench-{}", kind.name())));
        }
    }
    cmd.args(["--port", "0"]);
    if recovery {
        cmd.arg("--recovery");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", kind.name()))?;
    let pid = child.id().to_string();
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let Some(addr) = line.trim().strip_prefix("listening on ") else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{} did not start: `{}`", kind.name(), line.trim()));
    };
    let addr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    std::thread::sleep(Duration::from_millis(300));
    Ok(Server { child, pid, addr })
}

/// A `faultproxy` process, killed (by its pid) when dropped.
struct ProxyProcess {
    child: Child,
    stdin: ChildStdin,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    addr: SocketAddr,
}

impl ProxyProcess {
    fn start(opts: &Opts, target: SocketAddr) -> Result<ProxyProcess> {
        let mut child = Command::new("taskset")
            .args(["-c", "1"])
            .arg(opts.bins.join("faultproxy"))
            .args(["--target", &target.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("faultproxy: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let line = lines.next().and_then(|l| l.ok()).unwrap_or_default();
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("faultproxy did not start: `{line}`"))?;
        Ok(ProxyProcess {
            child,
            stdin,
            lines,
            addr,
        })
    }

    fn command(&mut self, command: &str) -> Result<String> {
        writeln!(self.stdin, "{command}").map_err(|e| e.to_string())?;
        self.stdin.flush().map_err(|e| e.to_string())?;
        self.lines
            .next()
            .and_then(|l| l.ok())
            .ok_or_else(|| "faultproxy ended".to_owned())
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("faults-run: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
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
        servers: DEFAULT.to_vec(),
        storm_clients: 0,
        soak_secs: 0,
        probe: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => opts.quick = true,
            "--root" => opts.root = PathBuf::from(value()?),
            "--only" => opts.only = value()?.split(',').map(str::to_owned).collect(),
            "--servers" => {
                let names = value()?;
                opts.servers = ALL
                    .into_iter()
                    .filter(|k| names.split(',').any(|n| n == k.name()))
                    .collect();
            }
            "--storm-clients" => opts.storm_clients = value()?.parse().map_err(|_| "a number")?,
            "--soak-secs" => opts.soak_secs = value()?.parse().map_err(|_| "a number")?,
            "--probe" => opts.probe = Some(value()?),
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    if opts.storm_clients == 0 {
        opts.storm_clients = if opts.quick { 2_000 } else { 19_000 };
    }
    if opts.soak_secs == 0 {
        opts.soak_secs = if opts.quick { 120 } else { 600 };
    }
    if !opts.root.join("interop/node_modules/socket.io").is_dir() {
        eprintln!(
            "faults-run: interop/node_modules/socket.io is missing (npm ci --prefix interop); Node is left out"
        );
        opts.servers.retain(|k| *k != Kind::Node);
    }
    opts.out = opts.root.join("target/bench");
    std::fs::create_dir_all(&opts.out).map_err(|e| e.to_string())?;
    let mut doc = json!({
        "date": utc_now(),
        "quick": opts.quick,
        "load_before": loadavg(),
        "servers": opts.servers.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "scenarios": {},
    });
    let mut md = format!(
        "Fault scenarios, {} ({} mode); load average before: {}.\n\
         Servers pinned to CPU 0; the clients (this workspace's `socketio-client`) and the proxy on the other core.\n\n",
        doc["date"].as_str().unwrap_or(""),
        if opts.quick { "quick" } else { "full" },
        doc["load_before"].as_str().unwrap_or(""),
    );
    let mut results = serde_json::Map::new();
    if opts.wants("drops") {
        results.insert("drops".into(), drops_scenario(&opts, &mut md).await?);
        doc["scenarios"] = Value::Object(results.clone());
        save(&opts, &doc, &md)?;
    }
    if opts.wants("halfopen") {
        results.insert("halfopen".into(), half_open_scenario(&opts, &mut md).await?);
        doc["scenarios"] = Value::Object(results.clone());
        save(&opts, &doc, &md)?;
    }
    if opts.wants("slow") {
        results.insert("slow".into(), slow_scenario(&opts, &mut md).await?);
        doc["scenarios"] = Value::Object(results.clone());
        save(&opts, &doc, &md)?;
    }
    if opts.wants("slowhttp") {
        results.insert("slowhttp".into(), slow_http_scenario(&opts, &mut md).await?);
        doc["scenarios"] = Value::Object(results.clone());
        save(&opts, &doc, &md)?;
    }
    if opts.wants("storm") {
        results.insert("storm".into(), storm_scenario(&opts, &mut md).await?);
        doc["scenarios"] = Value::Object(results.clone());
        save(&opts, &doc, &md)?;
    }
    if opts.wants("soak") {
        results.insert("soak".into(), soak_scenario(&opts, &mut md).await?);
        doc["scenarios"] = Value::Object(results.clone());
        save(&opts, &doc, &md)?;
    }
    let _ = writeln!(md, "Load average after: {}.", loadavg());
    doc["load_after"] = Value::from(loadavg());
    save(&opts, &doc, &md)?;
    println!("\n{md}");
    Ok(())
}

fn save(opts: &Opts, doc: &Value, md: &str) -> Result<()> {
    let json = serde_json::to_string_pretty(doc).map_err(|e| e.to_string())?;
    std::fs::write(opts.out.join("faults.json"), json).map_err(|e| e.to_string())?;
    std::fs::write(opts.out.join("faults.md"), md).map_err(|e| e.to_string())
}

fn progress(line: &str) {
    eprintln!("  {line}");
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

// ---- delivery under drops ----

async fn drops_scenario(opts: &Opts, md: &mut String) -> Result<Value> {
    let (clients, broadcasts) = if opts.quick { (100, 500) } else { (500, 1500) };
    let rate = 50;
    let faults = Faults::default()
        .drop_after(Between::new(
            Duration::from_millis(300),
            Duration::from_millis(3000),
        ))
        .drop_after_bytes(Between::new(500, 50_000));
    let _ = writeln!(
        md,
        "## Delivery under drops\n\n\
         {clients} clients in one room through the fault proxy; {broadcasts} broadcasts at {rate}/s from a client straight to the server. \
         Each connection through the proxy is dropped after 0.3 to 3 s or after 0.5 to 50 kB, whichever comes first (seeded), and the clients reconnect with the official client's delays. \
         Then the drops stop, every client comes back, and each client's record is counted.\n\n\
         | server | recovery | delivered | lost | duplicated | reordered | clients with losses | drops | reconnections | recovered |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut runs: Vec<(Kind, bool)> = opts
        .servers
        .iter()
        .map(|k| (*k, k.has_recovery()))
        .collect();
    if opts.servers.contains(&Kind::Ours) {
        runs.push((Kind::Ours, false));
    }
    let mut out = Vec::new();
    for (kind, recovery) in runs {
        progress(&format!(
            "drops: {} (recovery {})",
            kind.name(),
            if recovery { "on" } else { "off" }
        ));
        let server = start(opts, kind, recovery)?;
        let proxy = Proxy::with_faults(server.addr, Faults::default(), 2026)
            .await
            .map_err(|e| e.to_string())?;
        let d = drops(
            server.addr,
            &proxy,
            &DropsOpts {
                clients,
                broadcasts,
                rate,
                faults: faults.clone(),
                wait: Duration::from_secs(180),
            },
        )
        .await?;
        let _ = writeln!(
            md,
            "| {} | {} | {:.2}% | {} | {} | {} | {} | {} | {} | {} |",
            kind.name(),
            if recovery { "on" } else { "off" },
            d.percent(),
            d.lost,
            d.duplicated,
            d.reordered,
            d.clients_with_losses,
            d.drops,
            d.reconnects,
            d.recovered
        );
        out.push(json!({
            "server": kind.name(), "recovery": recovery, "clients": d.clients,
            "broadcasts": d.broadcasts, "expected": d.expected, "delivered": d.delivered,
            "lost": d.lost, "duplicated": d.duplicated, "reordered": d.reordered,
            "clients_with_losses": d.clients_with_losses, "drops": d.drops,
            "reconnects": d.reconnects, "recovered": d.recovered, "percent": d.percent(),
        }));
    }
    let _ = writeln!(md);
    Ok(Value::Array(out))
}

// ---- half-open peers ----

async fn half_open_scenario(opts: &Opts, md: &mut String) -> Result<Value> {
    let clients = if opts.quick { 500 } else { 2000 };
    let _ = writeln!(
        md,
        "## Half-open peers\n\n\
         {clients} clients join through the proxy; then the proxy stops forwarding every connection, closing nothing, and the clients go away. \
         The server only learns of it from its heartbeat (default 25 s interval, 20 s timeout on every server). \
         The server's connections are read every second through a client straight to it (the `stats` event).\n\n\
         | server | memory before clients (MiB) | with clients | all closed after (s) | memory after | connections left |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    let mut out = Vec::new();
    let mut series = Vec::new();
    for &kind in &opts.servers {
        progress(&format!("halfopen: {}", kind.name()));
        let server = start(opts, kind, false)?;
        let rss_empty = server.rss();
        let proxy = Proxy::start(server.addr).await.map_err(|e| e.to_string())?;
        let fleet = Fleet::join(&[proxy.url()], clients, 250, Duration::from_secs(120)).await?;
        let watcher =
            Broadcaster::connect(&format!("http://{}", server.addr), Duration::from_secs(30))
                .await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_full = server.rss();
        proxy.half_open_all();
        fleet.close();
        drop(fleet);
        let started = Instant::now();
        let mut points = Vec::new();
        let mut closed_after = None;
        let mut left = 0;
        while started.elapsed() < Duration::from_secs(120) {
            // The watcher's own connection is one of them.
            left = watcher.server_connections().await?.saturating_sub(1);
            points.push((started.elapsed().as_secs_f64(), left as f64));
            if left == 0 {
                closed_after = Some(started.elapsed().as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rss_after = server.rss();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            kind.name(),
            mib(rss_empty),
            mib(rss_full),
            closed_after.map_or("not within 120".to_owned(), |s| format!("{s:.0}")),
            mib(rss_after),
            left
        );
        out.push(json!({
            "server": kind.name(), "clients": clients, "rss_empty_kib": rss_empty,
            "rss_full_kib": rss_full, "closed_after_secs": closed_after,
            "rss_after_kib": rss_after, "left": left,
        }));
        series.push((kind, points));
    }
    let _ = writeln!(md, "\n![Half-open connections left](faults-halfopen.svg)\n");
    plot(
        &opts.out.join("faults-halfopen.svg"),
        "Half-open connections the server still holds",
        "seconds after the network went silent",
        "connections",
        &series,
    )?;
    Ok(Value::Array(out))
}

// ---- slow readers ----

async fn slow_scenario(opts: &Opts, md: &mut String) -> Result<Value> {
    let clients = if opts.quick { 2_000 } else { 10_000 };
    let slow = clients / 10;
    let rate = 2;
    let (calm_secs, slow_secs) = if opts.quick { (10, 60) } else { (20, 70) };
    let _ = writeln!(
        md,
        "## Slow readers\n\n\
         {clients} clients in the room, {slow} of them through the proxy; broadcasts at {rate}/s, each carrying its send time. \
         After {calm_secs} s the proxy stops reading from the server on those {slow} connections, and on their reconnections, as clients that stop reading (what they send still goes through; nothing is closed), \
         and broadcasts go on for {slow_secs} s. \
         Latency is from the broadcast's send time to its arrival, over the clients that read; the slow ones are closed by the server, whatever its reason, and counted through the `stats` event.\n\n\
         | server | p50 before (ms) | p99 before (ms) | p50 with slow readers (ms) | p99 with slow readers (ms) | memory before (MiB) | highest with slow readers (MiB) | slow ones closed after (s) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut out = Vec::new();
    let mut series = Vec::new();
    for &kind in &opts.servers {
        progress(&format!("slow: {} ({clients} clients)", kind.name()));
        let server = start(opts, kind, false)?;
        let proxy = Proxy::start(server.addr).await.map_err(|e| e.to_string())?;
        let direct = format!("http://{}", server.addr);
        // One in ten through the proxy.
        let mut urls = vec![direct.clone(); 9];
        urls.push(proxy.url());
        let fleet = Fleet::join(&urls, clients, 500, Duration::from_secs(600)).await?;
        let broadcaster = Broadcaster::connect(&direct, Duration::from_secs(30)).await?;
        let mut seq = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / rate));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(calm_secs) {
            tick.tick().await;
            seq += 1;
            broadcaster.send(seq)?;
        }
        let rss_before = server.rss();
        let before = fleet.take_latency();
        // The slow clients stop reading: nothing more is read from the server on their
        // connections, while what they send still goes through. They stay slow: their
        // reconnections (once they give the silent connection up) stop reading from the
        // start.
        proxy.set_faults(
            Faults::default().stop_reading_after(Between::new(Duration::ZERO, Duration::ZERO)),
        );
        proxy.stop_reading_all();
        let silent = Instant::now();
        let mut closed_after = None;
        let mut highest = rss_before;
        let mut points = Vec::new();
        while silent.elapsed() < Duration::from_secs(slow_secs) {
            tick.tick().await;
            seq += 1;
            broadcaster.send(seq)?;
            if seq % rate == 0 {
                let rss = server.rss();
                highest = highest.max(rss);
                points.push((silent.elapsed().as_secs_f64(), rss as f64 / 1024.0));
                let conns = broadcaster.server_connections().await?;
                // Every client that reads, and the broadcaster.
                if closed_after.is_none() && conns <= (clients - slow + 1) as u64 {
                    closed_after = Some(silent.elapsed().as_secs_f64());
                }
            }
        }
        let during = fleet.take_latency();
        let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let _ = writeln!(
            md,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            kind.name(),
            ms(&before, 0.5),
            ms(&before, 0.99),
            ms(&during, 0.5),
            ms(&during, 0.99),
            mib(rss_before),
            mib(highest),
            closed_after.map_or(format!("not within {slow_secs}"), |s| format!("{s:.0}")),
        );
        out.push(json!({
            "server": kind.name(), "clients": clients, "slow": slow, "rate": rate,
            "p50_before_ms": ms(&before, 0.5), "p99_before_ms": ms(&before, 0.99),
            "p50_during_ms": ms(&during, 0.5), "p99_during_ms": ms(&during, 0.99),
            "deliveries_during": during.len(),
            "rss_before_kib": rss_before, "rss_highest_kib": highest, "closed_after_secs": closed_after,
        }));
        series.push((kind, points));
        fleet.close();
        drop(fleet);
        drop(proxy);
        drop(server);
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let _ = writeln!(md, "\n![Memory with slow readers](faults-slow.svg)\n");
    plot(
        &opts.out.join("faults-slow.svg"),
        "Server memory once a tenth of the clients stop reading",
        "seconds after they stopped",
        "resident memory (MiB)",
        &series,
    )?;
    Ok(Value::Array(out))
}

// ---- slow HTTP ----

/// How a server dealt with one kind of trickled request: its Markdown row and its JSON.
fn slow_http_tally(server: &str, what: &str, list: &[Trickled]) -> (String, Value) {
    let given_up: Vec<&Trickled> = list.iter().filter(|t| t.ending != Ending::Open).collect();
    let mut secs: Vec<f64> = given_up.iter().map(|t| t.secs).collect();
    secs.sort_by(f64::total_cmp);
    let median = secs.get(secs.len() / 2).copied();
    let max = secs.last().copied();
    let closed = given_up
        .iter()
        .filter(|t| t.ending == Ending::Closed)
        .count();
    let mut answers = std::collections::BTreeMap::<u16, usize>::new();
    for t in &given_up {
        if let Ending::Answered(status) = t.ending {
            *answers.entry(status).or_default() += 1;
        }
    }
    let status = |s: u16| answers.get(&s).copied().unwrap_or(0);
    let other: usize = answers
        .iter()
        .filter(|(s, _)| **s != 408 && **s != 400)
        .map(|(_, n)| n)
        .sum();
    let open = list.len() - given_up.len();
    let whole = list.iter().filter(|t| t.whole).count();
    let secs_cell = |v: Option<f64>| v.map_or("-".to_owned(), |s| format!("{s:.1}"));
    let row = format!(
        "| {server} | {what} | {} | {} | {closed} | {} | {} | {other} | {} | {} | {open} |",
        list.len(),
        given_up.len(),
        status(408),
        status(400),
        secs_cell(median),
        secs_cell(max),
    );
    let json = json!({
        "requests": list.len(), "given_up": given_up.len(), "closed": closed,
        "answers": answers.iter().map(|(s, n)| (s.to_string(), Value::from(*n))).collect::<serde_json::Map<_, _>>(),
        "median_secs": median, "max_secs": max, "open": open, "whole": whole,
        "secs": secs,
    });
    (row, json)
}

async fn slow_http_scenario(opts: &Opts, md: &mut String) -> Result<Value> {
    let n = if opts.quick { 50 } else { 200 };
    let wait = if opts.quick { 100 } else { 120 };
    let settings = SlowHttpOpts {
        heads: n,
        bodies: n,
        pace: Duration::from_millis(250),
        bytes: 1200,
        wait: Duration::from_secs(wait),
    };
    let _ = writeln!(
        md,
        "## Slow HTTP\n\n\
         Through the proxy (forwarding faithfully), {n} connections send the request head of a polling handshake, padded with a header to {} bytes, a byte every {} ms; \
         and {n} polling POSTs, each to a session opened through the proxy just before, send their head whole, then their body of {} bytes a byte every {} ms. \
         All start together; no request can be whole within the {wait} s they are watched. \
         The client trickles the bytes itself: the proxy's bandwidth cap would pace the server's answer too, and the proxy ends the whole connection once a write to the server's closed side fails, so the status would not reach the client whole. \
         For each request: whether the server gave it up (closed the connection with no answer, or answered) and how long after its first byte, or whether it was still open at the end. \
         The server's resident memory before, the highest during the wait (read every second) and at its end, and 5 s after the client closed what was left; \
         its connections (its `stats`, less the client that asks: socketioxide counts its Socket.IO sockets, which a polling session without a CONNECT is not) and the sockets its process holds (from `/proc`, beyond those before) at the end of the wait and after.\n",
        settings.bytes,
        settings.pace.as_millis(),
        settings.bytes,
        settings.pace.as_millis(),
    );
    let mut requests_md = format!(
        "| server | request | requests | given up | closed, no answer | 408 | 400 | other answer | after, median (s) | after, max (s) | still open at {wait} s |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let mut memory_md = "| server | memory before (MiB) | highest (MiB) | at the end of the wait (MiB) | after (MiB) | connections at the end | connections after | sockets at the end | sockets after |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        .to_owned();
    let mut out = Vec::new();
    for &kind in &opts.servers {
        progress(&format!(
            "slowhttp: {} ({n} heads, {n} bodies)",
            kind.name()
        ));
        let server = start(opts, kind, false)?;
        let watcher =
            Broadcaster::connect(&format!("http://{}", server.addr), Duration::from_secs(30))
                .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_before = server.rss();
        let sockets_before = server.sockets();
        let proxy = Proxy::start(server.addr).await.map_err(|e| e.to_string())?;
        let mut highest = rss_before;
        let mut samples = Vec::new();
        let mut run = slow_http(proxy.addr(), &settings, |t| {
            let (rss, sockets) = (server.rss(), server.sockets());
            highest = highest.max(rss);
            samples.push(json!([t, rss, sockets.saturating_sub(sockets_before)]));
            if (t as u64).is_multiple_of(20) {
                progress(&format!("  {t:.0} s: {rss} KiB, {sockets} sockets"));
            }
        })
        .await?;
        let rss_end = server.rss();
        highest = highest.max(rss_end);
        let sockets_end = server.sockets().saturating_sub(sockets_before);
        let conns_end = watcher.server_connections().await?.saturating_sub(1);
        run.close();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let rss_after = server.rss();
        let sockets_after = server.sockets().saturating_sub(sockets_before);
        let conns_after = watcher.server_connections().await?.saturating_sub(1);
        let (heads_row, heads) = slow_http_tally(kind.name(), "head", &run.heads);
        let (bodies_row, bodies) = slow_http_tally(kind.name(), "body", &run.bodies);
        progress(&format!(
            "  {heads_row}\n    {bodies_row}\n    {} handshakes gave no session",
            run.sessions_failed
        ));
        let _ = writeln!(requests_md, "{heads_row}\n{bodies_row}");
        let _ = writeln!(
            memory_md,
            "| {} | {} | {} | {} | {} | {conns_end} | {conns_after} | {sockets_end} | {sockets_after} |",
            kind.name(),
            mib(rss_before),
            mib(highest),
            mib(rss_end),
            mib(rss_after),
        );
        out.push(json!({
            "server": kind.name(), "wait_secs": wait, "pace_ms": settings.pace.as_millis() as u64,
            "bytes": settings.bytes, "heads": heads, "bodies": bodies,
            "sessions_failed": run.sessions_failed,
            "rss_before_kib": rss_before, "rss_highest_kib": highest, "rss_end_kib": rss_end,
            "rss_after_kib": rss_after, "connections_end": conns_end,
            "connections_after": conns_after, "sockets_end": sockets_end,
            "sockets_after": sockets_after, "samples": samples,
        }));
        drop(run);
        drop(proxy);
        drop(watcher);
        drop(server);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let _ = writeln!(md, "{requests_md}\n{memory_md}");
    Ok(Value::Array(out))
}

// ---- reconnect storm ----

/// Runs the `--probe` command, if any, with the server's pid and `label`, and waits for it.
fn probe(opts: &Opts, server: &Server, label: &str) -> Result<()> {
    let Some(cmd) = &opts.probe else {
        return Ok(());
    };
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} {} {label}", server.pid))
        .status()
        .map_err(|e| format!("--probe: {e}"))?;
    if !status.success() {
        return Err(format!("--probe {label}: {status}"));
    }
    Ok(())
}

async fn storm_scenario(opts: &Opts, md: &mut String) -> Result<Value> {
    let clients = opts.storm_clients;
    let storms = if opts.quick { 2 } else { 3 };
    let _ = writeln!(
        md,
        "## Reconnect storm\n\n\
         {clients} WebSocket clients join the room through two `faultproxy` processes; then both proxies drop every connection at once, \
         and the clients reconnect with the official client's delays (1 s, randomised by half, growing to 5 s); {storms} storms in a row on the same server. \
         Time until every client is connected and back in the room; handshakes refused; the server's memory before the first storm and 10 s after the last client is back from each; \
         the connections the server holds at the end (its `stats`, less the client that asks).\n\n\
         | server | storm | clients back | time to all back (s) | attempts | refused | memory before (MiB) | after (MiB) | after/before | connections after |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut out = Vec::new();
    for &kind in &opts.servers {
        progress(&format!("storm: {} ({clients} clients)", kind.name()));
        let server = start(opts, kind, false)?;
        let mut proxies = vec![
            ProxyProcess::start(opts, server.addr)?,
            ProxyProcess::start(opts, server.addr)?,
        ];
        let urls: Vec<String> = proxies
            .iter()
            .map(|p| format!("http://{}", p.addr))
            .collect();
        let fleet = Fleet::join(&urls, clients, 500, Duration::from_secs(600)).await?;
        let watcher =
            Broadcaster::connect(&format!("http://{}", server.addr), Duration::from_secs(30))
                .await?;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let before = server.rss();
        probe(opts, &server, &format!("{}-before", kind.name()))?;
        for round in 1..=storms {
            let mut cut_err = None;
            let result = storm(
                &fleet,
                || {
                    for p in &mut proxies {
                        if let Err(e) = p.command("cut") {
                            cut_err = Some(e);
                        }
                    }
                },
                Duration::from_secs(300),
            )
            .await;
            if let Some(e) = cut_err {
                return Err(e);
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
            let after = server.rss();
            probe(opts, &server, &format!("{}-storm{round}", kind.name()))?;
            let conns = watcher.server_connections().await?.saturating_sub(1);
            progress(&format!(
                "  {result:?}, memory {before} KiB -> {after} KiB, {conns} connections"
            ));
            let _ = writeln!(
                md,
                "| {} | {round} | {} of {} | {:.1} | {} | {} | {} | {} | {:.2} | {conns} |",
                kind.name(),
                result.back,
                result.clients,
                result.secs,
                result.attempts,
                result.refused,
                mib(before),
                mib(after),
                after as f64 / before.max(1) as f64
            );
            out.push(json!({
                "server": kind.name(), "storm": round, "clients": result.clients, "back": result.back,
                "secs": result.secs, "attempts": result.attempts, "refused": result.refused,
                "rss_before_kib": before, "rss_after_kib": after, "connections_after": conns,
            }));
        }
        probe(opts, &server, &format!("{}-end", kind.name()))?;
        fleet.close();
        drop(fleet);
        drop(watcher);
        drop(proxies);
        drop(server);
        // Let the closed sockets' ports settle.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let _ = writeln!(md);
    Ok(Value::Array(out))
}

// ---- soak ----

/// How flat a soak's series is: the means of its first and last windows, and the slope of
/// a least-squares line through the samples after the first window (per hour).
#[derive(Debug, Clone, Copy, Default)]
struct Flatness {
    window_secs: u64,
    first: f64,
    last: f64,
    slope_per_hour: f64,
}

impl Flatness {
    /// `points` are (seconds, value); the window is 10 minutes, or a fifth of a shorter run.
    fn of(points: &[(f64, f64)], secs: u64) -> Flatness {
        let window = 600.min(secs / 5).max(1);
        let w = window as f64;
        let end = points.last().map_or(0.0, |p| p.0);
        let mean = |pts: Vec<f64>| pts.iter().sum::<f64>() / pts.len().max(1) as f64;
        let first = mean(points.iter().filter(|p| p.0 < w).map(|p| p.1).collect());
        let last = mean(
            points
                .iter()
                .filter(|p| p.0 > end - w)
                .map(|p| p.1)
                .collect(),
        );
        let tail: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0 >= w).collect();
        let n = tail.len() as f64;
        let (mx, my) = (
            tail.iter().map(|p| p.0).sum::<f64>() / n.max(1.0),
            tail.iter().map(|p| p.1).sum::<f64>() / n.max(1.0),
        );
        let sxy: f64 = tail.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = tail.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        Flatness {
            window_secs: window,
            first,
            last,
            slope_per_hour: slope * 3600.0,
        }
    }

    fn json(&self) -> Value {
        json!({
            "window_secs": self.window_secs, "first": self.first, "last": self.last,
            "last_over_first": self.last / self.first.max(f64::MIN_POSITIVE),
            "slope_per_hour": self.slope_per_hour,
        })
    }
}

async fn soak_scenario(opts: &Opts, md: &mut String) -> Result<Value> {
    let secs = opts.soak_secs;
    let window = Flatness::of(&[], secs).window_secs;
    let _ = writeln!(
        md,
        "## Soak\n\n\
         {secs} s of broadcasts (20/s) to a room of 200 clients through the proxy (each connection dropped after 5 to 30 s), \
         4 clients leaving and 4 new ones arriving every second; the server's memory, its tasks (the Rust servers' `stats`) and its connections sampled every 5 s. \
         Servers with recovery have it on. \
         \"First\" and \"last\" are the means of the first and the last {window} s; the slope is a least-squares line through the samples after the first {window} s.\n\n\
         | server | memory at 1 min (MiB) | at the end (MiB) | first (MiB) | last (MiB) | last / first | slope (MiB/h) | tasks first | tasks last | tasks slope (/h) | highest tasks | connections at the end |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut out = Vec::new();
    let mut series = Vec::new();
    let mut task_series = Vec::new();
    for &kind in &opts.servers {
        progress(&format!("soak: {} ({secs} s)", kind.name()));
        let server = start(opts, kind, kind.has_recovery())?;
        let proxy = Proxy::start(server.addr).await.map_err(|e| e.to_string())?;
        let pid = server.pid.clone();
        let started = Instant::now();
        let samples = soak(
            server.addr,
            &proxy,
            &SoakOpts {
                duration: Duration::from_secs(secs),
                clients: 200,
                rate: 20,
                churn: 4,
                every: Duration::from_secs(5),
                faults: Faults::default().drop_after(Between::new(
                    Duration::from_secs(5),
                    Duration::from_secs(30),
                )),
                wait: Duration::from_secs(120),
            },
            || {
                let rss_kib = rss_kib(&pid).unwrap_or(0);
                let t = started.elapsed().as_secs();
                if t % 60 < 5 {
                    progress(&format!("  soak {}: {t} s, {rss_kib} KiB", kind.name()));
                }
                Sample {
                    rss_kib,
                    ..Sample::default()
                }
            },
        )
        .await?;
        let rss: Vec<(f64, f64)> = samples
            .iter()
            .map(|s| (s.secs as f64, s.rss_kib as f64 / 1024.0))
            .collect();
        let tasks: Vec<(f64, f64)> = samples
            .iter()
            .map(|s| (s.secs as f64, s.tasks as f64))
            .collect();
        let (memory, task_flat) = (Flatness::of(&rss, secs), Flatness::of(&tasks, secs));
        let has_tasks = samples.iter().any(|s| s.tasks > 0);
        let at_min = samples
            .iter()
            .find(|s| s.secs >= 60)
            .map_or(0, |s| s.rss_kib);
        let last = samples.last().copied().unwrap_or_default();
        let highest_tasks = samples.iter().map(|s| s.tasks).max().unwrap_or(0);
        let task_cells = if has_tasks {
            format!(
                "{:.1} | {:.1} | {:+.1} | {highest_tasks}",
                task_flat.first, task_flat.last, task_flat.slope_per_hour
            )
        } else {
            "- | - | - | -".to_owned()
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} | {:.1} | {:.3} | {:+.2} | {task_cells} | {} |",
            kind.name(),
            mib(at_min),
            mib(last.rss_kib),
            memory.first,
            memory.last,
            memory.last / memory.first.max(f64::MIN_POSITIVE),
            memory.slope_per_hour,
            last.connections
        );
        out.push(json!({
            "server": kind.name(), "secs": secs,
            "memory_mib": memory.json(),
            "tasks": if has_tasks { task_flat.json() } else { Value::Null },
            "samples": samples.iter().map(|s| json!([s.secs, s.rss_kib, s.connections, s.joined, s.tasks])).collect::<Vec<_>>(),
        }));
        series.push((kind, rss));
        if has_tasks {
            task_series.push((kind, tasks));
        }
    }
    let _ = writeln!(md, "\n![Memory over the soak](faults-soak.svg)\n");
    plot(
        &opts.out.join("faults-soak.svg"),
        "Server memory over the soak",
        "seconds",
        "resident memory (MiB)",
        &series,
    )?;
    if !task_series.is_empty() {
        let _ = writeln!(md, "![Tasks over the soak](faults-soak-tasks.svg)\n");
        plot(
            &opts.out.join("faults-soak-tasks.svg"),
            "Tasks alive on the server's runtime over the soak",
            "seconds",
            "tasks",
            &task_series,
        )?;
    }
    Ok(Value::Array(out))
}

// ---- plots ----

/// A line plot of one series per server, as SVG.
fn plot(
    path: &std::path::Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(Kind, Vec<(f64, f64)>)],
) -> Result<()> {
    let (w, h, left, bottom, top, right) = (640.0, 360.0, 60.0, 40.0, 30.0, 110.0);
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let x_max = points.clone().map(|p| p.0).fold(1.0_f64, f64::max);
    let y_max = points.map(|p| p.1).fold(1.0_f64, f64::max) * 1.1;
    let sx = |x: f64| left + x / x_max * (w - left - right);
    let sy = |y: f64| h - bottom - y / y_max * (h - bottom - top);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">{title}</text>\n\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text>\n\
         <text x=\"14\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {})\">{y_label}</text>\n",
        w / 2.0,
        h - bottom,
        w - right,
        h - bottom,
        h - bottom,
        (left + w - right) / 2.0,
        h - 6.0,
        h / 2.0,
        h / 2.0,
    );
    for i in 0..=4 {
        let (xv, yv) = (x_max * i as f64 / 4.0, y_max * i as f64 / 4.0);
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{xv:.0}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{yv:.0}</text>",
            sx(xv),
            h - bottom + 14.0,
            left - 4.0,
            sy(yv) + 4.0
        );
    }
    for (i, (kind, pts)) in series.iter().enumerate() {
        let line: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>",
            kind.color(),
            line.join(" "),
            w - right + 8.0,
            top + 16.0 * (i as f64 + 1.0),
            kind.color(),
            kind.name()
        );
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg).map_err(|e| e.to_string())
}
