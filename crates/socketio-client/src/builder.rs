//! [`ClientBuilder`]: the options of `connect`, then the client's task.

use std::sync::Arc;
use std::time::Duration;

use socketio_client_proto::{Client, Config, Str, Transports};

use crate::error::Error;
use crate::io::Endpoint;
use crate::socket::{
    ConnectErrorHandler, ConnectHandler, DisconnectHandler, EventHandler, Handlers, Inner,
    ManagerEvent, ManagerHandler, Message, Shared, Socket, auth_object,
};
use crate::url::Target;

/// The options of a connection, with the official client's defaults, and the handlers to
/// install before it opens. Made by [`connect`](crate::connect).
pub struct ClientBuilder {
    url: String,
    config: Config,
    auth: Option<serde_json::Value>,
    headers: Vec<(String, String)>,
    handlers: Handlers,
    manager: Vec<ManagerHandler>,
    /// Root certificates added to the Mozilla roots, in DER.
    #[cfg(feature = "tls")]
    roots: Vec<rustls_pki_types::CertificateDer<'static>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    pub(crate) fn new(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            config: Config::default(),
            auth: None,
            headers: Vec::new(),
            handlers: Handlers::default(),
            manager: Vec::new(),
            #[cfg(feature = "tls")]
            roots: Vec::new(),
        }
    }

    /// Trusts the certificates of `pem` (one or more `CERTIFICATE` blocks) besides the Mozilla
    /// roots, for `https` and `wss` URLs (`tls` feature).
    ///
    /// # Errors
    /// [`Error::InvalidCertificate`] when `pem` holds no certificate or cannot be read.
    #[cfg(feature = "tls")]
    pub fn tls_root_certificates_pem(mut self, pem: &[u8]) -> Result<ClientBuilder, Error> {
        use rustls_pki_types::pem::PemObject;
        let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| Error::InvalidCertificate(e.to_string()))?;
        if certs.is_empty() {
            return Err(Error::InvalidCertificate("no certificate".into()));
        }
        self.roots.extend(certs);
        Ok(self)
    }

    /// The auth object sent with the namespace's CONNECT (`auth`).
    pub fn auth(mut self, auth: serde_json::Value) -> ClientBuilder {
        self.auth = Some(auth);
        self
    }

    /// The Engine.IO path (`path`, `/socket.io/` by default).
    pub fn path(mut self, path: &str) -> ClientBuilder {
        self.config.path = path.to_owned();
        self
    }

    /// A query parameter added to every request (`query`).
    pub fn query(mut self, key: &str, value: &str) -> ClientBuilder {
        self.config.query.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A header added to every request (`extraHeaders`).
    pub fn header(mut self, name: &str, value: &str) -> ClientBuilder {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The transports (`transports`): polling then WebSocket by default.
    pub fn transports(mut self, transports: Transports) -> ClientBuilder {
        self.config.transports = transports;
        self
    }

    /// Whether to reconnect after losing the connection (`reconnection`, on by default).
    pub fn reconnection(mut self, on: bool) -> ClientBuilder {
        self.config.reconnection = on;
        self
    }

    /// How many attempts before giving up (`reconnectionAttempts`, unlimited by default).
    pub fn reconnection_attempts(mut self, attempts: u32) -> ClientBuilder {
        self.config.reconnection_attempts = attempts;
        self
    }

    /// The first delay (`reconnectionDelay`, 1 s), doubled at each attempt.
    pub fn reconnection_delay(mut self, delay: Duration) -> ClientBuilder {
        self.config.reconnection_delay = delay;
        self
    }

    /// The largest delay (`reconnectionDelayMax`, 5 s).
    pub fn reconnection_delay_max(mut self, delay: Duration) -> ClientBuilder {
        self.config.reconnection_delay_max = delay;
        self
    }

    /// How much delays are randomised, 0 to 1 (`randomizationFactor`, 0.5).
    pub fn randomization_factor(mut self, factor: f64) -> ClientBuilder {
        self.config.randomization_factor = factor;
        self
    }

    /// How long opening a connection may take (`timeout`, 20 s).
    pub fn timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.config.timeout = timeout;
        self
    }

    /// The largest HTTP response or WebSocket message read (16 MiB).
    pub fn max_incoming(mut self, bytes: usize) -> ClientBuilder {
        self.config.max_incoming = bytes;
        self
    }

    /// The most bytes of emits kept while disconnected (1 MiB).
    pub fn max_buffered(mut self, bytes: usize) -> ClientBuilder {
        self.config.max_buffered = bytes;
        self
    }

    /// Calls `handler` for every event `event` (see [`Socket::on`]).
    pub fn on<F>(mut self, event: &str, handler: F) -> ClientBuilder
    where
        F: Fn(Socket, Message) + Send + Sync + 'static,
    {
        let handler: EventHandler = Arc::new(handler);
        self.handlers
            .events
            .entry(event.to_owned())
            .or_default()
            .push(handler);
        self
    }

    /// Calls `handler` for every event (see [`Socket::on_any`]).
    pub fn on_any<F>(mut self, handler: F) -> ClientBuilder
    where
        F: Fn(Socket, Message) + Send + Sync + 'static,
    {
        let handler: EventHandler = Arc::new(handler);
        self.handlers.any.push(handler);
        self
    }

    /// Calls `handler` on each connection (see [`Socket::on_connect`]).
    pub fn on_connect<F>(mut self, handler: F) -> ClientBuilder
    where
        F: Fn(Socket) + Send + Sync + 'static,
    {
        let handler: ConnectHandler = Arc::new(handler);
        self.handlers.connect.push(handler);
        self
    }

    /// Calls `handler` on each disconnection (see [`Socket::on_disconnect`]).
    pub fn on_disconnect<F>(mut self, handler: F) -> ClientBuilder
    where
        F: Fn(Socket, socketio_client_proto::DisconnectReason) + Send + Sync + 'static,
    {
        let handler: DisconnectHandler = Arc::new(handler);
        self.handlers.disconnect.push(handler);
        self
    }

    /// Calls `handler` when joining fails (see [`Socket::on_connect_error`]).
    pub fn on_connect_error<F>(mut self, handler: F) -> ClientBuilder
    where
        F: Fn(Socket, socketio_client_proto::ConnectError) + Send + Sync + 'static,
    {
        let handler: ConnectErrorHandler = Arc::new(handler);
        self.handlers.connect_error.push(handler);
        self
    }

    /// Calls `handler` for the connection's events (see [`Socket::on_manager`]).
    pub fn on_manager<F>(mut self, handler: F) -> ClientBuilder
    where
        F: Fn(ManagerEvent) + Send + Sync + 'static,
    {
        let handler: ManagerHandler = Arc::new(handler);
        self.manager.push(handler);
        self
    }

    /// Starts the client's task (on the current tokio runtime) and joins the URL's namespace;
    /// returns at once, as `io(url)` does: the socket connects in the background, and emits
    /// wait for it.
    ///
    /// # Errors
    /// [`Error`] when the URL cannot be read, or asks for TLS without the `tls` feature.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn connect(self) -> Result<Socket, Error> {
        let target = Target::parse(&self.url)?;
        #[cfg(not(feature = "tls"))]
        if target.tls {
            return Err(Error::TlsUnsupported);
        }
        #[cfg(feature = "tls")]
        let tls = if target.tls {
            let mut roots = tokio_rustls::rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            for cert in self.roots {
                roots
                    .add(cert)
                    .map_err(|e| Error::InvalidCertificate(e.to_string()))?;
            }
            let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
                tokio_rustls::rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::InvalidCertificate(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        let nsp = Str::from(target.nsp.as_str());
        let endpoint = Arc::new(Endpoint {
            target,
            headers: self.headers,
            max_incoming: self.config.max_incoming,
            #[cfg(feature = "tls")]
            tls,
        });
        let mut seed = [0u8; 8];
        // A fixed seed only makes the reconnection delays of several clients alike.
        let _ = getrandom::fill(&mut seed);
        let mut inner = Inner {
            core: Client::new(self.config, u64::from_le_bytes(seed)),
            handlers: Default::default(),
            manager: self.manager,
            acks: Default::default(),
            recovered: Default::default(),
            closed: false,
        };
        inner.handlers.insert(nsp.clone(), self.handlers);
        let shared = Shared::new(inner);
        let socket = Socket {
            shared: shared.clone(),
            nsp,
        };
        socket.connect_inner(self.auth.and_then(auth_object))?;
        tokio::spawn(crate::driver::run(shared, endpoint));
        Ok(socket)
    }
}
