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
//! This module depends on nothing else of the crate: adapters are written
//! against it and the application API.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use socketio_proto::socketio_packet::Packet;
use socketio_proto::{BroadcastOptions, ClusterOp, Payload, Str};

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

/// A cluster query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// Not every node answered in time.
    #[error("timeout reached while waiting for {0} response")]
    Timeout(&'static str),
    /// The transport between the nodes failed.
    #[error("cluster transport: {0}")]
    Transport(String),
    /// Data could not be serialized or deserialized.
    #[error("cluster data: {0}")]
    Encode(String),
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
}
