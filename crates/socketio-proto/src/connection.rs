//! One Engine.IO session and the Socket.IO sockets it carries.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use engineio_packet::{
    Data, HandshakeRef, Packet as EioPacket, ProtocolVersion as EioVersion, Str,
};
use socketio_packet::{Decoder, Packet, PacketKind, Payload, ProtocolVersion};

use crate::config::{Config, Parser};
use crate::http::{ContentType, HttpError, Method, Request, Response};
use crate::ids::IdStream;
use crate::recovery::Restored;
use crate::types::{
    DisconnectReason, Encoded, EndpointEvent, Event, EventMessage, RequestId, Resume, SendError,
    Transmit, TransportKind,
};

/// How long a closing polling session waits for the GET that takes its
/// last packets (the reference's `closeTimeout`).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// One packet waiting in the send buffer.
#[derive(Debug, Clone)]
enum Out {
    /// The open packet, written from the connection's id and settings
    /// ([`Connection::open_fields`]) as it goes out.
    Open,
    /// A control packet (ping, pong, noop, close).
    Control(EioPacket),
    /// A text message, with its leading `4`, and whether it may be compressed.
    Text(Str, bool),
    /// A binary message, and whether it may be compressed.
    Binary(Bytes, bool),
}

/// What happened on a connection that a server counts: Engine.IO packets
/// and their bytes (a message's bytes are its data's; any other packet
/// counts one byte), failed upgrades, send buffer overflows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Packets received.
    pub packets_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Upgrades to WebSocket that did not complete (timed out, or the probe
    /// went wrong).
    pub upgrades_failed: u64,
    /// Times the send buffer went over `max_buffer_size` (the connection
    /// then closes).
    pub buffer_overflows: u64,
}

impl std::ops::AddAssign for Counters {
    /// Adds `other`'s counts to these (as a binding sums several
    /// connections' before adding them to its server's).
    fn add_assign(&mut self, other: Counters) {
        self.packets_in += other.packets_in;
        self.bytes_in += other.bytes_in;
        self.packets_out += other.packets_out;
        self.bytes_out += other.bytes_out;
        self.upgrades_failed += other.upgrades_failed;
        self.buffer_overflows += other.buffer_overflows;
    }
}

/// [`Counters`] as a connection keeps them between two takes, in 32 bits
/// (saturating: a binding takes them at every step).
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    packets_in: u32,
    bytes_in: u32,
    packets_out: u32,
    bytes_out: u32,
    upgrades_failed: u16,
    buffer_overflows: u16,
}

fn add32(counter: &mut u32, n: usize) {
    *counter = counter.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
}

impl Tally {
    fn sent(&mut self, out: &Out) {
        add32(&mut self.packets_out, 1);
        add32(&mut self.bytes_out, out.size());
    }

    fn received(&mut self, bytes: usize) {
        add32(&mut self.packets_in, 1);
        add32(&mut self.bytes_in, bytes);
    }

    fn upgrade_failed(&mut self) {
        self.upgrades_failed = self.upgrades_failed.saturating_add(1);
    }

    fn overflow(&mut self) {
        self.buffer_overflows = self.buffer_overflows.saturating_add(1);
    }
}

/// The answer to a v5 CONNECT for the default parser, as text straight
/// (`40[<nsp>,]{"sid":"<sid>"[,"pid":"<pid>"]}` after Engine.IO's `4`):
/// what encoding the packet writes, when the ids need no JSON escape (the
/// ids this server makes never do; `None` otherwise).
fn connect_answer(nsp: &str, sid: &str, pid: Option<&str>) -> Option<Encoded> {
    const SID: &str = "{\"sid\":\"";
    const PID: &str = "\",\"pid\":\"";
    const END: &str = "\"}";
    use crate::ids::url_safe;
    if !url_safe(sid) || !pid.is_none_or(url_safe) || nsp.contains(',') {
        return None;
    }
    let with_nsp = !nsp.is_empty() && nsp != "/";
    let len = 2
        + if with_nsp { nsp.len() + 1 } else { 0 }
        + SID.len()
        + sid.len()
        + pid.map_or(0, |pid| PID.len() + pid.len())
        + END.len();
    let mut text = String::with_capacity(len);
    text.push_str("40");
    if with_nsp {
        text.push_str(nsp);
        text.push(',');
    }
    text.push_str(SID);
    text.push_str(sid);
    if let Some(pid) = pid {
        text.push_str(PID);
        text.push_str(pid);
    }
    text.push_str(END);
    debug_assert_eq!(text.len(), len);
    Some(Encoded {
        text: Str::from(text),
        attachments: Vec::new(),
        compress: true,
        msgpack: false,
    })
}

impl Out {
    fn size(&self) -> usize {
        match self {
            Out::Open | Out::Control(_) => 1,
            Out::Text(s, _) => s.len(),
            Out::Binary(b, _) => b.len(),
        }
    }

    /// The packet, for a connection whose open packet's fields are `open`.
    fn into_packet(self, open: HandshakeRef<'_>) -> EioPacket {
        match self {
            Out::Open => EioPacket::Open(open.into()),
            Out::Control(p) => p,
            Out::Text(s, _) => EioPacket::Message(Data::Text(s.slice_ref(&s[1..]))),
            Out::Binary(b, _) => EioPacket::Message(Data::Binary(b)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Draining the buffer before closing ("forced close" and friends).
    Closing(DisconnectReason),
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Upgrade {
    #[default]
    None,
    /// A WebSocket opened for this session; waiting for `2probe`.
    Opened { ws: RequestId },
    /// `3probe` sent; waiting for `5`.
    Probed { ws: RequestId },
}

#[derive(Debug)]
struct Socket {
    nsp: Str,
    sid: Str,
    /// Boxed, and made at the socket's first emit with an ack: most sockets
    /// never ask for one, and every socket is kept for its life.
    acks: Option<Box<Acks>>,
    /// The private session id, when recovery is on (Socket.IO v5 only);
    /// boxed, as it is read only when the socket leaves.
    pid: Option<Box<str>>,
}

/// The acks a socket waits for, and the id of the next.
#[derive(Debug, Default)]
struct Acks {
    /// Id and deadline of each ack this server waits for.
    pending: Vec<(u64, Instant)>,
    next_id: u64,
}

#[derive(Debug)]
enum Transport {
    /// The GET held until there is something to send is
    /// [`Rare::pending_get`].
    Polling {
        /// Engine.IO v3 only: the client reads binary payloads.
        binary: bool,
        /// JSONP polling: every answer is wrapped in a call of the callback
        /// the handshake's `j` names (read from the handshake query when
        /// needed, so that no session carries it).
        jsonp: bool,
    },
    WebSocket(RequestId),
}

/// What only some sessions use, or use for a while: the polling
/// transport's held GET and its answers, an upgrade under way, connect
/// requests awaiting the application, the connect and close deadlines,
/// frames for a WebSocket other than the transport, news for the endpoint.
///
/// Made on first use and dropped once it holds nothing on a WebSocket
/// session (see [`Connection::tidy`]), so that an idle WebSocket session
/// keeps none of it; a polling session keeps it, as every poll uses it.
/// Nothing in it is touched by a message in or a packet out on a
/// WebSocket.
#[derive(Debug, Default)]
struct Rare {
    /// The GET held until there is something to send (polling only).
    pending_get: Option<RequestId>,
    upgrade: Upgrade,
    upgrade_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
    connect_deadline: Option<Instant>,
    /// Namespaces whose connect request awaits the application's answer.
    pending_connects: Vec<Str>,
    /// Frames for a WebSocket other than the session's transport (the
    /// probe), and the transport's last frames and close.
    side: VecDeque<Transmit>,
    responses: VecDeque<(RequestId, Response)>,
    endpoint_events: VecDeque<EndpointEvent>,
}

impl Rare {
    /// Whether it holds nothing that a WebSocket session must keep.
    fn is_empty(&self) -> bool {
        self.pending_get.is_none()
            && self.upgrade == Upgrade::None
            && self.upgrade_deadline.is_none()
            && self.close_deadline.is_none()
            && self.connect_deadline.is_none()
            && self.pending_connects.is_empty()
            && self.side.is_empty()
            && self.responses.is_empty()
            && self.endpoint_events.is_empty()
    }
}

/// One Engine.IO session and its Socket.IO sockets: the per-connection half
/// of the server.
///
/// Methods come in four kinds:
/// - getters (`&self`);
/// - `handle_*`: input from the network and the clock, `now` first;
/// - commands from the application: [`accept`](Connection::accept),
///   [`reject`](Connection::reject), [`emit`](Connection::emit),
///   [`emit_with_ack`](Connection::emit_with_ack), [`ack`](Connection::ack),
///   [`send_encoded`](Connection::send_encoded),
///   [`send_encoded_now`](Connection::send_encoded_now),
///   [`disconnect`](Connection::disconnect), [`close`](Connection::close);
/// - `poll_*`: output. After any input or command, drain
///   [`poll_response`](Connection::poll_response),
///   [`poll_transmit`](Connection::poll_transmit),
///   [`poll_endpoint_event`](Connection::poll_endpoint_event) and
///   [`poll_event`](Connection::poll_event), then arm a timer for
///   [`poll_timeout`](Connection::poll_timeout).
#[derive(Debug)]
pub struct Connection {
    /// What the binding counts, since it last took it (taken at every
    /// step of the binding: small counts, kept small).
    counters: Tally,
    config: Arc<Config>,
    sid: Str,
    eio: EioVersion,
    sio: ProtocolVersion,
    state: State,
    transport: Transport,
    buffer: VecDeque<Out>,
    buffered_bytes: usize,
    events: VecDeque<Event>,
    /// The heartbeat's next deadline: when the server pings (v4), or, when
    /// `pong_due`, when the session ends for want of the client's answer
    /// (v4) or ping (v3). One field, as a session waits for one of the two
    /// at a time.
    heartbeat: Option<Instant>,
    /// Whether `heartbeat` is the deadline of a pong (v4) or a ping (v3).
    pong_due: bool,
    /// The decoder of a binary packet awaiting its attachments; between
    /// packets there is none (a decoder holds no other state).
    decoder: Option<Box<Decoder>>,
    sockets: Vec<Socket>,
    ids: IdStream,
    /// Kept for the life of the session and never extended: no spare room.
    handshake_query: Box<str>,
    /// What only some sessions use (see [`Rare`]); none on an idle
    /// WebSocket session.
    rare: Option<Box<Rare>>,
}

/// What opened the session.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Opening {
    Polling {
        request: RequestId,
        binary: bool,
        jsonp: bool,
    },
    WebSocket {
        ws: RequestId,
    },
}

impl Connection {
    pub(crate) fn new(
        now: Instant,
        config: Arc<Config>,
        sid: Str,
        eio: EioVersion,
        opening: Opening,
        ids: IdStream,
        handshake_query: String,
    ) -> Connection {
        let sio = match eio {
            EioVersion::V3 => ProtocolVersion::V4,
            EioVersion::V4 => ProtocolVersion::V5,
        };
        let (transport, first_request) = match opening {
            Opening::Polling {
                request,
                binary,
                jsonp,
            } => (
                Transport::Polling {
                    // A JSONP answer is text: binaries go as base64.
                    binary: binary && !jsonp,
                    jsonp,
                },
                Some(request),
            ),
            Opening::WebSocket { ws } => (Transport::WebSocket(ws), None),
        };
        let mut conn = Connection {
            decoder: None,
            sid,
            eio,
            sio,
            state: State::Open,
            transport,
            buffer: VecDeque::new(),
            buffered_bytes: 0,
            counters: Tally::default(),
            events: VecDeque::new(),
            heartbeat: None,
            pong_due: false,
            sockets: Vec::new(),
            rare: None,
            ids,
            config,
            handshake_query: handshake_query.into_boxed_str(),
        };
        if !conn.config.engine_only {
            conn.rare().connect_deadline = Some(now + conn.config.connect_timeout);
        }
        push_back(&mut conn.buffer, Out::Open);
        match eio {
            // v4: the server pings, first one interval after the handshake.
            EioVersion::V4 => conn.set_next_ping(now + conn.config.ping_interval),
            // v3: the client pings; the server waits interval + timeout.
            EioVersion::V3 => {
                conn.set_pong_deadline(now + conn.config.ping_interval + conn.config.ping_timeout)
            }
        }
        if let Some(request) = first_request {
            // The handshake GET is answered at once with the open packet.
            conn.set_pending_get(request);
            conn.flush_polling();
        }
        if eio == EioVersion::V3 && !conn.config.engine_only {
            // Socket.IO v4: the server connects the client to `/` at once.
            conn.rare().pending_connects.push(Str::from_static("/"));
            push_back(
                &mut conn.events,
                Event::ConnectRequest {
                    nsp: Str::from_static("/"),
                    auth: None,
                    query: None,
                    resume: None,
                },
            );
        }
        conn
    }

    // ----- getters -----

    /// The Engine.IO session id.
    pub fn sid(&self) -> &Str {
        &self.sid
    }

    /// The query string of the request that opened the session (what the
    /// reference calls `handshake.query`).
    pub fn handshake_query(&self) -> &str {
        &self.handshake_query
    }

    /// The Engine.IO protocol version the client speaks.
    pub fn engine_version(&self) -> EioVersion {
        self.eio
    }

    /// The Socket.IO protocol version the client speaks.
    pub fn socket_version(&self) -> ProtocolVersion {
        self.sio
    }

    /// The transport in use.
    pub fn transport(&self) -> TransportKind {
        match self.transport {
            Transport::Polling { .. } => TransportKind::Polling,
            Transport::WebSocket(_) => TransportKind::WebSocket,
        }
    }

    /// Whether the session is closed (nothing more will come out but what
    /// is already queued).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The socket id on `nsp`, if a socket is connected there.
    pub fn socket_id(&self, nsp: &str) -> Option<&Str> {
        self.sockets.iter().find(|s| &*s.nsp == nsp).map(|s| &s.sid)
    }

    /// The connected sockets: namespace and socket id.
    pub fn sockets(&self) -> impl Iterator<Item = (&Str, &Str)> {
        self.sockets.iter().map(|s| (&s.nsp, &s.sid))
    }

    /// Bytes waiting in the send buffer.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    // ----- input -----

    /// Handles an HTTP request (or WebSocket upgrade request) routed to this
    /// session by [`Endpoint::handle_request`](crate::Endpoint::handle_request).
    ///
    /// The answer comes out of [`poll_response`](Connection::poll_response),
    /// at once or, for a long-polling GET, when there is something to send.
    /// For a WebSocket request, the socket keeps `id`: frames for it come out
    /// of [`poll_transmit`](Connection::poll_transmit).
    pub fn handle_request(&mut self, now: Instant, id: RequestId, req: Request) {
        if req.websocket {
            self.handle_ws_open(now, id);
            return;
        }
        if self.state == State::Closed {
            self.respond(id, Response::error(HttpError::UnknownSid));
            return;
        }
        let Transport::Polling { .. } = self.transport else {
            // Upgraded: polling requests no longer belong to this session.
            self.respond(id, Response::error(HttpError::BadRequest));
            return;
        };
        match req.method {
            Method::Get => {
                if self.pending_get().is_some() {
                    // Overlapping polls: the pending one gets a close
                    // packet, this one a 400, and the session ends.
                    self.respond(id, Response::bad_request());
                    self.close_now(DisconnectReason::TransportError, true);
                    return;
                }
                self.set_pending_get(id);
                if self.upgrade() != Upgrade::None && self.buffer.is_empty() {
                    // An upgrade is under way: let the poll return.
                    push_back(&mut self.buffer, Out::Control(EioPacket::Noop));
                }
                self.flush_polling();
            }
            Method::Post => self.handle_post(now, id, req),
            // The reference's polling transport answers other methods with
            // a bare 500 and keeps the session.
            _ => self.respond(
                id,
                Response {
                    status: 500,
                    ..Response::bad_request()
                },
            ),
        }
    }

    fn handle_post(&mut self, now: Instant, id: RequestId, req: Request) {
        if req.body_too_large || req.body.len() > self.config.max_payload {
            self.respond(id, Response::payload_too_large());
            self.close_now(DisconnectReason::TransportError, true);
            return;
        }
        let binary_body = req
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("application/octet-stream"));
        let max = self.config.max_packets_per_payload;
        let body = match &self.transport {
            Transport::Polling { jsonp: true, .. } if !binary_body => {
                match crate::jsonp::decode_form(&req.body) {
                    Ok(payload) => Bytes::from(payload),
                    Err(_) => {
                        // The reference reads nothing from a form without
                        // one `d` field, and answers `ok`.
                        self.respond(id, Response::ok());
                        return;
                    }
                }
            }
            _ => req.body,
        };
        let decoded = match (self.eio, binary_body) {
            (EioVersion::V4, true) => {
                self.respond(id, Response::bad_request());
                self.close_now(DisconnectReason::TransportError, true);
                return;
            }
            // A body of one packet, as most are, decoded with no list.
            (EioVersion::V4, false) => {
                match engineio_packet::payload::v4::decode_single(&body, max) {
                    Some(one) => one.map(|packet| (Some(packet), Vec::new())),
                    None => engineio_packet::payload::v4::decode(body, max).map(|all| (None, all)),
                }
            }
            (EioVersion::V3, false) => {
                engineio_packet::payload::v3::decode_text(body, max).map(|all| (None, all))
            }
            (EioVersion::V3, true) => {
                engineio_packet::payload::v3::decode_binary(body, max).map(|all| (None, all))
            }
        };
        match decoded {
            Ok((one, all)) => {
                self.respond(id, Response::ok());
                for packet in one.into_iter().chain(all) {
                    if self.state != State::Open {
                        break;
                    }
                    self.on_engine_packet(now, packet);
                }
            }
            Err(_) => {
                // The reference never answers `ok` to a bad payload: closing
                // the session destroys the POST's connection. A 400 tells the
                // client the same thing without cutting a keep-alive
                // connection other requests may share.
                self.respond(id, Response::bad_request());
                self.close_now(DisconnectReason::ParseError, true);
            }
        }
    }

    fn handle_ws_open(&mut self, now: Instant, ws: RequestId) {
        let refuse = self.state != State::Open
            || self.upgrade() != Upgrade::None
            || !matches!(self.transport, Transport::Polling { .. })
            || !self.config.allow_upgrades;
        if refuse {
            self.rare()
                .side
                .push_back(Transmit::Close { transport: ws });
            return;
        }
        let deadline = now + self.config.upgrade_timeout;
        let rare = self.rare();
        rare.upgrade = Upgrade::Opened { ws };
        rare.upgrade_deadline = Some(deadline);
    }

    /// Handles a frame received on a WebSocket of this session.
    pub fn handle_frame(&mut self, now: Instant, ws: RequestId, frame: Data) {
        if self.state == State::Closed {
            return;
        }
        let len = match &frame {
            Data::Text(s) => s.len(),
            Data::Binary(b) => b.len(),
        };
        if len > self.config.max_payload {
            if matches!(self.upgrade(), Upgrade::Opened { ws: p } | Upgrade::Probed { ws: p } if p == ws)
            {
                self.counters.upgrade_failed();
                self.end_upgrade();
                self.rare()
                    .side
                    .push_back(Transmit::Close { transport: ws });
            } else if matches!(self.transport, Transport::WebSocket(t) if t == ws) {
                self.close_now(DisconnectReason::TransportError, true);
            }
            return;
        }
        let decoded = match frame {
            Data::Text(s) => EioPacket::decode_text(s, self.eio),
            Data::Binary(b) => EioPacket::decode_binary(b, self.eio),
        };
        match self.upgrade() {
            Upgrade::Opened { ws: probe } | Upgrade::Probed { ws: probe } if probe == ws => {
                self.on_probe_packet(ws, decoded.ok());
                return;
            }
            _ => {}
        }
        if !matches!(self.transport, Transport::WebSocket(t) if t == ws) {
            // A frame from a WebSocket this session no longer uses.
            return;
        }
        match decoded {
            Ok(packet) => self.on_engine_packet(now, packet),
            Err(_) => self.close_now(DisconnectReason::ParseError, true),
        }
    }

    fn on_probe_packet(&mut self, ws: RequestId, packet: Option<EioPacket>) {
        match (self.upgrade(), packet) {
            (Upgrade::Opened { .. }, Some(EioPacket::Ping(data))) if &*data == "probe" => {
                let frame = EioPacket::Pong(Str::from_static("probe")).to_ws_frame(self.eio);
                let rare = self.rare();
                rare.side.push_back(Transmit::Frame {
                    transport: ws,
                    frame,
                    compress: true,
                });
                rare.upgrade = Upgrade::Probed { ws };
                // Let a pending poll return so that the client can go on.
                if self.pending_get().is_some() {
                    if self.buffer.is_empty() {
                        push_back(&mut self.buffer, Out::Control(EioPacket::Noop));
                    }
                    self.flush_polling();
                }
            }
            (Upgrade::Probed { .. }, Some(EioPacket::Ping(data))) if &*data == "probe" => {
                // The reference answers every probe.
                let frame = EioPacket::Pong(Str::from_static("probe")).to_ws_frame(self.eio);
                self.rare().side.push_back(Transmit::Frame {
                    transport: ws,
                    frame,
                    compress: true,
                });
            }
            (Upgrade::Probed { .. }, Some(EioPacket::Upgrade)) => {
                // Switch: the pending poll gets a noop, the buffer moves to
                // the WebSocket.
                if let Some(get) = self.take_pending_get() {
                    let body = self.encode_payload(&[Out::Control(EioPacket::Noop)]);
                    self.respond(get, body);
                }
                self.transport = Transport::WebSocket(ws);
                self.end_upgrade();
                push_back(&mut self.events, Event::Upgraded);
            }
            _ => {
                // Anything else during the probe closes the new transport.
                self.counters.upgrade_failed();
                self.end_upgrade();
                self.rare()
                    .side
                    .push_back(Transmit::Close { transport: ws });
            }
        }
    }

    /// Handles the end of a WebSocket or of a held request: the peer went
    /// away, or the binding's I/O failed (`error` true).
    pub fn handle_transport_closed(&mut self, _now: Instant, id: RequestId, error: bool) {
        match self.upgrade() {
            Upgrade::Opened { ws } | Upgrade::Probed { ws } if ws == id => {
                self.counters.upgrade_failed();
                self.end_upgrade();
                self.tidy();
                return;
            }
            _ => {}
        }
        if self.state == State::Closed {
            return;
        }
        match self.transport {
            Transport::WebSocket(ws) if ws == id => {
                let reason = if error {
                    DisconnectReason::TransportError
                } else {
                    DisconnectReason::TransportClose
                };
                self.close_now(reason, false);
            }
            Transport::Polling { .. } if self.pending_get() == Some(id) => {
                // The poll's connection closed before its answer: the
                // reference calls that a transport error.
                self.take_pending_get();
                self.close_now(DisconnectReason::TransportError, false);
            }
            _ => {}
        }
    }

    /// Handles the passing of time: heartbeats, the upgrade, connect and ack
    /// timeouts. Calling it early or twice does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        let close_deadline = self.rare.as_deref().and_then(|r| r.close_deadline);
        if close_deadline.is_some_and(|d| d <= now) {
            let reason = match self.state {
                State::Closing(r) => r,
                _ => DisconnectReason::ForcedClose,
            };
            self.finish_close(reason, false);
            return;
        }
        if self.pong_deadline().is_some_and(|d| d <= now) {
            self.close_now(DisconnectReason::PingTimeout, true);
            return;
        }
        if let Some(due) = self.next_ping().filter(|&d| d <= now) {
            self.heartbeat = None;
            // A closing session pings no more.
            if self.state == State::Open {
                // The pong is due pingTimeout after the ping was due, however
                // late this call comes: the session ends pingInterval +
                // pingTimeout after the last pong (or the handshake), which
                // is also when the client gives up waiting for a ping.
                self.set_pong_deadline(due + self.config.ping_timeout);
                self.push_out(Out::Control(EioPacket::Ping(Str::default())));
            }
        }
        if let Some(rare) = self.rare.as_deref_mut() {
            if rare.upgrade_deadline.is_some_and(|d| d <= now) {
                if let Upgrade::Opened { ws } | Upgrade::Probed { ws } = rare.upgrade {
                    self.counters.upgrade_failed();
                    rare.side.push_back(Transmit::Close { transport: ws });
                }
                rare.upgrade = Upgrade::None;
                rare.upgrade_deadline = None;
            }
            if rare.connect_deadline.is_some_and(|d| d <= now) {
                rare.connect_deadline = None;
                if self.sockets.is_empty() {
                    self.close(now, DisconnectReason::ForcedClose);
                    return;
                }
            }
            self.tidy();
        }
        for i in 0..self.sockets.len() {
            let socket = &mut self.sockets[i];
            let Some(acks) = socket.acks.as_deref_mut() else {
                continue;
            };
            let mut expired = Vec::new();
            acks.pending.retain(|&(id, deadline)| {
                let keep = deadline > now;
                if !keep {
                    expired.push(id);
                }
                keep
            });
            release_vec_if_empty(&mut acks.pending);
            for id in expired {
                push_back(
                    &mut self.events,
                    Event::AckTimedOut {
                        nsp: socket.nsp.clone(),
                        sid: socket.sid.clone(),
                        id,
                    },
                );
            }
        }
    }

    // ----- engine.io -----

    fn on_engine_packet(&mut self, now: Instant, packet: EioPacket) {
        self.counters.received(match &packet {
            EioPacket::Message(Data::Text(s)) => s.len(),
            EioPacket::Message(Data::Binary(b)) => b.len(),
            _ => 1,
        });
        match packet {
            EioPacket::Ping(data) => {
                if self.eio == EioVersion::V4 {
                    // In v4 only the server pings.
                    self.close_now(DisconnectReason::TransportError, true);
                    return;
                }
                self.set_pong_deadline(now + self.config.ping_interval + self.config.ping_timeout);
                self.push_out(Out::Control(EioPacket::Pong(data)));
            }
            EioPacket::Pong(_) => {
                if self.eio == EioVersion::V3 {
                    self.close_now(DisconnectReason::TransportError, true);
                    return;
                }
                // An answer to no ping changes nothing.
                if self.pong_deadline().is_some() {
                    self.set_next_ping(now + self.config.ping_interval);
                }
            }
            EioPacket::Message(data) => self.on_message(now, data),
            EioPacket::Close => {
                // The client closes: a pending poll returns with a noop.
                self.close_now(DisconnectReason::TransportClose, false);
            }
            EioPacket::Noop => {}
            EioPacket::Open(_) | EioPacket::Upgrade => {
                // A client never sends these outside of a probe.
                self.close_now(DisconnectReason::ParseError, true);
            }
        }
    }

    /// What only some sessions use, made now if there is none.
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Queues the answer to a request: in the thread's spare room for
    /// answers when the queue is empty, as it mostly is (one request is
    /// answered at a time), so that an answer neither allocates nor frees.
    fn respond(&mut self, id: RequestId, response: Response) {
        push_back(&mut self.rare().responses, (id, response));
    }

    /// The upgrade under way, if any.
    fn upgrade(&self) -> Upgrade {
        self.rare.as_deref().map_or(Upgrade::None, |r| r.upgrade)
    }

    /// Forgets the upgrade under way (what made it end has been dealt with).
    fn end_upgrade(&mut self) {
        if let Some(rare) = self.rare.as_deref_mut() {
            rare.upgrade = Upgrade::None;
            rare.upgrade_deadline = None;
        }
    }

    /// Drops what only some sessions use once a WebSocket session holds
    /// nothing there: called where its queues drain and its deadlines end.
    fn tidy(&mut self) {
        if matches!(self.transport, Transport::WebSocket(_))
            && self.rare.as_deref().is_some_and(Rare::is_empty)
        {
            self.rare = None;
        }
    }

    /// When the server pings next (v4).
    fn next_ping(&self) -> Option<Instant> {
        self.heartbeat.filter(|_| !self.pong_due)
    }

    /// When the session ends unless the client answers (v4) or pings (v3).
    fn pong_deadline(&self) -> Option<Instant> {
        self.heartbeat.filter(|_| self.pong_due)
    }

    fn set_next_ping(&mut self, at: Instant) {
        self.heartbeat = Some(at);
        self.pong_due = false;
    }

    fn set_pong_deadline(&mut self, at: Instant) {
        self.heartbeat = Some(at);
        self.pong_due = true;
    }

    fn push_out(&mut self, out: Out) {
        if self.buffered_bytes + out.size() > self.config.max_buffer_size {
            // A peer that makes the server answer (v3 pings) but never
            // reads gets no unbounded buffer.
            self.counters.overflow();
            self.close_now(DisconnectReason::TransportError, true);
            return;
        }
        self.buffered_bytes += out.size();
        push_back(&mut self.buffer, out);
        self.flush_polling();
    }

    fn set_pending_get(&mut self, id: RequestId) {
        if let Transport::Polling { .. } = self.transport {
            self.rare().pending_get = Some(id);
        }
    }

    /// The GET held until there is something to send (polling only).
    fn pending_get(&self) -> Option<RequestId> {
        self.rare.as_deref().and_then(|r| r.pending_get)
    }

    fn take_pending_get(&mut self) -> Option<RequestId> {
        self.rare.as_deref_mut().and_then(|r| r.pending_get.take())
    }

    /// Answers the pending GET with the whole buffer, if both are there.
    fn flush_polling(&mut self) {
        // On a WebSocket, with every packet out: nothing else is read.
        let Transport::Polling { .. } = self.transport else {
            return;
        };
        if self.pending_get().is_none() || self.buffer.is_empty() {
            return;
        }
        let Some(get) = self.take_pending_get() else {
            return;
        };
        // The close packet goes alone, in the poll after the packets
        // buffered before it, as the reference's drain-then-close does: the
        // client handles those packets (a DISCONNECT, say) before it learns
        // that the transport closed.
        let end = match self
            .buffer
            .iter()
            .position(|o| matches!(o, Out::Control(EioPacket::Close)))
        {
            Some(0) | None => self.buffer.len(),
            Some(close) => close,
        };
        // Encoded where they lie, then dropped: no list of their own.
        let mut buffer = std::mem::take(&mut self.buffer);
        let outs = &buffer.make_contiguous()[..end];
        for out in outs {
            self.counters.sent(out);
        }
        let closes = outs
            .iter()
            .any(|o| matches!(o, Out::Control(EioPacket::Close)));
        let response = self.encode_payload(outs);
        buffer.drain(..end);
        self.buffer = buffer;
        give_room_if_empty(&mut self.buffer);
        self.buffered_bytes = self.buffer.iter().map(Out::size).sum();
        self.respond(get, response);
        if closes {
            let reason = match self.state {
                State::Closing(r) => r,
                _ => DisconnectReason::ForcedClose,
            };
            self.finish_close(reason, false);
        }
    }

    fn encode_payload(&self, outs: &[Out]) -> Response {
        let response = self.encode_plain_payload(outs);
        match &self.transport {
            Transport::Polling { jsonp: true, .. } => {
                let j = crate::http::engine_params(&self.handshake_query).j;
                let index = crate::jsonp::callback_index(j.as_deref().unwrap_or_default());
                Response {
                    status: response.status,
                    content_type: ContentType::Javascript,
                    body: crate::jsonp::wrap(&index, &String::from_utf8_lossy(&response.body)),
                }
            }
            _ => response,
        }
    }

    fn encode_plain_payload(&self, outs: &[Out]) -> Response {
        match self.eio {
            EioVersion::V4 => {
                // Exactly sized: a `Bytes` made from a full `Vec` shares it
                // without an allocation of its own.
                let len = outs.iter().map(|out| self.v4_len(out)).sum::<usize>()
                    + outs.len().saturating_sub(1);
                let mut body = Vec::with_capacity(len);
                for (i, out) in outs.iter().enumerate() {
                    if i > 0 {
                        body.push(0x1e);
                    }
                    match out {
                        Out::Text(s, _) => body.extend_from_slice(s.as_bytes()),
                        Out::Binary(b, _) => {
                            body.push(b'b');
                            let start = body.len();
                            let n = base64::encoded_len(b.len(), true).unwrap_or(0);
                            body.resize(start + n, 0);
                            let written = base64::engine::general_purpose::STANDARD
                                .encode_slice(b, &mut body[start..])
                                .unwrap_or(0);
                            body.truncate(start + written);
                        }
                        Out::Control(p) => p.encode_text_into(EioVersion::V4, &mut body),
                        Out::Open => self.open_fields().write_packet(&mut body),
                    }
                }
                debug_assert_eq!(body.len(), len, "a v4 payload's length, computed ahead");
                Response::text(Bytes::from(body))
            }
            EioVersion::V3 => {
                let mut body =
                    Vec::with_capacity(outs.iter().map(Out::size).sum::<usize>() + outs.len() * 4);
                let binary = matches!(self.transport, Transport::Polling { binary: true, .. });
                let packets: Vec<EioPacket> = outs
                    .iter()
                    .map(|out| out.clone().into_packet(self.open_fields()))
                    .collect();
                if binary && engineio_packet::payload::v3::has_binary(&packets) {
                    engineio_packet::payload::v3::encode_binary(&packets, &mut body);
                    Response {
                        status: 200,
                        content_type: ContentType::Binary,
                        body: Bytes::from(body),
                    }
                } else {
                    engineio_packet::payload::v3::encode_text(&packets, &mut body);
                    Response::text(Bytes::from(body))
                }
            }
        }
    }

    /// Closes the session without draining the buffer. `server_side`: the
    /// server decided (a pending poll gets a close packet) rather than the
    /// client or its transport (a pending poll gets a noop).
    fn close_now(&mut self, reason: DisconnectReason, server_side: bool) {
        if self.state == State::Closed {
            return;
        }
        self.buffer.clear();
        self.buffered_bytes = 0;
        self.finish_close(reason, server_side);
    }

    fn finish_close(&mut self, reason: DisconnectReason, server_side: bool) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        match self.transport {
            Transport::Polling { .. } => {
                if let Some(get) = self.take_pending_get() {
                    let answer = if server_side {
                        EioPacket::Close
                    } else {
                        EioPacket::Noop
                    };
                    let body = self.encode_payload(&[Out::Control(answer)]);
                    self.respond(get, body);
                }
            }
            Transport::WebSocket(ws) => {
                // Whatever is still buffered goes out before the close.
                while let Some(out) = self.buffer.pop_front() {
                    let (frame, compress) = self.ws_frame(out);
                    self.rare().side.push_back(Transmit::Frame {
                        transport: ws,
                        frame,
                        compress,
                    });
                }
                self.rare()
                    .side
                    .push_back(Transmit::Close { transport: ws });
            }
        }
        let rare = self.rare();
        if let Upgrade::Opened { ws } | Upgrade::Probed { ws } = rare.upgrade {
            rare.side.push_back(Transmit::Close { transport: ws });
        }
        rare.upgrade = Upgrade::None;
        rare.upgrade_deadline = None;
        rare.close_deadline = None;
        rare.connect_deadline = None;
        rare.pending_connects = Vec::new();
        self.buffer = VecDeque::new();
        self.buffered_bytes = 0;
        self.heartbeat = None;
        for socket in std::mem::take(&mut self.sockets) {
            self.socket_gone(socket, reason);
        }
        push_back(&mut self.events, Event::Closed { reason });
        self.rare().endpoint_events.push_back(EndpointEvent::Closed);
    }

    /// The length of `out` in a v4 polling payload.
    fn v4_len(&self, out: &Out) -> usize {
        match out {
            Out::Text(s, _) => s.len(),
            Out::Binary(b, _) => 1 + base64::encoded_len(b.len(), true).unwrap_or(0),
            Out::Control(p) => p.text_len(EioVersion::V4),
            Out::Open => 1 + self.open_fields().json_len(),
        }
    }

    /// The open packet's fields: the session's id, the heartbeat's and
    /// the payload's settings, and on long-polling the upgrade to a
    /// WebSocket where the server allows it. The open packet is the first
    /// that goes out, on the transport the session opened with.
    fn open_fields(&self) -> HandshakeRef<'_> {
        const WEBSOCKET: &[&str] = &["websocket"];
        let upgrades = match self.transport {
            Transport::Polling { .. }
                if self.config.allow_upgrades && self.config.transports.websocket =>
            {
                WEBSOCKET
            }
            _ => &[],
        };
        HandshakeRef {
            sid: &self.sid,
            upgrades,
            ping_interval: self.config.ping_interval.as_millis() as u64,
            ping_timeout: self.config.ping_timeout.as_millis() as u64,
            max_payload: self.config.max_payload as u64,
        }
    }

    /// A WebSocket frame's data, and whether it may be compressed.
    fn ws_frame(&self, out: Out) -> (Data, bool) {
        let compress = !matches!(out, Out::Text(_, false) | Out::Binary(_, false));
        let data = match out {
            Out::Text(s, _) => Data::Text(s),
            Out::Binary(b, _) => match self.eio {
                EioVersion::V4 => Data::Binary(b),
                EioVersion::V3 => {
                    let mut v = Vec::with_capacity(b.len() + 1);
                    v.push(4);
                    v.extend_from_slice(&b);
                    Data::Binary(Bytes::from(v))
                }
            },
            Out::Control(p) => p.to_ws_frame(self.eio),
            Out::Open => {
                let mut text = Vec::new();
                self.open_fields().write_packet(&mut text);
                // The open packet is ASCII around the id, a `Str`.
                Data::Text(Str::from_utf8(Bytes::from(text)).unwrap_or_default())
            }
        };
        (data, compress)
    }

    // ----- socket.io -----

    fn on_message(&mut self, now: Instant, data: Data) {
        if self.config.engine_only {
            push_back(&mut self.events, Event::EngineMessage(data));
            return;
        }
        if self.config.parser == Parser::Msgpack {
            let decoded = match data {
                Data::Binary(b) => socketio_packet::msgpack::decode(b)
                    .map(as_json)
                    .map_err(|e| e.to_string()),
                Data::Text(_) => Err("a text message with the msgpack parser".to_owned()),
            };
            match decoded {
                Ok(packet) => self.on_packet(now, packet),
                Err(error) => {
                    push_back(&mut self.events, Event::ProtocolError { error });
                    self.close(now, DisconnectReason::ForcedClose);
                }
            }
            return;
        }
        let decode = |decoder: &mut Decoder| match data {
            Data::Text(s) => decoder.decode_text(s),
            Data::Binary(b) => decoder.decode_binary(b),
        };
        let decoded = match self.decoder.as_deref_mut() {
            Some(pending) => {
                let decoded = decode(pending);
                if !pending.is_awaiting_attachments() {
                    self.decoder = None;
                }
                decoded
            }
            None => {
                let mut decoder = Decoder::new(self.sio, self.config.max_attachments);
                let decoded = decode(&mut decoder);
                if decoder.is_awaiting_attachments() {
                    self.decoder = Some(Box::new(decoder));
                }
                decoded
            }
        };
        match decoded {
            Ok(Some(packet)) => self.on_packet(now, packet),
            Ok(None) => {}
            Err(e) => {
                push_back(
                    &mut self.events,
                    Event::ProtocolError {
                        error: e.to_string(),
                    },
                );
                self.close(now, DisconnectReason::ForcedClose);
            }
        }
    }

    fn invalid_state(&mut self, now: Instant, what: &str) {
        push_back(
            &mut self.events,
            Event::ProtocolError {
                error: what.to_owned(),
            },
        );
        self.close(now, DisconnectReason::ForcedClose);
    }

    fn on_packet(&mut self, now: Instant, packet: Packet) {
        let (nsp, query) = match self.sio {
            ProtocolVersion::V4 => match packet.nsp.find('?') {
                Some(i) => (
                    packet.nsp.slice_ref(&packet.nsp[..i]),
                    Some(packet.nsp.slice_ref(&packet.nsp[i + 1..])),
                ),
                None => (packet.nsp.clone(), None),
            },
            _ => (packet.nsp.clone(), None),
        };
        let index = self.sockets.iter().position(|s| s.nsp == nsp);
        match (packet.kind, index) {
            (PacketKind::Connect(auth), None) => {
                if self.pending_connects().contains(&nsp) {
                    if self.sio == ProtocolVersion::V4 {
                        return;
                    }
                    self.invalid_state(now, "duplicate connect");
                    return;
                }
                let pending = &mut self.rare().pending_connects;
                pending.reserve_exact(1);
                pending.push(nsp.clone());
                let resume = match (&self.config.recovery, self.sio, &auth) {
                    (Some(_), ProtocolVersion::V5, Some(auth)) => Resume::from_auth(auth),
                    _ => None,
                };
                push_back(
                    &mut self.events,
                    Event::ConnectRequest {
                        nsp,
                        auth,
                        query,
                        resume,
                    },
                );
            }
            (PacketKind::Connect(_), Some(_)) => {
                if self.sio == ProtocolVersion::V4 {
                    // Old clients send `40` for `/` that the server joined already.
                    return;
                }
                self.invalid_state(now, "duplicate connect");
            }
            (PacketKind::ConnectError(_), _) => {
                self.invalid_state(now, "connect error from a client")
            }
            (_, None) => self.invalid_state(now, "packet for a namespace not joined"),
            (PacketKind::Disconnect, Some(i)) => {
                let socket = self.sockets.remove(i);
                self.socket_gone(socket, DisconnectReason::ClientNamespaceDisconnect);
            }
            (PacketKind::Event { name, data, id }, Some(i)) => {
                let socket = &self.sockets[i];
                push_back(
                    &mut self.events,
                    Event::Message(EventMessage {
                        nsp: socket.nsp.clone(),
                        sid: socket.sid.clone(),
                        name,
                        data,
                        ack_id: id,
                    }),
                );
            }
            (PacketKind::Ack { data, id }, Some(i)) => {
                let socket = &mut self.sockets[i];
                // Unknown ids are ignored; an ack fires at most once.
                let pending = socket.acks.as_deref_mut().map(|a| &mut a.pending);
                if let Some((acks, pos)) = pending.and_then(|acks| {
                    let pos = acks.iter().position(|&(a, _)| a == id)?;
                    Some((acks, pos))
                }) {
                    acks.swap_remove(pos);
                    release_vec_if_empty(acks);
                    push_back(
                        &mut self.events,
                        Event::Ack {
                            nsp: socket.nsp.clone(),
                            sid: socket.sid.clone(),
                            id,
                            data,
                        },
                    );
                }
            }
        }
    }

    fn socket_gone(&mut self, socket: Socket, reason: DisconnectReason) {
        self.rare()
            .endpoint_events
            .push_back(EndpointEvent::SocketDisconnected {
                nsp: socket.nsp.clone(),
                sid: socket.sid.clone(),
                pid: socket
                    .pid
                    .filter(|_| reason.keeps_session())
                    .map(|pid| Str::from(String::from(pid))),
            });
        push_back(
            &mut self.events,
            Event::Disconnected {
                nsp: socket.nsp,
                sid: socket.sid,
                reason,
            },
        );
    }

    // ----- commands -----

    /// Accepts the client's pending connect request on `nsp`: the socket is
    /// created and the client told its id. Returns the socket id: a random
    /// one for Socket.IO v5; for v4 (Engine.IO v3) clients, which work it
    /// out themselves, the engine sid on `/` and `<nsp>#<engine sid>` on
    /// other namespaces, as the reference.
    ///
    /// # Errors
    ///
    /// [`SendError::NoConnectRequest`] when no request waits on `nsp`;
    /// [`SendError::Closed`] when the connection is closed.
    pub fn accept(&mut self, nsp: &str) -> Result<Str, SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        let Some(nsp) = self.take_pending_connect(nsp) else {
            return Err(SendError::NoConnectRequest);
        };
        let sid = match self.sio {
            // Socket.IO v4 sends no id: the reference and its clients both
            // take the engine sid on `/`, `<nsp>#<engine sid>` elsewhere.
            ProtocolVersion::V4 if &*nsp == "/" => self.sid.clone(),
            ProtocolVersion::V4 => Str::from(format!("{nsp}#{}", self.sid)),
            _ => self.ids.next_id(),
        };
        let pid = match self.sio {
            ProtocolVersion::V5 if self.config.recovery.is_some() => Some(self.ids.next_id()),
            _ => None,
        };
        self.connect_socket(nsp.clone(), sid.clone(), pid);
        self.rare()
            .endpoint_events
            .push_back(EndpointEvent::SocketConnected {
                nsp,
                sid: sid.clone(),
            });
        self.socket_connected();
        Ok(sid)
    }

    /// Accepts the client's pending connect request on `nsp` as the
    /// recovery of a saved session ([`Endpoint::restore`](crate::Endpoint::restore)):
    /// the socket gets its old id and private id back. The packets it
    /// missed go out first, in order, then the CONNECT answer: the
    /// reference's order, in which the official client hands them to the
    /// application before its `connect` event. Returns the socket id.
    ///
    /// Hand the endpoint events this queues
    /// ([`EndpointEvent::SocketRestored`]) to the endpoint before it plans
    /// another broadcast, or the socket misses that one.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`], [`SendError::NoConnectRequest`], or
    /// [`SendError::NoRoom`] when the missed packets do not fit in the send
    /// buffer beside what waits there; nothing changed then (answer with
    /// [`accept`](Connection::accept)).
    pub fn accept_restored(&mut self, restored: &Restored) -> Result<Str, SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        let nsp = &*restored.nsp;
        if !self.pending_connects().iter().any(|n| &**n == nsp) {
            return Err(SendError::NoConnectRequest);
        }
        let missed: usize = restored.missed.iter().map(Encoded::size).sum();
        if self.buffered_bytes + missed > self.config.max_buffer_size {
            return Err(SendError::NoRoom);
        }
        let Some(nsp) = self.take_pending_connect(nsp) else {
            return Err(SendError::NoConnectRequest);
        };
        let sid = restored.sid.clone();
        for encoded in &restored.missed {
            self.queue_encoded(encoded);
        }
        self.connect_socket(nsp.clone(), sid.clone(), Some(restored.pid.clone()));
        self.rare()
            .endpoint_events
            .push_back(EndpointEvent::SocketRestored {
                nsp: nsp.clone(),
                sid: sid.clone(),
                rooms: restored.rooms.clone(),
                since: restored.since,
            });
        self.socket_connected();
        Ok(sid)
    }

    /// Whether a connect request waits on `nsp` and the connection is open:
    /// what [`accept`](Connection::accept) and
    /// [`accept_restored`](Connection::accept_restored) need.
    pub fn awaits_connect(&self, nsp: &str) -> bool {
        self.state == State::Open && self.pending_connects().iter().any(|n| &**n == nsp)
    }

    /// Namespaces whose connect request awaits the application's answer.
    fn pending_connects(&self) -> &[Str] {
        self.rare.as_deref().map_or(&[], |r| &r.pending_connects)
    }

    /// Takes the connect request waiting on `nsp`, if there is one.
    fn take_pending_connect(&mut self, nsp: &str) -> Option<Str> {
        let pending = &mut self.rare.as_deref_mut()?.pending_connects;
        let pos = pending.iter().position(|n| &**n == nsp)?;
        let nsp = pending.swap_remove(pos);
        release_vec_if_empty(pending);
        Some(nsp)
    }

    /// Creates socket `sid` on `nsp` and tells the client (the CONNECT
    /// answer, with `pid` when recovery is on).
    fn connect_socket(&mut self, nsp: Str, sid: Str, pid: Option<Str>) {
        let direct = match (self.sio, self.config.parser) {
            (ProtocolVersion::V5, Parser::Default) => connect_answer(&nsp, &sid, pid.as_deref()),
            _ => None,
        };
        if let Some(encoded) = direct {
            self.queue_owned(encoded);
            self.flush_polling();
        } else {
            self.push_connect_answer(&nsp, &sid, pid.as_deref());
        }
        // Most connections join one namespace: room for exactly one.
        self.sockets.reserve_exact(1);
        self.sockets.push(Socket {
            nsp,
            sid,
            acks: None,
            pid: pid.map(|pid| Box::from(pid.as_str())),
        });
    }

    /// Sends the answer to a socket's CONNECT as a packet, encoded for the
    /// server's parser and the client's version.
    fn push_connect_answer(&mut self, nsp: &Str, sid: &str, pid: Option<&str>) {
        let reply = match self.sio {
            ProtocolVersion::V4 => Packet::connect(nsp.clone(), None),
            _ => {
                /// The CONNECT answer, in the reference's order.
                #[derive(serde::Serialize)]
                struct Answer<'a> {
                    sid: &'a str,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    pid: Option<&'a str>,
                }
                let answer = Answer { sid, pid };
                Packet::connect(nsp.clone(), Payload::from_value(&answer).ok())
            }
        };
        self.push_packet(&reply);
    }

    /// Tells the application of the socket just created.
    fn socket_connected(&mut self) {
        // The connect timeout is over once a namespace is joined: the
        // reference clears it at the first connect, so a session whose
        // sockets all leave later stays open, as there.
        if let Some(rare) = self.rare.as_deref_mut() {
            rare.connect_deadline = None;
        }
        let socket = &self.sockets[self.sockets.len() - 1];
        let (nsp, sid) = (socket.nsp.clone(), socket.sid.clone());
        push_back(&mut self.events, Event::Connected { nsp, sid });
    }

    /// Refuses the client's pending connect request on `nsp` because no
    /// such namespace exists: the client gets `{"message":"Invalid
    /// namespace"}`, in either Socket.IO version, as the reference answers
    /// (unlike a refusal by the application, which a v4 client gets as a
    /// bare message: see [`reject`](Connection::reject)).
    ///
    /// # Errors
    ///
    /// [`SendError::NoConnectRequest`] when no request waits on `nsp`.
    pub fn reject_unknown_namespace(&mut self, nsp: &str) -> Result<(), SendError> {
        let Some(nsp) = self.take_pending_connect(nsp) else {
            return Err(SendError::NoConnectRequest);
        };
        let packet = Packet::connect_error_for(ProtocolVersion::V5, nsp, "Invalid namespace", None);
        self.push_packet(&packet);
        Ok(())
    }

    /// Refuses the client's pending connect request on `nsp`: the client gets
    /// a CONNECT_ERROR with `message` and `data`.
    ///
    /// # Errors
    ///
    /// [`SendError::NoConnectRequest`] when no request waits on `nsp`.
    pub fn reject(
        &mut self,
        nsp: &str,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> Result<(), SendError> {
        let Some(nsp) = self.take_pending_connect(nsp) else {
            return Err(SendError::NoConnectRequest);
        };
        let packet = match self.sio {
            ProtocolVersion::V4 => {
                let value = data
                    .cloned()
                    .unwrap_or_else(|| serde_json::Value::from(message));
                Packet {
                    nsp,
                    kind: PacketKind::ConnectError(
                        Payload::from_value(&value).unwrap_or_else(|_| Payload::default()),
                    ),
                }
            }
            _ => Packet::connect_error(nsp, message, data),
        };
        self.push_packet(&packet);
        Ok(())
    }

    /// Sends `packet` (built with [`Packet::event`]) to the socket on
    /// `packet.nsp`. A `volatile` packet is dropped when the transport cannot
    /// take it now.
    ///
    /// # Errors
    ///
    /// [`SendError::NotConnected`], [`SendError::Closed`], or, when the send
    /// buffer is full, [`SendError::Dropped`] (volatile) or
    /// [`SendError::BufferFull`] (the connection then closes).
    pub fn emit(&mut self, packet: &Packet, volatile: bool) -> Result<(), SendError> {
        let encoded = self.encode(packet);
        self.send_encoded_owned(&packet.nsp, encoded, volatile)
    }

    /// Sends an event (built with [`Packet::event`]) asking for an
    /// acknowledgement, and waits for it until `now + timeout`. Returns the
    /// ack id: [`Event::Ack`] or [`Event::AckTimedOut`] follows with it.
    /// `compress`: whether its frames may be compressed, as
    /// [`Encoded::with_compress`] says.
    ///
    /// # Errors
    ///
    /// As [`emit`](Connection::emit); [`SendError::NotAnEvent`] when the
    /// packet is not an event.
    pub fn emit_with_ack(
        &mut self,
        now: Instant,
        mut packet: Packet,
        timeout: Duration,
        compress: bool,
    ) -> Result<u64, SendError> {
        self.check_open()?;
        let socket = self
            .sockets
            .iter_mut()
            .find(|s| s.nsp == packet.nsp)
            .ok_or(SendError::NotConnected)?;
        let PacketKind::Event { id: ack_id, .. } = &mut packet.kind else {
            return Err(SendError::NotAnEvent);
        };
        let acks = socket.acks.get_or_insert_with(Box::default);
        let id = acks.next_id;
        acks.next_id += 1;
        *ack_id = Some(id);
        let encoded = self.encode(&packet).with_compress(compress);
        self.send_encoded_owned(&packet.nsp, encoded, false)?;
        let socket = self.sockets.iter_mut().find(|s| s.nsp == packet.nsp);
        if let Some(acks) = socket.and_then(|s| s.acks.as_deref_mut()) {
            acks.pending.push((id, now + timeout));
        }
        Ok(id)
    }

    /// Answers the client's event that carried ack id `id` on `nsp`.
    ///
    /// # Errors
    ///
    /// As [`emit`](Connection::emit).
    pub fn ack(&mut self, nsp: &str, id: u64, args: Payload) -> Result<(), SendError> {
        self.check_open()?;
        let socket = self
            .sockets
            .iter()
            .find(|s| &*s.nsp == nsp)
            .ok_or(SendError::NotConnected)?;
        let packet = Packet {
            nsp: socket.nsp.clone(),
            kind: PacketKind::Ack { data: args, id },
        };
        self.emit(&packet, false)
    }

    /// Sends a packet encoded once for many connections (a broadcast): what
    /// it queues shares the packet's bytes.
    ///
    /// # Errors
    ///
    /// As [`emit`](Connection::emit).
    pub fn send_encoded(
        &mut self,
        nsp: &str,
        encoded: &Encoded,
        volatile: bool,
    ) -> Result<(), SendError> {
        self.check_send(nsp, encoded.size(), volatile)?;
        self.queue_encoded(encoded);
        self.flush_polling();
        Ok(())
    }

    /// Sends a packet encoded for this connection alone: it is queued as it
    /// is, where [`send_encoded`](Connection::send_encoded) queues copies
    /// that share its bytes (which makes a buffer's first copy allocate its
    /// count of owners).
    ///
    /// # Errors
    ///
    /// As [`emit`](Connection::emit).
    pub fn send_encoded_owned(
        &mut self,
        nsp: &str,
        encoded: Encoded,
        volatile: bool,
    ) -> Result<(), SendError> {
        self.check_send(nsp, encoded.size(), volatile)?;
        self.queue_owned(encoded);
        self.flush_polling();
        Ok(())
    }

    /// Whether a packet of `size` bytes for `nsp` may be queued; a packet
    /// that would overflow the send buffer closes the connection, unless it
    /// is volatile (then it is dropped).
    fn check_send(&mut self, nsp: &str, size: usize, volatile: bool) -> Result<(), SendError> {
        self.check_open()?;
        if !self.sockets.iter().any(|s| &*s.nsp == nsp) {
            return Err(SendError::NotConnected);
        }
        if volatile && !self.writable() {
            return Err(SendError::Dropped);
        }
        if self.buffered_bytes + size > self.config.max_buffer_size {
            if volatile {
                return Err(SendError::Dropped);
            }
            self.counters.overflow();
            self.close_now(DisconnectReason::TransportError, true);
            return Err(SendError::BufferFull);
        }
        Ok(())
    }

    /// Takes a packet encoded once (a broadcast) as written now, on the
    /// WebSocket `ws`, when nothing waits to go before it: the binding's
    /// socket is idle and writable, and says so by calling this.
    ///
    /// Gives the packet's one frame when it is taken: it is counted as sent
    /// (in [`take_counters`](Connection::take_counters)) and never enters
    /// the send buffer, so the binding must write it before any frame that
    /// [`poll_transmit`](Connection::poll_transmit) gives later, and keep
    /// what the socket does not take at once ahead of those.
    /// Gives `None`, changing nothing, when the packet must take the
    /// ordinary way ([`send_encoded`](Connection::send_encoded)): the
    /// connection is not open, has no socket on `nsp`, its transport is
    /// not `ws`, the send buffer holds something, or the packet takes more
    /// than one frame or more than the buffer's bound.
    pub fn send_encoded_now(
        &mut self,
        nsp: &str,
        encoded: &Encoded,
        ws: RequestId,
    ) -> Option<Data> {
        if self.state != State::Open
            || !matches!(self.transport, Transport::WebSocket(t) if t == ws)
            || !self.buffer.is_empty()
            || encoded.size() > self.config.max_buffer_size
            || !self.sockets.iter().any(|s| &*s.nsp == nsp)
        {
            return None;
        }
        let out = match (encoded.msgpack, encoded.attachments.as_slice()) {
            (false, []) => Out::Text(encoded.text.clone(), encoded.compress),
            (true, [message]) => Out::Binary(message.clone(), encoded.compress),
            _ => return None,
        };
        self.counters.sent(&out);
        Some(self.ws_frame(out).0)
    }

    /// Puts an encoded packet in the send buffer (its bound checked by the
    /// caller), as copies that share its bytes.
    fn queue_encoded(&mut self, encoded: &Encoded) {
        let text = (!encoded.msgpack).then(|| encoded.text.clone());
        let attachments = encoded.attachments.iter().cloned();
        self.queue_parts(encoded.size(), encoded.compress, text, attachments);
    }

    /// Puts an encoded packet in the send buffer as it is.
    fn queue_owned(&mut self, encoded: Encoded) {
        let size = encoded.size();
        let text = (!encoded.msgpack).then_some(encoded.text);
        self.queue_parts(size, encoded.compress, text, encoded.attachments);
    }

    /// Puts a text message (none with the msgpack parser) and the binary
    /// messages after it in the send buffer, `size` bytes in all.
    fn queue_parts(
        &mut self,
        size: usize,
        compress: bool,
        text: Option<Str>,
        binaries: impl IntoIterator<Item = Bytes>,
    ) {
        self.buffered_bytes += size;
        if let Some(text) = text {
            push_back(&mut self.buffer, Out::Text(text, compress));
        }
        for a in binaries {
            push_back(&mut self.buffer, Out::Binary(a, compress));
        }
    }

    /// Sends a bare Engine.IO message (for an endpoint serving bare
    /// Engine.IO; on a Socket.IO endpoint the client would not understand it).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`], or [`SendError::BufferFull`] when the send
    /// buffer goes over its bound (the connection then closes).
    pub fn send_message(&mut self, data: Data) -> Result<(), SendError> {
        self.check_open()?;
        let out = match data {
            Data::Text(s) => {
                let mut v = Vec::with_capacity(s.len() + 1);
                v.push(b'4');
                v.extend_from_slice(s.as_bytes());
                Out::Text(Str::try_from(Bytes::from(v)).unwrap_or_default(), true)
            }
            Data::Binary(b) => Out::Binary(b, true),
        };
        if self.buffered_bytes + out.size() > self.config.max_buffer_size {
            self.counters.overflow();
            self.close_now(DisconnectReason::TransportError, true);
            return Err(SendError::BufferFull);
        }
        self.push_out(out);
        Ok(())
    }

    fn check_open(&self) -> Result<(), SendError> {
        if self.state == State::Open {
            Ok(())
        } else {
            Err(SendError::Closed)
        }
    }

    /// Whether the transport can take a packet now (volatile packets are
    /// dropped otherwise): a poll is waiting, or the WebSocket's queue is empty.
    pub fn writable(&self) -> bool {
        match self.transport {
            Transport::Polling { .. } => self.pending_get().is_some(),
            Transport::WebSocket(_) => self.buffer.is_empty(),
        }
    }

    /// Encodes `packet` with the server's parser, for this client's
    /// protocol version.
    fn encode(&self, packet: &Packet) -> Encoded {
        Encoded::with_parser(packet, self.sio, self.config.parser)
    }

    fn push_packet(&mut self, packet: &Packet) {
        let encoded = self.encode(packet);
        self.queue_owned(encoded);
        self.flush_polling();
    }

    /// Makes the socket on `nsp` leave its namespace ("server namespace
    /// disconnect"); the client is told. The connection stays open.
    ///
    /// # Errors
    ///
    /// [`SendError::NotConnected`] when no socket is on `nsp`.
    pub fn disconnect(&mut self, nsp: &str) -> Result<(), SendError> {
        self.check_open()?;
        let pos = self
            .sockets
            .iter()
            .position(|s| &*s.nsp == nsp)
            .ok_or(SendError::NotConnected)?;
        let socket = self.sockets.remove(pos);
        self.push_packet(&Packet::disconnect(socket.nsp.clone()));
        self.socket_gone(socket, DisconnectReason::ServerNamespaceDisconnect);
        Ok(())
    }

    /// Closes the whole connection: every socket is told it leaves its
    /// namespace, the buffer is sent, then the transport closes. Sockets see
    /// `reason` (usually [`DisconnectReason::ForcedServerClose`] or
    /// [`DisconnectReason::ServerShuttingDown`]).
    pub fn close(&mut self, now: Instant, reason: DisconnectReason) {
        if self.state != State::Open {
            return;
        }
        for socket in std::mem::take(&mut self.sockets) {
            // Only a server closing the connection through a socket tells
            // the client (which then does not reconnect); on shutdown the
            // client sees the transport close and reconnects elsewhere.
            if reason == DisconnectReason::ForcedServerClose {
                self.push_packet(&Packet::disconnect(socket.nsp.clone()));
            }
            self.socket_gone(socket, reason);
        }
        self.state = State::Closing(reason);
        match self.transport {
            Transport::Polling { .. } => {
                self.rare().close_deadline = Some(now + CLOSE_TIMEOUT);
                push_back(&mut self.buffer, Out::Control(EioPacket::Close));
                self.flush_polling();
            }
            Transport::WebSocket(_) => self.finish_close(reason, true),
        }
    }

    // ----- output -----

    /// The next HTTP response to write, with the request it answers.
    pub fn poll_response(&mut self) -> Option<(RequestId, Response)> {
        let response = pop_passing(&mut self.rare.as_deref_mut()?.responses);
        self.tidy();
        response
    }

    /// The next WebSocket frame to send, or WebSocket to close.
    ///
    /// On a WebSocket transport this also drains the send buffer: call it
    /// when the socket can take more, and the buffer holds the rest.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self
            .rare
            .as_deref_mut()
            .and_then(|r| pop_front(&mut r.side))
        {
            self.tidy();
            return Some(t);
        }
        if let Transport::WebSocket(ws) = self.transport {
            if self.state == State::Closed {
                return None;
            }
            let out = pop_passing(&mut self.buffer)?;
            self.buffered_bytes = self.buffered_bytes.saturating_sub(out.size());
            self.counters.sent(&out);
            let (frame, compress) = self.ws_frame(out);
            return Some(Transmit::Frame {
                transport: ws,
                frame,
                compress,
            });
        }
        None
    }

    /// What happened since the last call (packets and bytes in and out,
    /// failed upgrades, buffer overflows): what a binding adds to its
    /// server's counters.
    pub fn take_counters(&mut self) -> Counters {
        let t = std::mem::take(&mut self.counters);
        Counters {
            packets_in: t.packets_in.into(),
            bytes_in: t.bytes_in.into(),
            packets_out: t.packets_out.into(),
            bytes_out: t.bytes_out.into(),
            upgrades_failed: t.upgrades_failed.into(),
            buffer_overflows: t.buffer_overflows.into(),
        }
    }

    /// The most bytes the send buffer holds (`Config::max_buffer_size`): a
    /// binding that keeps frames of its own for a while (counted as sent)
    /// keeps no more than this for one connection.
    pub fn max_buffer_size(&self) -> usize {
        self.config.max_buffer_size
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<Event> {
        pop_passing(&mut self.events)
    }

    /// Whether one of [`poll_response`](Connection::poll_response),
    /// [`poll_transmit`](Connection::poll_transmit),
    /// [`poll_endpoint_event`](Connection::poll_endpoint_event) or
    /// [`poll_event`](Connection::poll_event) has something to give: a
    /// binding that drained them all can tell whether its later work made
    /// more, without polling each again.
    pub fn has_output(&self) -> bool {
        let frames = match self.transport {
            Transport::WebSocket(_) => self.state != State::Closed && !self.buffer.is_empty(),
            _ => false,
        };
        frames
            || !self.events.is_empty()
            || self.rare.as_deref().is_some_and(|r| {
                !r.responses.is_empty() || !r.side.is_empty() || !r.endpoint_events.is_empty()
            })
    }

    /// Whether one of [`poll_response`](Connection::poll_response),
    /// [`poll_endpoint_event`](Connection::poll_endpoint_event) or
    /// [`poll_event`](Connection::poll_event) has something to give: what
    /// [`has_output`](Connection::has_output) says, frames left aside, for a
    /// binding that writes its frames elsewhere than it handles the rest.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
            || self
                .rare
                .as_deref()
                .is_some_and(|r| !r.responses.is_empty() || !r.endpoint_events.is_empty())
    }

    /// The next event for the [`Endpoint`](crate::Endpoint).
    pub fn poll_endpoint_event(&mut self) -> Option<EndpointEvent> {
        let event = pop_front(&mut self.rare.as_deref_mut()?.endpoint_events);
        self.tidy();
        event
    }

    /// The earliest deadline at which [`handle_timeout`](Connection::handle_timeout)
    /// must be called, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        // Called several times per wake-up of a binding: a plain loop, not
        // an iterator chain.
        let mut earliest = self.heartbeat;
        let mut consider = |t: Instant| {
            if earliest.is_none_or(|e| t < e) {
                earliest = Some(t);
            }
        };
        if let Some(rare) = self.rare.as_deref() {
            for t in [
                rare.upgrade_deadline,
                rare.close_deadline,
                rare.connect_deadline,
            ]
            .into_iter()
            .flatten()
            {
                consider(t);
            }
        }
        for socket in &self.sockets {
            for ack in socket.acks.iter().flat_map(|a| &a.pending) {
                consider(ack.1);
            }
        }
        earliest
    }
}

/// A kind of item that passes through a connection's queue one at a time
/// (its events, its frames, its answers to requests): the room of such a queue that empties is kept
/// by the thread, one queue's worth, for the next queue of its kind to fill
/// (see [`push_back`] and [`pop_passing`]), so that an item passing through
/// neither allocates nor frees, while an idle connection keeps no room.
trait Passing: Sized + 'static {
    /// The thread's spare room for this kind's queues.
    fn spare() -> &'static std::thread::LocalKey<std::cell::Cell<VecDeque<Self>>>;
}

thread_local! {
    static SPARE_EVENTS: std::cell::Cell<VecDeque<Event>> =
        const { std::cell::Cell::new(VecDeque::new()) };
    static SPARE_OUT: std::cell::Cell<VecDeque<Out>> =
        const { std::cell::Cell::new(VecDeque::new()) };
    static SPARE_RESPONSES: std::cell::Cell<VecDeque<(RequestId, Response)>> =
        const { std::cell::Cell::new(VecDeque::new()) };
}

impl Passing for Event {
    fn spare() -> &'static std::thread::LocalKey<std::cell::Cell<VecDeque<Self>>> {
        &SPARE_EVENTS
    }
}

impl Passing for Out {
    fn spare() -> &'static std::thread::LocalKey<std::cell::Cell<VecDeque<Self>>> {
        &SPARE_OUT
    }
}

impl Passing for (RequestId, Response) {
    fn spare() -> &'static std::thread::LocalKey<std::cell::Cell<VecDeque<Self>>> {
        &SPARE_RESPONSES
    }
}

/// Adds an item to a queue. An empty queue takes the thread's spare room,
/// or room for one item only: one event or packet at a time is the usual
/// traffic, and a queue that drains gives its room back (see
/// [`pop_passing`]).
fn push_back<T: Passing>(queue: &mut VecDeque<T>, item: T) {
    if queue.capacity() == 0 {
        // During thread teardown the spare is gone: a new room serves.
        let room = T::spare()
            .try_with(std::cell::Cell::take)
            .unwrap_or_default();
        let room = match room.capacity() {
            0 => VecDeque::with_capacity(1),
            _ => room,
        };
        // The queue it replaces holds no memory, and needs no drop.
        std::mem::forget(std::mem::replace(queue, room));
    }
    queue.push_back(item);
}

/// The most items a queue's room kept by the thread holds: the room of a
/// burst goes back to the allocator.
const SPARE_ROOM: usize = 4;

/// Takes the first item of a queue of items passing through. A queue left
/// empty gives its room to the thread (when small) or back to the
/// allocator: an idle connection keeps none of it.
fn pop_passing<T: Passing>(queue: &mut VecDeque<T>) -> Option<T> {
    if queue.is_empty() {
        return None;
    }
    let item = queue.pop_front();
    give_room_if_empty(queue);
    item
}

/// Gives the room of a queue of items passing through, when it is empty,
/// to the thread (when small) or back to the allocator.
#[inline(always)]
fn give_room_if_empty<T: Passing>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() != 0 {
        let room = std::mem::take(queue);
        if room.capacity() <= SPARE_ROOM {
            // During thread teardown the room goes back to the allocator.
            let _ = T::spare().try_with(|spare| spare.set(room));
        }
    }
}

/// Takes the first item of a queue. A queue left empty gives its memory
/// back: an idle connection keeps none of the capacity of its last burst.
fn pop_front<T>(queue: &mut VecDeque<T>) -> Option<T> {
    // Polled after every input, mostly empty: that case moves nothing.
    if queue.is_empty() {
        return None;
    }
    let item = queue.pop_front();
    release_if_empty(queue);
    item
}

fn release_if_empty<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() != 0 {
        *queue = VecDeque::new();
    }
}

fn release_vec_if_empty<T>(list: &mut Vec<T>) {
    if list.is_empty() && list.capacity() != 0 {
        *list = Vec::new();
    }
}

/// A packet decoded from msgpack, its payload turned into JSON with
/// placeholders for its binary values (which are its attachments): the
/// application reads it as it reads a packet of the text parser.
fn as_json(packet: Packet) -> Packet {
    let kind = match packet.kind {
        PacketKind::Connect(Some(p)) => PacketKind::Connect(Some(p.to_json())),
        PacketKind::ConnectError(p) => PacketKind::ConnectError(p.to_json()),
        PacketKind::Event { name, data, id } => PacketKind::Event {
            name,
            data: data.to_json(),
            id,
        },
        PacketKind::Ack { data, id } => PacketKind::Ack {
            data: data.to_json(),
            id,
        },
        other => other,
    };
    Packet {
        nsp: packet.nsp,
        kind,
    }
}

#[cfg(test)]
mod layout {
    use super::*;

    /// A session opened by a WebSocket (request 1) at `now`.
    fn websocket_session(now: Instant) -> (Connection, RequestId) {
        let ids = crate::ids::IdGenerator::from_seed([5; 32]).fork_stream();
        let ws = RequestId(1);
        let conn = Connection::new(
            now,
            Arc::new(Config::default()),
            Str::from("session"),
            EioVersion::V4,
            Opening::WebSocket { ws },
            ids,
            String::new(),
        );
        (conn, ws)
    }

    /// The client on `ws` joins `/`, and the binding drains what that
    /// gives it.
    fn join_root(conn: &mut Connection, now: Instant, ws: RequestId) {
        conn.handle_frame(now, ws, Data::Text(Str::from("40")));
        while let Some(event) = conn.poll_event() {
            if let Event::ConnectRequest { nsp, .. } = event {
                assert!(conn.accept(&nsp).is_ok());
            }
        }
        while conn.poll_transmit().is_some() {}
        while conn.poll_endpoint_event().is_some() {}
    }

    /// A connection of a WebSocket client in one namespace, once the
    /// binding has drained its output and the connect timeout has passed:
    /// what it keeps while idle.
    fn idle_websocket_connection() -> Connection {
        let now = Instant::now();
        let (mut conn, ws) = websocket_session(now);
        join_root(&mut conn, now, ws);
        while conn.poll_response().is_some() {}
        // A ping goes out and its pong comes back, past the connect timeout.
        let later = now + conn.config.connect_timeout;
        assert!(conn.poll_timeout().is_some_and(|t| t <= later));
        conn.handle_timeout(later);
        assert!(conn.poll_transmit().is_some());
        conn.handle_frame(later, ws, Data::Text(Str::from("3")));
        assert!(!conn.has_output());
        assert!(!conn.is_closed());
        conn
    }

    #[test]
    fn items_passing_through_reuse_the_room_the_last_one_left() {
        let spare = || {
            SPARE_OUT.with(|s| {
                let room = s.take();
                let capacity = room.capacity();
                s.set(room);
                capacity
            })
        };
        let noop = || Out::Control(EioPacket::Noop);
        let mut queue = VecDeque::new();
        push_back(&mut queue, noop());
        let at = queue.as_slices().0.as_ptr();
        assert!(pop_passing(&mut queue).is_some());
        assert_eq!(queue.capacity(), 0, "the queue keeps no room");
        assert_eq!(spare(), 1, "the thread keeps it");
        push_back(&mut queue, noop());
        assert_eq!(queue.as_slices().0.as_ptr(), at, "the next item takes it");
        assert_eq!(spare(), 0);
        // A burst's room goes back to the allocator.
        for _ in 0..100 {
            push_back(&mut queue, noop());
        }
        while pop_passing(&mut queue).is_some() {}
        assert_eq!(queue.capacity(), 0);
        assert_eq!(spare(), 0);
    }

    #[test]
    fn an_idle_connection_keeps_no_queue_capacity() {
        let conn = idle_websocket_connection();
        assert_eq!(conn.sockets().count(), 1);
        assert_eq!(conn.buffer.capacity(), 0);
        assert_eq!(conn.events.capacity(), 0);
        assert_eq!(conn.sockets.capacity(), 1);
        assert!(conn.decoder.is_none());
        assert!(conn.rare.is_none());
        assert!(conn.sockets[0].acks.is_none());
    }

    #[test]
    fn an_upgraded_session_gives_the_polling_state_back() {
        let config = Arc::new(Config::default());
        let now = Instant::now();
        let ids = crate::ids::IdGenerator::from_seed([5; 32]).fork_stream();
        let mut conn = Connection::new(
            now,
            config,
            Str::from("session"),
            EioVersion::V4,
            Opening::Polling {
                request: RequestId(1),
                binary: false,
                jsonp: false,
            },
            ids,
            String::new(),
        );
        assert!(conn.poll_response().is_some());
        // A polling session keeps it between polls.
        assert!(conn.rare.is_some());
        let ws = RequestId(2);
        conn.handle_request(now, ws, Request::websocket("/socket.io/"));
        conn.handle_frame(now, ws, Data::Text(Str::from("2probe")));
        assert!(conn.poll_transmit().is_some());
        conn.handle_frame(now, ws, Data::Text(Str::from("5")));
        assert_eq!(conn.transport(), TransportKind::WebSocket);
        join_root(&mut conn, now, ws);
        assert!(conn.poll_response().is_none());
        conn.handle_timeout(now + conn.config.connect_timeout);
        while conn.poll_transmit().is_some() {}
        assert!(!conn.is_closed());
        assert!(conn.rare.is_none());
    }

    #[test]
    fn what_only_some_sessions_use_comes_and_goes() {
        let now = Instant::now();
        let (mut conn, ws) = websocket_session(now);
        // The connect deadline is kept until the first connect.
        assert!(conn.rare.is_some());
        join_root(&mut conn, now, ws);
        assert!(conn.rare.is_none());
        let later = now + conn.config.connect_timeout;
        conn.handle_timeout(later);
        assert!(conn.rare.is_none());
        // A stray WebSocket is refused through the side queue, then the
        // session keeps nothing of it.
        conn.handle_request(later, RequestId(2), Request::websocket("/socket.io/"));
        assert!(conn.rare.is_some());
        assert!(matches!(
            conn.poll_transmit(),
            Some(Transmit::Close {
                transport: RequestId(2)
            })
        ));
        assert!(conn.rare.is_none());
        // Messages in and packets out on the WebSocket make none of it.
        conn.handle_frame(later, ws, Data::Text(Str::from("42[\"echo\",1]")));
        let Some(Event::Message(message)) = conn.poll_event() else {
            panic!("the event comes out");
        };
        assert!(conn.emit(&message.packet(), false).is_ok());
        assert!(conn.poll_transmit().is_some());
        assert!(conn.poll_response().is_none());
        assert!(conn.poll_endpoint_event().is_none());
        assert!(conn.rare.is_none());
    }

    #[test]
    fn the_connection_stays_small() {
        // Boxed once per session and kept for its life, so at 10,000 idle
        // connections every byte here counts ten thousand times: this
        // guards the layout (it is not a timing), and a field that makes
        // it grow belongs in `Rare` unless every session needs it. 20
        // bytes of it are the counters a binding takes at every step.
        assert!(std::mem::size_of::<Connection>() <= 264);
        assert!(std::mem::size_of::<Rare>() <= 200);
        assert!(std::mem::size_of::<Out>() <= 72);
        assert!(std::mem::size_of::<Socket>() <= 88);
    }
}

#[cfg(test)]
mod connect_answer_text {
    use super::*;

    /// The answer as the packet encoder writes it.
    fn by_packet(nsp: &str, sid: &str, pid: Option<&str>) -> Str {
        #[derive(serde::Serialize)]
        struct Answer<'a> {
            sid: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            pid: Option<&'a str>,
        }
        let payload = Payload::from_value(&Answer { sid, pid }).ok();
        Encoded::new(
            &Packet::connect(Str::from(nsp), payload),
            ProtocolVersion::V5,
        )
        .text
    }

    #[test]
    fn is_what_the_packet_encoder_writes() {
        for nsp in ["/", "/admin", ""] {
            for pid in [None, Some("p-Q_9")] {
                let direct = connect_answer(nsp, "AbC-d_0123456789xyzW", pid);
                assert_eq!(
                    direct.map(|e| e.text),
                    Some(by_packet(nsp, "AbC-d_0123456789xyzW", pid)),
                    "{nsp} {pid:?}"
                );
            }
        }
    }

    #[test]
    fn leaves_ids_that_need_an_escape_to_the_encoder() {
        assert!(connect_answer("/", "a\"b", None).is_none());
        assert!(connect_answer("/", "ab", Some("c\\d")).is_none());
        assert!(connect_answer("/", "é", None).is_none());
    }
}
