//! A client with a virtual clock and a scripted server. No sockets, no sleeps.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use socketio_client_proto::{Client, Config, Data, Event, Method, RequestId, Str, Transmit};

/// The client, what it asked for and what it said, and `now`.
pub struct Harness {
    pub client: Client,
    pub now: Instant,
    /// Transmits not yet taken by the test, in order.
    pub transmits: Vec<Transmit>,
    /// Events not yet taken by the test, in order.
    pub events: Vec<Event>,
}

/// The open packet of a session `sid`.
pub fn open_packet(
    sid: &str,
    upgrades: &[&str],
    ping_interval: u64,
    ping_timeout: u64,
    max_payload: u64,
) -> String {
    let upgrades: Vec<String> = upgrades.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "0{{\"sid\":\"{sid}\",\"upgrades\":[{}],\"pingInterval\":{ping_interval},\"pingTimeout\":{ping_timeout},\"maxPayload\":{max_payload}}}",
        upgrades.join(",")
    )
}

impl Harness {
    pub fn new(config: Config) -> Harness {
        Harness {
            client: Client::new(config, 7),
            now: Instant::now(),
            transmits: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Moves the client's outputs into `transmits` and `events`.
    pub fn pump(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            // A request given up is no longer the test's to answer.
            if let Transmit::Cancel { id } = &t {
                self.transmits
                    .retain(|p| !matches!(p, Transmit::Http { id: h, .. } if h == id));
            }
            self.transmits.push(t);
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }

    /// Lets `d` pass, firing every deadline on the way at its time.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.pump();
            match self.client.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.client.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
        self.client.handle_timeout(self.now);
        self.pump();
    }

    /// Takes the events so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.pump();
        std::mem::take(&mut self.events)
    }

    /// Takes the first pending request with `method`: its id, path and query, and body.
    pub fn take_http(&mut self, method: Method) -> (RequestId, String, String) {
        self.pump();
        let at = self
            .transmits
            .iter()
            .position(|t| matches!(t, Transmit::Http { method: m, .. } if *m == method))
            .unwrap_or_else(|| panic!("no {method:?} in {:?}", self.transmits));
        let Transmit::Http {
            id,
            path_and_query,
            body,
            ..
        } = self.transmits.remove(at)
        else {
            unreachable!()
        };
        (
            id,
            path_and_query,
            String::from_utf8(body.to_vec()).expect("utf-8 body"),
        )
    }

    /// Whether a request with `method` is pending.
    pub fn has_http(&mut self, method: Method) -> bool {
        self.pump();
        self.transmits
            .iter()
            .any(|t| matches!(t, Transmit::Http { method: m, .. } if *m == method))
    }

    pub fn take_get(&mut self) -> RequestId {
        self.take_http(Method::Get).0
    }

    /// Takes a POST and answers it `ok`; returns its body.
    pub fn take_post(&mut self) -> String {
        let (id, _, body) = self.take_http(Method::Post);
        self.respond(id, "ok");
        body
    }

    /// Every POST body until none is pending, each answered `ok`, joined with `\x1e`.
    pub fn posts(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while self.has_http(Method::Post) {
            out.push(self.take_post());
        }
        out
    }

    pub fn respond(&mut self, id: RequestId, body: &str) {
        self.client
            .handle_response(self.now, id, 200, Bytes::copy_from_slice(body.as_bytes()));
        self.pump();
    }

    pub fn respond_status(&mut self, id: RequestId, status: u16, body: &str) {
        self.client.handle_response(
            self.now,
            id,
            status,
            Bytes::copy_from_slice(body.as_bytes()),
        );
        self.pump();
    }

    /// Answers the handshake GET with a session `sid` (25 s / 20 s heartbeat, 1 MB max payload).
    pub fn open_polling(&mut self, sid: &str, upgrades: &[&str]) {
        let (id, query, _) = self.take_http(Method::Get);
        assert!(query.contains("transport=polling"), "{query}");
        assert!(!query.contains("sid="), "{query}");
        self.respond(id, &open_packet(sid, upgrades, 25000, 20000, 1_000_000));
    }

    /// Opens over polling and joins `/` with socket id `socket`.
    pub fn connected(&mut self, sid: &str, socket: &str) {
        self.open_polling(sid, &[]);
        assert_eq!(self.posts(), ["40"]);
        let get = self.take_get();
        self.respond(get, &format!("40{{\"sid\":\"{socket}\"}}"));
        self.take_events();
    }

    /// Takes the first pending WebSocket to open: its id and path and query.
    pub fn take_ws_open(&mut self) -> (RequestId, String) {
        self.pump();
        let at = self
            .transmits
            .iter()
            .position(|t| matches!(t, Transmit::OpenWebSocket { .. }))
            .unwrap_or_else(|| panic!("no WebSocket to open in {:?}", self.transmits));
        let Transmit::OpenWebSocket { id, path_and_query } = self.transmits.remove(at) else {
            unreachable!()
        };
        (id, path_and_query)
    }

    /// Takes the frames sent on `ws` so far, as text (binary frames as `<bin:N>` of their length).
    pub fn frames(&mut self, ws: RequestId) -> Vec<String> {
        self.pump();
        let mut out = Vec::new();
        self.transmits.retain(|t| match t {
            Transmit::Frame { id, frame } if *id == ws => {
                out.push(match frame {
                    Data::Text(s) => s.to_string(),
                    Data::Binary(b) => format!("<bin:{}>", b.len()),
                });
                false
            }
            _ => true,
        });
        out
    }

    pub fn ws_text(&mut self, ws: RequestId, text: &str) {
        self.client
            .handle_ws_message(self.now, ws, Data::Text(Str::from(text)));
        self.pump();
    }

    /// Whether the client asked to close the WebSocket `ws`.
    pub fn ws_closed_by_client(&mut self, ws: RequestId) -> bool {
        self.pump();
        self.transmits
            .iter()
            .any(|t| matches!(t, Transmit::CloseWebSocket { id } if *id == ws))
    }
}
