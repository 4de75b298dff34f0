//! A TCP proxy between a client and a server that a test can cut: every
//! connection through it is dropped at once, both sides, as a network
//! that fails under both ends.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// A running proxy; it stops (and drops every connection) when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    /// New connections are dropped at once until then.
    down_until: Arc<Mutex<Option<Instant>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a free port of 127.0.0.1 to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let down_until: Arc<Mutex<Option<Instant>>> = Arc::default();
        let list = conns.clone();
        let down = down_until.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let is_down = down.lock().unwrap().is_some_and(|t| Instant::now() < t);
                if is_down {
                    drop(client);
                    continue;
                }
                let Ok(mut server) = TcpStream::connect(target).await else {
                    continue;
                };
                let task = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                let mut list = list.lock().unwrap();
                list.retain(|h| !h.is_finished());
                list.push(task.abort_handle());
            }
        });
        Proxy {
            addr,
            conns,
            down_until,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every connection through the proxy now, and every new one for
    /// `down`: a network that fails for that long. Returns how many
    /// connections there were.
    pub fn blackout(&self, down: Duration) -> usize {
        *self.down_until.lock().unwrap() = Some(Instant::now() + down);
        self.cut()
    }

    /// Drops every connection through the proxy now; new ones are served.
    /// Returns how many there were.
    pub fn cut(&self) -> usize {
        let conns = std::mem::take(&mut *self.conns.lock().unwrap());
        let live = conns.iter().filter(|h| !h.is_finished()).count();
        for conn in conns {
            conn.abort();
        }
        live
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
