//! The Redis Streams adapter: `@socket.io/redis-streams-adapter` 0.3.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use socketio_cluster_adapter::wire::{self, Body};
use socketio_cluster_adapter::{ClusterNode, Route, Transport, random_id};
use socketio_tokio::socketio_proto::{
    BroadcastOptions, ClusterOp, ClusterSession, MissedBroadcast,
};
use socketio_tokio::{AdapterError, RestoredSession, SocketIo, Str};
use tokio::sync::{OwnedMutexGuard, mpsc, watch};
use tokio::task::JoinHandle;

use crate::RedisAdapterError;
use crate::streams_wire::{
    StreamId, decode_session, encode_session, entry_fields, entry_message, is_ephemeral,
    pubsub_payload,
};

/// Options of a [`StreamsRedisAdapter`], then [`attach`](StreamsRedisAdapterBuilder::attach).
#[derive(Debug, Clone)]
pub struct StreamsRedisAdapterBuilder {
    url: String,
    stream: String,
    prefix: String,
    max_len: u64,
    read_count: u64,
    block: Duration,
    requests_timeout: Duration,
    connect_timeout: Duration,
    queue: usize,
    session_key_prefix: String,
}

/// The Redis Streams adapter attached to a server: wire-compatible with
/// `@socket.io/redis-streams-adapter` 0.3 (one stream, plain pub/sub).
///
/// Broadcasts, room changes and disconnections are appended to the stream
/// `socket.io` (`XADD`, trimmed to about 10,000 entries), which every node
/// reads (`XREAD BLOCK`) from where it last read: a node whose connection
/// drops for a moment reads what it missed when it is back, as long as the
/// stream still holds it. Requests that need answers (`fetchSockets`,
/// server-side emits, broadcasts with acknowledgements) go through pub/sub
/// on `<prefix>#<nsp>#`, their answers on the asking node's
/// `<prefix>#<nsp>#<uid>#`; the server count is `PUBSUB NUMSUB` of the
/// namespace's channel.
///
/// With connection state recovery on (the server's
/// [`Recovery`](socketio_tokio::Recovery)), the adapter owns it as the
/// reference does: the offsets clients hold are the stream's entry ids, and
/// every node delivers a stored broadcast, its own too, when it reads it
/// from the stream, so that every node's clients get them in the stream's
/// order. The session of a socket that drops is kept in Redis under
/// `sio:session:<pid>` for the recovery window; a client that comes back to
/// any node (a Node.js one too) gets it, and the broadcasts after its
/// offset read back from the stream.
#[derive(Debug)]
pub struct StreamsRedisAdapter {
    node: Arc<ClusterNode<Streams>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StreamsRedisAdapter {
    /// A builder for Redis at `url` (`redis://host:port/db`).
    pub fn builder(url: impl Into<String>) -> StreamsRedisAdapterBuilder {
        StreamsRedisAdapterBuilder {
            url: url.into(),
            stream: "socket.io".to_owned(),
            prefix: "socket.io".to_owned(),
            max_len: 10_000,
            read_count: 100,
            block: Duration::from_secs(5),
            requests_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            queue: 4096,
            session_key_prefix: "sio:session:".to_owned(),
        }
    }

    /// This node's id in the messages.
    pub fn uid(&self) -> &str {
        self.node.uid()
    }

    /// Stops publishing and receiving (the server then reaches only its own
    /// sockets: with recovery on, its broadcasts are delivered here without
    /// an offset, as when Redis is away).
    pub fn close(&self) {
        let transport = self.node.transport();
        transport.closed.store(true, Ordering::Release);
        // The publisher hands what waits in its queue to local delivery,
        // then ends: woken in case it waits for the queue.
        let _ = transport.pub_tx.try_send(Outgoing::Wake);
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

impl StreamsRedisAdapterBuilder {
    /// The stream: `socket.io` by default (the reference's `streamName`).
    pub fn stream_name(mut self, stream: impl Into<String>) -> Self {
        self.stream = stream.into();
        self
    }

    /// The prefix of the pub/sub channels: `socket.io` by default (the
    /// reference's `channelPrefix`).
    pub fn channel_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// About how many entries the stream keeps: 10,000 by default (the
    /// reference's `maxLen`).
    pub fn max_len(mut self, max_len: u64) -> Self {
        self.max_len = max_len.max(1);
        self
    }

    /// The prefix of the keys of the sessions kept for recovery:
    /// `sio:session:` by default (the reference's `sessionKeyPrefix`).
    pub fn session_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.session_key_prefix = prefix.into();
        self
    }

    /// How long a cluster query waits for the other nodes: 5 s by default.
    pub fn requests_timeout(mut self, timeout: Duration) -> Self {
        self.requests_timeout = timeout;
        self
    }

    /// How long connecting to Redis may take: 5 s by default.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many messages may wait to be published: 4096 by default; beyond,
    /// dropped with a warning (with recovery on, a broadcast that waited
    /// for the stream is delivered to this server's clients all the same,
    /// without an offset). Local delivery is never held up.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue = capacity.max(1);
        self
    }

    /// Connects to Redis, subscribes, starts reading the stream, and makes
    /// `io` one node of the cluster.
    ///
    /// # Errors
    ///
    /// [`RedisAdapterError`] when the URL is invalid, Redis cannot be
    /// reached within the connect timeout, or `io` already has an adapter.
    pub async fn attach(self, io: &SocketIo) -> Result<StreamsRedisAdapter, RedisAdapterError> {
        let client =
            redis::Client::open(self.url.as_str()).map_err(RedisAdapterError::InvalidUrl)?;
        let connect = |response_timeout: Option<Duration>| {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.connect_timeout))
                .set_response_timeout(response_timeout);
            let client = client.clone();
            let url = self.url.clone();
            let timeout = self.connect_timeout;
            async move {
                match tokio::time::timeout(
                    timeout,
                    client.get_multiplexed_async_connection_with_config(&config),
                )
                .await
                {
                    Ok(Ok(conn)) => Ok(conn),
                    Ok(Err(source)) => Err(RedisAdapterError::Connect { url, source }),
                    Err(_) => Err(RedisAdapterError::Timeout(url)),
                }
            }
        };
        let conn = connect(Some(self.requests_timeout)).await?;
        let commands = Arc::new(Commands {
            client: client.clone(),
            timeout: self.requests_timeout,
            conn: tokio::sync::Mutex::new(Some(conn.clone())),
        });
        // Where the stream ends now: this node reads what comes after.
        let mut start = conn.clone();
        let last: redis::Value = redis::cmd("XREVRANGE")
            .arg(&self.stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut start)
            .await
            .map_err(|source| RedisAdapterError::Connect {
                url: self.url.clone(),
                source,
            })?;
        let offset = range_entries(&last)
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |(id, _)| id);
        let reader_conn = connect(Some(self.block + self.requests_timeout)).await?;
        let mut pubsub =
            match tokio::time::timeout(self.connect_timeout, client.get_async_pubsub()).await {
                Ok(Ok(pubsub)) => pubsub,
                Ok(Err(source)) => {
                    return Err(RedisAdapterError::Connect {
                        url: self.url,
                        source,
                    });
                }
                Err(_) => return Err(RedisAdapterError::Timeout(self.url)),
            };
        let (pub_tx, pub_rx) = mpsc::channel(self.queue);
        let (ns_tx, mut ns_rx) = mpsc::unbounded_channel();
        let (unpublished_tx, unpublished_rx) = mpsc::unbounded_channel();
        let uid = random_id();
        let start = StreamId::parse(&offset).unwrap_or_default();
        let (read_tx, read_rx) = watch::channel(start);
        let position = Arc::new(tokio::sync::Mutex::new(offset));
        let transport = Streams {
            prefix: self.prefix,
            stream: self.stream,
            uid: uid.clone(),
            commands: commands.clone(),
            pub_tx,
            unpublished_tx,
            ns_tx,
            namespaces: Mutex::new(HashSet::new()),
            recovery: io
                .config()
                .recovery
                .as_ref()
                .map(|r| r.max_disconnection_duration),
            missed_bounds: io
                .config()
                .recovery
                .as_ref()
                .map_or((0, 0), |r| (r.max_missed_packets, r.max_missed_bytes)),
            session_key_prefix: self.session_key_prefix,
            position: position.clone(),
            read: read_rx,
            requests_timeout: self.requests_timeout,
            closed: AtomicBool::new(false),
            away: Arc::new(Mutex::new(None)),
            persisting: Arc::new(tokio::sync::Semaphore::new(PERSISTING)),
        };
        let node = ClusterNode::new(uid, io.local_node(), transport, self.requests_timeout, None);
        io.attach_adapter(node.clone())
            .map_err(|_| RedisAdapterError::AlreadyAttached)?;
        let mut namespaces = Vec::new();
        while let Ok(nsp) = ns_rx.try_recv() {
            if let Err(source) = pubsub.subscribe(node.transport().channels(&nsp)).await {
                return Err(RedisAdapterError::Connect {
                    url: self.url,
                    source,
                });
            }
            namespaces.push(nsp);
        }
        let reading = Reading {
            client: client.clone(),
            count: self.read_count,
            block: self.block,
            timeout: self.requests_timeout,
        };
        // Not in `tasks`: once closed, the broadcasts that would have
        // waited for the stream are delivered here through it. It ends
        // with the node.
        tokio::spawn(deliver_unpublished(Arc::downgrade(&node), unpublished_rx));
        // Not in `tasks` either: once closed, it hands what waits in its
        // queue to local delivery, then ends.
        tokio::spawn(publisher(node.clone(), commands, self.max_len, pub_rx));
        let tasks = vec![
            tokio::spawn(reader(
                node.clone(),
                reading,
                reader_conn,
                position,
                read_tx,
            )),
            tokio::spawn(subscriber(
                node.clone(),
                client,
                Some(pubsub),
                namespaces,
                ns_rx,
            )),
        ];
        tracing::info!(uid = %node.uid(), url = %self.url, "redis streams adapter attached");
        Ok(StreamsRedisAdapter {
            node,
            tasks: Mutex::new(tasks),
        })
    }
}

/// What the publisher sends: through pub/sub, or appended to the stream.
enum Outgoing {
    Publish(String, Bytes),
    Append(u64, Bytes),
    /// Nothing to send: wakes the publisher to see that the adapter closed.
    Wake,
}

/// The transport.
struct Streams {
    prefix: String,
    stream: String,
    uid: String,
    commands: Arc<Commands>,
    pub_tx: mpsc::Sender<Outgoing>,
    /// The messages the publish queue had no room for, to be delivered
    /// here if they are broadcasts waiting for the stream (not in
    /// [`Transport::send`], which runs under the endpoint's lock).
    unpublished_tx: mpsc::UnboundedSender<Bytes>,
    ns_tx: mpsc::UnboundedSender<String>,
    namespaces: Mutex<HashSet<String>>,
    /// With recovery on, how long sessions are kept.
    recovery: Option<Duration>,
    /// With recovery on, how many missed packets, and bytes, a session may
    /// replay.
    missed_bounds: (usize, usize),
    session_key_prefix: String,
    /// The id of the last entry delivered here, locked while entries are
    /// delivered and while a session is being given back.
    position: Arc<tokio::sync::Mutex<String>>,
    /// The same, watched.
    read: watch::Receiver<StreamId>,
    requests_timeout: Duration,
    /// Set by [`StreamsRedisAdapter::close`]: nothing goes to Redis any more.
    closed: AtomicBool,
    /// Until when Redis is taken as away, after a command failed: nothing
    /// is sent meanwhile.
    away: Arc<Mutex<Option<Instant>>>,
    /// Room for the sessions being written to Redis at once.
    persisting: Arc<tokio::sync::Semaphore>,
}

impl Streams {
    fn is_away(&self) -> bool {
        lock(&self.away).is_some_and(|until| Instant::now() < until)
    }
}

impl Streams {
    fn channel(&self, nsp: &str) -> String {
        format!("{}#{nsp}#", self.prefix)
    }

    fn channels(&self, nsp: &str) -> Vec<String> {
        let channel = self.channel(nsp);
        vec![format!("{channel}{}#", self.uid), channel]
    }
}

impl Transport for Streams {
    fn add_namespace(&self, nsp: &str) {
        if lock(&self.namespaces).insert(nsp.to_owned()) {
            let _ = self.ns_tx.send(nsp.to_owned());
        }
    }

    fn send(&self, route: Route<'_>, kind: u64, message: Bytes) {
        let outgoing = match route {
            Route::Node { nsp, uid } => {
                Outgoing::Publish(format!("{}{uid}#", self.channel(nsp)), message)
            }
            Route::All { nsp, .. } if is_ephemeral(kind, &message) => {
                Outgoing::Publish(self.channel(nsp), message)
            }
            Route::All { .. } => Outgoing::Append(kind, message),
        };
        if self.closed.load(Ordering::Acquire) {
            if let Outgoing::Append(_, message) = outgoing
                && self.recovery.is_some()
            {
                let _ = self.unpublished_tx.send(message);
            }
            return;
        }
        if let Err(error) = self.pub_tx.try_send(outgoing) {
            if matches!(error, mpsc::error::TrySendError::Full(_)) {
                tracing::warn!("publish queue full; message for the cluster dropped");
            }
            if let Outgoing::Append(_, message) = error.into_inner()
                && self.recovery.is_some()
            {
                let _ = self.unpublished_tx.send(message);
            }
        }
    }

    fn owns_recovery(&self) -> bool {
        self.recovery.is_some()
    }

    fn persist_session(&self, _nsp: &str, session: &ClusterSession) {
        let Some(ttl) = self.recovery else {
            return;
        };
        if self.closed.load(Ordering::Acquire) || self.is_away() {
            tracing::debug!(pid = %session.pid, "Redis is away; a session for recovery dropped");
            return;
        }
        let Ok(permit) = self.persisting.clone().try_acquire_owned() else {
            tracing::warn!(pid = %session.pid, "too many sessions being kept at once; one dropped");
            return;
        };
        let key = format!("{}{}", self.session_key_prefix, session.pid);
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key)
            .arg(encode_session(session))
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        // Not behind the broadcasts waiting in the publish queue: the
        // client may be back on another node within milliseconds. One
        // command per dropped socket, at most `PERSISTING` at once, none
        // while Redis is away.
        let commands = self.commands.clone();
        let away = self.away.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Err(error) = commands.query::<()>(&cmd).await {
                tracing::warn!(%error, %key, "cannot keep a session for recovery");
                *lock(&away) = Some(Instant::now() + AWAY);
            }
            drop(permit);
        });
    }

    fn restore_session(
        &self,
        nsp: Str,
        pid: Str,
        offset: Str,
    ) -> BoxFuture<'static, Result<Option<RestoredSession>, AdapterError>> {
        let restore = Restore {
            commands: self.commands.clone(),
            stream: self.stream.clone(),
            key: format!("{}{pid}", self.session_key_prefix),
            position: self.position.clone(),
            read: self.read.clone(),
            timeout: self.requests_timeout,
            bounds: self.missed_bounds,
        };
        Box::pin(async move { restore.run(&nsp, &offset).await })
    }

    fn server_count(&self, nsp: &str) -> BoxFuture<'static, Result<usize, AdapterError>> {
        let commands = self.commands.clone();
        let channel = self.channel(nsp);
        Box::pin(async move {
            let mut cmd = redis::cmd("PUBSUB");
            cmd.arg("NUMSUB").arg(&channel);
            let (_, n): (String, usize) = commands
                .query(&cmd)
                .await
                .map_err(|e| AdapterError::Transport(e.to_string()))?;
            Ok(n)
        })
    }
}

/// What giving back a session needs.
struct Restore {
    commands: Arc<Commands>,
    stream: String,
    key: String,
    position: Arc<tokio::sync::Mutex<String>>,
    read: watch::Receiver<StreamId>,
    timeout: Duration,
    /// The most missed packets, and bytes, a session may replay.
    bounds: (usize, usize),
}

/// How many entries one `XRANGE` of a session's missed broadcasts reads.
const RANGE_COUNT: usize = 100;

/// How many times its replay's bound in bytes a session's missed entries
/// may weigh as the stream holds them (with their rooms and options) before
/// reading stops: a bound on what giving back one session holds.
const RAW_BYTES_PER_REPLAYED: usize = 8;

impl Restore {
    /// The session, with the broadcasts of namespace `nsp` after `offset`
    /// up to the last entry delivered here, and the reader held until the
    /// socket is back (so that each entry reaches it once: from this list
    /// or from the reader).
    ///
    /// Reading stops past the recovery's bounds (one broadcast more than
    /// it may replay, or [`RAW_BYTES_PER_REPLAYED`] times its bytes as the
    /// stream holds them): the client then gets a new session, never a
    /// replay with holes. Within them, the endpoint checks the replay's
    /// bytes as encoded for the client.
    async fn run(
        mut self,
        nsp: &str,
        offset: &str,
    ) -> Result<Option<RestoredSession>, AdapterError> {
        let err = |e: redis::RedisError| AdapterError::Transport(e.to_string());
        // An entry id, as the reference requires.
        let Some(at) = StreamId::parse(offset) else {
            return Ok(None);
        };
        // The client may have got entries from another node that this one
        // has not read yet: wait until it has.
        let reader = &mut self.read;
        let caught_up = async move { reader.wait_for(|r| *r >= at).await.is_ok() };
        if !tokio::time::timeout(self.timeout, caught_up)
            .await
            .unwrap_or(false)
        {
            return Ok(None);
        }
        // What the reader has delivered so far: read without its lock, so
        // that giving back many sessions at once does not stop it.
        let delivered = *self.read.borrow();
        let delivered = format!("{}-{}", delivered.0, delivered.1);
        let mut getdel = redis::cmd("GETDEL");
        getdel.arg(&self.key);
        let raw: Option<String> = self.commands.query(&getdel).await.map_err(err)?;
        // The offset must still be in the stream: else what followed it
        // may be trimmed, and the replay would have holes.
        let mut exists = redis::cmd("XRANGE");
        exists.arg(&self.stream).arg(offset).arg(offset);
        let found: redis::Value = self.commands.query(&exists).await.map_err(err)?;
        let (Some(raw), false) = (raw, range_entries(&found).is_empty()) else {
            return Ok(None);
        };
        let Some(mut session) = decode_session(&raw) else {
            tracing::warn!(key = %self.key, "ignoring a session that cannot be read");
            return Ok(None);
        };
        let mut missed = Missed {
            rooms: session.rooms.iter().map(|r| r.to_string()).collect(),
            list: Vec::new(),
            bytes: 0,
            bounds: self.bounds,
        };
        if !self
            .read_missed(nsp, offset, &delivered, &mut missed)
            .await?
        {
            tracing::debug!(key = %self.key, "a session missed more than it may replay");
            return Ok(None);
        }
        // Then, under the reader's lock, what it delivered since: held until
        // the socket is back, so that each entry reaches it once. Bounded
        // too: the reader holds it for a while at most.
        let Ok(hold) = tokio::time::timeout(self.timeout, self.position.clone().lock_owned()).await
        else {
            return Ok(None);
        };
        let hold: OwnedMutexGuard<String> = hold;
        if !self
            .read_missed(nsp, &delivered, &hold, &mut missed)
            .await?
        {
            tracing::debug!(key = %self.key, "a session missed more than it may replay");
            return Ok(None);
        }
        session.missed = missed.list;
        Ok(Some(RestoredSession {
            session,
            hold: Some(Box::new(hold)),
        }))
    }

    /// Adds to `missed` the broadcasts of namespace `nsp` after entry
    /// `after` up to entry `upto` that reached its rooms; false once past
    /// its bounds.
    async fn read_missed(
        &self,
        nsp: &str,
        after: &str,
        upto: &str,
        missed: &mut Missed,
    ) -> Result<bool, AdapterError> {
        let err = |e: redis::RedisError| AdapterError::Transport(e.to_string());
        if StreamId::parse(upto) <= StreamId::parse(after) {
            return Ok(true);
        }
        let rooms: HashSet<&str> = missed.rooms.iter().map(String::as_str).collect();
        let (max_packets, max_bytes) = missed.bounds;
        let mut from = format!("({after}");
        loop {
            let mut range = redis::cmd("XRANGE");
            range
                .arg(&self.stream)
                .arg(&from)
                .arg(upto)
                .arg("COUNT")
                .arg(RANGE_COUNT);
            let reply: redis::Value = self.commands.query(&range).await.map_err(err)?;
            let entries = range_entries(&reply);
            let full = entries.len() == RANGE_COUNT;
            for (id, fields) in &entries {
                let Some(broadcast) = missed_broadcast(nsp, id, fields) else {
                    continue;
                };
                if broadcast.opts.volatile || !reaches(&broadcast.opts, &rooms) {
                    continue;
                }
                missed.bytes = missed
                    .bytes
                    .saturating_add(fields.iter().map(|(k, v)| k.len() + v.len()).sum());
                missed.list.push(broadcast);
                if missed.list.len() > max_packets
                    || missed.bytes > max_bytes.saturating_mul(RAW_BYTES_PER_REPLAYED)
                {
                    return Ok(false);
                }
            }
            match entries.last() {
                Some((last, _)) if full && last != upto => from = format!("({last}"),
                _ => return Ok(true),
            }
        }
    }
}

/// The missed broadcasts of a session being given back, as they are read.
struct Missed {
    /// The session's rooms.
    rooms: Vec<String>,
    list: Vec<MissedBroadcast>,
    /// Their weight as the stream holds them.
    bytes: usize,
    /// The most missed packets, and bytes, a session may replay.
    bounds: (usize, usize),
}

/// Whether a socket in `rooms` was sent a broadcast for `opts` (the
/// reference's rule).
fn reaches(opts: &BroadcastOptions, rooms: &HashSet<&str>) -> bool {
    let included = opts.rooms.is_empty() || opts.rooms.iter().any(|r| rooms.contains(&**r));
    included && !opts.except.iter().any(|r| rooms.contains(&**r))
}

/// The broadcast without acknowledgements of namespace `nsp` that a stream
/// entry holds, if it does.
fn missed_broadcast(nsp: &str, id: &str, fields: &[(String, String)]) -> Option<MissedBroadcast> {
    let field = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    if field("nsp")? != nsp || field("type")? != "3" {
        return None;
    }
    let message = wire::decode_in(&entry_message(fields)?, None).ok()?;
    match message.body {
        Body::Broadcast {
            packet,
            opts,
            request_id: None,
            ..
        } => Some(MissedBroadcast {
            packet,
            opts,
            offset: Str::from(id),
        }),
        _ => None,
    }
}

/// The command connection, made again after an error.
struct Commands {
    client: redis::Client,
    timeout: Duration,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Commands {
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        self.query_checked(cmd).await.map_err(|failed| failed.error)
    }

    /// Runs `cmd`; on failure, says too whether Redis may have carried it
    /// out.
    async fn query_checked<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Failed> {
        let mut slot = self.conn.lock().await;
        let mut conn = match slot.as_ref() {
            Some(conn) => conn.clone(),
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout));
                let conn = self
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(|error| Failed {
                        error,
                        maybe_done: false,
                    })?;
                *slot = Some(conn.clone());
                conn
            }
        };
        drop(slot);
        let result = cmd.query_async(&mut conn).await;
        if let Err(error) = &result
            && (error.is_io_error()
                || error.is_connection_dropped()
                || error.is_unrecoverable_error())
        {
            *self.conn.lock().await = None;
        }
        result.map_err(|error| Failed {
            // An error reply: Redis did not carry it out. Anything else
            // (no answer in time, the connection lost) after the command
            // may have reached it: no one can tell.
            maybe_done: !matches!(
                error.kind(),
                redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
            ),
            error,
        })
    }
}

/// A command that failed.
struct Failed {
    error: redis::RedisError,
    /// Whether Redis may have carried it out all the same.
    maybe_done: bool,
}

type Entry = (String, Vec<(String, String)>);

fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// One entry: `[id, [field, value, ...]]`.
fn entry(v: &redis::Value) -> Option<Entry> {
    let redis::Value::Array(parts) = v else {
        return None;
    };
    let id = text(parts.first()?)?;
    let redis::Value::Array(kv) = parts.get(1)? else {
        return None;
    };
    let fields = kv
        .chunks(2)
        .filter_map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?)))
        .collect();
    Some((id, fields))
}

/// The entries of an `XRANGE` or `XREVRANGE` reply.
fn range_entries(reply: &redis::Value) -> Vec<Entry> {
    match reply {
        redis::Value::Array(items) => items.iter().filter_map(entry).collect(),
        _ => Vec::new(),
    }
}

/// The entries of an `XREAD` reply, `[[stream, entries]]` (nil: none).
fn read_entries(reply: &redis::Value) -> Vec<Entry> {
    match reply {
        redis::Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                redis::Value::Array(pair) => pair.get(1),
                _ => None,
            })
            .flat_map(range_entries)
            .collect(),
        _ => Vec::new(),
    }
}

/// How long the publisher takes Redis as away after a command failed,
/// before it tries again.
const AWAY: Duration = Duration::from_secs(1);

/// How many sessions may be being written to Redis at once; beyond, a
/// socket that drops keeps no session for recovery (its client gets a new
/// one).
const PERSISTING: usize = 256;

async fn publisher(
    node: Arc<ClusterNode<Streams>>,
    commands: Arc<Commands>,
    max_len: u64,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    // One warning per outage, not one per message.
    let mut failing = false;
    // After a failure Redis is taken as away for a while: what waits is not
    // sent, so that a Redis that does not answer costs the requests timeout
    // once, not once per message.
    while let Some(outgoing) = rx.recv().await {
        if node.transport().closed.load(Ordering::Acquire) {
            // Closed: what waits is delivered here, without an offset.
            let mut outgoing = Some(outgoing);
            while let Some(o) = outgoing.take().or_else(|| rx.try_recv().ok()) {
                if let Outgoing::Append(_, message) = &o {
                    unpublished(&node, message);
                }
            }
            return;
        }
        if node.transport().is_away() {
            // Certainly not in the stream: delivered here at once.
            if let Outgoing::Append(_, message) = &outgoing {
                unpublished(&node, message);
            }
            continue;
        }
        let sent = match outgoing {
            Outgoing::Wake => continue,
            Outgoing::Publish(channel, message) => {
                let Some(payload) = pubsub_payload(&message) else {
                    continue;
                };
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(&channel).arg(payload);
                commands.query::<i64>(&cmd).await.map(drop)
            }
            Outgoing::Append(kind, message) => {
                let Some(fields) = entry_fields(kind, &message) else {
                    unpublished(&node, &message);
                    continue;
                };
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&node.transport().stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(max_len)
                    .arg("*");
                for (k, v) in fields {
                    cmd.arg(k).arg(v);
                }
                match commands.query_checked::<String>(&cmd).await {
                    Ok(_) => Ok(()),
                    // Delivered here only when the stream certainly does
                    // not have it: else the reader may read it back, and
                    // it would be delivered twice. (If Redis did not
                    // append it after all, it is lost here as on the other
                    // servers.)
                    Err(Failed {
                        error,
                        maybe_done: false,
                    }) => {
                        unpublished(&node, &message);
                        Err(error)
                    }
                    Err(Failed { error, .. }) => Err(error),
                }
            }
        };
        match sent {
            Ok(()) if failing => {
                tracing::info!("publishing to Redis again");
                failing = false;
                *lock(&node.transport().away) = None;
            }
            Ok(()) => {}
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "cannot publish; messages for the cluster are dropped until Redis is back");
                }
                failing = true;
                *lock(&node.transport().away) = Some(Instant::now() + AWAY);
            }
        }
    }
}

/// Delivers here the messages the publish queue had no room for.
async fn deliver_unpublished(
    node: Weak<ClusterNode<Streams>>,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
) {
    while let Some(message) = rx.recv().await {
        let Some(node) = node.upgrade() else {
            return;
        };
        unpublished(&node, &message);
    }
}

/// A message the stream did not take: a broadcast this node deferred
/// until the stream gave it back is delivered here without an offset.
fn unpublished(node: &ClusterNode<Streams>, message: &[u8]) {
    if !node.transport().owns_recovery() {
        return;
    }
    if let Ok(wire::Message {
        body:
            Body::Broadcast {
                packet,
                opts,
                request_id: None,
                ..
            },
        ..
    }) = wire::decode_in(message, None)
    {
        node.local_node()
            .apply_unpublished(ClusterOp::Broadcast { packet, opts });
    }
}

/// How the reader connects and reads.
struct Reading {
    client: redis::Client,
    count: u64,
    block: Duration,
    timeout: Duration,
}

const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Reads the stream from `position` on, for as long as the server lives;
/// connects again with backoff, and goes on from the last entry read.
/// Each entry is handed over with its id under the lock of `position`,
/// which then moves to it (and `read` with it).
async fn reader(
    node: Arc<ClusterNode<Streams>>,
    reading: Reading,
    conn: MultiplexedConnection,
    position: Arc<tokio::sync::Mutex<String>>,
    read: watch::Sender<StreamId>,
) {
    let mut offset = position.lock().await.clone();
    let mut conn = Some(conn);
    let mut backoff = MIN_BACKOFF;
    loop {
        if !node.local_node().is_alive() {
            return;
        }
        let mut c = match conn.take() {
            Some(c) => c,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(reading.timeout))
                    .set_response_timeout(Some(reading.block + reading.timeout));
                match reading
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                {
                    Ok(c) => c,
                    Err(error) => {
                        tracing::warn!(%error, ?backoff, "cannot read the stream; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
        };
        let reply: Result<redis::Value, _> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(reading.count)
            .arg("BLOCK")
            .arg(u64::try_from(reading.block.as_millis()).unwrap_or(5000))
            .arg("STREAMS")
            .arg(&node.transport().stream)
            .arg(&offset)
            .query_async(&mut c)
            .await;
        match reply {
            Ok(reply) => {
                backoff = MIN_BACKOFF;
                let entries = read_entries(&reply);
                if !entries.is_empty() {
                    let mut at = position.lock().await;
                    for (id, fields) in entries {
                        if let Some(message) = entry_message(&fields) {
                            node.handle_at(&message, &id);
                        }
                        offset = id;
                    }
                    at.clone_from(&offset);
                    drop(at);
                    if let Some(id) = StreamId::parse(&offset) {
                        read.send_replace(id);
                    }
                }
                conn = Some(c);
            }
            Err(error) => {
                tracing::warn!(%error, "lost the stream; reading again from {offset}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Receives the requests and answers (pub/sub), subscribing again after
/// the connection is lost.
async fn subscriber(
    node: Arc<ClusterNode<Streams>>,
    client: redis::Client,
    mut pubsub: Option<redis::aio::PubSub>,
    mut namespaces: Vec<String>,
    mut ns_rx: mpsc::UnboundedReceiver<String>,
) {
    let mut backoff = MIN_BACKOFF;
    let mut alive = tokio::time::interval(Duration::from_secs(1));
    loop {
        let ps = match pubsub.take() {
            Some(ps) => ps,
            None => {
                let attempt = async {
                    let mut ps = client.get_async_pubsub().await?;
                    for nsp in &namespaces {
                        ps.subscribe(node.transport().channels(nsp)).await?;
                    }
                    Ok::<_, redis::RedisError>(ps)
                };
                match attempt.await {
                    Ok(ps) => {
                        tracing::info!("subscribed to Redis again");
                        backoff = MIN_BACKOFF;
                        ps
                    }
                    Err(error) => {
                        tracing::warn!(%error, ?backoff, "cannot subscribe to Redis; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        if !node.local_node().is_alive() {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        let (mut sink, mut stream) = ps.split();
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => node.handle(msg.get_payload_bytes()),
                    None => break,
                },
                Some(nsp) = ns_rx.recv() => {
                    if let Err(error) = sink.subscribe(node.transport().channels(&nsp)).await {
                        tracing::warn!(%error, %nsp, "cannot subscribe");
                    }
                    namespaces.push(nsp);
                }
                _ = alive.tick() => {
                    if !node.local_node().is_alive() {
                        return;
                    }
                }
            }
        }
        tracing::warn!("lost the Redis subscription; subscribing again");
    }
}
