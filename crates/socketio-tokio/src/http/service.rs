//! The HTTP side: a tower [`Service`] and [`Layer`] that serve Engine.IO
//! requests (polling and WebSocket upgrades) and pass the others on.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use socketio_proto::{
    ConnectionHandle, HttpError, Method, Request, RequestId, Response, Route, Str,
};
use tower_layer::Layer;
use tower_service::Service;
use websocket_frame::deflate::{self, Agreed, DeflateConfig};

use crate::api::link::Link;
use crate::api::server::{Shared, SocketIo};
use crate::api::socket::{HttpInfo, RemoteAddr};
use crate::clock;
use crate::config::Cors;
use crate::conn::driver::{Driver, DriverCell};
use crate::http::compress::Coding;
use crate::mailbox::Cmd;
use crate::request_head::RequestHead;
use crate::stats::HandshakeRefusal;
use crate::ws::{TcpIo, WsConn, WsIo, WsLimits};

/// A boxed error, as bodies report them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A tower layer serving Socket.IO at the configured path, in front of an
/// inner service that gets every other request. From [`SocketIo::layer`].
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_layer::Layer;
/// let io = socketio_tokio::SocketIo::new()?;
/// let service = io.layer().layer(io.service());
/// # let _ = service;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SocketIoLayer {
    io: SocketIo,
}

impl SocketIoLayer {
    pub(crate) fn new(io: SocketIo) -> Self {
        SocketIoLayer { io }
    }
}

impl<S> Layer<S> for SocketIoLayer {
    type Service = SocketIoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SocketIoService::new(self.io.clone(), inner)
    }
}

/// A tower service serving Socket.IO at the configured path; other requests
/// go to the inner service `S`. From [`SocketIo::service`] or [`SocketIoLayer`].
#[derive(Debug, Clone)]
pub struct SocketIoService<S> {
    io: SocketIo,
    inner: S,
    /// The client's address, when the service serves one connection.
    remote: Option<SocketAddr>,
}

impl<S> SocketIoService<S> {
    /// Serves `io` in front of `inner`.
    pub fn new(io: SocketIo, inner: S) -> Self {
        SocketIoService {
            io,
            inner,
            remote: None,
        }
    }

    /// The service of one connection from `remote`: its handshakes get a
    /// [`RemoteAddr`] in their extensions (only they read it, so the other
    /// requests do without the allocations of an extension).
    pub(crate) fn with_remote(mut self, remote: SocketAddr) -> Self {
        self.remote = Some(remote);
        self
    }
}

/// The inner service of [`SocketIo::service`]: 404 for everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl<B> Service<http::Request<B>> for NotFound {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: http::Request<B>) -> Self::Future {
        let mut res = http::Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::NOT_FOUND;
        std::future::ready(Ok(res))
    }
}

pin_project! {
    /// The body of a response: ours, or the inner service's.
    pub struct SocketIoBody<B> {
        #[pin]
        inner: BodyInner<B>,
    }
}

pin_project! {
    #[project = BodyProj]
    enum BodyInner<B> {
        Ours { #[pin] body: Full<Bytes> },
        Inner { #[pin] body: B },
    }
}

impl<B> SocketIoBody<B> {
    fn ours(body: Full<Bytes>) -> Self {
        SocketIoBody {
            inner: BodyInner::Ours { body },
        }
    }

    fn inner(body: B) -> Self {
        SocketIoBody {
            inner: BodyInner::Inner { body },
        }
    }
}

impl<B> Body for SocketIoBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().inner.project() {
            BodyProj::Ours { body } => body.poll_frame(cx).map_err(|e| match e {}),
            BodyProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            BodyInner::Ours { body } => body.is_end_stream(),
            BodyInner::Inner { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            BodyInner::Ours { body } => body.size_hint(),
            BodyInner::Inner { body } => body.size_hint(),
        }
    }
}

pin_project! {
    /// The future of [`SocketIoService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: FutInner<F>,
    }
}

pin_project! {
    #[project = FutProj]
    enum FutInner<F> {
        Ours { fut: BoxFuture<'static, http::Response<Full<Bytes>>> },
        Inner { #[pin] fut: F },
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<SocketIoBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            FutProj::Ours { fut } => fut.as_mut().poll(cx).map(|r| Ok(r.map(SocketIoBody::ours))),
            FutProj::Inner { fut } => fut
                .poll(cx)
                .map(|r| r.map(|res| res.map(SocketIoBody::inner))),
        }
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for SocketIoService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<SocketIoBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let shared = &self.io.shared;
        if let Some(files) = &shared.options.client_files
            && let Some(name) =
                crate::http::client::file_name(req.uri().path(), &shared.config.path)
        {
            let res = crate::http::client::serve(files, name, req.headers());
            let res = with_cors(
                res,
                shared.options.cors.as_ref(),
                req.headers().get(header::ORIGIN),
            );
            return ResponseFuture {
                inner: FutInner::Ours {
                    fut: Box::pin(std::future::ready(res)),
                },
            };
        }
        if self.io.shared.config.matches_path(req.uri().path()) {
            let shared = self.io.shared.clone();
            let (parts, body) = req.into_parts();
            let head = Head::new(parts);
            let remote = self.remote;
            ResponseFuture {
                inner: FutInner::Ours {
                    fut: Box::pin(async move {
                        let reply = handle(shared.clone(), head, body, remote).await;
                        reply.into_http(&shared)
                    }),
                },
            }
        } else {
            ResponseFuture {
                inner: FutInner::Inner {
                    fut: self.inner.call(req),
                },
            }
        }
    }
}

/// What [`handle`] reads of a request: the request as the protocol sees
/// it (its body still to read), its `Origin`, and the HTTP head itself when
/// more of it is needed (a handshake, an upgrade, a preflight).
pub(crate) struct Head {
    /// Boxed as the session's command takes it, and so that the request's
    /// future stays small.
    request: Box<Request>,
    /// Whether the query names a session (`sid`).
    has_sid: bool,
    origin: Option<HeaderValue>,
    /// The coding a polling GET's answer may be compressed with.
    accept: Option<Coding>,
    /// hyper's URI and header values are slices of the connection's read
    /// buffer: while a request holds them, hyper's next read (it reads on,
    /// watching for the client's close) takes a new buffer. A polling
    /// request of a session lets them go before that.
    parts: Option<Box<http::request::Parts>>,
    /// A handshake's head copied as it was read, for a server with no hook
    /// that reads the head as `http` parts ([`Head::handshake`]). Boxed:
    /// inline it made every head, most of which are a session's polling
    /// requests, too large to move without a call to `memcpy`.
    copied: Option<Box<RequestHead>>,
    /// A WebSocket upgrade is made by the server that read the head
    /// ([`Reply::Upgrade`]), not by hyper.
    upgrade_here: bool,
}

impl Head {
    /// The head of a request as hyper read it.
    pub(crate) fn new(parts: http::request::Parts) -> Head {
        let method = Method::from_name(parts.method.as_str());
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = Box::new(Request::new(method, path_and_query, Bytes::new()));
        request.websocket = is_websocket(&parts.headers);
        request.content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let has_sid = request.names_session();
        let keep = method == Method::Options || request.websocket || !has_sid;
        let origin = parts.headers.get(header::ORIGIN).map(|v| match keep {
            true => v.clone(),
            // A copy of its own, not a slice of hyper's read buffer.
            false => HeaderValue::from_bytes(v.as_bytes()).unwrap_or(v.clone()),
        });
        let accept = match method == Method::Get && !request.websocket {
            true => Coding::negotiate(&parts.headers),
            false => None,
        };
        Head {
            request,
            has_sid,
            origin,
            accept,
            parts: keep.then(|| Box::new(parts)),
            copied: None,
            upgrade_here: false,
        }
    }

    /// Whether a handshake's head may go without `http` parts: no hook
    /// reads them (`allow_request`, `generate_id`, the extensions kept).
    pub(crate) fn handshake_without_parts(shared: &Shared) -> bool {
        shared.options.allow_request.is_none()
            && shared.options.generate_id.is_none()
            && shared.options.keep_extensions.is_empty()
    }

    /// The head of a long-polling handshake (a `GET` that names no
    /// session), for a server where [`Head::handshake_without_parts`]:
    /// what the new session keeps of it is copied from the head as read,
    /// with no `http` parts made.
    /// `request` is the `GET` as [`Head::polling`] gave it back.
    pub(crate) fn handshake(
        request: Box<Request>,
        origin: Option<&[u8]>,
        accept: Option<Coding>,
        copied: RequestHead,
    ) -> Option<Head> {
        let origin = origin_value(origin)?;
        Some(Head {
            request,
            has_sid: false,
            origin,
            accept,
            parts: None,
            copied: Some(Box::new(copied)),
            upgrade_here: false,
        })
    }

    /// The same head, whose WebSocket upgrade the server that read it
    /// makes: it takes the connection from the answer ([`Reply::Upgrade`]).
    pub(crate) fn upgraded_here(mut self) -> Head {
        self.upgrade_here = true;
        self
    }

    /// The head of a session's polling request (its query names a
    /// `sid`), from what of it the session needs; else, when the query
    /// names no session or `origin` is no header value, the request made,
    /// for a handshake's head ([`Head::handshake`]).
    pub(crate) fn polling(
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        origin: Option<&[u8]>,
        accept: Option<Coding>,
    ) -> Result<Head, Box<Request>> {
        let mut request = Box::new(Request::new(method, path_and_query, Bytes::new()));
        if !request.names_session() {
            return Err(request);
        }
        let Some(origin) = origin_value(origin) else {
            return Err(request);
        };
        request.content_type = content_type.map(str::to_owned);
        Ok(Head {
            request,
            has_sid: true,
            origin,
            accept,
            parts: None,
            copied: None,
            upgrade_here: false,
        })
    }
}

/// The `Origin` of a head read as bytes: `None` when it is no header
/// value, `Some(None)` when there is none.
fn origin_value(origin: Option<&[u8]>) -> Option<Option<HeaderValue>> {
    match origin {
        Some(origin) => HeaderValue::from_bytes(origin).ok().map(Some),
        None => Some(None),
    }
}

/// Answers one Engine.IO request.
pub(crate) async fn handle<B: RequestBody>(
    shared: Arc<Shared>,
    head: Head,
    body: B,
    remote: Option<SocketAddr>,
) -> Reply {
    let Head {
        mut request,
        has_sid,
        origin,
        accept,
        mut parts,
        copied,
        upgrade_here,
    } = head;
    let compress = |r: Response| compressed(r, accept, shared.options.http_compression);
    let cors = shared.options.cors.as_ref();
    if request.method == Method::Options
        && let Some(cors) = cors
        && let Some(parts) = &parts
    {
        let mut res = http::Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::NO_CONTENT;
        cors.apply_preflight(&parts.headers, res.headers_mut());
        return Reply::Http(res);
    }
    let websocket = request.websocket;
    if !shared.options.admission.origin_allowed(origin.as_ref()) {
        tracing::debug!(?origin, "origin not allowed");
        if !has_sid {
            shared.stats.refused(HandshakeRefusal::Origin);
        }
        return Reply::Http(refuse(websocket, cors, origin.as_ref()));
    }
    // A session's POST keeps its body until the session is found: a POST
    // that names none that is live is refused (by the routing below)
    // before its body is read, as the reference refuses it, so that a body
    // no session waits for holds no memory.
    let mut body = match request.method == Method::Post && has_sid && !websocket {
        true => Some(body),
        false => None,
    };
    let handshake = !has_sid;
    let mut slot = None;
    if handshake {
        // For the hooks that read the head, and the extensions kept with
        // the connection; the rest of this function takes `remote` itself.
        let read_by_hooks = !Head::handshake_without_parts(&shared);
        if let (Some(remote), Some(parts), true) = (remote, parts.as_mut(), read_by_hooks) {
            parts.extensions.insert(RemoteAddr(remote));
        }
        if shared.shutting_down.load(Ordering::Relaxed) {
            shared.stats.refused(HandshakeRefusal::ShuttingDown);
            return Reply::Http(with_cors(
                plain(StatusCode::SERVICE_UNAVAILABLE),
                cors,
                origin.as_ref(),
            ));
        }
        if let Some(allow) = &shared.options.allow_request {
            // A hook that panics refuses the handshake; the server goes on.
            let verdict = match parts.as_deref() {
                Some(parts) => {
                    let check = std::panic::catch_unwind(AssertUnwindSafe(|| allow(parts)));
                    match check {
                        Ok(check) => AssertUnwindSafe(check).catch_unwind().await,
                        Err(panic) => Err(panic),
                    }
                    .unwrap_or_else(|_| {
                        tracing::error!("the allow_request hook panicked");
                        Err(String::new())
                    })
                }
                None => Err(String::new()),
            };
            if let Err(message) = verdict {
                tracing::debug!(message, "handshake refused by allow_request");
                shared.stats.refused(HandshakeRefusal::AllowRequest);
                return Reply::Http(refuse_with(websocket, cors, origin.as_ref(), &message));
            }
        }
        let ip = remote
            .or_else(|| parts.as_deref().and_then(remote_addr))
            .map(|a| a.ip());
        slot = shared.sessions.admit(&shared.options.admission, ip);
        if slot.is_none() {
            shared.stats.refused(HandshakeRefusal::Capacity);
            return Reply::Http(refuse(websocket, cors, origin.as_ref()));
        }
    }
    let ws_key = parts
        .as_ref()
        .and_then(|p| p.headers.get(header::SEC_WEBSOCKET_KEY).cloned());
    let mut deflate = None;
    let on_upgrade = if websocket {
        let Some(parts) = parts.as_mut() else {
            return Reply::Http(plain(StatusCode::BAD_REQUEST));
        };
        if let Err(refusal) = check_handshake(parts) {
            tracing::debug!(reason = refusal.reason, "websocket handshake refused");
            shared.stats.refused(HandshakeRefusal::WebSocket);
            return Reply::Http(refusal.response());
        }
        if let Some(config) = &shared.options.per_message_deflate {
            match negotiate_deflate(config, &parts.headers) {
                Ok(agreed) => deflate = agreed,
                Err(refusal) => {
                    tracing::debug!(reason = refusal.reason, "websocket handshake refused");
                    shared.stats.refused(HandshakeRefusal::WebSocket);
                    return Reply::Http(refusal.response());
                }
            }
        }
        match parts.extensions.remove::<hyper::upgrade::OnUpgrade>() {
            Some(u) => Some(Upgrading::Hyper(u)),
            None if upgrade_here => Some(Upgrading::Here),
            None => return Reply::Http(plain(StatusCode::BAD_REQUEST)),
        }
    } else {
        None
    };
    let given_sid = match (&shared.options.generate_id, parts.as_deref()) {
        (Some(generate), Some(parts)) if handshake => {
            match std::panic::catch_unwind(AssertUnwindSafe(|| generate(parts))) {
                Ok(sid) => Some(Str::from(sid)),
                Err(_) => {
                    // Refused as the reference refuses a `generateId` that
                    // throws.
                    tracing::error!("the generate_id hook panicked");
                    if websocket {
                        return Reply::Http(plain(StatusCode::BAD_REQUEST));
                    }
                    let refused = to_http(Response::error(HttpError::BadRequest));
                    return Reply::Http(with_cors(refused, cors, origin.as_ref()));
                }
            }
        }
        _ => None,
    };
    let id = RequestId(shared.next_request.fetch_add(1, Ordering::Relaxed));
    let now = clock::now();
    // A live session's request is routed under the read lock: many go on
    // at once. Only a handshake changes the endpoint.
    // A handshake (no `sid`) goes to the write lock at once: routing it
    // here would find no session, and walk its query for nothing.
    let existing = if handshake {
        None
    } else {
        let state = shared.read();
        match state.route_existing(&request) {
            Some(Route::Respond(r)) => Some(Routed::Respond(r)),
            Some(Route::Existing(handle)) => {
                Some(Routed::Existing(state.connection(handle).cloned()))
            }
            Some(Route::New(..)) | None => None,
        }
    };
    let routed = if let Some(routed) = existing {
        routed
    } else {
        let mut state = shared.lock();
        let route = match given_sid {
            Some(sid) => state
                .handle_request_with_id(now, id, &request, sid.clone())
                .unwrap_or_else(|e| {
                    tracing::error!(%sid, error = %e, "generate_id gave an id that cannot be used");
                    Route::Respond(Response::error(HttpError::BadRequest))
                }),
            None => state.handle_request(now, id, &request),
        };
        match route {
            Route::Respond(r) => Routed::Respond(r),
            Route::New(handle, conn) => {
                // Attached under the same lock, so that a broadcast planned
                // right after finds the connection.
                let link = Link::new(conn);
                state.attach(handle, link.clone());
                Routed::New(handle, link)
            }
            Route::Existing(handle) => Routed::Existing(state.connection(handle).cloned()),
        }
    };
    let response = match routed {
        Routed::Respond(r) => {
            if handshake {
                shared.stats.refused(HandshakeRefusal::Protocol);
            }
            if websocket {
                return Reply::Http(plain(StatusCode::BAD_REQUEST));
            }
            to_http(r)
        }
        Routed::New(handle, link) => {
            shared.stats.opened(match websocket {
                true => socketio_proto::TransportKind::WebSocket,
                false => socketio_proto::TransportKind::Polling,
            });
            let remote_addr = remote.or_else(|| parts.as_deref().and_then(remote_addr));
            let http = Arc::new(HttpInfo {
                head: parts
                    .as_deref_mut()
                    .map(|p| {
                        let kept = kept_extensions(p, &shared.options.keep_extensions);
                        RequestHead::new(&p.uri, &p.headers).with_extensions(kept)
                    })
                    .or(copied.map(|copied| *copied))
                    .unwrap_or_else(|| RequestHead::new(&http::Uri::default(), &HeaderMap::new())),
                remote_addr,
                time: SystemTime::now(),
            });
            let (span, cookie) = {
                let core = link.lock();
                let sid = core.conn.sid();
                let span = tracing::info_span!("connection", sid = %sid);
                let transport = core.conn.transport();
                tracing::debug!(parent: &span, ?transport, "connection opened");
                let cookie = shared.options.cookie.as_ref().and_then(|c| c.header(sid));
                (span, cookie)
            };
            if let (Some(on_upgrade), Some(key)) = (on_upgrade, ws_key) {
                let mut driver =
                    Driver::new(shared.clone(), handle, link.clone(), http, None, Some(id));
                driver.slot = slot;
                DriverCell::spawn(driver, span);
                let ws = PendingWs::new(&shared, id, None, link, deflate);
                return ws.upgrade(on_upgrade, &key, cookie);
            }
            let mut driver =
                Driver::new(shared.clone(), handle, link.clone(), http, Some(id), None);
            driver.slot = slot;
            // The open packet is ready after the task's first step: take
            // it here rather than wait for the task.
            let answer = match DriverCell::spawn(driver, span).try_step_for(id) {
                Some(answer) => Ok(answer),
                None => link.claim(id).await,
            };
            match (answer, cookie) {
                // Without a cookie, as a session's answer: written with no
                // `HeaderMap` where no compression and no CORS apply.
                (Ok(response), None) => {
                    return Reply::Session {
                        response,
                        accept,
                        origin,
                    };
                }
                (Ok(r), cookie) => with_cookie(compress(r), cookie),
                (Err(_), _) => to_http(Response::error(HttpError::UnknownSid)),
            }
        }
        Routed::Existing(link) => {
            let Some(link) = link else {
                if websocket {
                    return Reply::Http(plain(StatusCode::BAD_REQUEST));
                }
                return Reply::Http(with_cors(
                    to_http(Response::error(HttpError::UnknownSid)),
                    cors,
                    origin.as_ref(),
                ));
            };
            if let (Some(on_upgrade), Some(key)) = (on_upgrade, ws_key) {
                let ws = PendingWs::new(&shared, id, Some(request), link, deflate);
                return ws.upgrade(on_upgrade, &key, None);
            }
            let _posting = match body.take() {
                Some(body) => {
                    let Some(posting) = link.start_post() else {
                        tracing::debug!("overlapping polling POSTs");
                        link.close(socketio_proto::DisconnectReason::TransportError);
                        return Reply::Http(with_cors(
                            to_http(Response::bad_request()),
                            cors,
                            origin.as_ref(),
                        ));
                    };
                    if let Err(res) = read_post(&shared, body, &mut request).await {
                        return Reply::Http(with_cors(res, cors, origin.as_ref()));
                    }
                    Some(posting)
                }
                None => None,
            };
            // Answered on this task when the session's task is not busy.
            match link.request(id, request).await {
                Ok(response) => {
                    return Reply::Session {
                        response,
                        accept,
                        origin,
                    };
                }
                Err(_) => to_http(Response::error(HttpError::UnknownSid)),
            }
        }
    };
    Reply::Http(with_cors(response, cors, origin.as_ref()))
}

/// The answer to an Engine.IO request.
pub(crate) enum Reply {
    /// An HTTP response.
    Http(http::Response<Full<Bytes>>),
    /// A session's answer to its polling request, still to be compressed
    /// (for a client that takes `accept`) and given its CORS headers (for
    /// `origin`).
    Session {
        response: Response,
        accept: Option<Coding>,
        origin: Option<HeaderValue>,
    },
    /// A WebSocket upgrade accepted, made by the server that read the
    /// request ([`Head::upgraded_here`]).
    Upgrade(Box<Upgrade>),
}

impl Reply {
    /// The HTTP response.
    pub(crate) fn into_http(self, shared: &Shared) -> http::Response<Full<Bytes>> {
        match self {
            Reply::Http(res) => res,
            Reply::Session {
                response,
                accept,
                origin,
            } => {
                let res = compressed(response, accept, shared.options.http_compression);
                with_cors(res, shared.options.cors.as_ref(), origin.as_ref())
            }
            // Only a server that takes the connection from the answer asks
            // for it; any other answers as when hyper has no upgrade to
            // give (the session is told the upgrade failed).
            Reply::Upgrade(_) => plain(StatusCode::BAD_REQUEST),
        }
    }

    /// Whether this is a session's answer that goes out as it is: no
    /// compression and no CORS headers to add.
    pub(crate) fn is_plain(&self, shared: &Shared) -> bool {
        let Reply::Session {
            response, accept, ..
        } = self
        else {
            return false;
        };
        let compress = match (accept, shared.options.http_compression) {
            (Some(_), Some(threshold)) => {
                response.status == 200 && response.body.len() >= threshold
            }
            _ => false,
        };
        !compress && shared.options.cors.is_none()
    }
}

/// Where the endpoint sent a request.
enum Routed {
    /// Answer it with this (an error).
    Respond(Response),
    /// A new session, with its link and its task's end of the channel.
    New(ConnectionHandle, Arc<Link>),
    /// An existing session: its link, unless it is gone.
    Existing(Option<Arc<Link>>),
}

/// A request's body as [`handle`] reads it: whole, when the request is
/// one it reads the body of.
pub(crate) trait RequestBody: Send {
    /// The body, read whole; `None` once it goes over `max` bytes.
    fn read_whole(self, max: usize)
    -> impl Future<Output = Result<Option<Bytes>, BoxError>> + Send;
}

impl<B> RequestBody for B
where
    B: Body + Send,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn read_whole(
        self,
        max: usize,
    ) -> impl Future<Output = Result<Option<Bytes>, BoxError>> + Send {
        read_body(self, max)
    }
}

/// A polling POST's body, read whole; `None` once it goes over `max` bytes.
async fn read_body<B>(body: B, max: usize) -> Result<Option<Bytes>, BoxError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut whole = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    let mut left = max;
    while let Some(frame) = body.frame().await {
        let Ok(mut data) = frame.map_err(Into::into)?.into_data() else {
            continue;
        };
        let n = data.remaining();
        if n > left {
            return Ok(None);
        }
        left -= n;
        let chunk = data.copy_to_bytes(n);
        match &mut joined {
            Some(buf) => buf.extend_from_slice(&chunk),
            None if whole.is_empty() => whole = chunk,
            None => {
                let mut buf = BytesMut::with_capacity(whole.len() + chunk.len());
                buf.extend_from_slice(&whole);
                buf.extend_from_slice(&chunk);
                joined = Some(buf);
            }
        }
    }
    Ok(Some(joined.map_or(whole, BytesMut::freeze)))
}

/// A second POST while one is being read for the same session: the
/// session closes ("transport error"), as the reference's.
/// Reads a session's POST body into `request`, within the session's
/// patience; the answer when it cannot be read.
async fn read_post<B: RequestBody>(
    shared: &Shared,
    body: B,
    request: &mut Request,
) -> Result<(), http::Response<Full<Bytes>>> {
    // A body sent slower than a session lives (the heartbeat's interval
    // and timeout) is given up.
    let patience = shared.config.ping_interval + shared.config.ping_timeout;
    let read = tokio::time::timeout(patience, body.read_whole(shared.config.max_payload));
    let Ok(read) = read.await else {
        tracing::debug!("a polling body too slow to read");
        return Err(plain(StatusCode::REQUEST_TIMEOUT));
    };
    match read {
        Ok(Some(body)) => request.body = body,
        Ok(None) => {
            tracing::debug!("a polling body over max_payload");
            // The session answers (413) and closes, as the reference's.
            request.body_too_large = true;
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot read a polling body");
            return Err(plain(StatusCode::BAD_REQUEST));
        }
    }
    Ok(())
}

/// How a WebSocket upgrade is made.
enum Upgrading {
    /// By hyper, which gives the connection once the answer is written.
    Hyper(hyper::upgrade::OnUpgrade),
    /// By the server that read the request, which takes the connection
    /// from [`Reply::Upgrade`].
    Here,
}

/// A WebSocket accepted for a session, until its connection is given.
/// Dropped without one (the answer could not be written), it tells the
/// session that the upgrade failed.
pub(crate) struct PendingWs {
    id: RequestId,
    /// The upgrade request of a session that polled so far.
    req: Option<Box<Request>>,
    /// `None` once given.
    link: Option<Arc<Link>>,
    deflate: Option<Agreed>,
    limits: WsLimits,
}

impl PendingWs {
    fn new(
        shared: &Shared,
        id: RequestId,
        req: Option<Box<Request>>,
        link: Arc<Link>,
        deflate: Option<Agreed>,
    ) -> PendingWs {
        let limits = WsLimits {
            max_message: WsLimits::bytes(shared.config.max_payload.saturating_add(64)),
            read_chunk: WsLimits::bytes(shared.options.ws_read_buffer.max(1)),
            write_chunk: WsLimits::bytes(shared.options.ws_write_buffer),
            max_write: WsLimits::bytes(
                shared
                    .options
                    .ws_write_buffer
                    .saturating_add(shared.config.max_buffer_size)
                    .saturating_add(64 * 1024),
            ),
        };
        PendingWs {
            id,
            req,
            link: Some(link),
            deflate,
            limits,
        }
    }

    /// The answer to the upgrade of client key `key`, with `cookie`: for
    /// hyper, the `101` response, the connection waited for on a task of
    /// its own; else the upgrade for the server to make.
    fn upgrade(self, how: Upgrading, key: &HeaderValue, cookie: Option<HeaderValue>) -> Reply {
        let accept = crate::ws::accept_key(key.as_bytes());
        let extensions = self.deflate.map(|a| a.response());
        let on_upgrade = match how {
            Upgrading::Here => {
                return Reply::Upgrade(Box::new(Upgrade {
                    accept,
                    extensions,
                    cookie,
                    ws: self,
                }));
            }
            Upgrading::Hyper(on_upgrade) => on_upgrade,
        };
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => self.open(ws_io(upgraded)),
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        });
        let res = switching_protocols(&accept, extensions.as_deref());
        Reply::Http(with_cookie(res, cookie))
    }

    /// Hands the WebSocket on `io` to the session. Its task's step is
    /// taken here when the task is idle, as for a polling request: no
    /// queue, no wake-up.
    pub(crate) fn open(mut self, io: WsIo) {
        let Some(link) = self.link.take() else {
            return;
        };
        let deflater = self.deflate.map(|a| a.deflater());
        let ws = WsConn::new(io, self.limits, deflater);
        let _ = link.run(Cmd::WsOpen {
            id: self.id,
            req: self.req.take(),
            ws: Box::new(ws),
        });
    }
}

impl Drop for PendingWs {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            let _ = link.run(Cmd::WsFailed { id: self.id });
        }
    }
}

/// A WebSocket upgrade accepted, for the server that read the request to
/// make: it writes the `101` answer of these headers, then gives the
/// connection to [`ws`](Upgrade::ws).
pub(crate) struct Upgrade {
    /// `Sec-WebSocket-Accept`.
    pub(crate) accept: String,
    /// `Sec-WebSocket-Extensions`, when an extension was agreed on.
    pub(crate) extensions: Option<String>,
    /// `Set-Cookie`, when the server sets a cookie.
    pub(crate) cookie: Option<HeaderValue>,
    /// The session's side.
    pub(crate) ws: PendingWs,
}

/// The socket under an upgraded connection: its TCP stream when it is one
/// (served by [`SocketIo::serve`](crate::SocketIo::serve) or its
/// [`HttpServer`](super::serve::HttpServer), or by hyper's `http1`
/// connection on a plain `TcpStream`), on which broadcasts may write
/// themselves. `axum::serve` goes through hyper-util's `auto` connection,
/// whose wrapper of the socket is private: its WebSockets get broadcasts
/// through their send buffer.
fn ws_io(upgraded: hyper::upgrade::Upgraded) -> WsIo {
    let upgraded = match upgraded.downcast::<TokioIo<super::serve::Counted>>() {
        Ok(parts) => {
            let (stream, unread, keep) = parts.io.into_inner().into_parts();
            // What the HTTP server read past the request, then what it did
            // not read of the first bytes (neither is usual).
            let prefix = if unread.is_empty() {
                parts.read_buf
            } else {
                let mut all = bytes::BytesMut::from(&parts.read_buf[..]);
                all.extend_from_slice(&unread);
                all.freeze()
            };
            return WsIo::Tcp(TcpIo::new(stream, prefix, keep));
        }
        Err(upgraded) => upgraded,
    };
    match upgraded.downcast::<TokioIo<tokio::net::TcpStream>>() {
        Ok(parts) => WsIo::Tcp(TcpIo::new(parts.io.into_inner(), parts.read_buf, None)),
        Err(upgraded) => WsIo::Other(TokioIo::new(upgraded)),
    }
}

/// The client's address: a [`RemoteAddr`] in the extensions, or a
/// [`SocketAddr`].
fn remote_addr(parts: &http::request::Parts) -> Option<SocketAddr> {
    parts
        .extensions
        .get::<RemoteAddr>()
        .map(|r| r.0)
        .or_else(|| parts.extensions.get::<SocketAddr>().copied())
}

/// Whether the request asks for a WebSocket.
fn is_websocket(headers: &HeaderMap) -> bool {
    has_token(headers, header::UPGRADE, "websocket")
}

/// Whether a comma-separated header `name` holds `token` (any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// A WebSocket opening handshake refused: the status and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Refusal {
    status: StatusCode,
    reason: &'static str,
}

impl Refusal {
    fn bad(reason: &'static str) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            reason,
        }
    }

    /// The answer: the status with the reason as a plain-text body, and
    /// the versions served when the version was the trouble.
    fn response(self) -> http::Response<Full<Bytes>> {
        let mut res = http::Response::new(Full::new(Bytes::from_static(self.reason.as_bytes())));
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if self.reason == BAD_VERSION {
            h.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        res
    }
}

const BAD_VERSION: &str = "Missing or invalid Sec-WebSocket-Version header";

/// Checks a WebSocket opening handshake as RFC 6455 (section 4.2.1) asks,
/// with the answers of the reference's WebSocket server (`ws`): a `GET`
/// (else 405), HTTP/1.1 or later, `Upgrade: websocket` (the caller checked
/// it), `Connection: Upgrade`, one `Sec-WebSocket-Key` of 16 bytes in
/// base64, and `Sec-WebSocket-Version` 13 (or 8, as `ws` accepts).
fn check_handshake(parts: &http::request::Parts) -> Result<(), Refusal> {
    if parts.method != http::Method::GET {
        return Err(Refusal {
            status: StatusCode::METHOD_NOT_ALLOWED,
            reason: "Invalid HTTP method",
        });
    }
    if parts.version < http::Version::HTTP_11 {
        return Err(Refusal::bad("Invalid HTTP version"));
    }
    let headers = &parts.headers;
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(Refusal::bad("Invalid Connection header"));
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    match (keys.next(), keys.next()) {
        (Some(key), None) if is_key(key.as_bytes()) => {}
        _ => return Err(Refusal::bad("Missing or invalid Sec-WebSocket-Key header")),
    }
    let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    match (versions.next().map(HeaderValue::as_bytes), versions.next()) {
        (Some(b"13" | b"8"), None) => Ok(()),
        _ => Err(Refusal::bad(BAD_VERSION)),
    }
}

/// Whether `key` is 16 bytes in base64: 22 characters of the alphabet and
/// `==`.
fn is_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The client's permessage-deflate offers (`Sec-WebSocket-Extensions`),
/// answered as the reference's `ws` answers them: the first acceptable
/// offer is taken, other extensions are passed over, and a header it cannot
/// read or whose permessage-deflate offers it cannot accept refuses the
/// handshake with 400.
fn negotiate_deflate(
    config: &DeflateConfig,
    headers: &HeaderMap,
) -> Result<Option<Agreed>, Refusal> {
    let lines: Option<Vec<&str>> = headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .map(|v| v.to_str().ok())
        .collect();
    let refusal = Refusal::bad("Invalid or unacceptable Sec-WebSocket-Extensions header");
    let lines = lines.ok_or(refusal)?;
    deflate::negotiate(config, lines).map_err(|_| refusal)
}

fn switching_protocols(accept: &str, extensions: Option<&str>) -> http::Response<Full<Bytes>> {
    let mut res = http::Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(v) = extensions.and_then(|e| HeaderValue::from_str(e).ok()) {
        h.insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
    }
    res
}

/// `res` with `Set-Cookie: cookie`.
fn with_cookie(
    mut res: http::Response<Full<Bytes>>,
    cookie: Option<HeaderValue>,
) -> http::Response<Full<Bytes>> {
    if let Some(cookie) = cookie {
        res.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    res
}

/// The extensions of a handshake's request to keep with the connection:
/// those of the types the application named
/// ([`keep_extension`](crate::SocketIoBuilder::keep_extension)), moved
/// out of the request.
fn kept_extensions(
    parts: &mut http::request::Parts,
    keep: &[crate::config::KeepExtension],
) -> http::Extensions {
    let mut kept = http::Extensions::new();
    for keep in keep {
        keep(&mut parts.extensions, &mut kept);
    }
    kept
}

/// A refused request: `403 {"code":4,"message":"Forbidden"}`, or a 400 for
/// a WebSocket upgrade, as the reference refuses them.
fn refuse(
    websocket: bool,
    cors: Option<&Cors>,
    origin: Option<&HeaderValue>,
) -> http::Response<Full<Bytes>> {
    refuse_with(websocket, cors, origin, "")
}

/// A request refused with `message` (`Forbidden` when empty), as the
/// reference's `abortRequest` and `abortUpgrade` answer an `allowRequest`
/// refusal: `403 {"code":4,"message":<message>}`, or for a WebSocket
/// upgrade a `400 Bad Request` whose body is the message.
fn refuse_with(
    websocket: bool,
    cors: Option<&Cors>,
    origin: Option<&HeaderValue>,
    message: &str,
) -> http::Response<Full<Bytes>> {
    let message = match message.is_empty() {
        true => HttpError::Forbidden.message(),
        false => message,
    };
    if websocket {
        let mut res = plain(StatusCode::BAD_REQUEST);
        *res.body_mut() = Full::new(Bytes::from(message.to_owned()));
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        return res;
    }
    let body = serde_json::json!({ "code": HttpError::Forbidden.code(), "message": message });
    let response = Response {
        status: HttpError::Forbidden.status(),
        content_type: socketio_proto::ContentType::Json,
        body: Bytes::from(body.to_string()),
    };
    with_cors(to_http(response), cors, origin)
}

fn plain(status: StatusCode) -> http::Response<Full<Bytes>> {
    let mut res = http::Response::new(Full::new(Bytes::new()));
    *res.status_mut() = status;
    res
}

/// A session's answer, compressed when it is `threshold` bytes or more
/// and the client takes a coding (the reference's `httpCompression`).
fn compressed(
    r: Response,
    accept: Option<Coding>,
    threshold: Option<usize>,
) -> http::Response<Full<Bytes>> {
    if let (Some(coding), Some(threshold)) = (accept, threshold)
        && r.status == 200
        && r.body.len() >= threshold
        && let Some(body) = coding.compress(&r.body)
    {
        let mut res = to_http(Response { body, ..r });
        res.headers_mut().insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(coding.name()),
        );
        return res;
    }
    to_http(r)
}

fn to_http(r: Response) -> http::Response<Full<Bytes>> {
    let mut res = http::Response::new(Full::new(r.body));
    *res.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type(r.content_type));
    h.insert(
        header::CACHE_CONTROL,
        const { HeaderValue::from_static("no-store") },
    );
    res
}

/// The header value of a content type, checked when compiled:
/// `HeaderValue::from_static` called at run time checks every byte again.
fn content_type(t: socketio_proto::ContentType) -> HeaderValue {
    use socketio_proto::ContentType;
    match t {
        ContentType::Text => const { HeaderValue::from_static(ContentType::Text.as_str()) },
        ContentType::Binary => const { HeaderValue::from_static(ContentType::Binary.as_str()) },
        ContentType::Json => const { HeaderValue::from_static(ContentType::Json.as_str()) },
        ContentType::Javascript => {
            const { HeaderValue::from_static(ContentType::Javascript.as_str()) }
        }
    }
}

fn with_cors(
    mut res: http::Response<Full<Bytes>>,
    cors: Option<&Cors>,
    origin: Option<&HeaderValue>,
) -> http::Response<Full<Bytes>> {
    if let Some(cors) = cors {
        cors.apply(origin, res.headers_mut());
    }
    res
}

impl SocketIo {
    /// A tower layer that serves Socket.IO at the configured path and hands
    /// every other request to the inner service (an axum router, ...).
    /// Serve the result with [`HttpServer`](crate::HttpServer) (from
    /// [`http_server`](SocketIo::http_server)), which closes slow and idle
    /// clients, rather than a server that does not.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = socketio_tokio::SocketIo::new()?;
    /// let app = axum::Router::new()
    ///     .route("/", axum::routing::get(|| async { "hello" }))
    ///     .layer(io.layer());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// io.http_server().serve(listener, app).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn layer(&self) -> SocketIoLayer {
        SocketIoLayer::new(self.clone())
    }

    /// A tower service that serves Socket.IO and answers 404 elsewhere.
    ///
    /// ```
    /// let io = socketio_tokio::SocketIo::new()?;
    /// let service = io.service();
    /// # let _ = service;
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn service(&self) -> SocketIoService<NotFound> {
        SocketIoService::new(self.clone(), NotFound)
    }
}
