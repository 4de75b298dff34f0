//! Handlers and the extractors their arguments are made of.
//!
//! Every handler the server calls (a namespace's connect handler and
//! middlewares, an event handler, a disconnect or disconnecting handler, a
//! catch-all) is an async closure (or function) whose arguments are
//! extractors: values built from the handler's context, each implementing
//! [`FromParts`] for it.
//!
//! | extractor | connect middleware | connect handler | event handler | (dis)connect(ing) handler |
//! |---|---|---|---|---|
//! | [`State<T>`], [`Extension<T>`], [`MaybeExtension<T>`], [`SocketIo`], [`Handshake`], [`TransportType`], [`ProtocolVersion`], [`NsName`] | yes | yes | yes | yes |
//! | [`Socket`] | | yes | yes | yes |
//! | [`Data<T>`], [`TryData<T>`] | the auth object | the auth object | the arguments | |
//! | [`ConnectRequest`] | yes | | | |
//! | [`AckSender`], [`RawArgs`], [`Bin`], [`EventName`], [`EventContext`] | | | yes | |
//! | [`DisconnectReason`] | | | | yes |
//!
//! Arguments follow one convention ([`Data`]): a tuple is the argument
//! list, anything else is one argument. When an extractor fails, the
//! handler is not called: a middleware refuses the client with the error's
//! message, and an event's failure reaches the socket's error listeners
//! ([`Socket::on_error`]) and the log. [`TryData`] hands the failure to
//! the handler instead.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use socketio_proto::socketio_packet::{DataError, ProtocolVersion};
use socketio_proto::{DisconnectReason, Payload, Str, TransportKind as TransportType};

use crate::api::ns::{ConnectError, ConnectRequest};
use crate::api::server::SocketIo;
use crate::api::socket::{Extensions, Handshake, Socket};
use crate::args::{ack_data, from_args};
use crate::error::EmitError;

/// What a handler may return: `()`, or a `Result` whose error is logged.
pub trait HandlerResult: Send {
    /// Logs an error, if any, with `what` (the handler's kind).
    fn report(self, what: &str);
}

impl HandlerResult for () {
    fn report(self, _what: &str) {}
}

/// A handler that ends with registering a listener (`socket.on(..)` as its
/// last expression) returns the listener's id: nothing to report.
impl HandlerResult for crate::api::socket::ListenerId {
    fn report(self, _what: &str) {}
}

impl<E: fmt::Display + Send> HandlerResult for Result<(), E> {
    fn report(self, what: &str) {
        if let Err(e) = self {
            tracing::warn!(error = %e, "{what} failed");
        }
    }
}

/// What every handler's context offers: the server, the namespace, the
/// handshake, the socket's extensions, the transport and the protocol.
///
/// Implemented by each context a handler is called with; write an
/// extractor generic over it to use it everywhere.
pub trait Parts {
    /// The server, while it runs.
    fn server(&self) -> Option<SocketIo>;
    /// The namespace.
    fn ns(&self) -> &str;
    /// The handshake.
    fn handshake(&self) -> &Handshake;
    /// The socket's extensions (the request's, in a connect middleware).
    fn extensions(&self) -> &Extensions;
    /// The connection's transport now.
    fn transport(&self) -> TransportType;
    /// The client's protocol version.
    fn protocol(&self) -> ProtocolVersion;
}

/// The contexts that have a socket: every handler's but a connect
/// middleware's.
pub trait SocketParts: Parts {
    /// The socket.
    fn socket(&self) -> &Socket;
}

impl Parts for Socket {
    fn server(&self) -> Option<SocketIo> {
        self.0.shared.upgrade().map(|shared| SocketIo { shared })
    }
    fn ns(&self) -> &str {
        Socket::ns(self)
    }
    fn handshake(&self) -> &Handshake {
        Socket::handshake(self)
    }
    fn extensions(&self) -> &Extensions {
        Socket::extensions(self)
    }
    fn transport(&self) -> TransportType {
        Socket::transport(self)
    }
    fn protocol(&self) -> ProtocolVersion {
        self.0.version
    }
}

impl SocketParts for Socket {
    fn socket(&self) -> &Socket {
        self
    }
}

macro_rules! socket_parts {
    ($ty:ty) => {
        impl Parts for $ty {
            fn server(&self) -> Option<SocketIo> {
                self.socket.server()
            }
            fn ns(&self) -> &str {
                self.socket.ns()
            }
            fn handshake(&self) -> &Handshake {
                self.socket.handshake()
            }
            fn extensions(&self) -> &Extensions {
                self.socket.extensions()
            }
            fn transport(&self) -> TransportType {
                self.socket.transport()
            }
            fn protocol(&self) -> ProtocolVersion {
                self.socket.0.version
            }
        }

        impl SocketParts for $ty {
            fn socket(&self) -> &Socket {
                &self.socket
            }
        }
    };
}

/// One event received by a socket, as an event handler's extractors see it.
#[derive(Debug, Clone)]
pub struct EventContext {
    pub(crate) socket: Socket,
    pub(crate) name: Str,
    pub(crate) data: Payload,
    pub(crate) ack_id: Option<u64>,
    /// Shared by the event's handlers when there are several: the client
    /// gets one acknowledgement, the first sent.
    pub(crate) acked: Option<Arc<AtomicBool>>,
}

socket_parts!(EventContext);

impl EventContext {
    /// The socket that received the event.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The event name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole payload: the JSON array (event name first) and its attachments.
    pub fn payload(&self) -> &Payload {
        &self.data
    }

    /// The ack id, when the client awaits an acknowledgement.
    pub fn ack_id(&self) -> Option<u64> {
        self.ack_id
    }
}

/// A socket leaving its namespace, as a disconnect or disconnecting
/// handler's extractors see it.
#[derive(Debug, Clone)]
pub struct DisconnectContext {
    pub(crate) socket: Socket,
    pub(crate) reason: DisconnectReason,
}

socket_parts!(DisconnectContext);

impl Parts for ConnectRequest {
    fn server(&self) -> Option<SocketIo> {
        self.shared.upgrade().map(|shared| SocketIo { shared })
    }
    fn ns(&self) -> &str {
        &self.nsp
    }
    fn handshake(&self) -> &Handshake {
        &self.handshake
    }
    fn extensions(&self) -> &Extensions {
        &self.extensions
    }
    fn transport(&self) -> TransportType {
        self.transport
    }
    fn protocol(&self) -> ProtocolVersion {
        self.version
    }
}

/// Why an extractor could not build its value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The arguments (or the auth object) do not match the requested type.
    #[error("arguments do not match: {0}")]
    Data(#[from] DataError),
    /// No state of this type was given to the builder
    /// ([`SocketIoBuilder::with_state`](crate::SocketIoBuilder::with_state)).
    #[error("no state of type {0}")]
    MissingState(&'static str),
    /// The socket carries no extension of this type.
    #[error("no extension of type {0}")]
    MissingExtension(&'static str),
    /// The server was dropped.
    #[error("the server is gone")]
    ServerGone,
}

/// A value that a handler called with context `C` takes as an argument.
///
/// ```
/// use socketio_tokio::{ExtractError, FromParts, Parts};
///
/// /// The user a connect middleware attached, in any handler.
/// #[derive(Clone)]
/// struct User(String);
///
/// impl<C: Parts> FromParts<C> for User {
///     fn from_parts(ctx: &C) -> Result<Self, ExtractError> {
///         ctx.extensions().get::<User>().ok_or(ExtractError::MissingExtension("User"))
///     }
/// }
/// ```
pub trait FromParts<C>: Sized {
    /// Builds the value.
    ///
    /// # Errors
    ///
    /// [`ExtractError`] when the context does not fit; the handler is then
    /// not called.
    fn from_parts(ctx: &C) -> Result<Self, ExtractError>;
}

impl<C: SocketParts> FromParts<C> for Socket {
    fn from_parts(ctx: &C) -> Result<Self, ExtractError> {
        Ok(ctx.socket().clone())
    }
}

impl<C: Parts> FromParts<C> for SocketIo {
    fn from_parts(ctx: &C) -> Result<Self, ExtractError> {
        ctx.server().ok_or(ExtractError::ServerGone)
    }
}

impl<C: Parts> FromParts<C> for Handshake {
    fn from_parts(ctx: &C) -> Result<Self, ExtractError> {
        Ok(ctx.handshake().clone())
    }
}

impl<C: Parts> FromParts<C> for TransportType {
    fn from_parts(ctx: &C) -> Result<Self, ExtractError> {
        Ok(ctx.transport())
    }
}

impl<C: Parts> FromParts<C> for ProtocolVersion {
    fn from_parts(ctx: &C) -> Result<Self, ExtractError> {
        Ok(ctx.protocol())
    }
}

impl FromParts<EventContext> for EventContext {
    fn from_parts(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(ctx.clone())
    }
}

impl FromParts<ConnectRequest> for ConnectRequest {
    fn from_parts(ctx: &ConnectRequest) -> Result<Self, ExtractError> {
        Ok(ctx.clone())
    }
}

impl FromParts<DisconnectContext> for DisconnectReason {
    fn from_parts(ctx: &DisconnectContext) -> Result<Self, ExtractError> {
        Ok(ctx.reason)
    }
}

/// The namespace's name (for a dynamic namespace, the one the client asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsName(pub Str);

impl<C: Parts> FromParts<C> for NsName {
    fn from_parts(ctx: &C) -> Result<Self, ExtractError> {
        Ok(NsName(Str::from(ctx.ns())))
    }
}

/// The application's state of type `T`, given once to the builder with
/// [`SocketIoBuilder::with_state`](crate::SocketIoBuilder::with_state)
/// (axum's `with_state`): cloned into each handler that asks for it (keep
/// it cheap to clone: an `Arc`, or handles).
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
/// use socketio_tokio::{AckSender, SocketIo, Socket, State};
///
/// #[derive(Clone, Default)]
/// struct Counter(Arc<AtomicUsize>);
///
/// let io = SocketIo::builder().with_state(Counter::default()).build()?;
/// io.ns("/", |socket: Socket| async move {
///     socket.on("hit", |State(counter): State<Counter>, ack: AckSender| async move {
///         ack.send(&counter.0.fetch_add(1, Ordering::Relaxed))
///     });
/// });
/// # Ok::<(), socketio_tokio::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct State<T>(pub T);

impl<C: Parts, T: Clone + Send + Sync + 'static> FromParts<C> for State<T> {
    fn from_parts(ctx: &C) -> Result<Self, ExtractError> {
        let io = ctx.server().ok_or(ExtractError::ServerGone)?;
        io.shared
            .options
            .state
            .get::<T>()
            .cloned()
            .map(State)
            .ok_or(ExtractError::MissingState(std::any::type_name::<T>()))
    }
}

/// A value of type `T` from the socket's [`Extensions`] (what a connect
/// middleware attached, say); the handler is not called when there is none.
#[derive(Debug, Clone)]
pub struct Extension<T>(pub T);

impl<C: Parts, T: Clone + Send + Sync + 'static> FromParts<C> for Extension<T> {
    fn from_parts(ctx: &C) -> Result<Self, ExtractError> {
        ctx.extensions()
            .get::<T>()
            .map(Extension)
            .ok_or(ExtractError::MissingExtension(std::any::type_name::<T>()))
    }
}

/// A value of type `T` from the socket's [`Extensions`], if there is one.
#[derive(Debug, Clone)]
pub struct MaybeExtension<T>(pub Option<T>);

impl<C: Parts, T: Clone + Send + Sync + 'static> FromParts<C> for MaybeExtension<T> {
    fn from_parts(ctx: &C) -> Result<Self, ExtractError> {
        Ok(MaybeExtension(ctx.extensions().get::<T>()))
    }
}

/// The event's arguments, deserialized by the one convention: a tuple is
/// the argument list (`Data<(A, B)>` takes two arguments, `Data<(A,)>`
/// one), any other type is one argument (or none, when it deserializes from
/// `null`, as `Option<_>` does). In a connect handler or middleware, the
/// auth object the client sent (none is `{}`, as the reference reads it,
/// or else `null`). Binary buffers come back in place of their
/// placeholders (use `bytes::Bytes` or `serde_bytes::ByteBuf` fields).
///
/// When the arguments do not match, the handler is not called and the
/// socket's error listeners get [`SocketError::Extract`](crate::SocketError::Extract).
///
/// ```
/// use socketio_tokio::{Data, Socket};
///
/// #[derive(serde::Deserialize)]
/// struct Chat { text: String }
///
/// # fn attach(socket: Socket) {
/// socket.on("chat", |Data(chat): Data<Chat>| async move {
///     println!("{}", chat.text);
/// });
/// socket.on("move", |Data((x, y)): Data<(i32, i32)>| async move {
///     println!("{x},{y}");
/// });
/// socket.on("sum", |Data(v): Data<Vec<i64>>| async move {
///     // One argument, an array: `socket.emit("sum", [1, 2, 3])`.
///     println!("{}", v.iter().sum::<i64>());
/// });
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned> FromParts<EventContext> for Data<T> {
    fn from_parts(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(Data(from_args(&ctx.data, 1)?))
    }
}

impl<T: DeserializeOwned> FromParts<Socket> for Data<T> {
    fn from_parts(ctx: &Socket) -> Result<Self, ExtractError> {
        Ok(Data(auth(ctx.handshake())?))
    }
}

impl<T: DeserializeOwned> FromParts<ConnectRequest> for Data<T> {
    fn from_parts(ctx: &ConnectRequest) -> Result<Self, ExtractError> {
        Ok(Data(auth(&ctx.handshake)?))
    }
}

/// The auth object as `T`. A client that sent none sent `{}`, as the
/// reference reads it (a map, or a struct whose fields all have defaults,
/// takes it); else `null` (`Option<T>` takes it as `None`).
fn auth<T: DeserializeOwned>(handshake: &Handshake) -> Result<T, DataError> {
    match handshake.auth_payload() {
        Some(_) => handshake.auth(),
        None => T::deserialize(serde_json::json!({}))
            .or_else(|_| T::deserialize(serde_json::Value::Null))
            .map_err(|_| DataError::NoArguments),
    }
}

/// The arguments as [`Data`] reads them, or why they do not match: the
/// handler runs either way.
///
/// ```
/// use socketio_tokio::TryData;
///
/// # fn attach(socket: socketio_tokio::Socket) {
/// socket.on("age", |TryData(age): TryData<u8>| async move {
///     match age {
///         Ok(age) => println!("{age}"),
///         Err(e) => println!("bad age: {e}"),
///     }
/// });
/// # }
/// ```
#[derive(Debug)]
pub struct TryData<T>(pub Result<T, DataError>);

impl<C, T> FromParts<C> for TryData<T>
where
    Data<T>: FromParts<C>,
{
    fn from_parts(ctx: &C) -> Result<Self, ExtractError> {
        Ok(TryData(match Data::<T>::from_parts(ctx) {
            Ok(Data(value)) => Ok(value),
            Err(ExtractError::Data(e)) => Err(e),
            Err(e) => Err(DataError::Custom(e.to_string())),
        }))
    }
}

/// The arguments, undecoded: the JSON array of the arguments (without the
/// event name) and the binary attachments its placeholders designate. Send
/// them on as they are with [`Socket::emit_raw`] or [`AckSender::send_raw`].
///
/// ```
/// use socketio_tokio::{RawArgs, Socket};
///
/// # fn attach(socket: Socket) {
/// socket.on("echo", |socket: Socket, RawArgs(args): RawArgs| async move {
///     let _ = socket.emit_raw("echo", args);
/// });
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RawArgs(pub Payload);

impl FromParts<EventContext> for RawArgs {
    fn from_parts(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(RawArgs(strip_event_name(&ctx.data)?))
    }
}

/// The binary attachments of the event, in placeholder order.
///
/// ```
/// use socketio_tokio::Bin;
///
/// # fn attach(socket: socketio_tokio::Socket) {
/// socket.on("upload", |Bin(buffers): Bin| async move {
///     println!("{} buffers", buffers.len());
/// });
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Bin(pub Vec<Bytes>);

impl FromParts<EventContext> for Bin {
    fn from_parts(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(Bin(ctx.data.attachments().to_vec()))
    }
}

/// The event's name (useful in a [`Socket::on_fallback`] handler).
///
/// ```
/// use socketio_tokio::EventName;
///
/// # fn attach(socket: socketio_tokio::Socket) {
/// socket.on_fallback(|EventName(name): EventName| async move {
///     println!("unhandled event {name}");
/// });
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct EventName(pub Str);

impl FromParts<EventContext> for EventName {
    fn from_parts(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(EventName(ctx.name.clone()))
    }
}

/// Answers the client's acknowledgement callback. When the client asked for
/// none, sending does nothing; when several handlers got the event, the
/// client gets the first acknowledgement sent.
///
/// ```
/// use socketio_tokio::{AckSender, Data};
///
/// # fn attach(socket: socketio_tokio::Socket) {
/// socket.on("add", |Data((a, b)): Data<(i64, i64)>, ack: AckSender| async move {
///     let _ = ack.send(&(a + b));
/// });
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AckSender {
    socket: Socket,
    id: Option<u64>,
    acked: Option<Arc<AtomicBool>>,
}

impl FromParts<EventContext> for AckSender {
    fn from_parts(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(AckSender {
            socket: ctx.socket.clone(),
            id: ctx.ack_id,
            acked: ctx.acked.clone(),
        })
    }
}

impl AckSender {
    /// Whether the client awaits an acknowledgement.
    pub fn is_awaited(&self) -> bool {
        self.id.is_some()
    }

    /// Acknowledges with `args`, by the one convention: a tuple is the
    /// argument list (`&(a, b)` two arguments, `&()` none), any other value
    /// one argument.
    ///
    /// # Errors
    ///
    /// [`EmitError`] when the arguments cannot be serialized or the socket is gone.
    pub fn send<T: Serialize + ?Sized>(self, args: &T) -> Result<(), EmitError> {
        let Some(id) = self.id else { return Ok(()) };
        let data = ack_data(self.socket.ns_str().clone(), id, args)?;
        self.send_ack(id, data)
    }

    /// Acknowledges with raw arguments: a JSON array and its attachments
    /// (as [`RawArgs`] gives them).
    ///
    /// # Errors
    ///
    /// [`EmitError::Disconnected`] when the socket is gone.
    pub fn send_raw(self, args: Payload) -> Result<(), EmitError> {
        let Some(id) = self.id else { return Ok(()) };
        self.send_ack(id, args)
    }

    fn send_ack(&self, id: u64, data: Payload) -> Result<(), EmitError> {
        if let Some(acked) = &self.acked
            && acked.swap(true, Ordering::AcqRel)
        {
            return Ok(());
        }
        self.socket.ack(id, data)
    }
}

/// The arguments of an event payload, without the event name: `["a",1,2]`
/// becomes `[1,2]`, attachments kept.
pub(crate) fn strip_event_name(payload: &Payload) -> Result<Payload, DataError> {
    let json = payload.json().as_str();
    let rest = after_first_element(json).ok_or(DataError::NoArguments)?;
    let mut out = String::with_capacity(rest.len() + 1);
    out.push('[');
    out.push_str(rest);
    Payload::from_json(Str::from(out), payload.attachments().to_vec())
        .map_err(|e| DataError::Custom(e.to_string()))
}

/// A payload `["name", ...args]` built from raw arguments `[...args]`.
pub(crate) fn with_event_name(name: &str, args: &Payload) -> Result<Payload, DataError> {
    let json = args.json().as_str().trim();
    let inner = json
        .strip_prefix('[')
        .ok_or_else(|| DataError::Custom("the arguments are not an array".to_owned()))?
        .trim_start();
    let name_json = serde_json::to_string(name)?;
    let mut out = String::with_capacity(json.len() + name_json.len() + 2);
    out.push('[');
    out.push_str(&name_json);
    if !inner.starts_with(']') {
        out.push(',');
    }
    out.push_str(inner);
    Payload::from_json(Str::from(out), args.attachments().to_vec())
        .map_err(|e| DataError::Custom(e.to_string()))
}

/// The text after the first element of a JSON array and its comma: for
/// `["a", 1, 2]`, `1, 2]`; for `["a"]`, `]`.
fn after_first_element(json: &str) -> Option<&str> {
    let body = json.trim_start().strip_prefix('[')?;
    let mut stream = serde_json::Deserializer::from_str(body).into_iter::<IgnoredAny>();
    stream.next()?.ok()?;
    let rest = body[stream.byte_offset()..].trim_start();
    Some(rest.strip_prefix(',').map_or(rest, str::trim_start))
}

/// A handler called with context `C`: an async closure (or function)
/// whose arguments all implement [`FromParts<C>`] (up to eight), returning
/// `()` or a `Result` whose error is logged.
pub trait Handler<C, Args>: Send + Sync + 'static {
    #[doc(hidden)]
    fn call(&self, ctx: &C) -> Result<BoxFuture<'static, ()>, ExtractError>;
}

/// A connect middleware: an async closure whose arguments all implement
/// [`FromParts<ConnectRequest>`], returning `Ok(())` to let the client in or
/// an error (a [`ConnectError`], or a message) to refuse it.
pub trait Middleware<Args>: Send + Sync + 'static {
    #[doc(hidden)]
    fn call(
        &self,
        req: &ConnectRequest,
    ) -> Result<BoxFuture<'static, Result<(), ConnectError>>, ExtractError>;
}

/// A handler with its argument types erased.
pub(crate) type ErasedHandler<C> =
    SharedFn<dyn Fn(&C) -> Result<BoxFuture<'static, ()>, ExtractError> + Send + Sync>;

/// A function that the lists holding it share.
///
/// Most handlers capture nothing: such a function has no size, so it is
/// kept as a static reference, with no allocation and no count to keep.
/// (A socket registers its handlers at each connect: with an `Arc` each,
/// the handlers took two of the idle connection's allocations apiece.)
pub(crate) enum SharedFn<F: ?Sized + 'static> {
    /// A function of no size and no drop glue, leaked at no cost.
    Static(&'static F),
    /// Any other function.
    Counted(Arc<F>),
}

impl<F: ?Sized> Clone for SharedFn<F> {
    fn clone(&self) -> Self {
        match self {
            SharedFn::Static(f) => SharedFn::Static(f),
            SharedFn::Counted(f) => SharedFn::Counted(f.clone()),
        }
    }
}

impl<F: ?Sized> SharedFn<F> {
    /// Whether it is a static reference, which holds nothing alive.
    pub(crate) fn is_static(&self) -> bool {
        matches!(self, SharedFn::Static(_))
    }

    /// Whether both are the same static function: the same code, with no
    /// state, so that either may stand for the other.
    pub(crate) fn same_static(&self, other: &Self) -> bool {
        match (self, other) {
            // Address and vtable both: every function of no size has the
            // same address.
            (SharedFn::Static(a), SharedFn::Static(b)) => std::ptr::eq(*a, *b),
            _ => false,
        }
    }
}

impl<F: ?Sized> std::ops::Deref for SharedFn<F> {
    type Target = F;

    fn deref(&self) -> &F {
        match self {
            SharedFn::Static(f) => f,
            SharedFn::Counted(f) => f,
        }
    }
}

/// Whether a value of type `T` can be leaked for free: it has no size, so
/// boxing it allocates nothing, and no drop glue, so nothing is skipped.
const fn leaks_for_free<T>() -> bool {
    std::mem::size_of::<T>() == 0 && !std::mem::needs_drop::<T>()
}

/// A connect middleware with its argument types erased.
pub(crate) type ErasedMiddleware = Arc<
    dyn Fn(&ConnectRequest) -> Result<BoxFuture<'static, Result<(), ConnectError>>, ExtractError>
        + Send
        + Sync,
>;

/// Erases a handler's argument types.
pub(crate) fn erase<C: 'static, A: 'static, H: Handler<C, A>>(handler: H) -> ErasedHandler<C> {
    let f = move |ctx: &C| handler.call(ctx);
    if leaks_for_free::<H>() {
        // The closure holds only `handler`: it has no size either.
        SharedFn::Static(Box::leak(Box::new(f)))
    } else {
        SharedFn::Counted(Arc::new(f))
    }
}

/// Erases a middleware's argument types.
pub(crate) fn erase_middleware<A: 'static, M: Middleware<A>>(middleware: M) -> ErasedMiddleware {
    Arc::new(move |req: &ConnectRequest| middleware.call(req))
}

macro_rules! impl_handler {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<C, F, Fut, $($ty,)*> Handler<C, ($($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Fut + Send + Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: HandlerResult,
            $($ty: FromParts<C> + Send + 'static,)*
        {
            fn call(&self, ctx: &C) -> Result<BoxFuture<'static, ()>, ExtractError> {
                $(let $ty = $ty::from_parts(ctx)?;)*
                let fut = (self)($($ty,)*);
                Ok(Box::pin(async move { fut.await.report("handler") }))
            }
        }

        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, E, $($ty,)*> Middleware<($($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<(), E>> + Send + 'static,
            E: Into<ConnectError>,
            $($ty: FromParts<ConnectRequest> + Send + 'static,)*
        {
            fn call(
                &self,
                req: &ConnectRequest,
            ) -> Result<BoxFuture<'static, Result<(), ConnectError>>, ExtractError> {
                $(let $ty = $ty::from_parts(req)?;)*
                let fut = (self)($($ty,)*);
                Ok(Box::pin(async move { fut.await.map_err(Into::into) }))
            }
        }
    };
}

impl_handler!();
impl_handler!(T1);
impl_handler!(T1, T2);
impl_handler!(T1, T2, T3);
impl_handler!(T1, T2, T3, T4);
impl_handler!(T1, T2, T3, T4, T5);
impl_handler!(T1, T2, T3, T4, T5, T6);
impl_handler!(T1, T2, T3, T4, T5, T6, T7);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_handler_that_captures_nothing_is_not_allocated() {
        let plain = erase::<Socket, _, _>(|| async {});
        assert!(matches!(plain, SharedFn::Static(_)));
        let shared = Arc::new(1);
        let captures = erase::<Socket, _, _>(move || {
            let _ = &shared;
            async {}
        });
        assert!(matches!(captures, SharedFn::Counted(_)));

        /// A handler of no size whose drop does something: leaking it
        /// would skip that.
        struct Dropping;
        impl Drop for Dropping {
            fn drop(&mut self) {}
        }
        impl Handler<Socket, ()> for Dropping {
            fn call(&self, _: &Socket) -> Result<BoxFuture<'static, ()>, ExtractError> {
                Ok(Box::pin(async {}))
            }
        }
        assert!(matches!(erase(Dropping), SharedFn::Counted(_)));
    }

    #[test]
    fn a_static_handler_stands_for_another_only_of_the_same_code() {
        /// The same closure, erased at each call.
        fn same() -> ErasedHandler<Socket> {
            erase::<Socket, _, _>(|| async {})
        }
        let other = erase::<Socket, _, _>(|| async {
            std::hint::black_box(1);
        });
        let shared = Arc::new(1);
        let captures = erase::<Socket, _, _>(move || {
            let _ = &shared;
            async {}
        });
        assert!(same().is_static() && other.is_static() && !captures.is_static());
        assert!(same().same_static(&same()));
        assert!(!same().same_static(&other));
        assert!(
            !captures.same_static(&captures.clone()),
            "counted: never the same"
        );
    }

    #[test]
    fn the_event_name_is_stripped_and_put_back() {
        let p = Payload::from_json(Str::from(r#"["a,b" , 1, {"x":[2]}]"#), Vec::new()).unwrap();
        let args = strip_event_name(&p).unwrap();
        assert_eq!(args.json().as_str(), r#"[1, {"x":[2]}]"#);
        let back = with_event_name("echo", &args).unwrap();
        assert_eq!(back.json().as_str(), r#"["echo",1, {"x":[2]}]"#);
        let none =
            strip_event_name(&Payload::from_json(Str::from(r#"["a"]"#), Vec::new()).unwrap())
                .unwrap();
        assert_eq!(none.json().as_str(), "[]");
        assert_eq!(
            with_event_name("e", &none).unwrap().json().as_str(),
            r#"["e"]"#
        );
    }
}
