//! Each fault of the proxy, seen from both ends of a real connection through it.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use faultproxy::{Between, Faults, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

/// A liveness bound, never a measure.
const WAIT: Duration = Duration::from_secs(30);

/// A server that reads each connection to its end and reports how many bytes it got
/// (and whether it saw the end).
async fn sink() -> (SocketAddr, mpsc::UnboundedReceiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut total = 0;
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    total += n;
                }
                let _ = tx.send(total);
            });
        }
    });
    (addr, rx)
}

/// A server that echoes every connection.
async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Sends `n` bytes through `proxy` on a fresh connection, ignoring a write the drop
/// broke, and returns what the sink got.
async fn send_through(proxy: &Proxy, rx: &mut mpsc::UnboundedReceiver<usize>, n: usize) -> usize {
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let data = vec![7u8; n];
    for piece in data.chunks(1000) {
        if client.write_all(piece).await.is_err() {
            break;
        }
    }
    let _ = client.shutdown().await;
    timeout(WAIT, rx.recv()).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_faithful_proxy_forwards_everything_both_ways() {
    let proxy = Proxy::start(echo().await).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = client.split();
    let (_, back) = tokio::join!(
        async {
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
        },
        async {
            let mut back = Vec::new();
            timeout(WAIT, r.read_to_end(&mut back))
                .await
                .unwrap()
                .unwrap();
            back
        }
    );
    assert_eq!(back, data);
    assert_eq!(proxy.stats().accepted, 1);
    assert_eq!(proxy.stats().dropped, 0);
}

#[tokio::test]
async fn a_drop_after_bytes_forwards_exactly_that_many_then_closes_both_sides() {
    let (addr, mut rx) = sink().await;
    let faults = Faults::default().drop_after_bytes(Between::new(2500, 2500));
    let proxy = Proxy::with_faults(addr, faults, 1).await.unwrap();
    assert_eq!(send_through(&proxy, &mut rx, 10_000).await, 2500);
    // The client's side was closed too.
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    client.write_all(&[1u8; 3000]).await.unwrap();
    let mut buf = [0u8; 16];
    let read = timeout(WAIT, client.read(&mut buf)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(timeout(WAIT, rx.recv()).await.unwrap(), Some(2500));
    assert_eq!(proxy.stats().dropped, 2);
}

#[tokio::test]
async fn the_same_seed_draws_the_same_faults_and_another_seed_others() {
    let (addr, mut rx) = sink().await;
    let faults = Faults::default().drop_after_bytes(Between::new(100, 5000));
    let mut draws = Vec::new();
    for seed in [42, 42, 43] {
        let proxy = Proxy::with_faults(addr, faults.clone(), seed)
            .await
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(send_through(&proxy, &mut rx, 10_000).await);
        }
        assert!(got.iter().all(|n| (100..=5000).contains(n)), "{got:?}");
        draws.push(got);
    }
    assert_eq!(draws[0], draws[1]);
    assert_ne!(draws[0], draws[2]);
}

#[tokio::test]
async fn a_drop_after_a_time_closes_an_idle_connection() {
    let (addr, mut rx) = sink().await;
    let faults = Faults::default().drop_after(Between::new(
        Duration::from_millis(100),
        Duration::from_millis(200),
    ));
    let proxy = Proxy::with_faults(addr, faults, 3).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    client.write_all(b"abc").await.unwrap();
    let mut buf = [0u8; 16];
    let read = timeout(WAIT, client.read(&mut buf)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(timeout(WAIT, rx.recv()).await.unwrap(), Some(3));
    assert_eq!(proxy.stats().dropped, 1);
}

#[tokio::test]
async fn a_half_open_connection_forwards_nothing_and_closes_nothing() {
    let proxy = Proxy::start(echo().await).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    timeout(WAIT, client.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");
    assert_eq!(proxy.half_open_all(), 1);
    client.write_all(b"lost").await.unwrap();
    // Neither an answer nor an end comes; the connection stays open.
    assert!(
        timeout(Duration::from_millis(500), client.read(&mut buf))
            .await
            .is_err()
    );
    let stats = proxy.stats();
    assert_eq!((stats.half_open, stats.live, stats.dropped), (1, 1, 0));
    // A cut ends it.
    assert_eq!(proxy.cut(), 1);
    let read = timeout(WAIT, client.read(&mut buf)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn latency_holds_each_chunk_and_a_bandwidth_cap_paces_the_bytes() {
    let faults = Faults::default()
        .latency(Duration::from_millis(300))
        .bandwidth(20_000);
    let proxy = Proxy::with_faults(echo().await, faults, 5).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let sent = Instant::now();
    client.write_all(&[9u8; 10_000]).await.unwrap();
    let mut back = vec![0u8; 10_000];
    timeout(WAIT, client.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    // Both ways held each chunk 300 ms; the way back paced 10 kB at 20 kB/s after its
    // first 200-byte step: lower bounds the proxy cannot beat, whatever the machine.
    assert!(
        sent.elapsed() >= Duration::from_millis(600 + 490),
        "{:?}",
        sent.elapsed()
    );
    assert!(back.iter().all(|b| *b == 9));
}

#[tokio::test]
async fn a_stall_holds_the_bytes_then_lets_them_through() {
    let faults = Faults::default().stall(
        Between::new(Duration::ZERO, Duration::ZERO),
        Duration::from_millis(400),
    );
    let proxy = Proxy::with_faults(echo().await, faults, 9).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let sent = Instant::now();
    client.write_all(b"held").await.unwrap();
    let mut buf = [0u8; 4];
    timeout(WAIT, client.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"held");
    assert!(
        sent.elapsed() >= Duration::from_millis(390),
        "{:?}",
        sent.elapsed()
    );
}

#[tokio::test]
async fn calm_cancels_the_faults_planned_for_live_connections() {
    let (addr, mut rx) = sink().await;
    let faults = Faults::default().drop_after_bytes(Between::new(500, 500));
    let proxy = Proxy::with_faults(addr, faults, 11).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    client.write_all(&[1u8; 100]).await.unwrap();
    // The connection is up through the proxy before the faults change.
    while proxy.stats().live == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proxy.calm();
    client.write_all(&[1u8; 2000]).await.unwrap();
    client.shutdown().await.unwrap();
    assert_eq!(timeout(WAIT, rx.recv()).await.unwrap(), Some(2100));
    assert_eq!(proxy.stats().dropped, 0);
}

#[tokio::test]
async fn a_blackout_drops_the_live_connections_and_refuses_new_ones_for_a_while() {
    let proxy = Proxy::start(echo().await).await.unwrap();
    let mut first = TcpStream::connect(proxy.addr()).await.unwrap();
    first.write_all(b"x").await.unwrap();
    let mut buf = [0u8; 1];
    timeout(WAIT, first.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(proxy.blackout(Duration::from_millis(300)), 1);
    let read = timeout(WAIT, first.read(&mut buf)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // Refused until the blackout ends, served after.
    let started = Instant::now();
    loop {
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        let _ = c.write_all(b"y").await;
        if let Ok(Ok(1)) = timeout(WAIT, c.read(&mut buf)).await {
            break;
        }
        assert!(started.elapsed() < WAIT, "never served again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(proxy.stats().refused >= 1);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_half_open_fault_passes_on_not_even_the_end_of_a_side() {
    let (addr, mut rx) = sink().await;
    let faults = Faults::default().half_open_after(Between::new(Duration::ZERO, Duration::ZERO));
    let proxy = Proxy::with_faults(addr, faults, 13).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    while proxy.stats().half_open == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    client.write_all(b"never").await.unwrap();
    client.shutdown().await.unwrap();
    // The server sees neither the bytes nor the end.
    assert!(
        timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err()
    );
    assert_eq!(proxy.cut(), 1);
    assert_eq!(timeout(WAIT, rx.recv()).await.unwrap(), Some(0));
}

/// A target whose accept queue is full and never emptied: a connection to it stays in
/// the middle of its handshake (the kernel drops its SYNs). Gives the listener, to
/// accept from later, and the connections that fill its queue.
async fn jammed() -> (TcpListener, Vec<TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    loop {
        match timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(stream) => fillers.push(stream.unwrap()),
            // This one is stuck: so will the next ones be.
            Err(_) => return (listener, fillers),
        }
        assert!(fillers.len() < 64, "the accept queue does not fill");
    }
}

/// Waits until `f` holds, `WAIT` at most.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < WAIT, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Expects the end of `client`: a close or a reset.
async fn ends(client: &mut TcpStream) {
    let mut buf = [0u8; 16];
    let read = timeout(WAIT, client.read(&mut buf)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn a_cut_and_the_proxys_end_reach_connections_still_connecting_to_the_target() {
    let (listener, _fillers) = jammed().await;
    let target = listener.local_addr().unwrap();
    let proxy = Proxy::start(target).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    // The proxy holds it, still connecting.
    until("the connection is live", || proxy.stats().live == 1).await;
    assert_eq!(proxy.stats().accepted, 0);
    assert_eq!(proxy.cut(), 1);
    ends(&mut client).await;
    assert_eq!(proxy.stats().cut, 1);
    // And the proxy's end.
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    until("the connection is live", || proxy.stats().live == 1).await;
    drop(proxy);
    ends(&mut client).await;
}

/// A server that sends `n` bytes on every connection it accepts, once `open` says so,
/// and keeps the connection open.
fn talker(listener: TcpListener, n: usize, open: tokio::sync::oneshot::Receiver<()>) {
    tokio::spawn(async move {
        let _ = open.await;
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(&vec![5u8; n]).await;
                std::future::pending::<()>().await
            });
        }
    });
}

/// Opens `n` connections through `proxy`, one after the other (so that the proxy accepts
/// them in this order; `first` is already open), each once the one before got its first
/// bytes; reads them all to their ends at the same time, and gives how many bytes each
/// got, in that order.
async fn read_through(proxy: &Proxy, first: Option<TcpStream>, n: usize) -> Vec<usize> {
    let read = |mut c: TcpStream| {
        let (started, first_bytes) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut got = vec![0u8; 65_536];
            let mut total = timeout(WAIT, c.read(&mut got)).await.unwrap().unwrap();
            let _ = started.send(());
            got.clear();
            total += timeout(WAIT, c.read_to_end(&mut got))
                .await
                .unwrap()
                .unwrap();
            total
        });
        (task, first_bytes)
    };
    // The first one may not be through yet: its bytes are not waited for.
    let mut reads: Vec<_> = first.map(|c| read(c).0).into_iter().collect();
    while reads.len() < n {
        let (task, first_bytes) = read(TcpStream::connect(proxy.addr()).await.unwrap());
        let _ = first_bytes.await;
        reads.push(task);
    }
    let mut got = Vec::new();
    for r in reads {
        got.push(r.await.unwrap());
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_drawn_in_the_order_of_acceptance_however_long_the_target_takes() {
    const N: usize = 40;
    let faults = Faults::default().drop_after_bytes(Between::new(100, 50_000));
    // Every connection reaches the target at once.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let (open, opened) = tokio::sync::oneshot::channel();
    talker(listener, 60_000, opened);
    open.send(()).unwrap();
    let proxy = Proxy::with_faults(target, faults.clone(), 77)
        .await
        .unwrap();
    let plain = read_through(&proxy, None, N).await;
    drop(proxy);
    // The first connection reaches the target a second late (its SYN is dropped by a
    // full accept queue, and sent again): the others reach it before (one at a time, so
    // that the queue of one is not full again).
    let (listener, _fillers) = jammed().await;
    let target = listener.local_addr().unwrap();
    let (open, opened) = tokio::sync::oneshot::channel();
    talker(listener, 60_000, opened);
    let proxy = Proxy::with_faults(target, faults, 77).await.unwrap();
    let first = TcpStream::connect(proxy.addr()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    open.send(()).unwrap();
    let late = read_through(&proxy, Some(first), N).await;
    // Each got exactly the bytes drawn for it, the same in both runs.
    assert!(
        plain.iter().all(|n| (100..=50_000).contains(n)),
        "{plain:?}"
    );
    assert_eq!(plain, late);
}

/// A server that writes to every connection as fast as it can, counting what its writes
/// took in `written`, and reports each chunk it reads.
async fn firehose() -> (
    SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    mpsc::UnboundedReceiver<Vec<u8>>,
) {
    use std::sync::atomic::Ordering;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let w = written.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let (mut r, mut out) = s.into_split();
            let (w, tx) = (w.clone(), tx.clone());
            tokio::spawn(async move {
                let chunk = vec![3u8; 16 * 1024];
                while out.write_all(&chunk).await.is_ok() {
                    w.fetch_add(chunk.len(), Ordering::SeqCst);
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n @ 1..) = r.read(&mut buf).await {
                    let _ = tx.send(buf[..n].to_vec());
                }
            });
        }
    });
    (addr, written, rx)
}

/// Reads from `client` until nothing comes for `quiet`; gives how many bytes came.
async fn drain(client: &mut TcpStream, quiet: Duration) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    while let Ok(read) = timeout(quiet, client.read(&mut buf)).await {
        match read {
            Ok(0) | Err(_) => panic!("the connection ended"),
            Ok(n) => total += n,
        }
    }
    total
}

#[tokio::test]
async fn a_slow_reader_stops_the_servers_bytes_and_still_forwards_the_clients() {
    use std::sync::atomic::Ordering;
    let (addr, written, mut got) = firehose().await;
    let proxy = Proxy::start(addr).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    // Bytes flow from the server, then stop.
    let mut buf = vec![0u8; 1024];
    timeout(WAIT, client.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(proxy.stop_reading_all(), 1);
    drain(&mut client, Duration::from_millis(300)).await;
    // The server's writes stall once the buffers between it and the proxy are full.
    let mut last = written.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = written.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    // The client's bytes still reach the server; nothing comes back, nothing is closed.
    client.write_all(b"still here").await.unwrap();
    let mut heard = Vec::new();
    while heard.len() < 10 {
        heard.extend(timeout(WAIT, got.recv()).await.unwrap().unwrap());
    }
    assert_eq!(heard, b"still here");
    assert_eq!(drain(&mut client, Duration::from_millis(300)).await, 0);
    assert_eq!(written.load(Ordering::SeqCst), last);
    let stats = proxy.stats();
    assert_eq!(
        (stats.stopped_reading, stats.live, stats.half_open),
        (1, 1, 0)
    );
    // As a fault, from the start: not even the first bytes come.
    proxy.set_faults(
        Faults::default().stop_reading_after(Between::new(Duration::ZERO, Duration::ZERO)),
    );
    let mut second = TcpStream::connect(proxy.addr()).await.unwrap();
    second.write_all(b"hello").await.unwrap();
    let mut heard = Vec::new();
    while heard.len() < 5 {
        heard.extend(timeout(WAIT, got.recv()).await.unwrap().unwrap());
    }
    assert_eq!(heard, b"hello");
    assert_eq!(drain(&mut second, Duration::from_millis(300)).await, 0);
    assert_eq!(proxy.stats().stopped_reading, 2);
    // A cut ends both.
    assert_eq!(proxy.cut(), 2);
    ends(&mut client).await;
    ends(&mut second).await;
}
