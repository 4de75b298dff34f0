//! A standalone server, for applications without a web framework.

use std::convert::Infallible;
use std::future::{Future, Ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpSocket, TcpStream, ToSocketAddrs};
use tokio::sync::watch;

use crate::api::server::SocketIo;
use crate::error::ServeError;
use crate::http::service::{NotFound, ResponseFuture, SocketIoBody, SocketIoService};

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

impl SocketIo {
    /// Serves on `listener` (HTTP/1.1 and HTTP/2, WebSocket upgrades) until
    /// [`shutdown`](SocketIo::shutdown): then it stops accepting, lets the
    /// requests in flight finish, and returns. Other paths get 404.
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
        // Connections watch this to finish gracefully; `closed` tells when
        // they all did.
        let (graceful, _) = watch::channel(());
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
        tokio::pin!(drained);
        let options = &self.shared.options;
        // HTTP/1 goes straight to hyper's HTTP/1 connection; the automatic
        // builder (which reads the first bytes to tell the version) serves
        // the clients that open with the HTTP/2 preface.
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout)
            .max_buf_size(options.max_header_size.max(8192))
            .max_headers(options.max_headers);
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout)
            .max_buf_size(options.max_header_size.max(8192))
            .max_headers(options.max_headers);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(options.max_header_size).unwrap_or(u32::MAX));
        let first_bytes_timeout = options.header_read_timeout;
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, path = %self.shared.config.path, "serving");
        }
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut drained => break,
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
            let _ = stream.set_nodelay(true);
            let service = ConnService(self.service().with_remote(remote));
            let mut watcher = graceful.subscribe();
            let http1 = http1.clone();
            let builder = builder.clone();
            tokio::spawn(async move {
                let h2 = tokio::select! {
                    h2 = tokio::time::timeout(first_bytes_timeout, opens_with_h2_preface(&stream)) => h2,
                    _ = watcher.changed() => return,
                };
                let Ok(h2) = h2 else {
                    tracing::trace!("no request in time");
                    return;
                };
                let io = TokioIo::new(stream);
                let ended = if h2 {
                    let conn = builder.serve_connection_with_upgrades(io, service);
                    until_done(conn, watcher, |c| c.graceful_shutdown())
                        .await
                        .map_err(|e| e.to_string())
                } else {
                    let conn = http1.serve_connection(io, service).with_upgrades();
                    until_done(conn, watcher, |c| c.graceful_shutdown())
                        .await
                        .map_err(|e| e.to_string())
                };
                if let Err(error) = ended {
                    tracing::trace!(%error, "http connection ended");
                }
            });
        }
        drop(listener);
        // Let the connections answer their last requests.
        let _ = graceful.send(());
        let _ = tokio::time::timeout(timeout, graceful.closed()).await;
        Ok(())
    }
}

/// The client's preface of HTTP/2 with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the first bytes the client sent are (the start of) the HTTP/2
/// preface. It peeks: the bytes stay for the connection to read.
async fn opens_with_h2_preface(stream: &TcpStream) -> bool {
    let mut buf = [0u8; H2_PREFACE.len()];
    match stream.peek(&mut buf).await {
        Ok(n) if n > 0 => H2_PREFACE.starts_with(&buf[..n]),
        _ => false,
    }
}

/// Runs `conn` to its end; once `watcher` changes, asks it to finish its
/// requests in flight and close.
async fn until_done<C, E>(
    conn: C,
    mut watcher: watch::Receiver<()>,
    graceful: impl FnOnce(Pin<&mut C>),
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    tokio::pin!(conn);
    tokio::select! {
        ended = conn.as_mut() => return ended,
        _ = watcher.changed() => {}
    }
    graceful(conn.as_mut());
    let ended = conn.await;
    drop(watcher);
    ended
}

/// The service of one connection, as hyper calls it. It calls ours at
/// once, where a tower `Oneshot` would hold the request until its first
/// poll: a polling request of a session lets go of hyper's request head
/// (slices of the read buffer) before hyper reads on.
#[derive(Clone)]
struct ConnService(SocketIoService<NotFound>);

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for ConnService {
    type Response = http::Response<SocketIoBody<Full<Bytes>>>;
    type Error = Infallible;
    type Future = ResponseFuture<Ready<Result<http::Response<Full<Bytes>>, Infallible>>>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        // Always ready: its inner service is `NotFound`.
        tower_service::Service::call(&mut self.0.clone(), req)
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
}
