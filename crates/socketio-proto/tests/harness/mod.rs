//! A scripted client and a virtual clock around one endpoint and its
//! connections. No sockets, no sleeps.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use socketio_proto::{
    Config, Connection, ConnectionHandle, Data, Endpoint, Event, IdGenerator, NotRecovered,
    Request, RequestId, Response, Route, Str, Transmit,
};

/// The endpoint, its connections, every output they produced, and `now`.
pub struct Harness {
    pub endpoint: Endpoint,
    pub conns: HashMap<ConnectionHandle, Box<Connection>>,
    pub now: Instant,
    next_id: u64,
    pub responses: HashMap<RequestId, Response>,
    pub frames: Vec<(RequestId, Data)>,
    pub closed_ws: Vec<RequestId>,
    pub events: Vec<Event>,
    /// Accept every connect request to a namespace the endpoint has.
    pub auto_accept: bool,
    /// Why each request to recover a session was refused, in order.
    pub not_recovered: Vec<NotRecovered>,
}

impl Harness {
    pub fn new(config: Config) -> Harness {
        Harness::seeded(config, 42)
    }

    /// A harness whose ids come from seed `seed` (nodes of one cluster
    /// need different seeds).
    pub fn seeded(config: Config, seed: u8) -> Harness {
        Harness {
            endpoint: Endpoint::with_ids(config, IdGenerator::from_seed([seed; 32])),
            conns: HashMap::new(),
            now: Instant::now(),
            next_id: 1,
            responses: HashMap::new(),
            frames: Vec::new(),
            closed_ws: Vec::new(),
            events: Vec::new(),
            auto_accept: true,
            not_recovered: Vec::new(),
        }
    }

    pub fn id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    /// Drains every output of every connection, answering connect requests
    /// like a server with the endpoint's namespaces.
    pub fn pump(&mut self) {
        loop {
            let mut progress = false;
            let handles: Vec<ConnectionHandle> = self.conns.keys().copied().collect();
            for h in handles {
                let conn = self.conns.get_mut(&h).expect("connection");
                let had_output = conn.has_output();
                let had_events = conn.has_events();
                let before = progress;
                progress = false;
                let mut events = false;
                while let Some((id, r)) = conn.poll_response() {
                    assert!(
                        self.responses.insert(id, r).is_none(),
                        "request {id:?} answered twice"
                    );
                    progress = true;
                    events = true;
                }
                while let Some(t) = conn.poll_transmit() {
                    match t {
                        Transmit::Frame {
                            transport, frame, ..
                        } => self.frames.push((transport, frame)),
                        Transmit::Close { transport } => self.closed_ws.push(transport),
                    }
                    progress = true;
                }
                while let Some(ev) = conn.poll_endpoint_event() {
                    self.endpoint.handle_event(self.now, h, ev);
                    progress = true;
                    events = true;
                }
                while let Some(ev) = conn.poll_event() {
                    progress = true;
                    events = true;
                    if let Event::ConnectRequest { nsp, resume, .. } = &ev
                        && self.auto_accept
                    {
                        if self.endpoint.has_namespace(nsp) {
                            // A client asking for its session gets it back
                            // when the endpoint still has it.
                            let restored = resume
                                .as_ref()
                                .map(|r| self.endpoint.restore(self.now, nsp, r));
                            match restored {
                                Some(Ok(restored)) => {
                                    conn.accept_restored(&restored).expect("accept");
                                }
                                Some(Err(why)) => {
                                    self.not_recovered.push(why);
                                    conn.accept(nsp).expect("accept");
                                }
                                None => {
                                    conn.accept(nsp).expect("accept");
                                }
                            }
                        } else {
                            conn.reject_unknown_namespace(nsp).expect("reject");
                        }
                    }
                    self.events.push(ev);
                }
                assert_eq!(
                    had_output, progress,
                    "has_output() disagrees with the poll_* methods"
                );
                assert_eq!(
                    had_events, events,
                    "has_events() disagrees with the poll_* methods"
                );
                progress |= before;
            }
            if !progress {
                break;
            }
        }
    }

    /// Sends a request; returns its id (the answer may come later).
    pub fn request(&mut self, req: Request) -> RequestId {
        let id = self.id();
        match self.endpoint.handle_request(self.now, id, &req) {
            Route::Respond(r) => {
                self.responses.insert(id, r);
            }
            Route::New(h, conn) => {
                self.conns.insert(h, conn);
            }
            Route::Existing(h) => {
                let now = self.now;
                if let Some(conn) = self.conns.get_mut(&h) {
                    conn.handle_request(now, id, req);
                }
            }
        }
        self.pump();
        id
    }

    /// The answer to request `id`, if it came.
    pub fn answer(&mut self, id: RequestId) -> Option<Response> {
        self.responses.remove(&id)
    }

    /// The body of the answer to `id`, which must have come.
    pub fn body(&mut self, id: RequestId) -> String {
        self.answer(id)
            .unwrap_or_else(|| panic!("request {id:?} was not answered"))
            .body_text()
    }

    /// Opens a polling session; returns its sid.
    pub fn open_polling(&mut self) -> String {
        let id = self.request(Request::get("/socket.io/?EIO=4&transport=polling"));
        let body = self.body(id);
        sid_of(&body)
    }

    /// Opens a WebSocket session; returns the sid and the WebSocket's id.
    pub fn open_websocket(&mut self) -> (String, RequestId) {
        let ws = self.request(Request::websocket("/socket.io/?EIO=4&transport=websocket"));
        let open = self.text_frames(ws).remove(0);
        (sid_of(&open), ws)
    }

    pub fn get(&mut self, sid: &str) -> RequestId {
        self.request(Request::get(&format!(
            "/socket.io/?EIO=4&transport=polling&sid={sid}"
        )))
    }

    pub fn post(&mut self, sid: &str, body: &str) -> Response {
        let id = self.request(Request::post(
            &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
            Bytes::copy_from_slice(body.as_bytes()),
        ));
        self.answer(id).expect("a POST is answered at once")
    }

    /// Opens a WebSocket for an existing session (an upgrade).
    pub fn upgrade_ws(&mut self, sid: &str) -> RequestId {
        self.request(Request::websocket(&format!(
            "/socket.io/?EIO=4&transport=websocket&sid={sid}"
        )))
    }

    /// Sends a frame on WebSocket `ws` of session `sid`.
    pub fn ws_send(&mut self, sid: &str, ws: RequestId, frame: Data) {
        let now = self.now;
        let conn = self
            .conns
            .values_mut()
            .find(|c| &**c.sid() == sid)
            .expect("session");
        conn.handle_frame(now, ws, frame);
        self.pump();
    }

    pub fn ws_text(&mut self, sid: &str, ws: RequestId, text: &str) {
        self.ws_send(sid, ws, Data::Text(Str::from(text.to_owned())));
    }

    /// Every frame sent on `ws` since the last call, as text (binary frames
    /// as `<binary N bytes>`).
    pub fn text_frames(&mut self, ws: RequestId) -> Vec<String> {
        self.pump();
        let mut out = Vec::new();
        self.frames.retain(|(t, f)| {
            if *t == ws {
                out.push(match f {
                    Data::Text(s) => s.to_string(),
                    Data::Binary(b) => format!("<binary {:?}>", b.as_ref()),
                });
                false
            } else {
                true
            }
        });
        out
    }

    /// Moves the clock and fires every due timer.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        loop {
            let next = self
                .conns
                .values()
                .filter_map(|c| c.poll_timeout())
                .filter(|&t| t <= target)
                .min();
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            let now = self.now;
            for c in self.conns.values_mut() {
                if c.poll_timeout().is_some_and(|d| d <= now) {
                    c.handle_timeout(now);
                }
            }
            self.pump();
        }
        self.now = target;
    }

    pub fn conn(&mut self, sid: &str) -> &mut Connection {
        self.conns
            .values_mut()
            .find(|c| &**c.sid() == sid)
            .expect("session")
    }

    pub fn handle_of(&self, sid: &str) -> ConnectionHandle {
        *self
            .conns
            .iter()
            .find(|(_, c)| &**c.sid() == sid)
            .expect("session")
            .0
    }

    /// Takes the events collected so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.pump();
        std::mem::take(&mut self.events)
    }

    /// Takes the events, keeping only their debug form's first word and key data.
    pub fn event_names(&mut self) -> Vec<String> {
        self.take_events()
            .into_iter()
            .map(|e| match e {
                Event::ConnectRequest { nsp, .. } => format!("connect-request {nsp}"),
                Event::Connected { nsp, .. } => format!("connected {nsp}"),
                Event::Message(m) => format!("message {} {} {:?}", m.nsp, m.data.json(), m.ack_id),
                Event::Ack { id, data, .. } => format!("ack {id} {}", data.json()),
                Event::AckTimedOut { id, .. } => format!("ack-timeout {id}"),
                Event::Disconnected { nsp, reason, .. } => format!("disconnected {nsp} {reason}"),
                Event::ProtocolError { .. } => "protocol-error".to_owned(),
                Event::Upgraded => "upgraded".to_owned(),
                Event::EngineMessage(d) => format!("engine-message {d:?}"),
                Event::Closed { reason } => format!("closed {reason}"),
            })
            .collect()
    }
}

/// The sid in an open packet (`0{"sid":"..."...}`), possibly after a `\x1e`.
pub fn sid_of(open: &str) -> String {
    let start = open.find("\"sid\":\"").expect("an open packet") + 7;
    let end = open[start..].find('"').expect("closing quote") + start;
    open[start..end].to_owned()
}
