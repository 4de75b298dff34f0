//! Delivery under drops, the short version: clients in a room behind the fault proxy,
//! their connections dropped at random (after a time, or in the middle of a frame) while
//! broadcasts flow. With connection state recovery on, every client gets every broadcast
//! once and in order.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bench_faults::{DropsOpts, OursServer, drops};
use faultproxy::{Between, Faults, Proxy};
use socketio_tokio::{Recovery, SocketIo};

/// Random drops: each connection lives 0.2 to 1.5 s, or until 0.5 to 20 kB went through.
fn random_drops() -> Faults {
    Faults::default()
        .drop_after(Between::new(
            Duration::from_millis(200),
            Duration::from_millis(1500),
        ))
        .drop_after_bytes(Between::new(500, 20_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_recovery_every_client_gets_every_broadcast_once_and_in_order() {
    let server =
        OursServer::start(SocketIo::builder().connection_state_recovery(Recovery::default()));
    let proxy = Proxy::with_faults(server.addr, Faults::default(), 2026)
        .await
        .unwrap();
    let opts = DropsOpts {
        clients: 50,
        broadcasts: 400,
        rate: 50,
        faults: random_drops(),
        wait: Duration::from_secs(120),
    };
    let d = drops(server.addr, &proxy, &opts).await.unwrap();
    eprintln!("{d:?}");
    // The faults did their part: every client was dropped, most several times, and
    // came back in its session.
    assert!(d.drops >= 2 * d.clients as u64, "{d:?}");
    assert!(d.recovered >= d.clients as u64, "{d:?}");
    assert_eq!(d.expected, 50 * 400);
    assert_eq!((d.lost, d.duplicated, d.reordered), (0, 0, 0), "{d:?}");
    assert_eq!(d.delivered, d.expected);
}
