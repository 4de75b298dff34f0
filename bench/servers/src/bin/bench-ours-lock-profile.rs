//! Ours with the benchmark handlers on a multi-threaded runtime
//! (`--threads N`, 2 by default), built with the `lock-profile` feature: on
//! SIGTERM or SIGINT it prints how each operation used the endpoint's lock
//! (a Markdown table, then one JSON line) and exits.
//!
//! ```text
//! cargo build --release -p bench-servers --features lock-profile --bin bench-ours-lock-profile
//! target/release/bench-ours-lock-profile --port 0 --threads 2 &
//! target/release/loadgen --addr ADDR --scenario broadcast --clients 1000 ...
//! kill -TERM $!
//! ```

use bench_servers::announce;
use socketio_tokio::SocketIo;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads = bench_servers::value("threads")
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(serve())
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut builder = SocketIo::builder();
    if bench_servers::flag("recovery") {
        builder = builder.connection_state_recovery(socketio_tokio::Recovery::default());
    }
    let io = builder.build()?;
    bench_servers::ours_handlers(&io);
    let listener = bench_servers::listen()?;
    announce(listener.local_addr()?);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        served = io.serve(listener) => served?,
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    print_profile(&io.endpoint_lock_profile());
    Ok(())
}

/// The profile as a table, the longest total hold first, then as JSON.
fn print_profile(sites: &[socketio_tokio::LockSite]) {
    use std::io::Write;
    let micros = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "| site | takes | contended | waited, µs | held, µs | median hold, µs | p99 hold, µs | longest, µs |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut json = Vec::new();
    for s in sites {
        let file = s.file.rsplit("/src/").next().unwrap_or(s.file);
        let _ = writeln!(
            out,
            "| {file}:{} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} |",
            s.line,
            s.acquisitions,
            s.contended,
            micros(s.waited),
            micros(s.held),
            micros(s.held_p50),
            micros(s.held_p99),
            micros(s.held_max),
        );
        json.push(serde_json::json!({
            "site": format!("{file}:{}", s.line),
            "takes": s.acquisitions,
            "contended": s.contended,
            "waited_us": micros(s.waited),
            "held_us": micros(s.held),
            "p50_us": micros(s.held_p50),
            "p99_us": micros(s.held_p99),
            "longest_us": micros(s.held_max),
        }));
    }
    let _ = writeln!(out, "{}", serde_json::Value::Array(json));
    let _ = out.flush();
}
