//! Drives the client state machine with arbitrary server answers (polling bodies, WebSocket
//! messages, HTTP errors, failures), WebSocket openings and closings, application commands and
//! clock moves; the client never panics and keeps its buffers within their bounds.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketio_client_proto::{
    Client, Config, Data, EmitOptions, Method, RequestId, Transmit, Transports,
};

/// Pieces of server output, for inputs to assemble into plausible bodies.
const PIECES: &[&str] = &[
    "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":300,\"pingTimeout\":200,\"maxPayload\":64}",
    "40{\"sid\":\"a\"}",
    "40{\"sid\":\"a\",\"pid\":\"p\"}",
    "40/admin,{\"sid\":\"b\"}",
    "42[\"e\",1,\"off\"]",
    "420[\"e\"]",
    "42/admin,[\"x\"]",
    "430[1]",
    "431[]",
    "451-[\"b\",{\"_placeholder\":true,\"num\":0}]",
    "461-0[{\"_placeholder\":true,\"num\":0}]",
    "bAQI=",
    "2",
    "3probe",
    "1",
    "6",
    "41",
    "41/admin,",
    "44{\"message\":\"no\",\"data\":{\"x\":1}}",
    "44/admin,\"no\"",
    "\u{1e}",
];

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn raw(&mut self) -> Option<Vec<u8>> {
        let n = usize::from(self.byte()?).min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a.to_vec())
    }

    /// Either raw bytes, or up to 4 pieces joined with the record separator.
    fn body(&mut self) -> Option<Vec<u8>> {
        let how = self.byte()?;
        if how & 1 == 0 {
            return self.raw();
        }
        let mut parts = Vec::new();
        for _ in 0..=(how >> 1) % 4 {
            parts.push(PIECES[usize::from(self.byte()?) % PIECES.len()]);
        }
        Some(parts.join("\u{1e}").into_bytes())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader(data);
    let Some(first) = r.byte() else { return };
    let transports = match first % 3 {
        0 => Transports::PollingThenWebSocket,
        1 => Transports::Polling,
        _ => Transports::WebSocket,
    };
    let config = Config {
        transports,
        max_incoming: 512,
        max_buffered: 1024,
        reconnection_attempts: u32::from(first >> 4),
        ..Config::default()
    };
    let max_buffered = config.max_buffered;
    let mut client = Client::new(config, u64::from(first));
    let mut now = Instant::now();
    let _ = client.connect(now, "/", None);
    let mut requests: Vec<(RequestId, Method)> = Vec::new();
    let mut sockets: Vec<RequestId> = Vec::new();
    while let Some(op) = r.byte() {
        while let Some(t) = client.poll_transmit() {
            match t {
                Transmit::Http { id, method, .. } => requests.push((id, method)),
                Transmit::OpenWebSocket { id, .. } => sockets.push(id),
                Transmit::Cancel { id } => requests.retain(|(r, _)| *r != id),
                Transmit::CloseWebSocket { id } => sockets.retain(|s| *s != id),
                Transmit::Frame { .. } => {}
            }
        }
        while client.poll_event().is_some() {}
        let pick = usize::from(op >> 4);
        match op % 12 {
            0 | 1 => {
                let Some(body) = r.body() else { break };
                if !requests.is_empty() {
                    let (id, _) = requests.remove(pick % requests.len());
                    let status = if op & 0x80 == 0 { 200 } else { 400 };
                    client.handle_response(now, id, status, Bytes::from(body));
                }
            }
            2 | 3 => {
                let Some(body) = r.body() else { break };
                if !sockets.is_empty() {
                    let ws = sockets[pick % sockets.len()];
                    let frame = match String::from_utf8(body) {
                        Ok(text) if op & 0x80 == 0 => Data::Text(text.into()),
                        Ok(text) => Data::Binary(Bytes::from(text.into_bytes())),
                        Err(e) => Data::Binary(Bytes::from(e.into_bytes())),
                    };
                    client.handle_ws_message(now, ws, frame);
                }
            }
            4 => {
                if !sockets.is_empty() {
                    client.handle_ws_open(now, sockets[pick % sockets.len()]);
                }
            }
            5 => {
                if !sockets.is_empty() {
                    let ws = sockets.remove(pick % sockets.len());
                    client.handle_ws_closed(now, ws, op & 0x80 != 0);
                }
            }
            6 => {
                if !requests.is_empty() {
                    let (id, _) = requests.remove(pick % requests.len());
                    client.handle_failure(now, id);
                }
            }
            7 => {
                now += Duration::from_millis(u64::from(r.byte().unwrap_or(0)) * 20);
                client.handle_timeout(now);
            }
            8 => {
                let options = EmitOptions {
                    ack: op & 0x10 != 0,
                    timeout: (op & 0x20 != 0).then(|| Duration::from_millis(100)),
                    volatile: op & 0x40 != 0,
                };
                let nsp = if op & 0x80 == 0 { "/" } else { "/admin" };
                let _ = client.emit(now, nsp, "ev", &("x", Bytes::from_static(b"y")), options);
            }
            9 => {
                let nsp = if op & 0x80 == 0 { "/" } else { "/admin" };
                let _ = client.connect(now, nsp, None);
            }
            10 => {
                let nsp = if op & 0x80 == 0 { "/" } else { "/admin" };
                if op & 0x40 == 0 {
                    client.disconnect(nsp);
                } else {
                    let _ = client.ack(nsp, u64::from(op & 3), &(1,));
                }
            }
            _ => {
                if op & 0xf0 == 0xf0 {
                    client.close();
                }
            }
        }
        assert!(client.buffered_bytes() <= max_buffered);
        assert_eq!(client.is_open(), client.engine_sid().is_some());
    }
});
