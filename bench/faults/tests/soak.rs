//! The soak, short: five minutes (`SOAK_SECS` sets another length) of broadcasts to a
//! room of 200 clients through the fault proxy (each connection dropped after 5 to 30 s),
//! with 4 clients leaving and 4 new ones arriving every second, against ours with
//! connection state recovery. Memory and the server's task count are sampled every 5 s.
//! Checked: the task count follows the connections (never more than at the first
//! sample, per connection, plus a margin), memory does not climb (the last minute's mean
//! within 25% of the second minute's), and once the clients are gone the server's task
//! count is back to where it started, no connection is left, and what connection state
//! recovery kept is dropped at the end of its window.
//!
//! It runs alone in its test binary: the memory sampled is this process's.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bench_faults::{OursServer, Sample, SoakOpts, eventually, soak};
use faultproxy::{Between, Faults, Proxy};
use socketio_tokio::{Recovery, SocketIo};

const WAIT: Duration = Duration::from_secs(120);

fn mean(samples: &[Sample], f: impl Fn(&Sample) -> u64) -> f64 {
    samples.iter().map(&f).sum::<u64>() as f64 / samples.len().max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_minutes_of_churn_and_drops_leave_memory_and_tasks_flat() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let server =
        OursServer::start(SocketIo::builder().connection_state_recovery(Recovery::default()));
    let baseline = server.tasks();
    let proxy = Proxy::start(server.addr).await.unwrap();
    let opts = SoakOpts {
        duration: Duration::from_secs(secs),
        clients: 200,
        rate: 20,
        churn: 4,
        every: Duration::from_secs(5),
        faults: Faults::default().drop_after(Between::new(
            Duration::from_secs(5),
            Duration::from_secs(30),
        )),
        wait: WAIT,
    };
    let samples = soak(server.addr, &proxy, &opts, || Sample {
        rss_kib: bench_loadgen::rss_kib("self").unwrap_or(0),
        tasks: server.tasks() as u64,
        ..Sample::default()
    })
    .await
    .unwrap();
    for s in &samples {
        eprintln!(
            "soak t={}s rss={} KiB tasks={} connections={} joined={}",
            s.secs, s.rss_kib, s.tasks, s.connections, s.joined
        );
    }
    let n = samples.len();
    assert!(n >= 12, "{n} samples");
    // Tasks per connection stay what they were at the start.
    let per_conn = |s: &Sample| s.tasks as f64 / s.connections.max(1) as f64;
    let first = per_conn(&samples[1]);
    for s in &samples[1..] {
        assert!(
            per_conn(s) <= first * 1.2 + 0.1,
            "tasks per connection grew: {s:?}, first {first:.2}"
        );
    }
    // Memory: the last fifth's mean within 25% of the second fifth's.
    let fifth = n / 5;
    let early = mean(&samples[fifth..2 * fifth], |s| s.rss_kib);
    let late = mean(&samples[n - fifth..], |s| s.rss_kib);
    assert!(
        late <= early * 1.25,
        "memory climbed: {early:.0} KiB then {late:.0} KiB"
    );
    // Everyone gone: nothing left on the server once what recovery keeps has expired
    // (the sessions of the clients dropped last are kept for its window, 2 minutes).
    let window = Recovery::default().max_disconnection_duration;
    let (ok, (tasks, conns, kept)) = eventually(WAIT + window, || {
        let (tasks, conns) = (server.tasks(), server.io.connection_count());
        let kept = server.io.recovery_store_size();
        (
            tasks <= baseline && conns == 0 && kept == (0, 0, 0),
            (tasks, conns, kept),
        )
    })
    .await;
    assert!(
        ok,
        "{tasks} tasks (baseline {baseline}), {conns} connections, {kept:?} kept for recovery left"
    );
}
