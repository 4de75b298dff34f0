//! Namespaces: their connect handler and connect middlewares.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use socketio_proto::Str;
use socketio_proto::socketio_packet::DataError;

use crate::api::extract::HandlerResult;
use crate::api::operators::BroadcastOperator;
use crate::api::server::SocketIo;
use crate::api::socket::{Extensions, Handshake, Socket};

pub(crate) type ConnectHandler = Arc<dyn Fn(Socket) -> BoxFuture<'static, ()> + Send + Sync>;
pub(crate) type ConnectMiddleware =
    Arc<dyn Fn(ConnectRequest) -> BoxFuture<'static, Result<(), ConnectError>> + Send + Sync>;

pub(crate) struct NsInner {
    pub(crate) handler: ConnectHandler,
    pub(crate) middlewares: RwLock<Vec<ConnectMiddleware>>,
}

impl NsInner {
    pub(crate) fn new<F, Fut>(handler: F) -> Arc<NsInner>
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerResult,
    {
        let handler: ConnectHandler = Arc::new(move |socket: Socket| {
            let fut = handler(socket);
            Box::pin(async move { fut.await.report("connect handler") })
        });
        Arc::new(NsInner {
            handler,
            middlewares: RwLock::new(Vec::new()),
        })
    }

    pub(crate) fn middlewares(&self) -> Vec<ConnectMiddleware> {
        self.middlewares
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
    /// Adds a connect middleware: it runs, in the order added, for every
    /// client that asks to join, before the socket exists. An `Err` refuses
    /// the client, which gets a `connect_error` with the error's message and
    /// data.
    ///
    /// ```
    /// use socketio_tokio::{ConnectError, ConnectRequest, SocketIo, Socket};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Auth { token: String }
    ///
    /// let io = SocketIo::new()?;
    /// io.ns("/admin", |socket: Socket| async move { /* ... */ })
    ///     .with(|req: ConnectRequest| async move {
    ///         let auth: Auth = req.auth().map_err(|_| ConnectError::new("no token"))?;
    ///         if auth.token != "secret" {
    ///             return Err(ConnectError::new("forbidden")
    ///                 .with_data(serde_json::json!({ "retry": false })));
    ///         }
    ///         // Hand data to the socket.
    ///         req.extensions().insert(auth.token);
    ///         Ok(())
    ///     });
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn with<F, Fut>(self, middleware: F) -> Self
    where
        F: Fn(ConnectRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        let mw: ConnectMiddleware = Arc::new(move |req| Box::pin(middleware(req)));
        self.inner
            .middlewares
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(mw);
        self
    }

    /// Broadcast operators on this namespace (for a fixed namespace; for
    /// dynamic namespaces use [`SocketIo::of`] with a concrete name).
    pub fn broadcast(&self) -> BroadcastOperator {
        self.io
            .of(self.name.clone().unwrap_or_else(|| Str::from_static("/")))
    }
}

/// A client's request to join a namespace, as a connect middleware sees it.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub(crate) nsp: Str,
    pub(crate) handshake: Handshake,
    pub(crate) extensions: Extensions,
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
