//! [`SocketIo`]: the server handle, and the state its connections share.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};
use std::time::Duration;

use serde::Serialize;
use socketio_proto::socketio_packet::Packet;
use socketio_proto::{
    Broadcast, BroadcastOptions, ClusterAction, ClusterOp, Config, ConnectionHandle, Counters,
    DisconnectReason, Endpoint, IdGenerator, PacketKind, Payload, RoomEvent, Str,
};
use tokio::sync::{oneshot, watch};

use crate::api::engine::EngineHandler;
use crate::api::link::{Batch, Link};
use crate::api::node::LocalNode;
use crate::api::ns::{IntoNsHandler, Namespace, NsInner};
use crate::api::operators::{AckStream, BroadcastOperator};
use crate::api::socket::{Socket, SocketInner};
use crate::args::RoomParam;
use crate::clock;
use crate::cluster::{Adapter, AdapterError, ServerSideEvent, ServerSideHandler};
use crate::config::{Options, SocketIoBuilder};
use crate::error::{AckError, BuildError, EmitError};
use crate::stats::Stats;

/// The endpoint as this binding keeps it: each session carries its
/// connection's link, each socket its handle. It is the one index of
/// sessions and sockets.
pub(crate) type State = Endpoint<Arc<Link>, Arc<SocketInner>>;

/// The endpoint under its lock.
///
/// Dropping it hands the cluster operations that the endpoint queued
/// meanwhile to the adapter, in order, before the lock is released: every
/// change of the endpoint reaches the other nodes through this one place,
/// right after it is made.
pub(crate) struct Locked<'a> {
    /// Always `Some` until dropped.
    state: Option<RwLockWriteGuard<'a, State>>,
    shared: &'a Shared,
    /// Where and when this hold began.
    #[cfg(feature = "lock-profile")]
    hold: crate::lock_profile::Hold,
}

impl Deref for Locked<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        match &self.state {
            Some(state) => state,
            None => unreachable!("the endpoint's guard is held until the drop"),
        }
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        match &mut self.state {
            Some(state) => state,
            None => unreachable!("the endpoint's guard is held until the drop"),
        }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let Some(mut state) = self.state.take() else {
            return;
        };
        let adapter = self.shared.adapter.get();
        while let Some(op) = state.poll_cluster_op() {
            if let Some(adapter) = adapter {
                adapter.publish(op);
            }
        }
        let mut any = false;
        if let Some(first) = state.poll_room_event() {
            // Queued under the endpoint's lock: in the order they happened.
            let mut queue = self.shared.room_queue();
            queue.push_back(first);
            queue.extend(std::iter::from_fn(|| state.poll_room_event()));
            any = true;
        }
        // The recovery store keeps packets and sessions for their window:
        // a task drops them at its end while it keeps any (one task; the
        // flag changes only under the endpoint's lock).
        if !self.shared.expiring.load(Ordering::Acquire)
            && state.poll_timeout().is_some()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            self.shared.expiring.store(true, Ordering::Release);
            runtime.spawn(expire_recovery(self.shared.me.clone()));
        }
        drop(state);
        #[cfg(feature = "lock-profile")]
        self.shared.lock_profile.released(self.hold);
        // The application's listeners run with the lock released.
        if any {
            self.shared.dispatch_room_events();
        }
    }
}

/// Where an operation from the cluster stands in the cluster's order.
pub(crate) enum Order<'a> {
    /// The cluster has no order (pub/sub).
    None,
    /// At `offset` in the cluster's order; published by this node if `own`.
    At { offset: &'a str, own: bool },
    /// This node's, and the cluster could not take it.
    Unpublished,
}

/// Drops the recovery store's packets and sessions at the end of their
/// window ([`Endpoint::handle_timeout`]) while the store keeps any, then
/// ends. The store also drops them when a packet is stored or a session
/// saved or restored; without this task a server gone quiet (after a
/// reconnect storm whose clients did not all come back, say) would keep
/// them until then. It holds the server weakly: a server dropped ends it.
async fn expire_recovery(shared: Weak<Shared>) {
    loop {
        let next = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut state = shared.state.write().unwrap_or_else(|e| e.into_inner());
            state.handle_timeout(clock::now());
            let next = state.poll_timeout();
            if next.is_none() {
                shared.expiring.store(false, Ordering::Release);
            }
            next
        };
        let Some(next) = next else {
            return;
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
    }
}

/// The endpoint under its lock, to read.
pub(crate) struct Read<'a> {
    /// Always `Some` until dropped.
    state: Option<RwLockReadGuard<'a, State>>,
    #[cfg(feature = "lock-profile")]
    shared: &'a Shared,
    #[cfg(feature = "lock-profile")]
    hold: crate::lock_profile::Hold,
}

impl Deref for Read<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        match &self.state {
            Some(state) => state,
            None => unreachable!("the endpoint's read guard is held until the drop"),
        }
    }
}

#[cfg(feature = "lock-profile")]
impl Drop for Read<'_> {
    fn drop(&mut self) {
        drop(self.state.take());
        self.shared.lock_profile.released(self.hold);
    }
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
    state: RwLock<State>,
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
    /// The cluster adapter, once attached.
    pub(crate) adapter: OnceLock<Arc<dyn Adapter>>,
    /// The handlers of the other nodes' server-side emits.
    pub(crate) server_side: RwLock<Vec<ServerSideHandler>>,
    /// The listeners of new namespaces.
    pub(crate) new_namespace: RwLock<Vec<NewNamespaceListener>>,
    /// The listeners of room changes.
    pub(crate) room_listeners: RwLock<Vec<RoomListener>>,
    /// The room changes not yet given to the listeners, in order.
    room_queue: Mutex<VecDeque<RoomEvent>>,
    /// Whether a thread is giving room changes to the listeners.
    dispatching_rooms: AtomicBool,
    /// The listeners of every new socket.
    pub(crate) connection_listeners: RwLock<Vec<ConnectionListener>>,
    /// The server's counters.
    pub(crate) stats: crate::stats::Stats,
    /// Whether [`expire_recovery`] runs.
    expiring: AtomicBool,
    /// This, held weakly, for the tasks that must not keep the server alive.
    me: Weak<Shared>,
    /// How the endpoint's lock is used.
    #[cfg(feature = "lock-profile")]
    pub(crate) lock_profile: crate::lock_profile::LockProfile,
}

/// A listener of every new socket.
pub(crate) type ConnectionListener = Arc<dyn Fn(&Socket) + Send + Sync>;

/// A listener of room changes.
pub(crate) type RoomListener = Arc<dyn Fn(&RoomEvent) + Send + Sync>;

/// A listener of new namespaces.
pub(crate) type NewNamespaceListener = Arc<dyn Fn(&str) + Send + Sync>;

impl Shared {
    /// Takes the endpoint lock: never held across an await, nor while a
    /// handler runs. It may be taken while a connection's task state is
    /// locked, never the other way round (the lock order in
    /// ARCHITECTURE.md).
    #[track_caller]
    pub(crate) fn lock(&self) -> Locked<'_> {
        #[cfg(feature = "lock-profile")]
        {
            let (state, hold) = self.lock_profile.take(
                std::panic::Location::caller(),
                || crate::lock_profile::taken(self.state.try_write()),
                || self.state.write().unwrap_or_else(|e| e.into_inner()),
            );
            Locked {
                state: Some(state),
                shared: self,
                hold,
            }
        }
        #[cfg(not(feature = "lock-profile"))]
        Locked {
            state: Some(self.state.write().unwrap_or_else(|e| e.into_inner())),
            shared: self,
        }
    }

    /// Takes the endpoint lock to read: many threads may hold it so at
    /// once (routing the requests of live sessions, planning broadcasts
    /// that change nothing, the application's queries), while a change
    /// ([`Shared::lock`]) waits for all of them. The same order and rules
    /// as `lock`.
    #[track_caller]
    pub(crate) fn read(&self) -> Read<'_> {
        #[cfg(feature = "lock-profile")]
        {
            let (state, hold) = self.lock_profile.take(
                std::panic::Location::caller(),
                || crate::lock_profile::taken(self.state.try_read()),
                || self.state.read().unwrap_or_else(|e| e.into_inner()),
            );
            Read {
                state: Some(state),
                shared: self,
                hold,
            }
        }
        #[cfg(not(feature = "lock-profile"))]
        Read {
            state: Some(self.state.read().unwrap_or_else(|e| e.into_inner())),
        }
    }

    fn room_queue(&self) -> MutexGuard<'_, VecDeque<RoomEvent>> {
        self.room_queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives the queued room changes to the application's room listeners,
    /// in order, from one thread at a time: a thread that finds another
    /// giving them leaves its own to it (so does a listener whose own room
    /// change queued more). A listener that panics is logged and the others
    /// still run.
    fn dispatch_room_events(&self) {
        loop {
            if self.dispatching_rooms.swap(true, Ordering::AcqRel) {
                return;
            }
            let listeners = self
                .room_listeners
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            loop {
                // Taken in a statement of its own: the queue's lock is
                // released before the listeners run (a listener that
                // broadcasts waits for the endpoint's lock, whose holder
                // may be waiting for the queue's).
                let Some(event) = self.room_queue().pop_front() else {
                    break;
                };
                for l in &listeners {
                    let called =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(&event)));
                    if called.is_err() {
                        tracing::error!(?event, "room listener panicked");
                    }
                }
            }
            self.dispatching_rooms.store(false, Ordering::Release);
            // Changes queued between the last look and the release are
            // given now, unless another thread took them.
            if self.room_queue().is_empty() {
                return;
            }
        }
    }

    /// Tells the adapter, if any, and the application's listeners that
    /// namespace `nsp` is served.
    pub(crate) fn namespace_added(&self, nsp: &str) {
        if let Some(adapter) = self.adapter.get() {
            adapter.add_namespace(nsp);
        }
        let listeners = self
            .new_namespace
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for l in listeners {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(nsp))).is_err() {
                tracing::error!(%nsp, "new namespace listener panicked");
            }
        }
    }

    // ----- delivery -----

    /// Broadcasts `packet` to the sockets `opts` selects (and, unless
    /// local, through the adapter to the other nodes).
    ///
    /// Returns the number of local connections it was handed to.
    pub(crate) fn broadcast(&self, packet: Packet, opts: &BroadcastOptions) -> usize {
        {
            // Planned under the read lock when that changes nothing in the
            // endpoint (neither published nor stored): broadcasts and the
            // routing of requests then go on side by side.
            let state = self.read();
            if let Some(plan) = state.plan_broadcast(&packet, opts) {
                let targets = links(&state, &plan);
                drop(state);
                return hand_over(targets, &packet, &plan, true, &self.stats);
            }
        }
        let mut state = self.lock();
        let plan = state.broadcast(clock::now(), &packet, opts);
        deliver(state, packet, plan, &self.stats)
    }

    /// Emits `packet` to the socket `sid` on `link`, through the endpoint
    /// so that it is stored for recovery with its offset (the reference
    /// sends a socket's emits through its adapter when recovery is on).
    pub(crate) fn emit_stored(
        &self,
        link: &Link,
        sid: &Str,
        packet: &Packet,
        compress: bool,
    ) -> Result<(), socketio_proto::SendError> {
        let mut state = self.lock();
        let opts = own_room(sid, compress);
        let plan = state.broadcast(clock::now(), packet, &opts);
        // Sent under the endpoint's lock: stored packets reach each
        // connection in offset order.
        if plan.deferred {
            // Delivered when the cluster gives it back with its offset.
            return Ok(());
        }
        let sent = link.send_encoded(&packet.nsp, plan.encoded, false);
        drop(state);
        sent
    }

    /// Carries out an operation another node published: delivers a
    /// broadcast as a local one is delivered, changes rooms, or
    /// disconnects sockets. Nothing is published again.
    pub(crate) fn apply_cluster_op(&self, op: ClusterOp) {
        self.apply_cluster_op_at(op, Order::None);
    }

    /// [`apply_cluster_op`](Shared::apply_cluster_op) for an operation in
    /// the cluster's order (see [`Endpoint::handle_cluster_op_at`]), or one
    /// of this node's that the cluster could not take (see
    /// [`Endpoint::handle_unpublished_op`]).
    pub(crate) fn apply_cluster_op_at(&self, op: ClusterOp, at: Order<'_>) {
        let (packet, nsp) = match &op {
            ClusterOp::Broadcast { packet, .. } => (Some(packet.clone()), packet.nsp.clone()),
            ClusterOp::AddSockets { nsp, .. }
            | ClusterOp::DelSockets { nsp, .. }
            | ClusterOp::DisconnectSockets { nsp, .. }
            | ClusterOp::PersistSession { nsp, .. } => (None, nsp.clone()),
        };
        let mut state = self.lock();
        let action = match at {
            Order::At { offset, own } => state.handle_cluster_op_at(clock::now(), op, offset, own),
            Order::Unpublished => state.handle_unpublished_op(clock::now(), op),
            Order::None => state.handle_cluster_op(clock::now(), op),
        };
        match action {
            ClusterAction::Broadcast(plan) => {
                if let Some(packet) = packet {
                    let recipients = deliver(state, packet, plan, &self.stats);
                    self.stats.broadcast(recipients);
                }
            }
            ClusterAction::Disconnect { targets, close } => {
                disconnect(state, &nsp, targets, close);
            }
            ClusterAction::Done => {}
        }
    }

    /// Disconnects the sockets of `nsp` that `opts` selects ("server
    /// namespace disconnect"), or closes their connections ("forced server
    /// close"), here and, unless local, on the other nodes.
    pub(crate) fn disconnect(&self, nsp: &Str, opts: &BroadcastOptions, close: bool) {
        let mut state = self.lock();
        let targets = state.disconnect_sockets(nsp, opts, close);
        disconnect(state, nsp, targets, close);
    }

    /// The local sockets of `nsp` that `opts` selects.
    pub(crate) fn sockets(&self, nsp: &str, opts: &BroadcastOptions) -> Vec<Socket> {
        let state = self.read();
        state
            .sockets_with_data(nsp, opts)
            .into_iter()
            .map(|(_, _, s)| Socket(s.clone()))
            .collect()
    }

    /// Emits `packet` (an event) to each local socket that `opts` selects,
    /// awaiting its acknowledgement for `timeout`: the socket ids, with
    /// where each acknowledgement will come. A socket over its bound is
    /// being closed, with no acknowledgement to wait for.
    pub(crate) fn emit_with_acks(
        &self,
        packet: &Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> Vec<(Str, oneshot::Receiver<Result<Payload, AckError>>)> {
        let mut pending = Vec::new();
        for socket in self.sockets(&packet.nsp, opts) {
            if let PacketKind::Event { name, data, .. } = &packet.kind {
                socket.notify_outgoing(name, data);
            }
            let (reply, rx) = oneshot::channel();
            if socket.connected()
                && socket
                    .0
                    .link
                    .emit_with_ack(packet.clone(), timeout, opts.compress, reply)
                    .is_ok()
            {
                pending.push((socket.0.id.clone(), rx));
            }
        }
        pending
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

/// A handle to a [`SocketIo`] that does not keep it alive
/// ([`SocketIo::downgrade`]): what a listener the server holds, or a
/// background task, keeps to reach the server without a reference cycle.
#[derive(Clone)]
pub struct WeakSocketIo {
    shared: std::sync::Weak<Shared>,
}

impl fmt::Debug for WeakSocketIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakSocketIo").finish_non_exhaustive()
    }
}

impl WeakSocketIo {
    /// The server, while some [`SocketIo`] handle of it is still there.
    pub fn upgrade(&self) -> Option<SocketIo> {
        self.shared.upgrade().map(|shared| SocketIo { shared })
    }
}

/// Who a socket's stored emit goes to: its own room, on this node (the
/// reference sends a socket's emits through its adapter this way when
/// recovery is on).
pub(crate) fn own_room(sid: &Str, compress: bool) -> BroadcastOptions {
    let mut opts = BroadcastOptions::all().to(sid.clone()).local();
    opts.compress = compress;
    opts
}

/// Hands a planned broadcast to each recipient's connection: the same
/// encoded bytes to every one, the lock released first; a packet stored for
/// recovery under the lock, so that every connection gets stored packets
/// in the order of their offsets (a client recovers from the last one it
/// got).
fn deliver(state: Locked<'_>, packet: Packet, plan: Broadcast, stats: &Stats) -> usize {
    let targets = links(&state, &plan);
    match plan.stored {
        true => {
            // Put in each connection's send buffer, no socket written
            // while every other connection may be waiting on the lock.
            let recipients = hand_over(targets, &packet, &plan, false, stats);
            drop(state);
            recipients
        }
        false => {
            drop(state);
            hand_over(targets, &packet, &plan, true, stats)
        }
    }
}

/// The links of `plan`'s recipients.
fn links(state: &State, plan: &Broadcast) -> Vec<Arc<Link>> {
    plan.targets
        .iter()
        .filter_map(|h| state.connection(*h).cloned())
        .collect()
}

/// Hands `plan`'s bytes to each of `targets`, written on idle WebSockets
/// at once if `write_now` (see [`Link::deliver`]), their counts added to
/// `stats`; the number of them.
fn hand_over(
    targets: Vec<Arc<Link>>,
    packet: &Packet,
    plan: &Broadcast,
    write_now: bool,
    stats: &Stats,
) -> usize {
    let recipients = targets.len();
    let mut written = Counters::default();
    for link in targets {
        // A recipient over its bound is closed ("transport error") or, for
        // a volatile packet, skipped; the others still get it.
        written += link.deliver(packet, &plan.encoded, plan.volatile, write_now);
    }
    // The counts of the packets written here, added once.
    stats.connection(written);
    recipients
}

/// Tells the connections of `targets` to disconnect their socket on `nsp`,
/// or to close, the lock released first.
fn disconnect(state: Locked<'_>, nsp: &Str, targets: Vec<(Str, ConnectionHandle)>, close: bool) {
    let targets: Vec<Arc<Link>> = targets
        .iter()
        .filter_map(|(_, h)| state.connection(*h).cloned())
        .collect();
    drop(state);
    for link in targets {
        match close {
            true => link.close(DisconnectReason::ForcedServerClose),
            false => link.disconnect(nsp),
        }
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
        let mut builder = builder;
        builder.options.prepare()?;
        let config = builder.config;
        let shared = Arc::new_cyclic(|me| Shared {
            state: RwLock::new(Endpoint::carrying(config.clone(), ids)),
            config,
            options: builder.options,
            namespaces: RwLock::new(Namespaces::default()),
            engine,
            next_request: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
            shutdown_signal: watch::Sender::new(false),
            live: watch::Sender::new(0),
            sessions: crate::limits::Sessions::default(),
            adapter: OnceLock::new(),
            server_side: RwLock::new(Vec::new()),
            new_namespace: RwLock::new(Vec::new()),
            room_listeners: RwLock::new(Vec::new()),
            room_queue: Mutex::new(VecDeque::new()),
            dispatching_rooms: AtomicBool::new(false),
            connection_listeners: RwLock::new(Vec::new()),
            stats: crate::stats::Stats::default(),
            #[cfg(feature = "lock-profile")]
            lock_profile: crate::lock_profile::LockProfile::default(),
            expiring: AtomicBool::new(false),
            me: me.clone(),
        });
        Ok(SocketIo { shared })
    }

    /// The protocol configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    // ----- namespaces -----

    /// Serves namespace `path`: `handler` runs for every socket that joins
    /// it, after the middlewares given with it
    /// ([`ConnectHandler::with`](crate::ConnectHandler::with)) accepted it.
    /// The handler's arguments are extractors: [`Socket`],
    /// [`Data`](crate::Data) (the auth object), [`State`](crate::State), ...
    ///
    /// Returns the [`Namespace`], to broadcast.
    ///
    /// ```
    /// use socketio_tokio::{ConnectHandler, ConnectError, Data, SocketIo, Socket};
    ///
    /// let io = SocketIo::new()?;
    /// io.ns("/chat", |socket: Socket| async move {
    ///     let _ = socket.emit("welcome", &socket.id());
    /// });
    /// io.ns(
    ///     "/admin",
    ///     (|socket: Socket| async move { /* ... */ }).with(
    ///         |Data(token): Data<String>| async move {
    ///             match token == "secret" {
    ///                 true => Ok(()),
    ///                 false => Err(ConnectError::new("forbidden")),
    ///             }
    ///         },
    ///     ),
    /// );
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn ns<M>(&self, path: impl Into<String>, handler: impl IntoNsHandler<M>) -> Namespace {
        let path = path.into();
        let inner = NsInner::new(handler.into_ns_handler(), false);
        self.shared
            .namespaces_mut()
            .fixed
            .insert(path.clone(), inner.clone());
        self.shared.namespace_added(&path);
        Namespace {
            io: self.clone(),
            name: Some(Str::from(path)),
            inner,
        }
    }

    /// Serves every namespace whose name `matcher` accepts (dynamic
    /// namespaces, the reference's parent namespace), after the fixed ones.
    /// Each one the matcher accepted is a child of the returned
    /// [`Namespace`] from its first socket on (and, with
    /// [`cleanup_empty_child_namespaces`](crate::SocketIoBuilder::cleanup_empty_child_namespaces),
    /// until its last socket leaves).
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
    pub fn dyn_ns<F, M>(&self, matcher: F, handler: impl IntoNsHandler<M>) -> Namespace
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        let inner = NsInner::new(handler.into_ns_handler(), true);
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

    /// Calls `listener` with every change of a room on this node, in order:
    /// created, joined, left, deleted (the reference's adapter events
    /// `create-room`, `join-room`, `leave-room`, `delete-room`; a socket's own
    /// room counts, as there). It runs with no lock held, right after the
    /// change, on the task that made it: keep it short, or hand the event on.
    ///
    /// ```
    /// use socketio_tokio::{RoomEvent, SocketIo};
    ///
    /// let io = SocketIo::new()?;
    /// io.on_room_event(|event| {
    ///     if let RoomEvent::Created { nsp, room } = event {
    ///         println!("room {room} of {nsp} created");
    ///     }
    /// });
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn on_room_event(&self, listener: impl Fn(&RoomEvent) + Send + Sync + 'static) {
        self.shared
            .room_listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(listener));
        self.shared.lock().record_room_events(true);
    }

    /// A handle to this server that does not keep it alive.
    pub fn downgrade(&self) -> WeakSocketIo {
        WeakSocketIo {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// Calls `listener` with every socket that joins any namespace, right
    /// before its namespace's connect handler runs (as a listener the
    /// reference's `prependListener("connection")` adds on each namespace):
    /// where instrumentation attaches its own listeners to every socket.
    pub fn on_connection(&self, listener: impl Fn(&Socket) + Send + Sync + 'static) {
        self.shared
            .connection_listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(listener));
    }

    /// Calls `listener` with the name of every namespace that starts being
    /// served: a fixed one when it is declared, a dynamic one's child when
    /// its first socket joins (the reference's `new_namespace` event).
    pub fn on_new_namespace(&self, listener: impl Fn(&str) + Send + Sync + 'static) {
        self.shared
            .new_namespace
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(listener));
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

    /// Sockets of `/`; whether the emit's WebSocket frames may be compressed
    /// (see [`Socket::compress`](crate::Socket::compress)).
    pub fn compress(&self, compress: bool) -> BroadcastOperator {
        self.of("/").compress(compress)
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

    /// Runs `f`, holding the WebSocket frames of the broadcasts it makes
    /// until it returns, then writes each recipient's together, one system
    /// call for several packets: for an application's task that broadcasts
    /// several packets in a row (a game's tick, a dashboard's update of
    /// several series). Event handlers need none: the broadcasts of a
    /// connection's step are held until it ends.
    ///
    /// `f` runs on this thread and awaits nothing: until it returns, the
    /// recipients write nothing else on their WebSockets.
    ///
    /// ```
    /// # let io = socketio_tokio::SocketIo::new()?;
    /// io.batch(|| {
    ///     io.to("game").emit("positions", &[1, 2, 3])?;
    ///     io.to("game").emit("scores", &[10, 20])
    /// })?; // Written here: one system call per recipient for both.
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn batch<R>(&self, f: impl FnOnce() -> R) -> R {
        let _batch = Batch::open();
        f()
    }

    /// The sockets of `/`.
    pub fn sockets(&self) -> Vec<Socket> {
        self.of("/").sockets()
    }

    /// The rooms of `nsp` that have members.
    pub fn rooms(&self, nsp: &str) -> Vec<Str> {
        self.shared.read().rooms(nsp)
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
        let links: Vec<Arc<Link>> = self.shared.read().connections().cloned().collect();
        tracing::info!(connections = links.len(), "shutting down");
        for link in links {
            link.close(DisconnectReason::ServerShuttingDown);
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
        self.shared.read().session_count()
    }

    /// What the connection state recovery store keeps: packets, saved
    /// sessions, and the bytes counted against
    /// [`Recovery::max_bytes`](crate::Recovery::max_bytes); zeros with
    /// recovery off. Nothing stays past
    /// [`Recovery::max_disconnection_duration`](crate::Recovery::max_disconnection_duration),
    /// even when the server is quiet.
    pub fn recovery_store_size(&self) -> (usize, usize, usize) {
        self.shared.read().recovery_store_size()
    }

    /// The server's counters since it started: sessions opened and closed,
    /// packets and bytes, broadcasts, refusals, ... (what a metrics exporter
    /// or a dashboard reads).
    pub fn stats(&self) -> crate::ServerStats {
        self.shared.stats.snapshot()
    }

    /// How the endpoint's lock has been used since the server started, per
    /// place in this crate that takes it (the longest total hold first):
    /// what each operation costs the one lock all connections share.
    #[cfg(feature = "lock-profile")]
    pub fn endpoint_lock_profile(&self) -> Vec<crate::LockSite> {
        self.shared.lock_profile.snapshot()
    }

    /// The live Engine.IO connections by transport now: (long-polling,
    /// WebSocket).
    pub fn connections_by_transport(&self) -> (usize, usize) {
        let links: Vec<Arc<Link>> = self.shared.read().connections().cloned().collect();
        let websocket = links
            .iter()
            .filter(|l| l.transport() == socketio_proto::TransportKind::WebSocket)
            .count();
        (links.len() - websocket, websocket)
    }

    /// The namespaces that have sockets on this node, with how many.
    pub fn namespaces(&self) -> Vec<(Str, usize)> {
        let state = self.shared.read();
        state
            .namespaces()
            .map(|nsp| (nsp.clone(), state.socket_count(nsp)))
            .collect()
    }

    /// The number of connection tasks still running: live connections, and
    /// closed ones flushing their last frames (for at most 5 s).
    pub fn task_count(&self) -> usize {
        *self.shared.live.borrow()
    }

    /// The number of sockets connected to `nsp`.
    pub fn socket_count(&self, nsp: &str) -> usize {
        self.shared.read().socket_count(nsp)
    }
}

impl SocketIoBuilder {
    /// Builds the server.
    ///
    /// # Errors
    ///
    /// [`BuildError::Random`] when the operating system gives no randomness.
    pub fn build(self) -> Result<SocketIo, BuildError> {
        SocketIo::from_builder(self, None)
    }

    /// Builds a bare Engine.IO server: every connection is handed to
    /// `handler` as an [`EngineSocket`](crate::EngineSocket), and Socket.IO
    /// namespaces are not served. The path is `/engine.io/` unless
    /// [`path`](SocketIoBuilder::path) chose another.
    ///
    /// ```no_run
    /// use socketio_tokio::{EngineSocket, SocketIo};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = SocketIo::builder().build_engine(|mut socket: EngineSocket| async move {
    ///     // Echo every message.
    ///     while let Some(message) = socket.recv().await {
    ///         let _ = socket.send(message);
    ///     }
    /// })?;
    /// io.serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`BuildError::Random`] when the operating system gives no randomness.
    pub fn build_engine<F, Fut>(mut self, handler: F) -> Result<SocketIo, BuildError>
    where
        F: Fn(crate::EngineSocket) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let path = if self.config.path == Config::default().path {
            "/engine.io/".to_owned()
        } else {
            self.config.path.clone()
        };
        self.config = self.config.with_engine_only(true);
        self.config.path = path;
        let handler: crate::api::engine::EngineHandler =
            Arc::new(move |socket| Box::pin(handler(socket)));
        SocketIo::from_builder(self, Some(handler))
    }
}

impl SocketIo {
    /// Makes this server one node of a cluster: every broadcast and room
    /// or disconnect operation that is not [`local`](BroadcastOperator::local)
    /// goes to `adapter` too. An adapter crate calls this from its
    /// constructor, with the [`LocalNode`] of [`local_node`](SocketIo::local_node).
    ///
    /// # Errors
    ///
    /// Gives the adapter back when one is already attached.
    pub fn attach_adapter(&self, adapter: Arc<dyn Adapter>) -> Result<(), Arc<dyn Adapter>> {
        self.shared.adapter.set(adapter.clone())?;
        {
            let mut state = self.shared.lock();
            state.set_clustered(true);
            state.set_cluster_recovery(adapter.owns_recovery());
        }
        let names: Vec<String> = self.shared.namespaces().fixed.keys().cloned().collect();
        for nsp in names {
            adapter.add_namespace(&nsp);
        }
        Ok(())
    }

    /// This node, for an adapter: where it delivers the other nodes'
    /// operations and finds the answers to their queries.
    pub fn local_node(&self) -> LocalNode {
        LocalNode::new(Arc::downgrade(&self.shared))
    }

    /// The rooms of `nsp` that have members on any node of the cluster.
    ///
    /// # Errors
    ///
    /// [`AdapterError`] when a node did not answer in time.
    pub async fn all_rooms(&self, nsp: &str) -> Result<Vec<Str>, AdapterError> {
        let mut rooms = self.rooms(nsp);
        if let Some(adapter) = self.shared.adapter.get().cloned() {
            rooms.extend(adapter.all_rooms(Str::from(nsp)).await?);
            rooms.sort();
            rooms.dedup();
        }
        Ok(rooms)
    }

    /// Handles the events the other nodes send to the servers themselves
    /// (the reference's `io.on(event, ...)` for `serverSideEmit`). Runs on
    /// the adapter's task: keep it short, or spawn.
    ///
    /// ```
    /// # let io = socketio_tokio::SocketIo::new()?;
    /// io.on_server_side_emit(|ev| {
    ///     if ev.event == "ping" && let Some(ack) = ev.ack {
    ///         let _ = ack.send(&"pong");
    ///     }
    /// });
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn on_server_side_emit(&self, handler: impl Fn(ServerSideEvent) + Send + Sync + 'static) {
        self.shared
            .server_side
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(handler));
    }

    /// Sends `event` with `args` to the other nodes of the cluster (not to
    /// clients) on namespace `/`; nothing without an adapter. See
    /// [`BroadcastOperator::server_side_emit`] for other namespaces.
    ///
    /// # Errors
    ///
    /// [`AdapterError::Encode`] when `args` cannot be serialized.
    pub fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<(), AdapterError> {
        self.of("/").server_side_emit(event, args)
    }

    /// Sends `event` with `args` to the other nodes and waits for one
    /// answer from each (the reference's `serverSideEmitWithAck`).
    ///
    /// # Errors
    ///
    /// [`AdapterError::Timeout`] when a node did not answer in time;
    /// [`AdapterError::Encode`] when `args` cannot be serialized or an
    /// answer is not a `V`.
    pub async fn server_side_emit_with_ack<
        V: serde::de::DeserializeOwned,
        T: Serialize + ?Sized,
    >(
        &self,
        event: &str,
        args: &T,
    ) -> Result<Vec<V>, AdapterError> {
        self.of("/").server_side_emit_with_ack(event, args).await
    }

    /// What the attached adapter counts (its queue, reconnections, dropped
    /// messages); `None` without an adapter, or with one that counts none
    /// of it.
    pub fn adapter_stats(&self) -> Option<crate::cluster::AdapterStats> {
        self.shared.adapter.get().and_then(|a| a.stats())
    }

    /// How many nodes serve `nsp`: 1 without an adapter.
    ///
    /// # Errors
    ///
    /// [`AdapterError`] when the transport failed.
    pub async fn server_count(&self, nsp: &str) -> Result<usize, AdapterError> {
        match self.shared.adapter.get().cloned() {
            Some(adapter) => adapter.server_count(Str::from(nsp)).await,
            None => Ok(1),
        }
    }
}
