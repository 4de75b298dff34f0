//! Small types shared by the endpoint and the connections.

use bytes::Bytes;
use engineio_packet::{Data, Str};
use socketio_packet::{Packet, Payload, ProtocolVersion};

use crate::config::Parser;

/// Identifies one HTTP request or WebSocket, chosen by the binding.
///
/// A WebSocket keeps the id of the request that opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Identifies one connection (one Engine.IO session) within an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle(pub u64);

/// A map keyed by [`ConnectionHandle`], with a hash of one multiplication.
///
/// Handles are numbered by the endpoint, never chosen by a peer, so they
/// need no keyed hash against flooding; a broadcast looks one up per
/// recipient, where SipHash would cost more than the lookup.
pub type HandleMap<V> =
    std::collections::HashMap<ConnectionHandle, V, std::hash::BuildHasherDefault<HandleHasher>>;

/// The hasher of [`HandleMap`]: Fibonacci hashing of the handle's number.
#[derive(Debug, Default, Clone, Copy)]
pub struct HandleHasher(u64);

impl std::hash::Hasher for HandleHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Which transport a session currently uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl TransportKind {
    /// The name used on the wire (`polling`, `websocket`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::WebSocket => "websocket",
        }
    }
}

/// Something for the binding to do with a WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Send this frame on that WebSocket.
    Frame {
        /// The WebSocket.
        transport: RequestId,
        /// The frame: text or binary.
        frame: Data,
        /// Whether the frame may be compressed, when the WebSocket agreed on
        /// compression (permessage-deflate): false for a packet sent with
        /// compression turned off ([`Encoded::with_compress`]).
        compress: bool,
    },
    /// Close that WebSocket (after every frame returned before for it).
    Close {
        /// The WebSocket.
        transport: RequestId,
    },
}

/// Why a socket or a connection went away, with the reference's exact wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The connection broke (a transport or protocol failure).
    TransportError,
    /// The client closed the connection, or its transport closed.
    TransportClose,
    /// The server closed the connection.
    ForcedClose,
    /// The client answered no ping in time.
    PingTimeout,
    /// The client sent a packet that could not be decoded.
    ParseError,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The server closed the connection through the socket.
    ForcedServerClose,
    /// The client left the namespace.
    ClientNamespaceDisconnect,
    /// The server made the socket leave the namespace.
    ServerNamespaceDisconnect,
}

impl DisconnectReason {
    /// The reason as the reference names it (`"ping timeout"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ForcedServerClose => "forced server close",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
        }
    }
}

impl DisconnectReason {
    /// Whether a socket that leaves for this reason keeps its session for
    /// recovery: a transport that failed or closed, a ping timeout, a
    /// protocol error, the server shutting down. Not a disconnection the
    /// client or the application asked for, nor a connection the
    /// application closed ("forced server close": the reference lists it,
    /// but there its sockets leave with "server namespace disconnect" first,
    /// so that a client the application kicked out does not come back in
    /// its session), nor a parse error.
    pub fn keeps_session(self) -> bool {
        matches!(
            self,
            DisconnectReason::TransportError
                | DisconnectReason::TransportClose
                | DisconnectReason::ForcedClose
                | DisconnectReason::PingTimeout
                | DisconnectReason::ServerShuttingDown
        )
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Socket.IO packet encoded once, ready to be written to any number of
/// connections: with the default parser, the text message (with its
/// Engine.IO `4` prefix) and the binary attachments that follow it; with
/// the msgpack parser, one binary message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// `4` followed by the Socket.IO packet's text form; empty with the
    /// msgpack parser.
    pub(crate) text: Str,
    /// The attachments, in order; with the msgpack parser, the one binary
    /// message.
    pub(crate) attachments: Vec<Bytes>,
    /// Whether its frames may be compressed.
    pub(crate) compress: bool,
    /// Whether it is one msgpack message (no text message).
    pub(crate) msgpack: bool,
}

impl Encoded {
    /// Encodes `packet` for clients speaking `version`, with the default
    /// (text) parser.
    pub fn new(packet: &Packet, version: ProtocolVersion) -> Encoded {
        // Exactly sized, the buffer becomes the `Str`'s with no other
        // allocation.
        let mut out = Vec::with_capacity(1 + packet.encoded_len(version));
        out.push(b'4');
        packet.encode_into(version, &mut out);
        Encoded {
            // The packet encoder writes UTF-8 text.
            text: Str::try_from(Bytes::from(out)).unwrap_or_default(),
            attachments: packet.attachments().to_vec(),
            compress: true,
            msgpack: false,
        }
    }

    /// Encodes the event [`Packet::event`] makes of `nsp`, `name` and `args`
    /// (with no ack id) for the default parser, straight from `args`: what
    /// [`Encoded::new`] makes of that packet, with no packet in between and
    /// one buffer (events are written alike for both protocol versions).
    ///
    /// # Errors
    ///
    /// As [`Packet::event`].
    pub fn event<T: serde::Serialize + ?Sized>(
        nsp: &str,
        name: &str,
        args: &T,
    ) -> Result<Encoded, socketio_packet::EncodeError> {
        let (text, attachments) = socketio_packet::encode_event("4", nsp, name, args, None)?;
        Ok(Encoded {
            text,
            attachments,
            compress: true,
            msgpack: false,
        })
    }

    /// Encodes `packet` for clients speaking `version` with `parser`: the
    /// server's [`Config::parser`](crate::Config::parser), so that every
    /// client of the server reads it.
    pub fn with_parser(packet: &Packet, version: ProtocolVersion, parser: Parser) -> Encoded {
        match parser {
            Parser::Msgpack => Encoded {
                text: Str::default(),
                attachments: vec![socketio_packet::msgpack::encode(packet)],
                compress: true,
                msgpack: true,
            },
            _ => Encoded::new(packet, version),
        }
    }

    /// Whether it is one msgpack message rather than a text message and
    /// its attachments.
    pub fn is_msgpack(&self) -> bool {
        self.msgpack
    }

    /// Whether the packet's WebSocket frames may be compressed (the
    /// reference's `compress` flag, true unless turned off): a transport
    /// that agreed on compression compresses them when they are large
    /// enough. Long-polling responses are compressed as a whole, whatever
    /// the flag.
    pub fn with_compress(mut self, compress: bool) -> Encoded {
        self.compress = compress;
        self
    }

    /// Whether the packet's WebSocket frames may be compressed.
    pub fn compress(&self) -> bool {
        self.compress
    }

    /// The Engine.IO message text (`42["event",1]`); empty for a msgpack
    /// message.
    pub fn text(&self) -> &Str {
        &self.text
    }

    /// The binary attachments; for a msgpack message, the message.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// Bytes this packet takes in a send buffer.
    pub fn size(&self) -> usize {
        self.text.len() + self.attachments.iter().map(Bytes::len).sum::<usize>()
    }
}

/// An event received from a client.
#[derive(Debug, Clone)]
pub struct EventMessage {
    /// The namespace.
    pub nsp: Str,
    /// The socket's id.
    pub sid: Str,
    /// The event name.
    pub name: Str,
    /// The whole payload: the JSON array (event name first) and the attachments.
    pub data: Payload,
    /// The id to answer with an ack, when the client asked for one.
    pub ack_id: Option<u64>,
}

impl EventMessage {
    /// The arguments after the event name, typed.
    ///
    /// # Errors
    ///
    /// [`DataError`](socketio_packet::DataError) when the arguments do not
    /// match `T`.
    pub fn args<T: serde::de::DeserializeOwned>(&self) -> Result<T, socketio_packet::DataError> {
        self.data.args(1)
    }

    /// The EVENT packet the message came in.
    pub fn packet(&self) -> Packet {
        Packet {
            nsp: self.nsp.clone(),
            kind: socketio_packet::PacketKind::Event {
                name: self.name.clone(),
                data: self.data.clone(),
                id: self.ack_id,
            },
        }
    }
}

/// What the application learns from a connection.
#[derive(Debug, Clone)]
pub enum Event {
    /// The client asks to join a namespace. Answer with
    /// [`Connection::accept`](crate::Connection::accept) or
    /// [`Connection::reject`](crate::Connection::reject).
    ConnectRequest {
        /// The namespace, without any query.
        nsp: Str,
        /// The auth payload (v5), if any.
        auth: Option<Payload>,
        /// The query of the namespace (Socket.IO v4 clients send their auth there).
        query: Option<Str>,
        /// The session the client asks to recover (its auth's `pid` and
        /// `offset`), when recovery is on: try
        /// [`Endpoint::restore`](crate::Endpoint::restore), then answer with
        /// [`Connection::accept_restored`](crate::Connection::accept_restored).
        resume: Option<Resume>,
    },
    /// A socket joined a namespace (after an accept).
    Connected {
        /// The namespace.
        nsp: Str,
        /// The new socket's id.
        sid: Str,
    },
    /// An event from the client.
    Message(EventMessage),
    /// The client acknowledged an emit.
    Ack {
        /// The namespace.
        nsp: Str,
        /// The socket's id.
        sid: Str,
        /// The id returned by the emit.
        id: u64,
        /// The acknowledgement's arguments (a JSON array) and attachments.
        data: Payload,
    },
    /// No acknowledgement came before the emit's timeout.
    AckTimedOut {
        /// The namespace.
        nsp: Str,
        /// The socket's id.
        sid: Str,
        /// The id returned by the emit.
        id: u64,
    },
    /// A socket left its namespace.
    Disconnected {
        /// The namespace.
        nsp: Str,
        /// The socket's id.
        sid: Str,
        /// Why.
        reason: DisconnectReason,
    },
    /// The session moved from long-polling to WebSocket (the reference's
    /// `upgrade` event).
    Upgraded,
    /// A message, in an endpoint serving bare Engine.IO
    /// ([`Config::engine_only`](crate::Config::engine_only)).
    EngineMessage(Data),
    /// The client broke the protocol; the connection is closing.
    ProtocolError {
        /// What was wrong.
        error: String,
    },
    /// The connection (the Engine.IO session) is closed. Last event.
    Closed {
        /// Why.
        reason: DisconnectReason,
    },
}

/// What the endpoint must learn from a connection, to keep its indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointEvent {
    /// A socket joined a namespace.
    SocketConnected {
        /// The namespace.
        nsp: Str,
        /// The socket's id.
        sid: Str,
    },
    /// A recovered socket joined its namespace again, in its rooms
    /// ([`Connection::accept_restored`](crate::Connection::accept_restored)).
    SocketRestored {
        /// The namespace.
        nsp: Str,
        /// The socket's id (as before).
        sid: Str,
        /// Its rooms, its own id among them while it was in that room.
        rooms: Vec<Str>,
        /// The recovery store's sequence number of the first packet it was
        /// given back: from there on, it may not have them yet.
        since: u64,
    },
    /// A socket left its namespace.
    SocketDisconnected {
        /// The namespace.
        nsp: Str,
        /// The socket's id.
        sid: Str,
        /// The private session id under which the endpoint saves the
        /// session for recovery: present when recovery is on and the reason
        /// is one the reference keeps a session for
        /// ([`DisconnectReason::keeps_session`]).
        pid: Option<Str>,
    },
    /// The session is closed: forget it.
    Closed,
}

/// Why a command could not be carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No connected socket on that namespace.
    #[error("no socket connected on that namespace")]
    NotConnected,
    /// The connection is closed or closing.
    #[error("the connection is closed")]
    Closed,
    /// The send buffer was full: a volatile packet was dropped.
    #[error("the send buffer is full; the volatile packet was dropped")]
    Dropped,
    /// The send buffer went over its bound: the connection is closing.
    #[error("the send buffer is over its bound; the connection is closing")]
    BufferFull,
    /// Only an event can ask for an acknowledgement.
    #[error("only an event can ask for an acknowledgement")]
    NotAnEvent,
    /// No connect request is waiting for an answer on that namespace.
    #[error("no connect request is waiting on that namespace")]
    NoConnectRequest,
    /// A recovered session's missed packets do not fit in the send buffer
    /// beside what waits there; nothing was changed.
    #[error("the missed packets do not fit in the send buffer")]
    NoRoom,
}

/// The longest `pid` or offset a client may send back: longer ones are not
/// looked up.
const MAX_TOKEN_LEN: usize = 64;

/// What a client sent to recover its session: the `pid` and `offset` of its
/// CONNECT's auth object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The private session id the server gave.
    pub pid: Str,
    /// The offset of the last packet the client got; none when it got no
    /// stored packet in that session (the official client then sends no
    /// offset): every packet since the socket joined is replayed.
    pub offset: Option<Str>,
}

impl Resume {
    /// Reads `pid` and `offset` from a CONNECT's auth payload: both
    /// strings, or a `pid` without an offset (where the reference gives a
    /// new session, and the packets sent meanwhile are lost). Anything else
    /// is no request.
    pub fn from_auth(auth: &Payload) -> Option<Resume> {
        #[derive(serde::Deserialize)]
        struct Auth {
            pid: Option<serde_json::Value>,
            offset: Option<serde_json::Value>,
        }
        let auth: Auth = auth.deserialize().ok()?;
        let token = |v: Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= MAX_TOKEN_LEN => {
                Some(Str::from(s))
            }
            _ => None,
        };
        let offset = match auth.offset {
            None | Some(serde_json::Value::Null) => None,
            offset => Some(token(offset)?),
        };
        Some(Resume {
            pid: token(auth.pid)?,
            offset,
        })
    }
}

/// A collection that keeps the room its peak needed after it empties: a map
/// or a queue grown by a burst (a reconnect storm holds the sessions that
/// dropped beside those that came back) keeps its peak's size unless told.
pub(crate) trait Shrink {
    /// Its entries.
    fn entries(&self) -> usize;
    /// The entries it has room for.
    fn room(&self) -> usize;
    /// Keeps room for `n` entries at least, and gives the rest back.
    fn shrink_to_entries(&mut self, n: usize);
}

/// Room a collection keeps whatever it holds: below it, giving room back
/// costs more than it saves.
const KEPT_ROOM: usize = 64;

/// Gives back most of `c`'s room when it holds under a quarter of it: room
/// for twice its entries stays, so that a collection that grows and shrinks
/// around a size is never reallocated at every change (each shrink is paid by
/// the removals before it).
pub(crate) fn shrink<C: Shrink>(c: &mut C) {
    let (len, room) = (c.entries(), c.room());
    if room > KEPT_ROOM && len < room / 4 {
        c.shrink_to_entries((len * 2).max(KEPT_ROOM / 2));
    }
}

impl<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher> Shrink
    for std::collections::HashMap<K, V, S>
{
    fn entries(&self) -> usize {
        self.len()
    }
    fn room(&self) -> usize {
        self.capacity()
    }
    fn shrink_to_entries(&mut self, n: usize) {
        self.shrink_to(n);
    }
}

impl<T: Eq + std::hash::Hash, S: std::hash::BuildHasher> Shrink
    for std::collections::HashSet<T, S>
{
    fn entries(&self) -> usize {
        self.len()
    }
    fn room(&self) -> usize {
        self.capacity()
    }
    fn shrink_to_entries(&mut self, n: usize) {
        self.shrink_to(n);
    }
}

impl<T> Shrink for std::collections::VecDeque<T> {
    fn entries(&self) -> usize {
        self.len()
    }
    fn room(&self) -> usize {
        self.capacity()
    }
    fn shrink_to_entries(&mut self, n: usize) {
        self.shrink_to(n);
    }
}

#[cfg(test)]
mod tests {
    use super::{ConnectionHandle, HandleMap};
    use std::hash::BuildHasher;

    #[test]
    fn handle_hashes_spread_sequential_numbers() {
        let build = std::hash::BuildHasherDefault::<super::HandleHasher>::default();
        // hashbrown picks buckets by the low bits and tags by the top seven.
        let mut low = std::collections::HashSet::new();
        let mut top = std::collections::HashSet::new();
        for n in 0..1024u64 {
            let h = build.hash_one(ConnectionHandle(n));
            low.insert(h & 1023);
            top.insert(h >> 57);
        }
        assert_eq!(low.len(), 1024);
        assert_eq!(top.len(), 128);
        let map: HandleMap<u64> = (0..100).map(|n| (ConnectionHandle(n), n * 2)).collect();
        assert_eq!(map.get(&ConnectionHandle(42)), Some(&84));
    }

    #[test]
    fn an_event_encoded_straight_is_the_packets_encoding() {
        use super::Encoded;
        use socketio_packet::{Packet, ProtocolVersion};
        let bin = bytes::Bytes::from_static(b"\x00\x01");
        for nsp in ["/", "/chat"] {
            for version in [ProtocolVersion::V4, ProtocolVersion::V5] {
                let straight = Encoded::event(nsp, "echo", &(1, "two", &bin)).expect("encoded");
                let packet =
                    Packet::event(nsp.into(), "echo", &(1, "two", &bin), None).expect("a packet");
                assert_eq!(straight, Encoded::new(&packet, version));
                assert_eq!(straight.attachments, std::slice::from_ref(&bin));
            }
        }
        assert!(Encoded::event("chat", "echo", &1).is_err());
    }

    #[test]
    fn a_collection_emptied_after_a_burst_gives_its_room_back() {
        let mut map: std::collections::HashMap<u64, u64> = (0..10_000).map(|i| (i, i)).collect();
        let peak = map.capacity();
        // Half gone: the room stays (it may be needed again soon).
        assert!(peak < 20_000, "{peak}");
        map.retain(|k, _| *k < 5_000);
        super::shrink(&mut map);
        // (A map's room counts the slots its removals left, until it rehashes.)
        assert!(map.capacity() > peak / 2, "{} of {peak}", map.capacity());
        // Under a quarter: room for twice what is left.
        map.retain(|k, _| *k < 1_000);
        super::shrink(&mut map);
        assert!(
            map.capacity() >= 1_000 && map.capacity() <= peak / 4,
            "{}",
            map.capacity()
        );
        // Empty: a little room stays.
        map.clear();
        super::shrink(&mut map);
        assert!(map.capacity() <= 64, "{}", map.capacity());
        let mut queue: std::collections::VecDeque<u64> = (0..10_000).collect();
        queue.clear();
        super::shrink(&mut queue);
        assert!(queue.capacity() <= 64, "{}", queue.capacity());
    }
}
