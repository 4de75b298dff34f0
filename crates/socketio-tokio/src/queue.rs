//! The channel from the HTTP side and the application's handles to one
//! connection's task, with a bound in bytes.
//!
//! Packets on their way to a connection are counted twice: while they wait
//! in this channel, and while they wait in the core's send buffer (the task
//! publishes that figure after every wake-up). An emit that would take the
//! sum over `max_buffer_size` is refused at once: a volatile one is
//! dropped, any other closes the connection with "transport error", so a
//! client that stops reading costs a bounded amount of memory whatever the
//! rate of the emits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use socketio_proto::DisconnectReason;
use tokio::sync::mpsc;

use crate::driver::{Cmd, Outgoing};

/// The connection's load, shared by its senders and its task.
#[derive(Debug)]
struct Load {
    /// Bytes of packets in the channel.
    queued: AtomicUsize,
    /// Bytes in the core's send buffer, as last published by the task.
    buffered: AtomicUsize,
    /// The bound on `queued + buffered`.
    limit: usize,
    /// Set once an emit went over the bound (the close is on its way).
    overloaded: AtomicBool,
}

/// Where commands for one connection go.
#[derive(Debug, Clone)]
pub(crate) struct CmdTx {
    tx: mpsc::UnboundedSender<Cmd>,
    load: Arc<Load>,
}

/// The connection's end of the channel.
#[derive(Debug)]
pub(crate) struct CmdRx {
    rx: mpsc::UnboundedReceiver<Cmd>,
    load: Arc<Load>,
}

/// The connection's task is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

/// What became of an offered packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// On its way to the connection.
    Queued,
    /// A volatile packet, dropped: the connection is over its bound.
    Dropped,
    /// The connection went over its bound: it is being closed.
    Full,
    /// The connection is gone.
    Closed,
}

/// A channel to a connection whose outgoing packets may take `limit` bytes.
pub(crate) fn channel(limit: usize) -> (CmdTx, CmdRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let load = Arc::new(Load {
        queued: AtomicUsize::new(0),
        buffered: AtomicUsize::new(0),
        limit,
        overloaded: AtomicBool::new(false),
    });
    (
        CmdTx {
            tx,
            load: load.clone(),
        },
        CmdRx { rx, load },
    )
}

impl CmdTx {
    /// Sends a command that carries no packet of the application's (or
    /// one already checked with [`offer`](CmdTx::offer)).
    pub(crate) fn send(&self, cmd: Cmd) -> Result<(), Gone> {
        if let Cmd::Send { msg, .. } = &cmd {
            self.load
                .queued
                .fetch_add(msg.encoded.size(), Ordering::Relaxed);
        }
        self.tx.send(cmd).map_err(|_| Gone)
    }

    /// Sends a packet if the connection can hold it.
    pub(crate) fn offer(&self, msg: Arc<Outgoing>, volatile: bool, notify: bool) -> Offer {
        if self.tx.is_closed() {
            return Offer::Closed;
        }
        let size = msg.encoded.size();
        let load =
            self.load.queued.load(Ordering::Relaxed) + self.load.buffered.load(Ordering::Relaxed);
        if load.saturating_add(size) > self.load.limit {
            if volatile {
                return Offer::Dropped;
            }
            if !self.load.overloaded.swap(true, Ordering::AcqRel) {
                tracing::debug!(
                    load,
                    limit = self.load.limit,
                    "send buffer over its bound: closing"
                );
                let _ = self.tx.send(Cmd::Close {
                    reason: DisconnectReason::TransportError,
                });
            }
            return Offer::Full;
        }
        match self.send(Cmd::Send {
            msg,
            volatile,
            notify,
        }) {
            Ok(()) => Offer::Queued,
            Err(_) => Offer::Closed,
        }
    }
}

impl CmdRx {
    /// The next command.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Cmd>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(Cmd::Send { msg, .. })) = &polled {
            let size = msg.encoded.size();
            // Never below zero, whatever the interleaving with `offer`.
            let _ = self
                .load
                .queued
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                    Some(q.saturating_sub(size))
                });
        }
        polled
    }

    /// Publishes how many bytes the core's send buffer holds.
    pub(crate) fn publish(&self, buffered: usize) {
        self.load.buffered.store(buffered, Ordering::Relaxed);
    }
}
