//! Event handlers and the extractors their arguments are made of.
//!
//! An event handler is an async closure (or function) whose arguments each
//! implement [`FromEvent`]: the [`Socket`], the typed arguments
//! ([`Data`], [`TryData`]), the raw arguments ([`RawArgs`], [`Bin`]), the
//! [`EventName`] and an [`AckSender`]. When an extractor fails (the data does
//! not match the type), the handler is not called and the failure is logged.

use std::fmt;
use std::future::Future;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use socketio_proto::socketio_packet::{DataError, Packet};
use socketio_proto::{Payload, Str};

use crate::api::socket::Socket;
use crate::error::EmitError;

/// What a handler may return: `()`, or a `Result` whose error is logged.
pub trait HandlerResult: Send {
    /// Logs an error, if any, with `what` (the handler's kind).
    fn report(self, what: &str);
}

impl HandlerResult for () {
    fn report(self, _what: &str) {}
}

impl<E: fmt::Display + Send> HandlerResult for Result<(), E> {
    fn report(self, what: &str) {
        if let Err(e) = self {
            tracing::warn!(error = %e, "{what} failed");
        }
    }
}

/// One event received by a socket, as extractors see it.
#[derive(Debug, Clone)]
pub struct EventContext {
    pub(crate) socket: Socket,
    pub(crate) name: Str,
    pub(crate) data: Payload,
    pub(crate) ack_id: Option<u64>,
}

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

/// Why an extractor could not build its value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The arguments do not match the requested type.
    #[error("arguments do not match: {0}")]
    Data(#[from] DataError),
}

/// A value that an event handler takes as an argument, built from the event.
pub trait FromEvent: Sized {
    /// Builds the value.
    ///
    /// # Errors
    ///
    /// [`ExtractError`] when the event does not fit; the handler is then not called.
    fn from_event(ctx: &EventContext) -> Result<Self, ExtractError>;
}

impl FromEvent for Socket {
    fn from_event(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(ctx.socket.clone())
    }
}

impl FromEvent for EventContext {
    fn from_event(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(ctx.clone())
    }
}

/// The event's arguments, deserialized: one argument is deserialized as `T`,
/// several (or none) as a sequence (`T` is then a tuple or a `Vec`). Binary
/// buffers come back in place of their placeholders (use `bytes::Bytes` or
/// `serde_bytes::ByteBuf` fields).
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
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned> FromEvent for Data<T> {
    fn from_event(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(Data(event_data(&ctx.data)?))
    }
}

/// The arguments as [`Data`] does, or why they do not match: the handler
/// runs either way.
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

impl<T: DeserializeOwned> FromEvent for TryData<T> {
    fn from_event(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(TryData(event_data(&ctx.data)))
    }
}

/// Deserializes event arguments as [`Data`] does.
pub(crate) fn event_data<T: DeserializeOwned>(payload: &Payload) -> Result<T, DataError> {
    let count = payload.args::<Vec<IgnoredAny>>(1)?.len();
    if count == 1 {
        let (value,): (T,) = payload.args(1)?;
        Ok(value)
    } else {
        payload.args(1)
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

impl FromEvent for RawArgs {
    fn from_event(ctx: &EventContext) -> Result<Self, ExtractError> {
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

impl FromEvent for Bin {
    fn from_event(ctx: &EventContext) -> Result<Self, ExtractError> {
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

impl FromEvent for EventName {
    fn from_event(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(EventName(ctx.name.clone()))
    }
}

/// Answers the client's acknowledgement callback. When the client asked for
/// none, sending does nothing.
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
}

impl FromEvent for AckSender {
    fn from_event(ctx: &EventContext) -> Result<Self, ExtractError> {
        Ok(AckSender {
            socket: ctx.socket.clone(),
            id: ctx.ack_id,
        })
    }
}

impl AckSender {
    /// Whether the client awaits an acknowledgement.
    pub fn is_awaited(&self) -> bool {
        self.id.is_some()
    }

    /// Acknowledges with `args`: a tuple, `Vec` or array gives one argument
    /// per element, `()` none, any other value one argument.
    ///
    /// # Errors
    ///
    /// [`EmitError`] when the arguments cannot be serialized or the socket is gone.
    pub fn send<T: Serialize + ?Sized>(self, args: &T) -> Result<(), EmitError> {
        let Some(id) = self.id else { return Ok(()) };
        let packet = Packet::ack(self.socket.ns_str().clone(), id, args)?;
        let data = match packet.kind {
            socketio_proto::PacketKind::Ack { data, .. } => data,
            _ => Payload::default(),
        };
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

/// An event handler, its argument types erased.
pub(crate) trait ErasedHandler: Send + Sync {
    fn call(&self, ctx: EventContext) -> Result<BoxFuture<'static, ()>, ExtractError>;
}

/// A function that handles an event: an async closure whose arguments all
/// implement [`FromEvent`] (up to six), returning `()` or a `Result` whose
/// error is logged.
pub trait EventHandler<Args>: Send + Sync + 'static {
    #[doc(hidden)]
    fn call(&self, ctx: &EventContext) -> Result<BoxFuture<'static, ()>, ExtractError>;
}

pub(crate) struct Erased<H, Args> {
    pub(crate) handler: H,
    pub(crate) _args: std::marker::PhantomData<fn() -> Args>,
}

impl<H: EventHandler<Args>, Args: 'static> ErasedHandler for Erased<H, Args> {
    fn call(&self, ctx: EventContext) -> Result<BoxFuture<'static, ()>, ExtractError> {
        self.handler.call(&ctx)
    }
}

macro_rules! impl_event_handler {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, $($ty,)*> EventHandler<($($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Fut + Send + Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: HandlerResult,
            $($ty: FromEvent + Send + 'static,)*
        {
            fn call(&self, ctx: &EventContext) -> Result<BoxFuture<'static, ()>, ExtractError> {
                $(let $ty = $ty::from_event(ctx)?;)*
                let fut = (self)($($ty,)*);
                Ok(Box::pin(async move { fut.await.report("event handler") }))
            }
        }
    };
}

impl_event_handler!();
impl_event_handler!(T1);
impl_event_handler!(T1, T2);
impl_event_handler!(T1, T2, T3);
impl_event_handler!(T1, T2, T3, T4);
impl_event_handler!(T1, T2, T3, T4, T5);
impl_event_handler!(T1, T2, T3, T4, T5, T6);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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

    #[test]
    fn one_argument_is_the_value_several_a_sequence() {
        let one = Payload::from_json(Str::from(r#"["e",{"a":1}]"#), Vec::new()).unwrap();
        let v: serde_json::Value = event_data(&one).unwrap();
        assert_eq!(v, serde_json::json!({"a":1}));
        let two = Payload::from_json(Str::from(r#"["e",1,2]"#), Vec::new()).unwrap();
        let t: (u8, u8) = event_data(&two).unwrap();
        assert_eq!(t, (1, 2));
    }
}
