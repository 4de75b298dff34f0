//! [`Socket`]: one client on one namespace, and what the application does with it.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use http::{HeaderMap, Uri};
use serde::Serialize;
use serde::de::DeserializeOwned;
use socketio_proto::socketio_packet::{DataError, Packet, ProtocolVersion};
use socketio_proto::{DisconnectReason, Encoded, PacketKind, Payload, Str, TransportKind};
use tokio::sync::oneshot;

use crate::api::extract::{
    DisconnectContext, ErasedHandler, EventContext, Handler, erase, with_event_name,
};
use crate::api::link::{Link, emit_error, ignore_dropped};
use crate::api::ns::NsInner;
use crate::api::operators::BroadcastOperator;
use crate::api::server::{Shared, own_room};
use crate::args::RoomParam;
use crate::args::{event_encoded, event_packet, from_args};
use crate::error::{AckError, EmitError};
use crate::handler_map::HandlerMap;
use crate::request_head::RequestHead;

/// What the HTTP request that opened a connection told.
#[derive(Debug)]
pub(crate) struct HttpInfo {
    pub(crate) head: RequestHead,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) time: SystemTime,
}

/// The handshake of a socket: the opening HTTP request's headers and query,
/// the client's address, the time, and the auth object sent with the
/// namespace's CONNECT.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub(crate) http: Arc<HttpInfo>,
    /// What the namespace's CONNECT carried, when it carried anything:
    /// shared, so that the many sockets whose CONNECT is bare keep 8 bytes
    /// and a clone of the handshake allocates nothing.
    pub(crate) connect: Option<Arc<ConnectArgs>>,
}

/// The auth object and the namespace's query of a CONNECT.
#[derive(Debug, Clone)]
pub(crate) struct ConnectArgs {
    pub(crate) auth: Option<Payload>,
    pub(crate) nsp_query: Option<Str>,
}

impl Handshake {
    /// The handshake of `http` with what the CONNECT carried.
    pub(crate) fn new(http: Arc<HttpInfo>, auth: Option<Payload>, nsp_query: Option<Str>) -> Self {
        let connect = (auth.is_some() || nsp_query.is_some())
            .then(|| Arc::new(ConnectArgs { auth, nsp_query }));
        Handshake { http, connect }
    }
}

impl Handshake {
    /// The headers of the request that opened the connection.
    pub fn headers(&self) -> &HeaderMap {
        self.http.head.headers()
    }

    /// The URI of that request.
    pub fn uri(&self) -> &Uri {
        self.http.head.uri()
    }

    /// Its query string (without `?`).
    pub fn query(&self) -> &str {
        self.http.head.query()
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        socketio_proto::http::query_param(self.query(), name)
    }

    /// The extensions of the request that opened the connection that the
    /// server keeps: the values of the types named with
    /// [`SocketIoBuilder::keep_extension`](crate::SocketIoBuilder::keep_extension),
    /// which the tower layers in front of the server put there (an
    /// authenticated user, say).
    ///
    /// ```
    /// # fn f(handshake: &socketio_tokio::Handshake) {
    /// #[derive(Clone)]
    /// struct User(String);
    /// if let Some(User(name)) = handshake.extensions().get::<User>() {
    ///     println!("{name} connected");
    /// }
    /// # }
    /// ```
    pub fn extensions(&self) -> &http::Extensions {
        self.http.head.extensions()
    }

    /// The client's address, when the server knows it: [`SocketIo::serve`]
    /// records it; under another server, put a [`RemoteAddr`] (or a
    /// [`SocketAddr`]) in the request's extensions.
    ///
    /// [`SocketIo::serve`]: crate::SocketIo::serve
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.http.remote_addr
    }

    /// When the connection opened.
    pub fn time(&self) -> SystemTime {
        self.http.time
    }

    /// When the connection opened, in milliseconds since the Unix epoch
    /// (the reference's `issued`).
    pub fn issued(&self) -> u64 {
        self.http
            .time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// The auth object, deserialized.
    ///
    /// # Errors
    ///
    /// [`DataError`] when the client sent none or it does not match `T`.
    pub fn auth<T: DeserializeOwned>(&self) -> Result<T, DataError> {
        match self.auth_payload() {
            Some(p) => p.deserialize(),
            None => Err(DataError::NoArguments),
        }
    }

    /// The auth object as sent, if any.
    pub fn auth_payload(&self) -> Option<&Payload> {
        self.connect.as_ref()?.auth.as_ref()
    }

    /// The query of the namespace (`/admin?token=x`), sent by old
    /// (Socket.IO 2) clients in place of an auth object.
    pub fn nsp_query(&self) -> Option<&str> {
        self.connect.as_ref()?.nsp_query.as_deref()
    }
}

/// The client's address, for servers other than [`SocketIo::serve`]: put it
/// in each request's extensions and the handshake reports it.
///
/// [`SocketIo::serve`]: crate::SocketIo::serve
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// Typed data attached to a socket, shared by its clones.
///
/// ```
/// # fn f(socket: socketio_tokio::Socket) {
/// #[derive(Clone)]
/// struct User { name: String }
/// socket.extensions().insert(User { name: "ana".into() });
/// let user: Option<User> = socket.extensions().get();
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Extensions(Arc<RwLock<http::Extensions>>);

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions").finish_non_exhaustive()
    }
}

impl Extensions {
    /// Stores `value`, returning the value of that type stored before.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(value)
    }

    /// A clone of the stored value of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get::<T>()
            .cloned()
    }

    /// Removes and returns the stored value of type `T`.
    pub fn remove<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove::<T>()
    }

    /// A new set of these values, with `over`'s values in place of these
    /// where both have one of a type.
    pub(crate) fn merged_with(&self, over: &Extensions) -> Extensions {
        let mut merged = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        merged.extend(over.0.read().unwrap_or_else(|e| e.into_inner()).clone());
        Extensions(Arc::new(RwLock::new(merged)))
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get::<T>()
            .is_some()
    }
}

pub(crate) type AnyListener = Arc<dyn Fn(&Socket, &str, &Payload) + Send + Sync>;
pub(crate) type EventMiddleware =
    Arc<dyn Fn(Socket, EventInfo) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;
pub(crate) type ErrorListener = Arc<dyn Fn(&Socket, &SocketError) + Send + Sync>;
pub(crate) type UpgradeListener = Arc<dyn Fn(&Socket) + Send + Sync>;

/// An incoming event, as a per-event middleware sees it.
#[derive(Debug, Clone)]
pub struct EventInfo {
    /// The event name.
    pub name: Str,
    /// The whole payload (event name first).
    pub data: Payload,
    /// Whether the client awaits an acknowledgement.
    pub has_ack: bool,
}

/// What a socket's error listeners ([`Socket::on_error`]) get: the
/// reference's `error` event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SocketError {
    /// A per-event middleware refused an event.
    #[error("event {event} refused: {message}")]
    Middleware {
        /// The event.
        event: Str,
        /// The middleware's error.
        message: String,
    },
    /// An event's arguments did not fit its handler's extractors: the
    /// handler was not called.
    #[error("event {event} not handled: {message}")]
    Extract {
        /// The event.
        event: Str,
        /// Why.
        message: String,
    },
}

/// Names a listener added to a socket, to remove it with
/// [`Socket::off`] (closures cannot be compared, as the reference compares
/// functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

#[derive(Clone)]
pub(crate) struct Entry<H> {
    /// The listener's id shifted left by one, with [`Entry::ONCE`] in the
    /// low bit: a socket keeps an entry per handler, and the flag would
    /// otherwise pad each by 8 bytes.
    key: u64,
    pub(crate) handler: H,
}

impl<H> crate::handler_map::Ranked for Entry<H> {
    /// The listener's id: ids count up from 1 in the order listeners are
    /// added.
    fn rank(&self) -> u64 {
        self.id().0
    }
}

impl<H> Entry<H> {
    /// The low bit of `key`: the listener runs once.
    const ONCE: u64 = 1;

    /// The entry of listener `id` (ids count up from 1, far below 2^63).
    fn new(id: ListenerId, once: bool, handler: H) -> Self {
        Entry {
            key: id.0 << 1 | u64::from(once),
            handler,
        }
    }

    /// The listener's id.
    pub(crate) fn id(&self) -> ListenerId {
        ListenerId(self.key >> 1)
    }

    /// Whether the listener runs once.
    pub(crate) fn once(&self) -> bool {
        self.key & Self::ONCE != 0
    }
}

/// The handlers an event starts.
pub(crate) enum Handlers<H> {
    One(Option<H>),
    Many(Vec<H>),
}

impl<H> IntoIterator for Handlers<H> {
    type Item = H;
    type IntoIter = std::iter::Chain<std::option::IntoIter<H>, std::vec::IntoIter<H>>;

    fn into_iter(self) -> Self::IntoIter {
        match self {
            Handlers::One(h) => h.into_iter().chain(Vec::new()),
            Handlers::Many(all) => None.into_iter().chain(all),
        }
    }
}

/// A socket's event handlers by name.
pub(crate) type EventHandlers = HandlerMap<Entry<ErasedHandler<EventContext>>>;

/// Whether two sockets' entries stand for the same handler: the same
/// listener id and flags, and the same code with nothing captured.
fn same_handler(
    a: &Entry<ErasedHandler<EventContext>>,
    b: &Entry<ErasedHandler<EventContext>>,
) -> bool {
    a.key == b.key && a.handler.same_static(&b.handler)
}

/// A socket's listeners: the event handlers, and the rest boxed apart.
///
/// Most sockets register event handlers only: the other lists (the
/// catch-all, outgoing, disconnect, error and upgrade listeners, the event
/// middlewares and the fallback) are a box made on their first use, 8
/// bytes until then. The lists are read through `Deref` (an empty set
/// while there is no box) and written through `DerefMut` (which makes it).
///
/// A socket whose connect handler registers the same handlers as the
/// namespace's last socket, in the same order, holds that socket's list
/// from its first handler on (`HandlerMap::follow`): `next_id`'s top bit
/// says so, while every id given so far is one of that list's handlers,
/// and the list is settled before anything else reads or changes it.
#[derive(Default)]
pub(crate) struct Listeners {
    events: EventHandlers,
    rare: Option<Box<RareListeners>>,
    /// The last id given, and [`Listeners::FOLLOWING`].
    next_id: u64,
}

/// The listeners most sockets have none of.
#[derive(Default)]
pub(crate) struct RareListeners {
    pub(crate) fallback: Option<ErasedHandler<EventContext>>,
    pub(crate) any: Vec<Entry<AnyListener>>,
    pub(crate) any_outgoing: Vec<Entry<AnyListener>>,
    pub(crate) middlewares: Vec<EventMiddleware>,
    pub(crate) disconnecting: Vec<Entry<ErasedHandler<DisconnectContext>>>,
    pub(crate) disconnect: Vec<Entry<ErasedHandler<DisconnectContext>>>,
    pub(crate) error: Vec<Entry<ErrorListener>>,
    pub(crate) upgrade: Vec<Entry<UpgradeListener>>,
}

impl RareListeners {
    /// Whether it holds no listener.
    fn is_empty(&self) -> bool {
        self.fallback.is_none()
            && self.any.is_empty()
            && self.any_outgoing.is_empty()
            && self.middlewares.is_empty()
            && self.disconnecting.is_empty()
            && self.disconnect.is_empty()
            && self.error.is_empty()
            && self.upgrade.is_empty()
    }
}

/// What a socket without rare listeners reads.
static NO_RARE_LISTENERS: RareListeners = RareListeners {
    fallback: None,
    any: Vec::new(),
    any_outgoing: Vec::new(),
    middlewares: Vec::new(),
    disconnecting: Vec::new(),
    disconnect: Vec::new(),
    error: Vec::new(),
    upgrade: Vec::new(),
};

impl std::ops::Deref for Listeners {
    type Target = RareListeners;

    fn deref(&self) -> &RareListeners {
        self.rare.as_deref().unwrap_or(&NO_RARE_LISTENERS)
    }
}

impl std::ops::DerefMut for Listeners {
    fn deref_mut(&mut self) -> &mut RareListeners {
        self.rare.get_or_insert_with(Box::default)
    }
}

impl Listeners {
    /// The top bit of `next_id`: the event handlers' list is the
    /// namespace's template, of which this socket registered the handlers
    /// whose ids it gave (all of them, from 1 on); ids stay far below it.
    const FOLLOWING: u64 = 1 << 63;

    fn next_id(&mut self) -> ListenerId {
        self.settle();
        self.next_id += 1;
        ListenerId(self.next_id)
    }

    /// Makes the event handlers' list the socket's own (`HandlerMap::settle`)
    /// if it is still the template's.
    fn settle(&mut self) {
        if self.next_id & Self::FOLLOWING != 0 {
            self.next_id &= !Self::FOLLOWING;
            self.events.settle(self.next_id);
        }
    }

    /// The event handlers.
    pub(crate) fn events(&mut self) -> &mut EventHandlers {
        self.settle();
        &mut self.events
    }

    /// Adds a handler of `event` for a socket of namespace `ns`; its id.
    /// While every handler so far is the next of the namespace's last
    /// list, the socket holds that list; else its own, made with room for
    /// as many handlers as the last socket registered.
    fn add_event(
        &mut self,
        ns: &NsInner,
        event: Cow<'static, str>,
        handler: ErasedHandler<EventContext>,
        once: bool,
    ) -> ListenerId {
        let given = self.next_id & !Self::FOLLOWING;
        let id = ListenerId(given + 1);
        let entry = Entry::new(id, once, handler);
        let taken = if self.next_id & Self::FOLLOWING != 0 {
            self.events
                .follow(None, given, &event, &entry, same_handler)
        } else if given == 0 {
            let template = ns.handler_template();
            self.events
                .follow(Some(&template), 0, &event, &entry, same_handler)
        } else {
            false
        };
        if taken {
            self.next_id = id.0 | Self::FOLLOWING;
        } else {
            self.settle();
            self.next_id = id.0;
            self.events.reserve_for(ns.handlers_seen());
            self.events.push(event, entry);
        }
        id
    }

    /// Adds `handler` at the end of the list `list` picks; its id.
    fn push<H>(
        &mut self,
        list: fn(&mut RareListeners) -> &mut Vec<Entry<H>>,
        handler: H,
    ) -> ListenerId {
        let id = self.next_id();
        list(self).push(Entry::new(id, false, handler));
        id
    }

    /// The handlers of event `name` (once-only ones taken out), else the
    /// fallback.
    pub(crate) fn event_handlers(&mut self, name: &str) -> Handlers<ErasedHandler<EventContext>> {
        let handlers = self.events().take_of(
            name,
            |entries| match entries.len() {
                // Most events have one handler: no list to allocate.
                1 => Handlers::One(entries.next().map(|e| e.handler.clone())),
                _ => Handlers::Many(entries.map(|e| e.handler.clone()).collect()),
            },
            Entry::once,
        );
        match (handlers, &self.fallback) {
            (Handlers::Many(none), Some(fallback)) if none.is_empty() => {
                Handlers::One(Some(fallback.clone()))
            }
            (handlers, _) => handlers,
        }
    }

    /// The catch-all listeners.
    pub(crate) fn any(&self) -> Vec<AnyListener> {
        self.any.iter().map(|e| e.handler.clone()).collect()
    }

    /// The error listeners.
    pub(crate) fn errors(&self) -> Vec<ErrorListener> {
        self.error.iter().map(|e| e.handler.clone()).collect()
    }

    /// The upgrade listeners.
    pub(crate) fn upgrades(&self) -> Vec<UpgradeListener> {
        self.upgrade.iter().map(|e| e.handler.clone()).collect()
    }

    fn remove(&mut self, id: ListenerId) {
        self.events().retain(|e| e.id() != id);
        self.take_away(|rare| {
            rare.any.retain(|e| e.id() != id);
            rare.any_outgoing.retain(|e| e.id() != id);
            rare.disconnecting.retain(|e| e.id() != id);
            rare.disconnect.retain(|e| e.id() != id);
            rare.error.retain(|e| e.id() != id);
            rare.upgrade.retain(|e| e.id() != id);
        });
    }

    /// Shares the event handlers' list with the other sockets of the
    /// namespace that registered the same handlers, none of which holds
    /// anything (see [`HandlerMap::share`]).
    pub(crate) fn share_events(&mut self, template: &mut EventHandlers) {
        self.events()
            .share(template, same_handler, |e| e.handler.is_static());
    }

    /// Takes the namespace's list, `template`, when it equals this
    /// socket's (see [`HandlerMap::adopt`]); whether the socket's list is
    /// the template's now.
    pub(crate) fn adopt_events(&mut self, template: &EventHandlers) -> bool {
        self.events().adopt(template, same_handler)
    }

    /// Applies `change`, which only takes listeners away, to the rare
    /// lists: no box is made for it, and the box goes once they are empty.
    fn take_away(&mut self, change: impl FnOnce(&mut RareListeners)) {
        if let Some(rare) = self.rare.as_deref_mut() {
            change(rare);
            if rare.is_empty() {
                self.rare = None;
            }
        }
    }
}

pub(crate) struct SocketInner {
    pub(crate) id: Str,
    pub(crate) nsp: Str,
    pub(crate) version: ProtocolVersion,
    /// The server's parser, which this socket's emits are encoded with.
    pub(crate) parser: socketio_proto::Parser,
    pub(crate) link: Arc<Link>,
    pub(crate) shared: Weak<Shared>,
    pub(crate) ns: Arc<NsInner>,
    pub(crate) handshake: Handshake,
    pub(crate) extensions: Extensions,
    pub(crate) connected: AtomicBool,
    pub(crate) listeners: Mutex<Listeners>,
    /// Whether an outgoing listener is registered: a broadcast looks for
    /// none otherwise.
    pub(crate) outgoing: AtomicBool,
    /// Whether a disconnecting handler is registered: the rooms a leaving
    /// socket was in are kept for it only then.
    pub(crate) disconnecting: AtomicBool,
    /// Whether the socket is a recovered session.
    pub(crate) recovered: bool,
    /// Whether its emits are stored for recovery (recovery is on), and so
    /// go through the endpoint.
    pub(crate) stored: bool,
    /// What many sockets never set, boxed on first use: 8 bytes until then.
    pub(crate) extras: Mutex<Option<Box<SocketExtras>>>,
}

/// A socket's data and what goes with it.
#[derive(Default)]
pub(crate) struct SocketExtras {
    /// The application's data, as JSON: saved with the session when the
    /// socket drops, given back when it is recovered.
    pub(crate) data: Option<Str>,
    /// Fields added to the data as [`fetch_sockets`](crate::BroadcastOperator::fetch_sockets)
    /// describes it, kept out of the application's data.
    pub(crate) data_fields: Vec<(String, serde_json::Value)>,
    /// The rooms the socket was in when it left, while its disconnecting
    /// handlers run (it is out of them by then).
    pub(crate) left_rooms: Vec<Str>,
}

impl SocketInner {
    pub(crate) fn listeners(&self) -> MutexGuard<'_, Listeners> {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The socket's data and what goes with it, if any was set.
    pub(crate) fn extras(&self) -> MutexGuard<'_, Option<Box<SocketExtras>>> {
        self.extras.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The application's data, as JSON.
    pub(crate) fn data(&self) -> Option<Str> {
        self.extras().as_ref()?.data.clone()
    }

    /// Sets the application's data, as JSON.
    pub(crate) fn set_data(&self, json: Str) {
        self.extras().get_or_insert_default().data = Some(json);
    }

    /// Whether the socket has outgoing listeners.
    pub(crate) fn has_outgoing_listeners(&self) -> bool {
        self.outgoing.load(Ordering::Acquire)
    }
}

/// One client connected to one namespace: register event handlers, emit,
/// join rooms, broadcast to others.
///
/// A cheap handle: clone it into tasks. Once the socket is disconnected,
/// emits fail with [`EmitError::Disconnected`].
///
/// ```
/// use socketio_tokio::{AckSender, Data, SocketIo, Socket};
///
/// let io = SocketIo::new()?;
/// io.ns("/", |socket: Socket| async move {
///     socket.join("lobby");
///     socket.on("say", |socket: Socket, Data(text): Data<String>, ack: AckSender| async move {
///         let _ = socket.to("lobby").emit("said", &(socket.id(), &text));
///         let _ = ack.send(&"ok");
///     });
///     socket.on_disconnect(|socket: Socket, reason: socketio_tokio::DisconnectReason| async move {
///         println!("{} left: {reason}", socket.id());
///     });
/// });
/// # Ok::<(), socketio_tokio::BuildError>(())
/// ```
#[derive(Clone)]
pub struct Socket(pub(crate) Arc<SocketInner>);

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.0.id)
            .field("nsp", &self.0.nsp)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Socket {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Socket {
    // ----- getters -----

    /// The socket id (also the name of its own room).
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The namespace.
    pub fn ns(&self) -> &str {
        &self.0.nsp
    }

    pub(crate) fn ns_str(&self) -> &Str {
        &self.0.nsp
    }

    /// The handshake: headers, query, auth, address, time.
    pub fn handshake(&self) -> &Handshake {
        &self.0.handshake
    }

    /// The auth object the client sent when joining the namespace.
    ///
    /// # Errors
    ///
    /// [`DataError`] when there is none or it does not match `T`.
    pub fn auth<T: DeserializeOwned>(&self) -> Result<T, DataError> {
        self.0.handshake.auth()
    }

    /// Typed data attached to this socket.
    pub fn extensions(&self) -> &Extensions {
        &self.0.extensions
    }

    /// Whether the socket is still connected.
    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }

    /// Whether this socket is a session recovered after its client lost its
    /// connection (see
    /// [`SocketIoBuilder::connection_state_recovery`](crate::SocketIoBuilder::connection_state_recovery)):
    /// it has its old id, rooms, [`data`](Socket::data) and
    /// [`extensions`](Socket::extensions), and the client got every packet
    /// it missed. Middlewares were skipped unless
    /// [`Recovery::skip_middlewares`](crate::Recovery::skip_middlewares) is
    /// off; when they ran, the values they attached this time replace those
    /// of the session.
    pub fn recovered(&self) -> bool {
        self.0.recovered
    }

    /// The application's data attached to this socket with
    /// [`set_data`](Socket::set_data); `None` when there is none or it does
    /// not match `T`. With connection state recovery, it comes back with a
    /// recovered session.
    pub fn data<T: DeserializeOwned>(&self) -> Option<T> {
        let data = self.0.data()?;
        serde_json::from_str(&data).ok()
    }

    /// Attaches `data` to this socket, kept as JSON: the state that outlives
    /// a dropped connection when recovery is on (the reference's
    /// `socket.data`).
    ///
    /// # Errors
    ///
    /// [`EmitError::Encode`] when `data` cannot be serialized.
    pub fn set_data<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), EmitError> {
        let json = serde_json::to_string(data).map_err(|e| {
            EmitError::Encode(socketio_proto::socketio_packet::EncodeError::Custom(
                e.to_string(),
            ))
        })?;
        self.0.set_data(Str::from(json));
        Ok(())
    }

    /// Sets field `name` of the socket's data as
    /// [`fetch_sockets`](crate::BroadcastOperator::fetch_sockets) describes
    /// it, on this node and to the other nodes of a cluster, without
    /// touching the application's data: [`data`](Socket::data) does not
    /// see it and [`set_data`](Socket::set_data) does not erase it. Where
    /// instrumentation leaves what other servers read (the admin UI's
    /// `socket.data._admin`). The field is shown when the application's
    /// data is an object or unset; data of another JSON type is shown as
    /// it is.
    pub fn set_data_field(&self, name: &str, value: serde_json::Value) {
        let mut extras = self.0.extras();
        let fields = &mut extras.get_or_insert_default().data_fields;
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => fields.push((name.to_owned(), value)),
        }
    }

    /// The id of the Engine.IO session the socket runs over (the
    /// reference's `socket.conn.id`): the same for every namespace the
    /// client joined over one connection.
    pub fn conn_id(&self) -> Str {
        self.0.link.sid()
    }

    /// The connection's transport now: long-polling, or WebSocket once
    /// upgraded (the reference's `socket.conn.transport.name`).
    pub fn transport(&self) -> TransportKind {
        self.0.link.transport()
    }

    // ----- handlers -----

    /// Adds a handler of event `event`, after the others of that event
    /// (several may handle one event, each with the same arguments; the
    /// client gets the first acknowledgement sent). Returns its id, for
    /// [`off`](Socket::off).
    ///
    /// The handler is an async closure whose arguments are extractors (see
    /// the [module](crate::FromParts) list): [`Socket`],
    /// [`Data`](crate::Data), [`TryData`](crate::TryData),
    /// [`AckSender`](crate::AckSender), [`State`](crate::State), ...
    /// A handler that panics or returns an error is logged; the socket goes on.
    ///
    /// The event's name is a `&'static str` (kept as it is, with no copy per
    /// socket) or a `String`. A handler that captures nothing (it takes what
    /// it needs through extractors) costs nothing per socket, and sockets
    /// that register the same such handlers share one list of them.
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// use socketio_tokio::{AckSender, Data};
    /// socket.on("ping", |ack: AckSender| async move { let _ = ack.send(&"pong"); });
    /// socket.on("sum", |Data(v): Data<Vec<i64>>, ack: AckSender| async move {
    ///     let _ = ack.send(&v.iter().sum::<i64>());
    /// });
    /// # }
    /// ```
    pub fn on<H, A>(&self, event: impl Into<Cow<'static, str>>, handler: H) -> ListenerId
    where
        H: Handler<EventContext, A>,
        A: 'static,
    {
        self.add_event(event.into(), erase(handler), false)
    }

    /// Adds a handler of event `event` that runs for the next such event
    /// only (the reference's `socket.once`).
    pub fn once<H, A>(&self, event: impl Into<Cow<'static, str>>, handler: H) -> ListenerId
    where
        H: Handler<EventContext, A>,
        A: 'static,
    {
        self.add_event(event.into(), erase(handler), true)
    }

    fn add_event(
        &self,
        event: Cow<'static, str>,
        handler: ErasedHandler<EventContext>,
        once: bool,
    ) -> ListenerId {
        self.0
            .listeners()
            .add_event(&self.0.ns, event, handler, once)
    }

    /// Removes the listener `id` (an event handler, a catch-all, a
    /// disconnect, error or upgrade listener).
    pub fn off(&self, id: ListenerId) {
        self.0.listeners().remove(id);
    }

    /// Removes every handler of `event` (the reference's
    /// `removeAllListeners(event)`).
    pub fn remove_all_listeners(&self, event: &str) {
        self.0.listeners().events().remove(event);
    }

    /// How many handlers event `event` has (the reference's `listenerCount`).
    pub fn listener_count(&self, event: &str) -> usize {
        self.0.listeners().events().get(event).len()
    }

    /// Handles every event that has no handler of its own.
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// use socketio_tokio::{EventName, RawArgs};
    /// socket.on_fallback(|EventName(name): EventName, RawArgs(args): RawArgs| async move {
    ///     println!("unhandled {name}: {}", args.json());
    /// });
    /// # }
    /// ```
    pub fn on_fallback<H, A>(&self, handler: H)
    where
        H: Handler<EventContext, A>,
        A: 'static,
    {
        self.0.listeners().fallback = Some(erase(handler));
    }

    /// Calls `listener` with every incoming event (before the per-event
    /// middlewares and the handlers), after the catch-all listeners added
    /// before (the reference's `socket.onAny`).
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// let id = socket.on_any(|socket, event, payload| {
    ///     println!("{} got {event}: {}", socket.id(), payload.json());
    /// });
    /// socket.off(id); // the reference's offAny(listener)
    /// # }
    /// ```
    pub fn on_any<F>(&self, listener: F) -> ListenerId
    where
        F: Fn(&Socket, &str, &Payload) + Send + Sync + 'static,
    {
        self.add_any(Arc::new(listener), false, false)
    }

    /// Calls `listener` with every incoming event, before the catch-all
    /// listeners added before (the reference's `socket.prependAny`).
    pub fn prepend_any<F>(&self, listener: F) -> ListenerId
    where
        F: Fn(&Socket, &str, &Payload) + Send + Sync + 'static,
    {
        self.add_any(Arc::new(listener), false, true)
    }

    /// Calls `listener` with every event sent to this socket (emits and
    /// broadcasts), as the reference's `socket.onAnyOutgoing`.
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// socket.on_any_outgoing(|_socket, event, _payload| println!("sending {event}"));
    /// # }
    /// ```
    pub fn on_any_outgoing<F>(&self, listener: F) -> ListenerId
    where
        F: Fn(&Socket, &str, &Payload) + Send + Sync + 'static,
    {
        self.add_any(Arc::new(listener), true, false)
    }

    /// Calls `listener` with every outgoing event, before the outgoing
    /// listeners added before (the reference's `socket.prependAnyOutgoing`).
    pub fn prepend_any_outgoing<F>(&self, listener: F) -> ListenerId
    where
        F: Fn(&Socket, &str, &Payload) + Send + Sync + 'static,
    {
        self.add_any(Arc::new(listener), true, true)
    }

    fn add_any(&self, handler: AnyListener, outgoing: bool, first: bool) -> ListenerId {
        let mut listeners = self.0.listeners();
        let id = listeners.next_id();
        let entry = Entry::new(id, false, handler);
        let list = match outgoing {
            true => &mut listeners.any_outgoing,
            false => &mut listeners.any,
        };
        match first {
            true => list.insert(0, entry),
            false => list.push(entry),
        }
        if outgoing {
            self.0.outgoing.store(true, Ordering::Release);
        }
        id
    }

    /// Removes every catch-all listener of incoming events (the reference's
    /// `offAny()`).
    pub fn off_any(&self) {
        self.0.listeners().take_away(|rare| rare.any.clear());
    }

    /// Removes every listener of outgoing events (`offAnyOutgoing()`).
    pub fn off_any_outgoing(&self) {
        self.0
            .listeners()
            .take_away(|rare| rare.any_outgoing.clear());
    }

    /// The ids of the catch-all listeners of incoming events, in calling
    /// order (the reference's `listenersAny()`).
    pub fn listeners_any(&self) -> Vec<ListenerId> {
        self.0.listeners().any.iter().map(|e| e.id()).collect()
    }

    /// The ids of the listeners of outgoing events, in calling order
    /// (`listenersAnyOutgoing()`).
    pub fn listeners_any_outgoing(&self) -> Vec<ListenerId> {
        let listeners = self.0.listeners();
        listeners.any_outgoing.iter().map(|e| e.id()).collect()
    }

    /// Adds a per-event middleware (the reference's `socket.use`): it runs
    /// for every incoming event, in the order added, before the handler. An
    /// `Err` drops the event and reaches the socket's error listeners
    /// ([`on_error`](Socket::on_error)), as the reference's `error` event.
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// socket.use_middleware(|_socket, event| async move {
    ///     if event.name.starts_with("admin:") {
    ///         return Err("not allowed");
    ///     }
    ///     Ok(())
    /// });
    /// # }
    /// ```
    pub fn use_middleware<F, Fut, E>(&self, middleware: F)
    where
        F: Fn(Socket, EventInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let mw: EventMiddleware = Arc::new(move |socket, info| {
            let fut = middleware(socket, info);
            Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
        });
        self.0.listeners().middlewares.push(mw);
    }

    /// Calls `listener` with the socket's errors (the reference's `error`
    /// event): events a per-event middleware refused, events whose
    /// arguments did not fit their handler.
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// socket.on_error(|socket, error| eprintln!("{}: {error}", socket.id()));
    /// # }
    /// ```
    pub fn on_error<F>(&self, listener: F) -> ListenerId
    where
        F: Fn(&Socket, &SocketError) + Send + Sync + 'static,
    {
        let handler: ErrorListener = Arc::new(listener);
        self.0.listeners().push(|l| &mut l.error, handler)
    }

    /// Calls `listener` once the connection moved from long-polling to
    /// WebSocket (the reference's `socket.conn.on("upgrade")`).
    pub fn on_upgrade<F>(&self, listener: F) -> ListenerId
    where
        F: Fn(&Socket) + Send + Sync + 'static,
    {
        let handler: UpgradeListener = Arc::new(listener);
        self.0.listeners().push(|l| &mut l.upgrade, handler)
    }

    /// Gives `error` to the error listeners; a listener that panics is
    /// logged and the others still run.
    pub(crate) fn report_error(&self, error: SocketError) {
        tracing::debug!(%error, "socket error");
        let listeners = self.0.listeners().errors();
        for l in listeners {
            let called = std::panic::catch_unwind(AssertUnwindSafe(|| l(self, &error)));
            if called.is_err() {
                tracing::error!("error listener panicked");
            }
        }
    }

    /// Runs `handler` when the socket has left its namespace (the
    /// reference's `disconnect` event), after those added before. Its
    /// extractors: [`Socket`], [`DisconnectReason`], [`State`](crate::State), ...
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// use socketio_tokio::{DisconnectReason, Socket};
    /// socket.on_disconnect(|socket: Socket, reason: DisconnectReason| async move {
    ///     println!("{} disconnected: {reason}", socket.id());
    /// });
    /// # }
    /// ```
    pub fn on_disconnect<H, A>(&self, handler: H) -> ListenerId
    where
        H: Handler<DisconnectContext, A>,
        A: 'static,
    {
        self.0
            .listeners()
            .push(|l| &mut l.disconnect, erase(handler))
    }

    /// Runs `handler` when the socket is leaving its namespace, before the
    /// disconnect handlers, while [`rooms`](Socket::rooms) still lists the
    /// rooms it was in (the reference's `disconnecting` event).
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// use socketio_tokio::Socket;
    /// socket.on_disconnecting(|socket: Socket| async move {
    ///     for room in socket.rooms() {
    ///         let _ = socket.to(room).emit("user left", &socket.id());
    ///     }
    /// });
    /// # }
    /// ```
    pub fn on_disconnecting<H, A>(&self, handler: H) -> ListenerId
    where
        H: Handler<DisconnectContext, A>,
        A: 'static,
    {
        let id = self
            .0
            .listeners()
            .push(|l| &mut l.disconnecting, erase(handler));
        self.0.disconnecting.store(true, Ordering::Release);
        id
    }

    // ----- emitting -----

    /// Emits `event` to this client, `args` by the one convention: a tuple
    /// is the argument list (`&(a, b)` two arguments, `&()` none), any other
    /// value one argument (`&vec![1, 2]` one array); byte buffers
    /// (`bytes::Bytes`, `serde_bytes`) travel as binary.
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) -> Result<(), socketio_tokio::EmitError> {
    /// socket.emit("hello", &"world")?;              // one argument
    /// socket.emit("point", &(1, 2))?;               // two arguments
    /// socket.emit("list", &vec![1, 2, 3])?;         // one argument, an array
    /// socket.emit("file", &bytes::Bytes::from_static(b"\x00\x01"))?; // binary
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`EmitError::Encode`] when `args` cannot be serialized;
    /// [`EmitError::Disconnected`] when the socket is gone (with connection
    /// state recovery on, an emit that is not volatile is kept instead, for
    /// the session that may come back, and reaches it then);
    /// [`EmitError::BufferFull`] when the client does not read fast enough
    /// and its connection went over `max_buffer_size` (it is being closed
    /// with "transport error"; a volatile emit is dropped instead).
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        self.emitter().emit(event, args)
    }

    /// Emits `event` with raw arguments (a JSON array and its attachments,
    /// as [`RawArgs`](crate::RawArgs) gives them).
    ///
    /// # Errors
    ///
    /// As [`emit`](Socket::emit).
    pub fn emit_raw(&self, event: &str, args: Payload) -> Result<(), EmitError> {
        self.emitter().emit_raw(event, args)
    }

    /// Emits `event` and waits for the client's acknowledgement, for the
    /// server's ack timeout (see [`timeout`](Socket::timeout)).
    /// The acknowledgement's arguments are deserialized as `V` by the one
    /// convention: a tuple takes one argument per element, any other type
    /// one argument.
    ///
    /// ```
    /// # async fn f(socket: socketio_tokio::Socket) -> Result<(), socketio_tokio::AckError> {
    /// let answer: String = socket.emit_with_ack("question", &"why?")?.await?;
    /// let (a, b): (u32, u32) = socket.emit_with_ack("two answers", &())?.await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`emit`](Socket::emit); the future fails with [`AckError`].
    pub fn emit_with_ack<V, T>(&self, event: &str, args: &T) -> Result<AckFuture<V>, EmitError>
    where
        V: DeserializeOwned,
        T: Serialize + ?Sized,
    {
        self.emitter().emit_with_ack(event, args)
    }

    /// Emits with a given acknowledgement timeout.
    ///
    /// ```
    /// # async fn f(socket: socketio_tokio::Socket) {
    /// use std::time::Duration;
    /// match socket.timeout(Duration::from_secs(1)).emit_with_ack::<(u32,), _>("count", &()) {
    ///     Ok(ack) => println!("{:?}", ack.await),
    ///     Err(e) => println!("{e}"),
    /// }
    /// # }
    /// ```
    pub fn timeout(&self, timeout: Duration) -> Emitter<'_> {
        Emitter {
            timeout: Some(timeout),
            ..self.emitter()
        }
    }

    /// Emits as volatile: the packet is dropped if the client cannot take it now.
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// let _ = socket.volatile().emit("position", &(10, 20));
    /// # }
    /// ```
    pub fn volatile(&self) -> Emitter<'_> {
        Emitter {
            volatile: true,
            ..self.emitter()
        }
    }

    /// Whether the emit's WebSocket frames may be compressed (the
    /// reference's `socket.compress(false).emit(...)`; default true). Only a
    /// WebSocket that agreed on permessage-deflate
    /// ([`SocketIoBuilder::per_message_deflate`](crate::SocketIoBuilder::per_message_deflate))
    /// compresses, and only messages of its threshold and more.
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// let _ = socket.compress(false).emit("frame", &"already compressed data");
    /// # }
    /// ```
    pub fn compress(&self, compress: bool) -> Emitter<'_> {
        Emitter {
            compress,
            ..self.emitter()
        }
    }

    fn emitter(&self) -> Emitter<'_> {
        Emitter {
            socket: self,
            volatile: false,
            compress: true,
            timeout: None,
        }
    }

    /// Acknowledges the client's event `id`.
    pub(crate) fn ack(&self, id: u64, data: Payload) -> Result<(), EmitError> {
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        self.0.link.ack(&self.0.nsp, id, data)
    }

    /// Calls the outgoing listeners with an event sent to this socket; a
    /// listener that panics is logged and the others still run.
    pub(crate) fn notify_outgoing(&self, event: &str, data: &Payload) {
        if !self.0.has_outgoing_listeners() {
            return;
        }
        let listeners: Vec<AnyListener> = {
            let l = self.0.listeners();
            l.any_outgoing.iter().map(|e| e.handler.clone()).collect()
        };
        for l in listeners {
            let called =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(self, event, data)));
            if called.is_err() {
                tracing::error!(%event, "outgoing listener panicked");
            }
        }
    }

    // ----- broadcasting -----

    /// Every other socket of the namespace in `rooms`.
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// let _ = socket.to("room1").emit("news", &"hi");
    /// # }
    /// ```
    pub fn to(&self, rooms: impl RoomParam) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// An alias of [`to`](Socket::to).
    pub fn within(&self, rooms: impl RoomParam) -> BroadcastOperator {
        self.to(rooms)
    }

    /// Every other socket of the namespace not in `rooms`.
    pub fn except(&self, rooms: impl RoomParam) -> BroadcastOperator {
        self.broadcast().except(rooms)
    }

    /// Every other socket of the namespace.
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// let _ = socket.broadcast().emit("joined", &socket.id());
    /// # }
    /// ```
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(
            self.0.shared.clone(),
            self.0.nsp.clone(),
            Some(self.0.id.clone()),
        )
    }

    /// Every other socket of the namespace on this node.
    pub fn local(&self) -> BroadcastOperator {
        self.broadcast().local()
    }

    // ----- rooms -----

    /// Joins `rooms`.
    ///
    /// ```
    /// # fn f(socket: socketio_tokio::Socket) {
    /// socket.join("news");
    /// socket.join(["a", "b"]);
    /// # }
    /// ```
    pub fn join(&self, rooms: impl RoomParam) {
        let Some(shared) = self.0.shared.upgrade() else {
            return;
        };
        let mut state = shared.lock();
        for room in rooms.into_rooms() {
            state.join(&self.0.nsp, &self.0.id, room);
        }
    }

    /// Leaves `rooms`.
    pub fn leave(&self, rooms: impl RoomParam) {
        let Some(shared) = self.0.shared.upgrade() else {
            return;
        };
        let mut state = shared.lock();
        for room in rooms.into_rooms() {
            state.leave(&self.0.nsp, &self.0.id, &room);
        }
    }

    /// Leaves every room but its own.
    pub fn leave_all(&self) {
        let Some(shared) = self.0.shared.upgrade() else {
            return;
        };
        let mut state = shared.lock();
        for room in state.rooms_of(&self.0.nsp, &self.0.id) {
            if room != self.0.id {
                state.leave(&self.0.nsp, &self.0.id, &room);
            }
        }
    }

    /// The rooms this socket is in (its own id among them).
    pub fn rooms(&self) -> Vec<Str> {
        if !self.connected() {
            return self
                .0
                .extras()
                .as_ref()
                .map(|e| e.left_rooms.clone())
                .unwrap_or_default();
        }
        match self.0.shared.upgrade() {
            Some(shared) => shared.read().rooms_of(&self.0.nsp, &self.0.id),
            None => Vec::new(),
        }
    }

    // ----- disconnecting -----

    /// Makes the socket leave its namespace ("server namespace disconnect");
    /// the connection stays for the client's other namespaces.
    ///
    /// # Errors
    ///
    /// [`EmitError::Disconnected`] when the socket is gone already.
    pub fn disconnect(&self) -> Result<(), EmitError> {
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        self.0.link.disconnect(&self.0.nsp);
        Ok(())
    }

    /// Closes the client's whole connection: every socket of it disconnects
    /// ("forced server close").
    ///
    /// # Errors
    ///
    /// [`EmitError::Disconnected`] when the socket is gone already.
    pub fn close(&self) -> Result<(), EmitError> {
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        self.0.link.close(DisconnectReason::ForcedServerClose);
        Ok(())
    }
}

/// An emit with options: from [`Socket::timeout`], [`Socket::volatile`]
/// or [`Socket::compress`].
#[derive(Debug, Clone)]
pub struct Emitter<'a> {
    socket: &'a Socket,
    volatile: bool,
    compress: bool,
    timeout: Option<Duration>,
}

impl Emitter<'_> {
    /// Makes the emit volatile.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// Whether the emit's WebSocket frames may be compressed (see
    /// [`Socket::compress`]).
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// Sets the acknowledgement timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Emits `event` (see [`Socket::emit`]).
    ///
    /// # Errors
    ///
    /// As [`Socket::emit`].
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, args: &T) -> Result<(), EmitError> {
        let socket = &self.socket.0;
        // With no packet to show outgoing listeners or to keep for a
        // recovery, the frame is written straight from the arguments.
        if socket.parser == socketio_proto::Parser::Default
            && !socket.has_outgoing_listeners()
            && (!socket.stored || self.volatile)
            && self.socket.connected()
        {
            let encoded = event_encoded(&socket.nsp, event, args)?.with_compress(self.compress);
            return socket
                .link
                .send_encoded(&socket.nsp, encoded, self.volatile)
                .or_else(ignore_dropped)
                .map_err(emit_error);
        }
        let packet = event_packet(self.socket.0.nsp.clone(), event, args)?;
        self.send(packet)
    }

    /// Emits `event` with raw arguments (see [`Socket::emit_raw`]).
    ///
    /// # Errors
    ///
    /// As [`Socket::emit`].
    pub fn emit_raw(self, event: &str, args: Payload) -> Result<(), EmitError> {
        let data = with_event_name(event, &args).map_err(|e| {
            EmitError::Encode(socketio_proto::socketio_packet::EncodeError::Custom(
                e.to_string(),
            ))
        })?;
        let packet = Packet {
            nsp: self.socket.0.nsp.clone(),
            kind: PacketKind::Event {
                name: Str::from(event),
                data,
                id: None,
            },
        };
        self.send(packet)
    }

    fn send(self, packet: Packet) -> Result<(), EmitError> {
        let socket = self.socket;
        if !socket.connected() {
            // With recovery on, a socket whose connection dropped may come
            // back: what is emitted to it meanwhile is kept for it, as the
            // reference does, and reaches it once it is back.
            if socket.0.stored
                && !self.volatile
                && let Some(shared) = socket.0.shared.upgrade()
            {
                let _ = shared.broadcast(packet, &own_room(&socket.0.id, self.compress));
                return Ok(());
            }
            return Err(EmitError::Disconnected);
        }
        if let PacketKind::Event { name, data, .. } = &packet.kind {
            socket.notify_outgoing(name, data);
        }
        let shared = (socket.0.stored && !self.volatile)
            .then(|| socket.0.shared.upgrade())
            .flatten();
        let sent = match shared {
            Some(shared) => {
                shared.emit_stored(&socket.0.link, &socket.0.id, &packet, self.compress)
            }
            None => {
                let encoded = Encoded::with_parser(&packet, socket.0.version, socket.0.parser)
                    .with_compress(self.compress);
                socket
                    .0
                    .link
                    .send_encoded(&packet.nsp, encoded, self.volatile)
            }
        };
        sent.or_else(ignore_dropped).map_err(emit_error)
    }

    /// Emits `event` and waits for the acknowledgement (see [`Socket::emit_with_ack`]).
    ///
    /// # Errors
    ///
    /// As [`Socket::emit`].
    pub fn emit_with_ack<V, T>(self, event: &str, args: &T) -> Result<AckFuture<V>, EmitError>
    where
        V: DeserializeOwned,
        T: Serialize + ?Sized,
    {
        let socket = self.socket;
        let packet = event_packet(socket.0.nsp.clone(), event, args)?;
        if let PacketKind::Event { name, data, .. } = &packet.kind {
            socket.notify_outgoing(name, data);
        }
        let timeout = match self.timeout {
            Some(t) => t,
            None => socket
                .0
                .shared
                .upgrade()
                .map_or(Duration::from_secs(5), |s| s.options.ack_timeout),
        };
        let (reply, rx) = oneshot::channel();
        if !socket.connected() {
            return Err(EmitError::Disconnected);
        }
        socket
            .0
            .link
            .emit_with_ack(packet, timeout, self.compress, reply)?;
        Ok(AckFuture {
            rx,
            _v: PhantomData,
        })
    }
}

/// The client's acknowledgement of an emit: resolves to its arguments,
/// deserialized, or to an [`AckError`] (timeout, disconnection, mismatch).
#[derive(Debug)]
#[must_use = "an acknowledgement does nothing unless awaited"]
pub struct AckFuture<V> {
    pub(crate) rx: oneshot::Receiver<Result<Payload, AckError>>,
    pub(crate) _v: PhantomData<fn() -> V>,
}

impl<V: DeserializeOwned> AckFuture<V> {
    /// Waits for the raw acknowledgement: its JSON array and attachments.
    ///
    /// # Errors
    ///
    /// [`AckError::Timeout`] or [`AckError::Disconnected`].
    pub async fn raw(self) -> Result<Payload, AckError> {
        self.rx.await.unwrap_or(Err(AckError::Disconnected))
    }
}

impl<V: DeserializeOwned> Future for AckFuture<V> {
    type Output = Result<V, AckError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Ok(payload))) => {
                Poll::Ready(from_args(&payload, 0).map_err(AckError::from))
            }
            Poll::Ready(Ok(Err(e))) => Poll::Ready(Err(e)),
            Poll::Ready(Err(_)) => Poll::Ready(Err(AckError::Disconnected)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One polling request to `svc`, for session `sid` (none: a handshake).
    async fn call(
        svc: &crate::SocketIoService<crate::NotFound>,
        method: &str,
        sid: &str,
        body: &str,
    ) -> String {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let sid = match sid {
            "" => String::new(),
            sid => format!("&sid={sid}"),
        };
        let req = http::Request::builder()
            .method(method)
            .uri(format!("/socket.io/?EIO=4&transport=polling{sid}"))
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_owned(),
            )))
            .expect("a request");
        let res = svc.clone().oneshot(req).await.expect("an answer");
        let body = res.into_body().collect().await.expect("a body").to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    }

    #[tokio::test]
    async fn sockets_with_the_same_handlers_that_capture_nothing_share_one_list() {
        let Ok(io) = crate::SocketIo::new() else {
            panic!("a server");
        };
        io.ns("/", |socket: Socket| async move {
            socket.on("echo", |socket: Socket| async move {
                let _ = socket.emit("echo", &());
            });
            socket.on("join", |_: Socket| async move {});
        });
        let held = Arc::new(1);
        io.ns("/own", move |socket: Socket| {
            let held = held.clone();
            async move {
                socket.on("echo", move |_: Socket| {
                    let _ = &held;
                    async move {}
                });
            }
        });
        let svc = io.service();
        for _ in 0..2 {
            let open = call(&svc, "GET", "", "").await;
            let sid = open.split('"').nth(3).unwrap_or_default().to_owned();
            assert_eq!(call(&svc, "POST", &sid, "40").await, "ok");
            assert_eq!(call(&svc, "POST", &sid, "40/own,").await, "ok");
            assert!(call(&svc, "GET", &sid, "").await.contains("40/own,{"));
        }
        let shared = |nsp: &str| {
            let sockets = io.of(nsp).sockets();
            assert_eq!(sockets.len(), 2, "{nsp}");
            let (mut a, mut b) = (sockets[0].0.listeners(), sockets[1].0.listeners());
            assert_eq!(a.events().len(), b.events().len());
            a.events().shares_list_with(b.events())
        };
        assert!(shared("/"), "handlers that capture nothing: one list");
        assert!(
            !shared("/own"),
            "a handler that holds something: a list each"
        );
    }

    #[tokio::test]
    async fn a_socket_that_registers_part_of_the_last_sockets_handlers_has_those_only() {
        let Ok(io) = crate::SocketIo::new() else {
            panic!("a server");
        };
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counts = Arc::new(Mutex::new(Vec::new()));
        let (seen2, counts2) = (seen.clone(), counts.clone());
        io.ns("/", move |socket: Socket| {
            let nth = seen2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let counts = counts2.clone();
            async move {
                socket.on("a", |_: Socket| async move {});
                match nth {
                    // The first socket's list: `a`, `b`, `c`.
                    0 => {}
                    // `b` after another kind of listener: not the list's next.
                    1 => {
                        socket.on_disconnect(|| async move {});
                    }
                    // `a` and `b` only.
                    2 => {
                        socket.on("b", |_: Socket| async move {});
                        socket.once("c", |_: Socket| async move {});
                        socket.off(ListenerId(3));
                    }
                    _ => {}
                }
                if nth != 2 {
                    socket.on("b", |_: Socket| async move {});
                }
                if nth == 0 {
                    socket.on("c", |_: Socket| async move {});
                }
                let count = |e| socket.listener_count(e);
                counts
                    .lock()
                    .expect("counts")
                    .push((nth, [count("a"), count("b"), count("c")]));
            }
        });
        let svc = io.service();
        for _ in 0..4 {
            let open = call(&svc, "GET", "", "").await;
            let sid = open.split('"').nth(3).unwrap_or_default().to_owned();
            assert_eq!(call(&svc, "POST", &sid, "40").await, "ok");
            assert!(call(&svc, "GET", &sid, "").await.starts_with("40{"));
        }
        let mut counts = counts.lock().expect("counts").clone();
        counts.sort();
        assert_eq!(
            counts,
            [
                (0, [1, 1, 1]),
                (1, [1, 1, 0]),
                (2, [1, 1, 0]),
                (3, [1, 1, 0]),
            ]
        );
    }

    #[test]
    fn taking_listeners_away_makes_no_box_and_drops_an_emptied_one() {
        let mut listeners = Listeners::default();
        listeners.take_away(|rare| rare.any.clear());
        assert!(listeners.rare.is_none(), "nothing to take away: no box");
        assert!(listeners.any.is_empty(), "reads see the empty lists");
        let id = listeners.next_id();
        let error: ErrorListener = Arc::new(|_: &Socket, _: &SocketError| {});
        listeners.error.push(Entry::new(id, false, error));
        assert!(listeners.rare.is_some());
        listeners.remove(id);
        assert!(listeners.rare.is_none(), "the emptied box goes");
    }
}
