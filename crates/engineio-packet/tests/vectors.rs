//! Wire vectors: every example of the Engine.IO protocol documents (revisions 4 and 3), the test cases
//! of the reference parsers, and the reference's behaviour on malformed input.
//!
//! `Both` rows are checked in both directions: decoding gives the packets, encoding gives the wire bytes.
//! `Decode` rows are inputs that decode but that the encoder writes differently (or errors).

use ProtocolVersion::{V3, V4};
use bytes::Bytes;
use engineio_packet::{
    Data, DecodeError, Handshake, Packet, PacketType, ProtocolVersion, Str, UnsupportedVersion,
    payload,
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dir {
    Both,
    Decode,
}
use Dir::{Both, Decode};

fn text(s: &'static str) -> Packet {
    Packet::text(Str::from_static(s))
}
fn bin(b: &'static [u8]) -> Packet {
    Packet::binary(Bytes::from_static(b))
}
fn ping(s: &'static str) -> Packet {
    Packet::Ping(Str::from_static(s))
}
fn pong(s: &'static str) -> Packet {
    Packet::Pong(Str::from_static(s))
}
fn handshake(upgrades: &[&str], ping_timeout: u64, max_payload: u64) -> Handshake {
    Handshake {
        sid: "lv_VI97HAXpY6yYWAAAC".into(),
        upgrades: upgrades.iter().map(|u| u.to_string()).collect(),
        ping_interval: 25000,
        ping_timeout,
        max_payload,
    }
}

// ---------------------------------------------------------------------------------------------
// Single packets, text form.

fn text_packets() -> Vec<(
    &'static str,
    ProtocolVersion,
    Dir,
    Result<Packet, DecodeError>,
)> {
    use DecodeError::*;
    let mut rows = Vec::new();
    for v in [V4, V3] {
        rows.extend([
            // engine.io-parser test/index.ts: "should encode/decode a string".
            ("4test", v, Both, Ok(text("test"))),
            // engine.io-parser: "should fail to decode a malformed packet".
            ("", v, Decode, Err(Empty)),
            ("a123", v, Decode, Err(UnknownType(b'a'))),
            // Every type.
            ("1", v, Both, Ok(Packet::Close)),
            ("2", v, Both, Ok(ping(""))),
            ("3", v, Both, Ok(pong(""))),
            ("4", v, Both, Ok(text(""))),
            ("5", v, Both, Ok(Packet::Upgrade)),
            ("6", v, Both, Ok(Packet::Noop)),
            // The upgrade probe (both protocol documents).
            ("2probe", v, Both, Ok(ping("probe"))),
            ("3probe", v, Both, Ok(pong("probe"))),
            ("4probe", v, Both, Ok(text("probe"))),
            // engine.io-parser 2.x test/parser.js: ping and pong data.
            ("21", v, Both, Ok(ping("1"))),
            ("31", v, Both, Ok(pong("1"))),
            ("4aaa", v, Both, Ok(text("aaa"))),
            // Protocol documents: messages.
            ("4hello", v, Both, Ok(text("hello"))),
            ("4hey", v, Both, Ok(text("hey"))),
            ("4HelloWorld", v, Both, Ok(text("HelloWorld"))),
            ("4€", v, Both, Ok(text("€"))),
            ("41€", v, Both, Ok(text("1€"))),
            ("4€€€", v, Both, Ok(text("€€€"))),
            ("4utf8 — string", v, Both, Ok(text("utf8 — string"))),
            ("4😀", v, Both, Ok(text("😀"))),
            // Data after close, upgrade and noop is ignored, as the reference does.
            ("1x", v, Decode, Ok(Packet::Close)),
            ("5probe", v, Decode, Ok(Packet::Upgrade)),
            ("6€", v, Decode, Ok(Packet::Noop)),
            // Unknown types. engine.io-parser 2.x: "should disallow inexistent types", "bad format".
            ("7", v, Decode, Err(UnknownType(b'7'))),
            ("94103", v, Decode, Err(UnknownType(b'9'))),
            (":::", v, Decode, Err(UnknownType(b':'))),
            ("{", v, Decode, Err(UnknownType(b'{'))),
            ("{}", v, Decode, Err(UnknownType(b'{'))),
            ("[\"a123\", \"a456\"]", v, Decode, Err(UnknownType(b'['))),
            ("abc", v, Decode, Err(UnknownType(b'a'))),
            ("é", v, Decode, Err(UnknownType(0xc3))),
            // The reference's open packet without data, and with data that is not a handshake.
            ("0", v, Decode, Err(InvalidHandshake(String::new()))),
            ("0{\"some\":\"json\"}", v, Decode, Err(InvalidHandshake(String::new()))),
            // The open packet of the protocol documents.
            (
                "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":5000,\"maxPayload\":1000000}",
                v,
                Both,
                Ok(Packet::Open(handshake(&["websocket"], 5000, 1_000_000))),
            ),
            (
                "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}",
                v,
                Both,
                Ok(Packet::Open(handshake(&[], 20000, 1_000_000))),
            ),
            // Revision 3 servers may omit maxPayload, and upgrades over WebSocket (v3 document).
            (
                "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"pingInterval\":25000,\"pingTimeout\":5000}",
                v,
                Decode,
                Ok(Packet::Open(handshake(&[], 5000, 0))),
            ),
            // Unknown keys are ignored.
            (
                "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":5000,\"maxPayload\":1000000,\"x\":1}",
                v,
                Decode,
                Ok(Packet::Open(handshake(&["websocket"], 5000, 1_000_000))),
            ),
        ]);
    }
    rows.extend([
        // Revision 4 binary: `b<base64>`. engine.io-parser test/node.ts and the v4 document.
        ("bAQIDBA==", V4, Both, Ok(bin(&[1, 2, 3, 4]))),
        // Base64 that starts with `4` is not a revision 3 type digit in revision 4.
        ("b4OHi", V4, Both, Ok(bin(&[0xe0, 0xe1, 0xe2]))),
        ("b", V4, Both, Ok(bin(&[]))),
        ("bAA==", V4, Decode, Ok(bin(&[0]))),
        // Node.js accepts base64 without padding and with non-zero trailing bits.
        ("bAQIDBA", V4, Decode, Ok(bin(&[1, 2, 3, 4]))),
        ("bAQIDBB==", V4, Decode, Ok(bin(&[1, 2, 3, 4]))),
        ("b!!!!", V4, Decode, Err(DecodeError::InvalidBase64)),
        ("bA", V4, Decode, Err(DecodeError::InvalidBase64)),
        // Revision 3 binary: `b<type><base64>`. The v3 document and engine.io-parser 2.x.
        ("b4AQIDBA==", V3, Both, Ok(bin(&[1, 2, 3, 4]))),
        ("b4AAECAwQ=", V3, Both, Ok(bin(&[0, 1, 2, 3, 4]))),
        ("b4", V3, Both, Ok(bin(&[]))),
        ("b4AQIDBA", V3, Decode, Ok(bin(&[1, 2, 3, 4]))),
        // Other types read their decoded bytes as a revision 3 binary frame does.
        ("b2cHJvYmU=", V3, Decode, Ok(ping("probe"))),
        ("b1", V3, Decode, Ok(Packet::Close)),
        ("b2/w==", V3, Decode, Err(DecodeError::InvalidUtf8)),
        ("b", V3, Decode, Err(DecodeError::UnknownType(b'b'))),
        ("b9AA==", V3, Decode, Err(DecodeError::UnknownType(b'9'))),
        ("bé", V3, Decode, Err(DecodeError::UnknownType(0xc3))),
        ("b4!!", V3, Decode, Err(DecodeError::InvalidBase64)),
    ]);
    rows
}

/// Compares results, ignoring serde_json's wording inside `InvalidHandshake`.
fn same(a: &Result<Packet, DecodeError>, b: &Result<Packet, DecodeError>) -> bool {
    match (a, b) {
        (Err(DecodeError::InvalidHandshake(_)), Err(DecodeError::InvalidHandshake(_))) => true,
        _ => a == b,
    }
}

#[test]
fn text_packets_decode() {
    for (wire, v, _, expected) in text_packets() {
        let got = Packet::decode_text(Str::from_static(wire), v);
        assert!(
            same(&got, &expected),
            "{v:?} {wire:?}: got {got:?}, expected {expected:?}"
        );
    }
}

#[test]
fn text_packets_encode() {
    for (wire, v, dir, expected) in text_packets() {
        let (Both, Ok(packet)) = (dir, expected) else {
            continue;
        };
        let mut out = b"prefix".to_vec();
        packet.encode_text_into(v, &mut out);
        assert_eq!(&out[6..], wire.as_bytes(), "{v:?} {packet:?}");
        assert_eq!(packet.encode_text(v), wire);
        assert_eq!(packet.text_len(v), wire.len());
    }
}

#[test]
fn decoded_text_shares_the_frame() {
    let frame = Str::from("4hello world");
    let Ok(Packet::Message(Data::Text(msg))) = Packet::decode_text(frame.clone(), V4) else {
        panic!("not a text message");
    };
    assert_eq!(msg, "hello world");
    assert_eq!(msg.as_bytes().as_ptr(), frame.as_bytes()[1..].as_ptr());
}

// ---------------------------------------------------------------------------------------------
// WebSocket frames.

#[test]
fn binary_frames_decode() {
    use DecodeError::*;
    let rows: Vec<(&[u8], ProtocolVersion, Result<Packet, DecodeError>)> = vec![
        // Revision 4: a binary frame is a message, whatever it holds (engine.io-parser test/node.ts,
        // the v4 test suite).
        (&[1, 2, 3, 4], V4, Ok(bin(&[1, 2, 3, 4]))),
        (&[4, 3, 2, 1], V4, Ok(bin(&[4, 3, 2, 1]))),
        (&[], V4, Ok(bin(&[]))),
        // Revision 3: the type byte first. The v3 document (`4|0|1|2|3|4|5`), the v3 test suite,
        // and engine.io-parser 2.x "should decode an ArrayBuffer/Buffer with undeclared type as binary".
        (&[4, 0, 1, 2, 3, 4, 5], V3, Ok(bin(&[0, 1, 2, 3, 4, 5]))),
        (&[4, 1, 2, 3, 4], V3, Ok(bin(&[1, 2, 3, 4]))),
        (&[4, 3, 2, 1], V3, Ok(bin(&[3, 2, 1]))),
        (&[4], V3, Ok(bin(&[]))),
        (&[1], V3, Ok(Packet::Close)),
        (&[1, 9, 9], V3, Ok(Packet::Close)),
        (&[2], V3, Ok(ping(""))),
        (b"\x02probe", V3, Ok(ping("probe"))),
        (b"\x03probe", V3, Ok(pong("probe"))),
        (&[5], V3, Ok(Packet::Upgrade)),
        (&[6], V3, Ok(Packet::Noop)),
        (&[], V3, Err(Empty)),
        (&[7, 1], V3, Err(UnknownType(7))),
        (b"4hello", V3, Err(UnknownType(b'4'))),
        (&[2, 0xff], V3, Err(InvalidUtf8)),
        (&[0], V3, Err(InvalidHandshake(String::new()))),
    ];
    for (frame, v, expected) in rows {
        let got = Packet::decode_binary(Bytes::from_static(frame), v);
        assert!(
            same(&got, &expected),
            "{v:?} {frame:?}: got {got:?}, expected {expected:?}"
        );
        let got = Packet::decode_frame(Data::Binary(Bytes::from_static(frame)), v);
        assert!(same(&got, &expected));
    }
}

#[test]
fn ws_frames_encode() {
    let rows: Vec<(Packet, ProtocolVersion, Data)> = vec![
        // The v4 test suite echoes `[1, 2, 3, 4]`, the v3 one `[4, 1, 2, 3, 4]`.
        (
            bin(&[1, 2, 3, 4]),
            V4,
            Data::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        ),
        (
            bin(&[1, 2, 3, 4]),
            V3,
            Data::Binary(Bytes::from_static(&[4, 1, 2, 3, 4])),
        ),
        (bin(&[]), V4, Data::Binary(Bytes::new())),
        (bin(&[]), V3, Data::Binary(Bytes::from_static(&[4]))),
    ];
    let mut rows = rows;
    for v in [V4, V3] {
        for (packet, wire) in [
            (text("hello"), "4hello"),
            (text("€"), "4€"),
            (ping(""), "2"),
            (ping("probe"), "2probe"),
            (ping("other"), "2other"),
            (pong(""), "3"),
            (pong("probe"), "3probe"),
            (Packet::Close, "1"),
            (Packet::Upgrade, "5"),
            (Packet::Noop, "6"),
        ] {
            rows.push((packet, v, Data::Text(Str::from_static(wire))));
        }
    }
    for (packet, v, frame) in rows {
        assert_eq!(packet.to_ws_frame(v), frame, "{v:?} {packet:?}");
        assert_eq!(Packet::decode_frame(frame, v), Ok(packet));
    }
}

#[test]
fn binary_frame_is_not_copied_in_v4() {
    let data = Bytes::from(vec![1u8; 64]);
    let Data::Binary(frame) = Packet::binary(data.clone()).to_ws_frame(V4) else {
        panic!("not binary");
    };
    assert_eq!(frame.as_ptr(), data.as_ptr());
    let Ok(Packet::Message(Data::Binary(decoded))) = Packet::decode_binary(frame.clone(), V4)
    else {
        panic!("not binary");
    };
    assert_eq!(decoded.as_ptr(), data.as_ptr());
}

// ---------------------------------------------------------------------------------------------
// Revision 4 payloads.

/// Wire bytes, direction, and the packets (or error) they decode to.
type PayloadRow<W> = (W, Dir, Result<Vec<Packet>, DecodeError>);

fn v4_payloads() -> Vec<PayloadRow<&'static [u8]>> {
    use DecodeError::*;
    vec![
        // The v4 document: "Packet encoding", "HTTP long-polling".
        (
            b"4hello\x1e2\x1e4world",
            Both,
            Ok(vec![text("hello"), ping(""), text("world")]),
        ),
        (
            b"4hello\x1ebAQIDBA==",
            Both,
            Ok(vec![text("hello"), bin(&[1, 2, 3, 4])]),
        ),
        (
            b"4hello\x1e4world",
            Both,
            Ok(vec![text("hello"), text("world")]),
        ),
        (b"4hey", Both, Ok(vec![text("hey")])),
        // The v4 document: "From v3 to v4".
        ("4€".as_bytes(), Both, Ok(vec![text("€")])),
        // engine.io-parser test/node.ts: "should encode/decode a string + Buffer payload".
        (
            b"4test\x1ebAQIDBA==",
            Both,
            Ok(vec![text("test"), bin(&[1, 2, 3, 4])]),
        ),
        // engine.io-parser test/index.ts: "should encode/decode all packet types", without the bare
        // open packet, which carries no handshake.
        (
            b"1\x1e2probe\x1e3probe\x1e4test",
            Both,
            Ok(vec![
                Packet::Close,
                ping("probe"),
                pong("probe"),
                text("test"),
            ]),
        ),
        // The v4 test suite.
        (
            b"4test1\x1e4test2\x1e4test3",
            Both,
            Ok(vec![text("test1"), text("test2"), text("test3")]),
        ),
        (b"2", Both, Ok(vec![ping("")])),
        (b"3", Both, Ok(vec![pong("")])),
        (b"1", Both, Ok(vec![Packet::Close])),
        (b"6", Both, Ok(vec![Packet::Noop])),
        (
            "4foo\x1e4€f\x1e4f".as_bytes(),
            Both,
            Ok(vec![text("foo"), text("€f"), text("f")]),
        ),
        (b"4\x1e4", Both, Ok(vec![text(""), text("")])),
        // engine.io-parser test/index.ts: "should fail to decode a malformed payload", and the
        // v4 test suite's "closes the session upon invalid packet format".
        (b"{", Decode, Err(UnknownType(b'{'))),
        (b"{}", Decode, Err(UnknownType(b'{'))),
        (b"[\"a123\", \"a456\"]", Decode, Err(UnknownType(b'['))),
        (b"abc", Decode, Err(UnknownType(b'a'))),
        (b"0\x1e1", Decode, Err(InvalidHandshake(String::new()))),
        // Empty bodies and empty packets.
        (b"", Decode, Err(Empty)),
        (b"4a\x1e", Decode, Err(Empty)),
        (b"\x1e4a", Decode, Err(Empty)),
        (b"4a\x1e\x1e4b", Decode, Err(Empty)),
        // The body must be UTF-8.
        (b"4\xff", Decode, Err(InvalidUtf8)),
        (b"4a\x1e4\xc3", Decode, Err(InvalidUtf8)),
        (b"4a\x1eb!!", Decode, Err(InvalidBase64)),
    ]
}

fn same_all(a: &Result<Vec<Packet>, DecodeError>, b: &Result<Vec<Packet>, DecodeError>) -> bool {
    match (a, b) {
        (Err(DecodeError::InvalidHandshake(_)), Err(DecodeError::InvalidHandshake(_))) => true,
        _ => a == b,
    }
}

#[test]
fn v4_payloads_decode() {
    for (wire, _, expected) in v4_payloads() {
        let got = payload::v4::decode(Bytes::from_static(wire), 16);
        assert!(
            same_all(&got, &expected),
            "{wire:?}: got {got:?}, expected {expected:?}"
        );
    }
}

#[test]
fn v4_payloads_encode() {
    for (wire, dir, expected) in v4_payloads() {
        let (Both, Ok(packets)) = (dir, expected) else {
            continue;
        };
        let mut out = Vec::new();
        payload::v4::encode(&packets, &mut out);
        assert_eq!(out, wire, "{packets:?}");
    }
}

#[test]
fn v4_payload_limits_and_iteration() {
    let body = Bytes::from_static(b"4a\x1e4b\x1e4c");
    assert_eq!(
        payload::v4::decode(body.clone(), 2),
        Err(DecodeError::TooManyPackets)
    );
    assert_eq!(payload::v4::decode(body.clone(), 3).map(|p| p.len()), Ok(3));
    assert_eq!(
        payload::v4::decode(body, 0),
        Err(DecodeError::TooManyPackets)
    );

    // The packets before a bad one are yielded, then the error, then nothing.
    let body = Str::from_static("4a\x1ex\x1e4b");
    let items: Vec<_> = payload::v4::iter(&body).collect();
    assert_eq!(items, [Ok(text("a")), Err(DecodeError::UnknownType(b'x'))]);
}

// ---------------------------------------------------------------------------------------------
// Revision 3 text payloads.

fn v3_text_payloads() -> Vec<PayloadRow<&'static str>> {
    use DecodeError::*;
    vec![
        // The v3 document, "Payload".
        ("6:4hello2:4€", Both, Ok(vec![text("hello"), text("€")])),
        (
            "2:4€10:b4AQIDBA==",
            Both,
            Ok(vec![text("€"), bin(&[1, 2, 3, 4])]),
        ),
        // The v3 document, "Sample session".
        ("4:4hey", Both, Ok(vec![text("hey")])),
        (
            "6:4hello6:4world",
            Both,
            Ok(vec![text("hello"), text("world")]),
        ),
        (
            "96:0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":5000}",
            Decode,
            Ok(vec![Packet::Open(handshake(&["websocket"], 5000, 0))]),
        ),
        // The v3 test suite.
        (
            "6:4test16:4test26:4test3",
            Both,
            Ok(vec![text("test1"), text("test2"), text("test3")]),
        ),
        (
            "6:4hello10:b4AQIDBA==",
            Both,
            Ok(vec![text("hello"), bin(&[1, 2, 3, 4])]),
        ),
        ("1:2", Both, Ok(vec![ping("")])),
        ("1:3", Both, Ok(vec![pong("")])),
        ("1:1", Both, Ok(vec![Packet::Close])),
        ("1:6", Both, Ok(vec![Packet::Noop])),
        // engine.io-parser 2.x: "should not utf8 encode when dealing with strings only".
        ("4:4€€€2:4α", Both, Ok(vec![text("€€€"), text("α")])),
        // engine.io-parser 2.x: "should encode/decode empty payloads".
        ("0:", Both, Ok(vec![])),
        // engine.io-parser 2.x: "should encode/decode packets".
        ("2:4a1:2", Both, Ok(vec![text("a"), ping("")])),
        // Lengths count UTF-16 code units: an astral character counts 2.
        ("3:4😀", Both, Ok(vec![text("😀")])),
        ("7:4a😀b😀1:2", Both, Ok(vec![text("a😀b😀"), ping("")])),
        ("2:4😀", Decode, Err(InvalidLength)),
        ("4:4😀", Decode, Err(InvalidLength)),
        // Empty packets are skipped; leading zeros are read.
        ("0:1:20:", Decode, Ok(vec![ping("")])),
        ("01:1", Decode, Ok(vec![Packet::Close])),
        // engine.io-parser 2.x: "should err on bad payload format", "bad payload length", "bad packet format".
        ("", Decode, Err(Empty)),
        ("1!", Decode, Err(InvalidLength)),
        ("))", Decode, Err(InvalidLength)),
        ("1:", Decode, Err(InvalidLength)),
        ("3:99:", Decode, Err(UnknownType(b'9'))),
        ("1:aa", Decode, Err(UnknownType(b'a'))),
        ("1:a2:b", Decode, Err(UnknownType(b'a'))),
        // The v3 test suite's "closes the session upon invalid packet format".
        ("abc", Decode, Err(InvalidLength)),
        // More malformed lengths.
        (":4a", Decode, Err(InvalidLength)),
        ("2:4a12", Decode, Err(InvalidLength)),
        ("99999999999999999999999:4a", Decode, Err(InvalidLength)),
        ("2:4a3:4a", Decode, Err(InvalidLength)),
        ("2:b4", Both, Ok(vec![bin(&[])])),
        ("1:b", Decode, Err(UnknownType(b'b'))),
    ]
}

#[test]
fn v3_text_payloads_decode() {
    for (wire, _, expected) in v3_text_payloads() {
        let got = payload::v3::decode_text(Bytes::from_static(wire.as_bytes()), 16);
        assert!(
            same_all(&got, &expected),
            "{wire:?}: got {got:?}, expected {expected:?}"
        );
    }
    assert_eq!(
        payload::v3::decode_text(Bytes::from_static(b"2:4\xff"), 16),
        Err(DecodeError::InvalidUtf8)
    );
}

#[test]
fn v3_text_payloads_encode() {
    for (wire, dir, expected) in v3_text_payloads() {
        let (Both, Ok(packets)) = (dir, expected) else {
            continue;
        };
        let mut out = Vec::new();
        payload::v3::encode_text(&packets, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), wire, "{packets:?}");
    }
}

#[test]
fn v3_text_payload_with_open_packet() {
    let packets = [
        Packet::Open(handshake(&["websocket"], 5000, 1_000_000)),
        text("é😀"),
    ];
    let mut out = Vec::new();
    payload::v3::encode_text(&packets, &mut out);
    let open = "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":5000,\"maxPayload\":1000000}";
    assert_eq!(out, format!("{}:{open}4:4é😀", open.len()).as_bytes());
    assert_eq!(
        payload::v3::decode_text(Bytes::from(out), 16),
        Ok(packets.to_vec())
    );
}

#[test]
fn v3_text_payload_limits_and_iteration() {
    let body = Bytes::from_static(b"1:21:21:2");
    assert_eq!(
        payload::v3::decode_text(body.clone(), 2),
        Err(DecodeError::TooManyPackets)
    );
    assert_eq!(payload::v3::decode_text(body, 3).map(|p| p.len()), Ok(3));
    let body = Str::from_static("1:21:x1:2");
    let items: Vec<_> = payload::v3::iter_text(&body).collect();
    assert_eq!(items, [Ok(ping("")), Err(DecodeError::UnknownType(b'x'))]);
}

// ---------------------------------------------------------------------------------------------
// Revision 3 binary payloads.

fn v3_binary_payloads() -> Vec<PayloadRow<Vec<u8>>> {
    use DecodeError::*;
    let first: Vec<u8> = (0..123).collect();
    let first: &'static [u8] = first.leak();
    let mut mixed = vec![1, 1, 2, 4, 255, 4];
    mixed.extend_from_slice(first);
    mixed.extend_from_slice(&[0, 6, 255]);
    mixed.extend_from_slice(b"4hello");
    mixed.extend_from_slice(&[0, 1, 255]);
    mixed.extend_from_slice(b"1");
    vec![
        // The v3 test suite: "sends and receives a payload containing plain text and binary packets (binary)".
        (
            vec![
                0, 6, 255, 52, 104, 101, 108, 108, 111, 1, 5, 255, 4, 1, 2, 3, 4,
            ],
            Both,
            Ok(vec![text("hello"), bin(&[1, 2, 3, 4])]),
        ),
        // The v3 document's example, as the reference writes it: the binary packet starts with its
        // type byte, so its length is 5.
        (
            vec![0, 4, 255, 0x34, 0xe2, 0x82, 0xac, 1, 5, 255, 4, 1, 2, 3, 4],
            Both,
            Ok(vec![text("€"), bin(&[1, 2, 3, 4])]),
        ),
        // The document prints it without the type byte; the reference reads that data's first
        // byte, 1, as the type: a close packet.
        (
            vec![0, 4, 255, 0x34, 0xe2, 0x82, 0xac, 1, 4, 255, 1, 2, 3, 4],
            Decode,
            Ok(vec![text("€"), Packet::Close]),
        ),
        // engine.io-parser 2.x test/node: "should encode binary contents as binary".
        (
            vec![1, 6, 255, 4, 0, 1, 2, 3, 4, 1, 5, 255, 4, 5, 6, 7, 8],
            Both,
            Ok(vec![bin(&[0, 1, 2, 3, 4]), bin(&[5, 6, 7, 8])]),
        ),
        // engine.io-parser 2.x test/node: "should encode mixed binary and string contents as binary".
        (
            mixed,
            Both,
            Ok(vec![bin(first), text("hello"), Packet::Close]),
        ),
        // Text packets hold any text form, base64 binary included.
        (
            b"\x00\x06\xffb4AQI=".to_vec(),
            Decode,
            Ok(vec![bin(&[1, 2])]),
        ),
        (vec![0, 0, 2, 255, b'4', b'a'], Decode, Ok(vec![text("a")])),
        (vec![], Both, Ok(vec![])),
        // engine.io-parser 2.x: "should err on bad payload format" (a lone 64).
        (vec![64], Decode, Err(InvalidLength)),
        (vec![0], Decode, Err(InvalidLength)),
        (vec![0, 255], Decode, Err(InvalidLength)),
        (vec![0, 1], Decode, Err(InvalidLength)),
        (vec![0, 9, 255, 52], Decode, Err(InvalidLength)),
        (vec![0, 1, 10, 255, 52], Decode, Err(InvalidLength)),
        (vec![2, 1, 255, 52], Decode, Err(InvalidLength)),
        (vec![0, 1, 255, 0xff], Decode, Err(InvalidUtf8)),
        (vec![0, 0, 255], Decode, Err(Empty)),
        (vec![1, 0, 255], Decode, Err(Empty)),
        (vec![1, 1, 255, 9], Decode, Err(UnknownType(9))),
        (vec![0, 1, 255, b'x'], Decode, Err(UnknownType(b'x'))),
    ]
}

#[test]
fn v3_binary_payloads_decode() {
    for (wire, _, expected) in v3_binary_payloads() {
        let got = payload::v3::decode_binary(Bytes::from(wire.clone()), 16);
        assert!(
            same_all(&got, &expected),
            "{wire:?}: got {got:?}, expected {expected:?}"
        );
    }
}

#[test]
fn v3_binary_payloads_encode() {
    for (wire, dir, expected) in v3_binary_payloads() {
        let (Both, Ok(packets)) = (dir, expected) else {
            continue;
        };
        let mut out = Vec::new();
        payload::v3::encode_binary(&packets, &mut out);
        assert_eq!(out, wire, "{packets:?}");
    }
}

#[test]
fn v3_binary_payload_limits_and_iteration() {
    let body = Bytes::from_static(&[0, 1, 255, b'2', 0, 1, 255, b'2']);
    assert_eq!(
        payload::v3::decode_binary(body.clone(), 1),
        Err(DecodeError::TooManyPackets)
    );
    assert_eq!(payload::v3::decode_binary(body, 2).map(|p| p.len()), Ok(2));
    let body = Bytes::from_static(&[0, 1, 255, b'2', 7]);
    let items: Vec<_> = payload::v3::iter_binary(&body).collect();
    assert_eq!(items, [Ok(ping("")), Err(DecodeError::InvalidLength)]);
}

#[test]
fn v3_has_binary() {
    assert!(!payload::v3::has_binary(&[]));
    assert!(!payload::v3::has_binary(&[text("a"), ping("")]));
    assert!(payload::v3::has_binary(&[text("a"), bin(&[])]));
}

#[test]
fn v3_utf16_len() {
    for (s, n) in [
        ("", 0),
        ("abc", 3),
        ("€", 1),
        ("é", 1),
        ("😀", 2),
        ("a😀€", 4),
    ] {
        assert_eq!(payload::v3::utf16_len(s), n, "{s:?}");
        assert_eq!(s.encode_utf16().count(), n);
    }
}

// ---------------------------------------------------------------------------------------------
// The handshake, types and versions.

#[test]
fn handshake_json_is_byte_exact() {
    let h = Handshake {
        sid: "lv_VI97HAXpY6yYWAAAC".into(),
        upgrades: vec!["websocket".into()],
        ping_interval: 25000,
        ping_timeout: 20000,
        max_payload: 1_000_000,
    };
    let json = "{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}";
    assert_eq!(h.to_json(), json);
    assert_eq!(serde_json::to_string(&h).expect("serializes"), json);
    assert_eq!(h.json_len(), json.len());
    assert_eq!(Packet::Open(h.clone()).encode_text(V4), format!("0{json}"));
    assert_eq!(Handshake::from_json(json), Ok(h.clone()));

    let ws_only = Handshake {
        upgrades: vec![],
        ..h
    };
    assert_eq!(
        ws_only.to_json(),
        "{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}"
    );
    let two = Handshake {
        upgrades: vec!["a".into(), "b".into()],
        ..ws_only
    };
    assert!(two.to_json().contains("\"upgrades\":[\"a\",\"b\"]"));
    assert_eq!(two.json_len(), two.to_json().len());
}

#[test]
fn handshake_rejects_missing_or_mistyped_keys() {
    for json in [
        "",
        "{}",
        "[]",
        "{\"sid\":1,\"pingInterval\":1,\"pingTimeout\":1}",
        "{\"sid\":\"a\",\"pingTimeout\":1}",
        "{\"sid\":\"a\",\"pingInterval\":-1,\"pingTimeout\":1}",
        "{\"sid\":\"a\",\"pingInterval\":1.5,\"pingTimeout\":1}",
    ] {
        assert!(
            matches!(
                Handshake::from_json(json),
                Err(DecodeError::InvalidHandshake(_))
            ),
            "{json:?}"
        );
    }
}

#[test]
fn packet_types() {
    for (i, ty) in PacketType::ALL.into_iter().enumerate() {
        let i = u8::try_from(i).expect("small");
        assert_eq!(ty.index(), i);
        assert_eq!(ty.as_byte(), b'0' + i);
        assert_eq!(ty.as_char(), char::from(b'0' + i));
        assert_eq!(PacketType::from_byte(b'0' + i), Some(ty));
        assert_eq!(PacketType::from_index(i), Some(ty));
    }
    assert_eq!(PacketType::from_byte(b'7'), None);
    assert_eq!(PacketType::from_byte(4), None);
    assert_eq!(PacketType::from_index(7), None);
    assert_eq!(text("a").packet_type(), PacketType::Message);
    assert_eq!(
        Packet::Open(Handshake::default()).packet_type(),
        PacketType::Open
    );
}

#[test]
fn protocol_versions() {
    assert_eq!("3".parse(), Ok(V3));
    assert_eq!("4".parse(), Ok(V4));
    for bad in ["", "5", "04", " 4", "abc"] {
        assert_eq!(bad.parse::<ProtocolVersion>(), Err(UnsupportedVersion));
    }
    assert_eq!(ProtocolVersion::try_from(3u8), Ok(V3));
    assert_eq!(ProtocolVersion::try_from(4u8), Ok(V4));
    assert_eq!(ProtocolVersion::try_from(5u8), Err(UnsupportedVersion));
    assert_eq!(V4.to_string(), "4");
    assert_eq!(V3.as_u8(), 3);
}

#[test]
fn error_messages_are_lowercase() {
    for e in [
        DecodeError::Empty,
        DecodeError::UnknownType(b'x'),
        DecodeError::InvalidBase64,
        DecodeError::InvalidUtf8,
        DecodeError::InvalidLength,
        DecodeError::InvalidHandshake("eof".into()),
        DecodeError::TooManyPackets,
    ] {
        let msg = e.to_string();
        assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
    }
    assert_eq!(
        DecodeError::UnknownType(b'x').to_string(),
        "unknown packet type 0x78"
    );
}

#[test]
fn an_open_packet_from_borrowed_fields_is_what_a_handshake_writes() {
    for upgrades in [&["websocket"][..], &[], &["a", "b\"c"]] {
        let borrowed = engineio_packet::HandshakeRef {
            sid: "ab\"c\u{1}d",
            upgrades,
            ping_interval: 25_000,
            ping_timeout: 0,
            max_payload: 1_000_000,
        };
        let owned = Handshake {
            sid: borrowed.sid.to_owned(),
            upgrades: upgrades.iter().map(|u| u.to_string()).collect(),
            ping_interval: 25_000,
            ping_timeout: 0,
            max_payload: 1_000_000,
        };
        let mut packet = Vec::new();
        borrowed.write_packet(&mut packet);
        let encoded = Packet::Open(owned.clone()).encode_text(V4);
        assert_eq!(packet, encoded.as_bytes());
        assert_eq!(packet.len(), 1 + borrowed.json_len());
        assert_eq!(&packet[1..], owned.to_json().as_bytes());
        assert_eq!(Handshake::from(borrowed), owned);
    }
}
