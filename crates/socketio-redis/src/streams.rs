//! The Redis Streams adapter: `@socket.io/redis-streams-adapter` 0.3.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use socketio_cluster_adapter::{ClusterNode, Route, Transport, random_id};
use socketio_tokio::{AdapterError, SocketIo};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::RedisAdapterError;
use crate::streams_wire::{entry_fields, entry_message, is_ephemeral, pubsub_payload};

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
/// namespace's channel. Connection state recovery across servers (the
/// reference's session store in Redis) is not carried.
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
        }
    }

    /// This node's id in the messages.
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
    /// dropped with a warning. Local delivery is never held up.
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
        let uid = random_id();
        let transport = Streams {
            prefix: self.prefix,
            stream: self.stream,
            uid: uid.clone(),
            commands: commands.clone(),
            pub_tx,
            ns_tx,
            namespaces: Mutex::new(HashSet::new()),
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
        let tasks = vec![
            tokio::spawn(publisher(node.clone(), commands, self.max_len, pub_rx)),
            tokio::spawn(reader(node.clone(), reading, reader_conn, offset)),
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
}

/// The transport.
struct Streams {
    prefix: String,
    stream: String,
    uid: String,
    commands: Arc<Commands>,
    pub_tx: mpsc::Sender<Outgoing>,
    ns_tx: mpsc::UnboundedSender<String>,
    namespaces: Mutex<HashSet<String>>,
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
        if self.pub_tx.try_send(outgoing).is_err() {
            tracing::warn!("publish queue full; message for the cluster dropped");
        }
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

/// The command connection, made again after an error.
struct Commands {
    client: redis::Client,
    timeout: Duration,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Commands {
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
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
                    .await?;
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
        result
    }
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

async fn publisher(
    node: Arc<ClusterNode<Streams>>,
    commands: Arc<Commands>,
    max_len: u64,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    // One warning per outage, not one per message.
    let mut failing = false;
    while let Some(outgoing) = rx.recv().await {
        let sent = match outgoing {
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
                commands.query::<String>(&cmd).await.map(drop)
            }
        };
        match sent {
            Ok(()) if failing => {
                tracing::info!("publishing to Redis again");
                failing = false;
            }
            Ok(()) => {}
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "cannot publish; messages for the cluster are dropped until Redis is back");
                }
                failing = true;
            }
        }
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

/// Reads the stream from `offset` on, for as long as the server lives;
/// connects again with backoff, and goes on from the last entry read.
async fn reader(
    node: Arc<ClusterNode<Streams>>,
    reading: Reading,
    conn: MultiplexedConnection,
    mut offset: String,
) {
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
                for (id, fields) in read_entries(&reply) {
                    if let Some(message) = entry_message(&fields) {
                        node.handle(&message);
                    }
                    offset = id;
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
