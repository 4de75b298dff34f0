//! Serving over TCP: the accept loop behind [`SocketIo::serve`] and
//! [`HttpServer`], with its timeouts, limits and graceful shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Future, Ready};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream, ToSocketAddrs};
use tokio::sync::watch;

use crate::api::server::SocketIo;
use crate::api::socket::RemoteAddr;
use crate::error::ServeError;
use crate::http::h1;
use crate::http::service::{BoxError, NotFound, ResponseFuture, SocketIoBody, SocketIoService};
use crate::ws::{TcpIo, WsIo, read_clearing, take_prefix};

/// Binds `addr` and serves `io` there until [`SocketIo::shutdown`].
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let io = socketio_tokio::SocketIo::new()?;
/// socketio_tokio::serve("127.0.0.1:3000", io).await?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`ServeError::Io`] when binding fails.
pub async fn serve(addr: impl ToSocketAddrs, io: SocketIo) -> Result<(), ServeError> {
    let listener = bind(addr).await?;
    io.serve(listener).await
}

/// The listen backlog of [`serve`]: a burst of connections waits in the
/// kernel's accept queue rather than having its SYNs dropped (and retried
/// a second later). `TcpListener::bind` asks for 128; Node asks for 511.
const BACKLOG: u32 = 1024;

/// Binds the first address of `addr` that binds, as `TcpListener::bind`
/// does, with [`BACKLOG`].
async fn bind(addr: impl ToSocketAddrs) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        // As `TcpListener::bind`: a restarted server binds its port again
        // at once (on Windows the option means something else).
        let reuse = match cfg!(windows) {
            true => Ok(()),
            false => socket.set_reuseaddr(true),
        };
        let bound = reuse
            .and_then(|()| socket.bind(addr))
            .and_then(|()| socket.listen(BACKLOG));
        match bound {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}

/// An HTTP server for any tower service (an axum `Router` with
/// [`SocketIo::layer`], a [`SocketIoService`]), with the protections a
/// server facing the Internet needs; [`SocketIo::serve`] runs on it too.
///
/// It serves HTTP/1.1 (with upgrades, so WebSocket works) and HTTP/2 with
/// prior knowledge, and:
///
/// - closes a connection that sends nothing within
///   [`first_bytes_timeout`](HttpServer::first_bytes_timeout), and one
///   whose HTTP/1 request head is not whole within
///   [`header_read_timeout`](HttpServer::header_read_timeout) (a kept-alive
///   connection waiting for its next request too; a request being answered,
///   a held long-poll or a WebSocket is not affected), and an HTTP/2
///   connection that makes no request within the header read timeout;
/// - answers `431` to a request head over
///   [`max_header_size`](HttpServer::max_header_size) bytes or with more
///   than [`max_headers`](HttpServer::max_headers) headers;
/// - refuses a new connection at once when
///   [`max_connections`](HttpServer::max_connections) connections are open,
///   or [`max_connections_per_ip`](HttpServer::max_connections_per_ip) from
///   the same address: it gets a `503` if its socket takes one, and is
///   closed. The accept loop never waits for a place to free up. A
///   connection upgraded to a WebSocket counts until it closes;
/// - gives every request the client's [`RemoteAddr`] in its extensions
///   (for [`SocketIoBuilder::max_sessions_per_ip`](crate::SocketIoBuilder::max_sessions_per_ip)
///   and [`Handshake::remote_addr`](crate::Handshake::remote_addr); in
///   axum, `Extension<RemoteAddr>`);
/// - stops gracefully: see [`serve_until`](HttpServer::serve_until).
///
/// `axum::serve` and a plain hyper accept loop do none of this: a client
/// that trickles its headers, or connects and sends nothing, holds its
/// connection for as long as it likes.
///
/// ```no_run
/// use axum::Router;
/// use axum::routing::get;
/// use socketio_tokio::SocketIo;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let io = SocketIo::new()?;
/// let app = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(io.layer());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// // The header limits and timeouts of `io`'s builder, and connection caps.
/// io.http_server()
///     .max_connections(10_000)
///     .max_connections_per_ip(1_000)
///     .serve_until(listener, app, async move {
///         let _ = tokio::signal::ctrl_c().await;
///         io.shutdown().await;
///     })
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HttpServer {
    header_read_timeout: Duration,
    first_bytes_timeout: Option<Duration>,
    max_header_size: usize,
    max_headers: usize,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    shutdown_timeout: Duration,
}

impl Default for HttpServer {
    fn default() -> Self {
        HttpServer {
            header_read_timeout: Duration::from_secs(30),
            first_bytes_timeout: None,
            max_header_size: 16 * 1024,
            max_headers: 100,
            max_connections: None,
            max_connections_per_ip: None,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl HttpServer {
    /// A server with the defaults: 30 s to read a request head, 16 KiB
    /// and 100 headers per head (more get `431`; Node reads up to 2000 and
    /// drops the rest), no cap on connections, 10 s for a graceful
    /// shutdown.
    ///
    /// [`SocketIo::http_server`] starts from the limits set on a
    /// [`SocketIoBuilder`](crate::SocketIoBuilder) instead.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long an HTTP/1 request head may take to arrive whole, from its
    /// first byte, or from the end of the previous response on a
    /// kept-alive connection (default 30 s; Node's `headersTimeout` is
    /// 60 s). Then the TCP connection is closed. An HTTP/2 connection may
    /// go as long with no request in flight, its first one included.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a new connection may stay silent before its first byte
    /// (default: the [`header_read_timeout`](HttpServer::header_read_timeout)).
    /// Then it is closed. Until its first byte, a connection holds no
    /// buffer.
    pub fn first_bytes_timeout(mut self, timeout: Duration) -> Self {
        self.first_bytes_timeout = Some(timeout);
        self
    }

    /// The largest HTTP/1 request head, in bytes (default 16 KiB, as
    /// Node's; at least 8 KiB), and the largest HTTP/2 header list. Larger
    /// heads get `431`.
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.max_header_size = bytes;
        self
    }

    /// The most headers in an HTTP/1 request (default 100); more get `431`.
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// The most connections open at once (default: no cap, as Node's
    /// `maxConnections`). A connection past it is refused at once: a
    /// `503` if its socket takes it, then closed. Keep it well under the
    /// process's open-file limit.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = Some(max);
        self
    }

    /// The most connections open at once from one IP address (default: no
    /// cap), refused as [`max_connections`](HttpServer::max_connections).
    /// Behind a reverse proxy every connection comes from the proxy: leave
    /// this unset there, and let the proxy count its clients.
    pub fn max_connections_per_ip(mut self, max: usize) -> Self {
        self.max_connections_per_ip = Some(max);
        self
    }

    /// How long a graceful shutdown waits for the connections to finish
    /// their requests in flight (default 10 s); then those still open are
    /// dropped.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Serves `service` on `listener` until the process ends.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = socketio_tokio::SocketIo::new()?;
    /// let app = axum::Router::new().layer(io.layer());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// socketio_tokio::HttpServer::new().serve(listener, app).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ServeError::Io`] when accepting fails for good. A failed accept
    /// (out of file descriptors) is logged and retried.
    pub async fn serve<S, B>(self, listener: TcpListener, service: S) -> Result<(), ServeError>
    where
        S: tower_service::Service<http::Request<Incoming>, Response = http::Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        self.serve_until(listener, service, std::future::pending())
            .await
    }

    /// Serves `service` on `listener` until `signal` completes; then it
    /// stops accepting, lets each connection finish the requests in flight
    /// (for up to [`shutdown_timeout`](HttpServer::shutdown_timeout)), and
    /// returns.
    ///
    /// With Socket.IO mounted in `service`, make the signal end with
    /// [`SocketIo::shutdown`]: while it runs, the server still accepts the
    /// requests in which polling clients get their close packet.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = socketio_tokio::SocketIo::new()?;
    /// let app = axum::Router::new().layer(io.layer());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// io.http_server()
    ///     .serve_until(listener, app, async move {
    ///         let _ = tokio::signal::ctrl_c().await;
    ///         io.shutdown().await;
    ///     })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`serve`](HttpServer::serve).
    pub async fn serve_until<S, B, F>(
        self,
        listener: TcpListener,
        service: S,
        signal: F,
    ) -> Result<(), ServeError>
    where
        S: tower_service::Service<http::Request<Incoming>, Response = http::Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
        F: Future<Output = ()>,
    {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "serving");
        }
        let make = move |remote: SocketAddr| AppService {
            inner: service.clone(),
            remote: RemoteAddr(remote),
        };
        self.run(listener, make, signal, None).await
    }

    /// The accept loop: each connection admitted, then served with `make`'s
    /// service on a task of its own, until `stop` completes.
    async fn run<M, H, B>(
        &self,
        listener: TcpListener,
        mut make: M,
        stop: impl Future<Output = ()>,
        polling: Option<&SocketIo>,
    ) -> Result<(), ServeError>
    where
        M: FnMut(SocketAddr) -> H,
        H: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>
            + Send
            + 'static,
        H::Future: Send + 'static,
        H::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        // Connections watch this to finish gracefully; `closed` tells when
        // they all did.
        let (graceful, _) = watch::channel(());
        tokio::pin!(stop);
        let max_buf_size = self.max_header_size.max(8192);
        // HTTP/1 goes straight to hyper's HTTP/1 connection; the automatic
        // builder (which reads the first bytes to tell the version) serves
        // the clients that open with the HTTP/2 preface.
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(max_buf_size)
            .max_headers(self.max_headers);
        let mut auto = Builder::new(TokioExecutor::new());
        auto.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(max_buf_size)
            .max_headers(self.max_headers);
        auto.http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.max_header_size).unwrap_or(u32::MAX));
        let builders = Arc::new((http1, auto));
        let first_bytes_timeout = self.first_bytes_timeout.unwrap_or(self.header_read_timeout);
        let limits = h1::Limits {
            header_read_timeout: self.header_read_timeout,
            max_head: max_buf_size,
            max_headers: self.max_headers,
            shutdown_timeout: self.shutdown_timeout,
        };
        let admission = Arc::new(Admission {
            max_total: self.max_connections,
            max_per_ip: self.max_connections_per_ip,
            counts: Mutex::default(),
        });
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut stop => break,
            };
            let (stream, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait, then go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let slot = match admission.admit(remote.ip()) {
                Ok(slot) => slot,
                Err(cap) => {
                    tracing::debug!(%remote, cap, "connection refused");
                    refuse(stream);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let conn = Conn {
                stream,
                slot,
                watcher: graceful.subscribe(),
                first_bytes_timeout,
                header_read_timeout: self.header_read_timeout,
                shutdown_timeout: self.shutdown_timeout,
                polling: polling.map(|io| (io.clone(), remote, limits)),
            };
            // Boxed: the runtime moves a task's future as it spawns and
            // ends the task, a copy each time for a future of a kilobyte,
            // none for a box.
            tokio::spawn(Box::pin(conn.serve(make(remote), builders.clone())));
        }
        drop(listener);
        // Let the connections answer their last requests: each finishes, or
        // drops itself at the shutdown timeout (an upgraded connection is
        // not theirs any more). The bound is a safeguard only.
        let _ = graceful.send(());
        let bound = self.shutdown_timeout.saturating_add(Duration::from_secs(1));
        let _ = tokio::time::timeout(bound, graceful.closed()).await;
        Ok(())
    }
}

/// The answer to a connection over a cap, written before it is closed.
const REFUSED: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// Answers a connection over a cap with [`REFUSED`] and closes it, never
/// waiting: the socket's send buffer is empty, so the answer fits unless
/// the peer is gone. What the client sent already is read first, so that
/// the close does not reset the connection under the answer.
fn refuse(stream: TcpStream) {
    use std::io::{Read, Write};
    // Out of the runtime's hands: a plain non-blocking socket, written at
    // once (the runtime may not know yet that it is writable).
    let Ok(stream) = stream.into_std() else {
        return;
    };
    let mut sent = [0u8; 2048];
    let _ = (&stream).read(&mut sent);
    let _ = (&stream).write(REFUSED);
}

/// One accepted connection, before hyper takes it.
struct Conn {
    stream: TcpStream,
    slot: Slot,
    watcher: watch::Receiver<()>,
    first_bytes_timeout: Duration,
    header_read_timeout: Duration,
    shutdown_timeout: Duration,
    /// With the server's own service: the polling requests are served
    /// without hyper ([`h1`]) for as long as they come, and a WebSocket
    /// upgrade is made without it.
    polling: Option<(SocketIo, SocketAddr, h1::Limits)>,
}

impl Conn {
    /// Waits for the first bytes (holding no buffer meanwhile), then
    /// serves the connection with `service` to its end.
    async fn serve<H, B>(self, service: H, builders: Arc<Builders>)
    where
        H: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>
            + Send
            + 'static,
        H::Future: Send + 'static,
        H::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let Conn {
            stream,
            slot,
            mut watcher,
            first_bytes_timeout,
            header_read_timeout,
            shutdown_timeout,
            polling,
        } = self;
        let first = tokio::select! {
            // Bytes that came are served, even with the shutdown under way.
            biased;
            first = tokio::time::timeout(first_bytes_timeout, first_bytes(&stream)) => first,
            _ = watcher.changed() => return,
        };
        let prefix = match first {
            Ok(Some(prefix)) => prefix,
            // The client closed, or the stream failed, before a byte.
            Ok(None) => return,
            Err(_) => {
                tracing::trace!("no request in time");
                return;
            }
        };
        let h2 = opens_with_h2_preface(&prefix);
        let prefix = match polling {
            Some((io, remote, limits)) if !h2 => match h1::first(&prefix, &io, limits) {
                Some(parsed) => {
                    // Boxed, as hyper's connection is below: the task's
                    // future stays small, and the runtime copies it whole
                    // as it spawns and ends the task.
                    let served = Box::pin(h1::serve(
                        &stream,
                        prefix,
                        parsed,
                        &io,
                        remote,
                        &mut watcher,
                        limits,
                    ));
                    match served.await {
                        h1::Ended::Closed => return,
                        h1::Ended::HandOver(rest) => rest,
                        h1::Ended::Upgraded(upgrade, rest) => {
                            // The slot goes with the stream.
                            let io = TcpIo::new(stream, rest, slot.kept());
                            upgrade.ws.open(WsIo::Tcp(io));
                            return;
                        }
                    }
                }
                None => prefix,
            },
            _ => prefix,
        };
        // The slot goes with the stream, into an upgraded connection too.
        let io = TokioIo::new(Counted {
            stream,
            prefix,
            _slot: slot,
        });
        // Boxed: a connection served without hyper (an Engine.IO
        // session's) does not carry the space of hyper's connection, which
        // the runtime would copy as it spawns, polls and ends the task.
        let hyper = Box::pin(async move {
            let (http1, auto) = &*builders;
            let ended = if h2 {
                // hyper times nothing on HTTP/2: not the rest of the preface,
                // not the client's settings, not the time between requests. A
                // connection with no request in flight for the header read
                // timeout is closed, from its start on, as an idle kept-alive
                // HTTP/1 connection is.
                let activity = Activity::new();
                let service = Tracked {
                    inner: service,
                    activity: activity.clone(),
                };
                let expire = async move {
                    activity.idle(header_read_timeout).await;
                    tracing::trace!("http/2 connection idle");
                };
                let conn = auto.serve_connection_with_upgrades(io, service);
                until_done(
                    conn,
                    watcher,
                    |c| c.graceful_shutdown(),
                    expire,
                    shutdown_timeout,
                )
                .await
                .map_err(|e| e.to_string())
            } else {
                // hyper's header read timeout runs from the first read.
                let conn = http1.serve_connection(io, service).with_upgrades();
                until_done(
                    conn,
                    watcher,
                    |c| c.graceful_shutdown(),
                    std::future::pending(),
                    shutdown_timeout,
                )
                .await
                .map_err(|e| e.to_string())
            };
            if let Err(error) = ended {
                tracing::trace!(%error, "http connection ended");
            }
        });
        hyper.await;
    }
}

/// hyper's HTTP/1 connection, and the automatic one that serves the
/// clients that open with the HTTP/2 preface.
type Builders = (http1::Builder, Builder<TokioExecutor>);

/// The connection caps and the connections open.
struct Admission {
    max_total: Option<usize>,
    max_per_ip: Option<usize>,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    /// Only with a cap per address; no entry holds 0.
    per_ip: HashMap<IpAddr, usize>,
}

impl Admission {
    /// A place for a connection from `ip`, or the cap that refuses it.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        if self.max_total.is_none() && self.max_per_ip.is_none() {
            return Ok(Slot { held: None });
        }
        // An IPv4 client of an IPv6 socket counts as its IPv4 address.
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if self.max_total.is_some_and(|max| counts.total >= max) {
            return Err("max_connections");
        }
        if let Some(max) = self.max_per_ip {
            let n = counts.per_ip.get(&ip).copied().unwrap_or(0);
            if n >= max {
                return Err("max_connections_per_ip");
            }
            counts.per_ip.insert(ip, n + 1);
        }
        counts.total += 1;
        Ok(Slot {
            held: Some((self.clone(), ip)),
        })
    }
}

/// A connection's place under the caps, given back when it drops.
struct Slot {
    held: Option<(Arc<Admission>, IpAddr)>,
}

impl Slot {
    /// The slot, boxed to keep for as long as its stream is open; `None`
    /// when it holds no place.
    fn kept(self) -> Option<Box<dyn Send + Sync>> {
        match self.held {
            Some(_) => Some(Box::new(self)),
            None => None,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((admission, ip)) = self.held.take() else {
            return;
        };
        let mut counts = admission
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_ip.remove(&ip);
                // Give back the room of a crowd that left.
                if counts.per_ip.capacity() > 64
                    && counts.per_ip.len() * 4 < counts.per_ip.capacity()
                {
                    counts.per_ip.shrink_to_fit();
                }
            }
        }
    }
}

/// A TCP stream that holds its connection's [`Slot`] for as long as it
/// is open, served by hyper or upgraded to a WebSocket.
pub(crate) struct Counted {
    stream: TcpStream,
    /// The first bytes, read before the HTTP server was chosen: its first
    /// read gets them.
    prefix: Bytes,
    _slot: Slot,
}

impl Counted {
    /// The stream, what of its first bytes was not read yet, and its place
    /// under the caps when it has one (to keep for as long as the stream
    /// is open).
    pub(crate) fn into_parts(self) -> (TcpStream, Bytes, Option<Box<dyn Send + Sync>>) {
        (self.stream, self.prefix, self._slot.kept())
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if take_prefix(&mut this.prefix, buf) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl SocketIo {
    /// An [`HttpServer`] with the header limits, the header read timeout
    /// and the shutdown timeout set on this server's
    /// [`SocketIoBuilder`](crate::SocketIoBuilder), to serve an
    /// application that mounts it.
    ///
    /// ```
    /// let io = socketio_tokio::SocketIo::builder()
    ///     .header_read_timeout(std::time::Duration::from_secs(10))
    ///     .build()?;
    /// let server = io.http_server().max_connections(10_000);
    /// # let _ = server;
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn http_server(&self) -> HttpServer {
        let options = &self.shared.options;
        HttpServer {
            header_read_timeout: options.header_read_timeout,
            max_header_size: options.max_header_size,
            max_headers: options.max_headers,
            shutdown_timeout: options.shutdown_timeout,
            ..HttpServer::default()
        }
    }

    /// Serves on `listener` (HTTP/1.1 and HTTP/2, WebSocket upgrades) until
    /// [`shutdown`](SocketIo::shutdown): then it stops accepting, lets the
    /// requests in flight finish, and returns. Other paths get 404.
    ///
    /// It runs [`http_server`](SocketIo::http_server): the header limits
    /// and timeouts of the builder, no cap on connections.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = socketio_tokio::SocketIo::new()?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// println!("listening on {}", listener.local_addr()?);
    /// io.serve(listener).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ServeError::Io`] when accepting fails for good.
    pub async fn serve(&self, listener: TcpListener) -> Result<(), ServeError> {
        self.serve_with(self.http_server(), listener).await
    }

    /// Serves on `listener` as [`serve`](SocketIo::serve) does, with the
    /// limits of `server` (connection caps, for example).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = socketio_tokio::SocketIo::new()?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// let server = io.http_server().max_connections_per_ip(100);
    /// io.serve_with(server, listener).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ServeError::Io`] when accepting fails for good.
    pub async fn serve_with(
        &self,
        server: HttpServer,
        listener: TcpListener,
    ) -> Result<(), ServeError> {
        let mut stop = self.shared.shutdown_signal.subscribe();
        let mut live = self.shared.live.subscribe();
        let timeout = self.shared.options.shutdown_timeout;
        // Once shutting down, the sessions still need requests to say
        // goodbye (a polling client's next GET gets the close packet): keep
        // accepting until they are gone (new handshakes are refused).
        let drained = async move {
            let _ = stop.wait_for(|s| *s).await;
            let _ = tokio::time::timeout(timeout, live.wait_for(|n| *n == 0)).await;
        };
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, path = %self.shared.config.path, "serving");
        }
        let make = |remote| ConnService(self.service().with_remote(remote));
        server.run(listener, make, drained, Some(self)).await
    }
}

/// The client's preface of HTTP/2 with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How much of a connection's first bytes are read at once: a request
/// head of a few hundred bytes comes whole, so that the HTTP server reads
/// it with no system call of its own.
const FIRST_BYTES: usize = 4096;

thread_local! {
    /// Where a connection's first bytes are read: one buffer per thread,
    /// so that a connection holds none until its first bytes come.
    static FIRST: std::cell::RefCell<Box<[u8; FIRST_BYTES]>> =
        std::cell::RefCell::new(Box::new([0; FIRST_BYTES]));
}

/// The first bytes the client sent, as they come (none when the stream
/// ended or failed first). They are read, not peeked, so that the request
/// head costs one system call, not two.
async fn first_bytes(stream: &TcpStream) -> Option<Bytes> {
    loop {
        stream.readable().await.ok()?;
        // A short read clears the readiness, as tokio's own reads do: the
        // HTTP server's next read waits for more rather than asking.
        let read = FIRST.with_borrow_mut(|first| match read_clearing(stream, &mut first[..]) {
            Ok(0) => FirstRead::Over,
            Ok(n) => FirstRead::Bytes(Bytes::copy_from_slice(&first[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => FirstRead::NotYet,
            Err(_) => FirstRead::Over,
        });
        match read {
            FirstRead::Bytes(bytes) => return Some(bytes),
            // Not ready after all: wait again.
            FirstRead::NotYet => continue,
            FirstRead::Over => return None,
        }
    }
}

/// What one read of a connection's first bytes gave.
enum FirstRead {
    /// Bytes.
    Bytes(Bytes),
    /// Nothing yet, though the runtime said the socket was readable.
    NotYet,
    /// The end of the stream, or an error.
    Over,
}

/// Whether the first bytes the client sent are (the start of) the HTTP/2
/// preface.
fn opens_with_h2_preface(first: &[u8]) -> bool {
    let n = first.len().min(H2_PREFACE.len());
    n > 0 && first[..n] == H2_PREFACE[..n]
}

/// Runs `conn` to its end; once `watcher` changes, asks it to finish its
/// requests in flight and close, and drops it if it has not within
/// `shutdown_timeout`. When `expire` completes first, the connection is
/// dropped (closed) as it is.
async fn until_done<C, E>(
    conn: C,
    mut watcher: watch::Receiver<()>,
    graceful: impl FnOnce(Pin<&mut C>),
    expire: impl Future<Output = ()>,
    shutdown_timeout: Duration,
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    tokio::pin!(conn);
    tokio::pin!(expire);
    tokio::select! {
        ended = conn.as_mut() => return ended,
        () = &mut expire => return Ok(()),
        _ = watcher.changed() => {}
    }
    graceful(conn.as_mut());
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = &mut expire => Ok(()),
        () = tokio::time::sleep(shutdown_timeout) => Ok(()),
    };
    drop(watcher);
    ended
}

/// What an HTTP/2 connection has in flight, for its idle timeout: the
/// requests whose response (body included) is not done, and when that
/// count last changed.
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    since: tokio::time::Instant,
    /// When the count last changed, in milliseconds after `since`.
    changed: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            in_flight: Default::default(),
            since: tokio::time::Instant::now(),
            changed: Default::default(),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.changed.store(ms, std::sync::atomic::Ordering::Release);
    }

    /// How long the connection has had nothing in flight (zero while it has).
    fn idle_for(&self) -> Duration {
        use std::sync::atomic::Ordering;
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let changed = Duration::from_millis(self.changed.load(Ordering::Acquire));
        self.since.elapsed().saturating_sub(changed)
    }

    /// Waits until the connection has had nothing in flight for `idle`.
    async fn idle(&self, idle: Duration) {
        loop {
            let was = self.idle_for();
            if was >= idle {
                return;
            }
            tokio::time::sleep(idle - was).await;
        }
    }
}

/// A request in flight: counted until dropped.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: &Arc<Activity>) -> Busy {
        activity
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        activity.touch();
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A connection's service that counts its requests in flight, each until
/// its response's body is done.
struct Tracked<H> {
    inner: H,
    activity: Arc<Activity>,
}

impl<H, R, B> hyper::service::Service<R> for Tracked<H>
where
    H: hyper::service::Service<R, Response = http::Response<B>>,
{
    type Response = http::Response<TrackedBody<B>>;
    type Error = H::Error;
    type Future = TrackedFuture<H::Future>;

    fn call(&self, req: R) -> Self::Future {
        TrackedFuture {
            busy: Some(Busy::start(&self.activity)),
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// The response future of [`Tracked`].
    struct TrackedFuture<F> {
        #[pin]
        inner: F,
        busy: Option<Busy>,
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<TrackedBody<B>>, E>;

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        let busy = this.busy.take();
        std::task::Poll::Ready(out.map(|res| res.map(|body| TrackedBody { body, _busy: busy })))
    }
}

pin_project! {
    /// A response body that keeps its request counted until it is done.
    struct TrackedBody<B> {
        #[pin]
        body: B,
        _busy: Option<Busy>,
    }
}

impl<B: http_body::Body> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The service of one connection, as hyper calls it. It calls ours at
/// once, where a tower `Oneshot` would hold the request until its first
/// poll: a polling request of a session lets go of hyper's request head
/// (slices of the read buffer) before hyper reads on.
#[derive(Clone)]
struct ConnService(SocketIoService<NotFound>);

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = http::Response<SocketIoBody<Full<Bytes>>>;
    type Error = Infallible;
    type Future = ResponseFuture<Ready<Result<http::Response<Full<Bytes>>, Infallible>>>;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        // Always ready: its inner service is `NotFound`.
        tower_service::Service::call(&mut self.0.clone(), req)
    }
}

/// An application's tower service as hyper calls it, for one connection:
/// each request gets the client's [`RemoteAddr`], and goes to a clone of
/// the service at once when it is ready (as [`ConnService`] does), or when
/// it becomes ready.
#[derive(Clone)]
struct AppService<S> {
    inner: S,
    remote: RemoteAddr,
}

impl<S, B> hyper::service::Service<http::Request<Incoming>> for AppService<S>
where
    S: tower_service::Service<http::Request<Incoming>, Response = http::Response<B>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<B>;
    type Error = BoxError;
    type Future = AppFuture<S>;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.remote);
        let mut service = self.inner.clone();
        // Asking with a waker that does nothing is only a question: when
        // the answer is "not yet", the future asks again with its own.
        let mut cx = Context::from_waker(Waker::noop());
        match service.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => AppFuture::Called {
                fut: service.call(req),
            },
            Poll::Ready(Err(error)) => AppFuture::Failed {
                error: Some(error.into()),
            },
            Poll::Pending => AppFuture::Waiting {
                service,
                req: Some(Box::new(req)),
            },
        }
    }
}

pin_project! {
    /// The answer of an [`AppService`].
    #[project = AppFutureProj]
    enum AppFuture<S>
    where
        S: tower_service::Service<http::Request<Incoming>>,
    {
        Waiting { service: S, req: Option<Box<http::Request<Incoming>>> },
        Called { #[pin] fut: S::Future },
        Failed { error: Option<BoxError> },
    }
}

impl<S> Future for AppFuture<S>
where
    S: tower_service::Service<http::Request<Incoming>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                AppFutureProj::Waiting { service, req } => {
                    if let Err(error) = std::task::ready!(service.poll_ready(cx)) {
                        return Poll::Ready(Err(error.into()));
                    }
                    // Always there: it is taken only here, on the way out
                    // of this state.
                    let Some(req) = req.take() else {
                        return Poll::Pending;
                    };
                    let fut = service.call(*req);
                    self.set(AppFuture::Called { fut });
                }
                AppFutureProj::Called { fut } => return fut.poll(cx).map_err(Into::into),
                // Polled once only: the error is taken then.
                AppFutureProj::Failed { error } => {
                    return match error.take() {
                        Some(error) => Poll::Ready(Err(error)),
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bind_listens_on_the_first_address_that_binds() {
        let listener = bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        assert!(addr.ip().is_loopback());
        let client = TcpStream::connect(addr).await.expect("connect");
        let (_, from) = listener.accept().await.expect("accept");
        assert_eq!(from, client.local_addr().expect("client address"));
    }

    fn admission(total: Option<usize>, per_ip: Option<usize>) -> Arc<Admission> {
        Arc::new(Admission {
            max_total: total,
            max_per_ip: per_ip,
            counts: Mutex::default(),
        })
    }

    #[test]
    fn the_caps_refuse_past_them_and_take_back_what_leaves() {
        let a: IpAddr = "10.0.0.1".parse().expect("address");
        let b: IpAddr = "10.0.0.2".parse().expect("address");
        let caps = admission(Some(3), Some(2));
        let a1 = caps.admit(a).expect("first from a");
        let a2 = caps.admit(a).expect("second from a");
        assert_eq!(caps.admit(a).err(), Some("max_connections_per_ip"));
        let b1 = caps.admit(b).expect("first from b");
        assert_eq!(caps.admit(b).err(), Some("max_connections"));
        drop(a1);
        let b2 = caps.admit(b).expect("a place freed");
        assert_eq!(caps.admit(a).err(), Some("max_connections"));
        drop((a2, b1, b2));
        let counts = caps.counts.lock().expect("lock");
        assert_eq!(counts.total, 0);
        assert!(counts.per_ip.is_empty());
    }

    #[test]
    fn an_ipv4_client_of_an_ipv6_socket_counts_as_its_ipv4_address() {
        let caps = admission(None, Some(1));
        let v4: IpAddr = "192.0.2.7".parse().expect("address");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("address");
        let _held = caps.admit(v4).expect("first");
        assert_eq!(caps.admit(mapped).err(), Some("max_connections_per_ip"));
    }

    #[test]
    fn without_caps_nothing_is_counted() {
        let caps = admission(None, None);
        let slots: Vec<_> = (0..10)
            .map(|_| caps.admit(IpAddr::from([127, 0, 0, 1])).expect("admitted"))
            .collect();
        assert_eq!(caps.counts.lock().expect("lock").total, 0);
        drop(slots);
    }
}
