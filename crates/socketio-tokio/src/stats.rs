//! The server's counters: what a metrics exporter or an admin dashboard
//! reads ([`SocketIo::stats`](crate::SocketIo::stats)). Plain atomics,
//! added to where things happen; nothing is kept per event.

use std::sync::atomic::{AtomicU64, Ordering};

use socketio_proto::{Counters, DisconnectReason, TransportKind};

/// Every [`DisconnectReason`], in the order of the counters by reason: the
/// seven a connection closes for, then the two only a socket leaves for.
pub const REASONS: [DisconnectReason; 9] = [
    DisconnectReason::TransportError,
    DisconnectReason::TransportClose,
    DisconnectReason::ForcedClose,
    DisconnectReason::PingTimeout,
    DisconnectReason::ParseError,
    DisconnectReason::ServerShuttingDown,
    DisconnectReason::ForcedServerClose,
    DisconnectReason::ClientNamespaceDisconnect,
    DisconnectReason::ServerNamespaceDisconnect,
];

/// The reasons a whole connection closes for (the others are a socket's).
const CONNECTION_REASONS: usize = 7;

fn reason_index(reason: DisconnectReason) -> usize {
    REASONS.iter().position(|r| *r == reason).unwrap_or(0)
}

/// Why a handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeRefusal {
    /// Its `Origin` is not allowed.
    Origin,
    /// The `allow_request` hook refused it.
    AllowRequest,
    /// The server holds as many sessions as it may (in all, or from that address).
    Capacity,
    /// The server is shutting down.
    ShuttingDown,
    /// A WebSocket opening handshake that breaks RFC 6455, or whose
    /// extensions cannot be accepted.
    WebSocket,
    /// An Engine.IO handshake the protocol refuses (unknown transport,
    /// unsupported version, bad method).
    Protocol,
}

impl HandshakeRefusal {
    /// Every reason, in the order of the counters.
    pub const ALL: [HandshakeRefusal; 6] = [
        HandshakeRefusal::Origin,
        HandshakeRefusal::AllowRequest,
        HandshakeRefusal::Capacity,
        HandshakeRefusal::ShuttingDown,
        HandshakeRefusal::WebSocket,
        HandshakeRefusal::Protocol,
    ];

    /// A short name, for labels.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeRefusal::Origin => "origin",
            HandshakeRefusal::AllowRequest => "allow_request",
            HandshakeRefusal::Capacity => "capacity",
            HandshakeRefusal::ShuttingDown => "shutting_down",
            HandshakeRefusal::WebSocket => "websocket_handshake",
            HandshakeRefusal::Protocol => "protocol",
        }
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    opened: [AtomicU64; 2],
    upgraded: AtomicU64,
    closed: [AtomicU64; REASONS.len()],
    sockets_connected: AtomicU64,
    sockets_disconnected: [AtomicU64; REASONS.len()],
    refused: [AtomicU64; HandshakeRefusal::ALL.len()],
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_out: AtomicU64,
    events_in: AtomicU64,
    broadcasts: AtomicU64,
    broadcast_recipients: AtomicU64,
    ack_timeouts: AtomicU64,
    upgrades_failed: AtomicU64,
    buffer_overflows: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn transport_index(transport: TransportKind) -> usize {
    match transport {
        TransportKind::Polling => 0,
        TransportKind::WebSocket => 1,
    }
}

impl Stats {
    pub(crate) fn opened(&self, transport: TransportKind) {
        add(&self.opened[transport_index(transport)], 1);
    }

    pub(crate) fn upgraded(&self) {
        add(&self.upgraded, 1);
    }

    pub(crate) fn closed(&self, reason: DisconnectReason) {
        add(&self.closed[reason_index(reason)], 1);
    }

    pub(crate) fn socket_connected(&self) {
        add(&self.sockets_connected, 1);
    }

    pub(crate) fn socket_disconnected(&self, reason: DisconnectReason) {
        add(&self.sockets_disconnected[reason_index(reason)], 1);
    }

    pub(crate) fn refused(&self, why: HandshakeRefusal) {
        let i = HandshakeRefusal::ALL
            .iter()
            .position(|r| *r == why)
            .unwrap_or(0);
        add(&self.refused[i], 1);
    }

    pub(crate) fn event_in(&self) {
        add(&self.events_in, 1);
    }

    pub(crate) fn broadcast(&self, recipients: usize) {
        add(&self.broadcasts, 1);
        add(&self.broadcast_recipients, recipients as u64);
    }

    pub(crate) fn ack_timeout(&self) {
        add(&self.ack_timeouts, 1);
    }

    /// Adds what a connection counted.
    pub(crate) fn connection(&self, c: Counters) {
        add(&self.packets_in, c.packets_in);
        add(&self.bytes_in, c.bytes_in);
        add(&self.packets_out, c.packets_out);
        add(&self.bytes_out, c.bytes_out);
        add(&self.upgrades_failed, c.upgrades_failed);
        add(&self.buffer_overflows, c.buffer_overflows);
    }

    pub(crate) fn snapshot(&self) -> ServerStats {
        let by_reason = |counters: &[AtomicU64; REASONS.len()]| -> Vec<(DisconnectReason, u64)> {
            REASONS
                .iter()
                .zip(counters)
                .map(|(r, c)| (*r, get(c)))
                .collect()
        };
        ServerStats {
            connections_opened_polling: get(&self.opened[0]),
            connections_opened_websocket: get(&self.opened[1]),
            upgrades: get(&self.upgraded),
            upgrades_failed: get(&self.upgrades_failed),
            connections_closed: by_reason(&self.closed)
                .into_iter()
                .take(CONNECTION_REASONS)
                .collect(),
            sockets_connected: get(&self.sockets_connected),
            sockets_disconnected: by_reason(&self.sockets_disconnected),
            handshakes_refused: HandshakeRefusal::ALL
                .iter()
                .zip(&self.refused)
                .map(|(r, c)| (*r, get(c)))
                .collect(),
            packets_in: get(&self.packets_in),
            bytes_in: get(&self.bytes_in),
            packets_out: get(&self.packets_out),
            bytes_out: get(&self.bytes_out),
            events_in: get(&self.events_in),
            broadcasts: get(&self.broadcasts),
            broadcast_recipients: get(&self.broadcast_recipients),
            ack_timeouts: get(&self.ack_timeouts),
            buffer_overflows: get(&self.buffer_overflows),
        }
    }
}

/// The server's counters since it started (all monotonic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Engine.IO sessions opened over long-polling.
    pub connections_opened_polling: u64,
    /// Engine.IO sessions opened directly over WebSocket.
    pub connections_opened_websocket: u64,
    /// Sessions upgraded from long-polling to WebSocket.
    pub upgrades: u64,
    /// Upgrades that did not complete.
    pub upgrades_failed: u64,
    /// Sessions closed, by reason.
    pub connections_closed: Vec<(DisconnectReason, u64)>,
    /// Sockets that joined a namespace.
    pub sockets_connected: u64,
    /// Sockets that left their namespace, by reason.
    pub sockets_disconnected: Vec<(DisconnectReason, u64)>,
    /// Handshakes refused, by reason.
    pub handshakes_refused: Vec<(HandshakeRefusal, u64)>,
    /// Engine.IO packets received.
    pub packets_in: u64,
    /// Bytes of the packets received.
    pub bytes_in: u64,
    /// Engine.IO packets sent.
    pub packets_out: u64,
    /// Bytes of the packets sent.
    pub bytes_out: u64,
    /// Socket.IO events received from clients.
    pub events_in: u64,
    /// Broadcasts emitted here (with or without acknowledgements; a dynamic
    /// namespace's to its children counts once) or received from the other
    /// nodes.
    pub broadcasts: u64,
    /// Connections the broadcasts were handed to on this node.
    pub broadcast_recipients: u64,
    /// Acknowledgements that did not come in time.
    pub ack_timeouts: u64,
    /// Times a connection's send buffer went over `max_buffer_size` (the
    /// connection was closed).
    pub buffer_overflows: u64,
}
