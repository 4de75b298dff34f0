//! The cluster boundary: the [`Adapter`] trait through which several
//! servers share broadcasts, rooms and socket queries, and the types that
//! cross it.
//!
//! The core queues a [`ClusterOp`] for every operation that is not local
//! (a broadcast, sockets joining or leaving rooms, a disconnection); the
//! binding hands each one to the attached [`Adapter`] right after the
//! operation, in order. What the adapter receives from the other nodes goes
//! back through [`LocalNode::apply`](crate::LocalNode::apply), and is
//! delivered exactly as a local broadcast or disconnection is. Queries that
//! need the other nodes' answers are asked of the adapter, and the adapter
//! answers the other nodes' queries with [`LocalNode`](crate::LocalNode).
//!
//! This module depends only on the crate's foundations (errors, the
//! argument convention): adapters are written against it and the
//! application API.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use socketio_proto::socketio_packet::Packet;
use socketio_proto::{BroadcastOptions, ClusterOp, ClusterSession, Payload, Str};

use crate::args::{RoomParam, event_packet};
pub use crate::error::AdapterError;
use crate::error::EmitError;

/// The transport between the nodes of a cluster (Redis pub/sub, ...).
///
/// Every method is called without the server's lock held, except
/// [`publish`](Adapter::publish), which must not block: queue the operation
/// (in a bounded queue) and send it from a task of your own.
pub trait Adapter: Send + Sync + 'static {
    /// Namespace `nsp` is served here: take part in the cluster's requests
    /// about it. Called once per namespace, for those declared before and
    /// after the adapter was attached.
    fn add_namespace(&self, nsp: &str);

    /// Sends an operation to the other nodes. Must not block.
    fn publish(&self, op: ClusterOp);

    /// The sockets of `nsp` that `opts` selects on the other nodes.
    fn fetch_sockets(
        &self,
        nsp: Str,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<RemoteSocket>, AdapterError>>;

    /// The rooms of `nsp` that have members on the other nodes.
    fn all_rooms(&self, nsp: Str) -> BoxFuture<'static, Result<Vec<Str>, AdapterError>>;

    /// How many nodes (this one included) serve `nsp`.
    fn server_count(&self, nsp: Str) -> BoxFuture<'static, Result<usize, AdapterError>>;

    /// Broadcasts `packet` (an event) to the sockets `opts` selects on the
    /// other nodes and collects their acknowledgements (the first argument
    /// of each) for at most `timeout`: complete once every node told how
    /// many clients it sent to and that many answered.
    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>>;

    /// Sends an event to the other nodes themselves: `data` is the event
    /// name and its arguments. With `with_ack`, waits for one answer per
    /// other node and returns them; without, returns at once, empty.
    fn server_side_emit(
        &self,
        nsp: Str,
        data: Vec<serde_json::Value>,
        with_ack: bool,
    ) -> BoxFuture<'static, Result<Vec<serde_json::Value>, AdapterError>>;

    /// What the adapter counts, for metrics: its publish queue, its
    /// reconnections, the messages it dropped; `None` (the default) for an
    /// adapter that counts none of it.
    fn stats(&self) -> Option<AdapterStats> {
        None
    }

    /// Whether this adapter owns connection state recovery, as the
    /// reference's Redis Streams adapter does: it puts the cluster's
    /// broadcasts in one order that every node reads and delivers each
    /// (this node's own too) through
    /// [`LocalNode::apply_at`](crate::LocalNode::apply_at) with its offset
    /// in that order, keeps the sessions that
    /// [`ClusterOp::PersistSession`] hands it where every node finds them,
    /// and gives them back with [`restore_session`](Adapter::restore_session).
    /// Read once, when the adapter is attached; false by default.
    fn owns_recovery(&self) -> bool {
        false
    }

    /// The session `pid` of namespace `nsp`, kept by the cluster, with the
    /// broadcasts after `offset`, for a client that asks to recover it
    /// (only when the adapter [owns recovery](Adapter::owns_recovery)).
    /// `None` when there is no such session, or the offset is unknown: the
    /// client gets a new session. A session is given once.
    ///
    /// The broadcasts listed must be every one after `offset` up to the last
    /// one this node has delivered, and the adapter must deliver no other
    /// until [`RestoredSession::hold`] is dropped (the binding drops it
    /// once the socket is back): so the client gets each exactly once.
    fn restore_session(
        &self,
        nsp: Str,
        pid: Str,
        offset: Str,
    ) -> BoxFuture<'static, Result<Option<RestoredSession>, AdapterError>> {
        let _ = (nsp, pid, offset);
        Box::pin(async { Ok(None) })
    }
}

/// A session the cluster gave back ([`Adapter::restore_session`]).
pub struct RestoredSession {
    /// The session and what it may have missed.
    pub session: ClusterSession,
    /// Dropped once the socket is back on this node, with its missed
    /// packets: until then the adapter delivers nothing more.
    pub hold: Option<Box<dyn std::any::Any + Send>>,
}

impl fmt::Debug for RestoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestoredSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// The handler of the server-side emits of the other nodes.
pub(crate) type ServerSideHandler = Arc<dyn Fn(ServerSideEvent) + Send + Sync>;

/// An event another node of the cluster sent to the servers themselves
/// (the reference's `serverSideEmit`).
#[derive(Debug)]
pub struct ServerSideEvent {
    /// The namespace it was sent on.
    pub nsp: Str,
    /// The event name.
    pub event: String,
    /// Its arguments.
    pub args: Vec<serde_json::Value>,
    /// The acknowledgement the sender awaits, if any (one answer per node).
    pub ack: Option<ServerAck>,
}

/// The answer to a server-side emit that awaits one. Only the first
/// [`send`](ServerAck::send) of its clones is delivered.
#[derive(Clone)]
pub struct ServerAck(Arc<std::sync::Mutex<Option<AckFn>>>);

type AckFn = Box<dyn FnOnce(serde_json::Value) + Send>;

impl fmt::Debug for ServerAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAck").finish_non_exhaustive()
    }
}

impl ServerAck {
    /// An acknowledgement that calls `f` with the answer (for adapters).
    pub fn new(f: impl FnOnce(serde_json::Value) + Send + 'static) -> Self {
        ServerAck(Arc::new(std::sync::Mutex::new(Some(Box::new(f)))))
    }

    /// Answers with `value` (one value, as the reference's callback takes).
    ///
    /// # Errors
    ///
    /// [`serde_json::Error`] when `value` cannot be serialized.
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), serde_json::Error> {
        let value = serde_json::to_value(value)?;
        let f = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(f) = f {
            f(value);
        }
        Ok(())
    }
}

/// What an adapter counts ([`Adapter::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdapterStats {
    /// Messages waiting to be published to the other nodes now.
    pub queue_depth: u64,
    /// The most messages the publish queue holds.
    pub queue_capacity: u64,
    /// Times the adapter reconnected to its backend.
    pub reconnects: u64,
    /// Messages for the other nodes dropped (the backend was away, or the
    /// queue full).
    pub dropped: u64,
}

/// A socket as the other nodes of a cluster describe it: the shape of the
/// reference's `RemoteSocket` (`fetchSockets()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteSocket {
    /// The socket id.
    pub id: String,
    /// The handshake, as the reference serializes it (`headers`, `time`,
    /// `address`, `xdomain`, `secure`, `issued`, `url`, `query`, `auth`).
    pub handshake: serde_json::Value,
    /// The rooms the socket is in (its own id among them).
    pub rooms: Vec<String>,
    /// The application's data about the socket (`socket.data`).
    #[serde(default)]
    pub data: serde_json::Value,
    /// Where its actions go, when a server fetched it.
    #[serde(skip)]
    pub(crate) actions: Actions,
}

/// What a fetched socket is made to do, on whichever node it is.
pub(crate) enum SocketAction {
    /// Emit this event (its namespace set by the server).
    Emit(Packet),
    /// Join these rooms.
    Join(Vec<Str>),
    /// Leave these rooms.
    Leave(Vec<Str>),
    /// Leave the namespace, or (`close`) close the connection.
    Disconnect { close: bool },
}

/// The server that fetched a socket, to act on it: called with the
/// socket's id and the action.
pub(crate) type ActionFn = Arc<dyn Fn(&str, SocketAction) + Send + Sync>;

/// Where a fetched socket's actions go; nothing for a description that
/// no server fetched.
#[derive(Clone, Default)]
pub(crate) struct Actions(pub(crate) Option<ActionFn>);

impl fmt::Debug for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Actions" } else { "None" })
    }
}

impl PartialEq for Actions {
    /// Two descriptions of a socket are equal whoever fetched them.
    fn eq(&self, _: &Actions) -> bool {
        true
    }
}

impl RemoteSocket {
    /// A description of a socket, as an adapter reads it from another
    /// node's answer.
    pub fn new(
        id: String,
        handshake: serde_json::Value,
        rooms: Vec<String>,
        data: serde_json::Value,
    ) -> RemoteSocket {
        RemoteSocket {
            id,
            handshake,
            rooms,
            data,
            actions: Actions::default(),
        }
    }

    /// The application's data (`socket.data`), as `T`; `None` when it does
    /// not match.
    pub fn data<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_value(self.data.clone()).ok()
    }

    fn act(&self, action: SocketAction) -> Result<(), EmitError> {
        match &self.actions.0 {
            Some(act) => {
                act(&self.id, action);
                Ok(())
            }
            None => Err(EmitError::Disconnected),
        }
    }

    /// Emits `event` to the socket, on whichever node of the cluster it is
    /// (the reference's `remoteSocket.emit`); `args` as
    /// [`Socket::emit`](crate::Socket::emit) takes them.
    ///
    /// # Errors
    ///
    /// [`EmitError::Encode`] when `args` cannot be serialized;
    /// [`EmitError::Disconnected`] when no server fetched this socket.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        let packet = event_packet(Str::from_static("/"), event, args)?;
        self.act(SocketAction::Emit(packet))
    }

    /// Makes the socket join `rooms`, on whichever node it is.
    ///
    /// # Errors
    ///
    /// [`EmitError::Disconnected`] when no server fetched this socket.
    pub fn join(&self, rooms: impl RoomParam) -> Result<(), EmitError> {
        self.act(SocketAction::Join(rooms.into_rooms()))
    }

    /// Makes the socket leave `rooms`, on whichever node it is.
    ///
    /// # Errors
    ///
    /// [`EmitError::Disconnected`] when no server fetched this socket.
    pub fn leave(&self, rooms: impl RoomParam) -> Result<(), EmitError> {
        self.act(SocketAction::Leave(rooms.into_rooms()))
    }

    /// Disconnects the socket from its namespace ("server namespace
    /// disconnect"), or with `close` closes its whole connection.
    ///
    /// # Errors
    ///
    /// [`EmitError::Disconnected`] when no server fetched this socket.
    pub fn disconnect(&self, close: bool) -> Result<(), EmitError> {
        self.act(SocketAction::Disconnect { close })
    }
}
