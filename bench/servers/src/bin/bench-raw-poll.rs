//! The long-polling ceiling: hyper 1's HTTP/1 connection on a current-thread
//! runtime, TCP_NODELAY set as the other servers do, doing only the Engine.IO
//! work the load generator's closed loop needs and no Socket.IO beyond
//! recognising its packets:
//! - a GET on `/socket.io/` without `sid` opens a session and answers the
//!   Engine.IO v4 open packet (no upgrades);
//! - a POST with `sid` reads the payload (packets separated by `\x1e`): a
//!   CONNECT to `/` (`40`) queues `40{"sid":..}`, an event to `/` without an
//!   ack id (`42[..]`) queues the same packet back (what every bench server's
//!   `echo` handler sends), a close (`1`) ends the session, anything else is
//!   ignored; the answer is `ok`;
//! - a GET with `sid` answers every queued packet at once, or is held until
//!   something is queued (one held GET per session), or answers a ping (`2`)
//!   after the ping interval.
//!
//! Sessions live in one map on the runtime's thread until the client closes
//! them, lets more than 4 MB queue up, or the process ends: no ping timeout,
//! no upgrade, no compression.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use bench_servers::announce;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// The ping interval announced in the open packet, after which a held GET
/// is answered with a ping.
const PING_INTERVAL: Duration = Duration::from_millis(25_000);

/// The largest POST body read, as announced in the open packet.
const MAX_PAYLOAD: usize = 1_000_000;

/// The most a session queues for its next GET, in bytes.
const MAX_QUEUE: usize = 4 * MAX_PAYLOAD;

/// The record separator between the packets of a payload.
const SEPARATOR: u8 = 0x1e;

/// One Engine.IO session.
#[derive(Default)]
struct Session {
    /// Queued packets, already joined with [`SEPARATOR`].
    queue: Vec<u8>,
    /// The held GET, if any.
    waiting: Option<oneshot::Sender<Bytes>>,
}

impl Session {
    fn push(&mut self, packet: &[u8]) {
        if !self.queue.is_empty() {
            self.queue.push(SEPARATOR);
        }
        self.queue.extend_from_slice(packet);
    }

    /// Hands the queue to the held GET, if there is one still waiting.
    fn flush(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        if let Some(tx) = self.waiting.take() {
            let payload = Bytes::from(std::mem::take(&mut self.queue));
            if let Err(payload) = tx.send(payload) {
                self.queue = Vec::from(payload);
            }
        }
    }
}

/// Every session of the process, by number.
#[derive(Default)]
struct State {
    sessions: RefCell<HashMap<u64, Session>>,
    next: Cell<u64>,
}

impl State {
    /// A fresh number: sessions take the even ones, their Socket.IO sockets
    /// the odd ones.
    fn next_id(&self) -> u64 {
        let id = self.next.get();
        self.next.set(id + 1);
        id
    }
}

/// An id as the 20 characters a session id has in the reference.
fn sid(id: u64) -> String {
    format!("{id:020}")
}

fn parse_sid(sid: &str) -> Option<u64> {
    if sid.len() == 20 && sid.bytes().all(|b| b.is_ascii_digit()) {
        sid.parse().ok()
    } else {
        None
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error(status: StatusCode, code: u8, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!(
        r#"{{"code":{code},"message":"{message}"}}"#
    ))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn unknown_sid() -> Response<Full<Bytes>> {
    error(StatusCode::BAD_REQUEST, 1, "Session ID unknown")
}

async fn handle(
    state: Rc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/socket.io/" {
        return Ok(text(StatusCode::NOT_FOUND, ""));
    }
    // One pass over the query.
    let (mut polling, mut v4, mut sid) = (false, false, None);
    for param in req.uri().query().unwrap_or("").split('&') {
        match param {
            "transport=polling" => polling = true,
            "EIO=4" => v4 = true,
            _ => sid = param.strip_prefix("sid=").or(sid),
        }
    }
    if !polling {
        return Ok(error(StatusCode::BAD_REQUEST, 0, "Transport unknown"));
    }
    let Some(sid) = sid else {
        if req.method() != Method::GET {
            return Ok(error(StatusCode::BAD_REQUEST, 2, "Bad handshake method"));
        }
        if !v4 {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                5,
                "Unsupported protocol version",
            ));
        }
        return Ok(open(&state));
    };
    let Some(id) = parse_sid(sid) else {
        return Ok(unknown_sid());
    };
    Ok(match *req.method() {
        Method::GET => get(&state, id).await,
        Method::POST => post(&state, id, req.into_body()).await,
        _ => error(StatusCode::BAD_REQUEST, 3, "Bad request"),
    })
}

/// A new session and its open packet.
fn open(state: &State) -> Response<Full<Bytes>> {
    let id = state.next_id();
    // The odd number after it is kept for its Socket.IO socket.
    state.next_id();
    state.sessions.borrow_mut().insert(id, Session::default());
    text(
        StatusCode::OK,
        format!(
            r#"0{{"sid":"{}","upgrades":[],"pingInterval":{},"pingTimeout":20000,"maxPayload":{MAX_PAYLOAD}}}"#,
            sid(id),
            PING_INTERVAL.as_millis()
        ),
    )
}

/// Answers the queue, or holds the request until there is one.
async fn get(state: &State, id: u64) -> Response<Full<Bytes>> {
    let rx = {
        let mut sessions = state.sessions.borrow_mut();
        let Some(session) = sessions.get_mut(&id) else {
            return unknown_sid();
        };
        if !session.queue.is_empty() {
            return text(StatusCode::OK, std::mem::take(&mut session.queue));
        }
        if session.waiting.as_ref().is_some_and(|tx| !tx.is_closed()) {
            // A second GET while one is held.
            return error(StatusCode::BAD_REQUEST, 3, "Bad request");
        }
        let (tx, rx) = oneshot::channel();
        session.waiting = Some(tx);
        rx
    };
    match tokio::time::timeout(PING_INTERVAL, rx).await {
        Ok(Ok(payload)) => text(StatusCode::OK, payload),
        // The session was closed.
        Ok(Err(_)) => text(StatusCode::OK, "6"),
        Err(_) => text(StatusCode::OK, "2"),
    }
}

/// Reads a payload and queues the answers to its packets.
async fn post(state: &State, id: u64, body: Incoming) -> Response<Full<Bytes>> {
    if !state.sessions.borrow().contains_key(&id) {
        return unknown_sid();
    }
    let body = match Limited::new(body, MAX_PAYLOAD).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, 3, "Bad request");
        }
        Err(_) => return error(StatusCode::BAD_REQUEST, 3, "Bad request"),
    };
    let mut sessions = state.sessions.borrow_mut();
    let Some(session) = sessions.get_mut(&id) else {
        return unknown_sid();
    };
    for packet in body.split(|b| *b == SEPARATOR) {
        match packet {
            // CONNECT to `/`, with or without auth data.
            [b'4', b'0'] | [b'4', b'0', b'{', ..] => {
                session.push(format!(r#"40{{"sid":"{}"}}"#, sid(id + 1)).as_bytes());
            }
            // An event to `/` without an ack id: `echo` sends it back as it is.
            [b'4', b'2', b'[', ..] => session.push(packet),
            [b'1'] => {
                // Dropping the held GET's sender answers it with a noop.
                sessions.remove(&id);
                return text(StatusCode::OK, "ok");
            }
            _ => {}
        }
        if session.queue.len() > MAX_QUEUE {
            // A client that posts without polling: the session ends.
            sessions.remove(&id);
            return error(StatusCode::BAD_REQUEST, 3, "Bad request");
        }
    }
    session.flush();
    text(StatusCode::OK, "ok")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = bench_servers::listen()?;
    announce(listener.local_addr()?);
    let state = Rc::new(State::default());
    tokio::task::LocalSet::new()
        .run_until(async move {
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                tokio::task::spawn_local(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
        .await
}
