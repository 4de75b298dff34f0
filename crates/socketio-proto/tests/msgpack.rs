//! The msgpack parser (`Config::parser`, the reference's `parser` option
//! with `socket.io-msgpack-parser`): every packet travels as one binary
//! message, over WebSocket and long-polling, both ways; broadcasts are
//! encoded once; a text message is a protocol error.

#![allow(clippy::unwrap_used)]

mod harness;

use base64::Engine as _;
use bytes::Bytes;
use harness::Harness;
use socketio_proto::socketio_packet::msgpack;
use socketio_proto::{
    BroadcastOptions, Config, Data, Event, Packet, PacketKind, Parser, Payload, RequestId, Str,
};

fn config() -> Config {
    Config::default().with_parser(Parser::Msgpack)
}

fn binary(packet: &Packet) -> Data {
    Data::Binary(msgpack::encode(packet))
}

/// The packets of the binary frames sent on `ws` since the last call;
/// a text frame fails the test.
fn packets(h: &mut Harness, ws: RequestId) -> Vec<Packet> {
    h.pump();
    let mut out = Vec::new();
    h.frames.retain(|(t, f)| {
        if *t != ws {
            return true;
        }
        match f {
            Data::Binary(b) => out.push(msgpack::decode(b.clone()).unwrap()),
            Data::Text(s) => panic!("a text frame with the msgpack parser: {s}"),
        }
        false
    });
    out
}

/// The JSON of a packet's payload, binary values as their placeholders.
fn json(packet: &Packet) -> String {
    packet
        .payload()
        .map(|p| p.to_json().json().to_string())
        .unwrap_or_default()
}

fn bytes(data: &[u8]) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(data.to_vec())
}

#[test]
fn over_websocket_every_packet_is_one_binary_message() {
    let mut h = Harness::new(config());
    let (sid, ws) = h.open_websocket();
    h.ws_send(&sid, ws, binary(&Packet::connect(Str::from("/"), None)));
    let answer = packets(&mut h, ws);
    assert_eq!(answer.len(), 1);
    assert!(matches!(answer[0].kind, PacketKind::Connect(Some(_))));
    assert!(json(&answer[0]).starts_with(r#"{"sid":""#));

    // An event with binary and an ack id reaches the application as the
    // text parser's would: JSON with placeholders, and the attachments.
    let up = Packet::event(Str::from("/"), "up", &(bytes(&[1, 2, 3]), "x"), Some(7)).unwrap();
    h.ws_send(&sid, ws, binary(&up));
    let message = h
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .unwrap();
    assert_eq!(&*message.name, "up");
    assert_eq!(message.ack_id, Some(7));
    assert_eq!(
        message.data.json().as_str(),
        r#"["up",{"_placeholder":true,"num":0},"x"]"#
    );
    assert_eq!(
        message.data.attachments(),
        &[Bytes::from_static(&[1, 2, 3])]
    );
    let (bin, text): (serde_bytes::ByteBuf, String) = message.args().unwrap();
    assert_eq!(bin.as_slice(), &[1, 2, 3]);
    assert_eq!(text, "x");

    // The answer, with binary, is one message: type 3, the bytes as `bin`.
    let args = Payload::from_value(&(bytes(&[9]), 1)).unwrap();
    h.conn(&sid).ack("/", 7, args).unwrap();
    let ack = packets(&mut h, ws);
    assert_eq!(ack.len(), 1);
    let PacketKind::Ack { id, data } = &ack[0].kind else {
        panic!("{:?}", ack[0]);
    };
    assert_eq!(*id, 7);
    assert_eq!(data.attachments(), &[Bytes::from_static(&[9])]);
    assert_eq!(json(&ack[0]), r#"[{"_placeholder":true,"num":0},1]"#);

    // A server event asking for an ack, and the client's answer.
    let down = Packet::event(Str::from("/"), "down", &("q",), None).unwrap();
    let now = h.now;
    let id = h
        .conn(&sid)
        .emit_with_ack(now, down, std::time::Duration::from_secs(5), true)
        .unwrap();
    let sent = packets(&mut h, ws);
    assert_eq!(sent.len(), 1);
    assert!(matches!(sent[0].kind, PacketKind::Event { id: Some(i), .. } if i == id));
    let reply = Packet::ack(Str::from("/"), id, &(bytes(&[4, 2]),)).unwrap();
    h.ws_send(&sid, ws, binary(&reply));
    let acked = h
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::Ack { id: got, data, .. } if got == id => Some(data),
            _ => None,
        })
        .unwrap();
    assert_eq!(acked.json().as_str(), r#"[{"_placeholder":true,"num":0}]"#);
    assert_eq!(acked.attachments(), &[Bytes::from_static(&[4, 2])]);
}

#[test]
fn a_broadcast_is_encoded_once_as_msgpack() {
    let mut h = Harness::new(config());
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let (sid, ws) = h.open_websocket();
        h.ws_send(&sid, ws, binary(&Packet::connect(Str::from("/"), None)));
        let _ = packets(&mut h, ws);
        sockets.push((sid, ws));
    }
    let packet = Packet::event(Str::from("/"), "news", &(bytes(&[1]), 2), None).unwrap();
    let plan = h
        .endpoint
        .broadcast(h.now, &packet, &BroadcastOptions::all());
    assert!(plan.encoded.is_msgpack());
    assert!(plan.encoded.text().is_empty());
    assert_eq!(plan.encoded.attachments(), &[msgpack::encode(&packet)]);
    assert_eq!(plan.targets.len(), 2);
    for (sid, ws) in &sockets {
        h.conn(sid).send_encoded("/", &plan.encoded, false).unwrap();
        let got = packets(&mut h, *ws);
        assert_eq!(got.len(), 1);
        assert_eq!(json(&got[0]), r#"["news",{"_placeholder":true,"num":0},2]"#);
    }
}

#[test]
fn over_polling_messages_are_base64_binaries() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let b64 = |p: &Packet| {
        format!(
            "b{}",
            base64::engine::general_purpose::STANDARD.encode(msgpack::encode(p))
        )
    };
    let connect = b64(&Packet::connect(Str::from("/"), None));
    let unknown = b64(&Packet::connect(Str::from("/nowhere"), None));
    assert_eq!(h.post(&sid, &format!("{connect}\x1e{unknown}")).status, 200);
    let get = h.get(&sid);
    let body = h.body(get);
    let answers: Vec<Packet> = body
        .split('\x1e')
        .map(|m| {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(
                    m.strip_prefix('b')
                        .unwrap_or_else(|| panic!("not binary: {m}")),
                )
                .unwrap();
            msgpack::decode(Bytes::from(raw)).unwrap()
        })
        .collect();
    assert_eq!(answers.len(), 2, "{body}");
    assert!(matches!(answers[0].kind, PacketKind::Connect(Some(_))));
    assert_eq!(&*answers[1].nsp, "/nowhere");
    assert!(matches!(answers[1].kind, PacketKind::ConnectError(_)));
    assert_eq!(json(&answers[1]), r#"{"message":"Invalid namespace"}"#);
}

#[test]
fn a_text_message_or_bad_msgpack_closes_the_connection() {
    for frame in [
        Data::Text(Str::from("40")),
        Data::Binary(Bytes::from_static(&[0x81, 0xa4])),
        Data::Binary(Bytes::from_static(&[
            0x82, 0xa4, b't', b'y', b'p', b'e', 0x09, 0xa3, b'n', b's', b'p', 0xa1, b'/',
        ])),
    ] {
        let mut h = Harness::new(config());
        let (sid, ws) = h.open_websocket();
        h.ws_send(&sid, ws, frame);
        let events = h.event_names();
        assert!(events.contains(&"protocol-error".to_owned()), "{events:?}");
        assert!(events.iter().any(|e| e.starts_with("closed")), "{events:?}");
    }
}

#[test]
fn with_recovery_a_stored_broadcast_carries_its_offset_in_msgpack() {
    let mut h = Harness::new(config().with_recovery(Some(socketio_proto::Recovery::default())));
    let (sid, ws) = h.open_websocket();
    h.ws_send(&sid, ws, binary(&Packet::connect(Str::from("/"), None)));
    let answer = packets(&mut h, ws);
    let answer = json(&answer[0]);
    assert!(answer.contains(r#""pid":""#), "{answer}");
    let packet = Packet::event(Str::from("/"), "news", &(bytes(&[1]),), None).unwrap();
    let plan = h
        .endpoint
        .broadcast(h.now, &packet, &BroadcastOptions::all());
    assert!(plan.stored);
    assert!(plan.encoded.is_msgpack());
    h.conn(&sid)
        .send_encoded("/", &plan.encoded, false)
        .unwrap();
    let got = packets(&mut h, ws);
    let (bin, offset): (serde_bytes::ByteBuf, String) = got[0].event_args().unwrap();
    assert_eq!(bin.as_slice(), &[1]);
    assert_eq!(
        offset.len(),
        20,
        "the offset, a string, is the last argument"
    );
}
