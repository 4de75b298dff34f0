//! Server options: the core's [`Config`] plus what the binding adds (CORS,
//! the `allow_request` and `generate_id` hooks, the session cookie, the
//! client bundle, acknowledgement timeouts, WebSocket buffers).

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue, header};
use socketio_proto::{Config, Parser, Recovery, Transports};
use websocket_frame::deflate::DeflateConfig;

use crate::error::BuildError;

/// WebSocket compression (permessage-deflate, RFC 7692), as the reference's
/// `perMessageDeflate` option: off unless
/// [`SocketIoBuilder::per_message_deflate`] turns it on.
///
/// A client that offers the extension gets it: messages of
/// [`threshold`](PerMessageDeflate::threshold) bytes and more are
/// compressed (unless their emit says `compress(false)`), and the client's
/// compressed messages are inflated under `max_payload` (a message that
/// inflates to more closes the connection with 1009). The server's answer
/// asks for no context takeover both ways, so no deflate state stays with a
/// connection between messages: one compressor and one decompressor per
/// thread serve every connection.
///
/// ```
/// use socketio_tokio::{PerMessageDeflate, SocketIo};
///
/// let io = SocketIo::builder()
///     .per_message_deflate(Some(PerMessageDeflate::new().threshold(2048)))
///     .build()?;
/// # Ok::<(), socketio_tokio::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerMessageDeflate {
    pub(crate) config: DeflateConfig,
}

impl Default for PerMessageDeflate {
    fn default() -> Self {
        Self::new()
    }
}

impl PerMessageDeflate {
    /// The reference's defaults: a threshold of 1024 bytes, zlib's default
    /// level, the window the client asks for.
    pub fn new() -> Self {
        PerMessageDeflate {
            config: DeflateConfig::default(),
        }
    }

    /// Messages shorter than this many bytes are sent uncompressed
    /// (default 1024).
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.config.threshold = bytes;
        self
    }

    /// The zlib compression level, 0 to 9 (default 6).
    pub fn level(mut self, level: u32) -> Self {
        self.config.level = level.min(9);
        self
    }

    /// The largest LZ77 window the server compresses with, as a power of
    /// two from 8 to 15 (`serverMaxWindowBits`); offers that ask for a
    /// smaller one are declined, as the reference declines them. Default:
    /// whatever the client asks for, 15 otherwise. Zlib compresses for a
    /// window of 8 with 9, whose matches reach no farther than 250 bytes.
    pub fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.config.server_max_window_bits = Some(bits.clamp(8, 15));
        self
    }

    /// The largest window, 8 to 15, the server asks clients to compress
    /// with (`clientMaxWindowBits`); offers that do not allow it are
    /// declined, as the reference declines them. Default: the client's
    /// choice.
    pub fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.config.client_max_window_bits = Some(bits.clamp(8, 15));
        self
    }
}

/// Cross-origin resource sharing, as the reference's `cors` option.
///
/// Without it, responses carry no CORS header and `OPTIONS` requests are
/// answered by the protocol (with an error).
///
/// ```
/// use socketio_tokio::Cors;
///
/// let any = Cors::any();
/// let some = Cors::origins(["https://example.com"]).credentials(true);
/// # let _ = (any, some);
/// ```
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Option<Vec<HeaderValue>>,
    credentials: bool,
    max_age: Option<Duration>,
}

impl Cors {
    /// Any origin may call the server (`Access-Control-Allow-Origin: *`, or
    /// the request's origin when credentials are allowed).
    pub fn any() -> Cors {
        Cors {
            origins: None,
            credentials: false,
            max_age: None,
        }
    }

    /// Only these origins (`https://example.com`) may call the server.
    /// Values that are not valid header values are ignored.
    pub fn origins<I, S>(origins: I) -> Cors
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Cors {
            origins: Some(
                origins
                    .into_iter()
                    .filter_map(|o| HeaderValue::from_str(o.as_ref()).ok())
                    .collect(),
            ),
            credentials: false,
            max_age: None,
        }
    }

    /// Whether requests may carry credentials (cookies): sets
    /// `Access-Control-Allow-Credentials: true`.
    pub fn credentials(mut self, allow: bool) -> Cors {
        self.credentials = allow;
        self
    }

    /// How long a browser may cache a preflight answer.
    pub fn max_age(mut self, max_age: Duration) -> Cors {
        self.max_age = Some(max_age);
        self
    }

    /// Adds the CORS headers of an ordinary response to `headers`.
    pub(crate) fn apply(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        match (&self.origins, origin) {
            (None, Some(origin)) if self.credentials => {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                headers.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
            (None, _) => {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
            (Some(list), Some(origin)) => {
                if list.iter().any(|o| o == origin) {
                    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                }
                headers.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
            (Some(_), None) => {
                headers.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
        }
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// Adds the headers of a preflight answer to `headers`.
    pub(crate) fn apply_preflight(&self, request: &HeaderMap, headers: &mut HeaderMap) {
        self.apply(request.get(header::ORIGIN), headers);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET,HEAD,PUT,PATCH,POST,DELETE"),
        );
        if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
            headers.append(
                header::VARY,
                HeaderValue::from_static("Access-Control-Request-Headers"),
            );
        }
        if let Some(age) = self.max_age {
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, age.as_secs().into());
        }
    }
}

/// The `allow_request` hook: sees a handshake's request head and gives a
/// future that says whether the handshake may go on (`Err` carries the
/// refusal's message).
pub(crate) type AllowRequest =
    Arc<dyn Fn(&http::request::Parts) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The `generate_id` hook: the session id of a handshake.
pub(crate) type GenerateId = Arc<dyn Fn(&http::request::Parts) -> String + Send + Sync>;

/// Moves the value of one type from a request's extensions to those kept
/// with the connection (see [`SocketIoBuilder::keep_extension`]).
pub(crate) type KeepExtension = fn(&mut http::Extensions, &mut http::Extensions);

fn keep<T: Clone + Send + Sync + 'static>(from: &mut http::Extensions, to: &mut http::Extensions) {
    if let Some(value) = from.remove::<T>() {
        to.insert(value);
    }
}

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`: sent only with requests from the same site.
    Strict,
    /// `SameSite=Lax` (the default): also sent when following a link to the site.
    Lax,
    /// `SameSite=None`: sent with cross-site requests too (browsers want
    /// [`Cookie::secure`] with it).
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// The session cookie, as engine.io's `cookie` option: the answer to every
/// handshake (the polling open and a direct WebSocket upgrade) sets a cookie
/// whose value is the Engine.IO session id, so that a load balancer can send
/// a client's next requests to the same server (sticky sessions).
///
/// The defaults are the reference's: name `io`, path `/`, `HttpOnly`,
/// `SameSite=Lax`, no `Secure`, no `Max-Age` (a session cookie), no `Domain`.
/// The header is written as the reference's `cookie` package writes it:
/// `io=<sid>; Max-Age=..; Domain=..; Path=/; HttpOnly; Secure; SameSite=Lax`.
///
/// ```
/// use std::time::Duration;
/// use socketio_tokio::{Cookie, SameSite, SocketIo};
///
/// let io = SocketIo::builder()
///     .cookie(
///         Cookie::new()
///             .name("lb")
///             .same_site(SameSite::Strict)
///             .secure(true)
///             .max_age(Duration::from_secs(3600)),
///     )
///     .build()?;
/// # Ok::<(), socketio_tokio::BuildError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    name: String,
    path: Option<String>,
    http_only: bool,
    same_site: Option<SameSite>,
    secure: bool,
    max_age: Option<Duration>,
    domain: Option<String>,
}

impl Default for Cookie {
    fn default() -> Self {
        Cookie::new()
    }
}

impl Cookie {
    /// The reference's cookie: `io`, `Path=/`, `HttpOnly`, `SameSite=Lax`.
    pub fn new() -> Cookie {
        Cookie {
            name: "io".to_owned(),
            path: Some("/".to_owned()),
            http_only: true,
            same_site: Some(SameSite::Lax),
            secure: false,
            max_age: None,
            domain: None,
        }
    }

    /// The cookie's name (default `io`): a token of RFC 7230 (letters,
    /// digits and ``!#$%&'*+-.^_`|~``), checked when the server is built.
    pub fn name(mut self, name: impl Into<String>) -> Cookie {
        self.name = name.into();
        self
    }

    /// The `Path` attribute (default `/`); `None` leaves it out.
    pub fn path(mut self, path: Option<&str>) -> Cookie {
        self.path = path.map(str::to_owned);
        self
    }

    /// The `HttpOnly` attribute (default true): scripts cannot read the cookie.
    pub fn http_only(mut self, http_only: bool) -> Cookie {
        self.http_only = http_only;
        self
    }

    /// The `SameSite` attribute (default [`SameSite::Lax`]); `None` leaves
    /// it out.
    pub fn same_site(mut self, same_site: impl Into<Option<SameSite>>) -> Cookie {
        self.same_site = same_site.into();
        self
    }

    /// The `Secure` attribute (default false): sent over HTTPS only.
    pub fn secure(mut self, secure: bool) -> Cookie {
        self.secure = secure;
        self
    }

    /// The `Max-Age` attribute, in whole seconds (default none: the cookie
    /// lasts as long as the browser's session).
    pub fn max_age(mut self, max_age: Duration) -> Cookie {
        self.max_age = Some(max_age);
        self
    }

    /// The `Domain` attribute (default none: the host that set it).
    pub fn domain(mut self, domain: impl Into<String>) -> Cookie {
        self.domain = Some(domain.into());
        self
    }

    /// Checks the name and the attributes' values.
    fn check(&self) -> Result<(), BuildError> {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if self.name.is_empty() || !self.name.bytes().all(token) {
            return Err(BuildError::Cookie(format!(
                "the name {:?} is not a token",
                self.name
            )));
        }
        // An attribute's value: visible ASCII and spaces, without `;`.
        let value = |v: &str| v.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b';');
        for (what, v) in [("path", &self.path), ("domain", &self.domain)] {
            if let Some(v) = v
                && !value(v)
            {
                return Err(BuildError::Cookie(format!("the {what} {v:?} is not valid")));
            }
        }
        Ok(())
    }

    /// The `Set-Cookie` value for session `sid` (a URL-safe id, written as
    /// it is, as `encodeURIComponent` leaves it).
    pub(crate) fn header(&self, sid: &str) -> Option<HeaderValue> {
        use std::fmt::Write as _;
        let mut out = format!("{}={}", self.name, sid);
        if let Some(age) = self.max_age {
            let _ = write!(out, "; Max-Age={}", age.as_secs());
        }
        if let Some(domain) = &self.domain {
            let _ = write!(out, "; Domain={domain}");
        }
        if let Some(path) = &self.path {
            let _ = write!(out, "; Path={path}");
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        if let Some(same_site) = self.same_site {
            let _ = write!(out, "; SameSite={}", same_site.as_str());
        }
        HeaderValue::from_str(&out).ok()
    }
}

/// The files of the client bundle the server serves, as the reference's
/// `serveClient`: the names under the server's path, in the reference's list.
pub(crate) const CLIENT_FILES: [&str; 8] = [
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
];

/// One file of the client bundle, read when the server was built, with its
/// compressed forms made the first time a client asks for them.
#[derive(Debug)]
pub(crate) struct ClientFile {
    pub(crate) name: &'static str,
    pub(crate) bytes: Bytes,
    pub(crate) gzip: OnceLock<Option<Bytes>>,
    pub(crate) deflate: OnceLock<Option<Bytes>>,
}

/// The client bundle (`socket.io-client/dist`), read once when the server
/// is built.
#[derive(Debug)]
pub(crate) struct ClientFiles {
    /// Where the files were read from, for the 404 of a missing one.
    pub(crate) dir: PathBuf,
    /// `"<version>"`, the version of `socket.io-client` (from the
    /// `package.json` beside the directory), quoted as an ETag.
    pub(crate) etag: String,
    /// The files found, among [`CLIENT_FILES`].
    pub(crate) files: Vec<ClientFile>,
}

impl ClientFiles {
    /// Reads the bundle in `dir`: `socket.io.js` must be there, and the
    /// `package.json` of `socket.io-client` one level up (for the version,
    /// which makes the ETag); the other files are served when present.
    pub(crate) fn load(dir: &Path) -> Result<ClientFiles, BuildError> {
        let missing = |what: String, e: std::io::Error| BuildError::ClientBundle {
            path: dir.to_path_buf(),
            reason: format!(
                "{what}: {e} (install the client with `npm install socket.io-client` and \
                 point serve_client at node_modules/socket.io-client/dist)"
            ),
        };
        let package = dir.join("../package.json");
        let text = std::fs::read_to_string(&package)
            .map_err(|e| missing(format!("cannot read {}", package.display()), e))?;
        let version = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("version")?.as_str().map(str::to_owned))
            .filter(|v| v.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
            .ok_or_else(|| BuildError::ClientBundle {
                path: dir.to_path_buf(),
                reason: format!("{} has no version", package.display()),
            })?;
        let mut files = Vec::new();
        for name in CLIENT_FILES {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => files.push(ClientFile {
                    name,
                    bytes: Bytes::from(bytes),
                    gzip: OnceLock::new(),
                    deflate: OnceLock::new(),
                }),
                Err(e) if name == "socket.io.js" => {
                    return Err(missing(format!("cannot read {}", path.display()), e));
                }
                Err(_) => {}
            }
        }
        Ok(ClientFiles {
            dir: dir.to_path_buf(),
            etag: format!("\"{version}\""),
            files,
        })
    }
}

/// Everything the binding needs besides the core's [`Config`].
#[derive(Clone)]
pub(crate) struct Options {
    pub(crate) cors: Option<Cors>,
    pub(crate) allow_request: Option<AllowRequest>,
    pub(crate) generate_id: Option<GenerateId>,
    /// The types of the request's extensions kept with a connection.
    pub(crate) keep_extensions: Vec<KeepExtension>,
    pub(crate) cookie: Option<Cookie>,
    /// Where the client bundle is, until the server is built.
    pub(crate) serve_client: Option<PathBuf>,
    /// The client bundle, read when the server was built.
    pub(crate) client_files: Option<Arc<ClientFiles>>,
    pub(crate) ack_timeout: Duration,
    pub(crate) ws_read_buffer: usize,
    pub(crate) ws_write_buffer: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) admission: crate::limits::Admission,
    pub(crate) max_header_size: usize,
    pub(crate) max_headers: usize,
    pub(crate) header_read_timeout: Duration,
    /// Polling responses of at least this many bytes are compressed, when
    /// the client accepts gzip or deflate; `None`: never.
    pub(crate) http_compression: Option<usize>,
    /// WebSocket compression offered to clients; `None`: off.
    pub(crate) per_message_deflate: Option<DeflateConfig>,
    /// The application's state, by type ([`State`](crate::State)).
    pub(crate) state: http::Extensions,
    /// Whether a dynamic namespace forgets a child once its last socket left.
    pub(crate) cleanup_empty_child_namespaces: bool,
}

impl Options {
    /// Checks the options and reads what they point at, when the server is
    /// built.
    pub(crate) fn prepare(&mut self) -> Result<(), BuildError> {
        if let Some(cookie) = &self.cookie {
            cookie.check()?;
        }
        if let Some(dir) = &self.serve_client {
            self.client_files = Some(Arc::new(ClientFiles::load(dir)?));
        }
        Ok(())
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("cors", &self.cors)
            .field("allow_request", &self.allow_request.is_some())
            .field("generate_id", &self.generate_id.is_some())
            .field("cookie", &self.cookie)
            .field("serve_client", &self.serve_client)
            .field("ack_timeout", &self.ack_timeout)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SocketIo`](crate::SocketIo): protocol options with the reference server's
/// defaults, plus what the reference's HTTP side offers (CORS, the
/// `allow_request` and `generate_id` hooks, the session cookie, serving the
/// client bundle) and the acknowledgement timeout.
///
/// ```
/// use std::time::Duration;
/// use socketio_tokio::{Cookie, Cors, SocketIo};
///
/// let io = SocketIo::builder()
///     .ping_interval(Duration::from_secs(10))
///     .max_payload(100_000)
///     .cors(Cors::any())
///     .cookie(Cookie::new())
///     .allow_request(|req| {
///         let ok = req.headers.contains_key("x-token");
///         async move { if ok { Ok(()) } else { Err("no token".to_owned()) } }
///     })
///     .build()?;
/// # Ok::<(), socketio_tokio::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SocketIoBuilder {
    pub(crate) config: Config,
    pub(crate) options: Options,
}

impl Default for SocketIoBuilder {
    fn default() -> Self {
        SocketIoBuilder {
            config: Config::default(),
            options: Options {
                cors: None,
                allow_request: None,
                generate_id: None,
                keep_extensions: Vec::new(),
                cookie: None,
                serve_client: None,
                client_files: None,
                ack_timeout: Duration::from_secs(5),
                ws_read_buffer: 4 * 1024,
                ws_write_buffer: 4 * 1024,
                shutdown_timeout: Duration::from_secs(10),
                admission: crate::limits::Admission::default(),
                max_header_size: 16 * 1024,
                max_headers: 100,
                header_read_timeout: Duration::from_secs(30),
                http_compression: Some(1024),
                per_message_deflate: None,
                state: http::Extensions::new(),
                cleanup_empty_child_namespaces: false,
            },
        }
    }
}

impl SocketIoBuilder {
    /// A builder with the reference server's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The path served (default `/socket.io/`); a trailing slash is added.
    pub fn path(mut self, path: &str) -> Self {
        self.config = self.config.with_path(path);
        self
    }

    /// How often the server pings (default 25 s).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.config.ping_interval = interval;
        self
    }

    /// How long the server waits for a pong (default 20 s).
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.config.ping_timeout = timeout;
        self
    }

    /// How long a new connection has to join a namespace (default 45 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// How long a WebSocket upgrade may take (default 10 s).
    pub fn upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.config.upgrade_timeout = timeout;
        self
    }

    /// The largest HTTP body or WebSocket message accepted (default 1,000,000 bytes).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.max_payload = bytes;
        self
    }

    /// The most bytes a connection may hold waiting to be sent (default 1 MiB).
    pub fn max_buffer_size(mut self, bytes: usize) -> Self {
        self.config.max_buffer_size = bytes;
        self
    }

    /// Turns on connection state recovery (the reference's
    /// `connectionStateRecovery`; off by default): a client that loses its
    /// connection and comes back within
    /// [`Recovery::max_disconnection_duration`] (2 minutes) gets its socket
    /// id, rooms and [`data`](crate::Socket::data) back, and every packet it
    /// missed, once, in order; [`Socket::recovered`](crate::Socket::recovered)
    /// tells the application. Packets kept for it are bounded
    /// ([`Recovery`]'s bounds); a client whose missed packets are no longer
    /// all kept gets a new session, so that it knows to resynchronize.
    ///
    /// ```
    /// use socketio_tokio::{Recovery, SocketIo};
    /// let io = SocketIo::builder()
    ///     .connection_state_recovery(Recovery::default())
    ///     .build()?;
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn connection_state_recovery(mut self, recovery: Recovery) -> Self {
        self.config.recovery = Some(recovery);
        self
    }

    /// How Socket.IO packets are written (the reference's `parser` option):
    /// [`Parser::Default`], the text format of `socket.io-parser`, or
    /// [`Parser::Msgpack`], the format of `socket.io-msgpack-parser`, where
    /// every packet is one binary message (binary values travel inside it
    /// as msgpack `bin`, not as attachments). The parser is the server's,
    /// for every client: clients must use the same one (in the official
    /// client, `parser: require("socket.io-msgpack-parser")`); a client
    /// that sends text to a msgpack server is disconnected. With
    /// [`allow_eio3`](SocketIoBuilder::allow_eio3), Socket.IO 2 clients get
    /// the same format, which is that of `socket.io-msgpack-parser` 3 (the
    /// one the tests run), not necessarily that of its version 2.
    ///
    /// Handlers see the same data either way: an incoming msgpack packet's
    /// payload is read into JSON with placeholders and attachments, as the
    /// text parser gives it. A broadcast is encoded once, in the server's
    /// format.
    ///
    /// ```
    /// use socketio_tokio::{Parser, SocketIo};
    /// let io = SocketIo::builder().parser(Parser::Msgpack).build()?;
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn parser(mut self, parser: Parser) -> Self {
        self.config.parser = parser;
        self
    }

    /// The transports a session may use (default both).
    pub fn transports(mut self, polling: bool, websocket: bool) -> Self {
        self.config.transports = Transports { polling, websocket };
        self
    }

    /// Whether a polling session may upgrade to WebSocket (default true).
    pub fn allow_upgrades(mut self, allow: bool) -> Self {
        self.config.allow_upgrades = allow;
        self
    }

    /// Whether Engine.IO v3 clients (Socket.IO 2) are served (default false).
    pub fn allow_eio3(mut self, allow: bool) -> Self {
        self.config.allow_eio3 = allow;
        self
    }

    /// The default timeout of `emit_with_ack` (default 5 s).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.options.ack_timeout = timeout;
        self
    }

    /// Answers CORS preflights and adds CORS headers to the responses.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.options.cors = Some(cors);
        self
    }

    /// A hook that sees every handshake's request head (method, URI,
    /// headers, extensions) and decides, maybe asynchronously, whether the
    /// handshake may go on, as the reference's `allowRequest(req, callback)`.
    ///
    /// The hook reads what it needs of the head and returns a future;
    /// `Err(message)` refuses the handshake: a polling client gets
    /// `403 {"code":4,"message":<message>}` (`"Forbidden"` when the message
    /// is empty), a WebSocket a `400 Bad Request` with the message as its
    /// body, as the reference answers. The official client reports the
    /// refusal as a `connect_error`, the answer's body in its context.
    ///
    /// It runs before anything else of the handshake: while it is pending
    /// the request holds no session and counts against no session limit.
    /// A synchronous check returns a ready future. A hook (or its future)
    /// that panics refuses the handshake, and the server logs it.
    ///
    /// ```
    /// use socketio_tokio::SocketIo;
    ///
    /// # async fn check_token(_token: Option<String>) -> bool { true }
    /// let io = SocketIo::builder()
    ///     .allow_request(|req| {
    ///         let token = req
    ///             .headers
    ///             .get("x-token")
    ///             .and_then(|v| v.to_str().ok())
    ///             .map(str::to_owned);
    ///         async move {
    ///             match check_token(token).await {
    ///                 true => Ok(()),
    ///                 false => Err("invalid token".to_owned()),
    ///             }
    ///         }
    ///     })
    ///     .build()?;
    ///
    /// // A synchronous check.
    /// let io = SocketIo::builder()
    ///     .allow_request(|req| {
    ///         std::future::ready(match req.headers.contains_key("x-ticket") {
    ///             true => Ok(()),
    ///             false => Err(String::new()),
    ///         })
    ///     })
    ///     .build()?;
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn allow_request<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(&http::request::Parts) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.options.allow_request = Some(Arc::new(move |parts| Box::pin(hook(parts))));
        self
    }

    /// Makes the Engine.IO session ids (the reference's `generateId`): the
    /// hook sees each handshake's request head, after
    /// [`allow_request`](SocketIoBuilder::allow_request), and returns the
    /// session's id. That id is the client's `socket.io.engine.id`, the
    /// `sid` of its requests and the value of the session
    /// [`cookie`](SocketIoBuilder::cookie); Socket.IO socket ids are not
    /// affected.
    ///
    /// The id must be 1 to 64 characters of the URL-safe set (`A-Z`, `a-z`,
    /// `0-9`, `-`, `_`), as it travels unescaped in URLs and cookies, and no
    /// live session may have it. An id that breaks these rules is never
    /// used: the handshake is refused as the reference refuses one whose id
    /// could not be made (`400 {"code":3,"message":"Bad request"}`, a plain
    /// 400 for a WebSocket), and the server logs why at `error` level; a
    /// hook that panics refuses the handshake the same way, as the reference
    /// refuses one whose `generateId` throws.
    /// The default ids are 20 characters from 15 random bytes; an id that
    /// can be guessed lets another client read and write the session, so
    /// keep them unguessable.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use socketio_tokio::SocketIo;
    ///
    /// let next = AtomicU64::new(0);
    /// let io = SocketIo::builder()
    ///     .generate_id(move |_req| {
    ///         format!("node1-{}", next.fetch_add(1, Ordering::Relaxed))
    ///     })
    ///     .build()?;
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn generate_id<F>(mut self, hook: F) -> Self
    where
        F: Fn(&http::request::Parts) -> String + Send + Sync + 'static,
    {
        self.options.generate_id = Some(Arc::new(hook));
        self
    }

    /// Keeps the value of type `T` that the tower layers in front of the
    /// server put in a handshake request's extensions (an authenticated
    /// user, say) for the connection's life:
    /// [`Handshake::extensions`](crate::Handshake::extensions) gives it to
    /// the namespaces' middlewares and handlers. Call it once per type.
    ///
    /// Only the types named here are kept, moved out of the request: an
    /// extension may share the memory of the HTTP connection's read buffer
    /// (axum's router adds an `OriginalUri`, a clone of the request's URI,
    /// which is a slice of that buffer), and keeping it would keep 8 to 16
    /// KiB alive for every connection. A connection that keeps none holds
    /// no more memory for them than an empty `http::Extensions` (8 bytes).
    ///
    /// ```
    /// use socketio_tokio::{Socket, SocketIo};
    ///
    /// #[derive(Clone)]
    /// struct User(String);
    ///
    /// let io = SocketIo::builder().keep_extension::<User>().build()?;
    /// io.ns("/", |socket: Socket| async move {
    ///     if let Some(User(name)) = socket.handshake().extensions().get::<User>() {
    ///         let _ = socket.emit("welcome", name);
    ///     }
    /// });
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn keep_extension<T: Clone + Send + Sync + 'static>(mut self) -> Self {
        self.options.keep_extensions.push(keep::<T>);
        self
    }

    /// Sets a cookie holding the session id on the answer to every
    /// handshake (engine.io's `cookie` option; off by default): see
    /// [`Cookie`] for its attributes and their defaults.
    pub fn cookie(mut self, cookie: Cookie) -> Self {
        self.options.cookie = Some(cookie);
        self
    }

    /// Serves the official client's bundle under the server's path (the
    /// reference's `serveClient`): `/socket.io/socket.io.js`,
    /// `socket.io.min.js`, `socket.io.msgpack.min.js`, `socket.io.esm.min.js`
    /// and their `.map` files, from `dir`, the `dist` directory of the npm
    /// package `socket.io-client` (`node_modules/socket.io-client/dist`
    /// after `npm install socket.io-client`). Off by default: the bundle is
    /// not shipped with this crate.
    ///
    /// The files are read once, when the server is built, and served from
    /// memory (about 1.2 MB for all eight): a missing `socket.io.js` or
    /// `package.json` (one level up, for the version) fails
    /// [`build`](SocketIoBuilder::build) with [`BuildError::ClientBundle`];
    /// another file missing is answered with 404. Answers are as the
    /// reference's: `Content-Type: application/javascript; charset=utf-8`
    /// (`application/json` for maps), `Cache-Control: public, max-age=0`,
    /// an `ETag` of the client's version (an `If-None-Match` that matches it
    /// gets 304), gzip or deflate when the client accepts it (each coding
    /// made once, the first time it is asked for), and CORS headers when
    /// [`cors`](SocketIoBuilder::cors) is set.
    ///
    /// ```no_run
    /// let io = socketio_tokio::SocketIo::builder()
    ///     .serve_client("node_modules/socket.io-client/dist")
    ///     .build()?;
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn serve_client(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.serve_client = Some(dir.into());
        self
    }

    /// Only requests from these origins (`https://example.com`, as browsers
    /// send them in the `Origin` header) are served, against cross-site
    /// WebSocket hijacking; requests without an `Origin` header (non-browser
    /// clients) are served. A refused polling request gets
    /// `403 {"code":4,"message":"Forbidden"}`, a refused WebSocket upgrade a
    /// plain 400, as `allow_request` refusals. Default: any origin.
    ///
    /// ```
    /// let io = socketio_tokio::SocketIo::builder()
    ///     .allowed_origins(["https://example.com", "https://www.example.com"])
    ///     .build()?;
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.options.admission.origins = Some(
            origins
                .into_iter()
                .filter_map(|o| HeaderValue::from_str(o.as_ref()).ok())
                .collect(),
        );
        self
    }

    /// The most sessions at once; further handshakes are refused as
    /// `allow_request` refusals are (`403 {"code":4,"message":"Forbidden"}`,
    /// a plain 400 for a WebSocket). Default: no limit.
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.options.admission.max_sessions = Some(max);
        self
    }

    /// The most sessions at once from one IP address (as
    /// [`RemoteAddr`](crate::RemoteAddr) gives it; behind a proxy, that is
    /// the proxy's); refused as [`max_sessions`](SocketIoBuilder::max_sessions).
    /// Default: no limit.
    pub fn max_sessions_per_ip(mut self, max: usize) -> Self {
        self.options.admission.max_sessions_per_ip = Some(max);
        self
    }

    /// The largest HTTP/1 request head [`SocketIo::serve`](crate::SocketIo::serve) and
    /// [`SocketIo::http_server`](crate::SocketIo::http_server) read, in bytes
    /// (default 16 KiB, as Node's; at least 8 KiB), and the largest HTTP/2
    /// header list. Larger heads get `431`.
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.options.max_header_size = bytes;
        self
    }

    /// The most HTTP/1 request headers [`SocketIo::serve`](crate::SocketIo::serve) and
    /// [`SocketIo::http_server`](crate::SocketIo::http_server) read (default
    /// 100); more get `431`.
    pub fn max_headers(mut self, count: usize) -> Self {
        self.options.max_headers = count;
        self
    }

    /// How long [`SocketIo::serve`](crate::SocketIo::serve) and
    /// [`SocketIo::http_server`](crate::SocketIo::http_server) wait for a whole HTTP/1 request head
    /// (default 30 s), on a new or a kept-alive connection; then the TCP
    /// connection is closed. A held long-poll or a WebSocket is not affected.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.options.header_read_timeout = timeout;
        self
    }

    /// How many bytes a WebSocket read asks for once the connection is busy
    /// (default 4 KiB). The read buffer exists only while there is something
    /// in it: an idle WebSocket holds none, and its first read after a pause
    /// asks for at most 1 KiB. A frame longer than this is read whole, into
    /// room reserved for it (never more than `max_payload` allows).
    pub fn ws_read_buffer_size(mut self, bytes: usize) -> Self {
        self.options.ws_read_buffer = bytes;
        self
    }

    /// From how many queued bytes the WebSocket writer writes before it
    /// queues more (default 4 KiB). Frames queued in one turn of the
    /// connection's task go out in one write; the write buffer is given back
    /// once all is written.
    pub fn ws_write_buffer_size(mut self, bytes: usize) -> Self {
        self.options.ws_write_buffer = bytes;
        self
    }

    /// Compresses polling responses of at least `threshold` bytes with
    /// gzip or deflate, whichever the client's `Accept-Encoding` prefers (the
    /// reference's `httpCompression`; on by default with a threshold of
    /// 1 KiB); `None` turns it off. Small responses, WebSocket frames and
    /// clients that accept neither coding are sent as they are.
    ///
    /// ```
    /// let io = socketio_tokio::SocketIo::builder()
    ///     .http_compression(Some(4096))
    ///     .build()?;
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn http_compression(mut self, threshold: Option<usize>) -> Self {
        self.options.http_compression = threshold;
        self
    }

    /// Compresses WebSocket messages with permessage-deflate for clients
    /// that offer it (the reference's `perMessageDeflate`; off by default,
    /// as in the reference): see [`PerMessageDeflate`]. `None` turns it off.
    pub fn per_message_deflate(mut self, deflate: Option<PerMessageDeflate>) -> Self {
        self.options.per_message_deflate = deflate.map(|d| d.config);
        self
    }

    /// How long [`SocketIo::shutdown`](crate::SocketIo::shutdown) waits for connections to close (default 10 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.options.shutdown_timeout = timeout;
        self
    }

    /// Gives every handler `state` through the [`State<T>`](crate::State)
    /// extractor (axum's `with_state`); call it once per type.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use socketio_tokio::{SocketIo, Socket, State};
    ///
    /// #[derive(Clone)]
    /// struct Db(Arc<Vec<String>>);
    ///
    /// let io = SocketIo::builder().with_state(Db(Arc::default())).build()?;
    /// io.ns("/", |socket: Socket, State(db): State<Db>| async move {
    ///     let _ = socket.emit("count", &db.0.len());
    /// });
    /// # Ok::<(), socketio_tokio::BuildError>(())
    /// ```
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.options.state.insert(state);
        self
    }

    /// Whether a dynamic namespace forgets a child namespace once its last
    /// socket left (the reference's `cleanupEmptyChildNamespaces`; default
    /// false, as there: a child is remembered from its first socket on, for
    /// broadcasts from the parent and `new_namespace`).
    pub fn cleanup_empty_child_namespaces(mut self, cleanup: bool) -> Self {
        self.options.cleanup_empty_child_namespaces = cleanup;
        self
    }

    /// Replaces the protocol configuration as a whole.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
}
