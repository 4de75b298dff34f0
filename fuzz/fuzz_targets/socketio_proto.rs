//! Drives the whole server state machine with arbitrary sequences of
//! requests, frames, transport closings, commands and clock moves.
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketio_proto::{
    BroadcastOptions, Config, Connection, ConnectionHandle, Data, DisconnectReason, Endpoint,
    Event, IdGenerator, Method, Parser, Recovery, Request, RequestId, Route, Str, Transmit,
};

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn bytes(&mut self) -> Option<&[u8]> {
        let n = usize::from(self.byte()?).min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn text(&mut self) -> Option<String> {
        Some(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
}

/// `{type, nsp, id?, data}` around `data`: `ty` chooses the type (its low
/// three bits, so 5 to 7 are invalid), the namespace and the ack id.
fn msgpack_packet(ty: u8, data: &[u8]) -> Vec<u8> {
    let id = ty & 8 != 0;
    let mut out = vec![if id { 0x84 } else { 0x83 }];
    out.extend_from_slice(b"\xa4type");
    out.push(ty & 7);
    match ty & 16 {
        0 => out.extend_from_slice(b"\xa3nsp\xa1/"),
        _ => out.extend_from_slice(b"\xa3nsp\xa6/admin"),
    }
    if id {
        out.extend_from_slice(b"\xa2id");
        out.push(ty >> 5);
    }
    out.extend_from_slice(b"\xa4data");
    out.extend_from_slice(data);
    out
}

fuzz_target!(|data: &[u8]| {
    let msgpack = data.first().is_some_and(|b| b & 4 == 4);
    let config = Config::default()
        .with_heartbeat(Duration::from_millis(300), Duration::from_millis(200))
        .with_connect_timeout(Duration::from_millis(1000))
        .with_eio3(data.first().is_some_and(|b| b & 1 == 1))
        .with_max_buffer_size(4096)
        .with_max_payload(4096)
        // Bit 2: connection state recovery, with small bounds.
        .with_recovery(data.first().is_some_and(|b| b & 2 == 2).then(|| {
            Recovery::default()
                .with_max_disconnection_duration(Duration::from_millis(2000))
                .with_store_bounds(8, 4096)
                .with_max_sessions(4)
                .with_missed_bounds(4, 1024)
        }))
        // Bit 4: the msgpack parser (every client message a msgpack packet).
        .with_parser(match msgpack {
            true => Parser::Msgpack,
            false => Parser::Default,
        });
    let mut endpoint = Endpoint::with_ids(config, IdGenerator::from_seed([3; 32]));
    endpoint.add_namespace("/admin");
    let mut conns: HashMap<ConnectionHandle, Box<Connection>> = HashMap::new();
    let mut sids: Vec<String> = Vec::new();
    let mut websockets: Vec<RequestId> = Vec::new();
    // What clients were told, to send back: private session ids and offsets.
    let mut pids: Vec<String> = Vec::new();
    let mut offsets: Vec<String> = Vec::new();
    let mut broadcasts: Vec<u8> = Vec::new();
    let mut now = Instant::now();
    let mut next = 0u64;
    let mut r = Reader(data);
    while let Some(op) = r.byte() {
        next += 1;
        let id = RequestId(next);
        let sid = sids
            .get(usize::from(op >> 4) % sids.len().max(1))
            .cloned()
            .unwrap_or_default();
        let eio = if op & 8 == 0 { "4" } else { "3" };
        let route = |req: Request, endpoint: &mut Endpoint| endpoint.handle_request(now, id, &req);
        let req = match op % 8 {
            0 => {
                // Bit 16: a JSONP session (its POSTs are forms).
                let jsonp = if op & 16 != 0 { "&j=1" } else { "" };
                Some(Request::get(&format!(
                    "/socket.io/?EIO={eio}&transport=polling{jsonp}"
                )))
            }
            1 => Some(Request::websocket(&format!(
                "/socket.io/?EIO={eio}&transport=websocket"
            ))),
            2 => Some(Request::get(&format!(
                "/socket.io/?EIO={eio}&transport=polling&sid={sid}"
            ))),
            3 => {
                let body = Bytes::copy_from_slice(r.bytes().unwrap_or_default());
                let mut req = Request::new(
                    Method::Post,
                    &format!("/socket.io/?EIO={eio}&transport=polling&sid={sid}"),
                    body,
                );
                if op & 16 != 0 {
                    req.content_type = Some("application/octet-stream".into());
                }
                if op & 32 != 0 {
                    // The binding stopped reading a body over max_payload.
                    req.body = Bytes::new();
                    req.body_too_large = true;
                }
                Some(req)
            }
            4 => Some(Request::websocket(&format!(
                "/socket.io/?EIO={eio}&transport=websocket&sid={sid}"
            ))),
            _ => None,
        };
        if let Some(req) = req {
            let websocket = req.websocket;
            match route(req.clone(), &mut endpoint) {
                Route::Respond(_) => {}
                Route::New(h, conn) => {
                    sids.push(conn.sid().to_string());
                    conns.insert(h, conn);
                    if websocket {
                        websockets.push(id);
                    }
                }
                Route::Existing(h) => {
                    if let Some(c) = conns.get_mut(&h) {
                        c.handle_request(now, id, req);
                        if websocket {
                            websockets.push(id);
                        }
                    }
                }
            }
        } else {
            let ws = websockets
                .get(usize::from(op >> 3) % websockets.len().max(1))
                .copied();
            for c in conns.values_mut() {
                if **c.sid() != sid {
                    continue;
                }
                match (op % 8, ws) {
                    (5, Some(ws)) => {
                        let frame = if op & 64 == 0 {
                            Data::Text(Str::from(r.text().unwrap_or_default()))
                        } else if msgpack && op & 128 != 0 {
                            // A msgpack packet map around arbitrary data,
                            // so that the parser's checks are reached.
                            let ty = r.byte().unwrap_or(0);
                            Data::Binary(Bytes::from(msgpack_packet(ty, r.bytes().unwrap_or_default())))
                        } else {
                            Data::Binary(Bytes::copy_from_slice(r.bytes().unwrap_or_default()))
                        };
                        c.handle_frame(now, ws, frame);
                    }
                    (6, _) => {
                        let arg = r.byte().unwrap_or(0);
                        match arg % 8 {
                            0 => {
                                if let Some(ws) = ws {
                                    c.handle_transport_closed(now, ws, arg & 8 != 0);
                                }
                            }
                            1 => {
                                if let Ok(p) = socketio_proto::Packet::event(
                                    Str::from("/"),
                                    "ev",
                                    &(Bytes::from_static(b"x"), "y"),
                                    None,
                                ) {
                                    let _ = c.emit(&p, arg & 8 != 0);
                                }
                            }
                            2 => {
                                if let Ok(p) = socketio_proto::Packet::event(
                                    Str::from("/admin"),
                                    "ev",
                                    &(1,),
                                    None,
                                ) {
                                    let _ = c.emit_with_ack(now, p, Duration::from_millis(100), true);
                                }
                            }
                            3 => {
                                let _ = c.disconnect(if arg & 8 == 0 { "/" } else { "/admin" });
                            }
                            4 => c.close(now, DisconnectReason::ForcedServerClose),
                            5 => {
                                let _ = c.ack("/", u64::from(arg), Default::default());
                            }
                            6 => {
                                // Asks for a session back, with a pid and an
                                // offset the server gave (or none).
                                let pid = pids.get(usize::from(arg >> 3) % pids.len().max(1));
                                let offset =
                                    offsets.get(usize::from(arg >> 4) % offsets.len().max(1));
                                if let (Some(pid), Some(ws)) = (pid, ws) {
                                    let text = match (offset, arg & 4 != 0) {
                                        (Some(o), true) => {
                                            format!(r#"40{{"pid":"{pid}","offset":"{o}"}}"#)
                                        }
                                        _ => format!(r#"40{{"pid":"{pid}"}}"#),
                                    };
                                    c.handle_frame(now, ws, Data::Text(Str::from(text)));
                                }
                            }
                            _ => broadcasts.push(arg),
                        }
                    }
                    _ => {
                        now += Duration::from_millis(u64::from(r.byte().unwrap_or(0)) * 5);
                        if c.poll_timeout().is_some_and(|t| t <= now) {
                            c.handle_timeout(now);
                        }
                    }
                }
            }
        }
        // Broadcasts, planned and handed to their connections.
        for arg in broadcasts.drain(..) {
            let opts = match arg % 3 {
                0 => BroadcastOptions::all(),
                1 => BroadcastOptions::all().volatile(),
                _ => BroadcastOptions::all().except(sid.clone()),
            };
            let nsp = if arg & 8 == 0 { "/" } else { "/admin" };
            if let Ok(p) = socketio_proto::Packet::event(Str::from(nsp), "b", &(arg,), None) {
                let plan = endpoint.broadcast(now, &p, &opts);
                for h in &plan.targets {
                    if let Some(c) = conns.get_mut(h) {
                        let _ = c.send_encoded(nsp, &plan.encoded, plan.volatile);
                    }
                }
            }
        }
        // Drain every output, as a binding would, keeping what a client
        // would keep to recover.
        for (h, c) in conns.iter_mut() {
            let mut keep = |text: &str| {
                if let Some(i) = text.find(r#""pid":""#) {
                    let rest = &text[i + 7..];
                    if let Some(end) = rest.find('"') {
                        pids.push(rest[..end].to_owned());
                    }
                }
                if text.contains(r#"2["b","#)
                    && text.ends_with(r#""]"#)
                    && let Some(start) = text[..text.len() - 2].rfind('"')
                {
                    offsets.push(text[start + 1..text.len() - 2].to_owned());
                }
            };
            while let Some((_, r)) = c.poll_response() {
                keep(&r.body_text());
            }
            while let Some(t) = c.poll_transmit() {
                if let Transmit::Frame {
                    frame: Data::Text(text),
                    ..
                } = t
                {
                    keep(&text);
                }
            }
            while let Some(ev) = c.poll_endpoint_event() {
                endpoint.handle_event(now, *h, ev);
            }
            while let Some(ev) = c.poll_event() {
                if let Event::ConnectRequest { nsp, resume, .. } = ev {
                    let restored = resume.map(|r| endpoint.restore(now, &nsp, &r));
                    if let Some(Ok(restored)) = restored {
                        if c.accept_restored(&restored).is_ok() {
                            // Under the same hold, as a binding must.
                            while let Some(ev) = c.poll_endpoint_event() {
                                endpoint.handle_event(now, *h, ev);
                            }
                        }
                    } else if endpoint.has_namespace(&nsp) {
                        let _ = c.accept(&nsp);
                    } else {
                        let _ = c.reject(&nsp, "Invalid namespace", None);
                    }
                }
            }
        }
        conns.retain(|_, c| !c.is_closed());
    }
    // Closed sessions leave nothing behind in the endpoint.
    let live: usize = conns.values().filter(|c| !c.is_closed()).count();
    assert_eq!(endpoint.session_count(), live);
    // The recovery store keeps its bounds.
    let (packets, sessions, bytes) = endpoint.recovery_store_size();
    assert!(packets <= 8 && sessions <= 4 && bytes <= 4096);
});
