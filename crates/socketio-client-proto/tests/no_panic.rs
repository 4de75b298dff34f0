//! Whatever a server sends, the client does not panic, and what it holds stays bounded.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use socketio_client_proto::{Client, Config, Data, EmitOptions, Method, Transmit, Transports};

#[derive(Debug, Clone)]
enum Step {
    /// Answer the oldest request with this status and body.
    Respond(u16, Vec<u8>),
    /// A text message on the newest WebSocket.
    WsText(String),
    /// A binary message on the newest WebSocket.
    WsBinary(Vec<u8>),
    WsOpen,
    WsClosed,
    Fail,
    Advance(u16),
    Emit,
}

fn step() -> impl Strategy<Value = Step> {
    let packets = prop::sample::select(vec![
        "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":100,\"pingTimeout\":100,\"maxPayload\":50}",
        "40{\"sid\":\"a\",\"pid\":\"p\"}",
        "40/admin,{\"sid\":\"b\"}",
        "42[\"e\",1,\"o\"]",
        "430[1]",
        "451-[\"b\",{\"_placeholder\":true,\"num\":0}]",
        "bAQI=",
        "2",
        "3probe",
        "1",
        "6",
        "41",
        "44{\"message\":\"no\"}",
        "4",
        "42",
        "\u{1e}",
        "x",
    ]);
    let body = prop::collection::vec(packets, 0..6).prop_map(|p| p.join("\u{1e}"));
    prop_oneof![
        (
            prop::sample::select(vec![200u16, 200, 400, 500]),
            body.clone()
        )
            .prop_map(|(s, b)| Step::Respond(s, b.into_bytes())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| Step::Respond(200, b)),
        body.prop_map(Step::WsText),
        prop::collection::vec(any::<u8>(), 0..10).prop_map(Step::WsBinary),
        Just(Step::WsOpen),
        Just(Step::WsClosed),
        Just(Step::Fail),
        (0u16..3000).prop_map(Step::Advance),
        Just(Step::Emit),
    ]
}

proptest! {
    #[test]
    fn no_input_panics(transports in prop::sample::select(vec![Transports::PollingThenWebSocket, Transports::Polling, Transports::WebSocket]),
                       steps in prop::collection::vec(step(), 0..60)) {
        let config = Config { transports, max_buffered: 4096, ..Config::default() };
        let mut client = Client::new(config, 3);
        let mut now = Instant::now();
        client.connect(now, "/", None).unwrap();
        client.connect(now, "/admin", None).unwrap();
        let mut requests = Vec::new();
        let mut sockets = Vec::new();
        for step in steps {
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
            match step {
                Step::Respond(status, body) => if !requests.is_empty() {
                    let (id, _) = requests.remove(0);
                    client.handle_response(now, id, status, Bytes::from(body));
                },
                Step::WsText(t) => if let Some(&ws) = sockets.last() {
                    client.handle_ws_message(now, ws, Data::Text(t.into()));
                },
                Step::WsBinary(b) => if let Some(&ws) = sockets.last() {
                    client.handle_ws_message(now, ws, Data::Binary(Bytes::from(b)));
                },
                Step::WsOpen => if let Some(&ws) = sockets.last() { client.handle_ws_open(now, ws) },
                Step::WsClosed => if let Some(ws) = sockets.pop() { client.handle_ws_closed(now, ws, false) },
                Step::Fail => if let Some((id, _)) = requests.pop() { client.handle_failure(now, id) },
                Step::Advance(ms) => {
                    now += Duration::from_millis(u64::from(ms));
                    client.handle_timeout(now);
                }
                Step::Emit => {
                    let _ = client.emit(now, "/", "ev", &("x",), EmitOptions { ack: true, ..Default::default() });
                }
            }
            prop_assert!(client.buffered_bytes() <= 4096);
            // At most a GET, a POST and a close POST, and two WebSockets, are in flight.
            prop_assert!(requests.iter().filter(|(_, m)| *m == Method::Get).count() <= 2, "{requests:?}");
            prop_assert!(sockets.len() <= 3, "{sockets:?}");
        }
    }
}
