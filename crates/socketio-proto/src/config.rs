//! Server configuration, with the reference server's defaults.

use std::time::Duration;

/// The transports a session may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// HTTP long-polling.
    pub polling: bool,
    /// WebSocket.
    pub websocket: bool,
}

impl Default for Transports {
    fn default() -> Self {
        Transports {
            polling: true,
            websocket: true,
        }
    }
}

/// How Socket.IO packets are written in Engine.IO messages (the
/// reference's `parser` option).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Parser {
    /// The text format of `socket.io-parser`: a text message per packet,
    /// and a binary message per attachment.
    #[default]
    Default,
    /// The format of `socket.io-msgpack-parser`: every packet is one binary
    /// message, a msgpack map `{type, data, id?, nsp}` whose binary values
    /// are msgpack `bin`; a text message from a client is a protocol error.
    /// Clients must use the same parser (`parser: require("socket.io-msgpack-parser")`).
    Msgpack,
}

/// Configuration of a server: Engine.IO and Socket.IO options together.
///
/// Every default is the reference server's (`engine.io` 6 and `socket.io` 4).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The path of the endpoint, with a trailing slash (`/socket.io/`).
    pub path: String,
    /// How often the server pings (v4) or expects a ping (v3). Default 25 s.
    pub ping_interval: Duration,
    /// How long the server waits for a pong. Default 20 s.
    pub ping_timeout: Duration,
    /// How long a WebSocket upgrade may take. Default 10 s.
    pub upgrade_timeout: Duration,
    /// The largest HTTP body and WebSocket message accepted, in bytes. Default 1,000,000.
    pub max_payload: usize,
    /// How long a new connection has to join a namespace. Default 45 s.
    pub connect_timeout: Duration,
    /// The enabled transports.
    pub transports: Transports,
    /// Whether a polling session may upgrade to WebSocket. Default true.
    pub allow_upgrades: bool,
    /// Whether Engine.IO v3 (`EIO=3`, Socket.IO v2 clients) is served. Default false.
    pub allow_eio3: bool,
    /// The most binary attachments one packet may declare. Default 10.
    pub max_attachments: usize,
    /// The most bytes a connection may hold waiting to be sent. When a
    /// connection goes over it, volatile packets are dropped and other
    /// packets close the connection ("transport error"). Default 1 MiB.
    pub max_buffer_size: usize,
    /// The most packets one polling POST may carry. Default 10,000.
    pub max_packets_per_payload: usize,
    /// Serve bare Engine.IO: messages are not decoded as Socket.IO packets
    /// but reach the application as [`Event::EngineMessage`](crate::Event::EngineMessage),
    /// and [`Connection::send_message`](crate::Connection::send_message)
    /// sends them. There is no connect timeout. Default false.
    pub engine_only: bool,
    /// Connection state recovery (the reference's `connectionStateRecovery`):
    /// a socket that drops comes back with its id, rooms and data, and the
    /// packets it missed. Off by default, as in the reference.
    pub recovery: Option<Recovery>,
    /// How packets are written: [`Parser::Default`] (text, the reference's
    /// default) or [`Parser::Msgpack`].
    pub parser: Parser,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: "/socket.io/".to_owned(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            connect_timeout: Duration::from_millis(45_000),
            transports: Transports::default(),
            allow_upgrades: true,
            allow_eio3: false,
            max_attachments: 10,
            max_buffer_size: 1 << 20,
            max_packets_per_payload: 10_000,
            engine_only: false,
            recovery: None,
            parser: Parser::Default,
        }
    }
}

impl Config {
    /// Whether a request for `path` is served: the configured path, with or
    /// without its trailing slash, and everything below it.
    pub fn matches_path(&self, path: &str) -> bool {
        let base = self.path.trim_end_matches('/');
        path == base || path.starts_with(&self.path)
    }

    /// Sets [`Config::path`], adding the trailing slash if missing.
    pub fn with_path(mut self, path: &str) -> Self {
        let mut p = path.to_owned();
        if !p.ends_with('/') {
            p.push('/');
        }
        self.path = p;
        self
    }

    /// Sets [`Config::ping_interval`] and [`Config::ping_timeout`].
    pub fn with_heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.ping_interval = interval;
        self.ping_timeout = timeout;
        self
    }

    /// Sets [`Config::connect_timeout`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`Config::upgrade_timeout`].
    pub fn with_upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.upgrade_timeout = timeout;
        self
    }

    /// Sets [`Config::max_payload`].
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Sets [`Config::transports`].
    pub fn with_transports(mut self, transports: Transports) -> Self {
        self.transports = transports;
        self
    }

    /// Sets [`Config::allow_upgrades`].
    pub fn with_allow_upgrades(mut self, allow: bool) -> Self {
        self.allow_upgrades = allow;
        self
    }

    /// Sets [`Config::allow_eio3`].
    pub fn with_eio3(mut self, allow: bool) -> Self {
        self.allow_eio3 = allow;
        self
    }

    /// Sets [`Config::max_attachments`].
    pub fn with_max_attachments(mut self, max: usize) -> Self {
        self.max_attachments = max;
        self
    }

    /// Sets [`Config::engine_only`] (and the path to `/engine.io/` when on,
    /// as the reference Engine.IO server).
    pub fn with_engine_only(mut self, on: bool) -> Self {
        self.engine_only = on;
        if on {
            self.path = "/engine.io/".to_owned();
        }
        self
    }

    /// Sets [`Config::max_buffer_size`].
    pub fn with_max_buffer_size(mut self, bytes: usize) -> Self {
        self.max_buffer_size = bytes;
        self
    }

    /// Sets [`Config::parser`].
    pub fn with_parser(mut self, parser: Parser) -> Self {
        self.parser = parser;
        self
    }

    /// Sets [`Config::recovery`].
    pub fn with_recovery(mut self, recovery: Option<Recovery>) -> Self {
        self.recovery = recovery;
        self
    }
}

/// Options of connection state recovery, with the reference's names where
/// it has them (`connectionStateRecovery`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// How long a dropped socket's session is kept, and how long a packet is
    /// kept for it. Default 2 minutes (`maxDisconnectionDuration`).
    pub max_disconnection_duration: Duration,
    /// Whether a recovered socket skips the namespace's middlewares. Default
    /// true (`skipMiddlewares`).
    pub skip_middlewares: bool,
    /// The most packets kept in total. Default 100,000.
    pub max_packets: usize,
    /// The most bytes kept in total: packets (with a fixed overhead of
    /// [`PACKET_OVERHEAD`](crate::PACKET_OVERHEAD) each) and saved sessions. Default 64 MiB.
    pub max_bytes: usize,
    /// The most saved sessions. Default 100,000.
    pub max_sessions: usize,
    /// The most packets one session may have missed and still be recovered.
    /// Default 10,000.
    pub max_missed_packets: usize,
    /// The most bytes one session may have missed and still be recovered;
    /// never more than half the connection's send buffer
    /// ([`Config::max_buffer_size`](crate::Config::max_buffer_size)).
    /// Default 1 MiB.
    pub max_missed_bytes: usize,
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
            max_packets: 100_000,
            max_bytes: 64 << 20,
            max_sessions: 100_000,
            max_missed_packets: 10_000,
            max_missed_bytes: 1 << 20,
        }
    }
}

impl Recovery {
    /// Sets [`Recovery::max_disconnection_duration`].
    pub fn with_max_disconnection_duration(mut self, duration: Duration) -> Self {
        self.max_disconnection_duration = duration;
        self
    }

    /// Sets [`Recovery::skip_middlewares`].
    pub fn with_skip_middlewares(mut self, skip: bool) -> Self {
        self.skip_middlewares = skip;
        self
    }

    /// Sets [`Recovery::max_packets`] and [`Recovery::max_bytes`].
    pub fn with_store_bounds(mut self, packets: usize, bytes: usize) -> Self {
        self.max_packets = packets;
        self.max_bytes = bytes;
        self
    }

    /// Sets [`Recovery::max_sessions`].
    pub fn with_max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = sessions;
        self
    }

    /// Sets [`Recovery::max_missed_packets`] and [`Recovery::max_missed_bytes`].
    pub fn with_missed_bounds(mut self, packets: usize, bytes: usize) -> Self {
        self.max_missed_packets = packets;
        self.max_missed_bytes = bytes;
        self
    }
}
