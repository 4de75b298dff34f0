//! The adapter: a listening connection, a command connection, and the tasks
//! that publish, receive and clean up.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use socketio_cluster_adapter::{ClusterNode, Heartbeat, Route, Transport, random_id};
use socketio_tokio::{AdapterError, SocketIo};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use crate::wire;

/// The adapter could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresAdapterError {
    /// The connection string is not one.
    #[error("invalid Postgres connection string: {0}")]
    InvalidConfig(#[source] tokio_postgres::Error),
    /// The table name is not a plain SQL identifier.
    #[error("invalid table name {0:?}: letters, digits, `_` and `.` only")]
    InvalidTable(String),
    /// Postgres cannot be reached (or refused the connection or a statement).
    #[error("Postgres: {0}")]
    Connect(#[source] tokio_postgres::Error),
    /// Postgres did not answer within the connect timeout.
    #[error("cannot connect to Postgres: timed out")]
    Timeout,
    /// The server already has an adapter.
    #[error("the server already has an adapter")]
    AlreadyAttached,
}

/// Options of a [`PostgresAdapter`], then [`attach`](PostgresAdapterBuilder::attach).
#[derive(Debug, Clone)]
pub struct PostgresAdapterBuilder {
    config: String,
    prefix: String,
    table: String,
    threshold: usize,
    cleanup_interval: Duration,
    requests_timeout: Duration,
    connect_timeout: Duration,
    heartbeat: Heartbeat,
    queue: usize,
    create_table: bool,
}

/// A Postgres adapter attached to a server: wire-compatible with
/// `@socket.io/postgres-adapter` 0.5 and `@socket.io/postgres-emitter`.
///
/// Each namespace has one channel, `<prefix>#<nsp>`: every node LISTENs to
/// it and publishes with `pg_notify`. A message of 8000 bytes or more (the
/// limit of a notification's payload), or one that holds binary data, is
/// written to the attachments table as msgpack, and only
/// `{uid, type, attachmentId}` is notified; the receivers read it from the
/// table, and every node deletes the rows older than the cleanup interval.
/// The nodes count each other by their heartbeats.
#[derive(Debug)]
pub struct PostgresAdapter {
    node: Arc<ClusterNode<Pg>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PostgresAdapter {
    /// A builder for the Postgres that `config` designates (a connection
    /// string: `host=127.0.0.1 port=5432 user=postgres` or
    /// `postgresql://user@host:port/db`).
    pub fn builder(config: impl Into<String>) -> PostgresAdapterBuilder {
        PostgresAdapterBuilder {
            config: config.into(),
            prefix: "socket.io".to_owned(),
            table: "socket_io_attachments".to_owned(),
            threshold: 8000,
            cleanup_interval: Duration::from_secs(30),
            requests_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            heartbeat: Heartbeat::default(),
            queue: 4096,
            create_table: true,
        }
    }

    /// This node's id in the messages.
    pub fn uid(&self) -> &str {
        self.node.uid()
    }

    /// Tells the other nodes that this one leaves, then stops (the server
    /// then reaches only its own sockets).
    pub async fn close(&self) {
        self.node.announce_close();
        // Give the publisher a moment to send the goodbye.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

impl PostgresAdapterBuilder {
    /// The prefix of the channels: `socket.io` by default (the reference's
    /// `channelPrefix`).
    pub fn channel_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The attachments table: `socket_io_attachments` by default (the
    /// reference's `tableName`).
    pub fn table_name(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// From how many bytes a message goes through the attachments table:
    /// 8000 by default, the most a notification carries (the reference's
    /// `payloadThreshold`).
    pub fn payload_threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes.clamp(1, 8000);
        self
    }

    /// How old attachments are deleted, and how often: 30 s by default
    /// (the reference's `cleanupInterval`).
    pub fn cleanup_interval(mut self, interval: Duration) -> Self {
        self.cleanup_interval = interval;
        self
    }

    /// How long a cluster query waits for the other nodes: 5 s by default.
    pub fn requests_timeout(mut self, timeout: Duration) -> Self {
        self.requests_timeout = timeout;
        self
    }

    /// How long connecting to Postgres may take: 5 s by default.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The heartbeats by which the nodes count each other (5 s, gone after
    /// 10 s by default, as the reference's `heartbeatInterval` and
    /// `heartbeatTimeout`).
    pub fn heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// How many messages may wait to be published, and how many received
    /// ones to be handled: 4096 each by default. Beyond, a message is
    /// dropped with a warning; local delivery is never held up.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue = capacity.max(1);
        self
    }

    /// Whether to create the attachments table when it does not exist: yes
    /// by default (the reference leaves it to the application).
    pub fn create_table(mut self, create: bool) -> Self {
        self.create_table = create;
        self
    }

    /// Connects to Postgres, listens, and makes `io` one node of the cluster.
    ///
    /// # Errors
    ///
    /// [`PostgresAdapterError`] when the connection string or the table
    /// name is invalid, Postgres cannot be reached within the connect
    /// timeout or refuses to create the table, or `io` already has an
    /// adapter.
    pub async fn attach(self, io: &SocketIo) -> Result<PostgresAdapter, PostgresAdapterError> {
        let config: Config = self
            .config
            .parse()
            .map_err(PostgresAdapterError::InvalidConfig)?;
        if self.table.is_empty()
            || !self
                .table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(PostgresAdapterError::InvalidTable(self.table));
        }
        let commands = Commands {
            config: config.clone(),
            timeout: self.connect_timeout,
            client: tokio::sync::Mutex::new(None),
            retry_at: Mutex::new(None),
        };
        let client = commands.connect().await?;
        if self.create_table {
            let create = format!(
                "CREATE TABLE IF NOT EXISTS {} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)",
                self.table
            );
            if let Err(error) = client.batch_execute(&create).await {
                // Two nodes creating it at once: one of them fails, and the
                // table is there.
                let exists = client
                    .query_opt("SELECT to_regclass($1)::text", &[&self.table])
                    .await
                    .ok()
                    .flatten()
                    .and_then(|row| row.get::<_, Option<String>>(0))
                    .is_some();
                if !exists {
                    return Err(PostgresAdapterError::Connect(error));
                }
            }
        }
        *commands.client.lock().await = Some(client);
        let (listener_client, listener_conn) = connect(&config, self.connect_timeout).await?;
        let (pub_tx, pub_rx) = mpsc::channel(self.queue);
        let (ns_tx, mut ns_rx) = mpsc::unbounded_channel();
        let uid = random_id();
        let transport = Pg {
            prefix: self.prefix,
            pub_tx,
            ns_tx,
            namespaces: Mutex::new(HashSet::new()),
        };
        let node = ClusterNode::new(
            uid,
            io.local_node(),
            transport,
            self.requests_timeout,
            Some(self.heartbeat),
        );
        // Listen before the node announces itself, so that the answers to
        // its first heartbeat are heard.
        let (notify_tx, notify_rx) = mpsc::channel(self.queue);
        let (ended_tx, ended_rx) = oneshot::channel();
        let drain = tokio::spawn(drive(listener_conn, notify_tx.clone(), ended_tx));
        io.attach_adapter(node.clone())
            .map_err(|_| PostgresAdapterError::AlreadyAttached)?;
        let mut channels = Vec::new();
        while let Ok(nsp) = ns_rx.try_recv() {
            let channel = node.transport().channel(&nsp);
            listener_client
                .batch_execute(&listen(&channel))
                .await
                .map_err(PostgresAdapterError::Connect)?;
            channels.push(channel);
        }
        let shared = Arc::new(Shared {
            node: node.clone(),
            commands,
            table: self.table,
            threshold: self.threshold,
        });
        let mut tasks = vec![drain];
        tasks.push(tokio::spawn(publisher(shared.clone(), pub_rx)));
        tasks.push(tokio::spawn(receiver(shared.clone(), notify_rx)));
        tasks.push(tokio::spawn(listener(
            shared.clone(),
            config,
            self.connect_timeout,
            Some((listener_client, ended_rx)),
            channels,
            ns_rx,
            notify_tx,
        )));
        tasks.push(tokio::spawn(cleanup(shared.clone(), self.cleanup_interval)));
        tasks.extend(node.start_heartbeat());
        tracing::info!(uid = %node.uid(), "postgres adapter attached");
        Ok(PostgresAdapter {
            node,
            tasks: Mutex::new(tasks),
        })
    }
}

/// `LISTEN "<channel>"`, the name quoted.
fn listen(channel: &str) -> String {
    format!("LISTEN \"{}\"", channel.replace('"', "\"\""))
}

async fn connect(
    config: &Config,
    timeout: Duration,
) -> Result<
    (
        Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    PostgresAdapterError,
> {
    match tokio::time::timeout(timeout, config.connect(NoTls)).await {
        Ok(Ok(pair)) => Ok(pair),
        Ok(Err(e)) => Err(PostgresAdapterError::Connect(e)),
        Err(_) => Err(PostgresAdapterError::Timeout),
    }
}

/// Drives a connection, handing its notifications over; tells when it ends.
async fn drive(
    mut conn: tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    notify_tx: mpsc::Sender<(String, String)>,
    ended: oneshot::Sender<()>,
) {
    loop {
        let msg = std::future::poll_fn(|cx| conn.poll_message(cx)).await;
        match msg {
            Some(Ok(AsyncMessage::Notification(n))) => {
                let received = (n.channel().to_owned(), n.payload().to_owned());
                if notify_tx.try_send(received).is_err() {
                    tracing::warn!("receive queue full; a message of the cluster was dropped");
                }
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                tracing::warn!(%error, "lost the listening connection to Postgres");
                break;
            }
            None => break,
        }
    }
    let _ = ended.send(());
}

/// The command connection: one client shared by the tasks, made again after
/// an error (not before a backoff).
struct Commands {
    config: Config,
    timeout: Duration,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    retry_at: Mutex<Option<(Instant, Duration)>>,
}

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Commands {
    async fn connect(&self) -> Result<Arc<Client>, PostgresAdapterError> {
        let (client, conn) = connect(&self.config, self.timeout).await?;
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::warn!(%error, "lost the command connection to Postgres");
            }
        });
        Ok(Arc::new(client))
    }

    /// The live client, or a new one unless the last attempt failed less
    /// than a backoff ago.
    async fn get(&self) -> Option<Arc<Client>> {
        let mut current = self.client.lock().await;
        if let Some(client) = current.as_ref()
            && !client.is_closed()
        {
            return Some(client.clone());
        }
        *current = None;
        if let Some((at, _)) = *lock(&self.retry_at)
            && Instant::now() < at
        {
            return None;
        }
        match self.connect().await {
            Ok(client) => {
                tracing::info!("reconnected to Postgres");
                *lock(&self.retry_at) = None;
                *current = Some(client.clone());
                Some(client)
            }
            Err(error) => {
                let mut retry = lock(&self.retry_at);
                let backoff = retry.map_or(MIN_BACKOFF, |(_, b)| (b * 2).min(MAX_BACKOFF));
                *retry = Some((Instant::now() + backoff, backoff));
                tracing::warn!(%error, "Postgres unreachable");
                None
            }
        }
    }
}

/// What the tasks share.
struct Shared {
    node: Arc<ClusterNode<Pg>>,
    commands: Commands,
    table: String,
    threshold: usize,
}

/// The transport: `pg_notify` on the namespace's channel (answers too: every
/// node hears them, and only the asking one knows their request id).
struct Pg {
    prefix: String,
    pub_tx: mpsc::Sender<(String, u64, Bytes)>,
    ns_tx: mpsc::UnboundedSender<String>,
    namespaces: Mutex<HashSet<String>>,
}

impl Pg {
    fn channel(&self, nsp: &str) -> String {
        format!("{}#{nsp}", self.prefix)
    }

    /// The namespace whose channel `channel` is.
    fn nsp_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel.strip_prefix(&self.prefix)?.strip_prefix('#')
    }
}

impl Transport for Pg {
    fn add_namespace(&self, nsp: &str) {
        if lock(&self.namespaces).insert(nsp.to_owned()) {
            let _ = self.ns_tx.send(nsp.to_owned());
        }
    }

    fn send(&self, route: Route<'_>, kind: u64, message: Bytes) {
        let nsp = match route {
            Route::All { nsp, .. } | Route::Node { nsp, .. } => nsp,
        };
        if let Err(mpsc::error::TrySendError::Full((channel, _, _))) =
            self.pub_tx.try_send((self.channel(nsp), kind, message))
        {
            tracing::warn!(%channel, "publish queue full; message for the cluster dropped");
        }
    }

    fn server_count(&self, _nsp: &str) -> BoxFuture<'static, Result<usize, AdapterError>> {
        // Not asked: the node counts the others by their heartbeats.
        Box::pin(async { Ok(1) })
    }
}

impl Shared {
    /// Publishes one message: notified as it is, or through the attachments
    /// table when it is msgpack or too large.
    async fn publish(
        &self,
        client: &Client,
        channel: &str,
        kind: u64,
        message: &Bytes,
    ) -> Result<(), tokio_postgres::Error> {
        let text = (message.first() == Some(&b'{') && message.len() < self.threshold)
            .then(|| std::str::from_utf8(message).ok())
            .flatten();
        if let Some(text) = text {
            client
                .execute("SELECT pg_notify($1, $2)", &[&channel, &text])
                .await?;
            return Ok(());
        }
        let Some(payload) = wire::attachment_payload(message) else {
            tracing::warn!("cannot re-encode a message as msgpack; dropped");
            return Ok(());
        };
        let insert = format!(
            "INSERT INTO {} (payload) VALUES ($1) RETURNING id",
            self.table
        );
        let row = client.query_one(&insert, &[&payload]).await?;
        let id: i64 = row.get(0);
        let header = wire::attachment_header(self.node.uid(), kind, id);
        client
            .execute("SELECT pg_notify($1, $2)", &[&channel, &header])
            .await?;
        Ok(())
    }

    /// A notification: the message itself, or the header of an attachment,
    /// read from the table.
    async fn receive(&self, channel: &str, payload: String) {
        // The emitter's messages do not name their namespace: the channel does.
        let nsp = self.node.transport().nsp_of(channel);
        let Some(id) = wire::attachment_id(&payload) else {
            self.node.handle_in(payload.as_bytes(), nsp);
            return;
        };
        // Its own attachments: not worth reading.
        let own = format!("\"uid\":{}", serde_json::Value::from(self.node.uid()));
        if payload.contains(&own) {
            return;
        }
        let Some(client) = self.commands.get().await else {
            tracing::warn!(id, "Postgres unreachable; an attachment was not read");
            return;
        };
        let select = format!("SELECT payload FROM {} WHERE id = $1", self.table);
        match client.query_opt(&select, &[&id]).await {
            Ok(Some(row)) => {
                let bytes: Vec<u8> = row.get(0);
                self.node.handle_in(&bytes, nsp);
            }
            Ok(None) => tracing::warn!(id, "an attachment is gone (cleaned up already?)"),
            Err(error) => tracing::warn!(%error, id, "cannot read an attachment"),
        }
    }
}

async fn publisher(shared: Arc<Shared>, mut rx: mpsc::Receiver<(String, u64, Bytes)>) {
    // One warning per outage, not one per message.
    let mut failing = false;
    while let Some((channel, kind, message)) = rx.recv().await {
        let Some(client) = shared.commands.get().await else {
            if !failing {
                tracing::warn!(
                    "Postgres unreachable; messages for the cluster are dropped until it is back"
                );
                failing = true;
            }
            continue;
        };
        match shared.publish(&client, &channel, kind, &message).await {
            Ok(()) if failing => {
                tracing::info!("publishing to Postgres again");
                failing = false;
            }
            Ok(()) => {}
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, %channel, "cannot publish; messages for the cluster are dropped until Postgres is back");
                }
                failing = true;
            }
        }
    }
}

async fn receiver(shared: Arc<Shared>, mut rx: mpsc::Receiver<(String, String)>) {
    while let Some((channel, payload)) = rx.recv().await {
        shared.receive(&channel, payload).await;
    }
}

/// The listening connection: LISTENs to every namespace's channel, and
/// connects and listens again with backoff when it is lost.
#[allow(clippy::too_many_arguments)]
async fn listener(
    shared: Arc<Shared>,
    config: Config,
    timeout: Duration,
    mut current: Option<(Client, oneshot::Receiver<()>)>,
    mut channels: Vec<String>,
    mut ns_rx: mpsc::UnboundedReceiver<String>,
    notify_tx: mpsc::Sender<(String, String)>,
) {
    let mut backoff = MIN_BACKOFF;
    let mut alive = tokio::time::interval(Duration::from_secs(1));
    loop {
        let (client, mut ended) = match current.take() {
            Some(pair) => pair,
            None => {
                let attempt = async {
                    let (client, conn) = connect(&config, timeout).await?;
                    let (ended_tx, ended_rx) = oneshot::channel();
                    tokio::spawn(drive(conn, notify_tx.clone(), ended_tx));
                    for channel in &channels {
                        client
                            .batch_execute(&listen(channel))
                            .await
                            .map_err(PostgresAdapterError::Connect)?;
                    }
                    Ok::<_, PostgresAdapterError>((client, ended_rx))
                };
                match attempt.await {
                    Ok(pair) => {
                        tracing::info!("listening to Postgres again");
                        backoff = MIN_BACKOFF;
                        pair
                    }
                    Err(error) => {
                        tracing::warn!(%error, ?backoff, "cannot listen to Postgres; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        if !shared.node.local_node().is_alive() {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        loop {
            tokio::select! {
                _ = &mut ended => break,
                Some(nsp) = ns_rx.recv() => {
                    let channel = shared.node.transport().channel(&nsp);
                    if let Err(error) = client.batch_execute(&listen(&channel)).await {
                        tracing::warn!(%error, %channel, "cannot listen");
                    }
                    channels.push(channel);
                }
                _ = alive.tick() => {
                    if !shared.node.local_node().is_alive() {
                        return;
                    }
                }
            }
        }
    }
}

/// Deletes the attachments older than `interval`, every `interval`.
async fn cleanup(shared: Arc<Shared>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        if !shared.node.local_node().is_alive() {
            return;
        }
        let Some(client) = shared.commands.get().await else {
            continue;
        };
        let delete = format!(
            "DELETE FROM {} WHERE created_at < now() - interval '{} milliseconds'",
            shared.table,
            interval.as_millis()
        );
        if let Err(error) = client.batch_execute(&delete).await {
            tracing::warn!(%error, "cannot delete old attachments");
        }
    }
}
