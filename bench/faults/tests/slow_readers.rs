//! Slow readers, the short version: a room of 50 clients behind the fault proxy, a tenth
//! of which stop reading (the proxy stops reading from the server on their connections,
//! still forwarding what they send, closing nothing), while broadcasts of 4 KiB flow.
//! Checked: every client that reads gets every broadcast once and in order; the server
//! closes the ones that do not read once their send buffers overflow (long before its
//! heartbeat would), by itself; its connections and tasks go back to those of the
//! clients that read.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bench_faults::{Fleet, OursServer, ROOM, eventually};
use faultproxy::{Between, Faults, Proxy};
use socketio_tokio::SocketIo;
use tokio::time::Instant;

/// The bound on every wait: far beyond what each step takes, far short of "forever".
const WAIT: Duration = Duration::from_secs(60);

/// Clients in the room.
const CLIENTS: usize = 50;
/// Clients that stop reading.
const SLOW: usize = CLIENTS / 10;
/// Clients that read.
const FAST: usize = CLIENTS - SLOW;

/// The server's bound on what waits for one client.
const MAX_BUFFER: usize = 64 * 1024;

/// The payload of each broadcast.
const PAYLOAD: usize = 4 * 1024;

/// Broadcasts sent at most: 16 MiB to each client, far more than the kernel's buffers and
/// the server's bound hold for a client that does not read.
const MAX_BROADCASTS: u64 = (16 << 20) / PAYLOAD as u64;

/// How far behind the last broadcast a client that reads may fall before the next ones
/// are sent, in broadcasts: well within what the kernel's buffers hold, so that only the
/// slow ones overflow.
const LAG: u64 = 64;

/// How many broadcasts the `i`-th client of `fleet` got.
fn got(fleet: &Fleet, i: usize) -> usize {
    fleet.clients[i].arrivals.lock().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_are_closed_by_the_server_and_the_others_get_every_broadcast() {
    // The heartbeat is far longer than the test: it closes no slow reader here.
    let server = OursServer::start(
        SocketIo::builder()
            .max_buffer_size(MAX_BUFFER)
            .ping_interval(Duration::from_secs(120))
            .ping_timeout(Duration::from_secs(60)),
    );
    let (fast_proxy, slow_proxy) = (
        Proxy::start(server.addr).await.unwrap(),
        Proxy::start(server.addr).await.unwrap(),
    );
    let fast = Fleet::join(&[fast_proxy.url()], FAST, 100, WAIT)
        .await
        .unwrap();
    let (ok, conns) = eventually(WAIT, || {
        let n = server.io.connection_count();
        (n == FAST, n)
    })
    .await;
    assert!(ok, "{conns} connections");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = server.tasks();
    let slow = Fleet::join(&[slow_proxy.url()], SLOW, 100, WAIT)
        .await
        .unwrap();
    let (ok, conns) = eventually(WAIT, || {
        let n = server.io.connection_count();
        (n == CLIENTS, n)
    })
    .await;
    assert!(ok, "{conns} connections");

    // The slow ones stop reading, and so would their reconnections.
    slow_proxy.set_faults(
        Faults::default().stop_reading_after(Between::new(Duration::ZERO, Duration::ZERO)),
    );
    assert_eq!(slow_proxy.stop_reading_all(), SLOW);
    let filler = "x".repeat(PAYLOAD);
    let mut seq = 0;
    while server.io.connection_count() > FAST && seq < MAX_BROADCASTS {
        for _ in 0..LAG / 2 {
            seq += 1;
            server
                .io
                .to(ROOM)
                .emit("bcast", &(seq, 0, &filler))
                .unwrap();
        }
        // The next ones once every client that reads is within `LAG`.
        let deadline = Instant::now() + WAIT;
        loop {
            let least = (0..FAST).map(|i| got(&fast, i)).min().unwrap_or(0) as u64;
            if least + LAG >= seq {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a client that reads is {} broadcasts behind",
                seq - least
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let stats = server.io.stats();
    eprintln!(
        "{seq} broadcasts of {PAYLOAD} bytes; {} buffer overflows",
        stats.buffer_overflows
    );
    // The slow ones are gone, closed for their buffers (the heartbeat is far off), while
    // the proxy still holds them open: the server closed them itself.
    let (ok, conns) = eventually(WAIT, || {
        let n = server.io.connection_count();
        (n == FAST, n)
    })
    .await;
    assert!(ok, "{conns} connections after {seq} broadcasts to the room");
    assert_eq!(server.io.stats().buffer_overflows, SLOW as u64);
    let proxied = slow_proxy.stats();
    assert_eq!(
        (proxied.stopped_reading, proxied.live),
        (SLOW as u64, SLOW as u64)
    );
    // Every client that reads got every broadcast, once and in order.
    let (ok, least) = eventually(WAIT, || {
        let least = (0..FAST).map(|i| got(&fast, i)).min().unwrap_or(0);
        (least as u64 >= seq, least)
    })
    .await;
    assert!(ok, "a client that reads got {least} of {seq} broadcasts");
    let all: Vec<u64> = (1..=seq).collect();
    for client in &fast.clients {
        assert_eq!(*client.arrivals.lock().unwrap(), all);
        assert!(client.joined() && client.connects() == 1);
    }
    // The server holds what the clients that read need, and nothing more.
    let (ok, (tasks, conns)) = eventually(WAIT, || {
        let (tasks, conns) = (server.tasks(), server.io.connection_count());
        (tasks <= baseline && conns == FAST, (tasks, conns))
    })
    .await;
    assert!(
        ok,
        "{tasks} tasks (with the clients that read: {baseline}), {conns} connections"
    );
    assert_eq!(server.io.socket_count("/"), FAST);
    fast.close();
    slow.close();
    drop((fast, slow, fast_proxy, slow_proxy));
}
