//! [`Link`]: a connection's shared half, through which everything that is
//! not its own task (handlers, broadcasts, the cluster, shutdown) reaches
//! its protocol state.
//!
//! The core's `Connection` sits in the link behind a lock of its own, held
//! only for one call of the core, never across a handler or an await. An
//! emit, a broadcast delivery, an acknowledgement, a disconnection: each
//! locks it, calls the core (which applies the send buffer's bound, the one
//! count of the bytes waiting for the client), and makes sure the
//! connection's task sees the change: it is woken, unless it is taking a
//! step right now, in which case it looks at the link again before the
//! step ends. So a handler's emit reaches the connection with no queue and
//! no wake-up, and a broadcast hands each recipient the shared bytes with
//! no allocation.
//!
//! A broadcast to a connection whose WebSocket is idle goes further: its
//! frame is written on the socket by the broadcaster itself, straight from
//! the shared bytes, with no allocation, no queue and no wake-up. The task
//! says when that may happen: at the end of a step after which nothing is
//! queued for its one WebSocket (a TCP stream, with no compression agreed),
//! it leaves the stream in the link ([`Direct`]), and it takes it back when
//! its next step starts, under this lock both times. So nothing the task
//! writes is ever under way while a broadcast writes, the core's send
//! buffer is empty (the core checks, in `send_encoded_now`, and counts the
//! packet as sent), and what a broadcast's write leaves unwritten waits in
//! the link, for the task to write before anything else, while every later
//! packet takes the ordinary way.
//!
//! Within a connection's step (where handlers run) such frames are held
//! in a [`Batch`] until the step ends, then each recipient's are written
//! together: a handler that broadcasts four packets costs each recipient
//! one system call, not four.
//!
//! HTTP requests and WebSockets for the session reach the task as commands
//! ([`crate::mailbox`]) queued here, under the same lock, which the task
//! takes in order; a request or a WebSocket that finds the task idle takes
//! its step itself.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use socketio_proto::socketio_packet::Packet;
use socketio_proto::{
    Connection, Counters, Data, DisconnectReason, Encoded, Payload, Request, RequestId, Response,
    SendError, Str,
};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::api::socket::SocketInner;
use crate::clock;
use crate::error::{AckError, EmitError};
use crate::handler_map::RareVec;
use crate::mailbox::{AckReply, Cmd, Step};
use crate::ws::{FRAMES_PER_WRITE, Single};

/// What the link's lock guards.
pub(crate) struct Core {
    /// The core's state machine of the connection.
    pub(crate) conn: Box<Connection>,
    /// The connection's sockets, one per namespace.
    pub(crate) sockets: Vec<Arc<SocketInner>>,
    /// The emits awaiting an acknowledgement: namespace, ack id, reply.
    /// (Rare: 8 bytes while none was awaited.)
    pub(crate) acks: RareVec<(Str, u64, AckReply)>,
    /// Broadcasts delivered to sockets with outgoing listeners: the task
    /// calls the listeners, so that they run on the recipient's task, not
    /// the broadcaster's.
    /// (Rare: 8 bytes while empty.)
    pub(crate) outgoing: RareVec<(Arc<SocketInner>, Packet)>,
    /// Something other than the task changed the connection since the task
    /// last looked: new output, a new deadline.
    pub(crate) dirty: bool,
    /// The idle WebSocket a broadcast may write on, left by the task at the
    /// end of a step and taken back when the next starts.
    pub(crate) direct: Option<Direct>,
    /// What of a frame written by a broadcast the socket did not take: the
    /// task writes it before anything else.
    pub(crate) unwritten: Option<Box<(RequestId, Single)>>,
    /// Commands from the HTTP side for the task, in the order they came:
    /// a request's step handed over here, a WebSocket's upgrade. Boxed and
    /// gone when empty: the queue is used only while the task is busy, and
    /// an idle connection has none.
    #[expect(
        clippy::box_collection,
        reason = "the box is what keeps an unused queue at one pointer"
    )]
    pub(crate) cmds: Option<Box<VecDeque<Cmd>>>,
    /// The task is gone: commands are refused.
    pub(crate) cmds_closed: bool,
    /// Frames of broadcasts held for this connection by a [`Batch`], to be
    /// written together when it ends: until then nothing else is written
    /// on the WebSocket (the task waits, other broadcasters queue). The low
    /// 15 bits: 0 when none is, else one more than the place of the last of
    /// them in the batch; [`HELD_WAITING`]: the task waits for them.
    held: u16,
    /// The thread whose batch holds them (see [`batch_id`]).
    holder: u32,
}

/// `Core::held`'s bit that says the task waits for the frames held.
const HELD_WAITING: u16 = 1 << 15;

const _: () = assert!(
    MAX_HELD < HELD_WAITING as usize,
    "a place fits `Core::held`"
);

impl Core {
    /// One more than the place of this connection's last frame held in a
    /// batch; 0 when none is.
    fn held_place(&self) -> u16 {
        self.held & !HELD_WAITING
    }

    /// Leaves `rest`, frames for the WebSocket `ws` that a broadcaster
    /// wrote in part or not at all, to the task, which writes them first
    /// (after what was left before them) when it next runs; every later
    /// packet goes through the send buffer.
    fn leave_unwritten(&mut self, ws: RequestId, rest: Vec<Single>) {
        let before = self.unwritten.take().map(|b| b.1);
        if let Some(rest) = Single::joined(before.into_iter().chain(rest).collect()) {
            self.unwritten = Some(Box::new((ws, rest)));
        }
        self.direct = None;
        self.dirty = true;
    }

    /// Whether a batch holds frames for this connection. If so, the task
    /// writes nothing on its WebSocket (nor reads, whose close would answer
    /// there), and is woken when they are written.
    pub(crate) fn frames_held(&mut self) -> bool {
        let held = self.held_place() > 0;
        if held {
            self.held |= HELD_WAITING;
        }
        held
    }
}

/// A connection's one WebSocket, idle (nothing queued for it anywhere) and
/// not compressing: see the [module](self) documentation.
pub(crate) struct Direct {
    /// The WebSocket's transport, as the core knows it.
    pub(crate) ws: RequestId,
    /// Its socket.
    pub(crate) stream: Arc<TcpStream>,
}

/// The target of the trace event of each broadcast written by the
/// broadcaster, with `whole` false when the socket took only part of it.
const WRITTEN_BY_BROADCASTER: &str = "socketio_tokio::broadcast::written";

/// A connection's shared half. See the [module](self) documentation.
pub(crate) struct Link {
    core: Mutex<Core>,
    /// The task's waker, registered at every poll.
    waker: AtomicWaker,
    /// Set while the task takes a step: a change made meanwhile needs no
    /// wake-up, the step looks at `dirty` before it ends.
    stepping: AtomicBool,
    /// The task's state, for a request that takes the task's step itself.
    step: OnceLock<Weak<dyn Step>>,
    /// Set while a polling POST's body is read: a second POST meanwhile is
    /// the reference's "data request overlap".
    posting: AtomicBool,
}

/// A polling POST being read, for its session's [`Link`]; the next may
/// start once it is dropped.
pub(crate) struct Posting<'a>(&'a Link);

impl Drop for Posting<'_> {
    fn drop(&mut self) {
        self.0.posting.store(false, Ordering::Release);
    }
}

impl Link {
    /// The link of `conn`.
    pub(crate) fn new(conn: Box<Connection>) -> Arc<Link> {
        Arc::new(Link {
            core: Mutex::new(Core {
                conn,
                sockets: Vec::new(),
                acks: RareVec::default(),
                outgoing: RareVec::default(),
                dirty: false,
                direct: None,
                unwritten: None,
                cmds: None,
                cmds_closed: false,
                held: 0,
                holder: 0,
            }),
            waker: AtomicWaker::new(),
            stepping: AtomicBool::new(false),
            step: OnceLock::new(),
            posting: AtomicBool::new(false),
        })
    }

    /// Notes a polling POST being read; `None` when one already is.
    pub(crate) fn start_post(&self) -> Option<Posting<'_>> {
        match self.posting.swap(true, Ordering::Acquire) {
            true => None,
            false => Some(Posting(self)),
        }
    }

    /// The connection's transport now.
    pub(crate) fn transport(&self) -> socketio_proto::TransportKind {
        self.lock().conn.transport()
    }

    /// The Engine.IO session id.
    pub(crate) fn sid(&self) -> socketio_proto::Str {
        self.lock().conn.sid().clone()
    }

    /// Locks the connection's state: for one call of the core, never across
    /// a handler or an await. The endpoint's lock is never taken while this
    /// one is held (it may be held while this one is taken: the delivery of
    /// a packet stored for recovery, and the recovery of a session).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ----- the task's side -----

    /// Tells the senders where the task's state is (once).
    pub(crate) fn set_step(&self, step: Weak<dyn Step>) {
        let _ = self.step.set(step);
    }

    /// The task starts a step: changes from now on need no wake-up.
    pub(crate) fn step_started(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
        self.stepping.store(true, Ordering::SeqCst);
    }

    /// The task ends a step; true when something changed meanwhile, in
    /// which case the step goes on (and counts as started again). Else the
    /// task's idle WebSocket, if it has one, is left for broadcasts to
    /// write on until the next step starts.
    pub(crate) fn step_ending(&self, idle: Option<Direct>) -> bool {
        self.stepping.store(false, Ordering::SeqCst);
        let mut core = self.lock();
        if std::mem::take(&mut core.dirty) {
            self.stepping.store(true, Ordering::SeqCst);
            return true;
        }
        core.direct = idle;
        false
    }

    /// A step unwound: changes from now on wake the task again.
    pub(crate) fn step_abandoned(&self) {
        self.stepping.store(false, Ordering::SeqCst);
    }

    // ----- the HTTP side -----

    /// Hands `cmd` to the task: its step is taken here when the task is not
    /// busy, else the command waits in the link for the task.
    pub(crate) fn run(&self, cmd: Cmd) -> Result<(), Gone> {
        let cmd = match self.step.get().and_then(Weak::upgrade) {
            Some(step) => match step.try_run(cmd) {
                Ok(()) => return Ok(()),
                Err(cmd) => cmd,
            },
            None => cmd,
        };
        self.send(cmd)
    }

    /// Hands the polling request `id` to the task and gives its answer.
    /// When the task is not busy, the request takes the task's step itself,
    /// and an answer that step gives comes back with no channel (a POST's,
    /// a poll with packets waiting); else the answer comes over one.
    pub(crate) async fn request(&self, id: RequestId, req: Box<Request>) -> Result<Response, Gone> {
        let req = match self.step.get().and_then(Weak::upgrade) {
            Some(step) => {
                let cmd = Cmd::Http {
                    id,
                    req,
                    reply: None,
                };
                match crate::mailbox::answered_inline(id, || step.try_run(cmd)) {
                    (Ok(()), Some(answer)) => return Ok(answer),
                    (Ok(()), None) => return self.claim(id).await,
                    (Err(Cmd::Http { req, .. }), _) => req,
                    (Err(_), _) => return Err(Gone),
                }
            }
            None => req,
        };
        let (reply, answer) = oneshot::channel();
        self.send(Cmd::Http {
            id,
            req,
            reply: Some(reply),
        })?;
        answer.await.map_err(|_| Gone)
    }

    /// The answer to request `id`, handed to the task with no channel and
    /// not answered in the step that took it.
    pub(crate) async fn claim(&self, id: RequestId) -> Result<Response, Gone> {
        let (reply, answer) = oneshot::channel();
        self.run(Cmd::Claim { id, reply })?;
        answer.await.map_err(|_| Gone)
    }

    /// Queues `cmd` for the task, behind those waiting.
    fn send(&self, cmd: Cmd) -> Result<(), Gone> {
        self.change(|core| {
            if core.cmds_closed {
                return Err(Gone);
            }
            core.cmds.get_or_insert_default().push_back(cmd);
            Ok(())
        })
    }

    /// The next command for the task, if any.
    pub(crate) fn next_cmd(&self) -> Option<Cmd> {
        let mut core = self.lock();
        let cmds = core.cmds.as_deref_mut()?;
        let cmd = cmds.pop_front();
        if cmds.is_empty() {
            core.cmds = None;
        }
        cmd
    }

    // ----- the application's side -----

    /// Calls `f` on the connection's state, then makes sure the task sees
    /// what changed.
    fn change<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        let r = {
            let mut core = self.lock();
            let r = f(&mut core);
            core.dirty = true;
            r
        };
        self.notify();
        r
    }

    /// Wakes the task, unless it is taking a step (which looks at `dirty`
    /// before it ends).
    fn notify(&self) {
        if !self.stepping.load(Ordering::SeqCst) {
            self.waker.wake();
        }
    }

    /// Sends an encoded packet to the socket on `nsp`.
    ///
    /// From the connection's own step (its handlers), the task need not
    /// hear of it: the step writes what its handlers queued before it ends
    /// (its writes come after them in each turn), and would otherwise take
    /// another turn for nothing.
    pub(crate) fn send_encoded(
        &self,
        nsp: &str,
        encoded: Encoded,
        volatile: bool,
    ) -> Result<(), SendError> {
        if OwnStep::is(self) {
            return self.lock().conn.send_encoded_owned(nsp, encoded, volatile);
        }
        self.change(|core| core.conn.send_encoded_owned(nsp, encoded, volatile))
    }

    /// Delivers a broadcast: the shared bytes to the socket on `packet`'s
    /// namespace, written here when the connection's WebSocket is idle, else
    /// put in the core's send buffer for the task. If that socket has
    /// outgoing listeners, the connection's task calls them with the packet.
    ///
    /// `write_now` says whether this thread may write on the socket (a
    /// non-blocking system call); a caller that holds the endpoint's lock
    /// says no, so that no other connection waits on a system call. Within
    /// a [`Batch`] (a connection's step, where handlers run) the frame is
    /// held instead, and written when the batch ends with the connection's
    /// other frames of it, in one system call.
    ///
    /// Returns the connection's counts when the packet was written or held
    /// here (the task, which is not woken, would add them only at its next
    /// step), for the caller to add to the server's.
    pub(crate) fn deliver(
        self: &Arc<Self>,
        packet: &Packet,
        encoded: &Encoded,
        volatile: bool,
        write_now: bool,
    ) -> Counters {
        let batch = if write_now { batch_id() } else { None };
        let mut guard = self.lock();
        let core = &mut *guard;
        // Frames another thread's batch holds go first: nothing is written
        // here before them.
        let held_elsewhere = core.held_place() > 0 && Some(core.holder) != batch;
        // A batch holds at most a send buffer's worth for one connection:
        // what the socket does not take of it goes to the task uncounted.
        let room = match batch {
            Some(_) => {
                held_bytes(core.held_place()) + encoded.size() <= core.conn.max_buffer_size()
            }
            None => true,
        };
        let direct = core
            .direct
            .as_ref()
            .filter(|_| write_now && !held_elsewhere && room);
        let now = direct.and_then(|direct| {
            let frame = core
                .conn
                .send_encoded_now(&packet.nsp, encoded, direct.ws)?;
            Some((direct.ws, Single::new(&frame)))
        });
        let mut counters = Counters::default();
        let mut full_batch = false;
        let sent = match now {
            // Held for the batch's end; the packet counts as sent, as one
            // written whole.
            Some((ws, frame)) if let Some(id) = batch => {
                counters = core.conn.take_counters();
                let last = core.held_place();
                // The link is kept with the connection's first frame only.
                let link = (last == 0).then(|| self.clone());
                let (place, full) = hold_frame(link, ws, frame, last);
                core.held = place | (core.held & HELD_WAITING);
                core.holder = id;
                full_batch = full;
                Ok(())
            }
            Some((ws, mut frame)) => {
                let whole = core
                    .direct
                    .as_ref()
                    .is_some_and(|direct| frame.try_write(&direct.stream));
                if whole {
                    // Written whole: the task need not hear of it.
                    tracing::trace!(target: WRITTEN_BY_BROADCASTER, whole = true);
                    counters = core.conn.take_counters();
                } else {
                    tracing::trace!(target: WRITTEN_BY_BROADCASTER, whole = false);
                    core.leave_unwritten(ws, vec![frame]);
                }
                Ok(())
            }
            None => {
                core.dirty = true;
                core.conn.send_encoded(&packet.nsp, encoded, volatile)
            }
        };
        match sent {
            Ok(()) => {
                let listening = core
                    .sockets
                    .iter()
                    .find(|s| s.nsp == packet.nsp && s.has_outgoing_listeners())
                    .cloned();
                if let Some(socket) = listening {
                    core.outgoing.push((socket, packet.clone()));
                    core.dirty = true;
                }
            }
            Err(e) => log_send_error(e),
        }
        let dirty = core.dirty;
        drop(guard);
        if full_batch {
            // After the lock: a full batch writes its frames at once.
            write_all_held();
        }
        if dirty {
            self.notify();
        }
        counters
    }

    /// Writes this connection's frames of a batch, `held[first]` and those
    /// chained to it, in order, with as few system calls as the socket
    /// allows; what it does not take (or all of them, when the task has
    /// taken its WebSocket back) goes to the task, before anything else.
    fn write_held(&self, held: &mut [HeldFrame], first: usize) {
        let ws = held[first].ws;
        let mut guard = self.lock();
        let core = &mut *guard;
        // The task, if it waited for these, looks again.
        core.dirty |= core.held & HELD_WAITING != 0;
        core.held = 0;
        core.holder = 0;
        // The place of the first frame not written whole.
        let mut next = Some(first);
        match core.direct.as_ref().filter(|d| d.ws == ws) {
            // One frame: as a broadcast outside a batch writes it.
            Some(direct) if held[first].next == 0 => {
                let whole = held[first].frame.try_write(&direct.stream);
                next = next.filter(|_| !whole);
            }
            Some(direct) => {
                write_chain(held, &mut next, &direct.stream);
            }
            None => {}
        }
        tracing::trace!(
            target: WRITTEN_BY_BROADCASTER,
            frames = chain(held, first).count(),
            whole = next.is_none()
        );
        if let Some(at) = next {
            let mut rest = Vec::new();
            let mut i = Some(at);
            while let Some(place) = i {
                rest.push(held[place].frame.take());
                i = held[place].next();
            }
            core.leave_unwritten(ws, rest);
        }
        // What came while the frames were held, the task writes now.
        core.dirty |= core.conn.has_output();
        let dirty = core.dirty;
        drop(guard);
        if dirty {
            self.notify();
        }
    }

    /// Emits `packet` (an event) and sends its acknowledgement to `reply`
    /// when it comes, or an error when `timeout` passes first or the socket
    /// goes. `compress`: whether its frames may be compressed.
    pub(crate) fn emit_with_ack(
        &self,
        packet: Packet,
        timeout: Duration,
        compress: bool,
        reply: AckReply,
    ) -> Result<(), EmitError> {
        let nsp = packet.nsp.clone();
        let sent = self.change(|core| {
            let sent = core
                .conn
                .emit_with_ack(clock::now(), packet, timeout, compress);
            if let Ok(id) = sent {
                core.acks.push((nsp, id, reply));
            }
            sent
        });
        sent.map(|_| ()).map_err(emit_error)
    }

    /// Acknowledges the client's event `id` on `nsp`.
    pub(crate) fn ack(&self, nsp: &str, id: u64, data: Payload) -> Result<(), EmitError> {
        match self.change(|core| core.conn.ack(nsp, id, data)) {
            Ok(()) => Ok(()),
            Err(e) => {
                log_send_error(e);
                Err(emit_error(e))
            }
        }
    }

    /// Sends a bare Engine.IO message.
    pub(crate) fn send_message(&self, data: Data) -> Result<(), EmitError> {
        self.change(|core| core.conn.send_message(data))
            .or_else(ignore_dropped)
            .map_err(emit_error)
    }

    /// Makes the socket on `nsp` leave ("server namespace disconnect").
    pub(crate) fn disconnect(&self, nsp: &str) {
        let _ = self.change(|core| core.conn.disconnect(nsp));
    }

    /// Closes the whole connection.
    pub(crate) fn close(&self, reason: DisconnectReason) {
        self.change(|core| core.conn.close(clock::now(), reason));
    }
}

/// Holds, while it lives, the frames that broadcasts on this thread would
/// write on idle WebSockets: when the outermost batch of the thread ends,
/// each connection's frames go out together, in one system call where
/// there were several. A connection's step runs in one, and writes what it
/// holds at the end of each of its turns too, so that the broadcasts its
/// handlers make in one wake-up reach each recipient in one write, as its
/// own emits do.
///
/// A connection with frames held writes nothing else on its WebSocket
/// until they are written: its task leaves its output queued
/// (`Core::held`), and broadcasts from other threads queue theirs. At most
/// [`MAX_HELD`] frames, or [`MAX_HELD_BYTES`] bytes, are held; a batch that
/// reaches either writes them at once and goes on. For one connection it
/// holds at most a send buffer's worth; its further broadcasts go to the
/// send buffer, behind the frames held.
///
/// So a broadcast to a room costs each idle recipient one system call per
/// step of the broadcaster, however many packets it broadcasts, up to
/// 16,384 frames in all: four broadcasts to 4,000 recipients.
pub(crate) struct Batch {
    /// Not `Send`: a batch is its thread's.
    _thread: std::marker::PhantomData<*const ()>,
}

thread_local! {
    /// The address of the link whose step this thread takes, 0 if none.
    static OWN_STEP: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the thread as taking a connection's step, until dropped.
pub(crate) struct OwnStep {
    /// The step it was taking before (a step is not taken within another
    /// today; kept so that one would not confuse them).
    previous: usize,
}

impl OwnStep {
    /// The thread takes `link`'s step.
    pub(crate) fn enter(link: &Link) -> OwnStep {
        OwnStep {
            previous: OWN_STEP.replace(std::ptr::from_ref(link).addr()),
        }
    }

    /// Whether the thread takes `link`'s step.
    fn is(link: &Link) -> bool {
        OWN_STEP.get() == std::ptr::from_ref(link).addr()
    }
}

impl Drop for OwnStep {
    fn drop(&mut self) {
        OWN_STEP.set(self.previous);
    }
}

/// The frames a batch holds at most before it writes them: four
/// broadcasts to a room of 4,000 (88 bytes each, 1.4 MB). Below
/// [`HELD_WAITING`], for `Core::held`.
const MAX_HELD: usize = 16 * 1024;

/// The bytes a batch holds at most before it writes them, counted once per
/// recipient (so more than it holds: a broadcast's recipients share its
/// bytes).
const MAX_HELD_BYTES: usize = 4 << 20;

/// The room a thread keeps for its next batch's frames, at most.
const KEPT_HELD: usize = 1024;

/// A frame a batch holds.
struct HeldFrame {
    /// The connection, with its first frame (taken out when its frames are
    /// written); none with the others.
    link: Option<Arc<Link>>,
    /// The bytes of the connection's frames held so far, this one's too.
    bytes: usize,
    /// The WebSocket it is for.
    ws: RequestId,
    frame: Single,
    /// One more than the place of the connection's next frame in the
    /// batch; 0 for its last.
    next: u16,
}

impl HeldFrame {
    /// The place of the connection's next frame in the batch.
    fn next(&self) -> Option<usize> {
        usize::from(self.next).checked_sub(1)
    }
}

/// The places of a connection's frames in a batch, from `first`.
fn chain(held: &[HeldFrame], first: usize) -> impl Iterator<Item = usize> + '_ {
    std::iter::successors(Some(first), |&at| held[at].next())
}

/// Writes the chain of frames from `next` on `stream`, up to
/// [`FRAMES_PER_WRITE`] per system call, while the socket takes them whole;
/// `next` is left at the first frame not written whole.
fn write_chain(held: &mut [HeldFrame], next: &mut Option<usize>, stream: &TcpStream) {
    while let Some(at) = *next {
        // Up to FRAMES_PER_WRITE frames of the chain per system call.
        let mut chunk = [0; FRAMES_PER_WRITE];
        let mut len = 0;
        let mut i = Some(at);
        while let Some(place) = i.filter(|_| len < FRAMES_PER_WRITE) {
            chunk[len] = place;
            len += 1;
            i = held[place].next();
        }
        let mut slices = [IoSlice::new(&[]); 2 * FRAMES_PER_WRITE];
        for (k, place) in chunk[..len].iter().enumerate() {
            let (header, payload) = held[*place].frame.slices();
            slices[2 * k] = IoSlice::new(header);
            slices[2 * k + 1] = IoSlice::new(payload);
        }
        let Ok(mut n) = stream.try_write_vectored(&slices[..2 * len]) else {
            break;
        };
        let mut whole = true;
        for place in &chunk[..len] {
            n = held[*place].frame.advance(n);
            if held[*place].frame.remaining() > 0 {
                whole = false;
                break;
            }
            *next = held[*place].next();
        }
        if !whole {
            break;
        }
    }
}

/// A thread's batch, but its frames: read at every step, in a cell that
/// costs a load to reach.
#[derive(Clone, Copy)]
struct BatchState {
    /// Batches open on the thread (only the outermost one writes).
    open: u32,
    /// The thread's id in `Core::holder`, 0 until its first frame held.
    id: u32,
    /// Frames are held.
    holding: bool,
    /// The frames are being written: a broadcast meanwhile (from a drop,
    /// say) writes its own, behind them.
    writing: bool,
}

/// A thread's held frames.
struct Held {
    frames: Vec<HeldFrame>,
    /// The bytes of `frames`.
    bytes: usize,
}

thread_local! {
    static STATE: std::cell::Cell<BatchState> = const {
        std::cell::Cell::new(BatchState {
            open: 0,
            id: 0,
            holding: false,
            writing: false,
        })
    };
    static HELD: std::cell::RefCell<Held> = const {
        std::cell::RefCell::new(Held {
            frames: Vec::new(),
            bytes: 0,
        })
    };
}

/// Changes this thread's batch state with `f`; what `f` returns.
fn batch_state<R>(f: impl FnOnce(&mut BatchState) -> R) -> R {
    STATE.with(|cell| {
        let mut state = cell.get();
        let r = f(&mut state);
        cell.set(state);
        r
    })
}

/// The ids of the threads that held frames (0 is none).
static HOLDERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

impl Batch {
    /// Opens a batch on this thread (or nests in the one open).
    pub(crate) fn open() -> Batch {
        batch_state(|s| s.open += 1);
        Batch {
            _thread: std::marker::PhantomData,
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let write = batch_state(|s| {
            s.open -= 1;
            s.open == 0 && s.holding
        });
        if write {
            write_all_held();
        }
    }
}

/// This thread's id in `Core::holder` when a batch is open on it and not
/// being written.
fn batch_id() -> Option<u32> {
    batch_state(|s| {
        if s.open == 0 || s.writing {
            return None;
        }
        if s.id == 0 {
            s.id = HOLDERS.fetch_add(1, Ordering::Relaxed).max(1);
        }
        Some(s.id)
    })
}

/// Adds `frame` for `link`'s WebSocket `ws` to this thread's batch, after
/// the connection's frame whose place is `last - 1` (none when `last` is
/// 0); its own place plus one, and whether the batch is full.
fn hold_frame(link: Option<Arc<Link>>, ws: RequestId, frame: Single, last: u16) -> (u16, bool) {
    batch_state(|s| s.holding = true);
    HELD.with_borrow_mut(|h| {
        let at = h.frames.len();
        // Below MAX_HELD, itself below HELD_WAITING.
        let place = u16::try_from(at + 1).unwrap_or(u16::MAX);
        let mut bytes = frame.remaining();
        if let Some(before) = usize::from(last)
            .checked_sub(1)
            .and_then(|i| h.frames.get_mut(i))
        {
            before.next = place;
            bytes += before.bytes;
        }
        h.bytes += frame.remaining();
        h.frames.push(HeldFrame {
            link,
            bytes,
            ws,
            frame,
            next: 0,
        });
        (
            place,
            h.frames.len() >= MAX_HELD || h.bytes >= MAX_HELD_BYTES,
        )
    })
}

/// Writes what this thread's batch holds now, if anything, and holds on:
/// a connection's step writes at the end of each of its turns, so that a
/// slow handler later in the step keeps no recipient waiting.
pub(crate) fn write_held_now() {
    if batch_state(|s| s.holding && !s.writing) {
        write_all_held();
    }
}

/// The bytes of a connection's frames this thread's batch holds, the last
/// of which has the place `last - 1` (none when `last` is 0).
fn held_bytes(last: u16) -> usize {
    match usize::from(last).checked_sub(1) {
        Some(i) => HELD.with_borrow(|h| h.frames.get(i).map_or(0, |f| f.bytes)),
        None => 0,
    }
}

/// Writes the frames this thread's batch holds, each connection's together.
fn write_all_held() {
    batch_state(|s| {
        s.holding = false;
        s.writing = true;
    });
    let mut frames = HELD.with_borrow_mut(|h| {
        h.bytes = 0;
        std::mem::take(&mut h.frames)
    });
    for first in 0..frames.len() {
        if let Some(link) = frames[first].link.take() {
            link.write_held(&mut frames, first);
        }
    }
    frames.clear();
    // The list's room is kept for the thread's next batch.
    if frames.capacity() > KEPT_HELD {
        frames = Vec::new();
    }
    HELD.with_borrow_mut(|h| h.frames = frames);
    batch_state(|s| s.writing = false);
}

/// The connection's task is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

/// What an emit's caller hears of a core's refusal.
pub(crate) fn emit_error(e: SendError) -> EmitError {
    match e {
        SendError::BufferFull => EmitError::BufferFull,
        _ => EmitError::Disconnected,
    }
}

/// A volatile packet dropped is no error of the caller's.
pub(crate) fn ignore_dropped(e: SendError) -> Result<(), SendError> {
    match e {
        SendError::Dropped => Ok(()),
        e => Err(e),
    }
}

/// Logs a refusal of the core at the level it deserves.
pub(crate) fn log_send_error(e: SendError) {
    match e {
        SendError::Dropped => tracing::trace!("volatile packet dropped"),
        SendError::Closed | SendError::NotConnected => {
            tracing::trace!("not sent: the socket or connection is closed")
        }
        e => tracing::debug!(error = %e, "cannot send"),
    }
}

/// Sends `reply` its failure.
pub(crate) fn fail(reply: AckReply, e: AckError) {
    let _ = reply.send(Err(e));
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    use socketio_proto::{Config, Endpoint, IdGenerator, Request, RequestId, Route};

    use super::*;

    /// A waker that counts its wake-ups.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn link() -> Arc<Link> {
        let mut endpoint = Endpoint::with_ids(Config::default(), IdGenerator::from_seed([1; 32]));
        let req = Request::get("/socket.io/?EIO=4&transport=polling");
        let Route::New(_, conn) = endpoint.handle_request(clock::now(), RequestId(1), &req) else {
            panic!("a handshake opens a session");
        };
        Link::new(conn)
    }

    #[test]
    fn a_change_during_a_step_is_seen_by_the_step_and_wakes_nobody() {
        let link = link();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());

        link.step_started(&waker);
        link.disconnect("/");
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            0,
            "no wake-up during a step"
        );
        // The step sees the change before it ends, and goes on.
        assert!(link.step_ending(None));
        assert!(!link.step_ending(None), "then nothing is left");

        // Between steps a change wakes the task, once.
        link.disconnect("/");
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        // Until it registers again, further changes wake nobody more: the
        // task is already on its way.
        link.close(DisconnectReason::ForcedClose);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        link.step_started(&waker);
        assert!(link.step_ending(None), "the step sees both changes");
        assert!(!link.step_ending(None));
    }
}
