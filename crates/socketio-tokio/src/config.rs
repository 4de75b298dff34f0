//! Server options: the core's [`Config`] plus what the binding adds (CORS,
//! the `allow_request` hook, acknowledgement timeouts, WebSocket buffers).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, header};
use socketio_proto::{Config, Recovery, Transports};
use websocket_frame::deflate::DeflateConfig;

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

/// The `allow_request` hook: sees a handshake's request head, returns
/// whether the handshake may go on.
pub(crate) type AllowRequest = Arc<dyn Fn(&http::request::Parts) -> bool + Send + Sync>;

/// Everything the binding needs besides the core's [`Config`].
#[derive(Clone)]
pub(crate) struct Options {
    pub(crate) cors: Option<Cors>,
    pub(crate) allow_request: Option<AllowRequest>,
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

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("cors", &self.cors)
            .field("allow_request", &self.allow_request.is_some())
            .field("ack_timeout", &self.ack_timeout)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SocketIo`](crate::SocketIo): protocol options with the reference server's
/// defaults, plus CORS, the `allow_request` hook and the acknowledgement timeout.
///
/// ```
/// use std::time::Duration;
/// use socketio_tokio::{Cors, SocketIo};
///
/// let io = SocketIo::builder()
///     .ping_interval(Duration::from_secs(10))
///     .max_payload(100_000)
///     .cors(Cors::any())
///     .allow_request(|req| req.headers.contains_key("x-token"))
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
    /// headers, extensions) and refuses it by returning false: the client
    /// gets `403 {"code":4,"message":"Forbidden"}` (a plain 400 for a WebSocket).
    pub fn allow_request<F>(mut self, hook: F) -> Self
    where
        F: Fn(&http::request::Parts) -> bool + Send + Sync + 'static,
    {
        self.options.allow_request = Some(Arc::new(hook));
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
