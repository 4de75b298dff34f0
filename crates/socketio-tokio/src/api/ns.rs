//! Namespaces: their connect handler and connect middlewares.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, Weak};

use serde::de::DeserializeOwned;
use socketio_proto::socketio_packet::{DataError, ProtocolVersion};
use socketio_proto::{Str, TransportKind};

use crate::api::extract::{
    ErasedHandler, ErasedMiddleware, Handler, Middleware, erase, erase_middleware,
};
use crate::api::operators::BroadcastOperator;
use crate::api::server::{Shared, SocketIo};
use crate::api::socket::{EventHandlers, Extensions, Handshake, Socket, SocketInner};

/// A namespace's connect handler with its middlewares, as given to
/// [`SocketIo::ns`]: a handler alone, or with middlewares added by
/// [`ConnectHandler::with`].
pub struct NsHandler {
    pub(crate) handler: ErasedHandler<Socket>,
    pub(crate) middlewares: Vec<ErasedMiddleware>,
}

impl fmt::Debug for NsHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NsHandler")
            .field("middlewares", &self.middlewares.len())
            .finish_non_exhaustive()
    }
}

impl NsHandler {
    /// Adds a connect middleware after those added before: see
    /// [`ConnectHandler::with`].
    pub fn with<A: 'static, M: Middleware<A>>(mut self, middleware: M) -> NsHandler {
        self.middlewares.push(erase_middleware(middleware));
        self
    }
}

/// A namespace's connect handler: an async closure whose arguments are
/// extractors of the new socket ([`Socket`], [`Data`](crate::Data) for the
/// auth object, [`State`](crate::State), ...).
pub trait ConnectHandler<A>: Handler<Socket, A> + Sized {
    /// The handler with a connect middleware: it runs, with those added
    /// after it, in order, for every client that asks to join, before the
    /// socket exists. An `Err` refuses the client, which gets a
    /// `connect_error` with the error's message and data. The middlewares
    /// are part of the namespace from its registration on: no client joins
    /// without them.
    ///
    /// ```
    /// use socketio_tokio::{ConnectError, ConnectHandler, Data, SocketIo, Socket};
    ///
    /// #[derive(Clone, serde::Deserialize)]
    /// struct Auth { token: String }
    ///
    /// async fn authenticate(Data(auth): Data<Auth>, req: socketio_tokio::ConnectRequest)
    ///     -> Result<(), ConnectError>
    /// {
    ///     if auth.token != "secret" {
    ///         return Err(ConnectError::new("forbidden")
    ///             .with_data(serde_json::json!({ "retry": false })));
    ///     }
    ///     // Hand data to the socket.
    ///     req.extensions().insert(auth);
    ///     Ok(())
    /// }
    ///
    /// let io = SocketIo::new()?;
    /// io.ns("/admin", (|socket: Socket| async move { /* ... */ }).with(authenticate));
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    fn with<MA: 'static, M: Middleware<MA>>(self, middleware: M) -> NsHandler
    where
        A: 'static,
    {
        NsHandler {
            handler: erase(self),
            middlewares: vec![erase_middleware(middleware)],
        }
    }
}

impl<A, H: Handler<Socket, A>> ConnectHandler<A> for H {}

/// What [`SocketIo::ns`] takes: a connect handler, or one
/// [`with`](ConnectHandler::with) middlewares.
pub trait IntoNsHandler<Marker> {
    /// The handler with its middlewares.
    fn into_ns_handler(self) -> NsHandler;
}

impl<A: 'static, H: Handler<Socket, A>> IntoNsHandler<fn(A)> for H {
    fn into_ns_handler(self) -> NsHandler {
        NsHandler {
            handler: erase(self),
            middlewares: Vec::new(),
        }
    }
}

/// The [`IntoNsHandler`] marker of an [`NsHandler`].
#[derive(Debug)]
pub struct WithMiddlewares;

impl IntoNsHandler<WithMiddlewares> for NsHandler {
    fn into_ns_handler(self) -> NsHandler {
        self
    }
}

pub(crate) struct NsInner {
    pub(crate) handler: ErasedHandler<Socket>,
    pub(crate) middlewares: Vec<ErasedMiddleware>,
    /// Whether it serves the namespaces a matcher accepts.
    pub(crate) dynamic: bool,
    /// For a dynamic namespace: the namespaces it serves, with how many
    /// sockets each has (a child is kept at zero unless empty ones are
    /// cleaned up).
    children: Mutex<BTreeMap<Str, usize>>,
    /// The last list of event handlers a socket registered, if none of
    /// them holds anything: the next socket with an equal list shares it.
    /// Read by every connect, written only when a list differs.
    handlers: RwLock<EventHandlers>,
    /// How many event handlers the last socket registered at once: the
    /// room a new socket's list starts with.
    handlers_seen: AtomicUsize,
}

impl NsInner {
    pub(crate) fn new(handler: NsHandler, dynamic: bool) -> Arc<NsInner> {
        Arc::new(NsInner {
            handler: handler.handler,
            middlewares: handler.middlewares,
            dynamic,
            children: Mutex::new(BTreeMap::new()),
            handlers: RwLock::new(EventHandlers::default()),
            handlers_seen: AtomicUsize::new(0),
        })
    }

    /// Shares `socket`'s event handlers with the namespace's other sockets
    /// that registered the same ones (see `HandlerMap::share`).
    ///
    /// A connection storm's sockets, which register the same handlers,
    /// only read the namespace's state here: each takes the template's
    /// read lock, and nothing is written.
    pub(crate) fn share_handlers(&self, socket: &SocketInner) {
        let mut listeners = socket.listeners();
        let seen = listeners.events().len();
        if self.handlers_seen.load(Ordering::Relaxed) != seen {
            self.handlers_seen.store(seen, Ordering::Relaxed);
        }
        let template = self.handler_template();
        if listeners.adopt_events(&template) {
            return;
        }
        drop(template);
        let mut template = self.handlers.write().unwrap_or_else(|e| e.into_inner());
        listeners.share_events(&mut template);
    }

    /// The last list of event handlers a socket registered that holds
    /// nothing: a new socket holds it while it registers the same handlers
    /// (see `HandlerMap::follow`).
    pub(crate) fn handler_template(&self) -> RwLockReadGuard<'_, EventHandlers> {
        self.handlers.read().unwrap_or_else(|e| e.into_inner())
    }

    /// How many event handlers a socket of this namespace usually
    /// registers at once (at most 32: a socket with many more must not make
    /// every later one start with room for them).
    pub(crate) fn handlers_seen(&self) -> usize {
        self.handlers_seen.load(Ordering::Relaxed).min(32)
    }

    fn children_guard(&self) -> std::sync::MutexGuard<'_, BTreeMap<Str, usize>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The child namespaces of a dynamic namespace.
    pub(crate) fn children(&self) -> Vec<Str> {
        self.children_guard().keys().cloned().collect()
    }

    /// Counts a socket of child `nsp`; whether the child is new.
    pub(crate) fn add_child_socket(&self, nsp: &Str) -> bool {
        let mut children = self.children_guard();
        match children.get_mut(nsp) {
            Some(count) => {
                *count += 1;
                false
            }
            None => {
                children.insert(nsp.clone(), 1);
                true
            }
        }
    }

    /// Counts a socket of child `nsp` gone; forgets the child once it has
    /// none, when `cleanup`.
    pub(crate) fn remove_child_socket(&self, nsp: &str, cleanup: bool) {
        let mut children = self.children_guard();
        if let Some(count) = children.get_mut(nsp) {
            *count = count.saturating_sub(1);
            if *count == 0 && cleanup {
                children.remove(nsp);
            }
        }
    }
}

/// A served namespace (or family of dynamic namespaces), as returned by
/// [`SocketIo::ns`] and [`SocketIo::dyn_ns`].
#[derive(Clone)]
pub struct Namespace {
    pub(crate) io: SocketIo,
    pub(crate) name: Option<Str>,
    pub(crate) inner: Arc<NsInner>,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Namespace {
    /// Broadcast operators on this namespace. For a dynamic namespace (the
    /// reference's parent namespace), on every namespace it serves now: an
    /// emit reaches the sockets of each.
    ///
    /// ```
    /// use socketio_tokio::{SocketIo, Socket};
    ///
    /// let io = SocketIo::new()?;
    /// let rooms = io.dyn_ns(|name| name.starts_with("/room-"), |_: Socket| async {});
    /// // Every socket of every "/room-..." namespace.
    /// rooms.broadcast().emit("announcement", &"closing in 5 minutes")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn broadcast(&self) -> BroadcastOperator {
        match &self.name {
            Some(name) => self.io.of(name.clone()),
            None => BroadcastOperator::children(&self.io, self.inner.clone()),
        }
    }

    /// The namespace's name; `None` for a dynamic namespace.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The namespaces a dynamic namespace serves now (for a fixed one, its name).
    pub fn children(&self) -> Vec<Str> {
        match &self.name {
            Some(name) => vec![name.clone()],
            None => self.inner.children(),
        }
    }
}

/// A client's request to join a namespace, as a connect middleware sees it.
#[derive(Clone)]
pub struct ConnectRequest {
    pub(crate) nsp: Str,
    pub(crate) handshake: Handshake,
    pub(crate) extensions: Extensions,
    pub(crate) shared: Weak<Shared>,
    pub(crate) transport: TransportKind,
    pub(crate) version: ProtocolVersion,
}

impl fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("nsp", &self.nsp)
            .field("handshake", &self.handshake)
            .finish_non_exhaustive()
    }
}

impl ConnectRequest {
    /// The namespace asked for.
    pub fn ns(&self) -> &str {
        &self.nsp
    }

    /// The handshake: headers, query, auth, address.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The auth object the client sent, deserialized.
    ///
    /// # Errors
    ///
    /// [`DataError`] when there is none or it does not match `T`.
    pub fn auth<T: DeserializeOwned>(&self) -> Result<T, DataError> {
        self.handshake.auth()
    }

    /// Data that the socket will carry once accepted
    /// ([`Socket::extensions`]).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }
}

/// A refusal of a client by a connect middleware: the client's
/// `connect_error` gets `message` and `data`.
///
/// ```
/// let err = socketio_tokio::ConnectError::new("unauthorized")
///     .with_data(serde_json::json!({ "code": 401 }));
/// # let _ = err;
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    pub(crate) message: String,
    pub(crate) data: Option<serde_json::Value>,
}

impl ConnectError {
    /// A refusal with `message`.
    pub fn new(message: impl Into<String>) -> ConnectError {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }

    /// Adds data for the client (`err.data` in JavaScript).
    pub fn with_data(mut self, data: serde_json::Value) -> ConnectError {
        self.data = Some(data);
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The data.
    pub fn data(&self) -> Option<&serde_json::Value> {
        self.data.as_ref()
    }
}

impl From<String> for ConnectError {
    fn from(message: String) -> ConnectError {
        ConnectError::new(message)
    }
}

impl From<&str> for ConnectError {
    fn from(message: &str) -> ConnectError {
        ConnectError::new(message)
    }
}
