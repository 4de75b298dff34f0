//! The client's options, with the official client's defaults.

use std::time::Duration;

/// Which transports the client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transports {
    /// Open over HTTP long-polling, then upgrade to WebSocket when the server offers it
    /// (the official client's default).
    PollingThenWebSocket,
    /// HTTP long-polling only.
    Polling,
    /// WebSocket only, from the first request.
    WebSocket,
}

/// The options of a [`Client`](crate::Client), named after the official client's.
#[derive(Debug, Clone)]
pub struct Config {
    /// The path of the Engine.IO endpoint (`/socket.io/`).
    pub path: String,
    /// Query parameters added to every request, besides `EIO`, `transport` and `sid`.
    pub query: Vec<(String, String)>,
    /// The transports to use.
    pub transports: Transports,
    /// Whether the client reconnects after losing its connection (`true`).
    pub reconnection: bool,
    /// How many reconnection attempts before giving up (`u32::MAX`: unlimited).
    pub reconnection_attempts: u32,
    /// The delay before the first reconnection attempt (1 s), doubled at each attempt.
    pub reconnection_delay: Duration,
    /// The largest delay between two attempts (5 s).
    pub reconnection_delay_max: Duration,
    /// How much each delay is randomised, from 0 to 1 (0.5: a delay of 1 s is between 0.5 and 1.5 s).
    pub randomization_factor: f64,
    /// How long the client waits for a connection to open before it gives up on it (20 s).
    pub timeout: Duration,
    /// The largest polling response or WebSocket message the client reads (16 MiB);
    /// a larger one closes the connection with "transport error".
    pub max_incoming: usize,
    /// The most binary attachments a packet from the server may have (10, as the reference's parser).
    pub max_attachments: usize,
    /// The most bytes of emits the client keeps while it is not connected (1 MiB);
    /// an emit that would go over is refused with [`EmitError::BufferFull`](crate::EmitError::BufferFull).
    pub max_buffered: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            path: "/socket.io/".into(),
            query: Vec::new(),
            transports: Transports::PollingThenWebSocket,
            reconnection: true,
            reconnection_attempts: u32::MAX,
            reconnection_delay: Duration::from_secs(1),
            reconnection_delay_max: Duration::from_secs(5),
            randomization_factor: 0.5,
            timeout: Duration::from_secs(20),
            max_incoming: 16 << 20,
            max_attachments: socketio_packet::DEFAULT_MAX_ATTACHMENTS,
            max_buffered: 1 << 20,
        }
    }
}
