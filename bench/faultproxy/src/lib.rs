//! A TCP proxy that injects network faults, for the tests and the fault benchmarks.
//!
//! A [`Proxy`] listens on a free port of 127.0.0.1 and forwards every connection to one
//! target. What goes wrong on a connection is decided when the proxy accepts it, from
//! the [`Faults`] in force and a seed: the same seed and the same order of connections
//! give the same faults. A connection can be
//! - dropped (both sides closed, as a network that fails under both ends) after a
//!   number of bytes, counted both ways, or after a time;
//! - stalled: nothing forwarded for a while, again and again;
//! - slowed: a latency added to every chunk each way, a bandwidth cap each way;
//! - made half-open: from a time on nothing more is forwarded either way and neither
//!   side is closed, as a peer that vanished without a FIN;
//! - made a slow reader: from a time on nothing more is read from the server, as a
//!   client that stops reading, so that the server's send buffers fill; what the client
//!   sends still goes through, and neither side is closed.
//!
//! Commands act on the live connections (those still connecting to the target
//! included): [`Proxy::cut`] drops them all, [`Proxy::blackout`] drops them and refuses
//! new ones for a while, [`Proxy::half_open_all`] makes them all half-open,
//! [`Proxy::stop_reading_all`] makes them all slow readers, and [`Proxy::set_faults`] (or
//! [`Proxy::calm`]) changes the faults of new connections and cancels what was planned
//! for the live ones.
//!
//! It does not speak HTTP or WebSocket: it moves bytes. The `faultproxy` binary runs one
//! in a process of its own (a proxy holds two descriptors per connection), driven by
//! commands on its standard input.
//!
//! ```
//! use std::time::Duration;
//! use faultproxy::{Between, Faults, Proxy};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! // An echo server behind the proxy.
//! let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let target = server.local_addr()?;
//! tokio::spawn(async move {
//!     while let Ok((mut s, _)) = server.accept().await {
//!         tokio::spawn(async move {
//!             let (mut r, mut w) = s.split();
//!             let _ = tokio::io::copy(&mut r, &mut w).await;
//!         });
//!     }
//! });
//! // Every connection is dropped once 10 bytes have gone through it.
//! let faults = Faults::default().drop_after_bytes(Between::new(10, 10));
//! let proxy = Proxy::with_faults(target, faults, 7).await?;
//! let mut client = tokio::net::TcpStream::connect(proxy.addr()).await?;
//! client.write_all(b"hello").await?;
//! let mut echoed = Vec::new();
//! client.read_to_end(&mut echoed).await?;
//! assert_eq!(echoed, b"hello");
//! assert_eq!(proxy.stats().dropped, 1);
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

/// A range that each connection draws one value from, uniformly, with its seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Between<T> {
    /// The least value.
    pub min: T,
    /// The greatest value (taken as `min` when below it).
    pub max: T,
}

impl<T> Between<T> {
    /// The range from `min` to `max`, both included.
    pub fn new(min: T, max: T) -> Between<T> {
        Between { min, max }
    }
}

impl Between<u64> {
    fn draw(&self, rng: &mut Rng) -> u64 {
        let span = self.max.saturating_sub(self.min);
        self.min
            + if span == 0 {
                0
            } else {
                rng.next() % (span + 1)
            }
    }
}

impl Between<Duration> {
    fn draw(&self, rng: &mut Rng) -> Duration {
        let ms = Between::new(self.min.as_millis() as u64, self.max.as_millis() as u64);
        Duration::from_millis(ms.draw(rng))
    }
}

/// Stalls that come back: after a pause drawn from `every`, nothing is forwarded for
/// `length`, then the next pause is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// The time between two stalls.
    pub every: Between<Duration>,
    /// How long a stall lasts.
    pub length: Duration,
}

/// What goes wrong on a connection; [`Faults::default`] is a faithful proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Drop the connection once this many bytes (both ways together) went through it.
    pub drop_after_bytes: Option<Between<u64>>,
    /// Drop the connection this long after it was accepted.
    pub drop_after: Option<Between<Duration>>,
    /// Stall the connection again and again.
    pub stall: Option<Stall>,
    /// Hold every chunk this long before forwarding it, each way.
    pub latency: Duration,
    /// Forward at most this many bytes per second, each way.
    pub bandwidth: Option<u64>,
    /// Stop forwarding this long after the connection was accepted, closing nothing.
    pub half_open_after: Option<Between<Duration>>,
    /// Stop reading from the server this long after the connection was accepted, still
    /// forwarding what the client sends, closing nothing.
    pub stop_reading_after: Option<Between<Duration>>,
}

impl Faults {
    /// Drops each connection after a number of bytes drawn from `bytes`.
    pub fn drop_after_bytes(mut self, bytes: Between<u64>) -> Faults {
        self.drop_after_bytes = Some(bytes);
        self
    }

    /// Drops each connection after a time drawn from `after`.
    pub fn drop_after(mut self, after: Between<Duration>) -> Faults {
        self.drop_after = Some(after);
        self
    }

    /// Stalls each connection for `length` after pauses drawn from `every`.
    pub fn stall(mut self, every: Between<Duration>, length: Duration) -> Faults {
        self.stall = Some(Stall { every, length });
        self
    }

    /// Adds `latency` to every chunk, each way.
    pub fn latency(mut self, latency: Duration) -> Faults {
        self.latency = latency;
        self
    }

    /// Caps each way of each connection at `bytes_per_sec`.
    pub fn bandwidth(mut self, bytes_per_sec: u64) -> Faults {
        self.bandwidth = Some(bytes_per_sec.max(1));
        self
    }

    /// Makes each connection half-open after a time drawn from `after`.
    pub fn half_open_after(mut self, after: Between<Duration>) -> Faults {
        self.half_open_after = Some(after);
        self
    }

    /// Makes each connection a slow reader after a time drawn from `after`: nothing more
    /// goes from the server to the client, while the client's bytes still go through.
    pub fn stop_reading_after(mut self, after: Between<Duration>) -> Faults {
        self.stop_reading_after = Some(after);
        self
    }
}

/// What the proxy has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted and connected to the target.
    pub accepted: u64,
    /// Connections refused during a blackout, or whose target refused them.
    pub refused: u64,
    /// Connections dropped by a fault (bytes or time).
    pub dropped: u64,
    /// Connections dropped by [`Proxy::cut`] or [`Proxy::blackout`] (those still
    /// connecting to the target included).
    pub cut: u64,
    /// Connections made half-open, by a fault or by [`Proxy::half_open_all`].
    pub half_open: u64,
    /// Connections made slow readers, by a fault or by [`Proxy::stop_reading_all`].
    pub stopped_reading: u64,
    /// Connections still open through the proxy (half-open ones, slow readers and those
    /// still connecting to the target included).
    pub live: u64,
}

/// SplitMix64: small, seedable, good enough to draw faults.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One live connection, as the commands see it.
struct Conn {
    /// The faults epoch it was accepted in: its planned faults fire only while it lasts.
    epoch: u64,
    half_open: AtomicBool,
    /// Nothing more is read from the server.
    reading_stopped: AtomicBool,
    bytes: AtomicU64,
    drop_at_bytes: Option<u64>,
    stall: Mutex<Option<(Stall, Rng, Instant, Instant)>>,
    latency: Duration,
    bandwidth: Option<u64>,
    shared: Arc<Shared>,
    abort: Mutex<Option<AbortHandle>>,
}

impl Conn {
    fn active(&self) -> bool {
        self.shared.epoch.load(Ordering::SeqCst) == self.epoch
    }

    fn is_half_open(&self) -> bool {
        self.half_open.load(Ordering::SeqCst)
    }

    fn make_half_open(&self) {
        if !self.half_open.swap(true, Ordering::SeqCst) {
            self.shared.lock().stats.half_open += 1;
        }
    }

    fn is_reading_stopped(&self) -> bool {
        self.reading_stopped.load(Ordering::SeqCst)
    }

    fn stop_reading(&self) {
        if !self.reading_stopped.swap(true, Ordering::SeqCst) {
            self.shared.lock().stats.stopped_reading += 1;
        }
    }

    /// When a stall is under way at `now`, when it ends.
    fn stalled_until(&self, now: Instant) -> Option<Instant> {
        if !self.active() {
            return None;
        }
        let mut stall = self.stall.lock().unwrap_or_else(|e| e.into_inner());
        let (plan, rng, start, end) = stall.as_mut()?;
        while now >= *end {
            *start = *end + plan.every.draw(rng);
            *end = *start + plan.length;
        }
        (now >= *start).then_some(*end)
    }
}

struct State {
    faults: Faults,
    rng: Rng,
    down_until: Option<Instant>,
    conns: Vec<Arc<Conn>>,
    stats: Stats,
}

struct Shared {
    epoch: AtomicU64,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running proxy; it stops, and drops every connection, when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// A faithful proxy on a free port of 127.0.0.1 to `target`.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        Proxy::with_faults(target, Faults::default(), 0).await
    }

    /// A proxy on a free port of 127.0.0.1 to `target`, each connection drawing its
    /// faults from `faults` with a generator seeded by `seed`.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn with_faults(
        target: SocketAddr,
        faults: Faults,
        seed: u64,
    ) -> std::io::Result<Proxy> {
        Proxy::listen(
            TcpListener::bind("127.0.0.1:0").await?,
            target,
            faults,
            seed,
        )
    }

    /// A proxy accepting on `listener`, as [`Proxy::with_faults`].
    ///
    /// # Errors
    /// When the listener has no local address.
    pub fn listen(
        listener: TcpListener,
        target: SocketAddr,
        faults: Faults,
        seed: u64,
    ) -> std::io::Result<Proxy> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            state: Mutex::new(State {
                faults,
                rng: Rng(seed),
                down_until: None,
                conns: Vec::new(),
                stats: Stats::default(),
            }),
        });
        let accept = tokio::spawn(accept_loop(listener, target, shared.clone()));
        Ok(Proxy {
            addr,
            shared,
            accept,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Counts so far.
    pub fn stats(&self) -> Stats {
        let mut state = self.shared.lock();
        state.conns.retain(|c| !finished(c));
        let mut stats = state.stats;
        stats.live = state.conns.len() as u64;
        stats
    }

    /// Sets the faults of the connections accepted from now on; the live connections
    /// keep forwarding, with none of the faults planned for them.
    pub fn set_faults(&self, faults: Faults) {
        let mut state = self.shared.lock();
        state.faults = faults;
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// No more faults: [`Proxy::set_faults`] with [`Faults::default`].
    pub fn calm(&self) {
        self.set_faults(Faults::default());
    }

    /// Drops every connection through the proxy now; new ones are served.
    /// Returns how many there were.
    pub fn cut(&self) -> usize {
        let conns = std::mem::take(&mut self.shared.lock().conns);
        let mut live = 0;
        for conn in conns {
            if let Some(abort) = conn.abort.lock().unwrap_or_else(|e| e.into_inner()).take()
                && !abort.is_finished()
            {
                abort.abort();
                live += 1;
            }
        }
        self.shared.lock().stats.cut += live as u64;
        live
    }

    /// Drops every connection through the proxy now, and every new one for `down`:
    /// a network that fails for that long. Returns how many connections there were.
    pub fn blackout(&self, down: Duration) -> usize {
        self.shared.lock().down_until = Some(Instant::now() + down);
        self.cut()
    }

    /// Makes every live connection half-open: nothing more goes through, nothing is
    /// closed. Returns how many there were.
    pub fn half_open_all(&self) -> usize {
        let conns: Vec<_> = self.shared.lock().conns.clone();
        let mut n = 0;
        for conn in conns.iter().filter(|c| !finished(c)) {
            conn.make_half_open();
            n += 1;
        }
        n
    }

    /// Makes every live connection a slow reader: nothing more is read from the server
    /// (whose send buffers then fill, as under a client that stops reading), what the
    /// client sends still goes through, nothing is closed. Returns how many there were.
    pub fn stop_reading_all(&self) -> usize {
        let conns: Vec<_> = self.shared.lock().conns.clone();
        let mut n = 0;
        for conn in conns.iter().filter(|c| !finished(c)) {
            conn.stop_reading();
            n += 1;
        }
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

fn finished(conn: &Conn) -> bool {
    conn.abort
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_none_or(AbortHandle::is_finished)
}

/// When the faults drawn for a connection fire.
#[derive(Clone, Copy)]
struct Plan {
    drop_at: Option<Instant>,
    half_open_at: Option<Instant>,
    stop_reading_at: Option<Instant>,
    /// Half-open from the start: counted once the target is reached.
    half_open_now: bool,
    /// A slow reader from the start: counted once the target is reached.
    stopped_now: bool,
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors, for one: try again shortly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        register(client, target, &shared);
    }
}

/// Draws the faults of a connection just accepted, in the order of acceptance (so that a
/// seed gives the same faults to the same connections, however long each takes to reach
/// the target), and registers it before it connects to the target, so that a cut or the
/// proxy's end reaches it while it connects.
fn register(client: TcpStream, target: SocketAddr, shared: &Arc<Shared>) {
    let now = Instant::now();
    let mut state = shared.lock();
    if state.down_until.is_some_and(|t| now < t) {
        state.stats.refused += 1;
        return;
    }
    let mut rng = Rng(state.rng.next());
    let faults = state.faults.clone();
    let drop_at_bytes = faults.drop_after_bytes.map(|b| b.draw(&mut rng));
    let drop_at = faults.drop_after.map(|d| now + d.draw(&mut rng));
    let half_open_at = faults.half_open_after.map(|d| now + d.draw(&mut rng));
    let stall = faults.stall.map(|s| {
        let start = now + s.every.draw(&mut rng);
        (s, rng.clone(), start, start + s.length)
    });
    let stop_reading_at = faults.stop_reading_after.map(|d| now + d.draw(&mut rng));
    let plan = Plan {
        drop_at,
        half_open_at,
        stop_reading_at,
        half_open_now: half_open_at.is_some_and(|at| at <= now),
        stopped_now: stop_reading_at.is_some_and(|at| at <= now),
    };
    let conn = Arc::new(Conn {
        epoch: shared.epoch.load(Ordering::SeqCst),
        // From the start: not even the first bytes go through.
        half_open: AtomicBool::new(plan.half_open_now),
        reading_stopped: AtomicBool::new(plan.stopped_now),
        bytes: AtomicU64::new(0),
        drop_at_bytes,
        stall: Mutex::new(stall),
        latency: faults.latency,
        bandwidth: faults.bandwidth,
        shared: shared.clone(),
        abort: Mutex::new(None),
    });
    // Connecting to the target may take a moment: not on the accepting task. The state
    // stays locked until the connection is registered with its abort handle, so that no
    // cut misses it.
    let task = tokio::spawn(connect(client, target, conn.clone(), plan));
    *conn.abort.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
    state.conns.retain(|c| !finished(c));
    state.conns.push(conn);
}

/// Connects a connection to the target, then forwards it.
async fn connect(client: TcpStream, target: SocketAddr, conn: Arc<Conn>, plan: Plan) {
    let Ok(server) = TcpStream::connect(target).await else {
        conn.shared.lock().stats.refused += 1;
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    {
        let mut state = conn.shared.lock();
        state.stats.accepted += 1;
        state.stats.half_open += u64::from(plan.half_open_now);
        state.stats.stopped_reading += u64::from(plan.stopped_now);
    }
    serve(client, server, conn, plan).await;
}

/// Why one way of a connection ended the whole connection.
struct End;

/// Forwards both ways until both sides closed, or a fault ends the connection.
async fn serve(client: TcpStream, server: TcpStream, conn: Arc<Conn>, plan: Plan) {
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let ways = async {
        let _ = tokio::try_join!(way(cr, sw, &conn, Way::Up), way(sr, cw, &conn, Way::Down));
    };
    let half_open = async {
        if let Some(at) = plan.half_open_at {
            tokio::time::sleep_until(at).await;
            if conn.active() {
                conn.make_half_open();
            }
        }
        std::future::pending::<()>().await
    };
    let stop_reading = async {
        if let Some(at) = plan.stop_reading_at {
            tokio::time::sleep_until(at).await;
            if conn.active() {
                conn.stop_reading();
            }
        }
        std::future::pending::<()>().await
    };
    let drop_timer = async {
        match plan.drop_at {
            Some(at) => {
                tokio::time::sleep_until(at).await;
                if !conn.active() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ways => {}
        () = half_open => {}
        () = stop_reading => {}
        () = drop_timer => conn.shared.lock().stats.dropped += 1,
    }
}

/// Which way of a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    /// From the client to the server.
    Up,
    /// From the server to the client: what a slow reader stops.
    Down,
}

enum Chunk {
    Data(Instant, Bytes),
    /// The byte count was reached: end the connection once what came before is written.
    Drop,
}

/// One way of a connection: a reader that takes chunks and a writer that forwards them
/// when their time comes.
async fn way(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    conn: &Conn,
    way: Way,
) -> Result<(), End> {
    // A slow reader: nothing more read from the server, nothing more written to the
    // client, not even the end of the server's side.
    let stopped = || way == Way::Down && conn.is_reading_stopped();
    let (tx, mut rx) = mpsc::channel::<Chunk>(64);
    // With a bandwidth cap, reads are small enough to pace in steps of 10 ms.
    let chunk = conn
        .bandwidth
        .map_or(16 * 1024, |bw| (bw / 100).clamp(1, 16 * 1024) as usize);
    let reader = async move {
        let mut buf = vec![0u8; chunk];
        loop {
            if stopped() {
                std::future::pending::<()>().await;
            }
            let read = from.read(&mut buf).await;
            // Half-open, or a slow reader: not even the end of a side goes through.
            if conn.is_half_open() || stopped() {
                std::future::pending::<()>().await;
            }
            let n = read.map_err(|_| End)?;
            if n == 0 {
                return Ok(());
            }
            let mut data = &buf[..n];
            let mut cut = false;
            if let Some(limit) = conn.drop_at_bytes.filter(|_| conn.active()) {
                let before = conn.bytes.fetch_add(n as u64, Ordering::SeqCst);
                if before + n as u64 >= limit {
                    data = &data[..(limit.saturating_sub(before) as usize).min(n)];
                    cut = true;
                }
            }
            let latency = if conn.active() {
                conn.latency
            } else {
                Duration::ZERO
            };
            let at = Instant::now() + latency;
            if !data.is_empty()
                && tx
                    .send(Chunk::Data(at, Bytes::copy_from_slice(data)))
                    .await
                    .is_err()
            {
                return Err(End);
            }
            if cut {
                let _ = tx.send(Chunk::Drop).await;
                std::future::pending::<()>().await;
            }
        }
    };
    let writer = async {
        while let Some(chunk) = rx.recv().await {
            let Chunk::Data(at, data) = chunk else {
                conn.shared.lock().stats.dropped += 1;
                return Err(End);
            };
            tokio::time::sleep_until(at).await;
            if let Some(until) = conn.stalled_until(Instant::now()) {
                tokio::time::sleep_until(until).await;
            }
            if conn.is_half_open() || stopped() {
                std::future::pending::<()>().await;
            }
            to.write_all(&data).await.map_err(|_| End)?;
            if let Some(bw) = conn.bandwidth.filter(|_| conn.active()) {
                tokio::time::sleep(Duration::from_secs_f64(data.len() as f64 / bw as f64)).await;
            }
        }
        // The reader saw the end of its side: pass it on.
        if conn.is_half_open() || stopped() {
            std::future::pending::<()>().await;
        }
        let _ = to.shutdown().await;
        Ok(())
    };
    tokio::try_join!(reader, writer).map(|_| ())
}
