//! Cluster adapters: the hook through which several servers share
//! broadcasts, rooms and socket queries.
//!
//! The core queues a [`ClusterOp`] for every operation that is not local
//! (a broadcast, sockets joining or leaving rooms, a disconnection); the
//! binding hands each one to the attached [`Adapter`] right after the
//! operation, in order. What the adapter receives from the other nodes goes
//! back through [`LocalNode::apply`], and is delivered exactly as a local
//! broadcast or disconnection is. Queries that need the other nodes'
//! answers ([`BroadcastOperator::fetch_sockets`], [`SocketIo::all_rooms`],
//! [`SocketIo::server_count`]) are asked of the adapter, and the adapter
//! answers the other nodes' queries with [`LocalNode`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::{BoxStream, FuturesUnordered};
use serde::de::DeserializeOwned;
use socketio_proto::socketio_packet::Packet;
use socketio_proto::{
    BroadcastOptions, ClusterAction, ClusterOp, DisconnectReason, PacketKind, Payload, Str,
};
use tokio::sync::oneshot;

use crate::driver::{Cmd, Outgoing};
use crate::error::AckError;
use crate::io::{Shared, SocketIo, State};
use crate::operators::BroadcastOperator;
use crate::socket::{Socket, SocketInner};

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

/// Arguments as a list: a sequence gives one argument per element, `()`
/// none, anything else one.
fn arg_list<T: Serialize + ?Sized>(args: &T) -> Result<Vec<serde_json::Value>, serde_json::Error> {
    Ok(match serde_json::to_value(args)? {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Null => Vec::new(),
        other => vec![other],
    })
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

/// This node, as an adapter sees it: where it delivers what the other nodes
/// send, and what it answers their queries with.
///
/// It holds the server weakly: once the server is dropped, every method does
/// nothing and answers empty.
#[derive(Clone)]
pub struct LocalNode {
    shared: Weak<Shared>,
}

impl fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalNode").finish_non_exhaustive()
    }
}

impl LocalNode {
    /// Whether the server is still there.
    pub fn is_alive(&self) -> bool {
        self.shared.strong_count() > 0
    }

    /// Carries out an operation another node published: delivers a
    /// broadcast to the local sockets it selects, changes their rooms, or
    /// disconnects them. Nothing is published again.
    pub fn apply(&self, op: ClusterOp) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let (packet, nsp) = match &op {
            ClusterOp::Broadcast { packet, .. } => (Some(packet.clone()), packet.nsp.clone()),
            ClusterOp::AddSockets { nsp, .. }
            | ClusterOp::DelSockets { nsp, .. }
            | ClusterOp::DisconnectSockets { nsp, .. } => (None, nsp.clone()),
        };
        let mut state = shared.lock();
        let action = state.endpoint.handle_cluster_op(op);
        match action {
            ClusterAction::Broadcast(plan) => {
                let Some(packet) = packet else { return };
                let msg = Arc::new(Outgoing {
                    packet,
                    encoded: plan.encoded,
                });
                let targets: Vec<_> = plan
                    .targets
                    .iter()
                    .filter_map(|h| state.conns.get(h).cloned())
                    .collect();
                drop(state);
                for tx in targets {
                    // Bounded as a local broadcast: a slow recipient is
                    // closed, the others still get the packet.
                    let _ = tx.offer(msg.clone(), plan.volatile, true);
                }
            }
            ClusterAction::Disconnect { targets, close } => {
                let targets: Vec<_> = targets
                    .iter()
                    .filter_map(|(_, h)| state.conns.get(h).cloned())
                    .collect();
                drop(state);
                for tx in targets {
                    let _ = tx.send(if close {
                        Cmd::Close {
                            reason: DisconnectReason::ForcedServerClose,
                        }
                    } else {
                        Cmd::Disconnect { nsp: nsp.clone() }
                    });
                }
            }
            ClusterAction::Done => {}
        }
    }

    /// The local sockets of `nsp` that `opts` selects, described for the
    /// other nodes.
    pub fn fetch_sockets(&self, nsp: &str, opts: &BroadcastOptions) -> Vec<RemoteSocket> {
        self.selected(nsp, opts, |state, sid| {
            let socket = state.sockets.get(&sid)?;
            Some(describe(state, socket))
        })
    }

    /// The ids of the local sockets of `nsp` that `opts` selects.
    pub fn socket_ids(&self, nsp: &str, opts: &BroadcastOptions) -> Vec<Str> {
        self.selected(nsp, opts, |_, sid| Some(sid))
    }

    /// What `f` makes of each local socket of `nsp` that `opts` selects.
    fn selected<T>(
        &self,
        nsp: &str,
        opts: &BroadcastOptions,
        mut f: impl FnMut(&State, Str) -> Option<T>,
    ) -> Vec<T> {
        let Some(shared) = self.shared.upgrade() else {
            return Vec::new();
        };
        let state = shared.lock();
        let selected = state.endpoint.sockets(nsp, opts);
        selected
            .into_iter()
            .filter_map(|(sid, _)| f(&state, sid))
            .collect()
    }

    /// The rooms of `nsp` that have local members.
    pub fn rooms(&self, nsp: &str) -> Vec<Str> {
        match self.shared.upgrade() {
            Some(shared) => shared.lock().endpoint.rooms(nsp),
            None => Vec::new(),
        }
    }

    /// Hands a server-side emit of another node (`data`: the event name and
    /// its arguments) to the handlers registered with
    /// [`SocketIo::on_server_side_emit`]; ignored when `data` has no name.
    pub fn server_side_emit(
        &self,
        nsp: &str,
        data: Vec<serde_json::Value>,
        ack: Option<ServerAck>,
    ) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut data = data.into_iter();
        let Some(serde_json::Value::String(event)) = data.next() else {
            tracing::debug!(%nsp, "ignoring a server-side emit without an event name");
            return;
        };
        let args: Vec<serde_json::Value> = data.collect();
        let handlers: Vec<ServerSideHandler> = shared
            .server_side
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for handler in handlers {
            handler(ServerSideEvent {
                nsp: Str::from(nsp),
                event: event.clone(),
                args: args.clone(),
                ack: ack.clone(),
            });
        }
    }

    /// Sends `packet` (an event) to the local sockets `opts` selects,
    /// awaiting each one's acknowledgement for `timeout`: how many sockets
    /// it went to, and their acknowledgements as they come (the other
    /// nodes' `emitWithAck` across the cluster).
    pub fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> (usize, BoxStream<'static, Result<Payload, AckError>>) {
        let pending = FuturesUnordered::new();
        let Some(shared) = self.shared.upgrade() else {
            return (0, pending.boxed());
        };
        let targets: Vec<Socket> = {
            let state = shared.lock();
            state
                .endpoint
                .sockets(&packet.nsp, opts)
                .into_iter()
                .filter_map(|(sid, _)| state.sockets.get(&sid).cloned().map(Socket))
                .collect()
        };
        for socket in targets {
            if let PacketKind::Event { name, data, .. } = &packet.kind {
                socket.notify_outgoing(name, data);
            }
            let (reply, rx) = oneshot::channel();
            let cmd = Cmd::EmitWithAck {
                packet: Box::new(packet.clone()),
                timeout,
                reply,
            };
            // Bounded as a local broadcast with acks: a socket over its
            // bound is being closed, with no ack to wait for.
            if socket.connected() && socket.0.tx.offer_with_ack(cmd) == crate::queue::Offer::Queued
            {
                pending.push(async move { rx.await.unwrap_or(Err(AckError::Disconnected)) });
            }
        }
        (pending.len(), pending.boxed())
    }

    /// Puts local socket `sid` of `nsp` in `room` (or takes it out); false
    /// when there is no such socket here.
    pub fn join_or_leave(&self, nsp: &str, sid: &str, room: &str, join: bool) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let mut state = shared.lock();
        let sid = Str::from(sid);
        if !state.sockets.contains_key(&sid) {
            return false;
        }
        if join {
            state.endpoint.join(nsp, &sid, Str::from(room));
        } else {
            state.endpoint.leave(nsp, &sid, room);
        }
        true
    }
}

/// Describes a local socket the way the reference's `fetchSockets` answers.
fn describe(state: &State, socket: &SocketInner) -> RemoteSocket {
    let hs = &socket.handshake;
    let mut headers = serde_json::Map::new();
    for (name, value) in hs.headers() {
        if let Ok(v) = value.to_str() {
            headers.insert(name.as_str().to_owned(), v.into());
        }
    }
    let mut query = BTreeMap::new();
    for pair in hs.query().split('&').filter(|p| !p.is_empty()) {
        let key = pair.split('=').next().unwrap_or_default();
        if let Some(value) = hs.query_param(key) {
            query.insert(key.to_owned(), value);
        }
    }
    let auth = hs
        .auth_payload()
        .and_then(|p| p.deserialize::<serde_json::Value>().ok())
        .unwrap_or_else(|| serde_json::json!({}));
    let secure = hs
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes() == b"https");
    let handshake = serde_json::json!({
        "headers": headers,
        "time": js_date(hs.issued()),
        "address": hs.remote_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
        "xdomain": hs.headers().contains_key("origin"),
        "secure": secure,
        "issued": hs.issued(),
        "url": hs.uri().to_string(),
        "query": query,
        "auth": auth,
    });
    RemoteSocket {
        id: socket.id.to_string(),
        handshake,
        rooms: state
            .endpoint
            .rooms_of(&socket.nsp, &socket.id)
            .iter()
            .map(|r| r.to_string())
            .collect(),
        data: serde_json::json!({}),
    }
}

/// Milliseconds since the epoch as JavaScript's `new Date().toString()`
/// writes them on a server in UTC (the reference's `handshake.time`).
fn js_date(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:02} {} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Hands the operations the core queued to the adapter, in order. Called
/// with the lock held, right after each endpoint operation.
pub(crate) fn flush(shared: &Shared, state: &mut State) {
    while let Some(op) = state.endpoint.poll_cluster_op() {
        if let Some(adapter) = shared.adapter.get() {
            adapter.publish(op);
        }
    }
}

/// Tells the adapter, if any, that namespace `nsp` is served.
pub(crate) fn namespace_added(shared: &Shared, nsp: &str) {
    if let Some(adapter) = shared.adapter.get() {
        adapter.add_namespace(nsp);
    }
}

impl SocketIo {
    /// Makes this server one node of a cluster: every broadcast and room
    /// or disconnect operation that is not [`local`](BroadcastOperator::local)
    /// goes to `adapter` too. An adapter crate calls this from its
    /// constructor, with the [`LocalNode`] of [`local_node`](SocketIo::local_node).
    ///
    /// # Errors
    ///
    /// Gives the adapter back when one is already attached.
    pub fn attach_adapter(&self, adapter: Arc<dyn Adapter>) -> Result<(), Arc<dyn Adapter>> {
        self.shared.adapter.set(adapter.clone())?;
        self.shared.lock().endpoint.set_clustered(true);
        let names: Vec<String> = self.shared.namespaces().fixed.keys().cloned().collect();
        for nsp in names {
            adapter.add_namespace(&nsp);
        }
        Ok(())
    }

    /// This node, for an adapter: where it delivers the other nodes'
    /// operations and finds the answers to their queries.
    pub fn local_node(&self) -> LocalNode {
        LocalNode {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// The rooms of `nsp` that have members on any node of the cluster.
    ///
    /// # Errors
    ///
    /// [`AdapterError`] when a node did not answer in time.
    pub async fn all_rooms(&self, nsp: &str) -> Result<Vec<Str>, AdapterError> {
        let mut rooms = self.rooms(nsp);
        if let Some(adapter) = self.shared.adapter.get().cloned() {
            rooms.extend(adapter.all_rooms(Str::from(nsp)).await?);
            rooms.sort();
            rooms.dedup();
        }
        Ok(rooms)
    }

    /// Handles the events the other nodes send to the servers themselves
    /// (the reference's `io.on(event, ...)` for `serverSideEmit`). Runs on
    /// the adapter's task: keep it short, or spawn.
    ///
    /// ```
    /// # let io = socketio_tokio::SocketIo::new()?;
    /// io.on_server_side_emit(|ev| {
    ///     if ev.event == "ping" && let Some(ack) = ev.ack {
    ///         let _ = ack.send(&"pong");
    ///     }
    /// });
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn on_server_side_emit(&self, handler: impl Fn(ServerSideEvent) + Send + Sync + 'static) {
        self.shared
            .server_side
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(handler));
    }

    /// Sends `event` with `args` to the other nodes of the cluster (not to
    /// clients) on namespace `/`; nothing without an adapter.
    ///
    /// # Errors
    ///
    /// [`AdapterError::Encode`] when `args` cannot be serialized.
    pub fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<(), AdapterError> {
        let mut data = vec![serde_json::Value::from(event)];
        data.extend(arg_list(args).map_err(|e| AdapterError::Encode(e.to_string()))?);
        if let Some(adapter) = self.shared.adapter.get().cloned() {
            // Without an ack the future publishes at once and is ready.
            drop(adapter.server_side_emit(Str::from("/"), data, false));
        }
        Ok(())
    }

    /// Sends `event` with `args` to the other nodes and waits for one
    /// answer from each (the reference's `serverSideEmitWithAck`).
    ///
    /// # Errors
    ///
    /// [`AdapterError::Timeout`] when a node did not answer in time;
    /// [`AdapterError::Encode`] when `args` cannot be serialized or an
    /// answer is not a `V`.
    pub async fn server_side_emit_with_ack<
        V: serde::de::DeserializeOwned,
        T: Serialize + ?Sized,
    >(
        &self,
        event: &str,
        args: &T,
    ) -> Result<Vec<V>, AdapterError> {
        let mut data = vec![serde_json::Value::from(event)];
        data.extend(arg_list(args).map_err(|e| AdapterError::Encode(e.to_string()))?);
        let Some(adapter) = self.shared.adapter.get().cloned() else {
            return Ok(Vec::new());
        };
        adapter
            .server_side_emit(Str::from("/"), data, true)
            .await?
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(|e| AdapterError::Encode(e.to_string())))
            .collect()
    }

    /// How many nodes serve `nsp`: 1 without an adapter.
    ///
    /// # Errors
    ///
    /// [`AdapterError`] when the transport failed.
    pub async fn server_count(&self, nsp: &str) -> Result<usize, AdapterError> {
        match self.shared.adapter.get().cloned() {
            Some(adapter) => adapter.server_count(Str::from(nsp)).await,
            None => Ok(1),
        }
    }
}

impl BroadcastOperator {
    /// The selected sockets on every node of the cluster (only this node's
    /// when [`local`](BroadcastOperator::local) or without an adapter), as
    /// descriptions: id, handshake, rooms, data.
    ///
    /// # Errors
    ///
    /// [`AdapterError`] when a node did not answer in time.
    pub async fn fetch_sockets(self) -> Result<Vec<RemoteSocket>, AdapterError> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(Vec::new());
        };
        let node = LocalNode {
            shared: self.shared.clone(),
        };
        let mut sockets = node.fetch_sockets(&self.nsp, &self.opts);
        if !self.opts.local
            && let Some(adapter) = shared.adapter.get().cloned()
        {
            drop(shared);
            sockets.extend(adapter.fetch_sockets(self.nsp, self.opts).await?);
        }
        Ok(sockets)
    }

    /// Emits `event` to the selected sockets on every node of the cluster
    /// and collects the first argument of each acknowledgement (the
    /// reference's `io.timeout(t).emitWithAck(...)`): complete once every
    /// selected socket answered, an error when the timeout (set with
    /// [`timeout`](BroadcastOperator::timeout), else the ack timeout)
    /// passes first. Sockets that disconnect meanwhile are not waited for.
    ///
    /// # Errors
    ///
    /// [`AdapterError::Timeout`] when not every socket answered in time;
    /// [`AdapterError::Encode`] when `args` cannot be serialized or an
    /// answer is not a `V`.
    pub async fn emit_with_ack_all<V, T>(
        self,
        event: &str,
        args: &T,
    ) -> Result<Vec<V>, AdapterError>
    where
        V: DeserializeOwned,
        T: Serialize + ?Sized,
    {
        let packet = Packet::event(self.nsp.clone(), event, args, None)
            .map_err(|e| AdapterError::Encode(e.to_string()))?;
        let Some(shared) = self.shared.upgrade() else {
            return Ok(Vec::new());
        };
        let timeout = self.timeout.unwrap_or(shared.options.ack_timeout);
        let adapter = if self.opts.local {
            None
        } else {
            shared.adapter.get().cloned()
        };
        drop(shared);
        let node = LocalNode {
            shared: self.shared.clone(),
        };
        let (_, mut local) = node.broadcast_with_ack(packet.clone(), &self.opts, timeout);
        let remote = adapter.map(|a| a.broadcast_with_ack(packet, self.opts.clone(), timeout));
        let local = async {
            let mut answers = Vec::new();
            while let Some(answer) = local.next().await {
                match answer {
                    Ok(payload) => answers.push(payload),
                    Err(AckError::Timeout) => return Err(AdapterError::Timeout("emitWithAck")),
                    Err(_) => {}
                }
            }
            Ok(answers)
        };
        let (local, remote) = match remote {
            Some(remote) => futures_util::future::join(local, remote).await,
            None => (local.await, Ok(Vec::new())),
        };
        local?
            .into_iter()
            .chain(remote?)
            .map(|p| {
                p.args::<(V,)>(0)
                    .map(|(v,)| v)
                    .map_err(|e| AdapterError::Encode(e.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::js_date;

    #[test]
    fn dates_as_javascript_writes_them() {
        const UTC: &str = "GMT+0000 (Coordinated Universal Time)";
        assert_eq!(js_date(0), format!("Thu Jan 01 1970 00:00:00 {UTC}"));
        assert_eq!(
            js_date(1_700_000_000_000),
            format!("Tue Nov 14 2023 22:13:20 {UTC}")
        );
        assert_eq!(
            js_date(951_782_400_000),
            format!("Tue Feb 29 2000 00:00:00 {UTC}")
        );
    }
}
