//! The client's task: it moves the core's requests and frames to the network, the network's
//! answers back to the core, runs its one timer, and calls the handlers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use socketio_client_proto::{Data, Event, RequestId, Transmit};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::clock;
use crate::io::{self, Endpoint, IoEvent};
use crate::socket::{AckSender, ManagerEvent, Message, Shared, Socket};

/// Reports from the network tasks waiting for the client's task.
const IO_QUEUE: usize = 64;

/// How long the client's task waits for a WebSocket's writer to take a frame before it gives
/// the WebSocket up ("transport error").
const WS_WRITE_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the client until it is closed.
pub(crate) async fn run(shared: Arc<Shared>, endpoint: Arc<Endpoint>) {
    let (io_tx, mut io_rx) = mpsc::channel::<IoEvent>(IO_QUEUE);
    let mut requests: HashMap<RequestId, AbortHandle> = HashMap::new();
    let mut sockets: HashMap<RequestId, mpsc::Sender<Data>> = HashMap::new();
    loop {
        let (transmits, events, deadline, done) = {
            let mut inner = shared.lock();
            let transmits: Vec<Transmit> =
                std::iter::from_fn(|| inner.core.poll_transmit()).collect();
            let events: Vec<Event> = std::iter::from_fn(|| inner.core.poll_event()).collect();
            let deadline = inner.core.poll_timeout();
            let done = inner.closed && deadline.is_none() && !inner.core.is_open();
            (transmits, events, deadline, done)
        };
        requests.retain(|_, h| !h.is_finished());
        for t in transmits {
            match t {
                Transmit::Http {
                    id,
                    method,
                    path_and_query,
                    body,
                } => {
                    let task = tokio::spawn(io::http(
                        endpoint.clone(),
                        id,
                        method,
                        path_and_query,
                        body,
                        io_tx.clone(),
                    ));
                    requests.insert(id, task.abort_handle());
                }
                Transmit::OpenWebSocket { id, path_and_query } => {
                    let task = tokio::spawn(io::websocket(
                        endpoint.clone(),
                        id,
                        path_and_query,
                        io_tx.clone(),
                    ));
                    requests.insert(id, task.abort_handle());
                }
                Transmit::Frame { id, frame } => {
                    if let Some(tx) = sockets.get(&id) {
                        // Waits when the WebSocket's writer is behind; a server that takes
                        // nothing for this long is gone.
                        let sent = tokio::time::timeout(WS_WRITE_TIMEOUT, tx.send(frame)).await;
                        if !matches!(sent, Ok(Ok(()))) {
                            sockets.remove(&id);
                            if let Some(task) = requests.remove(&id) {
                                task.abort();
                            }
                            shared.lock().core.handle_ws_closed(clock::now(), id, true);
                        }
                    }
                }
                Transmit::CloseWebSocket { id } => {
                    // An open WebSocket's writer closes it when its queue ends; one still
                    // opening is given up.
                    if sockets.remove(&id).is_none()
                        && let Some(task) = requests.remove(&id)
                    {
                        task.abort();
                    }
                }
                Transmit::Cancel { id } => {
                    if let Some(task) = requests.remove(&id) {
                        task.abort();
                    }
                }
            }
        }
        dispatch(&shared, events);
        if done {
            break;
        }
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shared.wake.notified() => {}
            Some(ev) = io_rx.recv() => {
                let now = clock::now();
                let mut inner = shared.lock();
                let mut next = Some(ev);
                // Takes what else is ready too, in one turn.
                while let Some(ev) = next {
                    match ev {
                        IoEvent::Response(id, Some((status, body))) => {
                            requests.remove(&id);
                            inner.core.handle_response(now, id, status, body);
                        }
                        IoEvent::Response(id, None) => {
                            requests.remove(&id);
                            inner.core.handle_failure(now, id);
                        }
                        IoEvent::WsOpen(id, tx) => {
                            if requests.contains_key(&id) {
                                sockets.insert(id, tx);
                            }
                            inner.core.handle_ws_open(now, id);
                        }
                        IoEvent::WsMessage(id, data) => inner.core.handle_ws_message(now, id, data),
                        IoEvent::WsClosed(id, error) => {
                            sockets.remove(&id);
                            requests.remove(&id);
                            inner.core.handle_ws_closed(now, id, error);
                        }
                    }
                    next = io_rx.try_recv().ok();
                }
            }
            _ = sleep => {
                shared.lock().core.handle_timeout(clock::now());
            }
        }
    }
    // Requests still in flight (the close POST) finish on their own; acknowledgements still
    // awaited will not come.
    shared.lock().acks.clear();
}

/// Calls a handler; one that panics is logged, and the client goes on.
fn call(f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        tracing::error!(target: "socketio_client::handler", "a handler panicked");
    }
}

/// Calls the handlers of `events`, without the lock.
fn dispatch(shared: &Arc<Shared>, events: Vec<Event>) {
    for event in events {
        let socket = |nsp| Socket {
            shared: shared.clone(),
            nsp,
        };
        match event {
            Event::Message(m) => {
                let handlers = {
                    let inner = shared.lock();
                    inner.handlers.get(&m.nsp).map(|h| {
                        let mut all = h.any.clone();
                        all.extend(h.events.get(m.name.as_str()).into_iter().flatten().cloned());
                        all
                    })
                };
                let socket = socket(m.nsp.clone());
                let message = Message {
                    name: m.name.to_string(),
                    data: m.data,
                    ack: m.ack_id.map(|id| AckSender {
                        socket: socket.clone(),
                        id,
                    }),
                };
                for h in handlers.into_iter().flatten() {
                    call(|| h(socket.clone(), message.clone()));
                }
            }
            Event::Ack { nsp, id, result } => {
                let tx = shared.lock().acks.remove(&(nsp, id));
                if let Some(tx) = tx {
                    let _ = tx.send(result);
                }
            }
            Event::Connect { nsp, recovered, .. } => {
                let handlers = {
                    let mut inner = shared.lock();
                    inner.recovered.insert(nsp.clone(), recovered);
                    inner.handlers.get(&nsp).map(|h| h.connect.clone())
                };
                for h in handlers.into_iter().flatten() {
                    call(|| h(socket(nsp.clone())));
                }
            }
            Event::Disconnect { nsp, reason } => {
                let handlers = shared
                    .lock()
                    .handlers
                    .get(&nsp)
                    .map(|h| h.disconnect.clone());
                for h in handlers.into_iter().flatten() {
                    call(|| h(socket(nsp.clone()), reason));
                }
            }
            Event::ConnectError { nsp, error } => {
                let handlers = shared
                    .lock()
                    .handlers
                    .get(&nsp)
                    .map(|h| h.connect_error.clone());
                for h in handlers.into_iter().flatten() {
                    call(|| h(socket(nsp.clone()), error.clone()));
                }
            }
            other => {
                let event = match other {
                    Event::Open { .. } => ManagerEvent::Open,
                    Event::Upgrade { .. } => ManagerEvent::Upgrade,
                    Event::Close { reason } => ManagerEvent::Close(reason),
                    Event::ReconnectAttempt { attempt } => ManagerEvent::ReconnectAttempt(attempt),
                    Event::ReconnectError { error } => ManagerEvent::ReconnectError(error),
                    Event::Reconnect { attempt } => ManagerEvent::Reconnect(attempt),
                    Event::ReconnectFailed => ManagerEvent::ReconnectFailed,
                    _ => continue,
                };
                let handlers = shared.lock().manager.clone();
                for h in handlers {
                    call(|| h(event.clone()));
                }
            }
        }
    }
}
