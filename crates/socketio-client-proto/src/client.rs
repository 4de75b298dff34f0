//! The Socket.IO client: namespaces over one Engine.IO connection, acks, buffering,
//! connection state recovery and reconnection.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_packet::{Data, Packet as EioPacket, Str};
use socketio_packet::{
    Decoder, Packet, PacketKind, Payload, ProtocolVersion, RESERVED_EVENTS, is_valid_namespace,
};

use crate::backoff::{self, Rng};
use crate::config::Config;
use crate::engine::{Engine, EngineEvent};
use crate::types::{
    AckError, ConnectError, DisconnectReason, EmitError, Event, EventMessage, RequestId, Transmit,
    TransportKind,
};

/// How an emit is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmitOptions {
    /// Ask the server for an acknowledgement: [`Client::emit`] returns its id, and an
    /// [`Event::Ack`] with that id follows.
    pub ack: bool,
    /// Give up the acknowledgement after this long ([`AckError::Timeout`]); the timer starts at the emit,
    /// and an emit still buffered when it fires is not sent.
    pub timeout: Option<Duration>,
    /// Drop the emit rather than buffer it when it cannot go out at once.
    pub volatile: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketState {
    /// Not connected; `active` says whether it will connect when the connection opens.
    Disconnected,
    /// CONNECT sent, waiting for the answer.
    Connecting,
    Connected,
}

#[derive(Debug)]
struct PendingAck {
    id: u64,
    deadline: Option<Instant>,
}

#[derive(Debug)]
struct Socket {
    nsp: Str,
    /// The auth object's JSON text.
    auth: Option<serde_json::Map<String, serde_json::Value>>,
    state: SocketState,
    /// Whether the socket wants to be connected (false after a refusal or a deliberate disconnection).
    active: bool,
    id: Option<String>,
    /// The private session id of connection state recovery.
    pid: Option<String>,
    /// The offset of the last event handed to the application.
    offset: Option<String>,
    next_ack: u64,
    acks: Vec<PendingAck>,
    /// Emits waiting for the socket to connect, with their size.
    send_buffer: VecDeque<(Packet, usize)>,
    /// Events that came before the CONNECT answer (a recovering server replays the missed
    /// ones first), delivered with it; and their bytes.
    receive_buffer: Vec<EventMessage>,
    received_bytes: usize,
}

impl Socket {
    /// Remembers the offset `message` carries, when the session has a pid.
    fn note_offset(&mut self, message: &EventMessage) {
        if self.pid.is_some()
            && let Some(offset) = last_string_arg(&message.data)
        {
            self.offset = Some(offset);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ManagerState {
    Closed,
    Opening,
    Open,
}

/// A Socket.IO client: one Engine.IO connection (a "manager" in the official client) and the
/// sockets of the namespaces it carries. It performs no I/O and reads no clock.
///
/// Methods come in four kinds:
/// - getters (`&self`);
/// - `handle_*`: what happened on the network or the clock, `now` first;
/// - commands from the application: [`connect`](Client::connect), [`emit`](Client::emit),
///   [`ack`](Client::ack), [`disconnect`](Client::disconnect), [`close`](Client::close);
/// - `poll_*`: output. After any input or command, drain [`poll_transmit`](Client::poll_transmit)
///   and [`poll_event`](Client::poll_event), then arm one timer for
///   [`poll_timeout`](Client::poll_timeout) and call [`handle_timeout`](Client::handle_timeout)
///   when it passes (an early or repeated call does nothing).
#[derive(Debug)]
pub struct Client {
    config: Config,
    engine: Option<Engine>,
    generation: u64,
    state: ManagerState,
    sockets: Vec<Socket>,
    decoder: Option<Box<Decoder>>,
    reconnecting: bool,
    skip_reconnect: bool,
    attempts: u32,
    reconnect_at: Option<Instant>,
    rng: Rng,
    buffered: usize,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Client {
    /// A client with `config`; `seed` randomises the reconnection delays (give it a random
    /// number, or a fixed one for a reproducible test). Nothing happens before [`Client::connect`].
    pub fn new(config: Config, seed: u64) -> Client {
        Client {
            config,
            engine: None,
            generation: 0,
            state: ManagerState::Closed,
            sockets: Vec::new(),
            decoder: None,
            reconnecting: false,
            skip_reconnect: false,
            attempts: 0,
            reconnect_at: None,
            rng: Rng::new(seed),
            buffered: 0,
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    // ---- getters ----

    /// The options.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the Engine.IO connection is open.
    pub fn is_open(&self) -> bool {
        self.state == ManagerState::Open
    }

    /// The Engine.IO session id, while the connection is open.
    pub fn engine_sid(&self) -> Option<&str> {
        self.engine
            .as_ref()
            .filter(|e| e.is_open())
            .map(Engine::sid)
    }

    /// The transport of the open connection.
    pub fn transport(&self) -> Option<TransportKind> {
        self.engine
            .as_ref()
            .filter(|e| e.is_open())
            .map(Engine::transport)
    }

    /// The server's `maxPayload`, once the connection opened.
    pub fn max_payload(&self) -> Option<u64> {
        self.engine
            .as_ref()
            .and_then(Engine::handshake)
            .map(|h| h.max_payload)
    }

    /// Whether the socket of `nsp` is connected.
    pub fn is_connected(&self, nsp: &str) -> bool {
        self.socket(nsp)
            .is_some_and(|s| s.state == SocketState::Connected)
    }

    /// The socket id of `nsp`, while it is connected.
    pub fn socket_id(&self, nsp: &str) -> Option<&str> {
        self.socket(nsp)
            .filter(|s| s.state == SocketState::Connected)
            .and_then(|s| s.id.as_deref())
    }

    /// Whether the client waits to reconnect, or is trying to.
    pub fn is_reconnecting(&self) -> bool {
        self.reconnecting
    }

    /// Bytes of emits buffered while disconnected.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    fn socket(&self, nsp: &str) -> Option<&Socket> {
        self.sockets.iter().find(|s| s.nsp == nsp)
    }

    fn socket_index(&self, nsp: &str) -> Option<usize> {
        self.sockets.iter().position(|s| s.nsp == nsp)
    }

    // ---- commands ----

    /// Joins namespace `nsp` (`/`, `/admin`) with an optional auth object, opening the
    /// connection if it is not open; [`Event::Connect`] or [`Event::ConnectError`] follows.
    /// Calling it again for a joined namespace does nothing; for one that was refused or left,
    /// it tries again (with the new `auth` when there is one).
    ///
    /// # Errors
    /// [`EmitError::Encode`] when `nsp` is not a valid namespace.
    pub fn connect(
        &mut self,
        now: Instant,
        nsp: &str,
        auth: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<(), EmitError> {
        if !is_valid_namespace(nsp) {
            return Err(EmitError::Encode(
                socketio_packet::EncodeError::InvalidNamespace(nsp.to_owned()),
            ));
        }
        let i = match self.socket_index(nsp) {
            Some(i) => i,
            None => {
                self.sockets.push(Socket {
                    nsp: Str::from(nsp),
                    auth: None,
                    state: SocketState::Disconnected,
                    active: false,
                    id: None,
                    pid: None,
                    offset: None,
                    next_ack: 0,
                    acks: Vec::new(),
                    send_buffer: VecDeque::new(),
                    receive_buffer: Vec::new(),
                    received_bytes: 0,
                });
                self.sockets.len() - 1
            }
        };
        if auth.is_some() {
            self.sockets[i].auth = auth;
        }
        if self.sockets[i].active {
            return Ok(());
        }
        self.sockets[i].active = true;
        match self.state {
            ManagerState::Open => self.send_connect(i),
            ManagerState::Opening => {}
            ManagerState::Closed => {
                if !self.reconnecting {
                    self.skip_reconnect = false;
                    self.open_engine(now);
                }
            }
        }
        Ok(())
    }

    /// Emits `name` with `args` (a tuple, a `Vec`, `()` or one value; binary values become
    /// attachments) on namespace `nsp`; returns the ack id when `options.ack` is set.
    ///
    /// A socket that is not connected buffers the emit and sends it once connected, as the
    /// official client does; a volatile emit is dropped instead when it cannot go out at once.
    ///
    /// # Errors
    /// [`EmitError`] for a reserved event name, a namespace never joined, arguments that do not
    /// serialize, or a full buffer.
    pub fn emit<T: serde::Serialize + ?Sized>(
        &mut self,
        now: Instant,
        nsp: &str,
        name: &str,
        args: &T,
        options: EmitOptions,
    ) -> Result<Option<u64>, EmitError> {
        if RESERVED_EVENTS.contains(&name) {
            return Err(EmitError::ReservedName(name.to_owned()));
        }
        let i = self
            .socket_index(nsp)
            .ok_or_else(|| EmitError::UnknownNamespace(nsp.to_owned()))?;
        let ack = options.ack || options.timeout.is_some();
        let id = ack.then_some(self.sockets[i].next_ack);
        let packet = Packet::event(self.sockets[i].nsp.clone(), name, args, id)?;
        let writable = self.engine.as_ref().is_some_and(Engine::is_writable);
        let connected = self.sockets[i].state == SocketState::Connected;
        if options.volatile && !(writable && connected) {
            // Dropped, as the reference drops a volatile packet it cannot write now.
            return Ok(None);
        }
        if !connected {
            let size = packet_size(&packet);
            if self.buffered + size > self.config.max_buffered {
                return Err(EmitError::BufferFull);
            }
            self.buffered += size;
            self.sockets[i].send_buffer.push_back((packet, size));
        } else {
            self.send_packet(&packet);
        }
        if let Some(id) = id {
            let s = &mut self.sockets[i];
            s.next_ack += 1;
            s.acks.push(PendingAck {
                id,
                deadline: options.timeout.map(|t| now + t),
            });
        }
        Ok(id)
    }

    /// Answers the server's event that asked for an acknowledgement (`ack_id` of
    /// [`EventMessage`]) with `args`. Dropped when the socket is no longer connected.
    ///
    /// # Errors
    /// [`EmitError::Encode`] when the arguments do not serialize.
    pub fn ack<T: serde::Serialize + ?Sized>(
        &mut self,
        nsp: &str,
        id: u64,
        args: &T,
    ) -> Result<(), EmitError> {
        let Some(i) = self.socket_index(nsp) else {
            return Ok(());
        };
        let packet = Packet::ack(self.sockets[i].nsp.clone(), id, args)?;
        if self.sockets[i].state == SocketState::Connected {
            self.send_packet(&packet);
        }
        Ok(())
    }

    /// Leaves namespace `nsp` ([`Event::Disconnect`] with "io client disconnect"); when no other
    /// socket uses the connection, it closes, and the client does not reconnect.
    pub fn disconnect(&mut self, nsp: &str) {
        let Some(i) = self.socket_index(nsp) else {
            return;
        };
        if self.sockets[i].state == SocketState::Connected {
            let packet = Packet::disconnect(self.sockets[i].nsp.clone());
            self.send_packet(&packet);
        }
        self.socket_closed(i, DisconnectReason::IoClientDisconnect, true);
        self.sockets[i].active = false;
        self.maybe_close();
    }

    /// Leaves every namespace and closes the connection; stops reconnecting.
    pub fn close(&mut self) {
        for i in 0..self.sockets.len() {
            if self.sockets[i].state == SocketState::Connected {
                let packet = Packet::disconnect(self.sockets[i].nsp.clone());
                self.send_packet(&packet);
            }
            self.socket_closed(i, DisconnectReason::IoClientDisconnect, true);
            self.sockets[i].active = false;
        }
        self.maybe_close();
    }

    // ---- inputs ----

    /// The answer to the HTTP request `id`: its status and whole body (a binding reads at most
    /// `max_incoming + 1` bytes; a longer body closes the connection).
    pub fn handle_response(&mut self, now: Instant, id: RequestId, status: u16, body: Bytes) {
        if let Some(e) = self.engine.as_mut() {
            e.handle_response(now, id, status, body);
        }
        self.after_engine(now);
    }

    /// The HTTP request `id` failed without an answer.
    pub fn handle_failure(&mut self, now: Instant, id: RequestId) {
        if let Some(e) = self.engine.as_mut() {
            e.handle_failure(id);
        }
        self.after_engine(now);
    }

    /// The WebSocket `id` completed its opening handshake.
    pub fn handle_ws_open(&mut self, now: Instant, id: RequestId) {
        if let Some(e) = self.engine.as_mut() {
            e.handle_ws_open(id);
        }
        self.after_engine(now);
    }

    /// A message arrived on the WebSocket `id`.
    pub fn handle_ws_message(&mut self, now: Instant, id: RequestId, frame: Data) {
        if let Some(e) = self.engine.as_mut() {
            e.handle_ws_message(now, id, frame);
        }
        self.after_engine(now);
    }

    /// The WebSocket `id` closed (`error`: it failed, or could not be opened).
    pub fn handle_ws_closed(&mut self, now: Instant, id: RequestId, error: bool) {
        if let Some(e) = self.engine.as_mut() {
            e.handle_ws_closed(id, error);
        }
        self.after_engine(now);
    }

    /// Time passed: heartbeats, connection and ack timeouts, reconnection delays.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(e) = self.engine.as_mut() {
            e.handle_timeout(now);
        }
        self.after_engine(now);
        // Acks whose time is up.
        for i in 0..self.sockets.len() {
            let mut expired = Vec::new();
            self.sockets[i].acks.retain(|a| {
                let gone = a.deadline.is_some_and(|d| now >= d);
                if gone {
                    expired.push(a.id);
                }
                !gone
            });
            for id in expired {
                let s = &mut self.sockets[i];
                // An emit still waiting in the buffer is not sent any more.
                let mut freed = 0;
                s.send_buffer.retain(|(p, size)| {
                    let keep = p.id() != Some(id);
                    if !keep {
                        freed += size;
                    }
                    keep
                });
                self.buffered -= freed;
                self.events.push_back(Event::Ack {
                    nsp: s.nsp.clone(),
                    id,
                    result: Err(AckError::Timeout),
                });
            }
        }
        if self.reconnect_at.is_some_and(|t| now >= t) {
            self.reconnect_at = None;
            self.attempt_reconnect(now);
        }
    }

    // ---- outputs ----

    /// The next thing for the binding to do.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.out.pop_front() {
            return Some(t);
        }
        self.engine.as_mut().and_then(Engine::poll_transmit)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline: call [`Client::handle_timeout`] when it passes.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let acks = self
            .sockets
            .iter()
            .flat_map(|s| s.acks.iter().filter_map(|a| a.deadline));
        self.engine
            .as_ref()
            .and_then(Engine::poll_timeout)
            .into_iter()
            .chain(self.reconnect_at)
            .chain(acks)
            .min()
    }

    // ---- the rest ----

    fn open_engine(&mut self, now: Instant) {
        if let Some(mut old) = self.engine.take() {
            self.out.extend(old.out.drain(..));
        }
        self.generation += 1;
        self.decoder = None;
        self.state = ManagerState::Opening;
        self.engine = Some(Engine::open(now, &self.config, self.generation << 32));
    }

    fn send_packet(&mut self, packet: &Packet) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let mut text = Vec::with_capacity(32);
        packet.encode_into(ProtocolVersion::V5, &mut text);
        // The encoder writes UTF-8.
        let text = Str::from_utf8(Bytes::from(text)).unwrap_or_default();
        engine.send(EioPacket::Message(Data::Text(text)));
        for a in packet.attachments() {
            engine.send(EioPacket::Message(Data::Binary(a.clone())));
        }
    }

    fn send_connect(&mut self, i: usize) {
        let s = &mut self.sockets[i];
        s.state = SocketState::Connecting;
        let mut auth = match &s.pid {
            Some(pid) => {
                let mut m = serde_json::Map::new();
                m.insert("pid".into(), pid.clone().into());
                if let Some(offset) = &s.offset {
                    m.insert("offset".into(), offset.clone().into());
                }
                Some(m)
            }
            None => None,
        };
        if let Some(a) = &s.auth {
            auth.get_or_insert_default()
                .extend(a.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let data = auth.and_then(|m| Payload::from_value(&m).ok());
        let packet = Packet::connect(s.nsp.clone(), data);
        self.send_packet(&packet);
    }

    /// Handles what the engine produced.
    fn after_engine(&mut self, now: Instant) {
        loop {
            let Some(ev) = self.engine.as_mut().and_then(|e| e.events.pop_front()) else {
                return;
            };
            match ev {
                EngineEvent::Open { sid, transport } => {
                    self.state = ManagerState::Open;
                    self.events.push_back(Event::Open { sid, transport });
                    if self.reconnecting {
                        self.reconnecting = false;
                        self.events.push_back(Event::Reconnect {
                            attempt: self.attempts,
                        });
                    }
                    self.attempts = 0;
                    for i in 0..self.sockets.len() {
                        if self.sockets[i].active {
                            self.send_connect(i);
                        }
                    }
                }
                EngineEvent::Upgrade => {
                    self.events.push_back(Event::Upgrade {
                        transport: TransportKind::WebSocket,
                    });
                }
                EngineEvent::Message(data) => self.on_message(now, data),
                EngineEvent::Close(reason) => self.on_close(now, reason),
                EngineEvent::Error(error) => self.on_open_error(now, error),
            }
        }
    }

    fn on_message(&mut self, now: Instant, data: Data) {
        let decoder = self.decoder.get_or_insert_with(|| {
            Box::new(Decoder::new(
                ProtocolVersion::V5,
                self.config.max_attachments,
            ))
        });
        let result = match data {
            Data::Text(text) => decoder.decode_text(text),
            Data::Binary(bytes) => decoder.decode_binary(bytes),
        };
        match result {
            Ok(Some(packet)) => {
                self.decoder = None;
                self.on_packet(now, packet);
            }
            Ok(None) => {}
            Err(_) => {
                // The reference closes the connection on a packet it cannot decode.
                if let Some(e) = self.engine.as_mut() {
                    e.close();
                }
                self.on_close(now, DisconnectReason::ParseError);
            }
        }
    }

    fn on_packet(&mut self, now: Instant, packet: Packet) {
        // Packets for a namespace without a socket are ignored, as the reference ignores them.
        let Some(i) = self.socket_index(&packet.nsp) else {
            return;
        };
        match packet.kind {
            PacketKind::Connect(data) => {
                if self.sockets[i].state != SocketState::Connecting {
                    return;
                }
                #[derive(serde::Deserialize)]
                struct Answer {
                    sid: String,
                    pid: Option<String>,
                }
                let answer = data
                    .as_ref()
                    .and_then(|d| d.deserialize::<Answer>().ok())
                    .filter(|a| !a.sid.is_empty());
                let Some(answer) = answer else {
                    let s = &mut self.sockets[i];
                    s.state = SocketState::Disconnected;
                    s.receive_buffer.clear();
                    s.received_bytes = 0;
                    s.active = false;
                    self.events.push_back(Event::ConnectError {
                        nsp: s.nsp.clone(),
                        error: ConnectError::BadAnswer,
                    });
                    return self.maybe_close();
                };
                let s = &mut self.sockets[i];
                let recovered = answer.pid.is_some() && s.pid == answer.pid;
                s.pid = answer.pid;
                s.id = Some(answer.sid.clone());
                s.state = SocketState::Connected;
                // As the reference: the events that came first, then the connection.
                s.received_bytes = 0;
                for message in std::mem::take(&mut s.receive_buffer) {
                    s.note_offset(&message);
                    self.events.push_back(Event::Message(message));
                }
                self.events.push_back(Event::Connect {
                    nsp: s.nsp.clone(),
                    sid: answer.sid,
                    recovered,
                });
                let buffered: Vec<(Packet, usize)> = s.send_buffer.drain(..).collect();
                for (p, size) in buffered {
                    self.buffered -= size;
                    self.send_packet(&p);
                }
            }
            PacketKind::ConnectError(data) => {
                if self.sockets[i].state != SocketState::Connecting {
                    return;
                }
                let (message, extra) = match data.deserialize::<serde_json::Value>() {
                    Ok(serde_json::Value::Object(mut m)) => (
                        match m.remove("message") {
                            Some(serde_json::Value::String(s)) => s,
                            Some(v) => v.to_string(),
                            None => String::new(),
                        },
                        m.remove("data").map(|d| d.to_string()),
                    ),
                    Ok(serde_json::Value::String(s)) => (s, None),
                    Ok(v) => (v.to_string(), None),
                    Err(_) => (String::new(), None),
                };
                let s = &mut self.sockets[i];
                s.state = SocketState::Disconnected;
                s.receive_buffer.clear();
                s.received_bytes = 0;
                s.active = false;
                self.events.push_back(Event::ConnectError {
                    nsp: s.nsp.clone(),
                    error: ConnectError::Refused {
                        message,
                        data: extra,
                    },
                });
                self.maybe_close();
            }
            PacketKind::Disconnect => {
                if self.sockets[i].state != SocketState::Connected {
                    return;
                }
                self.socket_closed(i, DisconnectReason::IoServerDisconnect, true);
                self.sockets[i].active = false;
                self.maybe_close();
            }
            PacketKind::Event { name, data, id } => {
                let s = &mut self.sockets[i];
                if s.state == SocketState::Disconnected {
                    return;
                }
                let message = EventMessage {
                    nsp: s.nsp.clone(),
                    name,
                    data,
                    ack_id: id,
                };
                if s.state == SocketState::Connected {
                    s.note_offset(&message);
                    self.events.push_back(Event::Message(message));
                    return;
                }
                // The offset moves when the event is handed over, as the reference's
                // `emitEvent`: an event kept for a CONNECT answer that never comes
                // (the connection drops first) is lost with it, and asked for again.
                // Before the CONNECT answer: kept for it, within max_incoming bytes.
                let size = packet_bytes(&message.data);
                if s.received_bytes + size > self.config.max_incoming {
                    if let Some(e) = self.engine.as_mut() {
                        e.close();
                    }
                    return self.on_close(now, DisconnectReason::TransportError);
                }
                s.received_bytes += size;
                s.receive_buffer.push(message);
            }
            PacketKind::Ack { data, id } => {
                let s = &mut self.sockets[i];
                // Unknown ids are ignored: an ack fires once, and not after its timeout.
                if let Some(at) = s.acks.iter().position(|a| a.id == id) {
                    s.acks.swap_remove(at);
                    self.events.push_back(Event::Ack {
                        nsp: s.nsp.clone(),
                        id,
                        result: Ok(data),
                    });
                }
            }
        }
    }

    /// A socket stops being connected for `reason`; acks of emits already sent fail.
    fn socket_closed(&mut self, i: usize, reason: DisconnectReason, event: bool) {
        let s = &mut self.sockets[i];
        let was_connected = s.state == SocketState::Connected;
        s.state = SocketState::Disconnected;
        s.id = None;
        s.receive_buffer.clear();
        s.received_bytes = 0;
        if !was_connected {
            return;
        }
        if event {
            self.events.push_back(Event::Disconnect {
                nsp: s.nsp.clone(),
                reason,
            });
        }
        let buffered: Vec<u64> = s.send_buffer.iter().filter_map(|(p, _)| p.id()).collect();
        let nsp = s.nsp.clone();
        let events = &mut self.events;
        s.acks.retain(|a| {
            if buffered.contains(&a.id) {
                return true;
            }
            events.push_back(Event::Ack {
                nsp: nsp.clone(),
                id: a.id,
                result: Err(AckError::Disconnected),
            });
            false
        });
    }

    /// Closes the connection when no socket wants it any more.
    fn maybe_close(&mut self) {
        if self.sockets.iter().any(|s| s.active) {
            return;
        }
        self.skip_reconnect = true;
        self.reconnecting = false;
        self.reconnect_at = None;
        self.attempts = 0;
        if let Some(e) = self.engine.as_mut() {
            e.close();
        }
        if self.state != ManagerState::Closed {
            self.state = ManagerState::Closed;
            self.events.push_back(Event::Close {
                reason: DisconnectReason::ForcedClose,
            });
        }
        // Emits buffered for sockets that will not connect again stay until they do.
    }

    /// The open connection closed for `reason`.
    fn on_close(&mut self, now: Instant, reason: DisconnectReason) {
        if self.state == ManagerState::Closed {
            return;
        }
        self.state = ManagerState::Closed;
        self.decoder = None;
        for i in 0..self.sockets.len() {
            self.socket_closed(i, reason, true);
        }
        self.events.push_back(Event::Close { reason });
        if self.config.reconnection && !self.skip_reconnect {
            self.schedule_reconnect(now);
        }
    }

    /// The connection could not be opened.
    fn on_open_error(&mut self, now: Instant, error: &'static str) {
        self.state = ManagerState::Closed;
        for s in &mut self.sockets {
            if s.active && s.state != SocketState::Connected {
                s.state = SocketState::Disconnected;
                self.events.push_back(Event::ConnectError {
                    nsp: s.nsp.clone(),
                    error: ConnectError::Transport(error),
                });
            }
        }
        if self.reconnecting {
            self.events.push_back(Event::ReconnectError { error });
            self.schedule_reconnect(now);
        } else if self.config.reconnection && !self.skip_reconnect && self.attempts == 0 {
            self.schedule_reconnect(now);
        }
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        if self.attempts >= self.config.reconnection_attempts {
            self.reconnecting = false;
            self.attempts = 0;
            self.events.push_back(Event::ReconnectFailed);
            return;
        }
        let delay = backoff::delay(
            self.config.reconnection_delay,
            self.config.reconnection_delay_max,
            self.config.randomization_factor,
            self.attempts,
            &mut self.rng,
        );
        self.attempts += 1;
        self.reconnecting = true;
        self.reconnect_at = Some(now + delay);
    }

    fn attempt_reconnect(&mut self, now: Instant) {
        if !self.reconnecting || self.skip_reconnect {
            return;
        }
        self.events.push_back(Event::ReconnectAttempt {
            attempt: self.attempts,
        });
        self.open_engine(now);
    }
}

/// Bytes a payload holds.
fn packet_bytes(data: &Payload) -> usize {
    data.json().len() + data.attachments().iter().map(Bytes::len).sum::<usize>()
}

/// Bytes an emit takes in the buffer.
fn packet_size(p: &Packet) -> usize {
    let data = match &p.kind {
        PacketKind::Event { data, .. } | PacketKind::Ack { data, .. } => Some(data),
        _ => None,
    };
    16 + p.nsp.len()
        + data.map_or(0, |d| {
            d.json().len() + d.attachments().iter().map(Bytes::len).sum::<usize>()
        })
}

/// The last argument of an event when it is a string: the offset of connection state recovery.
fn last_string_arg(data: &Payload) -> Option<String> {
    let args: Vec<serde_json::Value> = serde_json::from_str(data.to_json().json().as_str()).ok()?;
    if args.len() < 2 {
        return None;
    }
    match args.last() {
        Some(serde_json::Value::String(s)) if s.len() <= 256 => Some(s.clone()),
        _ => None,
    }
}
