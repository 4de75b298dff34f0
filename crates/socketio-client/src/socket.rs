//! [`Socket`]: one namespace of a connection, as the application sees it; [`Message`]; and the
//! state the client's task and the handles share.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use socketio_client_proto::socketio_packet::DataError;
use socketio_client_proto::{
    AckError, Client, ConnectError, DisconnectReason, EmitOptions, Payload, Str,
};
use tokio::sync::{Notify, oneshot};

use crate::error::EmitError;

/// A handler of an event, with the socket it came on.
pub(crate) type EventHandler = Arc<dyn Fn(Socket, Message) + Send + Sync>;
/// A handler of a connection.
pub(crate) type ConnectHandler = Arc<dyn Fn(Socket) + Send + Sync>;
/// A handler of a disconnection.
pub(crate) type DisconnectHandler = Arc<dyn Fn(Socket, DisconnectReason) + Send + Sync>;
/// A handler of a refused connection.
pub(crate) type ConnectErrorHandler = Arc<dyn Fn(Socket, ConnectError) + Send + Sync>;
/// A handler of a reconnection event (the attempt's number, or 0).
pub(crate) type ManagerHandler = Arc<dyn Fn(ManagerEvent) + Send + Sync>;

/// What happens to the connection under every socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerEvent {
    /// The connection opened.
    Open,
    /// The connection upgraded to WebSocket.
    Upgrade,
    /// The connection closed, and why.
    Close(DisconnectReason),
    /// A reconnection attempt starts (counted from 1).
    ReconnectAttempt(u32),
    /// A reconnection attempt failed.
    ReconnectError(&'static str),
    /// The client reconnected, at this attempt.
    Reconnect(u32),
    /// The client gave up reconnecting.
    ReconnectFailed,
}

/// The handlers of one namespace.
#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) events: HashMap<String, Vec<EventHandler>>,
    pub(crate) any: Vec<EventHandler>,
    pub(crate) connect: Vec<ConnectHandler>,
    pub(crate) disconnect: Vec<DisconnectHandler>,
    pub(crate) connect_error: Vec<ConnectErrorHandler>,
}

/// What the lock guards.
pub(crate) struct Inner {
    pub(crate) core: Client,
    pub(crate) handlers: HashMap<Str, Handlers>,
    pub(crate) manager: Vec<ManagerHandler>,
    /// Acknowledgements awaited, by namespace and id.
    pub(crate) acks: HashMap<(Str, u64), oneshot::Sender<Result<Payload, AckError>>>,
    /// Whether each namespace's last connection restored its session.
    pub(crate) recovered: HashMap<Str, bool>,
    /// Set by `close`: the task ends once the close is sent.
    pub(crate) closed: bool,
}

/// Shared by the client's task and every handle.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the client's task after a command.
    pub(crate) wake: Notify,
}

impl Shared {
    pub(crate) fn new(inner: Inner) -> Arc<Shared> {
        Arc::new(Shared {
            inner: Mutex::new(inner),
            wake: Notify::new(),
        })
    }

    /// The lock, held for one call of the core and never across an await or a handler.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An event from the server.
#[derive(Clone)]
pub struct Message {
    pub(crate) name: String,
    pub(crate) data: Payload,
    pub(crate) ack: Option<AckSender>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("name", &self.name)
            .field("data", &self.data)
            .field("ack", &self.ack.is_some())
            .finish()
    }
}

impl Message {
    /// The event's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments after the event name, as a sequence: a tuple, a `Vec`, ...
    /// (`Vec<serde_json::Value>` takes any). Binary attachments come back as `bytes::Bytes`.
    ///
    /// # Errors
    /// [`DataError`] when the arguments do not match `T`.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, DataError> {
        self.data.args(1)
    }

    /// The whole payload: the JSON array, event name first, and the attachments.
    pub fn payload(&self) -> &Payload {
        &self.data
    }

    /// The means to answer, when the server asked for an acknowledgement.
    pub fn ack_sender(&self) -> Option<&AckSender> {
        self.ack.as_ref()
    }

    /// Answers the server's acknowledgement request with `args` (a tuple, `()`, ...);
    /// does nothing when the server did not ask for one.
    ///
    /// # Errors
    /// [`EmitError::Encode`] when the arguments do not serialize.
    pub fn ack<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        match &self.ack {
            Some(a) => a.send(args),
            None => Ok(()),
        }
    }
}

/// Answers one event of the server that asked for an acknowledgement.
#[derive(Clone)]
pub struct AckSender {
    pub(crate) socket: Socket,
    pub(crate) id: u64,
}

impl AckSender {
    /// Sends the acknowledgement with `args`.
    ///
    /// # Errors
    /// [`EmitError::Encode`] when the arguments do not serialize.
    pub fn send<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        self.socket.send_ack(self.id, args)
    }
}

/// One namespace of a connection: the handle the application emits and listens with.
///
/// Cloning gives another handle to the same socket. The connection stays while the client's
/// task runs, whether handles remain or not: end it with [`Socket::disconnect`] or
/// [`Socket::close`].
#[derive(Clone)]
pub struct Socket {
    pub(crate) shared: Arc<Shared>,
    pub(crate) nsp: Str,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("nsp", &self.nsp).finish()
    }
}

impl Socket {
    /// The namespace (`/`, `/admin`).
    pub fn nsp(&self) -> &str {
        &self.nsp
    }

    /// The socket id the server gave, while connected.
    pub fn id(&self) -> Option<String> {
        self.shared
            .lock()
            .core
            .socket_id(&self.nsp)
            .map(str::to_owned)
    }

    /// Whether the socket is connected.
    pub fn connected(&self) -> bool {
        self.shared.lock().core.is_connected(&self.nsp)
    }

    /// Whether the last connection restored the previous session (connection state recovery).
    pub fn recovered(&self) -> bool {
        self.shared
            .lock()
            .recovered
            .get(&self.nsp)
            .copied()
            .unwrap_or(false)
    }

    /// The Engine.IO transport in use, while the connection is open.
    pub fn transport(&self) -> Option<socketio_client_proto::TransportKind> {
        self.shared.lock().core.transport()
    }

    fn handlers<R>(&self, f: impl FnOnce(&mut Handlers) -> R) -> R {
        let mut inner = self.shared.lock();
        f(inner.handlers.entry(self.nsp.clone()).or_default())
    }

    /// Calls `handler` for every event `event` of this namespace.
    pub fn on<F>(&self, event: &str, handler: F) -> &Socket
    where
        F: Fn(Socket, Message) + Send + Sync + 'static,
    {
        self.handlers(|h| {
            h.events
                .entry(event.to_owned())
                .or_default()
                .push(Arc::new(handler))
        });
        self
    }

    /// Removes the handlers of event `event` (`socket.off(event)`).
    pub fn off(&self, event: &str) -> &Socket {
        self.handlers(|h| {
            h.events.remove(event);
        });
        self
    }

    /// Removes the handlers of [`Socket::on_any`] (`socket.offAny()`).
    pub fn off_any(&self) -> &Socket {
        self.handlers(|h| h.any.clear());
        self
    }

    /// Calls `handler` for every event of this namespace, whatever its name, before the
    /// handlers of [`Socket::on`].
    pub fn on_any<F>(&self, handler: F) -> &Socket
    where
        F: Fn(Socket, Message) + Send + Sync + 'static,
    {
        self.handlers(|h| h.any.push(Arc::new(handler)));
        self
    }

    /// Calls `handler` each time the namespace is joined (again after every reconnection).
    pub fn on_connect<F>(&self, handler: F) -> &Socket
    where
        F: Fn(Socket) + Send + Sync + 'static,
    {
        self.handlers(|h| h.connect.push(Arc::new(handler)));
        self
    }

    /// Calls `handler` each time the socket is disconnected, with the reason.
    pub fn on_disconnect<F>(&self, handler: F) -> &Socket
    where
        F: Fn(Socket, DisconnectReason) + Send + Sync + 'static,
    {
        self.handlers(|h| h.disconnect.push(Arc::new(handler)));
        self
    }

    /// Calls `handler` when joining the namespace fails: refused by the server (with its
    /// message and data), or the connection could not be opened.
    pub fn on_connect_error<F>(&self, handler: F) -> &Socket
    where
        F: Fn(Socket, ConnectError) + Send + Sync + 'static,
    {
        self.handlers(|h| h.connect_error.push(Arc::new(handler)));
        self
    }

    /// Calls `handler` for what happens to the connection under every socket: opening,
    /// upgrade, close, and the reconnection events (`socket.io.on(...)` in the official client).
    pub fn on_manager<F>(&self, handler: F) -> &Socket
    where
        F: Fn(ManagerEvent) + Send + Sync + 'static,
    {
        self.shared.lock().manager.push(Arc::new(handler));
        self
    }

    /// Emits `event` with `args`: a tuple for several arguments, `()` for none, any other
    /// serializable value for one; binary values (`bytes::Bytes`) travel as attachments.
    /// While disconnected, the emit waits in a bounded buffer and goes out on connection.
    ///
    /// # Errors
    /// [`EmitError`] for a reserved name, arguments that do not serialize, or a full buffer.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        self.emitter().emit(event, args)
    }

    /// Emits `event` and waits for the server's acknowledgement (see [`Socket::emit`]).
    ///
    /// # Errors
    /// [`EmitError`] as [`Socket::emit`]; the future gives [`AckError`] when the socket is
    /// disconnected first.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<AckFuture, EmitError> {
        self.emitter().emit_with_ack(event, args)
    }

    /// An emitter whose acknowledgements time out after `timeout` (`socket.timeout(ms)`).
    pub fn timeout(&self, timeout: Duration) -> Emitter {
        self.emitter().timeout(timeout)
    }

    /// An emitter that drops what it cannot send at once (`socket.volatile`).
    pub fn volatile(&self) -> Emitter {
        self.emitter().volatile()
    }

    fn emitter(&self) -> Emitter {
        Emitter {
            socket: self.clone(),
            options: EmitOptions::default(),
        }
    }

    /// Joins the namespace: again after a refusal or a disconnection, or for the first time
    /// for a socket made by [`Socket::of`]; with the auth given last.
    ///
    /// # Errors
    /// [`EmitError::Encode`] when the namespace is not valid, [`EmitError::Closed`] after
    /// [`Socket::close`].
    pub fn connect(&self) -> Result<(), EmitError> {
        self.connect_inner(None)
    }

    /// Joins the namespace with the auth object `auth` (see [`Socket::connect`]).
    ///
    /// # Errors
    /// As [`Socket::connect`].
    pub fn connect_with_auth(&self, auth: serde_json::Value) -> Result<(), EmitError> {
        self.connect_inner(auth_object(auth))
    }

    pub(crate) fn connect_inner(
        &self,
        auth: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<(), EmitError> {
        let now = crate::clock::now();
        let mut inner = self.shared.lock();
        if inner.closed {
            return Err(EmitError::Closed);
        }
        inner.core.connect(now, &self.nsp, auth)?;
        drop(inner);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Another namespace over the same connection (`io.socket(nsp)`), not joined yet: install
    /// its handlers, then call [`Socket::connect`] or [`Socket::connect_with_auth`], so that
    /// no event comes before its handler.
    pub fn of(&self, nsp: &str) -> Socket {
        Socket {
            shared: self.shared.clone(),
            nsp: Str::from(nsp),
        }
    }

    /// Leaves the namespace ("io client disconnect"); the connection closes when no namespace
    /// uses it any more. The socket does not reconnect until [`Socket::connect`]. The client's
    /// task stays, idle, until [`Socket::close`].
    pub fn disconnect(&self) {
        self.shared.lock().core.disconnect(&self.nsp);
        self.shared.wake.notify_one();
    }

    /// Leaves every namespace and closes the connection; the client's task ends, acknowledgements
    /// still awaited fail, and every handle's emits and connects fail with [`EmitError::Closed`].
    pub fn close(&self) {
        let mut inner = self.shared.lock();
        inner.core.close();
        inner.closed = true;
        drop(inner);
        self.shared.wake.notify_one();
    }

    pub(crate) fn send_ack<T: Serialize + ?Sized>(
        &self,
        id: u64,
        args: &T,
    ) -> Result<(), EmitError> {
        self.shared.lock().core.ack(&self.nsp, id, args)?;
        self.shared.wake.notify_one();
        Ok(())
    }
}

/// Emits with options: see [`Socket::timeout`] and [`Socket::volatile`].
#[derive(Clone, Debug)]
pub struct Emitter {
    socket: Socket,
    options: EmitOptions,
}

impl Emitter {
    /// Acknowledgements time out after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Emitter {
        self.options.timeout = Some(timeout);
        self
    }

    /// What cannot be sent at once is dropped.
    pub fn volatile(mut self) -> Emitter {
        self.options.volatile = true;
        self
    }

    /// Emits `event` (see [`Socket::emit`]).
    ///
    /// # Errors
    /// As [`Socket::emit`].
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        let now = crate::clock::now();
        let options = EmitOptions {
            ack: false,
            timeout: None,
            ..self.options
        };
        let mut inner = self.socket.shared.lock();
        if inner.closed {
            return Err(EmitError::Closed);
        }
        inner
            .core
            .emit(now, &self.socket.nsp, event, args, options)?;
        drop(inner);
        self.socket.shared.wake.notify_one();
        Ok(())
    }

    /// Emits `event` and waits for the acknowledgement (see [`Socket::emit_with_ack`]).
    ///
    /// # Errors
    /// As [`Socket::emit`]; the future gives [`AckError::Timeout`] after the timeout.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<AckFuture, EmitError> {
        let now = crate::clock::now();
        let options = EmitOptions {
            ack: true,
            ..self.options
        };
        let (tx, rx) = oneshot::channel();
        let mut inner = self.socket.shared.lock();
        if inner.closed {
            return Err(EmitError::Closed);
        }
        match inner
            .core
            .emit(now, &self.socket.nsp, event, args, options)?
        {
            Some(id) => {
                inner.acks.insert((self.socket.nsp.clone(), id), tx);
            }
            // A volatile emit that was dropped gets no answer.
            None => {
                let _ = tx.send(Err(AckError::Disconnected));
            }
        }
        drop(inner);
        self.socket.shared.wake.notify_one();
        Ok(AckFuture { rx })
    }
}

/// The acknowledgement of an emit: the arguments of the server's answer.
#[derive(Debug)]
pub struct AckFuture {
    rx: oneshot::Receiver<Result<Payload, AckError>>,
}

/// The arguments of an acknowledgement.
#[derive(Debug, Clone)]
pub struct AckResponse(pub Payload);

impl AckResponse {
    /// The arguments as a sequence (a tuple, a `Vec`, ...).
    ///
    /// # Errors
    /// [`DataError`] when they do not match `T`.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, DataError> {
        self.0.args(0)
    }
}

impl Future for AckFuture {
    type Output = Result<AckResponse, AckError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| match r {
            Ok(r) => r.map(AckResponse),
            // The client's task ended.
            Err(_) => Err(AckError::Disconnected),
        })
    }
}

/// The auth object of a CONNECT: an object, or nothing.
pub(crate) fn auth_object(
    v: serde_json::Value,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    match v {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}
