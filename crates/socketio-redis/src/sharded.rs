//! The sharded adapter: `createShardedAdapter` of `@socket.io/redis-adapter`
//! over a Redis Cluster (Redis 7 sharded pub/sub).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, FuturesUnordered, StreamExt};
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, RedisResult};
use socketio_cluster_adapter::{ClusterNode, Route, Transport, random_id};
use socketio_tokio::{AdapterError, RoomEvent, SocketIo};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::RedisAdapterError;

/// Options of a [`ShardedRedisAdapter`], then [`attach`](ShardedRedisAdapterBuilder::attach).
#[derive(Debug, Clone)]
pub struct ShardedRedisAdapterBuilder {
    nodes: Vec<String>,
    key: String,
    requests_timeout: Duration,
    connect_timeout: Duration,
    queue: usize,
    mode: SubscriptionMode,
}

/// Which channels the nodes subscribe to (the reference's
/// `subscriptionMode`); every node of a cluster must use the same.
/// [`Dynamic`](SubscriptionMode::Dynamic) by default, as in the reference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionMode {
    /// The namespace's channel and the node's response channel only:
    /// every broadcast goes to every node (`"static"`).
    Static,
    /// Also a channel per room, `<key>#<nsp>#<room>#`, subscribed while the
    /// room has members on this node: a broadcast to one room (not a
    /// socket's own, nor one whose name is 20 characters long, as socket ids
    /// are) goes only to the nodes where it has members (`"dynamic"`, the
    /// default, here as in the reference).
    #[default]
    Dynamic,
    /// As [`Dynamic`](SubscriptionMode::Dynamic), for sockets' own rooms
    /// too (`"dynamic-private"`).
    DynamicPrivate,
}

/// The sharded Redis adapter attached to a server: wire-compatible with
/// `createShardedAdapter` of `@socket.io/redis-adapter` 8.x, in each of its
/// subscription modes ([`SubscriptionMode`]).
///
/// Each namespace has one channel, `<key>#<nsp>#`, which every node
/// subscribes to with SSUBSCRIBE and publishes to with SPUBLISH, and each
/// node a response channel, `<key>#<nsp>#<uid>#`. Redis Cluster places
/// each channel on the shard of its hash slot, so the traffic of different
/// namespaces spreads over the shards. The server count is `PUBSUB
/// SHARDNUMSUB` of the namespace's channel, summed over the cluster's nodes.
///
/// In the dynamic modes, each room also has a channel, `<key>#<nsp>#<room>#`,
/// which a node subscribes to when the room gets its first member there and
/// leaves when its last one goes (the server's room events, so attach the
/// adapter before sockets join rooms); a broadcast to exactly one room,
/// without acknowledgements, goes on the room's channel.
///
/// Subscriptions that Redis ends (a slot that moves, a node that leaves)
/// are made again at once. Those lost silently (a node that restarted and
/// refused the client's automatic resubscription while it rejoined the
/// cluster) are asserted again in the background: the namespaces' channels
/// every second, the rooms' channels 64 a second in rotation, so with `N`
/// room channels one lost silently is back within `ceil(N / 64)` seconds
/// (about 2.5 minutes with 10,000 rooms); after a sign of trouble (a
/// publish or a subscription that failed, a subscription that Redis ended),
/// every channel is asserted again at the next second.
#[derive(Debug)]
pub struct ShardedRedisAdapter {
    node: Arc<ClusterNode<Sharded>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ShardedRedisAdapter {
    /// A builder for the Redis Cluster that `nodes` (`redis://host:port`
    /// URLs, one node or more) belong to.
    pub fn builder<I, S>(nodes: I) -> ShardedRedisAdapterBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ShardedRedisAdapterBuilder {
            nodes: nodes.into_iter().map(Into::into).collect(),
            key: "socket.io".to_owned(),
            requests_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            queue: 4096,
            mode: SubscriptionMode::default(),
        }
    }

    /// This node's id on the channels.
    pub fn uid(&self) -> &str {
        self.node.uid()
    }

    /// Stops publishing and receiving (the server then reaches only its own
    /// sockets).
    pub fn close(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

impl ShardedRedisAdapterBuilder {
    /// The prefix of the channels: `socket.io` by default (the reference's
    /// `channelPrefix`).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Which channels the nodes subscribe to: [`SubscriptionMode::Dynamic`]
    /// by default, as in the reference. Give every node of the cluster, Node
    /// servers too, the same.
    pub fn subscription_mode(mut self, mode: SubscriptionMode) -> Self {
        self.mode = mode;
        self
    }

    /// How long a cluster query waits for the other nodes: 5 s by default.
    pub fn requests_timeout(mut self, timeout: Duration) -> Self {
        self.requests_timeout = timeout;
        self
    }

    /// How long connecting to the cluster may take: 5 s by default.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many messages may wait to be published, how many may be in
    /// flight to Redis at once, and how many received messages may wait to
    /// be handled: 4096 each by default. Beyond, a message is dropped with a
    /// warning; local delivery is never held up.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue = capacity.max(1);
        self
    }

    /// Connects to the cluster, subscribes, and makes `io` one node of it.
    ///
    /// # Errors
    ///
    /// [`RedisAdapterError`] when a URL is invalid, the cluster cannot be
    /// reached within the connect timeout, or `io` already has an adapter.
    pub async fn attach(self, io: &SocketIo) -> Result<ShardedRedisAdapter, RedisAdapterError> {
        let url = self.nodes.join(",");
        let (msg_tx, msg_rx) = mpsc::channel::<Bytes>(self.queue);
        // The channels whose subscription ended: the confirmations of this
        // node's own SUNSUBSCRIBE, and those Redis took away (a slot that
        // moved, a node that leaves). One per subscription at most, so
        // unbounded, and apart from the messages, which they never crowd out.
        let (ended_tx, ended_rx) = mpsc::unbounded_channel::<String>();
        let push = move |info: PushInfo| -> Result<(), ()> {
            match (info.kind, info.data.first(), info.data.get(1)) {
                (PushKind::SMessage, _, Some(redis::Value::BulkString(payload))) => {
                    let queued = msg_tx.try_send(Bytes::copy_from_slice(payload));
                    if queued.is_err() {
                        tracing::warn!("receive queue full; a message of the cluster was dropped");
                    }
                }
                (PushKind::SUnsubscribe, Some(redis::Value::BulkString(channel)), _) => {
                    let _ = ended_tx.send(String::from_utf8_lossy(channel).into_owned());
                }
                _ => {}
            }
            Ok(())
        };
        let client =
            redis::cluster::ClusterClientBuilder::new(self.nodes.iter().map(String::as_str))
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(push)
                .connection_timeout(self.connect_timeout)
                .response_timeout(self.requests_timeout)
                .build()
                .map_err(RedisAdapterError::InvalidUrl)?;
        let conn =
            match tokio::time::timeout(self.connect_timeout, client.get_async_connection()).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(source)) => return Err(RedisAdapterError::Connect { url, source }),
                Err(_) => return Err(RedisAdapterError::Timeout(url)),
            };
        let (pub_tx, pub_rx) = mpsc::channel(self.queue);
        let (ns_tx, mut ns_rx) = mpsc::unbounded_channel();
        let uid = random_id();
        let transport = Sharded {
            key: self.key,
            uid: uid.clone(),
            conn: conn.clone(),
            pub_tx,
            ns_tx,
            namespaces: Mutex::new(HashSet::new()),
            mode: self.mode,
            rooms: Mutex::new(RoomChannels::default()),
            rooms_changed: Notify::new(),
        };
        let node = ClusterNode::new(uid, io.local_node(), transport, self.requests_timeout, None);
        io.attach_adapter(node.clone())
            .map_err(|_| RedisAdapterError::AlreadyAttached)?;
        if self.mode != SubscriptionMode::Static {
            let weak = Arc::downgrade(&node);
            io.on_room_event(move |event| {
                if let Some(node) = weak.upgrade() {
                    node.transport().room_event(event);
                }
            });
        }
        // The namespaces declared so far: subscribed before this returns, so
        // that the other nodes count this one at once.
        let mut sub = conn.clone();
        let mut declared = Vec::new();
        while let Ok(nsp) = ns_rx.try_recv() {
            declared.push(nsp.clone());
            // One channel at a time: they live in different hash slots.
            for channel in node.transport().channels(&nsp) {
                let subscribed =
                    tokio::time::timeout(self.connect_timeout, sub.ssubscribe(channel));
                match subscribed.await {
                    Ok(Ok(())) => {}
                    Ok(Err(source)) => return Err(RedisAdapterError::Connect { url, source }),
                    Err(_) => return Err(RedisAdapterError::Timeout(url)),
                }
            }
        }
        let trouble = Arc::new(AtomicBool::new(false));
        let publisher = tokio::spawn(publisher(conn.clone(), pub_rx, self.queue, trouble.clone()));
        let receiver = tokio::spawn(receiver(node.clone(), msg_rx));
        let namespace_channels = declared
            .iter()
            .flat_map(|nsp| node.transport().channels(nsp))
            .collect();
        let subscriber = Subscriber {
            node: node.clone(),
            conn,
            namespace_channels,
            rooms: BTreeSet::new(),
            cursor: None,
            trouble,
            failing: false,
        };
        let subscriber = tokio::spawn(subscriber.run(ns_rx, ended_rx));
        tracing::info!(uid = %node.uid(), %url, "sharded redis adapter attached");
        Ok(ShardedRedisAdapter {
            node,
            tasks: Mutex::new(vec![publisher, receiver, subscriber]),
        })
    }
}

/// The transport: SPUBLISH on the namespace's channel or on a node's
/// response channel.
struct Sharded {
    key: String,
    uid: String,
    conn: ClusterConnection,
    pub_tx: mpsc::Sender<(String, Bytes)>,
    ns_tx: mpsc::UnboundedSender<String>,
    namespaces: Mutex<HashSet<String>>,
    mode: SubscriptionMode,
    rooms: Mutex<RoomChannels>,
    /// Woken when the room channels wanted change.
    rooms_changed: Notify,
}

/// The room channels of the dynamic modes.
#[derive(Debug, Default)]
struct RoomChannels {
    /// Rooms created whose first member is not known yet (namespace, room):
    /// a room named by the socket that creates it is its own.
    created: HashSet<(String, String)>,
    /// The channels of the rooms that have members here.
    wanted: HashSet<String>,
    /// The channels that entered or left `wanted` since the subscriber last
    /// looked (or whose subscription or unsubscription failed).
    changed: HashSet<String>,
}

impl RoomChannels {
    fn want(&mut self, channel: String) -> bool {
        let inserted = self.wanted.insert(channel.clone());
        if inserted {
            self.changed.insert(channel);
        }
        inserted
    }

    fn unwant(&mut self, channel: String) -> bool {
        let removed = self.wanted.remove(&channel);
        if removed {
            self.changed.insert(channel);
        }
        removed
    }
}

impl Sharded {
    fn channel(&self, nsp: &str) -> String {
        format!("{}#{nsp}#", self.key)
    }

    fn room_channel(&self, nsp: &str, room: &str) -> String {
        format!("{}#{nsp}#{room}#", self.key)
    }

    /// Whether a broadcast to `room` alone goes on the room's channel (the
    /// reference's `computeChannel`; its lengths count UTF-16 units).
    fn uses_room_channel(&self, room: &str) -> bool {
        match self.mode {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => room.encode_utf16().count() != 20,
            SubscriptionMode::DynamicPrivate => true,
        }
    }

    /// Follows the server's rooms: a room's channel is wanted from its
    /// creation to its deletion, a socket's own room only in
    /// [`SubscriptionMode::DynamicPrivate`].
    fn room_event(&self, event: &RoomEvent) {
        let mut rooms = lock(&self.rooms);
        let changed = match event {
            RoomEvent::Created { nsp, room } => match self.mode {
                SubscriptionMode::DynamicPrivate => rooms.want(self.room_channel(nsp, room)),
                _ => {
                    rooms.created.insert((nsp.to_string(), room.to_string()));
                    false
                }
            },
            RoomEvent::Joined { nsp, room, sid } => {
                let key = (nsp.to_string(), room.to_string());
                rooms.created.remove(&key)
                    && room != sid
                    && rooms.want(self.room_channel(nsp, room))
            }
            RoomEvent::Deleted { nsp, room } => {
                rooms.created.remove(&(nsp.to_string(), room.to_string()));
                rooms.unwant(self.room_channel(nsp, room))
            }
            _ => false,
        };
        drop(rooms);
        if changed {
            self.rooms_changed.notify_one();
        }
    }

    /// Whether the room channel `channel` is wanted.
    fn wants_room(&self, channel: &str) -> bool {
        lock(&self.rooms).wanted.contains(channel)
    }

    /// The room channels to subscribe to (true) or leave (false) since the
    /// last call.
    fn room_changes(&self) -> Vec<(String, bool)> {
        let mut rooms = lock(&self.rooms);
        let changed = std::mem::take(&mut rooms.changed);
        changed
            .into_iter()
            .map(|channel| {
                let wanted = rooms.wanted.contains(&channel);
                (channel, wanted)
            })
            .collect()
    }

    /// Hands room channels back to the next [`room_changes`](Self::room_changes).
    fn retry_rooms(&self, channels: impl IntoIterator<Item = String>) {
        lock(&self.rooms).changed.extend(channels);
    }

    /// The channels this node subscribes to for `nsp`.
    fn channels(&self, nsp: &str) -> Vec<String> {
        let channel = self.channel(nsp);
        vec![format!("{channel}{}#", self.uid), channel]
    }
}

impl Transport for Sharded {
    fn add_namespace(&self, nsp: &str) {
        if lock(&self.namespaces).insert(nsp.to_owned()) {
            let _ = self.ns_tx.send(nsp.to_owned());
        }
    }

    fn send(&self, route: Route<'_>, _kind: u64, message: Bytes) {
        let channel = match route {
            Route::All {
                nsp,
                room: Some(room),
            } if self.uses_room_channel(room) => self.room_channel(nsp, room),
            Route::All { nsp, .. } => self.channel(nsp),
            Route::Node { nsp, uid } => format!("{}{uid}#", self.channel(nsp)),
        };
        if let Err(mpsc::error::TrySendError::Full((channel, _))) =
            self.pub_tx.try_send((channel, message))
        {
            tracing::warn!(%channel, "publish queue full; message for the cluster dropped");
        }
    }

    fn server_count(&self, nsp: &str) -> BoxFuture<'static, Result<usize, AdapterError>> {
        let mut conn = self.conn.clone();
        let channel = self.channel(nsp);
        Box::pin(async move {
            // Sent to every node of the cluster, the counts summed.
            let counts: HashMap<String, usize> = redis::cmd("PUBSUB")
                .arg("SHARDNUMSUB")
                .arg(&channel)
                .query_async(&mut conn)
                .await
                .map_err(|e| AdapterError::Transport(e.to_string()))?;
            Ok(counts.get(&channel).copied().unwrap_or(0))
        })
    }
}

/// Publishes the queued messages, up to `capacity` in flight at once: a
/// shard that does not answer holds up its own messages (each waits out the
/// response timeout), not those of the healthy shards. They are submitted
/// in queue order, and the cluster connection sends them to each node in
/// that order, so a channel's messages keep their order while its node is
/// healthy. While `capacity` are in flight, the queue is not read (it
/// fills, then drops).
async fn publisher(
    conn: ClusterConnection,
    mut rx: mpsc::Receiver<(String, Bytes)>,
    capacity: usize,
    trouble: Arc<AtomicBool>,
) {
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    // One warning per outage, not one per message.
    let mut failing = false;
    while open || !in_flight.is_empty() {
        tokio::select! {
            biased;
            Some((channel, sent)) = in_flight.next(), if !in_flight.is_empty() => {
                match sent {
                    Ok(_) if failing => {
                        tracing::info!("publishing to the Redis Cluster again");
                        failing = false;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        if !failing {
                            tracing::warn!(%error, %channel, "cannot publish; messages for the cluster are dropped until it is back");
                        }
                        failing = true;
                        trouble.store(true, Ordering::Relaxed);
                    }
                }
            }
            msg = rx.recv(), if open && in_flight.len() < capacity => match msg {
                Some((channel, payload)) => in_flight.push(publish(conn.clone(), channel, payload)),
                None => open = false,
            },
        }
    }
}

/// SPUBLISH of `payload` on `channel`.
async fn publish(
    mut conn: ClusterConnection,
    channel: String,
    payload: Bytes,
) -> (String, RedisResult<i64>) {
    let sent = redis::cmd("SPUBLISH")
        .arg(&channel)
        .arg(payload.as_ref())
        .query_async(&mut conn)
        .await;
    (channel, sent)
}

/// Hands the messages received to the node, until the server is gone.
async fn receiver(node: Arc<ClusterNode<Sharded>>, mut msg_rx: mpsc::Receiver<Bytes>) {
    let mut tick = tokio::time::interval(RESUBSCRIBE);
    loop {
        tokio::select! {
            msg = msg_rx.recv() => match msg {
                Some(msg) => node.handle(&msg),
                None => return,
            },
            _ = tick.tick() => {
                if !node.local_node().is_alive() {
                    return;
                }
            }
        }
    }
}

/// How often the subscriptions are asserted again: with
/// [`ROOMS_PER_TICK`], how long a node that lost one silently (its Redis
/// node restarted and refused the automatic resubscription while rejoining
/// the cluster) may stay deaf on it.
const RESUBSCRIBE: Duration = Duration::from_secs(1);

/// How many room channels are asserted again at each [`RESUBSCRIBE`] tick,
/// in rotation (all of them after a sign of trouble).
const ROOMS_PER_TICK: usize = 64;

/// How many subscriptions or unsubscriptions may be in flight at once.
const SUBSCRIBING: usize = 64;

/// Keeps the subscriptions: the namespaces' channels, and the rooms'
/// channels of the dynamic modes.
struct Subscriber {
    node: Arc<ClusterNode<Sharded>>,
    conn: ClusterConnection,
    /// The channels of the namespaces (and this node's response channels).
    namespace_channels: Vec<String>,
    /// The room channels subscribed to.
    rooms: BTreeSet<String>,
    /// The last room channel asserted again.
    cursor: Option<String>,
    /// Set on a sign of trouble: everything is asserted again at the next
    /// tick.
    trouble: Arc<AtomicBool>,
    /// Whether the last attempt to subscribe failed (one warning per outage).
    failing: bool,
}

impl Subscriber {
    async fn run(
        mut self,
        mut ns_rx: mpsc::UnboundedReceiver<String>,
        mut ended_rx: mpsc::UnboundedReceiver<String>,
    ) {
        let mut tick = tokio::time::interval(RESUBSCRIBE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let ok = tokio::select! {
                () = self.node.transport().rooms_changed.notified() => self.follow_rooms().await,
                Some(nsp) = ns_rx.recv() => {
                    let channels = self.node.transport().channels(&nsp);
                    self.namespace_channels.extend(channels.iter().cloned());
                    self.subscribe(channels).await
                }
                Some(channel) = ended_rx.recv() => {
                    if !self.still_wanted(&channel) {
                        // This node left it (or is about to).
                        continue;
                    }
                    // Redis ended it: subscribe again where it now lives,
                    // and everything else at the next tick.
                    tracing::debug!(%channel, "subscription ended by Redis; subscribing again");
                    self.trouble.store(true, Ordering::Relaxed);
                    self.subscribe(vec![channel]).await
                }
                _ = tick.tick() => {
                    if !self.node.local_node().is_alive() {
                        return;
                    }
                    let all = self.trouble.swap(false, Ordering::Relaxed);
                    let followed = self.follow_rooms().await;
                    // SSUBSCRIBE to a channel already subscribed to changes
                    // nothing; to one whose subscription was lost, it
                    // restores it.
                    let mut channels = self.namespace_channels.clone();
                    if all {
                        channels.extend(self.rooms.iter().cloned());
                    } else {
                        channels.extend(self.next_rooms());
                    }
                    // Bounded by a tick, so that a shard that does not
                    // answer (each SSUBSCRIBE to it waits out the timeout)
                    // does not keep room changes waiting; what did not
                    // finish is tried again at the next tick.
                    let asserted = tokio::time::timeout(RESUBSCRIBE, self.subscribe(channels));
                    asserted.await.unwrap_or(false) && followed
                }
            };
            if !ok {
                self.trouble.store(true, Ordering::Relaxed);
            }
            if ok && self.failing {
                tracing::info!("subscribed to the Redis Cluster again");
            }
            self.failing = !ok;
        }
    }

    /// Whether `channel`, whose subscription ended, is still to be
    /// subscribed to.
    fn still_wanted(&self, channel: &str) -> bool {
        self.namespace_channels.iter().any(|c| c == channel)
            || (self.rooms.contains(channel) && self.node.transport().wants_room(channel))
    }

    /// The next [`ROOMS_PER_TICK`] room channels in rotation.
    fn next_rooms(&mut self) -> Vec<String> {
        let start = self.cursor.take();
        let mut batch: Vec<String> = match &start {
            Some(cursor) => self
                .rooms
                .range::<String, _>((Bound::Excluded(cursor), Bound::Unbounded))
                .take(ROOMS_PER_TICK)
                .cloned()
                .collect(),
            None => self.rooms.iter().take(ROOMS_PER_TICK).cloned().collect(),
        };
        if let Some(cursor) = &start {
            // Round again from the first, up to where this round started.
            let more = ROOMS_PER_TICK - batch.len();
            batch.extend(self.rooms.range::<String, _>(..=cursor).take(more).cloned());
        }
        self.cursor = batch.last().cloned();
        batch
    }

    /// Subscribes to `channels` (a few at a time); false when Redis
    /// refused one.
    async fn subscribe(&self, channels: Vec<String>) -> bool {
        let results: Vec<(String, RedisResult<()>)> = stream::iter(channels)
            .map(|channel| {
                let mut conn = self.conn.clone();
                async move {
                    let subscribed = conn.ssubscribe(&channel).await;
                    (channel, subscribed)
                }
            })
            .buffer_unordered(SUBSCRIBING)
            .collect()
            .await;
        let mut ok = true;
        for (channel, subscribed) in results {
            if let Err(error) = subscribed {
                if ok && !self.failing {
                    tracing::warn!(%error, %channel, "cannot subscribe; retrying");
                }
                ok = false;
            }
        }
        ok
    }

    /// Subscribes to the room channels now wanted and leaves those no
    /// longer wanted, as they changed since the last call; false when Redis
    /// refused one (it is tried again at the next tick).
    async fn follow_rooms(&mut self) -> bool {
        let todo: Vec<(String, bool)> = self
            .node
            .transport()
            .room_changes()
            .into_iter()
            .filter(|(channel, wanted)| *wanted != self.rooms.contains(channel))
            .collect();
        if todo.is_empty() {
            return true;
        }
        let results: Vec<(String, bool, RedisResult<()>)> = stream::iter(todo)
            .map(|(channel, wanted)| {
                let mut conn = self.conn.clone();
                async move {
                    let done = if wanted {
                        conn.ssubscribe(&channel).await
                    } else {
                        conn.sunsubscribe(&channel).await
                    };
                    (channel, wanted, done)
                }
            })
            .buffer_unordered(SUBSCRIBING)
            .collect()
            .await;
        let mut failed = Vec::new();
        for (channel, wanted, done) in results {
            match done {
                Ok(()) if wanted => {
                    self.rooms.insert(channel);
                }
                Ok(()) => {
                    self.rooms.remove(&channel);
                }
                Err(error) => {
                    tracing::debug!(%error, %channel, wanted, "cannot follow a room's channel; retrying");
                    failed.push(channel);
                }
            }
        }
        let ok = failed.is_empty();
        self.node.transport().retry_rooms(failed);
        ok
    }
}
