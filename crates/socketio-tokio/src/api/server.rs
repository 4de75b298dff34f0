//! [`SocketIo`]: the server handle, and the state its connections share.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;

use serde::Serialize;
use socketio_proto::{Config, DisconnectReason, Endpoint, IdGenerator, Str};
use tokio::sync::watch;

use crate::config::{Options, SocketIoBuilder};
use crate::driver::{Cmd, CmdTx};
use crate::engine::EngineHandler;
use crate::error::{BuildError, EmitError};
use crate::ns::{Namespace, NsInner};
use crate::operators::{AckStream, BroadcastOperator, RoomParam};
use crate::service::{NotFound, SocketIoLayer, SocketIoService};
use crate::socket::{Socket, SocketInner};

/// What the endpoint lock guards: routing, namespaces' sockets and rooms,
/// and where each connection's task listens.
pub(crate) struct State {
    pub(crate) endpoint: Endpoint,
    pub(crate) conns: socketio_proto::HandleMap<CmdTx>,
    pub(crate) sockets: HashMap<Str, Arc<SocketInner>>,
}

/// The declared namespaces.
#[derive(Default)]
pub(crate) struct Namespaces {
    pub(crate) fixed: HashMap<String, Arc<NsInner>>,
    pub(crate) dynamic: Vec<(NsMatcher, Arc<NsInner>)>,
}

/// A dynamic namespace's matcher.
pub(crate) type NsMatcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl Namespaces {
    /// The namespace serving `nsp`: a fixed one, else the first dynamic match.
    pub(crate) fn find(&self, nsp: &str) -> Option<Arc<NsInner>> {
        if let Some(ns) = self.fixed.get(nsp) {
            return Some(ns.clone());
        }
        self.dynamic
            .iter()
            .find(|(m, _)| m(nsp))
            .map(|(_, ns)| ns.clone())
    }
}

/// Everything the connections and handles share.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) config: Config,
    pub(crate) options: Options,
    pub(crate) namespaces: RwLock<Namespaces>,
    pub(crate) engine: Option<EngineHandler>,
    pub(crate) next_request: AtomicU64,
    pub(crate) shutting_down: AtomicBool,
    /// Turns true when [`SocketIo::shutdown`] starts.
    pub(crate) shutdown_signal: watch::Sender<bool>,
    /// The number of live connection tasks.
    pub(crate) live: watch::Sender<usize>,
    /// The sessions counted against the limits.
    pub(crate) sessions: crate::limits::Sessions,
    /// The sessions with a polling POST being read.
    pub(crate) posts: crate::limits::Posts,
    /// The cluster adapter, once attached.
    pub(crate) adapter: OnceLock<Arc<dyn crate::adapter::Adapter>>,
    /// The handlers of the other nodes' server-side emits.
    pub(crate) server_side: RwLock<Vec<crate::adapter::ServerSideHandler>>,
}

impl Shared {
    /// Takes the endpoint lock. Never held across an await.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `path` is served here.
    pub(crate) fn matches_path(&self, path: &str) -> bool {
        let base = self.config.path.trim_end_matches('/');
        path == base || path.starts_with(&self.config.path)
    }

    pub(crate) fn namespaces(&self) -> std::sync::RwLockReadGuard<'_, Namespaces> {
        self.namespaces.read().unwrap_or_else(|e| e.into_inner())
    }

    fn namespaces_mut(&self) -> std::sync::RwLockWriteGuard<'_, Namespaces> {
        self.namespaces.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A Socket.IO server: declare namespaces, mount it (as a tower layer or
/// service, or with [`SocketIo::serve`]), and broadcast.
///
/// It is a cheap handle: clone it into handlers.
///
/// ```no_run
/// use socketio_tokio::{Data, SocketIo, Socket};
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let io = SocketIo::new()?;
///     io.ns("/", |socket: Socket| async move {
///         socket.on("chat", |socket: Socket, Data(text): Data<String>| async move {
///             // To everyone else.
///             let _ = socket.broadcast().emit("chat", &text);
///         });
///     });
///     io.serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?).await?;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct SocketIo {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketIo")
            .field("path", &self.shared.config.path)
            .finish_non_exhaustive()
    }
}

impl SocketIo {
    /// A server with the reference's defaults (path `/socket.io/`).
    ///
    /// ```
    /// let io = socketio_tokio::SocketIo::new()?;
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BuildError::Random`] when the operating system gives no randomness.
    pub fn new() -> Result<SocketIo, BuildError> {
        SocketIoBuilder::new().build()
    }

    /// A builder, to set options first.
    ///
    /// ```
    /// use std::time::Duration;
    /// let io = socketio_tokio::SocketIo::builder()
    ///     .ping_interval(Duration::from_secs(5))
    ///     .build()?;
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn builder() -> SocketIoBuilder {
        SocketIoBuilder::new()
    }

    pub(crate) fn from_builder(
        builder: SocketIoBuilder,
        engine: Option<EngineHandler>,
    ) -> Result<SocketIo, BuildError> {
        let ids = IdGenerator::from_os().map_err(|e| BuildError::Random(e.to_string()))?;
        let config = builder.config;
        let endpoint = Endpoint::with_ids(config.clone(), ids);
        let shared = Shared {
            state: Mutex::new(State {
                endpoint,
                conns: socketio_proto::HandleMap::default(),
                sockets: HashMap::new(),
            }),
            config,
            options: builder.options,
            namespaces: RwLock::new(Namespaces::default()),
            engine,
            next_request: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
            shutdown_signal: watch::Sender::new(false),
            live: watch::Sender::new(0),
            sessions: crate::limits::Sessions::default(),
            posts: crate::limits::Posts::default(),
            adapter: OnceLock::new(),
            server_side: RwLock::new(Vec::new()),
        };
        Ok(SocketIo {
            shared: Arc::new(shared),
        })
    }

    /// The protocol configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// A tower layer that serves Socket.IO at the configured path and hands
    /// every other request to the inner service (an axum router, ...).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = socketio_tokio::SocketIo::new()?;
    /// let app = axum::Router::new()
    ///     .route("/", axum::routing::get(|| async { "hello" }))
    ///     .layer(io.layer());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// axum::serve(listener, app).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn layer(&self) -> SocketIoLayer {
        SocketIoLayer::new(self.clone())
    }

    /// A tower service that serves Socket.IO and answers 404 elsewhere.
    ///
    /// ```
    /// let io = socketio_tokio::SocketIo::new()?;
    /// let service = io.service();
    /// # let _ = service;
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn service(&self) -> SocketIoService<NotFound> {
        SocketIoService::new(self.clone(), NotFound)
    }

    // ----- namespaces -----

    /// Serves namespace `path`: `handler` runs for every socket that joins
    /// it (after the namespace's middlewares accepted it).
    ///
    /// Returns the [`Namespace`], to add connect middlewares or broadcast.
    ///
    /// ```
    /// use socketio_tokio::{SocketIo, Socket};
    ///
    /// let io = SocketIo::new()?;
    /// io.ns("/chat", |socket: Socket| async move {
    ///     let _ = socket.emit("welcome", &socket.id());
    /// });
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn ns<F, Fut>(&self, path: impl Into<String>, handler: F) -> Namespace
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: crate::handler::HandlerResult,
    {
        let path = path.into();
        let inner = NsInner::new(handler);
        self.shared
            .namespaces_mut()
            .fixed
            .insert(path.clone(), inner.clone());
        crate::adapter::namespace_added(&self.shared, &path);
        Namespace {
            io: self.clone(),
            name: Some(Str::from(path)),
            inner,
        }
    }

    /// Serves every namespace whose name `matcher` accepts (dynamic
    /// namespaces), after the fixed ones.
    ///
    /// ```
    /// use socketio_tokio::{SocketIo, Socket};
    ///
    /// let io = SocketIo::new()?;
    /// io.dyn_ns(|name| name.starts_with("/room-"), |socket: Socket| async move {
    ///     let _ = socket.emit("joined", &socket.ns());
    /// });
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn dyn_ns<M, F, Fut>(&self, matcher: M, handler: F) -> Namespace
    where
        M: Fn(&str) -> bool + Send + Sync + 'static,
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: crate::handler::HandlerResult,
    {
        let inner = NsInner::new(handler);
        self.shared
            .namespaces_mut()
            .dynamic
            .push((Arc::new(matcher), inner.clone()));
        Namespace {
            io: self.clone(),
            name: None,
            inner,
        }
    }

    /// Stops serving namespace `path`: its sockets are disconnected
    /// ("server namespace disconnect") and new clients are refused.
    pub fn delete_ns(&self, path: &str) {
        self.shared.namespaces_mut().fixed.remove(path);
        let _ = self.of(path).disconnect();
    }

    // ----- broadcasting -----

    /// Operators on namespace `nsp`: select sockets, then emit or act on them.
    ///
    /// ```
    /// # let io = socketio_tokio::SocketIo::new()?;
    /// io.of("/chat").to("room1").emit("news", &"hello")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn of(&self, nsp: impl Into<Str>) -> BroadcastOperator {
        BroadcastOperator::new(Arc::downgrade(&self.shared), nsp.into(), None)
    }

    /// Sockets of `/` in `rooms`.
    pub fn to(&self, rooms: impl RoomParam) -> BroadcastOperator {
        self.of("/").to(rooms)
    }

    /// Sockets of `/` in `rooms` (an alias of [`to`](SocketIo::to)).
    pub fn within(&self, rooms: impl RoomParam) -> BroadcastOperator {
        self.of("/").to(rooms)
    }

    /// Sockets of `/` not in `rooms`.
    pub fn except(&self, rooms: impl RoomParam) -> BroadcastOperator {
        self.of("/").except(rooms)
    }

    /// Sockets of `/` on this node only.
    pub fn local(&self) -> BroadcastOperator {
        self.of("/").local()
    }

    /// Sockets of `/`; the emit may be dropped for a client that cannot take it now.
    pub fn volatile(&self) -> BroadcastOperator {
        self.of("/").volatile()
    }

    /// Sockets of `/`, with acknowledgements awaited for `timeout`.
    pub fn timeout(&self, timeout: Duration) -> BroadcastOperator {
        self.of("/").timeout(timeout)
    }

    /// Emits `event` with `args` to every socket of `/`.
    ///
    /// # Errors
    ///
    /// [`EmitError::Encode`] when the arguments cannot be serialized.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        self.of("/").emit(event, args)
    }

    /// Emits `event` with `args` to every socket of `/` and collects their
    /// acknowledgements.
    ///
    /// # Errors
    ///
    /// [`EmitError::Encode`] when the arguments cannot be serialized.
    pub fn emit_with_ack<V, T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<AckStream<V>, EmitError>
    where
        V: serde::de::DeserializeOwned + Send + 'static,
    {
        self.of("/").emit_with_ack(event, args)
    }

    /// The sockets of `/`.
    pub fn sockets(&self) -> Vec<Socket> {
        self.of("/").sockets()
    }

    /// The rooms of `nsp` that have members.
    pub fn rooms(&self, nsp: &str) -> Vec<Str> {
        self.shared.lock().endpoint.rooms(nsp)
    }

    // ----- lifecycle -----

    /// Shuts down: new handshakes are refused, every connection is closed
    /// (its sockets see "server shutting down"), and this waits until the
    /// connections are gone or the shutdown timeout passed. A running
    /// [`serve`](SocketIo::serve) stops accepting and returns once its HTTP
    /// connections finished.
    ///
    /// ```no_run
    /// # async fn run(io: socketio_tokio::SocketIo) {
    /// io.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.shared.shutdown_signal.send_replace(true);
        let conns: Vec<CmdTx> = self.shared.lock().conns.values().cloned().collect();
        tracing::info!(connections = conns.len(), "shutting down");
        for tx in conns {
            let _ = tx.send(Cmd::Close {
                reason: DisconnectReason::ServerShuttingDown,
            });
        }
        let mut live = self.shared.live.subscribe();
        let _ = tokio::time::timeout(
            self.shared.options.shutdown_timeout,
            live.wait_for(|n| *n == 0),
        )
        .await;
    }

    /// The number of live Engine.IO connections.
    pub fn connection_count(&self) -> usize {
        self.shared.lock().endpoint.session_count()
    }

    /// The number of connection tasks still running: live connections, and
    /// closed ones flushing their last frames (for at most 5 s).
    pub fn task_count(&self) -> usize {
        *self.shared.live.borrow()
    }

    /// The number of sockets connected to `nsp`.
    pub fn socket_count(&self, nsp: &str) -> usize {
        self.shared.lock().endpoint.socket_count(nsp)
    }
}
