//! The Engine.IO v4 client: the handshake, the polling loop, the WebSocket probe and upgrade,
//! the heartbeat as a client sees it, and `maxPayload` on writes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_packet::{Data, Handshake, Packet, ProtocolVersion, Str, payload};

use crate::config::{Config, Transports};
use crate::types::{DisconnectReason, Method, RequestId, Transmit, TransportKind};

/// What the engine tells the Socket.IO layer.
#[derive(Debug)]
pub(crate) enum EngineEvent {
    /// The handshake completed.
    Open {
        sid: String,
        transport: TransportKind,
    },
    /// A message arrived.
    Message(Data),
    /// The connection moved to WebSocket.
    Upgrade,
    /// The open connection closed.
    Close(DisconnectReason),
    /// The connection could not be opened.
    Error(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The handshake is under way.
    Opening,
    Open,
    /// Closed by this side over polling: the close packet waits for the POST in flight.
    Closing,
    Closed,
}

#[derive(Debug)]
enum Transport {
    Polling {
        get: Option<RequestId>,
        post: Option<RequestId>,
    },
    WebSocket {
        ws: RequestId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    None,
    /// The WebSocket is being opened.
    Opening(RequestId),
    /// `2probe` sent; waiting for `3probe`.
    Sent(RequestId),
    /// `3probe` received: polling pauses (its requests in flight finish), then `5` goes out.
    Pausing(RequestId),
}

/// One Engine.IO connection, from its handshake to its close.
#[derive(Debug)]
pub(crate) struct Engine {
    state: State,
    sid: String,
    handshake: Option<Handshake>,
    transport: Transport,
    probe: Probe,
    upgrade_allowed: bool,
    write_buffer: VecDeque<Packet>,
    ping_deadline: Option<Instant>,
    open_deadline: Option<Instant>,
    next_id: u64,
    base_query: String,
    max_incoming: usize,
    pub(crate) out: VecDeque<Transmit>,
    pub(crate) events: VecDeque<EngineEvent>,
}

impl Engine {
    /// Starts a connection: its first request is in [`Engine::out`]. Request ids start at `first_id`.
    pub(crate) fn open(now: Instant, config: &Config, first_id: u64) -> Engine {
        let mut base_query = String::new();
        base_query.push_str(&config.path);
        if !config.path.ends_with('/') {
            base_query.push('/');
        }
        base_query.push_str("?EIO=4");
        for (k, v) in &config.query {
            base_query.push('&');
            encode_component(k, &mut base_query);
            base_query.push('=');
            encode_component(v, &mut base_query);
        }
        let mut engine = Engine {
            state: State::Opening,
            sid: String::new(),
            handshake: None,
            transport: Transport::Polling {
                get: None,
                post: None,
            },
            probe: Probe::None,
            upgrade_allowed: config.transports == Transports::PollingThenWebSocket,
            write_buffer: VecDeque::new(),
            ping_deadline: None,
            open_deadline: Some(now + config.timeout),
            next_id: first_id,
            base_query,
            max_incoming: config.max_incoming,
            out: VecDeque::new(),
            events: VecDeque::new(),
        };
        let id = engine.id();
        if config.transports == Transports::WebSocket {
            engine.transport = Transport::WebSocket { ws: id };
            let path_and_query = engine.query(TransportKind::WebSocket);
            engine
                .out
                .push_back(Transmit::OpenWebSocket { id, path_and_query });
        } else {
            engine.transport = Transport::Polling {
                get: Some(id),
                post: None,
            };
            let path_and_query = engine.query(TransportKind::Polling);
            engine.out.push_back(Transmit::Http {
                id,
                method: Method::Get,
                path_and_query,
                body: Bytes::new(),
            });
        }
        engine
    }

    fn id(&mut self) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        id
    }

    fn query(&self, transport: TransportKind) -> String {
        let mut q = format!("{}&transport={}", self.base_query, transport.as_str());
        if !self.sid.is_empty() {
            q.push_str("&sid=");
            encode_component(&self.sid, &mut q);
        }
        q
    }

    /// Whether the handshake completed and the connection is not closed.
    pub(crate) fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether a packet sent now goes out at once (the reference's `transport.writable`).
    pub(crate) fn is_writable(&self) -> bool {
        self.state == State::Open
            && match self.transport {
                Transport::Polling { post, .. } => {
                    post.is_none() && !matches!(self.probe, Probe::Pausing(_))
                }
                Transport::WebSocket { .. } => true,
            }
    }

    pub(crate) fn sid(&self) -> &str {
        &self.sid
    }

    pub(crate) fn transport(&self) -> TransportKind {
        match self.transport {
            Transport::Polling { .. } => TransportKind::Polling,
            Transport::WebSocket { .. } => TransportKind::WebSocket,
        }
    }

    pub(crate) fn handshake(&self) -> Option<&Handshake> {
        self.handshake.as_ref()
    }

    /// The earliest deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Opening => self.open_deadline,
            State::Open => self.ping_deadline,
            State::Closing | State::Closed => None,
        }
    }

    /// Sends a message (or any packet) when the connection is open.
    pub(crate) fn send(&mut self, packet: Packet) {
        if self.state != State::Open {
            return;
        }
        self.write_buffer.push_back(packet);
    }

    /// The next thing for the binding to do; packets written since the last call go out together.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.out.is_empty() {
            self.flush();
        }
        self.out.pop_front()
    }

    /// Closes the connection from this side: what is buffered goes out, then a close packet.
    pub(crate) fn close(&mut self) {
        self.events.clear();
        match self.state {
            State::Closed | State::Closing => return,
            State::Opening => {
                self.abandon();
                self.state = State::Closed;
                return;
            }
            State::Open => {}
        }
        self.write_buffer.push_back(Packet::Close);
        self.close_probe();
        match self.transport {
            Transport::Polling { get, post } => {
                if let Some(get) = get {
                    self.out.push_back(Transmit::Cancel { id: get });
                }
                self.transport = Transport::Polling { get: None, post };
                self.state = State::Closing;
                self.flush();
            }
            Transport::WebSocket { ws } => {
                for p in self.write_buffer.drain(..) {
                    self.out.push_back(Transmit::Frame {
                        id: ws,
                        frame: p.to_ws_frame(ProtocolVersion::V4),
                    });
                }
                self.out.push_back(Transmit::CloseWebSocket { id: ws });
                self.state = State::Closed;
            }
        }
    }

    /// Gives up every request and WebSocket of this connection.
    fn abandon(&mut self) {
        match self.transport {
            Transport::Polling { get, post } => {
                for id in [get, post].into_iter().flatten() {
                    self.out.push_back(Transmit::Cancel { id });
                }
            }
            Transport::WebSocket { ws } => self.out.push_back(Transmit::CloseWebSocket { id: ws }),
        }
        self.close_probe();
    }

    fn close_probe(&mut self) {
        match std::mem::replace(&mut self.probe, Probe::None) {
            Probe::None => {}
            Probe::Opening(ws) | Probe::Sent(ws) | Probe::Pausing(ws) => {
                self.out.push_back(Transmit::CloseWebSocket { id: ws })
            }
        }
    }

    /// The open connection ends for `reason`.
    fn fail(&mut self, reason: DisconnectReason) {
        match self.state {
            State::Closed => {}
            State::Closing => {
                self.abandon();
                self.state = State::Closed;
            }
            State::Opening => {
                self.abandon();
                self.state = State::Closed;
                self.events.push_back(EngineEvent::Error(match reason {
                    DisconnectReason::ParseError => "parse error",
                    _ => match self.transport {
                        Transport::Polling { .. } => "xhr poll error",
                        Transport::WebSocket { .. } => "websocket error",
                    },
                }));
            }
            State::Open => {
                self.abandon();
                self.state = State::Closed;
                self.write_buffer.clear();
                self.events.push_back(EngineEvent::Close(reason));
            }
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Opening if self.open_deadline.is_some_and(|d| now >= d) => {
                self.abandon();
                self.state = State::Closed;
                self.events.push_back(EngineEvent::Error("timeout"));
            }
            State::Open if self.ping_deadline.is_some_and(|d| now >= d) => {
                self.fail(DisconnectReason::PingTimeout);
            }
            _ => {}
        }
    }

    /// An HTTP answer: `status` and the whole body.
    pub(crate) fn handle_response(
        &mut self,
        now: Instant,
        id: RequestId,
        status: u16,
        body: Bytes,
    ) {
        let Transport::Polling { get, post } = self.transport else {
            return;
        };
        if self.state == State::Closed || (self.state == State::Closing && post != Some(id)) {
            return;
        }
        let ok = status == 200 && body.len() <= self.max_incoming;
        if get == Some(id) {
            self.transport = Transport::Polling { get: None, post };
            if !ok {
                return self.fail(DisconnectReason::TransportError);
            }
            self.on_poll_body(now, body);
        } else if post == Some(id) {
            self.transport = Transport::Polling { get, post: None };
            if !ok {
                return self.fail(DisconnectReason::TransportError);
            }
            self.flush();
            self.check_paused();
        }
    }

    /// An HTTP request that got no answer (refused, reset, timed out).
    pub(crate) fn handle_failure(&mut self, id: RequestId) {
        if let Transport::Polling { get, post } = self.transport
            && (get == Some(id) || post == Some(id))
        {
            self.fail(DisconnectReason::TransportError);
        }
    }

    fn on_poll_body(&mut self, now: Instant, body: Bytes) {
        let Ok(body) = Str::from_utf8(body) else {
            return self.fail(DisconnectReason::ParseError);
        };
        for packet in payload::v4::iter(&body) {
            match packet {
                Ok(p) => self.on_packet(now, p),
                Err(_) => return self.fail(DisconnectReason::ParseError),
            }
            if self.state == State::Closed {
                return;
            }
        }
        if self.state == State::Opening {
            // A first answer without the open packet.
            return self.fail(DisconnectReason::ParseError);
        }
        self.poll();
        self.check_paused();
    }

    /// Starts the next long-polling GET, unless one is in flight or polling pauses.
    fn poll(&mut self) {
        if self.state != State::Open || matches!(self.probe, Probe::Pausing(_)) {
            return;
        }
        if let Transport::Polling { get: None, post } = self.transport {
            let id = self.id();
            self.transport = Transport::Polling {
                get: Some(id),
                post,
            };
            let path_and_query = self.query(TransportKind::Polling);
            self.out.push_back(Transmit::Http {
                id,
                method: Method::Get,
                path_and_query,
                body: Bytes::new(),
            });
        }
    }

    fn flush(&mut self) {
        if !matches!(self.state, State::Open | State::Closing) || self.write_buffer.is_empty() {
            return;
        }
        match self.transport {
            Transport::WebSocket { ws } => {
                for p in self.write_buffer.drain(..) {
                    self.out.push_back(Transmit::Frame {
                        id: ws,
                        frame: p.to_ws_frame(ProtocolVersion::V4),
                    });
                }
            }
            Transport::Polling { get, post: None } => {
                if matches!(self.probe, Probe::Pausing(_)) {
                    return;
                }
                // As many packets as fit in the server's maxPayload, at least one.
                let max = self.handshake.as_ref().map_or(0, |h| h.max_payload) as usize;
                let mut len = 0;
                let mut n = 0;
                let closing = self.state == State::Closing;
                for p in &self.write_buffer {
                    let l = p.text_len(ProtocolVersion::V4) + usize::from(n > 0);
                    if n > 0 && max > 0 && len + l > max && !closing {
                        break;
                    }
                    len += l;
                    n += 1;
                }
                let packets: Vec<Packet> = self.write_buffer.drain(..n).collect();
                let mut body = Vec::with_capacity(len);
                payload::v4::encode(&packets, &mut body);
                let id = self.id();
                self.transport = Transport::Polling {
                    get,
                    post: Some(id),
                };
                let path_and_query = self.query(TransportKind::Polling);
                self.out.push_back(Transmit::Http {
                    id,
                    method: Method::Post,
                    path_and_query,
                    body: Bytes::from(body),
                });
                if closing {
                    self.state = State::Closed;
                }
            }
            Transport::Polling { post: Some(_), .. } => {}
        }
    }

    fn on_packet(&mut self, now: Instant, packet: Packet) {
        match packet {
            Packet::Open(handshake) => {
                if self.state != State::Opening {
                    return;
                }
                if handshake.sid.is_empty() || handshake.sid.len() > 256 {
                    return self.fail(DisconnectReason::ParseError);
                }
                self.state = State::Open;
                self.sid.clone_from(&handshake.sid);
                self.ping_deadline = Some(now + heartbeat(&handshake));
                let offers_ws = handshake.upgrades.iter().any(|u| u == "websocket");
                self.handshake = Some(handshake);
                self.events.push_back(EngineEvent::Open {
                    sid: self.sid.clone(),
                    transport: self.transport(),
                });
                if self.upgrade_allowed
                    && offers_ws
                    && matches!(self.transport, Transport::Polling { .. })
                {
                    let id = self.id();
                    self.probe = Probe::Opening(id);
                    let path_and_query = self.query(TransportKind::WebSocket);
                    self.out
                        .push_back(Transmit::OpenWebSocket { id, path_and_query });
                }
            }
            _ if self.state != State::Open => self.fail(DisconnectReason::ParseError),
            Packet::Ping(data) => {
                if let Some(h) = &self.handshake {
                    self.ping_deadline = Some(now + heartbeat(h));
                }
                self.send(Packet::Pong(data));
            }
            Packet::Message(data) => self.events.push_back(EngineEvent::Message(data)),
            Packet::Close => self.fail(DisconnectReason::TransportClose),
            Packet::Pong(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    /// The WebSocket `id` completed its opening handshake.
    pub(crate) fn handle_ws_open(&mut self, id: RequestId) {
        if self.probe == Probe::Opening(id) {
            self.probe = Probe::Sent(id);
            self.out.push_back(Transmit::Frame {
                id,
                frame: Data::Text(Str::from_static("2probe")),
            });
        }
    }

    /// A message on the WebSocket `id`.
    pub(crate) fn handle_ws_message(&mut self, now: Instant, id: RequestId, frame: Data) {
        if matches!(self.state, State::Closed | State::Closing) {
            return;
        }
        if frame.len() > self.max_incoming {
            if matches!(self.transport, Transport::WebSocket { ws } if ws == id) {
                return self.fail(DisconnectReason::TransportError);
            }
            return self.probe_failed(id);
        }
        if matches!(self.transport, Transport::WebSocket { ws } if ws == id) {
            match Packet::decode_frame(frame, ProtocolVersion::V4) {
                Ok(p) => self.on_packet(now, p),
                Err(_) => self.fail(DisconnectReason::ParseError),
            }
            return;
        }
        if self.probe == Probe::Sent(id) {
            match Packet::decode_frame(frame, ProtocolVersion::V4) {
                Ok(Packet::Pong(data)) if data == "probe" => {
                    self.probe = Probe::Pausing(id);
                    self.check_paused();
                }
                _ => self.probe_failed(id),
            }
        } else if self.probe == Probe::Pausing(id) {
            // Nothing is expected on the probe before the upgrade completes.
            self.probe_failed(id);
        }
    }

    fn probe_failed(&mut self, id: RequestId) {
        if matches!(self.probe, Probe::Opening(p) | Probe::Sent(p) | Probe::Pausing(p) if p == id) {
            self.probe = Probe::None;
            self.out.push_back(Transmit::CloseWebSocket { id });
            // Polling goes on.
            self.poll();
            self.flush();
        }
    }

    /// Completes the upgrade once polling has nothing in flight.
    fn check_paused(&mut self) {
        let Probe::Pausing(ws) = self.probe else {
            return;
        };
        if self.state != State::Open {
            return;
        }
        if let Transport::Polling {
            get: None,
            post: None,
        } = self.transport
        {
            self.probe = Probe::None;
            self.transport = Transport::WebSocket { ws };
            self.out.push_back(Transmit::Frame {
                id: ws,
                frame: Data::Text(Str::from_static("5")),
            });
            self.events.push_back(EngineEvent::Upgrade);
            self.flush();
        }
    }

    /// The WebSocket `id` closed or failed.
    pub(crate) fn handle_ws_closed(&mut self, id: RequestId, error: bool) {
        if matches!(self.transport, Transport::WebSocket { ws } if ws == id) {
            self.fail(if error {
                DisconnectReason::TransportError
            } else {
                DisconnectReason::TransportClose
            });
        } else {
            self.probe_failed(id);
        }
    }
}

/// How long the client waits for the next ping.
fn heartbeat(h: &Handshake) -> Duration {
    Duration::from_millis(
        h.ping_interval
            .saturating_add(h.ping_timeout)
            .min(u64::from(u32::MAX)),
    )
}

/// Percent-encodes a query component as `encodeURIComponent` does.
pub(crate) fn encode_component(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
}
