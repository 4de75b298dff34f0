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
//!
//! The handlers of a connection run on its own task: what they send to
//! that connection while the task polls them goes to a local queue that the
//! task takes in the same wake-up, with no channel and no wake-up of its
//! own. A command goes there only when the channel is empty, and the local
//! queue is taken first, so the order of the commands is kept.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll};

use futures_channel::mpsc;
use futures_util::StreamExt;
use std::time::Duration;

use socketio_proto::{
    Data, DisconnectReason, Encoded, Packet, PacketKind, Payload, Request, RequestId, Response, Str,
};
use tokio::sync::oneshot;

use crate::error::AckError;
use crate::ws::WsConn;

/// An event encoded once, with the packet it came from (for the outgoing
/// listeners).
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) packet: Packet,
    pub(crate) encoded: Encoded,
}

/// What a connection's task is asked to do.
pub(crate) enum Cmd {
    /// A polling request for this session; answer on `reply`.
    Http {
        id: RequestId,
        req: Box<Request>,
        reply: oneshot::Sender<Response>,
    },
    /// A WebSocket is up: the session's own (`req` None) or an upgrade's.
    WsOpen {
        id: RequestId,
        req: Option<Box<Request>>,
        ws: Box<WsConn>,
    },
    /// The WebSocket upgrade of request `id` failed.
    WsFailed { id: RequestId },
    /// Send an encoded packet to the socket on its namespace.
    Send {
        msg: Arc<Outgoing>,
        volatile: bool,
        /// Call the socket's outgoing listeners (a broadcast).
        notify: bool,
    },
    /// Emit an event and report its acknowledgement.
    EmitWithAck {
        packet: Box<Packet>,
        timeout: Duration,
        reply: oneshot::Sender<Result<Payload, AckError>>,
    },
    /// Acknowledge the client's event `id`.
    Ack {
        nsp: Str,
        id: u64,
        data: Box<Payload>,
    },
    /// Make the socket on `nsp` leave.
    Disconnect { nsp: Str },
    /// Close the whole connection.
    Close { reason: DisconnectReason },
    /// Send a bare Engine.IO message.
    EngineSend(Data),
}

/// Where the acknowledgement of an emit goes.
pub(crate) type AckReply = oneshot::Sender<Result<Payload, AckError>>;

/// A connection's task, as a request for its session may drive it.
pub(crate) trait Step: Send + Sync {
    /// Hands `cmd` to the connection and takes the task's step on the
    /// caller's task, unless the task is busy (then `cmd` comes back).
    fn try_run(&self, cmd: Cmd) -> Result<(), Cmd>;
}

/// The connection's load, shared by its senders and its task.
#[derive(Debug)]
struct Load {
    /// Which connection: the key of its local queue.
    id: u64,
    /// Commands in the channel.
    in_channel: AtomicUsize,
    /// Bytes of packets in the channel.
    queued: AtomicUsize,
    /// Bytes in the core's send buffer, as last published by the task.
    buffered: AtomicUsize,
    /// The bound on `queued + buffered`.
    limit: usize,
    /// Set once an emit went over the bound (the close is on its way).
    overloaded: AtomicBool,
    /// Set once the connection is closed (its task may linger a while).
    closed: AtomicBool,
    /// The task's state, for a request that runs the task's step itself.
    cell: OnceLock<Weak<dyn Step>>,
}

/// Where commands for one connection go.
#[derive(Debug, Clone)]
pub(crate) struct CmdTx {
    tx: mpsc::UnboundedSender<Cmd>,
    load: Arc<Load>,
}

/// The connection's end of the channel.
pub(crate) struct CmdRx {
    rx: mpsc::UnboundedReceiver<Cmd>,
    load: Arc<Load>,
    /// The local queue's storage while the task is not polling.
    local: VecDeque<Cmd>,
}

impl std::fmt::Debug for CmdRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CmdRx")
            .field("load", &self.load)
            .field("local", &self.local.len())
            .finish_non_exhaustive()
    }
}

/// The local queue of the connection whose task is polling on this thread.
struct Local {
    id: u64,
    cmds: VecDeque<Cmd>,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Puts back the local queue of the task polled before, even on a panic.
pub(crate) struct Entered {
    prev: Option<Option<Local>>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some(prev) = self.prev.take() {
            let _ = LOCAL.try_with(|l| l.replace(prev));
        }
    }
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
    // Unlike tokio's, this channel allocates per command, not a block of
    // 32 up front: an idle connection pays for no slots.
    let (tx, rx) = mpsc::unbounded();
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let load = Arc::new(Load {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        in_channel: AtomicUsize::new(0),
        queued: AtomicUsize::new(0),
        buffered: AtomicUsize::new(0),
        limit,
        overloaded: AtomicBool::new(false),
        closed: AtomicBool::new(false),
        cell: OnceLock::new(),
    });
    (
        CmdTx {
            tx,
            load: load.clone(),
        },
        CmdRx {
            rx,
            load,
            local: VecDeque::new(),
        },
    )
}

impl CmdTx {
    /// The connection's task state, while the task lives.
    pub(crate) fn driver(&self) -> Option<Arc<dyn Step>> {
        self.load.cell.get().and_then(Weak::upgrade)
    }

    /// Tells the senders where the task's state is (once).
    pub(crate) fn set_driver(&self, cell: Weak<dyn Step>) {
        let _ = self.load.cell.set(cell);
    }

    /// Sends a command that carries no packet of the application's (or
    /// one already checked with [`offer`](CmdTx::offer)).
    pub(crate) fn send(&self, cmd: Cmd) -> Result<(), Gone> {
        if let Some(size) = queued_size(&cmd) {
            self.load.queued.fetch_add(size, Ordering::Relaxed);
        }
        let mut cmd = Some(cmd);
        if self.load.in_channel.load(Ordering::Acquire) == 0 {
            let _ = LOCAL.try_with(|l| {
                if let Ok(mut l) = l.try_borrow_mut()
                    && let Some(local) = l.as_mut()
                    && local.id == self.load.id
                    && let Some(cmd) = cmd.take()
                {
                    local.cmds.push_back(cmd);
                }
            });
        }
        let Some(cmd) = cmd else {
            return Ok(());
        };
        self.load.in_channel.fetch_add(1, Ordering::AcqRel);
        self.tx.unbounded_send(cmd).map_err(|_| {
            self.load.in_channel.fetch_sub(1, Ordering::AcqRel);
            Gone
        })
    }

    /// Why nothing more can be sent, if so: the connection went over its
    /// bound, or it is closed.
    fn gone(&self) -> Option<Offer> {
        if self.load.overloaded.load(Ordering::Acquire) {
            Some(Offer::Full)
        } else if self.load.closed.load(Ordering::Acquire) || self.tx.is_closed() {
            Some(Offer::Closed)
        } else {
            None
        }
    }

    /// Whether `size` more bytes would take the connection over its bound;
    /// if so (and not `volatile`), the connection is told to close, once.
    fn over(&self, size: usize, volatile: bool) -> bool {
        let load =
            self.load.queued.load(Ordering::Relaxed) + self.load.buffered.load(Ordering::Relaxed);
        if load.saturating_add(size) <= self.load.limit {
            return false;
        }
        if !volatile && !self.load.overloaded.swap(true, Ordering::AcqRel) {
            tracing::debug!(
                load,
                limit = self.load.limit,
                "send buffer over its bound: closing"
            );
            let _ = self.send(Cmd::Close {
                reason: DisconnectReason::TransportError,
            });
        }
        true
    }

    /// Sends an event awaiting an acknowledgement if the connection can
    /// hold it; `reply` hears of the failure otherwise.
    pub(crate) fn offer_with_ack(&self, cmd: Cmd) -> Offer {
        if let Some(gone) = self.gone() {
            return gone;
        }
        if let Some(size) = queued_size(&cmd)
            && self.over(size, false)
        {
            return Offer::Full;
        }
        match self.send(cmd) {
            Ok(()) => Offer::Queued,
            Err(_) => Offer::Closed,
        }
    }

    /// Sends a bare Engine.IO message if the connection can hold it.
    pub(crate) fn offer_engine(&self, data: Data) -> Offer {
        if let Some(gone) = self.gone() {
            return gone;
        }
        if self.over(data_size(&data), false) {
            return Offer::Full;
        }
        match self.send(Cmd::EngineSend(data)) {
            Ok(()) => Offer::Queued,
            Err(_) => Offer::Closed,
        }
    }

    /// Sends a packet if the connection can hold it.
    pub(crate) fn offer(&self, msg: Arc<Outgoing>, volatile: bool, notify: bool) -> Offer {
        match self.gone() {
            // A volatile packet is dropped, never an error.
            Some(Offer::Full) if volatile => return Offer::Dropped,
            Some(gone) => return gone,
            None => {}
        }
        if self.over(msg.encoded.size(), volatile) {
            return if volatile {
                Offer::Dropped
            } else {
                Offer::Full
            };
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
        let local = LOCAL.try_with(|l| {
            l.try_borrow_mut().ok().and_then(|mut l| match l.as_mut() {
                Some(local) if local.id == self.load.id => local.cmds.pop_front(),
                _ => None,
            })
        });
        let polled = match local {
            Ok(Some(cmd)) => Poll::Ready(Some(cmd)),
            _ => {
                let polled = self.rx.poll_next_unpin(cx);
                if let Poll::Ready(Some(_)) = &polled {
                    self.load.in_channel.fetch_sub(1, Ordering::AcqRel);
                }
                polled
            }
        };
        if let Poll::Ready(Some(cmd)) = &polled
            && let Some(size) = queued_size(cmd)
        {
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

    /// Whether this thread's local queue holds commands for this connection.
    pub(crate) fn has_local(&self) -> bool {
        LOCAL
            .try_with(|l| {
                l.try_borrow().is_ok_and(|l| {
                    l.as_ref()
                        .is_some_and(|local| local.id == self.load.id && !local.cmds.is_empty())
                })
            })
            .unwrap_or(false)
    }

    /// Makes this thread's sends to this connection go to its local queue
    /// until [`leave`](CmdRx::leave).
    pub(crate) fn enter(&mut self) -> Entered {
        let local = Local {
            id: self.load.id,
            cmds: std::mem::take(&mut self.local),
        };
        let prev = LOCAL.try_with(|l| l.replace(Some(local))).ok();
        Entered { prev }
    }

    /// Ends [`enter`](CmdRx::enter); what is left in the local queue is
    /// taken at the next wake-up, which it asks for.
    pub(crate) fn leave(&mut self, mut entered: Entered, cx: &mut Context<'_>) {
        if let Some(prev) = entered.prev.take()
            && let Ok(Some(local)) = LOCAL.try_with(|l| l.replace(prev))
            && local.id == self.load.id
        {
            self.local = local.cmds;
            if !self.local.is_empty() {
                cx.waker().wake_by_ref();
            }
        }
    }

    /// Publishes how many bytes the core's send buffer holds.
    pub(crate) fn publish(&self, buffered: usize) {
        self.load.buffered.store(buffered, Ordering::Relaxed);
    }

    /// Notes that the core found the connection over its bound.
    pub(crate) fn overloaded(&self) {
        self.load.overloaded.store(true, Ordering::Release);
    }

    /// Notes that the connection is closed: sends fail from now on.
    pub(crate) fn closed(&self) {
        self.load.closed.store(true, Ordering::Release);
    }
}

/// The bytes a command queues for the client, if any.
fn queued_size(cmd: &Cmd) -> Option<usize> {
    match cmd {
        Cmd::Send { msg, .. } => Some(msg.encoded.size()),
        Cmd::EngineSend(data) => Some(data_size(data)),
        Cmd::EmitWithAck { packet, .. } => Some(packet_size(packet)),
        _ => None,
    }
}

/// About the encoded size of a packet not encoded yet: its data, its event
/// name and namespace.
fn packet_size(packet: &Packet) -> usize {
    let data = match &packet.kind {
        PacketKind::Event { name, data, .. } => {
            name.len()
                + data.json().len()
                + data.attachments().iter().map(|a| a.len()).sum::<usize>()
        }
        _ => 0,
    };
    packet.nsp.len() + data + 8
}

/// The size of a message's data.
fn data_size(data: &Data) -> usize {
    match data {
        Data::Text(s) => s.len(),
        Data::Binary(b) => b.len(),
    }
}

/// Messages received for a bare Engine.IO application, bounded in bytes:
/// the connection closes ("transport error") when the application leaves
/// more than `max_buffer_size` unread.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    unread: Arc<AtomicUsize>,
    limit: usize,
}

impl Inbox {
    pub(crate) fn new(limit: usize) -> Inbox {
        Inbox {
            unread: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// Counts a message in; false when it would go over the bound.
    pub(crate) fn admit(&self, data: &Data) -> bool {
        let size = data_size(data);
        let unread = self.unread.load(Ordering::Relaxed);
        if unread.saturating_add(size) > self.limit {
            return false;
        }
        self.unread.fetch_add(size, Ordering::Relaxed);
        true
    }

    /// Counts a message out, as the application reads it.
    pub(crate) fn read(&self, data: &Data) {
        let size = data_size(data);
        let _ = self
            .unread
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(size))
            });
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll, Waker};

    use socketio_proto::DisconnectReason;

    use super::{Cmd, channel};

    fn reason(cmd: Poll<Option<Cmd>>) -> Option<DisconnectReason> {
        match cmd {
            Poll::Ready(Some(Cmd::Close { reason })) => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn sends_from_the_polling_task_skip_the_channel_in_order() {
        let (tx, mut rx) = channel(1 << 20);
        let (other_tx, _other_rx) = channel(1 << 20);
        let mut cx = Context::from_waker(Waker::noop());
        let entered = rx.enter();
        let close = |reason| Cmd::Close { reason };
        assert_eq!(tx.send(close(DisconnectReason::PingTimeout)), Ok(()));
        assert_eq!(rx.load.in_channel.load(super::Ordering::Relaxed), 0);
        // Another connection's sends still take the channel.
        assert_eq!(other_tx.send(close(DisconnectReason::ParseError)), Ok(()));
        assert_eq!(other_tx.load.in_channel.load(super::Ordering::Relaxed), 1);
        rx.leave(entered, &mut cx);
        // Sent from elsewhere: the channel, behind the local queue.
        assert_eq!(tx.send(close(DisconnectReason::ForcedClose)), Ok(()));
        let entered = rx.enter();
        // The channel is not empty: this one goes behind it.
        assert_eq!(tx.send(close(DisconnectReason::TransportClose)), Ok(()));
        assert_eq!(
            reason(rx.poll_recv(&mut cx)),
            Some(DisconnectReason::PingTimeout)
        );
        assert_eq!(
            reason(rx.poll_recv(&mut cx)),
            Some(DisconnectReason::ForcedClose)
        );
        assert_eq!(
            reason(rx.poll_recv(&mut cx)),
            Some(DisconnectReason::TransportClose)
        );
        assert!(rx.poll_recv(&mut cx).is_pending());
        rx.leave(entered, &mut cx);
    }
}
