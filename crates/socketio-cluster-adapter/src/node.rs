//! One node of a cluster: what it publishes for the binding's operations,
//! what it does with the other nodes' messages, and the requests in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use socketio_packet::{Packet, Payload};
use socketio_tokio::socketio_proto::ClusterSession;
use socketio_tokio::socketio_proto::{BroadcastOptions, ClusterOp};
use socketio_tokio::{
    Adapter, AdapterError, LocalNode, RemoteSocket, RestoredSession, ServerAck, Str,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::wire::{self, Body, Message};

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// To every node serving namespace `nsp`. `room` is set for a broadcast
    /// without acknowledgements to exactly one room (a transport may give
    /// such rooms channels of their own).
    All {
        /// The namespace.
        nsp: &'a str,
        /// The one room of a broadcast, if so.
        room: Option<&'a str>,
    },
    /// To node `uid` alone: an answer to its request.
    Node {
        /// The namespace.
        nsp: &'a str,
        /// The requesting node.
        uid: &'a str,
    },
}

/// The transport of a [`ClusterNode`]: how its messages reach the others.
pub trait Transport: Send + Sync + 'static {
    /// Namespace `nsp` is served here: receive its messages from now on.
    fn add_namespace(&self, nsp: &str);

    /// Sends `message` (of type `kind`, see
    /// [`message_type`](crate::wire::message_type)) along `route`. Must not
    /// block: queue it (in a bounded queue) and send it from a task of your
    /// own.
    fn send(&self, route: Route<'_>, kind: u64, message: Bytes);

    /// How many nodes (this one included) serve `nsp`. Not called when the
    /// node counts the others by their heartbeats ([`Heartbeat`]).
    fn server_count(&self, nsp: &str) -> BoxFuture<'static, Result<usize, AdapterError>>;

    /// Whether the transport owns connection state recovery (see
    /// [`Adapter::owns_recovery`]): then it hands every broadcast it reads,
    /// this node's own too, to [`ClusterNode::handle_at`] with its offset,
    /// in one order that every node reads. False by default.
    fn owns_recovery(&self) -> bool {
        false
    }

    /// Keeps the session of a socket that dropped, on namespace `nsp`, for
    /// any node to give back (when the transport owns recovery). Must not
    /// block.
    fn persist_session(&self, nsp: &str, session: &ClusterSession) {
        let _ = (nsp, session);
    }

    /// Gives back a kept session (see [`Adapter::restore_session`]).
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

/// The heartbeats of `ClusterAdapterWithHeartbeat`, for transports that
/// cannot count their subscribers (Postgres, Redis Streams): each node
/// announces itself when it starts (`INITIAL_HEARTBEAT`, which the others
/// answer with a heartbeat), sends a heartbeat every `interval`, and
/// counts as gone after `timeout` without a message, or when it says so
/// (`ADAPTER_CLOSE`). The server count is this node plus the others seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// How often a node sends a heartbeat (the reference's
    /// `heartbeatInterval`, 5 s by default).
    pub interval: Duration,
    /// After how long without a message a node counts as gone (the
    /// reference's `heartbeatTimeout`, 10 s by default).
    pub timeout: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A query waiting for the other nodes' responses.
struct Pending {
    remaining: usize,
    sockets: Vec<RemoteSocket>,
    responses: Vec<serde_json::Value>,
    done: Option<oneshot::Sender<Answer>>,
}

struct Answer {
    sockets: Vec<RemoteSocket>,
    responses: Vec<serde_json::Value>,
}

/// A broadcast with acknowledgements waiting for the other nodes: their
/// client counts, then that many acknowledgements.
struct AckRequest {
    counts: usize,
    expected: usize,
    acks: Vec<Payload>,
    done: Option<oneshot::Sender<Vec<Payload>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sixteen random hexadecimal digits, like the reference's `randomId()`.
pub fn random_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: fall back on the clock, still distinct per node.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&t.to_le_bytes()[..8]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One node of a cluster speaking `ClusterAdapter`'s protocol over a
/// [`Transport`]; attach it to a server as its [`Adapter`], and hand it
/// every message the transport receives ([`handle`](ClusterNode::handle)).
pub struct ClusterNode<T> {
    uid: String,
    node: LocalNode,
    transport: T,
    requests_timeout: Duration,
    heartbeat: Option<Heartbeat>,
    /// With heartbeats: the namespaces served here, and for each the other
    /// nodes seen and when they were last heard from.
    nodes: Mutex<HashMap<String, HashMap<String, Instant>>>,
    pending: Mutex<HashMap<String, Pending>>,
    ack_requests: Mutex<HashMap<String, AckRequest>>,
    this: Weak<ClusterNode<T>>,
}

impl<T> std::fmt::Debug for ClusterNode<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> ClusterNode<T> {
    /// A node of uid `uid` for the server `node` stands for; cluster queries
    /// wait at most `requests_timeout` for the other nodes. With
    /// `heartbeat`, the node counts the others by their heartbeats (then
    /// call [`start_heartbeat`](ClusterNode::start_heartbeat)); without,
    /// the transport counts them.
    pub fn new(
        uid: String,
        node: LocalNode,
        transport: T,
        requests_timeout: Duration,
        heartbeat: Option<Heartbeat>,
    ) -> Arc<ClusterNode<T>> {
        Arc::new_cyclic(|this| ClusterNode {
            uid,
            node,
            transport,
            requests_timeout,
            heartbeat,
            nodes: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            ack_requests: Mutex::new(HashMap::new()),
            this: this.clone(),
        })
    }

    /// This node's uid.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The server this node stands for.
    pub fn local_node(&self) -> &LocalNode {
        &self.node
    }

    fn send(&self, route: Route<'_>, nsp: &str, body: Body) {
        let message = Message {
            uid: self.uid.clone(),
            nsp: nsp.to_owned(),
            body,
        };
        self.transport
            .send(route, message.body.kind(), wire::encode(&message));
    }

    fn send_all(&self, nsp: &str, body: Body) {
        self.send(Route::All { nsp, room: None }, nsp, body);
    }

    /// How many nodes serve `nsp`: by their heartbeats, or as the
    /// transport counts them.
    fn count(&self, nsp: &str) -> BoxFuture<'static, Result<usize, AdapterError>> {
        if let Some(heartbeat) = self.heartbeat {
            let others = lock(&self.nodes).get(nsp).map_or(0, |others| {
                others
                    .values()
                    .filter(|seen| seen.elapsed() <= heartbeat.timeout)
                    .count()
            });
            return Box::pin(async move { Ok(1 + others) });
        }
        self.transport.server_count(nsp)
    }

    /// Starts the heartbeats (with [`Heartbeat`] only): every interval, a
    /// heartbeat on each namespace and the nodes silent for too long
    /// forgotten. The task ends with the server.
    pub fn start_heartbeat(&self) -> Option<JoinHandle<()>> {
        let heartbeat = self.heartbeat?;
        let this = self.this.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(heartbeat.interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(this) = this.upgrade() else { return };
                if !this.node.is_alive() {
                    return;
                }
                let namespaces: Vec<String> = {
                    let mut nodes = lock(&this.nodes);
                    for others in nodes.values_mut() {
                        others.retain(|_, seen| seen.elapsed() <= heartbeat.timeout);
                    }
                    nodes.keys().cloned().collect()
                };
                for nsp in namespaces {
                    this.send_all(&nsp, Body::Heartbeat);
                }
            }
        }))
    }

    /// Tells the other nodes that this one leaves (with [`Heartbeat`] only:
    /// they stop counting it at once).
    pub fn announce_close(&self) {
        if self.heartbeat.is_none() {
            return;
        }
        let namespaces: Vec<String> = lock(&self.nodes).keys().cloned().collect();
        for nsp in namespaces {
            self.send_all(&nsp, Body::AdapterClose);
        }
    }

    fn respond(&self, nsp: &str, to: &str, body: Body) {
        self.send(Route::Node { nsp, uid: to }, nsp, body);
    }

    /// Carries out a message another node sent: a malformed one is ignored
    /// with a warning, and so are this node's own.
    pub fn handle(&self, raw: &[u8]) {
        self.handle_in(raw, None);
    }

    /// [`handle`](ClusterNode::handle) for a message that came on the
    /// channel of namespace `nsp`, which it may not name.
    pub fn handle_in(&self, raw: &[u8], nsp: Option<&str>) {
        match wire::decode_in(raw, nsp) {
            Ok(message) => self.handle_message(message),
            Err(error) => tracing::warn!(%error, "ignoring a malformed cluster message"),
        }
    }

    /// Carries out a message read in the cluster's order, at `offset`:
    /// broadcasts without acknowledgements go to
    /// [`LocalNode::apply_at`], this node's own too; the rest as
    /// [`handle`](ClusterNode::handle) does.
    pub fn handle_at(&self, raw: &[u8], offset: &str) {
        match wire::decode_in(raw, None) {
            Ok(message) => self.handle_message_at(message, Some(offset)),
            Err(error) => tracing::warn!(%error, "ignoring a malformed cluster message"),
        }
    }

    /// Carries out a decoded message of another node (this node's own are ignored).
    pub fn handle_message(&self, message: Message) {
        self.handle_message_at(message, None);
    }

    fn handle_message_at(&self, message: Message, offset: Option<&str>) {
        if message.uid == self.uid {
            if let (
                Some(offset),
                Body::Broadcast {
                    packet,
                    opts,
                    request_id: None,
                    ..
                },
            ) = (offset, message.body)
            {
                self.node
                    .apply_at(ClusterOp::Broadcast { packet, opts }, offset, true);
            }
            return;
        }
        let Message { uid, nsp, body } = message;
        if self.heartbeat.is_some() && uid != "emitter" {
            let mut nodes = lock(&self.nodes);
            if let Some(others) = nodes.get_mut(&nsp) {
                if body == Body::AdapterClose {
                    others.remove(&uid);
                } else {
                    others.insert(uid.clone(), Instant::now());
                }
            }
        }
        match body {
            Body::InitialHeartbeat if self.heartbeat.is_some() => {
                self.send_all(&nsp, Body::Heartbeat);
            }
            Body::Broadcast {
                packet,
                opts,
                request_id: None,
                ..
            } => match offset {
                Some(offset) => {
                    self.node
                        .apply_at(ClusterOp::Broadcast { packet, opts }, offset, false);
                }
                None => self.node.apply(ClusterOp::Broadcast { packet, opts }),
            },
            Body::Broadcast {
                packet,
                opts,
                request_id: Some(id),
                timeout,
            } => self.on_broadcast_with_ack(&nsp, &uid, id, packet, &opts, timeout),
            Body::SocketsJoin { opts, rooms } => self.node.apply(ClusterOp::AddSockets {
                nsp: Str::from(nsp),
                opts,
                rooms,
            }),
            Body::SocketsLeave { opts, rooms } => self.node.apply(ClusterOp::DelSockets {
                nsp: Str::from(nsp),
                opts,
                rooms,
            }),
            Body::DisconnectSockets { opts, close } => {
                self.node.apply(ClusterOp::DisconnectSockets {
                    nsp: Str::from(nsp),
                    opts,
                    close,
                });
            }
            Body::FetchSockets { opts, request_id } => {
                let sockets = self.node.fetch_sockets(&nsp, &opts);
                self.respond(
                    &nsp,
                    &uid,
                    Body::FetchSocketsResponse {
                        request_id,
                        sockets,
                    },
                );
            }
            Body::ServerSideEmit { data, request_id } => {
                let ack = request_id.map(|request_id| {
                    let this = self.this.clone();
                    let nsp = nsp.clone();
                    let uid = uid.clone();
                    ServerAck::new(move |data| {
                        if let Some(this) = this.upgrade() {
                            this.respond(
                                &nsp,
                                &uid,
                                Body::ServerSideEmitResponse { request_id, data },
                            );
                        }
                    })
                });
                self.node.server_side_emit(&nsp, data, ack);
            }
            Body::FetchSocketsResponse {
                request_id,
                sockets,
            } => self.on_response(&request_id, sockets, None),
            Body::ServerSideEmitResponse { request_id, data } => {
                self.on_response(&request_id, Vec::new(), Some(data));
            }
            Body::BroadcastClientCount { request_id, count } => {
                self.on_ack(&request_id, Some(count), None);
            }
            Body::BroadcastAck { request_id, ack } => self.on_ack(&request_id, None, Some(ack)),
            Body::InitialHeartbeat | Body::Heartbeat | Body::AdapterClose => {}
            Body::Unknown(kind) => tracing::debug!(kind, "ignoring a message of unknown type"),
        }
    }

    /// Another node's broadcast with acknowledgements: send it to the local
    /// sockets, tell how many, then pass each acknowledgement on.
    fn on_broadcast_with_ack(
        &self,
        nsp: &str,
        uid: &str,
        request_id: String,
        packet: Packet,
        opts: &BroadcastOptions,
        timeout: Option<Duration>,
    ) {
        let timeout = timeout.unwrap_or(self.requests_timeout);
        let (count, mut acks) = self.node.broadcast_with_ack(packet, opts, timeout);
        self.respond(
            nsp,
            uid,
            Body::BroadcastClientCount {
                request_id: request_id.clone(),
                count,
            },
        );
        let this = self.this.clone();
        let nsp = nsp.to_owned();
        let uid = uid.to_owned();
        tokio::spawn(async move {
            while let Some(ack) = acks.next().await {
                let (Ok(ack), Some(this)) = (ack, this.upgrade()) else {
                    continue;
                };
                this.respond(
                    &nsp,
                    &uid,
                    Body::BroadcastAck {
                        request_id: request_id.clone(),
                        ack,
                    },
                );
            }
        });
    }

    fn on_response(
        &self,
        id: &str,
        sockets: Vec<RemoteSocket>,
        response: Option<serde_json::Value>,
    ) {
        let mut pending = lock(&self.pending);
        let Some(entry) = pending.get_mut(id) else {
            return;
        };
        entry.remaining = entry.remaining.saturating_sub(1);
        entry.sockets.extend(sockets);
        entry.responses.extend(response);
        if entry.remaining == 0
            && let Some(entry) = pending.remove(id)
            && let Some(done) = entry.done
        {
            let _ = done.send(Answer {
                sockets: entry.sockets,
                responses: entry.responses,
            });
        }
    }

    fn on_ack(&self, id: &str, count: Option<usize>, ack: Option<Payload>) {
        let mut requests = lock(&self.ack_requests);
        let Some(request) = requests.get_mut(id) else {
            return;
        };
        if let Some(count) = count {
            request.counts = request.counts.saturating_sub(1);
            request.expected += count;
        }
        request.acks.extend(ack);
        if request.counts == 0
            && request.acks.len() >= request.expected
            && let Some(request) = requests.remove(id)
            && let Some(done) = request.done
        {
            let _ = done.send(request.acks);
        }
    }

    /// Asks the other nodes of `nsp`; waits for every answer or the timeout.
    async fn ask(
        &self,
        nsp: &str,
        body: impl FnOnce(String) -> Body,
        what: &'static str,
    ) -> Result<Answer, AdapterError> {
        let others = self.count(nsp).await?.saturating_sub(1);
        if others == 0 {
            return Ok(Answer {
                sockets: Vec::new(),
                responses: Vec::new(),
            });
        }
        let id = random_id();
        let (done, rx) = oneshot::channel();
        lock(&self.pending).insert(
            id.clone(),
            Pending {
                remaining: others,
                sockets: Vec::new(),
                responses: Vec::new(),
                done: Some(done),
            },
        );
        self.send(Route::All { nsp, room: None }, nsp, body(id.clone()));
        match tokio::time::timeout(self.requests_timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            _ => {
                lock(&self.pending).remove(&id);
                Err(AdapterError::Timeout(what))
            }
        }
    }
}

impl<T: Transport> Adapter for ClusterNode<T> {
    fn add_namespace(&self, nsp: &str) {
        self.transport.add_namespace(nsp);
        if self.heartbeat.is_some() {
            let new = lock(&self.nodes)
                .insert(nsp.to_owned(), HashMap::new())
                .is_none();
            if new {
                self.send_all(nsp, Body::InitialHeartbeat);
            }
        }
    }

    fn publish(&self, op: ClusterOp) {
        match op {
            ClusterOp::Broadcast { packet, opts } => {
                let nsp = packet.nsp.clone();
                let room = match opts.rooms.as_slice() {
                    [room] => Some(room.clone()),
                    _ => None,
                };
                let body = Body::Broadcast {
                    packet,
                    opts,
                    request_id: None,
                    timeout: None,
                };
                self.send(
                    Route::All {
                        nsp: &nsp,
                        room: room.as_deref(),
                    },
                    &nsp,
                    body,
                );
            }
            ClusterOp::AddSockets { nsp, opts, rooms } => {
                let route = Route::All {
                    nsp: &nsp,
                    room: None,
                };
                self.send(route, &nsp, Body::SocketsJoin { opts, rooms });
            }
            ClusterOp::DelSockets { nsp, opts, rooms } => {
                let route = Route::All {
                    nsp: &nsp,
                    room: None,
                };
                self.send(route, &nsp, Body::SocketsLeave { opts, rooms });
            }
            ClusterOp::DisconnectSockets { nsp, opts, close } => {
                let route = Route::All {
                    nsp: &nsp,
                    room: None,
                };
                self.send(route, &nsp, Body::DisconnectSockets { opts, close });
            }
            ClusterOp::PersistSession {
                nsp,
                sid,
                pid,
                rooms,
                data,
            } => {
                let session = ClusterSession {
                    sid,
                    pid,
                    rooms,
                    data,
                    nsp: Some(nsp.clone()),
                    missed: Vec::new(),
                };
                self.transport.persist_session(&nsp, &session);
            }
        }
    }

    fn fetch_sockets(
        &self,
        nsp: Str,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<RemoteSocket>, AdapterError>> {
        let this = self.this.upgrade();
        Box::pin(async move {
            let Some(this) = this else {
                return Ok(Vec::new());
            };
            let body = |request_id| Body::FetchSockets { opts, request_id };
            Ok(this.ask(&nsp, body, "fetchSockets").await?.sockets)
        })
    }

    fn owns_recovery(&self) -> bool {
        self.transport.owns_recovery()
    }

    fn restore_session(
        &self,
        nsp: Str,
        pid: Str,
        offset: Str,
    ) -> BoxFuture<'static, Result<Option<RestoredSession>, AdapterError>> {
        self.transport.restore_session(nsp, pid, offset)
    }

    fn all_rooms(&self, _nsp: Str) -> BoxFuture<'static, Result<Vec<Str>, AdapterError>> {
        // The protocol has no such request: the reference's `ClusterAdapter`
        // answers with the local rooms alone, which the caller already has.
        Box::pin(async { Ok(Vec::new()) })
    }

    fn server_count(&self, nsp: Str) -> BoxFuture<'static, Result<usize, AdapterError>> {
        self.count(&nsp)
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>> {
        let this = self.this.upgrade();
        Box::pin(async move {
            let Some(this) = this else {
                return Ok(Vec::new());
            };
            let nsp = packet.nsp.clone();
            let others = this.count(&nsp).await?.saturating_sub(1);
            if others == 0 {
                return Ok(Vec::new());
            }
            let id = random_id();
            let (done, rx) = oneshot::channel();
            lock(&this.ack_requests).insert(
                id.clone(),
                AckRequest {
                    counts: others,
                    expected: 0,
                    acks: Vec::new(),
                    done: Some(done),
                },
            );
            let body = Body::Broadcast {
                packet,
                opts,
                request_id: Some(id.clone()),
                timeout: Some(timeout),
            };
            this.send(
                Route::All {
                    nsp: &nsp,
                    room: None,
                },
                &nsp,
                body,
            );
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(acks)) => Ok(acks),
                _ => {
                    lock(&this.ack_requests).remove(&id);
                    Err(AdapterError::Timeout("emitWithAck"))
                }
            }
        })
    }

    fn server_side_emit(
        &self,
        nsp: Str,
        data: Vec<serde_json::Value>,
        with_ack: bool,
    ) -> BoxFuture<'static, Result<Vec<serde_json::Value>, AdapterError>> {
        if !with_ack {
            let body = Body::ServerSideEmit {
                data,
                request_id: None,
            };
            self.send(
                Route::All {
                    nsp: &nsp,
                    room: None,
                },
                &nsp,
                body,
            );
            return Box::pin(async { Ok(Vec::new()) });
        }
        let this = self.this.upgrade();
        Box::pin(async move {
            let Some(this) = this else {
                return Ok(Vec::new());
            };
            let body = |id| Body::ServerSideEmit {
                data,
                request_id: Some(id),
            };
            Ok(this.ask(&nsp, body, "serverSideEmit").await?.responses)
        })
    }
}
