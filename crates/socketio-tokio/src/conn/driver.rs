//! The task that runs one connection: it drives the core's `Connection`
//! (in the connection's [`Link`]), owns its WebSockets and its timer, takes
//! the HTTP side's requests over a channel, and runs the application's
//! handlers as futures of its own (no task per message).
//!
//! Locks: a step of the task runs under the task state's lock
//! ([`DriverCell`]); within it the link's lock and the endpoint's lock are
//! each taken for one call at a time, and neither while a handler runs.
//! Where they nest (the recovery of a session here; the delivery of a
//! packet stored for recovery elsewhere), the endpoint's lock comes first,
//! never the other way round. Nothing waits on the task state's lock.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::task::AtomicWaker;
use futures_util::{FutureExt, StreamExt};
use socketio_proto::{
    ConnectionHandle, Data, DisconnectReason, EndpointEvent, Event, EventMessage, Kept,
    NotRecovered, Payload, RequestId, Response, Restored, Resume, Str, Transmit,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;

use crate::api::engine::EngineSocket;
use crate::api::extract::{DisconnectContext, ErasedHandler, EventContext};
use crate::api::link::{self, Batch, Core, Direct, Link, OwnStep, fail};
use crate::api::ns::{ConnectError, ConnectRequest, NsInner};
use crate::api::server::{Locked, Shared};
use crate::api::socket::{
    Entry, EventInfo, Extensions, Handshake, HttpInfo, Listeners, Socket, SocketError, SocketInner,
};
use crate::clock;
use crate::cluster::RestoredSession;
use crate::error::AckError;
use crate::handler_map::RareVec;
use crate::mailbox::{Cmd, Inbox, Step};
use crate::ws::{Incoming, WsConn, WsError};

/// What a handler future gives back to the task.
enum TaskOutput {
    Nothing,
    /// The connect middlewares of a namespace finished.
    Connect {
        pending: Box<PendingConnect>,
        result: Result<(), ConnectError>,
    },
    /// The cluster answered a request to recover a session; the
    /// middlewares run next when they were skipped for it.
    Restore {
        pending: Box<PendingConnect>,
        restored: Option<RestoredSession>,
        middlewares: bool,
    },
}

/// A future the connection's task runs. A handler's future is boxed once,
/// by the handler, and wrapped here with no other allocation; the set of
/// pending futures takes it as it is, since every variant may move once
/// polled.
enum TaskFuture {
    /// Handler futures (one handler's, or several joined), their panic
    /// caught and logged as that of a `what`.
    Handler(
        futures_util::future::CatchUnwind<AssertUnwindSafe<BoxFuture<'static, ()>>>,
        &'static str,
    ),
    /// Any other work, which gives its output back.
    Other(BoxFuture<'static, TaskOutput>),
}

impl TaskFuture {
    /// The future of a handler (a `what`), its panic caught.
    fn handler(fut: BoxFuture<'static, ()>, what: &'static str) -> TaskFuture {
        TaskFuture::Handler(AssertUnwindSafe(fut).catch_unwind(), what)
    }

    /// Other work.
    fn other(fut: impl Future<Output = TaskOutput> + Send + 'static) -> TaskFuture {
        TaskFuture::Other(Box::pin(fut))
    }
}

impl Future for TaskFuture {
    type Output = TaskOutput;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskOutput> {
        match self.get_mut() {
            TaskFuture::Handler(fut, what) => {
                if std::task::ready!(fut.poll_unpin(cx)).is_err() {
                    tracing::error!("{what} panicked");
                }
                Poll::Ready(TaskOutput::Nothing)
            }
            TaskFuture::Other(fut) => fut.as_mut().poll(cx),
        }
    }
}

/// A client's request to join a namespace, on its way to being accepted.
struct PendingConnect {
    nsp: Str,
    ns: Arc<NsInner>,
    handshake: Handshake,
    extensions: Extensions,
    /// The session it asks to recover.
    resume: Option<Resume>,
}

/// What the endpoint must learn from a connection, with the socket each
/// event is about when the connection has it: mostly one event (a socket
/// joined), held without an allocation.
struct EndpointEvents {
    first: EndpointItem,
    rest: Vec<EndpointItem>,
}

/// An event for the endpoint, with its socket.
type EndpointItem = (EndpointEvent, Option<Arc<SocketInner>>);

impl IntoIterator for EndpointEvents {
    type Item = EndpointItem;
    type IntoIter =
        std::iter::Chain<std::iter::Once<EndpointItem>, std::vec::IntoIter<EndpointItem>>;

    fn into_iter(self) -> Self::IntoIter {
        std::iter::once(self.first).chain(self.rest)
    }
}

/// Where the answer to a polling request goes.
enum Awaiting {
    /// Its channel.
    Channel(oneshot::Sender<Response>),
    /// Where the request claims it: it took the step that handled it,
    /// which did not answer it, and is about to claim it
    /// ([`Cmd::Claim`](crate::mailbox::Cmd::Claim)).
    Unclaimed,
    /// The answer, for the claim to come.
    Parked(Response),
}

struct WsEntry {
    id: RequestId,
    ws: Box<WsConn>,
    flush: bool,
    closing: bool,
    /// Nothing more is read (the stream ended, or the peer broke the protocol).
    read_done: bool,
    done: bool,
}

/// How long a closed connection may take to flush its last frames.
const LINGER: Duration = Duration::from_secs(5);
/// How much work one wake-up does before yielding to other tasks.
const BUDGET: usize = 64;

pub(crate) struct Driver {
    shared: Arc<Shared>,
    handle: ConnectionHandle,
    link: Arc<Link>,
    http: Arc<HttpInfo>,
    /// The polling requests the task owes an answer.
    replies: Vec<(RequestId, Awaiting)>,
    /// WebSockets whose upgrade is under way: their frames wait. (Rare:
    /// 8 bytes while empty.)
    awaited_ws: RareVec<RequestId>,
    streams: Vec<WsEntry>,
    /// A frame the WebSocket could not take yet (boxed: a rare state,
    /// and a `Transmit` is 56 bytes).
    pending_tx: Option<Box<Transmit>>,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    /// The timer, armed at `armed`, was polled with the task's waker: it
    /// wakes the task at its deadline, and needs no poll before.
    sleep_polled: bool,
    /// The handler futures that did not finish when first polled; none
    /// (and no allocation) while there are none, as on an idle connection.
    tasks: Option<FuturesUnordered<TaskFuture>>,
    /// A bare Engine.IO application's inbox (boxed: most applications
    /// speak Socket.IO).
    engine_tx: Option<Box<(mpsc::UnboundedSender<Data>, Inbox)>>,
    closed_at: Option<Instant>,
    /// In this wake-up, every WebSocket read ended "not now": its waker is
    /// set, so the loop's next turns skip the reads.
    reads_idle: bool,
    /// This turn found frames another thread's batch holds for the
    /// WebSocket (a step's own batch holds none for its own connection: the
    /// step takes its WebSocket back at the start of each turn): nothing is
    /// written on it, nor read (a close read there is answered there),
    /// until they are, and the batch wakes the task then.
    blocked: bool,
    /// In this wake-up, the link held no command; the next turns skip it
    /// unless the link says it changed.
    cmds_idle: bool,
    /// The handler futures used their whole budget: more may be ready.
    tasks_busy: bool,
    /// The session's place under the session limits.
    pub(crate) slot: Option<crate::limits::Slot>,
    /// The waker of the task, once it ran: a step taken on another task
    /// registers the task's interests with it.
    waker: Option<Waker>,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        shared: Arc<Shared>,
        handle: ConnectionHandle,
        link: Arc<Link>,
        http: Arc<HttpInfo>,
        reply: Option<RequestId>,
        awaited_ws: Option<RequestId>,
    ) -> Driver {
        shared.live.send_modify(|n| *n += 1);
        let mut driver = Driver {
            handle,
            link,
            http,
            replies: reply
                .map(|id| (id, Awaiting::Unclaimed))
                .into_iter()
                .collect(),
            awaited_ws: awaited_ws.into_iter().collect::<Vec<_>>().into(),
            streams: Vec::new(),
            pending_tx: None,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
            sleep_polled: false,
            tasks: None,
            engine_tx: None,
            closed_at: None,
            reads_idle: false,
            blocked: false,
            cmds_idle: false,
            tasks_busy: false,
            slot: None,
            waker: None,
            shared,
        };
        if let Some(handler) = driver.shared.engine.clone() {
            let (data_tx, data_rx) = mpsc::unbounded_channel();
            let inbox = Inbox::new(driver.shared.config.max_buffer_size);
            driver.engine_tx = Some(Box::new((data_tx, inbox.clone())));
            let socket = EngineSocket {
                id: driver.link.lock().conn.sid().clone(),
                link: driver.link.clone(),
                rx: data_rx,
                inbox,
                handshake: Handshake::new(driver.http.clone(), None, None),
            };
            if let Some(fut) = catch_call(|| handler(socket), "engine handler") {
                driver
                    .tasks
                    .get_or_insert_with(FuturesUnordered::new)
                    .push(TaskFuture::handler(fut, "engine handler"));
            }
        }
        driver
    }

    // ----- inputs -----

    /// The connection's state, locked for one call of the core.
    fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.link.lock()
    }

    fn on_cmd(&mut self, now: Instant, cmd: Cmd) {
        match cmd {
            Cmd::Http { id, req, reply } => {
                let awaiting = reply.map_or(Awaiting::Unclaimed, Awaiting::Channel);
                self.replies.push((id, awaiting));
                self.core().conn.handle_request(now, id, *req);
            }
            Cmd::Claim { id, reply } => {
                let Some(pos) = self.replies.iter().position(|(r, _)| *r == id) else {
                    // Answered in its own step, or the session is over:
                    // the dropped channel says so.
                    return;
                };
                match std::mem::replace(&mut self.replies[pos].1, Awaiting::Unclaimed) {
                    Awaiting::Parked(answer) => {
                        self.replies.swap_remove(pos);
                        let _ = reply.send(answer);
                    }
                    _ => self.replies[pos].1 = Awaiting::Channel(reply),
                }
            }
            Cmd::WsOpen { id, req, ws } => {
                self.reads_idle = false;
                self.awaited_ws.retain(|w| *w != id);
                // Usually the one WebSocket: room for it alone.
                self.streams.reserve_exact(1);
                self.streams.push(WsEntry {
                    id,
                    ws,
                    flush: false,
                    closing: false,
                    read_done: false,
                    done: false,
                });
                if let Some(req) = req {
                    self.core().conn.handle_request(now, id, *req);
                }
            }
            Cmd::WsFailed { id } => {
                self.awaited_ws.retain(|w| *w != id);
                self.transport_closed(now, id, true);
            }
        }
    }

    fn transport_closed(&self, now: Instant, id: RequestId, error: bool) {
        self.core().conn.handle_transport_closed(now, id, error);
    }

    /// Handles `handed`, then the commands waiting in the link.
    fn poll_commands(&mut self, now: Instant, handed: Option<Cmd>) -> bool {
        let mut progress = false;
        if let Some(cmd) = handed {
            self.on_cmd(now, cmd);
            progress = true;
        }
        if self.cmds_idle {
            return progress;
        }
        for _ in 0..BUDGET {
            let Some(cmd) = self.link.next_cmd() else {
                self.cmds_idle = true;
                return progress;
            };
            self.on_cmd(now, cmd);
            progress = true;
        }
        progress
    }

    fn poll_reads(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        if self.reads_idle {
            return false;
        }
        let mut progress = false;
        let mut all_idle = true;
        for entry in &mut self.streams {
            if entry.done || entry.read_done {
                continue;
            }
            let mut idle = false;
            for _ in 0..BUDGET {
                match entry.ws.poll_next(cx) {
                    Poll::Pending => {
                        idle = true;
                        break;
                    }
                    Poll::Ready(Some(Ok(incoming))) => {
                        progress = true;
                        match incoming {
                            Incoming::Message(data) => {
                                self.link.lock().conn.handle_frame(now, entry.id, data);
                            }
                            Incoming::Close => {
                                // The answer goes out with the next flush.
                                entry.flush = true;
                                let mut core = self.link.lock();
                                core.conn.handle_transport_closed(now, entry.id, false);
                            }
                            Incoming::Control => entry.flush = true,
                        }
                    }
                    Poll::Ready(Some(Err(e))) => {
                        progress = true;
                        tracing::debug!(error = %e, "websocket read failed");
                        if let WsError::Protocol(_) = e {
                            // The close frame with the error's code goes out first.
                            entry.read_done = true;
                            entry.closing = true;
                        } else {
                            entry.done = true;
                        }
                        let mut core = self.link.lock();
                        core.conn.handle_transport_closed(now, entry.id, true);
                        break;
                    }
                    Poll::Ready(None) => {
                        progress = true;
                        entry.done = true;
                        let mut core = self.link.lock();
                        core.conn.handle_transport_closed(now, entry.id, false);
                        break;
                    }
                }
            }
            // A WebSocket that used its whole budget has more to read.
            all_idle &= idle || entry.done || entry.read_done;
        }
        self.reads_idle = all_idle;
        progress
    }

    /// Notices held requests whose client went away.
    fn poll_held(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut gone = Vec::new();
        self.replies.retain_mut(|(id, awaiting)| match awaiting {
            Awaiting::Channel(tx) => {
                let closed = tx.poll_closed(cx).is_ready();
                if closed {
                    gone.push(*id);
                }
                !closed
            }
            // A request about to claim its answer is there.
            _ => true,
        });
        for id in &gone {
            self.transport_closed(now, *id, false);
        }
        !gone.is_empty()
    }

    // ----- outputs -----

    /// Gives the answer to request `id` to where it goes.
    fn answer(&mut self, id: RequestId, response: Response) {
        let Some(pos) = self.replies.iter().position(|(r, _)| *r == id) else {
            return;
        };
        let unclaimed = matches!(self.replies[pos].1, Awaiting::Unclaimed);
        if unclaimed && crate::mailbox::inline_request() != Some(id) {
            // Taken by another step than the request's: kept for its claim.
            self.replies[pos].1 = Awaiting::Parked(response);
            return;
        }
        match self.replies.swap_remove(pos).1 {
            Awaiting::Channel(tx) => {
                let _ = tx.send(response);
            }
            // The request takes this step: it finds the answer when the
            // step is over.
            _ => crate::mailbox::give_inline_answer(id, response),
        }
    }

    /// Drains responses, endpoint events and application events.
    fn drain(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        let mut first = true;
        loop {
            // What a round handles is taken under one hold of the link's
            // lock, and handled after it is released: a handler may emit on
            // this connection. Most rounds find nothing.
            let mut core = self.core();
            // Broadcasts delivered to sockets with outgoing listeners.
            let outgoing = match first {
                true => std::mem::take(&mut core.outgoing).into_option(),
                false => None,
            };
            first = false;
            if !core.conn.has_events() {
                let counters = core.conn.take_counters();
                drop(core);
                self.notify_outgoing(outgoing);
                self.shared.stats.connection(counters);
                break;
            }
            // Responses first; then what the endpoint must learn, and the
            // next event.
            if let Some((id, response)) = core.conn.poll_response() {
                drop(core);
                self.notify_outgoing(outgoing);
                progress = true;
                self.answer(id, response);
                continue;
            }
            let endpoint = take_endpoint_events(&mut core);
            let counters = core.conn.take_counters();
            let event = core.conn.poll_event();
            drop(core);
            self.notify_outgoing(outgoing);
            self.shared.stats.connection(counters);
            if let Some(endpoint) = endpoint {
                give_endpoint_events(&mut self.shared.lock(), self.handle, endpoint);
            }
            if let Some(event) = event {
                progress = true;
                self.on_event(cx, now, event);
            }
        }
        progress
    }

    /// Calls the outgoing listeners of the sockets that `outgoing`'s
    /// broadcasts were delivered to.
    #[inline]
    fn notify_outgoing(&self, outgoing: Option<Vec<(Arc<SocketInner>, socketio_proto::Packet)>>) {
        let Some(outgoing) = outgoing else {
            return;
        };
        for (socket, packet) in outgoing {
            if let socketio_proto::PacketKind::Event { name, data, .. } = &packet.kind {
                Socket(socket).notify_outgoing(name, data);
            }
        }
    }

    /// The reply awaited for the acknowledgement `id` on `nsp`, taken out.
    fn take_ack(&self, nsp: &str, id: u64) -> Option<crate::mailbox::AckReply> {
        let mut core = self.core();
        let pos = core
            .acks
            .iter()
            .position(|(n, i, _)| *n == nsp && *i == id)?;
        Some(core.acks.swap_remove(pos).2)
    }

    fn on_event(&mut self, cx: &mut Context<'_>, now: Instant, event: Event) {
        match event {
            Event::ConnectRequest {
                nsp,
                auth,
                query,
                resume,
            } => self.on_connect_request(cx, nsp, auth, query, resume),
            Event::Connected { nsp, sid } => {
                tracing::debug!(%nsp, %sid, "socket connected");
                self.shared.stats.socket_connected();
                let socket = self.core().sockets.iter().find(|s| s.id == sid).cloned();
                if let Some(s) = socket {
                    let socket = Socket(s.clone());
                    let listeners = self
                        .shared
                        .connection_listeners
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    for l in listeners {
                        catch_call(|| l(&socket), "connection listener");
                    }
                    // A handler that panics is logged, as when its future does.
                    match catch_call(|| (s.ns.handler)(&socket), "connect handler") {
                        Some(Ok(fut)) => {
                            self.spawn(cx, TaskFuture::handler(fut, "connect handler"));
                            // Its first poll registered what it registers
                            // at once: the socket's handlers, usually all.
                            s.ns.share_handlers(&s);
                        }
                        Some(Err(e)) => {
                            // A socket with no handler would look connected
                            // and answer nothing: it is let go instead.
                            tracing::warn!(%nsp, error = %e, "connect handler not called");
                            self.link.disconnect(&nsp);
                        }
                        None => {}
                    }
                }
            }
            Event::Message(m) => {
                self.shared.stats.event_in();
                self.on_message(cx, m);
            }
            Event::Ack { nsp, id, data, .. } => {
                if let Some(reply) = self.take_ack(&nsp, id) {
                    let _ = reply.send(Ok(data));
                }
            }
            Event::AckTimedOut { nsp, id, .. } => {
                self.shared.stats.ack_timeout();
                if let Some(reply) = self.take_ack(&nsp, id) {
                    fail(reply, AckError::Timeout);
                }
            }
            Event::Disconnected { nsp, sid, reason } => {
                tracing::debug!(%nsp, %sid, %reason, "socket disconnected");
                self.shared.stats.socket_disconnected(reason);
                let (replies, socket) = {
                    let mut core = self.core();
                    let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut core.acks)
                        .into_iter()
                        .partition(|(n, _, _)| *n == nsp);
                    core.acks = kept.into();
                    let socket = core
                        .sockets
                        .iter()
                        .position(|s| s.id == sid)
                        .map(|pos| core.sockets.swap_remove(pos));
                    (gone, socket)
                };
                for (_, _, reply) in replies {
                    fail(reply, AckError::Disconnected);
                }
                if let Some(s) = socket {
                    s.connected.store(false, Ordering::Release);
                    self.forget_child(&s);
                    // Dropping the handlers breaks the cycles through their captures.
                    let listeners = std::mem::take(&mut *s.listeners());
                    let ctx = DisconnectContext {
                        socket: Socket(s.clone()),
                        reason,
                    };
                    let start = |list: &[Entry<ErasedHandler<DisconnectContext>>], what| {
                        let mut futs = Vec::new();
                        for entry in list {
                            match catch_call(|| (entry.handler)(&ctx), what) {
                                Some(Ok(fut)) => futs.push(catch(fut, what)),
                                Some(Err(e)) => {
                                    tracing::warn!(%what, error = %e, "handler not called");
                                }
                                None => {}
                            }
                        }
                        futs
                    };
                    let disconnecting = start(&listeners.disconnecting, "disconnecting handler");
                    let disconnect = start(&listeners.disconnect, "disconnect handler");
                    let socket = s.clone();
                    // The disconnecting handlers see the rooms the socket
                    // was in; the disconnect handlers, none.
                    let run = async move {
                        for fut in disconnecting {
                            fut.await;
                        }
                        if let Some(extras) = socket.extras().as_mut() {
                            extras.left_rooms = Vec::new();
                        }
                        for fut in disconnect {
                            fut.await;
                        }
                    };
                    self.spawn(cx, TaskFuture::other(run.map(|()| TaskOutput::Nothing)));
                }
            }
            Event::EngineMessage(data) => {
                if let Some((tx, inbox)) = self.engine_tx.as_deref() {
                    if inbox.admit(&data) {
                        let _ = tx.send(data);
                    } else {
                        // The application does not read: a bounded inbox.
                        tracing::debug!("engine messages left unread over the bound: closing");
                        self.engine_tx = None;
                        self.core()
                            .conn
                            .close(now, DisconnectReason::TransportError);
                    }
                }
            }
            Event::Upgraded => {
                self.shared.stats.upgraded();
                let sockets = self.core().sockets.clone();
                for s in sockets {
                    let socket = Socket(s);
                    let listeners = socket.0.listeners().upgrades();
                    for l in listeners {
                        catch_call(|| l(&socket), "upgrade listener");
                    }
                }
            }
            Event::ProtocolError { error } => {
                tracing::debug!(%error, "protocol error");
            }
            Event::Closed { reason } => {
                tracing::debug!(%reason, "connection closed");
                self.shared.stats.closed(reason);
                self.engine_tx = None;
                self.closed_at = Some(now);
                let replies = std::mem::take(&mut self.core().acks);
                for (_, _, reply) in replies {
                    fail(reply, AckError::Disconnected);
                }
            }
        }
    }

    fn on_connect_request(
        &mut self,
        cx: &mut Context<'_>,
        nsp: Str,
        auth: Option<Payload>,
        query: Option<Str>,
        resume: Option<Resume>,
    ) {
        if self.shared.engine.is_some() {
            return;
        }
        let ns = self.shared.namespaces().find(&nsp);
        let Some(ns) = ns else {
            tracing::debug!(%nsp, "connect to an unknown namespace");
            let _ = self.core().conn.reject_unknown_namespace(&nsp);
            return;
        };
        let handshake = Handshake::new(self.http.clone(), auth, query);
        let extensions = Extensions::default();
        let skip = match (&resume, self.shared.config.recovery.as_ref()) {
            (Some(_), Some(recovery)) => recovery.skip_middlewares,
            _ => false,
        };
        let mut pending = PendingConnect {
            nsp,
            ns,
            handshake,
            extensions,
            resume,
        };
        if skip {
            if self.cluster_restores(&pending) {
                self.restore_from_cluster(cx, pending, true);
                return;
            }
            // Only a socket actually recovered skips them.
            match self.try_restore(pending) {
                Some(back) => pending = back,
                None => return,
            }
        }
        self.run_middlewares(cx, pending);
    }

    /// Runs the namespace's middlewares for `pending`, then accepts it.
    fn run_middlewares(&mut self, cx: &mut Context<'_>, pending: PendingConnect) {
        let middlewares = pending.ns.middlewares.clone();
        if middlewares.is_empty() {
            self.accept(cx, pending);
            return;
        }
        let nsp = pending.nsp.clone();
        let handshake = pending.handshake.clone();
        let extensions = pending.extensions.clone();
        let (transport, version) = {
            let core = self.core();
            (core.conn.transport(), core.conn.socket_version())
        };
        let req = ConnectRequest {
            nsp: nsp.clone(),
            handshake,
            extensions,
            shared: Arc::downgrade(&self.shared),
            transport,
            version,
        };
        let fut = async move {
            for mw in middlewares {
                // A middleware whose extractors fail refuses the client.
                let fut = mw(&req).map_err(|e| ConnectError::new(e.to_string()))?;
                fut.await?;
            }
            Ok(())
        };
        let fut = AssertUnwindSafe(fut).catch_unwind().map(move |r| {
            let result = match r {
                Ok(r) => r,
                Err(_) => {
                    tracing::error!("connect middleware panicked");
                    Err(ConnectError::new("server error"))
                }
            };
            TaskOutput::Connect {
                pending: Box::new(pending),
                result,
            }
        });
        self.spawn(cx, TaskFuture::other(fut));
    }

    /// Accepts a connect request: the session it asks for when the endpoint
    /// (or the cluster) still has it, else a new socket.
    fn accept(&mut self, cx: &mut Context<'_>, pending: PendingConnect) {
        if self.cluster_restores(&pending) {
            self.restore_from_cluster(cx, pending, false);
            return;
        }
        if let Some(pending) = self.try_restore(pending) {
            self.accept_new(pending);
        }
    }

    /// Whether the session `pending` asks for is the cluster's to give back.
    fn cluster_restores(&self, pending: &PendingConnect) -> bool {
        pending.resume.as_ref().is_some_and(|r| r.offset.is_some())
            && self.shared.adapter.get().is_some()
            && self.shared.read().cluster_recovery()
    }

    /// Asks the cluster for the session `pending` asks for; its answer
    /// comes back as [`TaskOutput::Restore`].
    fn restore_from_cluster(
        &mut self,
        cx: &mut Context<'_>,
        mut pending: PendingConnect,
        middlewares: bool,
    ) {
        let resume = pending.resume.take();
        let adapter = self.shared.adapter.get().cloned();
        let nsp = pending.nsp.clone();
        let fut = async move {
            let asked = match (adapter, resume) {
                (
                    Some(adapter),
                    Some(Resume {
                        pid,
                        offset: Some(offset),
                    }),
                ) => adapter.restore_session(nsp.clone(), pid, offset).await,
                _ => Ok(None),
            };
            let restored = asked.unwrap_or_else(|error| {
                tracing::debug!(%nsp, %error, "the cluster gave no session");
                None
            });
            TaskOutput::Restore {
                pending: Box::new(pending),
                restored,
                middlewares,
            }
        };
        self.spawn(cx, TaskFuture::other(fut));
    }

    /// Recovers the session `pending` asks for; gives `pending` back (with
    /// no session to ask for) when it is not recovered.
    ///
    /// The endpoint's lock is held throughout, the link's inside it: the
    /// socket goes into the endpoint's index, and its missed packets into
    /// its connection, in the same hold as they were listed, so that no
    /// broadcast falls in between.
    fn try_restore(&self, mut pending: PendingConnect) -> Option<PendingConnect> {
        let Some(resume) = pending.resume.take() else {
            return Some(pending);
        };
        self.install(pending, |state, nsp| {
            state.restore(clock::now(), nsp, &resume)
        })
    }

    /// Puts back the socket of a session that `restore` gives, with its
    /// missed packets; gives `pending` back when there is none.
    fn install(
        &self,
        mut pending: PendingConnect,
        restore: impl FnOnce(&mut Locked<'_>, &str) -> Result<Restored, NotRecovered>,
    ) -> Option<PendingConnect> {
        let mut state = self.shared.lock();
        let mut core = self.link.lock();
        if !core.conn.awaits_connect(&pending.nsp) {
            return Some(pending);
        }
        let restored = match restore(&mut state, &pending.nsp) {
            Ok(restored) => restored,
            Err(why) => {
                tracing::debug!(nsp = %pending.nsp, %why, "session not recovered");
                return Some(pending);
            }
        };
        let sid = match core.conn.accept_restored(&restored) {
            Ok(sid) => sid,
            Err(e) => {
                tracing::debug!(nsp = %pending.nsp, error = %e, "session not recovered");
                return Some(pending);
            }
        };
        if let Some(kept) = restored.kept {
            pending.extensions = kept_extensions(kept, &pending.extensions);
        }
        let socket = self.socket(&core, sid, pending, true);
        if let Some(data) = restored.data {
            socket.set_data(data);
        }
        core.sockets.push(socket.clone());
        let events = take_endpoint_events(&mut core);
        drop(core);
        if let Some(events) = events {
            give_endpoint_events(&mut state, self.handle, events);
        }
        drop(state);
        self.add_child(&socket);
        None
    }

    /// Accepts a connect request as a new socket.
    fn accept_new(&self, pending: PendingConnect) {
        let mut core = self.link.lock();
        match core.conn.accept(&pending.nsp) {
            Ok(sid) => {
                let socket = self.socket(&core, sid, pending, false);
                core.sockets.push(socket.clone());
                drop(core);
                self.add_child(&socket);
            }
            Err(e) => tracing::debug!(error = %e, "cannot accept"),
        }
    }

    /// The handle of a socket just accepted.
    fn socket(
        &self,
        core: &Core,
        id: Str,
        pending: PendingConnect,
        recovered: bool,
    ) -> Arc<SocketInner> {
        Arc::new(SocketInner {
            id,
            nsp: pending.nsp,
            version: core.conn.socket_version(),
            parser: self.shared.config.parser,
            link: self.link.clone(),
            shared: Arc::downgrade(&self.shared),
            ns: pending.ns,
            handshake: pending.handshake,
            extensions: pending.extensions,
            connected: true.into(),
            listeners: std::sync::Mutex::new(Listeners::default()),
            outgoing: false.into(),
            disconnecting: false.into(),
            recovered,
            stored: self.shared.config.recovery.is_some(),
            extras: std::sync::Mutex::default(),
        })
    }

    /// Counts a socket of a dynamic namespace's child; a new child is
    /// announced to the `new_namespace` listeners.
    fn add_child(&self, socket: &SocketInner) {
        if socket.ns.dynamic && socket.ns.add_child_socket(&socket.nsp) {
            self.shared.namespace_added(&socket.nsp);
        }
    }

    /// Counts a socket of a dynamic namespace's child gone.
    fn forget_child(&self, socket: &SocketInner) {
        if socket.ns.dynamic {
            let cleanup = self.shared.options.cleanup_empty_child_namespaces;
            socket.ns.remove_child_socket(&socket.nsp, cleanup);
        }
    }

    fn on_task_output(&mut self, cx: &mut Context<'_>, out: TaskOutput) {
        match out {
            TaskOutput::Nothing => {}
            TaskOutput::Connect { pending, result } => match result {
                Ok(()) => self.accept(cx, *pending),
                Err(e) => {
                    let nsp = pending.nsp;
                    tracing::debug!(%nsp, error = %e.message, "connect refused");
                    let _ = self.core().conn.reject(&nsp, &e.message, e.data.as_ref());
                }
            },
            TaskOutput::Restore {
                pending,
                restored,
                middlewares,
            } => {
                let pending = match restored {
                    Some(RestoredSession { session, hold }) => {
                        // A session that does not name its namespace (a
                        // Node server's) is given back only once the
                        // namespace's middlewares ran, or when it has none.
                        let checked = !middlewares || pending.ns.middlewares.is_empty();
                        let back = self.install(*pending, |state, nsp| {
                            state.restore_from_cluster(nsp, session, checked)
                        });
                        // The adapter delivers again once the socket is back.
                        drop(hold);
                        match back {
                            Some(pending) => pending,
                            None => return,
                        }
                    }
                    None => *pending,
                };
                match middlewares {
                    true => self.run_middlewares(cx, pending),
                    false => self.accept_new(pending),
                }
            }
        }
    }

    fn on_message(&mut self, cx: &mut Context<'_>, m: EventMessage) {
        let inner = self.core().sockets.iter().find(|s| s.nsp == m.nsp).cloned();
        let Some(inner) = inner else {
            return;
        };
        let socket = Socket(inner.clone());
        let (any, middlewares) = {
            let l = inner.listeners();
            (l.any(), l.middlewares.clone())
        };
        // The catch-all listeners see every event, before the middlewares
        // (the reference's `onevent`).
        for l in &any {
            catch_call(|| l(&socket, &m.name, &m.data), "catch-all listener");
        }
        let ctx = EventContext {
            socket: socket.clone(),
            name: m.name,
            data: m.data,
            ack_id: m.ack_id,
            acked: None,
        };
        if middlewares.is_empty() {
            if let Some(fut) = run_handlers(ctx) {
                self.spawn(cx, TaskFuture::handler(fut, "event handler"));
            }
            return;
        }
        let fut = async move {
            let info = EventInfo {
                name: ctx.name.clone(),
                data: ctx.data.clone(),
                has_ack: ctx.ack_id.is_some(),
            };
            for mw in middlewares {
                if let Err(message) = mw(socket.clone(), info.clone()).await {
                    socket.report_error(SocketError::Middleware {
                        event: info.name.clone(),
                        message,
                    });
                    return;
                }
            }
            // An event let through after the socket left is dropped.
            if !socket.connected() {
                return;
            }
            if let Some(fut) = run_handlers(ctx) {
                fut.await;
            }
        };
        self.spawn(cx, TaskFuture::handler(Box::pin(fut), "event handler"));
    }

    /// Runs a handler future on this task: polled once now (so that its
    /// synchronous start, such as registering handlers, happens in order),
    /// then with the others.
    fn spawn(&mut self, cx: &mut Context<'_>, mut fut: TaskFuture) {
        match fut.poll_unpin(cx) {
            Poll::Ready(out) => self.on_task_output(cx, out),
            Poll::Pending => self
                .tasks
                .get_or_insert_with(FuturesUnordered::new)
                .push(fut),
        }
    }

    fn poll_tasks(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for _ in 0..BUDGET {
            let Some(tasks) = &mut self.tasks else {
                self.tasks_busy = false;
                return progress;
            };
            match tasks.poll_next_unpin(cx) {
                Poll::Ready(Some(out)) => {
                    progress = true;
                    self.on_task_output(cx, out);
                }
                Poll::Ready(None) => {
                    // None left: the set goes, with its allocation.
                    self.tasks = None;
                    self.tasks_busy = false;
                    return progress;
                }
                Poll::Pending => {
                    self.tasks_busy = false;
                    return progress;
                }
            }
        }
        self.tasks_busy = true;
        progress
    }

    /// After a turn that did something, whether another may find more.
    ///
    /// Every source the turn found idle set the task's waker: the socket
    /// reads, the held requests, the handler futures, the
    /// writes that wait for room. What a turn cannot have seen is its own
    /// making: reads or commands or handlers cut short by their budget,
    /// commands the handlers queued locally, and outputs of the core that
    /// came after the turn drained them (a write that failed, say).
    fn has_more(&self) -> bool {
        (!self.reads_idle && !self.blocked) || !self.cmds_idle || self.tasks_busy || {
            let core = self.core();
            core.dirty || (!self.blocked && core.conn.has_output())
        }
    }

    /// Writes frames while the WebSockets take them.
    fn poll_writes(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        loop {
            let t = match self.pending_tx.take() {
                Some(t) => *t,
                None => match self.core().conn.poll_transmit() {
                    Some(t) => t,
                    None => break,
                },
            };
            let target = match &t {
                Transmit::Frame { transport, .. } | Transmit::Close { transport } => *transport,
            };
            if self.awaited_ws.contains(&target) {
                self.pending_tx = Some(Box::new(t));
                break;
            }
            let Some(entry) = self.streams.iter_mut().find(|e| e.id == target && !e.done) else {
                // A WebSocket that is gone: drop what was meant for it.
                continue;
            };
            match t {
                Transmit::Close { .. } => {
                    entry.closing = true;
                    progress = true;
                }
                Transmit::Frame {
                    frame,
                    transport,
                    compress,
                } => {
                    if entry.closing {
                        continue;
                    }
                    match entry.ws.poll_ready(cx) {
                        Poll::Pending => {
                            self.pending_tx = Some(Box::new(Transmit::Frame {
                                transport,
                                frame,
                                compress,
                            }));
                            break;
                        }
                        Poll::Ready(Err(e)) => {
                            tracing::debug!(error = %e, "websocket write failed");
                            entry.done = true;
                            let mut core = self.link.lock();
                            core.conn.handle_transport_closed(now, target, true);
                        }
                        Poll::Ready(Ok(())) => {
                            progress = true;
                            if let Err(e) = entry.ws.send(frame, compress) {
                                tracing::debug!(error = %e, "websocket write failed");
                                entry.done = true;
                                let mut core = self.link.lock();
                                core.conn.handle_transport_closed(now, target, true);
                            } else {
                                entry.flush = true;
                            }
                        }
                    }
                }
            }
        }
        for entry in &mut self.streams {
            if entry.done {
                continue;
            }
            if entry.flush {
                match entry.ws.poll_flush(cx) {
                    Poll::Ready(Ok(())) => entry.flush = false,
                    Poll::Ready(Err(_)) => {
                        entry.done = true;
                        let mut core = self.link.lock();
                        core.conn.handle_transport_closed(now, entry.id, true);
                        progress = true;
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            if entry.closing && entry.ws.poll_close(cx).is_ready() {
                entry.done = true;
                let mut core = self.link.lock();
                core.conn.handle_transport_closed(now, entry.id, false);
                progress = true;
            }
        }
        let before = self.streams.len();
        self.streams.retain(|e| !e.done);
        progress || before != self.streams.len()
    }

    /// The connection's one WebSocket, when nothing waits to be written on
    /// it here and broadcasts may write on it themselves until the next
    /// step (see `api::link`).
    fn idle_ws(&self) -> Option<Direct> {
        if self.pending_tx.is_some() || !self.awaited_ws.is_empty() || self.closed_at.is_some() {
            return None;
        }
        let [entry] = self.streams.as_slice() else {
            return None;
        };
        if entry.flush || entry.closing || entry.done || entry.read_done {
            return None;
        }
        let stream = entry.ws.idle_stream()?;
        Some(Direct {
            ws: entry.id,
            stream: stream.clone(),
        })
    }

    fn finished(&mut self, now: Instant) -> bool {
        let Some(closed_at) = self.closed_at else {
            return false;
        };
        let lingered = now >= closed_at + LINGER;
        if lingered {
            self.streams.clear();
            self.replies.clear();
            self.pending_tx = None;
        }
        self.core().conn.is_closed()
            && self.pending_tx.is_none()
            && self.streams.is_empty()
            && self.replies.is_empty()
            && self.tasks.as_ref().is_none_or(FuturesUnordered::is_empty)
    }

    fn deadline(&self) -> Option<Instant> {
        let linger = self.closed_at.map(|c| c + LINGER);
        match (self.core().conn.poll_timeout(), linger) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A connection's task state, shared with the requests for its session.
///
/// The task takes its steps under the lock. A request for the session (or
/// a WebSocket that is up) that finds the lock free takes the step itself,
/// on its own task, with the task's waker: its answer is ready when the
/// step ends, with no queue, no wake-up of the task and no second poll of
/// the request. One that finds the task busy leaves its command in the
/// link, for the task to take in order.
pub(crate) struct DriverCell {
    driver: Mutex<Driver>,
    /// The connection's span, when a subscriber wants it: none (8 bytes
    /// where a `Span` takes 40) while tracing is off at its level.
    span: Option<Box<tracing::Span>>,
    /// The task found the lock taken by a step elsewhere: that step wakes
    /// it when it ends, so that no worker thread waits on the lock.
    missed: AtomicWaker,
}

impl DriverCell {
    /// Spawns the task of `driver`.
    pub(crate) fn spawn(driver: Driver, span: tracing::Span) -> Arc<DriverCell> {
        let link = driver.link.clone();
        let cell = Arc::new(DriverCell {
            driver: Mutex::new(driver),
            span: (!span.is_disabled()).then(|| Box::new(span)),
            missed: AtomicWaker::new(),
        });
        let weak: std::sync::Weak<DriverCell> = Arc::downgrade(&cell);
        link.set_step(weak);
        tokio::spawn(DriverTask(cell.clone()));
        cell
    }

    /// Takes the task's step here for request `id`, unless the task is
    /// busy; the answer the step gave the request, if it did.
    pub(crate) fn try_step_for(&self, id: RequestId) -> Option<Response> {
        crate::mailbox::answered_inline(id, || {
            if let Ok(driver) = self.driver.try_lock() {
                self.step(driver, None);
            }
        })
        .1
    }

    fn step(&self, driver: MutexGuard<'_, Driver>, cmd: Option<Cmd>) {
        // Dropped last, after the lock (even when the step panics): a task
        // that missed the lock has registered by then, or takes the lock
        // itself on its second try.
        let _wake = WakeMissed(&self.missed);
        let mut driver = driver;
        let _span = self.span.as_deref().map(tracing::Span::enter);
        driver.step(cmd);
    }
}

impl Step for DriverCell {
    fn try_run(&self, cmd: Cmd) -> Result<(), Cmd> {
        match self.driver.try_lock() {
            Ok(driver) => {
                self.step(driver, Some(cmd));
                Ok(())
            }
            Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => Err(cmd),
        }
    }
}

/// Wakes the task that missed a session's lock, when dropped.
struct WakeMissed<'a>(&'a AtomicWaker);

impl Drop for WakeMissed<'_> {
    fn drop(&mut self) {
        self.0.wake();
    }
}

/// The task of a connection.
struct DriverTask(Arc<DriverCell>);

impl Future for DriverTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let cell = &self.0;
        let _span = cell.span.as_deref().map(tracing::Span::enter);
        let mut driver = match cell.driver.try_lock() {
            Ok(driver) => driver,
            Err(TryLockError::WouldBlock) => {
                // A step runs elsewhere: it wakes the task when it ends.
                cell.missed.register(cx.waker());
                match cell.driver.try_lock() {
                    Ok(driver) => driver,
                    Err(TryLockError::WouldBlock) => return Poll::Pending,
                    Err(TryLockError::Poisoned(_)) => return Poll::Ready(()),
                }
            }
            // A step that panicked left the state half done: the task ends.
            Err(TryLockError::Poisoned(_)) => return Poll::Ready(()),
        };
        if !driver
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            driver.waker = Some(cx.waker().clone());
            // The timer knows the waker it was polled with.
            driver.sleep_polled = false;
        }
        driver.run(cx, None)
    }
}

impl Driver {
    /// One step of the task taken on another task, with `cmd` handed over.
    fn step(&mut self, cmd: Option<Cmd>) {
        // Before its first poll the task is about to run anyway, and
        // registers its interests then.
        let waker = self.waker.clone().unwrap_or_else(|| Waker::noop().clone());
        if self.run(&mut Context::from_waker(&waker), cmd).is_ready() {
            // The task ends when it next polls.
            waker.wake();
        }
    }

    /// One wake-up's work; `cmd`, handed over by a step taken elsewhere,
    /// goes behind the commands already waiting in the link.
    fn run(&mut self, cx: &mut Context<'_>, cmd: Option<Cmd>) -> Poll<()> {
        // Behind the commands already waiting: none usually, and then it
        // is handled first, with no queue (no allocation per request).
        let handed = cmd.and_then(|cmd| {
            let mut core = self.link.lock();
            match core.cmds.as_deref_mut() {
                Some(cmds) => cmds.push_back(cmd),
                None => return Some(cmd),
            }
            None
        });
        self.link.step_started(cx.waker());
        let link = self.link.clone();
        let _unwinding = Unwinding(&link);
        // The broadcasts of this step's handlers reach each idle recipient
        // in one write, at the end of each turn of the step and when it is
        // over (also if it unwinds).
        let _batch = Batch::open();
        let _own = OwnStep::enter(&link);
        self.poll_inner(cx, handed)
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>, mut handed: Option<Cmd>) -> Poll<()> {
        let this = self;
        // A new wake-up: anything may have become ready.
        this.reads_idle = false;
        this.cmds_idle = false;
        for _ in 0..BUDGET {
            let now = clock::now();
            let mut progress = false;
            let unwritten = {
                let mut core = this.link.lock();
                // This turn looks at everything: what changes from now on
                // is for the next one.
                core.dirty = false;
                this.cmds_idle = core.cmds.is_none();
                // The WebSocket is the task's again until the step ends,
                // unless a batch elsewhere holds frames for it: they go
                // first, and the task writes nothing until then.
                this.blocked = core.frames_held();
                if !this.blocked {
                    core.direct = None;
                }
                // Due timers first, as Node's event loop runs them before
                // I/O: a poll that arrives after the ping timeout finds the
                // session closed, even if its timer has not fired yet.
                for _ in 0..4 {
                    if core.conn.poll_timeout().is_none_or(|t| t > now) {
                        break;
                    }
                    // A late ping may make its pong already overdue: go again.
                    core.conn.handle_timeout(now);
                    progress = true;
                }
                core.unwritten.take()
            };
            if let Some(unwritten) = unwritten {
                // What a broadcast left unwritten goes before anything else.
                let (id, frame) = *unwritten;
                if let Some(entry) = this.streams.iter_mut().find(|e| e.id == id && !e.done) {
                    entry.ws.resume(frame);
                    entry.flush = true;
                    progress = true;
                }
            }
            // Then the frames already received, before the requests that
            // other connections handed over meanwhile: a client that sends
            // the upgrade packet and then polls is upgraded when its poll
            // is handled.
            if !this.blocked {
                progress |= this.poll_reads(cx, now);
            }
            progress |= this.poll_commands(now, handed.take());
            progress |= this.poll_held(cx, now);
            progress |= this.drain(cx, now);
            // What the handlers' tasks did, when there are any (with none,
            // nothing came since the drain).
            if this.tasks.is_some() {
                progress |= this.poll_tasks(cx);
                progress |= this.drain(cx, now);
            }
            // The broadcasts of this turn's handlers, each recipient's in
            // one write.
            link::write_held_now();
            if !this.blocked {
                progress |= this.poll_writes(cx, now);
            }
            if this.finished(now) {
                this.link.step_ending(None);
                return Poll::Ready(());
            }
            if progress && this.has_more() {
                continue;
            }
            let Some(deadline) = this.deadline() else {
                // What another task changed meanwhile is seen before the
                // step ends; later changes wake the task.
                if this.link.step_ending(this.idle_ws()) {
                    continue;
                }
                return Poll::Pending;
            };
            if this.armed != Some(deadline) {
                this.sleep
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(deadline));
                this.armed = Some(deadline);
                this.sleep_polled = false;
            }
            let waiting = (this.sleep_polled && now < deadline)
                || match this.sleep.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.sleep_polled =
                            this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
                        true
                    }
                    Poll::Ready(()) => false,
                };
            if waiting {
                if this.link.step_ending(this.idle_ws()) {
                    continue;
                }
                return Poll::Pending;
            }
            // The timer says the deadline passed, whatever the clock reads.
            this.armed = None;
            let now = clock::now().max(deadline);
            this.core().conn.handle_timeout(now);
        }
        // Yield to the other tasks; come back at once.
        this.link.step_ending(None);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The connection is over, whatever ended its task (a panic too):
        // its core refuses what comes next, and what waits on it hears so.
        let now = clock::now();
        let (cmds, sockets, acks, counters) = {
            let mut core = self.core();
            core.conn.close(now, DisconnectReason::TransportError);
            core.outgoing.clear();
            // The socket closes with the task.
            core.direct = None;
            core.unwritten = None;
            // What waits for the task is refused (a request's reply is
            // dropped, which its caller hears), and so is what comes next.
            core.cmds_closed = true;
            let cmds = std::mem::take(&mut core.cmds);
            (
                cmds,
                std::mem::take(&mut core.sockets),
                std::mem::take(&mut core.acks),
                // Packets written by broadcasters since the task's last step.
                core.conn.take_counters(),
            )
        };
        drop(cmds);
        self.shared.stats.connection(counters);
        for (_, _, reply) in acks {
            fail(reply, AckError::Disconnected);
        }
        // Counted as the transport failing, as the core closed it.
        if self.closed_at.is_none() {
            self.shared.stats.closed(DisconnectReason::TransportError);
        }
        for s in &sockets {
            self.shared
                .stats
                .socket_disconnected(DisconnectReason::TransportError);
            self.forget_child(s);
        }
        {
            let mut state = self.shared.lock();
            for s in &sockets {
                s.connected.store(false, Ordering::Release);
                state.handle_event(
                    now,
                    self.handle,
                    EndpointEvent::SocketDisconnected {
                        nsp: s.nsp.clone(),
                        sid: s.id.clone(),
                        pid: None,
                    },
                );
            }
            state.handle_event(now, self.handle, EndpointEvent::Closed);
        }
        // The application's closures go with no lock held: dropping them
        // may run the application's code.
        for s in sockets {
            let listeners = std::mem::take(&mut *s.listeners());
            drop(listeners);
        }
        self.shared.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Ends the step's claim on the link when the step unwinds: later changes
/// wake the task again.
struct Unwinding<'a>(&'a Link);

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.step_abandoned();
        }
    }
}

/// Starts an event's handlers (once-only ones taken out, else the
/// fallback): their futures as one (a lone handler's as it is, its panic
/// for the caller to catch), or nothing when none was started. A
/// handler whose extractors fail is not called (a once-only one is used up
/// all the same, as the reference calls it whatever its arguments), and the
/// socket's error listeners hear of it.
fn run_handlers(mut ctx: EventContext) -> Option<BoxFuture<'static, ()>> {
    let socket = ctx.socket.clone();
    let handlers = socket.0.listeners().event_handlers(&ctx.name);
    if ctx.ack_id.is_some() {
        ctx.acked = Some(Arc::new(std::sync::atomic::AtomicBool::new(false)));
    }
    let mut futs = Vec::new();
    let mut lone = None;
    for handler in handlers {
        match catch_call(|| handler(&ctx), "event handler") {
            Some(Ok(fut)) if futs.is_empty() && lone.is_none() => lone = Some(fut),
            Some(Ok(fut)) => {
                // Each of several handlers' panic is its own.
                futs.extend(lone.take().map(|f| catch(f, "event handler")));
                futs.push(catch(fut, "event handler"));
            }
            Some(Err(e)) => {
                tracing::warn!(event = %ctx.name, error = %e, "event handler not called");
                socket.report_error(SocketError::Extract {
                    event: ctx.name.clone(),
                    message: e.to_string(),
                });
            }
            None => {}
        }
    }
    match lone {
        Some(fut) => Some(fut),
        None if futs.is_empty() => None,
        None => Some(Box::pin(futures_util::future::join_all(futs).map(|_| ()))),
    }
}

/// Calls `f` (the synchronous start of a handler), turning a panic into a
/// log line.
fn catch_call<T>(f: impl FnOnce() -> T, what: &'static str) -> Option<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(t) => Some(t),
        Err(_) => {
            tracing::error!("{what} panicked");
            None
        }
    }
}

/// Runs `fut`, turning a panic into a log line.
fn catch<F: Future<Output = ()> + Send + 'static>(
    fut: F,
    what: &'static str,
) -> impl Future<Output = ()> + Send + 'static {
    AssertUnwindSafe(fut).catch_unwind().map(move |r| {
        if r.is_err() {
            tracing::error!("{what} panicked");
        }
    })
}

/// The extensions a recovered socket starts with: those its session had,
/// with the values its middlewares set this time (when they ran) over them.
fn kept_extensions(kept: Kept, fresh: &Extensions) -> Extensions {
    match kept.0.downcast::<Extensions>() {
        Ok(kept) => kept.merged_with(fresh),
        Err(_) => fresh.clone(),
    }
}

/// Takes what the endpoint must learn from the connection, each event with
/// the socket it is about.
fn take_endpoint_events(core: &mut Core) -> Option<EndpointEvents> {
    let with_socket = |core: &Core, event: EndpointEvent| {
        let socket = match &event {
            EndpointEvent::SocketConnected { sid, .. }
            | EndpointEvent::SocketRestored { sid, .. }
            | EndpointEvent::SocketDisconnected { sid, .. } => {
                core.sockets.iter().find(|s| s.id == *sid).cloned()
            }
            EndpointEvent::Closed => None,
        };
        (event, socket)
    };
    let first = core.conn.poll_endpoint_event()?;
    let mut events = EndpointEvents {
        first: with_socket(core, first),
        rest: Vec::new(),
    };
    while let Some(event) = core.conn.poll_endpoint_event() {
        events.rest.push(with_socket(core, event));
    }
    Some(events)
}

/// Gives the endpoint what a connection reported: a new socket's handle
/// goes into its entry, so that the operators find it (it leaves with the
/// entry); a dropped socket's data goes with its saved session.
fn give_endpoint_events(state: &mut Locked<'_>, handle: ConnectionHandle, events: EndpointEvents) {
    let now = clock::now();
    for (event, socket) in events {
        match (&event, socket) {
            (
                EndpointEvent::SocketConnected { nsp, sid }
                | EndpointEvent::SocketRestored { nsp, sid, .. },
                Some(socket),
            ) => {
                let (nsp, sid) = (nsp.clone(), sid.clone());
                state.handle_event(now, handle, event);
                state.attach_socket(&nsp, &sid, socket);
            }
            (EndpointEvent::SocketDisconnected { nsp, sid, pid }, Some(socket)) => {
                if socket.disconnecting.load(Ordering::Acquire) {
                    socket.extras().get_or_insert_default().left_rooms = state.rooms_of(nsp, sid);
                }
                let Some(pid) = pid.clone() else {
                    state.handle_event(now, handle, event);
                    continue;
                };
                state.handle_event(now, handle, event);
                let data = socket.data();
                if let Some(data) = data {
                    state.set_session_data(&pid, data);
                }
                state.keep_with_session(&pid, Kept(Box::new(socket.extensions.clone())));
            }
            _ => state.handle_event(now, handle, event),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every session's command channel holds blocks of 32 commands: a
    /// large variant makes every idle connection pay for it.
    #[test]
    fn commands_stay_small() {
        assert!(std::mem::size_of::<super::Cmd>() <= 64);
    }

    /// What every connection holds, idle or not: each byte here is a byte
    /// per connection, and the heap's blocks come in steps of 16 bytes.
    #[test]
    fn a_connections_state_stays_small() {
        use std::mem::size_of;
        let sizes = [
            ("the task's cell", size_of::<super::DriverCell>(), 264),
            ("the link", size_of::<crate::api::link::Link>(), 152),
            (
                "a socket",
                size_of::<crate::api::socket::SocketInner>(),
                168,
            ),
            (
                "the handshake's request",
                size_of::<crate::api::socket::HttpInfo>(),
                128,
            ),
            ("a WebSocket", size_of::<crate::ws::WsConn>(), 248),
        ];
        for (what, size, bound) in sizes {
            assert!(size <= bound, "{what}: {size} bytes, more than {bound}");
        }
    }
}
