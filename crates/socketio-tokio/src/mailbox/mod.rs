//! The way into a connection's task from the HTTP side: the polling
//! requests and the WebSockets of its session, as commands. One that finds
//! the task idle takes the task's step itself ([`Step`]); else it is queued
//! in the connection's link (`api::link`) under its lock, and the task
//! takes them in order.
//!
//! Also the bound on what a bare Engine.IO application leaves unread
//! ([`Inbox`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use socketio_proto::{Data, Payload, Request, RequestId, Response};
use tokio::sync::oneshot;

use crate::error::AckError;
use crate::ws::WsConn;

/// What a connection's task is asked to do by the HTTP side.
pub(crate) enum Cmd {
    /// A polling request for this session; answer on `reply`, or, when
    /// there is none, in [`give_inline_answer`] if the step the request
    /// takes itself answers it ([`answered_inline`]), else when the request
    /// claims its answer ([`Cmd::Claim`]).
    Http {
        id: RequestId,
        req: Box<Request>,
        reply: Option<oneshot::Sender<Response>>,
    },
    /// Where the answer to request `id`, handed over with no `reply` and
    /// not answered in its own step, goes.
    Claim {
        id: RequestId,
        reply: oneshot::Sender<Response>,
    },
    /// A WebSocket is up: the session's own (`req` None) or an upgrade's.
    WsOpen {
        id: RequestId,
        req: Option<Box<Request>>,
        ws: Box<WsConn>,
    },
    /// The WebSocket upgrade of request `id` failed.
    WsFailed { id: RequestId },
}

thread_local! {
    /// The request taking a step of its session's task on this thread
    /// ([`Cmd::Http`] with no `reply`), while it does.
    static INLINE_FOR: std::cell::Cell<Option<RequestId>> = const { std::cell::Cell::new(None) };
    /// The answer that step gave it, for it to take when the step is over:
    /// no channel for the answer a request gets at once (a POST's `ok`, a
    /// poll with packets waiting).
    static INLINE_ANSWER: std::cell::Cell<Option<(RequestId, Response)>> =
        const { std::cell::Cell::new(None) };
}

/// Runs `step` for request `id`, taken on this thread, and gives the
/// answer the step gave it, if it did.
pub(crate) fn answered_inline<R>(id: RequestId, step: impl FnOnce() -> R) -> (R, Option<Response>) {
    /// Puts back the request that took a step around this one (none
    /// does), also when the step unwinds.
    struct Restore(Option<RequestId>);
    impl Drop for Restore {
        fn drop(&mut self) {
            INLINE_FOR.set(self.0);
        }
    }
    let restore = Restore(INLINE_FOR.replace(Some(id)));
    let r = step();
    drop(restore);
    let answer = match INLINE_ANSWER.take() {
        Some((answered, answer)) if answered == id => Some(answer),
        other => {
            // Another request's, taking its step around this one (none
            // does): left to it.
            INLINE_ANSWER.set(other);
            None
        }
    };
    (r, answer)
}

/// The request whose step this thread takes, if any.
pub(crate) fn inline_request() -> Option<RequestId> {
    INLINE_FOR.get()
}

/// Leaves `answer` for request `id`, whose step the thread takes
/// ([`inline_request`]).
pub(crate) fn give_inline_answer(id: RequestId, answer: Response) {
    INLINE_ANSWER.set(Some((id, answer)));
}

/// Where the acknowledgement of an emit goes.
pub(crate) type AckReply = oneshot::Sender<Result<Payload, AckError>>;

/// A connection's task, as a request for its session may drive it.
pub(crate) trait Step: Send + Sync {
    /// Hands `cmd` to the connection and takes the task's step on the
    /// caller's task, unless the task is busy (then `cmd` comes back).
    fn try_run(&self, cmd: Cmd) -> Result<(), Cmd>;
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cmd::Http { id, .. } => f.debug_struct("Http").field("id", id).finish(),
            Cmd::Claim { id, .. } => f.debug_struct("Claim").field("id", id).finish(),
            Cmd::WsOpen { id, .. } => f.debug_struct("WsOpen").field("id", id).finish(),
            Cmd::WsFailed { id } => f.debug_struct("WsFailed").field("id", id).finish(),
        }
    }
}

/// The size of a message's data.
fn data_size(data: &Data) -> usize {
    match data {
        Data::Text(s) => s.len(),
        Data::Binary(b) => b.len(),
    }
}

/// Messages received for a bare Engine.IO application, bounded in bytes:
/// the connection closes ("transport error") when the application leaves
/// more than `max_buffer_size` unread.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    unread: Arc<AtomicUsize>,
    limit: usize,
}

impl Inbox {
    pub(crate) fn new(limit: usize) -> Inbox {
        Inbox {
            unread: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// Counts a message in; false when it would go over the bound.
    pub(crate) fn admit(&self, data: &Data) -> bool {
        let size = data_size(data);
        let unread = self.unread.load(Ordering::Relaxed);
        if unread.saturating_add(size) > self.limit {
            return false;
        }
        self.unread.fetch_add(size, Ordering::Relaxed);
        true
    }

    /// Counts a message out, as the application reads it.
    pub(crate) fn read(&self, data: &Data) {
        let size = data_size(data);
        let _ = self
            .unread
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(size))
            });
    }
}
