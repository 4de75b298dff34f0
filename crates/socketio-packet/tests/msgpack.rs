//! The msgpack format: bytes as notepack writes them, and the checks of `socket.io-msgpack-parser`.
#![cfg(feature = "msgpack")]

use bytes::Bytes;
use serde::Deserialize;
use socketio_packet::{
    DecodeError, Packet, PacketKind, PacketType, Payload, ProtocolVersion, Str, msgpack,
};

/// msgpack bytes from a compact notation: hex bytes, and `'text'` for a fixstr.
fn mp(spec: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for tok in spec.split_whitespace() {
        if let Some(s) = tok.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
            out.push(0xa0 | s.len() as u8);
            out.extend_from_slice(s.as_bytes());
        } else {
            out.push(u8::from_str_radix(tok, 16).unwrap_or_else(|e| panic!("{tok}: {e}")));
        }
    }
    out
}

fn event(nsp: &str, name: &str, args: &impl serde::Serialize, id: Option<u64>) -> Packet {
    Packet::event(Str::from(nsp), name, args, id).unwrap_or_else(|e| panic!("{e}"))
}

#[derive(serde::Serialize)]
struct Order {
    b: u8,
    a: u8,
}

#[test]
fn encodes_as_notepack() {
    let cases: Vec<(Packet, &str)> = vec![
        // {type: 2, data: ["hello"], nsp: "/"}
        (
            event("/", "hello", &(), None),
            "83 'type' 02 'data' 91 'hello' 'nsp' '/'",
        ),
        // {type: 2, data: ["hi", 1, -1, 200, null, true], id: 3, nsp: "/chat"}
        (
            event("/chat", "hi", &(1, -1, 200, (), true), Some(3)),
            "84 'type' 02 'data' 96 'hi' 01 ff cc c8 c0 c3 'id' 03 'nsp' '/chat'",
        ),
        // {id: 1, type: 3, data: [42], nsp: "/"}
        (
            Packet::ack(Str::from("/"), 1, &(42,)).unwrap_or_else(|e| panic!("{e}")),
            "84 'id' 01 'type' 03 'data' 91 2a 'nsp' '/'",
        ),
        // {type: 0, data: {sid: "x"}, nsp: "/admin"}
        (
            Packet::connect(
                Str::from("/admin"),
                Some(
                    Payload::from_value(&serde_json::json!({"sid": "x"}))
                        .unwrap_or_else(|e| panic!("{e}")),
                ),
            ),
            "83 'type' 00 'data' 81 'sid' 'x' 'nsp' '/admin'",
        ),
        // {type: 0, nsp: "/"}
        (
            Packet::connect(Str::from("/"), None),
            "82 'type' 00 'nsp' '/'",
        ),
        // {type: 1, nsp: "/"}
        (Packet::disconnect(Str::from("/")), "82 'type' 01 'nsp' '/'"),
        // {type: 4, data: {message: "no"}, nsp: "/"}
        (
            Packet::connect_error(Str::from("/"), "no", None),
            "83 'type' 04 'data' 81 'message' 'no' 'nsp' '/'",
        ),
        // Binary values inline, as bin 8; floats as float 64; integral floats as integers.
        (
            event("/", "b", &(Bytes::from_static(&[1, 2]), 0.5), None),
            "83 'type' 02 'data' 93 'b' c4 02 01 02 cb 3f e0 00 00 00 00 00 00 'nsp' '/'",
        ),
        (
            event("/", "f", &(2.0,), None),
            "83 'type' 02 'data' 92 'f' 02 'nsp' '/'",
        ),
        // Key order is kept.
        (
            event("/", "o", &Order { b: 1, a: 2 }, None),
            "83 'type' 02 'data' 92 'o' 82 'b' 01 'a' 02 'nsp' '/'",
        ),
    ];
    for (packet, spec) in cases {
        assert_eq!(msgpack::encode(&packet), mp(spec), "{spec}");
        let decoded =
            msgpack::decode(Bytes::from(mp(spec))).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(msgpack::encode(&decoded), mp(spec), "{spec}");
        // An integral float becomes an integer, as in JavaScript.
        let text = packet.encode(ProtocolVersion::V5).replace("2.0", "2");
        assert_eq!(decoded.encode(ProtocolVersion::V5), text, "{spec}");
    }
}

#[test]
fn sizes_and_widths() {
    let long = "x".repeat(40);
    let bin = Bytes::from(vec![7u8; 300]);
    let list: Vec<u32> = (0..20).collect();
    let packet = event(
        "/",
        &long,
        &(&bin, 70_000, -200, -70_000i64, 1u64 << 40, &list),
        None,
    );
    let bytes = msgpack::encode(&packet);
    let mut expected = mp("83 'type' 02 'data' 97 d9 28");
    expected.extend_from_slice(long.as_bytes());
    expected.extend_from_slice(&[0xc5, 0x01, 0x2c]);
    expected.extend_from_slice(&bin);
    expected.extend_from_slice(&[0xce, 0x00, 0x01, 0x11, 0x70]);
    expected.extend_from_slice(&[0xd1, 0xff, 0x38]);
    expected.extend_from_slice(&[0xd2, 0xff, 0xfe, 0xee, 0x90]);
    expected.extend_from_slice(&[0xcf, 0, 0, 1, 0, 0, 0, 0, 0]);
    expected.extend_from_slice(&[0xdc, 0, 20]);
    expected.extend(0..20u8);
    expected.extend_from_slice(&mp("'nsp' '/'"));
    assert_eq!(bytes, expected);
    let decoded = msgpack::decode(bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(decoded.attachments(), std::slice::from_ref(&bin));
    let (b, a, c, d, e, l): (Bytes, u32, i16, i64, u64, Vec<u32>) =
        decoded.event_args().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (b, a, c, d, e, l),
        (bin, 70_000, -200, -70_000, 1 << 40, list)
    );
}

#[test]
fn decodes_the_reference_client() {
    // client.emit("binary", [], { a: "b" }, Buffer.from("asdfasdf"))
    let bytes =
        mp("83 'type' 02 'data' 94 'binary' 90 81 'a' 'b' c4 08 61 73 64 66 61 73 64 66 'nsp' '/'");
    let packet = msgpack::decode(Bytes::from(bytes)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(packet.packet_type(), PacketType::BinaryEvent);
    assert_eq!(packet.event_name().map(|n| n.as_str()), Some("binary"));
    assert!(packet.payload().is_some_and(Payload::is_msgpack));
    #[derive(Deserialize, Debug, PartialEq)]
    struct A {
        a: String,
    }
    let (list, a, buf): (Vec<u8>, A, Bytes) = packet.event_args().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (list, a, &buf[..]),
        (vec![], A { a: "b".into() }, &b"asdfasdf"[..])
    );
    // The same packet in the text format.
    assert_eq!(
        packet.encode(ProtocolVersion::V5),
        "51-[\"binary\",[],{\"a\":\"b\"},{\"_placeholder\":true,\"num\":0}]"
    );
    assert_eq!(packet.attachments(), [Bytes::from_static(b"asdfasdf")]);

    // client.emit("ack", "question", cb): an id before the namespace.
    let bytes = mp("84 'type' 02 'data' 92 'ack' 'question' 'id' 00 'nsp' '/'");
    let packet = msgpack::decode(Bytes::from(bytes)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(packet.id(), Some(0));
    // The answer, callback(42).
    let bytes = mp("84 'type' 03 'data' 91 2a 'nsp' '/' 'id' 00");
    let packet = msgpack::decode(Bytes::from(bytes)).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(packet.kind, PacketKind::Ack { id: 0, .. }));
    let (n,): (u8,) = packet.event_args().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 42);
}

#[test]
fn notepack_extensions() {
    // {type: 0, data: {sid: "x", pid: undefined}, nsp: "/"}: undefined is fixext 1 of type 0.
    let bytes = mp("83 'type' 00 'data' 82 'sid' 'x' 'pid' d4 00 00 'nsp' '/'");
    let packet = msgpack::decode(Bytes::from(bytes)).unwrap_or_else(|e| panic!("{e}"));
    #[derive(Deserialize, Debug, PartialEq)]
    struct Connect {
        sid: String,
        pid: Option<String>,
    }
    let data = packet.payload().map(|p| p.deserialize::<Connect>());
    assert_eq!(
        data.and_then(Result::ok),
        Some(Connect {
            sid: "x".into(),
            pid: None
        })
    );
    assert_eq!(
        packet.encode(ProtocolVersion::V5),
        "0{\"sid\":\"x\",\"pid\":null}"
    );

    // An ArrayBuffer (ext 8 of type 0) is binary.
    let bytes = mp("83 'type' 02 'data' 92 'a' c7 03 00 01 02 03 'nsp' '/'");
    let packet = msgpack::decode(Bytes::from(bytes)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(packet.attachments(), [Bytes::from_static(&[1, 2, 3])]);
    let (b,): (Bytes,) = packet.event_args().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&b[..], [1, 2, 3]);

    // An undefined id or data is absent.
    let bytes = mp("84 'type' 02 'data' 91 'a' 'id' d4 00 00 'nsp' '/'");
    assert_eq!(
        msgpack::decode(Bytes::from(bytes)).map(|p| p.id()),
        Ok(None)
    );
    let bytes = mp("83 'type' 00 'data' d4 00 00 'nsp' '/'");
    assert_eq!(
        msgpack::decode(Bytes::from(bytes)),
        Ok(Packet::connect(Str::from("/"), None))
    );
    // Integral floats are integers; unknown keys are ignored; the last of duplicate keys wins.
    let bytes = mp("84 'type' cb 40 00 00 00 00 00 00 00 'x' 90 'data' 91 'a' 'nsp' '/'");
    assert_eq!(
        msgpack::decode(Bytes::from(bytes)).map(|p| p.packet_type()),
        Ok(PacketType::Event)
    );
    let bytes = mp("84 'nsp' '/a' 'type' 01 'nsp' '/b' 'x' c0");
    assert_eq!(
        msgpack::decode(Bytes::from(bytes)),
        Ok(Packet::disconnect(Str::from("/b")))
    );
}

#[test]
fn errors() {
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        // The parser's tests.
        (vec![], DecodeError::InvalidMsgpack { offset: 0 }),
        (mp("80"), DecodeError::InvalidPacketType),
        (mp("81 'type' 'a'"), DecodeError::InvalidPacketType),
        (mp("81 'type' 07"), DecodeError::InvalidPacketType),
        (mp("c4 01 01"), DecodeError::InvalidPacketType),
        (mp("81 'type' 02"), DecodeError::InvalidNamespace),
        (mp("82 'type' 02 'nsp' 02"), DecodeError::InvalidNamespace),
        (
            mp("82 'type' 02 'nsp' '/'"),
            DecodeError::MissingPayload(PacketType::Event),
        ),
        (
            mp("83 'type' 02 'nsp' '/' 'data' 04"),
            DecodeError::InvalidPayload(PacketType::Event),
        ),
        (
            mp("83 'type' 04 'nsp' '/' 'data' 90"),
            DecodeError::InvalidPayload(PacketType::ConnectError),
        ),
        (
            mp("84 'type' 02 'nsp' '/' 'data' 91 'a' 'id' 'a'"),
            DecodeError::InvalidAckId,
        ),
        // Types 5 and 6 do not exist in this format; ids are non-negative.
        (
            mp("83 'type' 05 'nsp' '/' 'data' 91 'a'"),
            DecodeError::InvalidPacketType,
        ),
        (
            mp("81 'type' cb 3f f8 00 00 00 00 00 00"),
            DecodeError::InvalidPacketType,
        ),
        (
            mp("84 'type' 02 'nsp' '/' 'data' 91 'a' 'id' ff"),
            DecodeError::InvalidAckId,
        ),
        (
            mp("84 'type' 02 'nsp' '/' 'data' 91 'a' 'id' c0"),
            DecodeError::InvalidAckId,
        ),
        // Payload rules.
        (
            mp("83 'type' 00 'nsp' '/' 'data' 90"),
            DecodeError::InvalidPayload(PacketType::Connect),
        ),
        (
            mp("83 'type' 01 'nsp' '/' 'data' 80"),
            DecodeError::UnexpectedPayload(PacketType::Disconnect),
        ),
        (
            mp("83 'type' 02 'nsp' '/' 'data' 90"),
            DecodeError::InvalidEventName,
        ),
        (
            mp("83 'type' 02 'nsp' '/' 'data' 91 c0"),
            DecodeError::InvalidEventName,
        ),
        (
            mp("83 'type' 02 'nsp' '/' 'data' 91 'connect'"),
            DecodeError::ReservedEventName("connect".into()),
        ),
        (
            mp("83 'type' 03 'nsp' '/' 'data' 90"),
            DecodeError::MissingAckId,
        ),
        // Malformed.
        (
            mp("82 'type' 02"),
            DecodeError::InvalidMsgpack { offset: 7 },
        ),
        (
            mp("82 'type' 01 'nsp' '/' c0"),
            DecodeError::InvalidMsgpack { offset: 13 },
        ),
        (
            mp("82 'type' 01 'nsp' a2 ff fe"),
            DecodeError::InvalidMsgpack { offset: 12 },
        ),
        (
            mp("82 'type' 01 'nsp' c1"),
            DecodeError::InvalidMsgpack { offset: 11 },
        ),
        (
            mp("83 'type' 02 'nsp' '/' 'data' dd ff ff ff ff"),
            DecodeError::InvalidMsgpack { offset: 23 },
        ),
    ];
    for (bytes, err) in cases {
        assert_eq!(
            msgpack::decode(Bytes::from(bytes.clone())),
            Err(err),
            "{bytes:02x?}"
        );
    }
    // Nesting deeper than 127 levels.
    let mut deep = mp("83 'type' 02 'nsp' '/' 'data' 92 'a'");
    deep.extend(std::iter::repeat_n(0x91, 100_000));
    deep.push(0xc0);
    assert!(matches!(
        msgpack::decode(Bytes::from(deep)),
        Err(DecodeError::InvalidMsgpack { .. })
    ));
}

#[test]
fn payload_from_value() {
    #[derive(serde::Serialize)]
    struct Data<'a> {
        name: &'a str,
        #[serde(with = "serde_bytes")]
        file: &'a [u8],
    }
    let data = msgpack::payload_from_value(&(
        "up",
        Data {
            name: "f",
            file: b"abc",
        },
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(data.is_msgpack());
    assert_eq!(data.attachments(), [Bytes::from_static(b"abc")]);
    assert_eq!(
        data.to_json().json(),
        "[\"up\",{\"name\":\"f\",\"file\":{\"_placeholder\":true,\"num\":0}}]"
    );
    let packet = Packet {
        nsp: Str::from("/"),
        kind: PacketKind::Event {
            name: Str::from("up"),
            data,
            id: None,
        },
    };
    assert_eq!(
        msgpack::encode(&packet),
        mp("83 'type' 02 'data' 92 'up' 82 'name' 'f' 'file' c4 03 61 62 63 'nsp' '/'")
    );
}

#[test]
fn map_keys_read_as_javascript_strings() {
    // {1: 2, [1, null, "a"]: 3, {"k": 1}: 4, true: 5} as event data.
    let bytes =
        mp("83 'type' 02 'data' 92 'e' 84 01 02 93 01 c0 'a' 03 81 'k' 01 04 c3 05 'nsp' '/'");
    let packet = msgpack::decode(Bytes::from(bytes)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        packet.encode(ProtocolVersion::V5),
        "2[\"e\",{\"1\":2,\"1,,a\":3,\"[object Object]\":4,\"true\":5}]"
    );
}

/// A fuzzing find: map keys nested in map keys, each holding a quote, once grew exponentially
/// when written as JSON (every level escaped the level below).
#[test]
fn nested_map_keys_stay_linear() {
    let mut data = mp("'\"'");
    for _ in 0..100 {
        let mut outer = vec![0x81];
        outer.extend_from_slice(&data);
        outer.push(0x01);
        data = outer;
    }
    let mut bytes = mp("83 'type' 02 'nsp' '/' 'data' 92 'e'");
    bytes.extend_from_slice(&data);
    let packet = msgpack::decode(Bytes::from(bytes)).unwrap_or_else(|e| panic!("{e}"));
    let text = packet.encode(ProtocolVersion::V5);
    assert_eq!(text, "2[\"e\",{\"[object Object]\":1}]");
}

/// Bytes from lowercase hex.
fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Packets as the reference server builds them, encoded by the npm package
/// `socket.io-msgpack-parser` 3.0.2 (`new Encoder().encode(packet)[0]` in
/// node, printed as hex): ours writes the same bytes, and reads them back.
#[test]
fn the_npm_package_s_bytes() {
    let long = "x".repeat(40);
    let json = |v: serde_json::Value| Payload::from_value(&v).unwrap_or_else(|e| panic!("{e}"));
    #[derive(serde::Serialize)]
    struct Nested {
        #[serde(with = "serde_bytes")]
        nested: Vec<u8>,
    }
    let cases: Vec<(&str, Packet)> = vec![
        // {type: 2, data: ["hello"], nsp: "/"}
        (
            "83a47479706502a46461746191a568656c6c6fa36e7370a12f",
            event("/", "hello", &(), None),
        ),
        // {type: 2, data: ["hi", 1, -1, 200, null, true, 1.5, "x" * 40], id: 3, nsp: "/chat"}
        (
            "84a47479706502a46461746198a2686901ffccc8c0c3cb3ff8000000000000d928\
             78787878787878787878787878787878787878787878787878787878787878787878787878787878\
             a2696403a36e7370a52f63686174",
            event("/chat", "hi", &(1, -1, 200, (), true, 1.5, &long), Some(3)),
        ),
        // {id: 1, type: 3, data: [42, {a: "b"}], nsp: "/"}
        (
            "84a2696401a47479706503a464617461922a81a161a162a36e7370a12f",
            Packet::ack(Str::from("/"), 1, &(42, serde_json::json!({"a": "b"})))
                .unwrap_or_else(|e| panic!("{e}")),
        ),
        // {type: 0, data: {sid: "abc"}, nsp: "/admin"}
        (
            "83a47479706500a46461746181a3736964a3616263a36e7370a62f61646d696e",
            Packet::connect(
                Str::from("/admin"),
                Some(json(serde_json::json!({"sid": "abc"}))),
            ),
        ),
        // {type: 4, data: {message: "Invalid namespace"}, nsp: "/random"}
        (
            "83a47479706504a46461746181a76d657373616765b1496e76616c6964206e616d657370616365\
             a36e7370a72f72616e646f6d",
            Packet::connect_error(Str::from("/random"), "Invalid namespace", None),
        ),
        // {type: 2, data: ["bin", <Buffer 01 02 03>, {nested: <Buffer 04>}], nsp: "/"}
        (
            "83a47479706502a46461746193a362696ec40301020381a66e6573746564c40104a36e7370a12f",
            event(
                "/",
                "bin",
                &(
                    serde_bytes::Bytes::new(&[1, 2, 3]),
                    Nested { nested: vec![4] },
                ),
                None,
            ),
        ),
        // {type: 1, nsp: "/x"}
        (
            "82a47479706501a36e7370a22f78",
            Packet::disconnect(Str::from("/x")),
        ),
    ];
    for (hex, packet) in cases {
        let want = unhex(hex);
        assert_eq!(
            msgpack::encode(&packet).to_vec(),
            want,
            "{packet:?} encodes as the npm package does"
        );
        let back = msgpack::decode(Bytes::from(want.clone())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.nsp, packet.nsp);
        assert_eq!(back.packet_type(), packet.packet_type(), "{hex}");
        assert_eq!(
            msgpack::encode(&back).to_vec(),
            want,
            "{hex} decodes to the same packet"
        );
    }
}
