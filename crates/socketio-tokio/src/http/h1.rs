//! Engine.IO's long-polling requests and WebSocket upgrades served over
//! HTTP/1.1 without hyper.
//!
//! A polling client sends the same small requests on a kept-alive
//! connection for as long as its session lives: a `GET` that waits for
//! packets and a `POST` of packets. [`SocketIo::serve`] reads such a
//! connection here: the request head parsed by httparse where it was read,
//! the body read by its `Content-Length`, and the answer's head written
//! with its body in one write, the request going through the same
//! [`handle`] as hyper's.
//!
//! A WebSocket upgrade goes through [`handle`] too; once its `101` is
//! written, the connection is the session's WebSocket, with the bytes read
//! past the request (the client's first frames) ([`Ended::Upgraded`]).
//!
//! Anything else goes to hyper, with every byte read and not yet served:
//! another path, an upgrade to another protocol, a method other than
//! `GET` and `POST`, a body that is chunked, announced with `Expect` or
//! over `max_payload`, a `GET` with a body, HTTP/1.0, a head httparse
//! refuses, one over the header limits, or one whose handshake head `http`
//! refuses. hyper serves the connection from there on, answering errors as
//! it answers them on any connection.
//!
//! A polling session's own requests carry little the session needs: the
//! query, `Content-Type`, `Origin` and `Accept-Encoding`. They are read
//! from the raw head, with no `HeaderMap`; a handshake (no `sid`) and an
//! upgrade get the whole head as `http` parts, as the application's hooks
//! see it. A session's answer that needs no compression and no CORS
//! headers is written with no `HeaderMap` either, and so is a `101`.

use std::cell::Cell;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes};
use http::StatusCode;
use http_body::Body;
use http_body_util::Full;
use socketio_proto::{ContentType, Method};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::server::{Shared, SocketIo};
use crate::clock::Civil;
use crate::http::compress::Coding;
use crate::http::service::{self, Head, Reply, Upgrade};
use crate::http::{client, header_str};
use crate::request_head::RequestHead;
use crate::ws::read_clearing_with;

/// The most headers a head served here may have: a head with more goes to
/// hyper, which reads up to the server's `max_headers`.
const MAX_HEADERS: usize = 64;

/// What the read buffer grows to at least, when a request does not fit
/// in what the first read took: a head and a small body come in one read.
const READ_SIZE: usize = 4096;

/// A response body up to this size is copied behind its head and written
/// with it; a longer one is written beside it (`writev`).
const COPY_BODY: usize = 2048;

/// The limits of the connection, as the server gives them to hyper.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// How long a request head may take, from the end of the last answer
    /// (an idle kept-alive connection is closed after as long).
    pub(crate) header_read_timeout: Duration,
    /// The most bytes a request head may take (hyper's read buffer).
    pub(crate) max_head: usize,
    /// The most headers a request head may have.
    pub(crate) max_headers: usize,
    /// How long the request in flight may take once the server shuts down.
    pub(crate) shutdown_timeout: Duration,
}

/// How a connection served here ended.
pub(crate) enum Ended {
    /// The connection is over: the client closed it, failed, was too
    /// slow, asked for the close, or the server is shutting down.
    Closed,
    /// hyper serves it from here, starting with these bytes, read and not
    /// served.
    HandOver(Bytes),
    /// The connection is a session's WebSocket from here, starting with
    /// these bytes, read after its upgrade request.
    Upgraded(Box<Upgrade>, Bytes),
}

/// What the first bytes of a connection hold, when it is for [`serve`].
pub(crate) struct First(Parsed);

/// What the first bytes of a connection hold; `None` when they start a
/// request for hyper, which then serves the whole connection.
pub(crate) fn first(first: &[u8], io: &SocketIo, limits: Limits) -> Option<First> {
    match parse(first, &io.shared, limits.max_headers) {
        Parsed::Other => {
            tracing::trace!("the connection goes to hyper");
            None
        }
        parsed => Some(First(parsed)),
    }
}

/// Serves the polling requests of `stream` whose first bytes were
/// `first` (`parsed`), until the connection is over or a request is one
/// hyper must serve. When `watcher` changes (the server shuts down), an idle
/// connection is closed at once, and a busy one after its answer, or at
/// `shutdown_timeout`.
pub(crate) async fn serve(
    stream: &TcpStream,
    first: Bytes,
    parsed: First,
    io: &SocketIo,
    remote: SocketAddr,
    watcher: &mut watch::Receiver<()>,
    limits: Limits,
) -> Ended {
    let parsed = parsed.0;
    let state = State::default();
    let conn = Conn {
        stream,
        buf: ReadBuf::new(&first),
        out: Vec::new(),
        shared: &io.shared,
        remote,
        limits,
        state: &state,
    };
    // Pinned where it is made: a future bound first and pinned after
    // takes its room twice in this one.
    let mut run = std::pin::pin!(conn.run(parsed));
    tokio::select! {
        biased;
        ended = &mut run => return ended,
        _ = watcher.changed() => {}
    }
    if state.idle.load(Relaxed) {
        return Ended::Closed;
    }
    state.closing.store(true, Relaxed);
    tokio::select! {
        biased;
        ended = &mut run => ended,
        () = tokio::time::sleep(limits.shutdown_timeout) => Ended::Closed,
    }
}

/// What the connection and its shutdown watch share.
#[derive(Default)]
struct State {
    /// Waiting for a request with nothing of it read.
    idle: AtomicBool,
    /// The server shuts down: the answer in the works is the last.
    closing: AtomicBool,
}

/// One connection served here.
struct Conn<'a> {
    stream: &'a TcpStream,
    buf: ReadBuf,
    /// The answer's head (and a short body), kept from one answer to the
    /// next.
    out: Vec<u8>,
    shared: &'a Arc<Shared>,
    remote: SocketAddr,
    limits: Limits,
    state: &'a State,
}

/// A request head read here.
struct Request {
    head: Head,
    /// The head's length in bytes.
    len: usize,
    /// The body's length.
    content_length: usize,
    /// The client asked to close after the answer.
    close: bool,
    /// A WebSocket upgrade.
    websocket: bool,
}

/// What the bytes read hold.
enum Parsed {
    /// A request to serve here.
    Request(Request),
    /// Not a whole head yet.
    Partial,
    /// A request for hyper.
    Other,
}

impl Conn<'_> {
    /// Serves the connection, whose first bytes were `first`.
    async fn run(mut self, first: Parsed) -> Ended {
        // One timer for the connection. Each head's deadline is later than
        // the last one's: the timer is not moved for each (a change in the
        // runtime's timer wheel), it is moved on when it fires early.
        let mut deadline = Instant::now() + self.limits.header_read_timeout;
        let mut timer = std::pin::pin!(tokio::time::sleep_until(deadline));
        let mut first = Some(first);
        loop {
            let mut timed = false;
            let request = loop {
                let parsed = match first.take() {
                    Some(parsed) => parsed,
                    None => parse(self.buf.unread(), self.shared, self.limits.max_headers),
                };
                match parsed {
                    Parsed::Request(r) => break r,
                    Parsed::Other => return self.hand_over(),
                    Parsed::Partial => {}
                }
                if self.buf.unread().len() >= self.limits.max_head {
                    // hyper answers a head over its buffer.
                    return self.hand_over();
                }
                if !timed {
                    timed = true;
                    deadline = Instant::now() + self.limits.header_read_timeout;
                }
                self.state.idle.store(self.buf.unread().is_empty(), Relaxed);
                if self.state.closing.load(Relaxed) && self.state.idle.load(Relaxed) {
                    return Ended::Closed;
                }
                let read = tokio::select! {
                    biased;
                    read = self.buf.fill(self.stream, self.limits.max_head) => read,
                    () = &mut timer => {
                        if Instant::now() < deadline {
                            timer.as_mut().reset(deadline);
                            continue;
                        }
                        tracing::trace!("no request head in time");
                        return Ended::Closed;
                    }
                };
                self.state.idle.store(false, Relaxed);
                if !matches!(read, Ok(n) if n > 0) {
                    return Ended::Closed;
                }
            };
            let Request {
                head,
                len,
                content_length,
                close,
                websocket,
            } = request;
            self.buf.consume(len);
            // The body: whole when it came with the head (as a polling
            // client's small packets do), else read by `handle` as it reads
            // hyper's, after the checks it makes before (no body is read
            // for a session that is not live, nor for a second POST).
            let read = AtomicBool::new(false);
            let body = match self.buf.unread().len() >= content_length {
                true => {
                    let body = Bytes::copy_from_slice(&self.buf.unread()[..content_length]);
                    self.buf.consume(content_length);
                    read.store(true, Relaxed);
                    PolledBody::Whole(body)
                }
                false => {
                    let came = self.buf.unread().to_vec();
                    self.buf.consume(came.len());
                    PolledBody::Rest {
                        stream: self.stream,
                        came,
                        len: content_length,
                        read: &read,
                    }
                }
            };
            // While a body is still to come, the client's next bytes are
            // it: the connection is watched for the client's close only
            // with the body read.
            let watch = read.load(Relaxed);
            match websocket {
                true => tracing::trace!(len, "websocket upgrade"),
                false => tracing::trace!(len, content_length, "polling request"),
            }
            let mut answer = std::pin::pin!(service::handle(
                self.shared.clone(),
                head,
                body,
                Some(self.remote)
            ));
            let res = loop {
                tokio::select! {
                    biased;
                    res = &mut answer => break res,
                    gone = self.buf.watch(self.stream, self.limits.max_head), if watch => if gone {
                        // Dropping the answer tells the session, as hyper
                        // does when the client goes away.
                        tracing::trace!("the client went away before its answer");
                        return Ended::Closed;
                    }
                }
            };
            if let Reply::Upgrade(upgrade) = res {
                // The client's first frames may have come with the request.
                return match self.switch(&upgrade).await {
                    Ok(()) => Ended::Upgraded(upgrade, Bytes::copy_from_slice(self.buf.unread())),
                    Err(_) => Ended::Closed,
                };
            }
            // A body not read whole (the request was refused before, or
            // the body came too slowly) leaves the connection where no
            // request starts.
            let close = close || !read.load(Relaxed) || self.state.closing.load(Relaxed);
            if self.answer(res, close).await.is_err() || close {
                return Ended::Closed;
            }
        }
    }

    /// Writes `reply`, with `Connection: close` when `close`.
    async fn answer(&mut self, reply: Reply, close: bool) -> io::Result<()> {
        self.out.clear();
        let plain = reply.is_plain(self.shared);
        let body = match reply {
            Reply::Session { response, .. } if plain => {
                let status =
                    StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_REQUEST);
                self.out.reserve(answer_room(response.body.len()));
                if status == StatusCode::OK && response.content_type == ContentType::Text {
                    self.out.extend_from_slice(OK_TEXT);
                } else {
                    session_head(&mut self.out, status, response.content_type);
                }
                head_end(&mut self.out, status, response.body.len(), close);
                response.body
            }
            reply => {
                let (parts, mut body) = reply.into_http(self.shared).into_parts();
                let body = body_bytes(&mut body);
                self.out.reserve(answer_room(body.len()));
                status_line(&mut self.out, parts.status);
                for (name, value) in &parts.headers {
                    header(&mut self.out, name.as_str(), value.as_bytes());
                }
                head_end(&mut self.out, parts.status, body.len(), close);
                body
            }
        };
        if body.len() <= COPY_BODY {
            self.out.extend_from_slice(&body);
            write_all(self.stream, &mut [IoSlice::new(&self.out)]).await
        } else {
            write_all(
                self.stream,
                &mut [IoSlice::new(&self.out), IoSlice::new(&body)],
            )
            .await
        }
    }

    /// Writes the `101` answer of `upgrade`.
    async fn switch(&mut self, upgrade: &Upgrade) -> io::Result<()> {
        self.out.clear();
        // Room for the head at once: the accept key's and the date's lines,
        // and the names of the others, take under 192 bytes.
        let extensions = upgrade.extensions.as_ref().map_or(0, String::len);
        let cookie = upgrade.cookie.as_ref().map_or(0, http::HeaderValue::len);
        self.out
            .reserve(SWITCHING.len() + 192 + extensions + cookie);
        self.out.extend_from_slice(SWITCHING);
        header(
            &mut self.out,
            "sec-websocket-accept",
            upgrade.accept.as_bytes(),
        );
        if let Some(extensions) = &upgrade.extensions {
            header(
                &mut self.out,
                "sec-websocket-extensions",
                extensions.as_bytes(),
            );
        }
        if let Some(cookie) = &upgrade.cookie {
            header(&mut self.out, "set-cookie", cookie.as_bytes());
        }
        self.out.extend_from_slice(b"date: ");
        DATE.with(|date| self.out.extend_from_slice(&date.now()));
        self.out.extend_from_slice(b"\r\n\r\n");
        write_all(self.stream, &mut [IoSlice::new(&self.out)]).await
    }

    /// Hands the connection to hyper with what was read and not served.
    fn hand_over(self) -> Ended {
        if self.state.closing.load(Relaxed) {
            return Ended::Closed;
        }
        tracing::trace!("the connection goes to hyper");
        Ended::HandOver(Bytes::copy_from_slice(self.buf.unread()))
    }
}

/// A polling request's body.
enum PolledBody<'a> {
    /// It came whole with its head.
    Whole(Bytes),
    /// What of its `len` bytes came with the head; the rest is read from
    /// `stream` when `handle` reads it (room made as it comes, so that a
    /// length announced holds no memory of its own), and `read` set once
    /// it is all read.
    Rest {
        stream: &'a TcpStream,
        came: Vec<u8>,
        len: usize,
        read: &'a AtomicBool,
    },
}

impl service::RequestBody for PolledBody<'_> {
    async fn read_whole(self, _max: usize) -> Result<Option<Bytes>, service::BoxError> {
        // Its length is at most `max_payload` (a longer one goes to hyper).
        match self {
            PolledBody::Whole(body) => Ok(Some(body)),
            PolledBody::Rest {
                stream,
                came: mut body,
                len,
                read,
            } => {
                while body.len() < len {
                    if body.len() == body.capacity() {
                        let grown = (body.capacity() * 2).max(READ_SIZE).min(len);
                        body.reserve_exact(grown - body.len());
                    }
                    let room = (body.capacity() - body.len()).min(len - body.len());
                    if read_more(stream, &mut body, room).await? == 0 {
                        return Err("the connection closed within the body".into());
                    }
                }
                read.store(true, Relaxed);
                Ok(Some(Bytes::from(body)))
            }
        }
    }
}

/// Reads the request head at the start of `bytes`.
fn parse(bytes: &[u8], shared: &Shared, max_headers: usize) -> Parsed {
    if bytes.is_empty() {
        return Parsed::Partial;
    }
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len =
        match req.parse_with_uninit_headers(bytes, &mut headers[..max_headers.min(MAX_HEADERS)]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            Err(_) => return Parsed::Other,
        };
    let (Some(method_name), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Parsed::Other;
    };
    let method = match method_name {
        "GET" => Method::Get,
        "POST" => Method::Post,
        _ => return Parsed::Other,
    };
    let path = socketio_proto::http::path_of(target);
    if !shared.config.matches_path(path)
        || (shared.options.client_files.is_some()
            && client::file_name(path, &shared.config.path).is_some())
    {
        return Parsed::Other;
    }
    let mut content_length = None;
    let mut close = false;
    let mut content_type = None;
    let mut origin = None;
    let mut connection_upgrade = false;
    let mut upgrade_websocket = false;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            match (content_length, decimal(h.value)) {
                (None, Some(n)) => content_length = Some(n),
                _ => return Parsed::Other,
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    connection_upgrade = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            if content_type.is_none() {
                content_type = Some(header_str(h.value));
            }
        } else if name.eq_ignore_ascii_case("origin") {
            origin.get_or_insert(h.value);
        } else if name.eq_ignore_ascii_case("upgrade") {
            // Another protocol (`h2c`) is hyper's to refuse.
            for token in h.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"websocket") {
                    upgrade_websocket = true;
                } else if !token.is_empty() {
                    return Parsed::Other;
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
        {
            return Parsed::Other;
        }
    }
    // `Connection: upgrade` with nothing to upgrade to is hyper's.
    if connection_upgrade && !upgrade_websocket {
        return Parsed::Other;
    }
    let websocket = upgrade_websocket;
    let content_length = content_length.unwrap_or(0);
    if (method == Method::Get && content_length > 0) || content_length > shared.config.max_payload {
        return Parsed::Other;
    }
    let accept = match method {
        Method::Get if !websocket => Coding::negotiate_values(
            req.headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("accept-encoding"))
                .map(|h| h.value),
        ),
        _ => None,
    };
    let polling = match websocket {
        true => None,
        false => Some(Head::polling(
            method,
            target,
            content_type.flatten(),
            origin,
            accept,
        )),
    };
    let head = match polling {
        Some(Ok(head)) => head,
        // A long-polling handshake that no hook reads the head of: the
        // session's copy of the head, made from it as read.
        Some(Err(request))
            if method == Method::Get
                && Head::handshake_without_parts(shared)
                && origin_form_target(target) =>
        {
            let copied = RequestHead::from_raw(target, req.headers);
            match Head::handshake(request, origin, accept, copied) {
                Some(head) => head,
                None => return Parsed::Other,
            }
        }
        // Another handshake or an upgrade: its head as `http` parts.
        _ => match parts(&bytes[..len], method_name, target, req.headers) {
            Some(parts) => Head::new(parts).upgraded_here(),
            None => return Parsed::Other,
        },
    };
    Parsed::Request(Request {
        head,
        len,
        content_length,
        close,
        websocket,
    })
}

/// The head as `http` parts, or `None` when `http` refuses it: the URI
/// and the header values are slices of one copy of `head`, where
/// `target` and the headers' values are.
fn parts(
    head: &[u8],
    method: &str,
    target: &str,
    headers: &[httparse::Header<'_>],
) -> Option<http::request::Parts> {
    let copy = Bytes::copy_from_slice(head);
    let slice = |part: &[u8]| {
        let start = (part.as_ptr() as usize).checked_sub(head.as_ptr() as usize)?;
        let end = start
            .checked_add(part.len())
            .filter(|end| *end <= head.len())?;
        Some(copy.slice(start..end))
    };
    let uri = http::Uri::from_maybe_shared(slice(target.as_bytes())?).ok()?;
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .version(http::Version::HTTP_11);
    let map = request.headers_mut()?;
    map.reserve(headers.len());
    for h in headers {
        let name = http::HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = http::HeaderValue::from_maybe_shared(slice(h.value)?).ok()?;
        map.append(name, value);
    }
    Some(request.body(()).ok()?.into_parts().0)
}

/// Whether `http` takes `target` as it is for an origin-form URI (a path
/// and a query), as [`parts`] makes it: the bytes its parser accepts in the
/// path, and in the query, with no fragment (which it would cut off) and
/// no byte beyond ASCII. Any other target is made into `http` parts,
/// refused there as before.
fn origin_form_target(target: &str) -> bool {
    let bytes = target.as_bytes();
    // `http`'s longest URI.
    if bytes.first() != Some(&b'/') || bytes.len() >= usize::from(u16::MAX) {
        return false;
    }
    match bytes
        .iter()
        .position(|&b| TARGET[usize::from(b)] & IN_PATH == 0)
    {
        None => true,
        Some(at) => {
            bytes[at] == b'?'
                && bytes[at + 1..]
                    .iter()
                    .all(|&b| TARGET[usize::from(b)] & IN_QUERY != 0)
        }
    }
}

/// A byte `http` takes as it is in a URI's path ([`origin_form_target`]).
const IN_PATH: u8 = 1;
/// A byte `http` takes as it is in a URI's query.
const IN_QUERY: u8 = 2;

/// Per byte, where `http` takes it as it is: [`IN_PATH`], [`IN_QUERY`].
const TARGET: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        if matches!(byte, 0x21 | 0x24..=0x3B | 0x3D | 0x40..=0x5F | 0x61..=0x7A | 0x7C | 0x7E)
            || matches!(byte, b'"' | b'{' | b'}')
        {
            table[b] |= IN_PATH;
        }
        if matches!(byte, 0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x7E) {
            table[b] |= IN_QUERY;
        }
        b += 1;
    }
    table
};

/// A `Content-Length` value: digits only, and no more than a `usize`.
fn decimal(value: &[u8]) -> Option<usize> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0usize, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(usize::from(digit))
    })
}

/// The room an answer with a body of `len` bytes takes in the connection's
/// output buffer, reserved at once: its head (a session's takes under 192
/// bytes; one with CORS headers or a cookie may take more) and its body
/// when it is copied behind.
fn answer_room(len: usize) -> usize {
    let copied = if len <= COPY_BODY { len } else { 0 };
    256 + copied
}

/// The bytes of a body made whole (every answer of [`handle`] is).
fn body_bytes(body: &mut Full<Bytes>) -> Bytes {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(body).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

/// The start of a session's answer with packets as text, the most
/// common answer ([`session_head`]'s for it).
const OK_TEXT: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=UTF-8\r\ncache-control: no-store\r\n";

/// The start of a WebSocket upgrade's answer.
const SWITCHING: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n";

/// Writes the start of a session's answer: the status line and the
/// headers of `to_http`'s response, but the length and the date.
fn session_head(out: &mut Vec<u8>, status: StatusCode, content_type: ContentType) {
    status_line(out, status);
    header(out, "content-type", content_type.as_str().as_bytes());
    header(out, "cache-control", b"no-store");
}

/// Writes a response's status line.
fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes a header.
fn header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes the end of a response head for a body of `len` bytes: its
/// length, the close when `close`, the date, and the empty line.
fn head_end(out: &mut Vec<u8>, status: StatusCode, len: usize, close: bool) {
    if status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED {
        out.extend_from_slice(b"content-length: ");
        write_decimal(out, len);
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"date: ");
    DATE.with(|date| out.extend_from_slice(&date.now()));
    out.extend_from_slice(b"\r\n\r\n");
}

/// Writes `n` in decimal.
fn write_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

thread_local! {
    /// The `Date` of the answers, made once per second per thread.
    static DATE: DateCache = const { DateCache { second: Cell::new(u64::MAX), text: Cell::new([0; 29]) } };
}

/// The last second's `Date` value.
struct DateCache {
    second: Cell<u64>,
    text: Cell<[u8; 29]>,
}

impl DateCache {
    /// The `Date` value of now.
    fn now(&self) -> [u8; 29] {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second != self.second.get() {
            self.second.set(second);
            self.text.set(http_date(second));
        }
        self.text.get()
    }
}

/// The HTTP date of `secs` after the Unix epoch (IMF-fixdate, RFC 9110
/// 5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(secs: u64) -> [u8; 29] {
    let at = Civil::from_unix(secs);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    let two = |out: &mut [u8; 29], place: usize, n: u64| {
        out[place] = b'0' + (n / 10 % 10) as u8;
        out[place + 1] = b'0' + (n % 10) as u8;
    };
    out[..3].copy_from_slice(at.weekday.as_bytes());
    two(&mut out, 5, at.day);
    out[8..11].copy_from_slice(at.month_name().as_bytes());
    two(&mut out, 12, at.year / 100);
    two(&mut out, 14, at.year % 100);
    two(&mut out, 17, at.hour);
    two(&mut out, 20, at.minute);
    two(&mut out, 23, at.second);
    out
}

/// Writes all of `slices` to `stream`.
async fn write_all(stream: &TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match stream.try_write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads up to `n` bytes of `stream` into the spare room of `bytes` (made
/// by the caller; none of it is zeroed first): 0 at the end of the stream.
/// The readiness is asked first: after a read that found less than it
/// asked for, none is left (`read_clearing`), and a read then would only be
/// told so.
async fn read_more(stream: &TcpStream, bytes: &mut Vec<u8>, n: usize) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        let read = read_clearing_with(stream, n, || {
            stream.try_read_buf(&mut (&mut *bytes).limit(n))
        });
        match read {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            read => return read,
        }
    }
}

/// The bytes read and not served yet: `bytes[start..]`.
struct ReadBuf {
    bytes: Vec<u8>,
    start: usize,
}

impl ReadBuf {
    /// The buffer of `first`.
    fn new(first: &[u8]) -> ReadBuf {
        let mut bytes = Vec::with_capacity(READ_SIZE.max(first.len()));
        bytes.extend_from_slice(first);
        ReadBuf { bytes, start: 0 }
    }

    fn unread(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        }
    }

    /// How many bytes a read may add, for up to `max` unread bytes (none
    /// when `max` are unread): when the buffer is full, the unread bytes
    /// move to its start, or it doubles, up to `max`.
    fn room(&mut self, max: usize) -> usize {
        let unread = self.bytes.len() - self.start;
        if unread >= max {
            return 0;
        }
        if self.bytes.len() == self.bytes.capacity() {
            if self.start > 0 {
                self.bytes.drain(..self.start);
                self.start = 0;
            } else {
                let grown = (self.bytes.capacity() * 2).max(READ_SIZE).min(max);
                self.bytes.reserve_exact(grown - self.bytes.len());
            }
        }
        (self.bytes.capacity() - self.bytes.len()).min(self.start + max - self.bytes.len())
    }

    /// Reads more, up to `max` unread bytes: 0 at the end of the stream
    /// (or with no room).
    async fn fill(&mut self, stream: &TcpStream, max: usize) -> io::Result<usize> {
        match self.room(max) {
            0 => Ok(0),
            room => read_more(stream, &mut self.bytes, room).await,
        }
    }

    /// Reads what the client sends while its request is answered (the
    /// next one), up to `max` unread bytes: true once the client is gone.
    async fn watch(&mut self, stream: &TcpStream, max: usize) -> bool {
        if self.bytes.len() - self.start >= max {
            return std::future::pending().await;
        }
        matches!(self.fill(stream, max).await, Ok(0) | Err(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_form_target_is_what_http_takes_as_it_is() {
        for b in 0x20..0x7f_u8 {
            let c = char::from(b);
            for target in [
                format!("/socket.io/{c}x?EIO=4"),
                format!("/socket.io/?EIO=4&x={c}y"),
                format!("/socket.io/?EIO=4{c}"),
            ] {
                let kept_whole = http::Uri::try_from(target.as_str())
                    .is_ok_and(|uri| uri.path_and_query().map(|p| p.as_str()) == Some(&*target));
                assert_eq!(origin_form_target(&target), kept_whole, "{target:?}");
            }
        }
        assert!(!origin_form_target("*"));
        assert!(!origin_form_target("http://example.com/socket.io/"));
        assert!(origin_form_target("/"));
    }

    #[test]
    fn http_dates_are_imf_fixdates() {
        assert_eq!(&http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        // A leap day, and the last second of a century's leap year.
        assert_eq!(&http_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&http_date(978_307_199), b"Sun, 31 Dec 2000 23:59:59 GMT");
        assert_eq!(&http_date(1_796_256_000), b"Thu, 03 Dec 2026 00:00:00 GMT");
    }

    #[test]
    fn the_common_answer_starts_as_any_other() {
        let mut out = Vec::new();
        session_head(&mut out, StatusCode::OK, ContentType::Text);
        assert_eq!(out, OK_TEXT);
    }

    #[test]
    fn content_lengths_are_digits_only() {
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b"1234"), Some(1234));
        assert_eq!(decimal(b""), None);
        assert_eq!(decimal(b"+1"), None);
        assert_eq!(decimal(b"1 "), None);
        assert_eq!(decimal(b"0x10"), None);
        assert_eq!(decimal(b"99999999999999999999999"), None);
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 1234, usize::MAX] {
            let mut out = Vec::new();
            write_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn the_read_buffer_moves_and_grows_within_its_bound() {
        let mut buf = ReadBuf::new(b"abc");
        buf.consume(1);
        assert_eq!(buf.unread(), b"bc");
        assert_eq!(buf.room(10), 8);
        assert_eq!(buf.room(100_000), READ_SIZE - 3);
        // Full: the unread bytes move to the start.
        buf.bytes.resize(READ_SIZE, b'x');
        assert_eq!(buf.room(100_000), 1);
        assert_eq!(buf.unread().len(), READ_SIZE - 1);
        assert!(buf.unread().starts_with(b"bcx"));
        // Full from the start: it doubles, within the bound.
        buf.bytes.push(b'y');
        assert_eq!(buf.room(READ_SIZE), 0);
        assert_eq!(buf.room(READ_SIZE + 10), 10);
        assert_eq!(buf.room(100_000), 10);
        buf.bytes.resize(READ_SIZE + 10, b'z');
        assert_eq!(buf.room(100_000), 2 * READ_SIZE + 20 - (READ_SIZE + 10));
        buf.consume(READ_SIZE + 10);
        assert!(buf.unread().is_empty());
    }
}
