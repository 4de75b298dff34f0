//! The adapter: a publisher task, a subscriber task, and the requests in flight.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use redis::aio::{MultiplexedConnection, PubSub};
use socketio_packet::{Packet, Payload};
use socketio_tokio::socketio_proto::{BroadcastOptions, ClusterOp};
use socketio_tokio::{
    Adapter, AdapterError, AdapterStats, LocalNode, RemoteSocket, ServerAck, SocketIo, Str,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::wire::{self, Request, RequestOpts, request_type};

/// The adapter could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisAdapterError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// Redis cannot be reached (or refused the connection).
    #[error("cannot connect to Redis at {url}: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: redis::RedisError,
    },
    /// Redis did not answer within the connect timeout.
    #[error("cannot connect to Redis at {0}: timed out")]
    Timeout(String),
    /// The server already has an adapter.
    #[error("the server already has an adapter")]
    AlreadyAttached,
}

/// Options of a [`RedisAdapter`], then [`attach`](RedisAdapterBuilder::attach).
#[derive(Debug, Clone)]
pub struct RedisAdapterBuilder {
    url: String,
    key: String,
    requests_timeout: Duration,
    connect_timeout: Duration,
    queue: usize,
    max_backoff: Duration,
}

impl RedisAdapterBuilder {
    /// The prefix of the channels: `socket.io` by default (the reference's `key`).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// How long a cluster query waits for the other nodes: 5 s by default
    /// (the reference's `requestsTimeout`).
    pub fn requests_timeout(mut self, timeout: Duration) -> Self {
        self.requests_timeout = timeout;
        self
    }

    /// How long connecting to Redis may take: 5 s by default.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many messages may wait to be published: 4096 by default. When
    /// the queue is full (Redis is slow or away), further messages are
    /// dropped with a warning; local delivery is never held up.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue = capacity.max(1);
        self
    }

    /// The longest wait between two reconnection attempts: 5 s by default
    /// (the wait starts at 50 ms and doubles).
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Connects to Redis, subscribes, and makes `io` one node of the cluster.
    ///
    /// # Errors
    ///
    /// [`RedisAdapterError`] when the URL is invalid, Redis cannot be
    /// reached within the connect timeout, or `io` already has an adapter.
    pub async fn attach(self, io: &SocketIo) -> Result<RedisAdapter, RedisAdapterError> {
        let client =
            redis::Client::open(self.url.as_str()).map_err(RedisAdapterError::InvalidUrl)?;
        let conn = connect(&client, &self.url, self.connect_timeout).await?;
        let (pub_tx, pub_rx) = mpsc::channel(self.queue);
        let (ns_tx, mut ns_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            uid: new_id(),
            key: self.key,
            url: self.url,
            client,
            node: io.local_node(),
            requests_timeout: self.requests_timeout,
            connect_timeout: self.connect_timeout,
            max_backoff: self.max_backoff,
            pub_tx,
            ns_tx,
            conn: Mutex::new(Some(conn)),
            retry_at: Mutex::new(None),
            namespaces: Mutex::new(HashSet::new()),
            pending: Mutex::new(HashMap::new()),
            ack_requests: Mutex::new(HashMap::new()),
            this: Mutex::new(std::sync::Weak::new()),
            reconnects: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        *lock(&inner.this) = Arc::downgrade(&inner);
        let mut pubsub = inner.subscribe_all().await?;
        io.attach_adapter(inner.clone())
            .map_err(|_| RedisAdapterError::AlreadyAttached)?;
        // The namespaces declared so far: subscribed before this returns, so
        // that the other nodes count this one at once.
        let mut subscribed = true;
        while let Ok(nsp) = ns_rx.try_recv() {
            if let Err(error) = pubsub.subscribe(inner.channels(&nsp)).await {
                // Redis went away meanwhile: the subscriber starts over.
                tracing::warn!(%error, "cannot subscribe; retrying");
                subscribed = false;
                break;
            }
        }
        let pubsub = subscribed.then_some(pubsub);
        let publisher = tokio::spawn(publisher(inner.clone(), pub_rx));
        let subscriber = tokio::spawn(subscriber(inner.clone(), pubsub, ns_rx));
        tracing::info!(uid = %inner.uid, url = %inner.url, "redis adapter attached");
        Ok(RedisAdapter {
            inner,
            tasks: Mutex::new(vec![publisher, subscriber]),
        })
    }
}

/// A Redis adapter attached to a server. Dropping it leaves it running;
/// [`close`](RedisAdapter::close) stops it (the server then reaches only its
/// own sockets).
#[derive(Debug)]
pub struct RedisAdapter {
    inner: Arc<Inner>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl RedisAdapter {
    /// A builder for Redis at `url` (`redis://host:port/db`).
    pub fn builder(url: impl Into<String>) -> RedisAdapterBuilder {
        RedisAdapterBuilder {
            url: url.into(),
            key: "socket.io".to_owned(),
            requests_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            queue: 4096,
            max_backoff: Duration::from_secs(5),
        }
    }

    /// This node's id on the channels.
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }

    /// Stops the publisher and the subscriber.
    pub fn close(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

/// A query waiting for the other nodes' responses.
struct Pending {
    /// Responses still awaited.
    remaining: usize,
    answer: Answer,
    done: Option<oneshot::Sender<Answer>>,
}

/// A broadcast with acknowledgements waiting for the other nodes: their
/// client counts, then that many acknowledgements.
struct AckRequest {
    /// Nodes whose client count has not come yet.
    counts: usize,
    /// Acknowledgements announced by the counts so far.
    expected: usize,
    acks: Vec<Payload>,
    done: Option<oneshot::Sender<Vec<Payload>>>,
}

impl AckRequest {
    fn complete(&self) -> bool {
        self.counts == 0 && self.acks.len() >= self.expected
    }
}

/// What the other nodes answered.
#[derive(Default)]
struct Answer {
    sockets: Vec<RemoteSocket>,
    rooms: Vec<Str>,
    responses: Vec<serde_json::Value>,
}

struct Inner {
    uid: String,
    key: String,
    url: String,
    client: redis::Client,
    node: LocalNode,
    requests_timeout: Duration,
    connect_timeout: Duration,
    max_backoff: Duration,
    pub_tx: mpsc::Sender<(String, Bytes)>,
    ns_tx: mpsc::UnboundedSender<String>,
    /// The command connection, once up; dropped on an error.
    conn: Mutex<Option<MultiplexedConnection>>,
    /// No reconnection before this instant (backoff after a failure).
    retry_at: Mutex<Option<(Instant, Duration)>>,
    namespaces: Mutex<HashSet<String>>,
    pending: Mutex<HashMap<String, Pending>>,
    /// Broadcasts with acknowledgements waiting for the other nodes.
    ack_requests: Mutex<HashMap<String, AckRequest>>,
    /// Itself, weakly.
    this: Mutex<std::sync::Weak<Inner>>,
    /// Times a connection to Redis (commands or subscriptions) was made
    /// again after it was lost.
    reconnects: AtomicU64,
    /// Messages for the other nodes that were not published.
    dropped: AtomicU64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("uid", &self.uid)
            .field("url", &self.url)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Six random alphanumeric characters, like the reference's `uid2(6)`.
fn new_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 6];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: fall back on the clock, still distinct per node.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&t.to_le_bytes()[..6]);
    }
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

async fn connect(
    client: &redis::Client,
    url: &str,
    timeout: Duration,
) -> Result<MultiplexedConnection, RedisAdapterError> {
    match tokio::time::timeout(timeout, client.get_multiplexed_async_connection()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(RedisAdapterError::Connect {
            url: url.to_owned(),
            source,
        }),
        Err(_) => Err(RedisAdapterError::Timeout(url.to_owned())),
    }
}

const MIN_BACKOFF: Duration = Duration::from_millis(50);

impl Inner {
    /// A new subscriber connection, subscribed to every broadcast channel
    /// and to the request and response channels of every namespace.
    async fn subscribe_all(&self) -> Result<PubSub, RedisAdapterError> {
        let fut = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.psubscribe(format!("{}#*", self.key)).await?;
            let names: Vec<String> = lock(&self.namespaces).iter().cloned().collect();
            for nsp in names {
                pubsub.subscribe(self.channels(&nsp)).await?;
            }
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(self.connect_timeout, fut).await {
            Ok(Ok(pubsub)) => Ok(pubsub),
            Ok(Err(source)) => Err(RedisAdapterError::Connect {
                url: self.url.clone(),
                source,
            }),
            Err(_) => Err(RedisAdapterError::Timeout(self.url.clone())),
        }
    }

    /// The request and response channels of `nsp` this node listens on.
    fn channels(&self, nsp: &str) -> Vec<String> {
        let response = wire::response_channel(&self.key, nsp);
        vec![
            wire::request_channel(&self.key, nsp),
            format!("{response}{}#", self.uid),
            response,
        ]
    }

    /// The command connection: the live one, or a new one unless the last
    /// attempt failed less than a backoff ago.
    async fn connection(&self) -> Option<MultiplexedConnection> {
        if let Some(conn) = lock(&self.conn).clone() {
            return Some(conn);
        }
        if let Some((at, _)) = *lock(&self.retry_at)
            && Instant::now() < at
        {
            return None;
        }
        match connect(&self.client, &self.url, self.connect_timeout).await {
            Ok(conn) => {
                tracing::info!(url = %self.url, "reconnected to Redis");
                self.reconnects.fetch_add(1, Ordering::Relaxed);
                *lock(&self.retry_at) = None;
                *lock(&self.conn) = Some(conn.clone());
                Some(conn)
            }
            Err(e) => {
                let mut retry = lock(&self.retry_at);
                let backoff = retry.map_or(MIN_BACKOFF, |(_, b)| (b * 2).min(self.max_backoff));
                *retry = Some((Instant::now() + backoff, backoff));
                tracing::warn!(error = %e, "Redis unreachable");
                None
            }
        }
    }

    fn connection_failed(&self, error: &redis::RedisError) {
        tracing::warn!(%error, "Redis command failed; reconnecting");
        *lock(&self.conn) = None;
    }

    /// Queues a message for the publisher; drops it when the queue is full.
    fn enqueue(&self, channel: String, payload: Bytes) {
        if let Err(e) = self.pub_tx.try_send((channel, payload)) {
            match e {
                mpsc::error::TrySendError::Full((channel, _)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%channel, "publish queue full; message for the cluster dropped");
                }
                mpsc::error::TrySendError::Closed(_) => {}
            }
        }
    }

    fn publish_request(&self, nsp: &str, request: &Request) {
        match serde_json::to_vec(request) {
            Ok(json) => self.enqueue(wire::request_channel(&self.key, nsp), Bytes::from(json)),
            Err(e) => tracing::warn!(error = %e, "cannot encode a request"),
        }
    }

    fn publish_rooms(&self, nsp: &str, kind: u8, opts: &BroadcastOptions, rooms: Vec<Str>) {
        self.publish_request(
            nsp,
            &Request {
                uid: Some(self.uid.clone()),
                kind,
                opts: Some(RequestOpts::from_options(opts)),
                rooms: Some(rooms),
                ..Request::default()
            },
        );
    }

    /// A strong handle on this adapter, for the futures of the queries.
    fn me(&self) -> Option<Arc<Inner>> {
        lock(&self.this).upgrade()
    }

    fn publish_response(&self, nsp: &str, response: String) {
        self.enqueue(
            wire::response_channel(&self.key, nsp),
            Bytes::from(response),
        );
    }

    // ----- what arrives -----

    fn on_message(&self, msg: &redis::Msg) {
        let channel = msg.get_channel_name();
        let payload = msg.get_payload_bytes();
        if let Some(rest) = channel.strip_prefix(&self.key) {
            if rest.starts_with('#') {
                self.on_broadcast(channel, Bytes::copy_from_slice(payload));
            } else if let Some(nsp) = rest.strip_prefix("-request#") {
                self.on_request(nsp.strip_suffix('#').unwrap_or(nsp), payload);
            } else if rest.starts_with("-response#") {
                self.on_response(payload);
            }
        }
    }

    fn on_broadcast(&self, channel: &str, payload: Bytes) {
        let msg = match wire::decode_broadcast(&payload) {
            Ok(msg) => msg,
            Err(error) => {
                tracing::warn!(%channel, %error, "ignoring a malformed broadcast");
                return;
            }
        };
        if msg.uid == self.uid {
            return;
        }
        let prefix = format!("{}#{}#", self.key, msg.packet.nsp);
        if !channel.starts_with(&prefix) {
            tracing::debug!(%channel, "ignoring a broadcast for another namespace");
            return;
        }
        self.node.apply(ClusterOp::Broadcast {
            packet: msg.packet,
            opts: msg.opts,
        });
    }

    fn on_request(&self, nsp: &str, payload: &[u8]) {
        if payload.first() != Some(&b'{') {
            // Only broadcasts with acknowledgements come in msgpack.
            return self.on_broadcast_request(nsp, payload);
        }
        let request = match wire::decode_request(payload) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(%nsp, %error, "ignoring a malformed request");
                return;
            }
        };
        if request.uid.as_deref() == Some(self.uid.as_str()) {
            return;
        }
        let nsp_str = Str::from(nsp);
        let id = request.request_id.clone();
        match request.kind {
            request_type::SOCKETS => {
                let Some(id) = id else { return };
                let opts = BroadcastOptions {
                    rooms: request.rooms.unwrap_or_default(),
                    ..BroadcastOptions::default()
                };
                let ids = self.node.socket_ids(nsp, &opts);
                self.publish_response(nsp, wire::socket_ids_response(&id, &ids));
            }
            request_type::ALL_ROOMS => {
                let Some(id) = id else { return };
                let rooms = self.node.rooms(nsp);
                self.publish_response(nsp, wire::rooms_response(&id, &rooms));
            }
            request_type::REMOTE_JOIN | request_type::REMOTE_LEAVE => {
                let join = request.kind == request_type::REMOTE_JOIN;
                if let Some(opts) = request.opts {
                    let rooms = request.rooms.unwrap_or_default();
                    let opts = opts.into_options();
                    self.node.apply(if join {
                        ClusterOp::AddSockets {
                            nsp: nsp_str,
                            opts,
                            rooms,
                        }
                    } else {
                        ClusterOp::DelSockets {
                            nsp: nsp_str,
                            opts,
                            rooms,
                        }
                    });
                } else if let (Some(sid), Some(room)) = (request.sid, request.room)
                    && self.node.join_or_leave(nsp, &sid, &room, join)
                    && let Some(id) = id
                {
                    self.publish_response(nsp, wire::done_response(&id));
                }
            }
            request_type::REMOTE_DISCONNECT => {
                let close = request.close.unwrap_or(false);
                if let Some(opts) = request.opts {
                    self.node.apply(ClusterOp::DisconnectSockets {
                        nsp: nsp_str,
                        opts: opts.into_options(),
                        close,
                    });
                } else if let Some(sid) = request.sid {
                    // A socket id is a room of its own.
                    let opts = BroadcastOptions::default().to(sid.as_str());
                    if self.node.socket_ids(nsp, &opts).is_empty() {
                        return;
                    }
                    self.node.apply(ClusterOp::DisconnectSockets {
                        nsp: nsp_str,
                        opts,
                        close,
                    });
                    if let Some(id) = id {
                        self.publish_response(nsp, wire::done_response(&id));
                    }
                }
            }
            request_type::REMOTE_FETCH => {
                let Some(id) = id else { return };
                let opts = request.opts.unwrap_or_default().into_options();
                let sockets = self.node.fetch_sockets(nsp, &opts);
                self.publish_response(nsp, wire::fetch_response(&id, &sockets));
            }
            request_type::SERVER_SIDE_EMIT => {
                let Some(serde_json::Value::Array(data)) = request.data else {
                    tracing::warn!(%nsp, "ignoring a server-side emit without data");
                    return;
                };
                let ack = id.map(|id| {
                    let me = self.me();
                    let nsp = nsp.to_owned();
                    ServerAck::new(move |value| {
                        if let Some(me) = me {
                            let response = wire::server_side_response(&id, value);
                            me.publish_response(&nsp, response);
                        }
                    })
                });
                self.node.server_side_emit(nsp, data, ack);
            }
            kind => {
                tracing::debug!(%nsp, kind, "ignoring a request this adapter does not carry");
            }
        }
    }

    fn on_response(&self, payload: &[u8]) {
        if payload.first() != Some(&b'{') {
            match wire::decode_msgpack_response(payload) {
                Ok(response) => {
                    if response.kind == request_type::BROADCAST_ACK
                        && let Some(ack) = response.ack
                    {
                        self.on_ack(&response.request_id, None, Some(ack));
                    }
                }
                Err(error) => tracing::warn!(%error, "ignoring a malformed response"),
            }
            return;
        }
        let response = match wire::decode_response(payload) {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(%error, "ignoring a malformed response");
                return;
            }
        };
        if response.kind == Some(request_type::BROADCAST_CLIENT_COUNT) {
            if let Some(id) = &response.request_id {
                self.on_ack(id, Some(response.client_count.unwrap_or(0)), None);
            }
            return;
        }
        let Some(id) = response.request_id else {
            return;
        };
        let mut pending = lock(&self.pending);
        let Some(entry) = pending.get_mut(&id) else {
            return;
        };
        entry.remaining = entry.remaining.saturating_sub(1);
        if response.kind == Some(request_type::SERVER_SIDE_EMIT) {
            entry
                .answer
                .responses
                .push(response.data.unwrap_or(serde_json::Value::Null));
        }
        if let Some(sockets) = response.sockets {
            match serde_json::from_value::<Vec<RemoteSocket>>(sockets) {
                Ok(sockets) => entry.answer.sockets.extend(sockets),
                Err(error) => tracing::warn!(%error, "ignoring malformed sockets in a response"),
            }
        }
        for room in response.rooms.into_iter().flatten() {
            match room {
                serde_json::Value::String(s) => entry.answer.rooms.push(Str::from(s)),
                serde_json::Value::Number(n) => {
                    entry.answer.rooms.push(Str::from(n.to_string()));
                }
                _ => {}
            }
        }
        if entry.remaining == 0
            && let Some(entry) = pending.remove(&id)
            && let Some(done) = entry.done
        {
            let _ = done.send(entry.answer);
        }
    }

    /// A client count or an acknowledgement for a broadcast of ours.
    fn on_ack(&self, id: &str, count: Option<usize>, ack: Option<Payload>) {
        let mut requests = lock(&self.ack_requests);
        let Some(request) = requests.get_mut(id) else {
            return;
        };
        if let Some(count) = count {
            request.counts = request.counts.saturating_sub(1);
            request.expected += count;
        }
        if let Some(ack) = ack {
            request.acks.push(ack);
        }
        if request.complete()
            && let Some(request) = requests.remove(id)
            && let Some(done) = request.done
        {
            let _ = done.send(request.acks);
        }
    }

    /// Another node's broadcast with acknowledgements: send it to the local
    /// sockets, tell how many, then pass each acknowledgement on.
    fn on_broadcast_request(&self, nsp: &str, payload: &[u8]) {
        let request = match wire::decode_broadcast_request(&Bytes::copy_from_slice(payload)) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(%nsp, %error, "ignoring a malformed request");
                return;
            }
        };
        if request.uid == self.uid || *request.packet.nsp != *nsp {
            return;
        }
        let timeout = request.timeout.unwrap_or(self.requests_timeout);
        let (count, mut acks) =
            self.node
                .broadcast_with_ack(request.packet, &request.opts, timeout);
        self.publish_response(nsp, wire::client_count_response(&request.request_id, count));
        let Some(me) = self.me() else { return };
        let nsp = nsp.to_owned();
        tokio::spawn(async move {
            while let Some(ack) = acks.next().await {
                if let Ok(ack) = ack {
                    me.enqueue(
                        wire::response_channel(&me.key, &nsp),
                        wire::ack_response(&request.request_id, &ack),
                    );
                }
            }
        });
    }

    // ----- queries -----

    async fn numsub(&self, nsp: &str) -> Result<usize, AdapterError> {
        let Some(mut conn) = self.connection().await else {
            return Err(AdapterError::Transport("Redis unreachable".into()));
        };
        let reply: Result<(String, usize), _> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(wire::request_channel(&self.key, nsp))
            .query_async(&mut conn)
            .await;
        match reply {
            Ok((_, n)) => Ok(n),
            Err(e) => {
                self.connection_failed(&e);
                Err(AdapterError::Transport(e.to_string()))
            }
        }
    }

    /// Asks the other nodes; waits for every answer or the timeout.
    async fn ask(
        &self,
        nsp: &str,
        mut request: Request,
        what: &'static str,
    ) -> Result<Answer, AdapterError> {
        let others = self.numsub(nsp).await?.saturating_sub(1);
        if others == 0 {
            return Ok(Answer::default());
        }
        let id = format!("{}{}", self.uid, new_id());
        let (done, rx) = oneshot::channel();
        lock(&self.pending).insert(
            id.clone(),
            Pending {
                remaining: others,
                answer: Answer::default(),
                done: Some(done),
            },
        );
        request.uid = Some(self.uid.clone());
        request.request_id = Some(id.clone());
        self.publish_request(nsp, &request);
        match tokio::time::timeout(self.requests_timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            _ => {
                lock(&self.pending).remove(&id);
                Err(AdapterError::Timeout(what))
            }
        }
    }
}

impl Adapter for Inner {
    fn stats(&self) -> Option<AdapterStats> {
        let capacity = self.pub_tx.max_capacity();
        let mut stats = AdapterStats::default();
        stats.queue_depth = (capacity - self.pub_tx.capacity()) as u64;
        stats.queue_capacity = capacity as u64;
        stats.reconnects = self.reconnects.load(Ordering::Relaxed);
        stats.dropped = self.dropped.load(Ordering::Relaxed);
        Some(stats)
    }

    fn add_namespace(&self, nsp: &str) {
        if lock(&self.namespaces).insert(nsp.to_owned()) {
            let _ = self.ns_tx.send(nsp.to_owned());
        }
    }

    fn publish(&self, op: ClusterOp) {
        match op {
            ClusterOp::Broadcast { packet, opts } => {
                let channel = wire::broadcast_channel(&self.key, &packet.nsp, &opts);
                self.enqueue(channel, wire::encode_broadcast(&self.uid, &packet, &opts));
            }
            ClusterOp::AddSockets { nsp, opts, rooms } => {
                self.publish_rooms(&nsp, request_type::REMOTE_JOIN, &opts, rooms);
            }
            ClusterOp::DelSockets { nsp, opts, rooms } => {
                self.publish_rooms(&nsp, request_type::REMOTE_LEAVE, &opts, rooms);
            }
            ClusterOp::DisconnectSockets { nsp, opts, close } => {
                self.publish_request(
                    &nsp,
                    &Request {
                        uid: Some(self.uid.clone()),
                        kind: request_type::REMOTE_DISCONNECT,
                        opts: Some(RequestOpts::from_options(&opts)),
                        close: Some(close),
                        ..Request::default()
                    },
                );
            }
            // This adapter keeps no sessions: it does not own recovery.
            ClusterOp::PersistSession { .. } => {}
        }
    }

    fn fetch_sockets(
        &self,
        nsp: Str,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<RemoteSocket>, AdapterError>> {
        let this = self.me();
        Box::pin(async move {
            let Some(this) = this else {
                return Ok(Vec::new());
            };
            let request = Request {
                kind: request_type::REMOTE_FETCH,
                opts: Some(RequestOpts::from_options(&opts)),
                ..Request::default()
            };
            Ok(this.ask(&nsp, request, "fetchSockets").await?.sockets)
        })
    }

    fn all_rooms(&self, nsp: Str) -> BoxFuture<'static, Result<Vec<Str>, AdapterError>> {
        let this = self.me();
        Box::pin(async move {
            let Some(this) = this else {
                return Ok(Vec::new());
            };
            let request = Request {
                kind: request_type::ALL_ROOMS,
                ..Request::default()
            };
            Ok(this.ask(&nsp, request, "allRooms").await?.rooms)
        })
    }

    fn server_count(&self, nsp: Str) -> BoxFuture<'static, Result<usize, AdapterError>> {
        let this = self.me();
        Box::pin(async move {
            match this {
                Some(this) => this.numsub(&nsp).await,
                None => Ok(1),
            }
        })
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>> {
        let this = self.me();
        Box::pin(async move {
            let Some(this) = this else {
                return Ok(Vec::new());
            };
            let nsp = packet.nsp.clone();
            let others = this.numsub(&nsp).await?.saturating_sub(1);
            if others == 0 {
                return Ok(Vec::new());
            }
            let id = format!("{}{}", this.uid, new_id());
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
            this.enqueue(
                wire::request_channel(&this.key, &nsp),
                wire::encode_broadcast_request(&this.uid, &id, &packet, &opts, timeout),
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
        let request = Request {
            kind: request_type::SERVER_SIDE_EMIT,
            data: Some(serde_json::Value::Array(data)),
            ..Request::default()
        };
        if !with_ack {
            self.publish_request(
                &nsp,
                &Request {
                    uid: Some(self.uid.clone()),
                    ..request
                },
            );
            return Box::pin(async { Ok(Vec::new()) });
        }
        let this = self.me();
        Box::pin(async move {
            let Some(this) = this else {
                return Ok(Vec::new());
            };
            Ok(this.ask(&nsp, request, "serverSideEmit").await?.responses)
        })
    }
}

async fn publisher(inner: Arc<Inner>, mut rx: mpsc::Receiver<(String, Bytes)>) {
    // One warning per outage, not one per message.
    let mut dropping = false;
    while let Some((channel, payload)) = rx.recv().await {
        let Some(mut conn) = inner.connection().await else {
            if !dropping {
                tracing::warn!(
                    "Redis unreachable; messages for the cluster are dropped until it is back"
                );
                dropping = true;
            }
            tracing::debug!(%channel, "message for the cluster dropped");
            inner.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let sent: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(payload.as_ref())
            .query_async(&mut conn)
            .await;
        match sent {
            Ok(_) if dropping => {
                tracing::info!("publishing to Redis again");
                dropping = false;
            }
            Ok(_) => {}
            Err(e) => {
                // The message went down with the connection.
                inner.dropped.fetch_add(1, Ordering::Relaxed);
                inner.connection_failed(&e);
            }
        }
    }
}

async fn subscriber(
    inner: Arc<Inner>,
    mut pubsub: Option<PubSub>,
    mut ns_rx: mpsc::UnboundedReceiver<String>,
) {
    let mut backoff = MIN_BACKOFF;
    let mut alive = tokio::time::interval(Duration::from_secs(1));
    loop {
        let ps = match pubsub.take() {
            Some(ps) => ps,
            None => match inner.subscribe_all().await {
                Ok(ps) => {
                    tracing::info!(url = %inner.url, "resubscribed to Redis");
                    inner.reconnects.fetch_add(1, Ordering::Relaxed);
                    backoff = MIN_BACKOFF;
                    ps
                }
                Err(error) => {
                    tracing::warn!(%error, ?backoff, "cannot resubscribe to Redis; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(inner.max_backoff);
                    if !inner.node.is_alive() {
                        return;
                    }
                    continue;
                }
            },
        };
        let (mut sink, mut stream) = ps.split();
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => inner.on_message(&msg),
                    None => break,
                },
                Some(nsp) = ns_rx.recv() => {
                    if let Err(error) = sink.subscribe(inner.channels(&nsp)).await {
                        tracing::warn!(%error, %nsp, "cannot subscribe");
                    }
                }
                _ = alive.tick() => {
                    if !inner.node.is_alive() {
                        return;
                    }
                }
            }
        }
        tracing::warn!(url = %inner.url, "lost the Redis subscription; reconnecting");
    }
}
