//! Property tests: everything the encoders write decodes to what was encoded.

use bytes::Bytes;
use engineio_packet::{Data, Handshake, Packet, ProtocolVersion, Str, payload};
use proptest::prelude::*;

/// Text of all kinds: arbitrary Unicode, and a mix weighted towards ASCII, 2-, 3- and 4-byte characters
/// and the characters the formats treat specially.
fn arb_string(record_separator: bool) -> BoxedStrategy<String> {
    let special = if record_separator {
        "[a-z0-9:b \u{1e}\u{0}é€😀\u{10ffff}\u{ffff}\"\\\\]{0,24}"
    } else {
        "[a-z0-9:b \u{0}é€😀\u{10ffff}\u{ffff}\"\\\\]{0,24}"
    };
    let any = any::<String>().prop_filter("no record separator", move |s| {
        record_separator || !s.contains('\u{1e}')
    });
    prop_oneof![any, special].boxed()
}

fn arb_str(record_separator: bool) -> impl Strategy<Value = Str> {
    arb_string(record_separator).prop_map(Str::from)
}

fn arb_handshake() -> impl Strategy<Value = Handshake> {
    (
        arb_string(true),
        prop::collection::vec(arb_string(true), 0..3),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(sid, upgrades, ping_interval, ping_timeout, max_payload)| Handshake {
                sid,
                upgrades,
                ping_interval,
                ping_timeout,
                max_payload,
            },
        )
}

/// Any packet; `record_separator` allows `\x1e` in text, which revision 4 payloads cannot carry.
fn arb_packet(record_separator: bool) -> impl Strategy<Value = Packet> {
    prop_oneof![
        arb_handshake().prop_map(Packet::Open),
        Just(Packet::Close),
        arb_str(record_separator).prop_map(Packet::Ping),
        arb_str(record_separator).prop_map(Packet::Pong),
        arb_str(record_separator).prop_map(|s| Packet::Message(Data::Text(s))),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Packet::binary),
        Just(Packet::Upgrade),
        Just(Packet::Noop),
    ]
}

fn arb_version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![Just(ProtocolVersion::V3), Just(ProtocolVersion::V4)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn single_text_packet(packet in arb_packet(true), v in arb_version()) {
        let text = packet.encode_text(v);
        prop_assert_eq!(text.len(), packet.text_len(v));
        prop_assert_eq!(Packet::decode_text(text, v), Ok(packet));
    }

    #[test]
    fn ws_frame(packet in arb_packet(true), v in arb_version()) {
        let frame = packet.to_ws_frame(v);
        prop_assert_eq!(frame.is_binary(), packet.is_binary());
        prop_assert_eq!(Packet::decode_frame(frame, v), Ok(packet));
    }

    #[test]
    fn v4_payload(packets in prop::collection::vec(arb_packet(false), 1..6)) {
        let mut out = Vec::new();
        payload::v4::encode(&packets, &mut out);
        let n = packets.len();
        prop_assert_eq!(payload::v4::decode(Bytes::from(out), n), Ok(packets));
    }

    #[test]
    fn v3_text_payload(packets in prop::collection::vec(arb_packet(true), 0..6)) {
        let mut out = Vec::new();
        payload::v3::encode_text(&packets, &mut out);
        let n = packets.len();
        prop_assert_eq!(payload::v3::decode_text(Bytes::from(out), n), Ok(packets));
    }

    #[test]
    fn v3_text_payload_lengths_are_utf16(packets in prop::collection::vec(arb_packet(true), 1..4)) {
        // Each prefix is the length of the JavaScript string of the packet.
        let mut out = Vec::new();
        payload::v3::encode_text(&packets, &mut out);
        let mut rest = std::str::from_utf8(&out).expect("utf-8");
        for packet in &packets {
            let (len, tail) = rest.split_once(':').expect("a length");
            let text = packet.encode_text(ProtocolVersion::V3);
            prop_assert_eq!(len.parse::<usize>().ok(), Some(text.encode_utf16().count()));
            prop_assert!(tail.starts_with(text.as_str()));
            rest = &tail[text.len()..];
        }
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn v3_binary_payload(packets in prop::collection::vec(arb_packet(true), 0..6)) {
        let mut out = Vec::new();
        payload::v3::encode_binary(&packets, &mut out);
        let n = packets.len();
        prop_assert_eq!(payload::v3::decode_binary(Bytes::from(out), n), Ok(packets));
    }

    #[test]
    fn handshake_json(h in arb_handshake()) {
        let json = h.to_json();
        prop_assert_eq!(json.len(), h.json_len());
        prop_assert_eq!(&json, &serde_json::to_string(&h).expect("serializes"));
        prop_assert_eq!(Handshake::from_json(&json), Ok(h));
    }

    #[test]
    fn str_slice_ref(s in arb_string(true), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let s = Str::from(s);
        let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
        let (mut i, mut j) = (bounds[a.index(bounds.len())], bounds[b.index(bounds.len())]);
        if i > j {
            std::mem::swap(&mut i, &mut j);
        }
        let sub = &s.as_str()[i..j];
        let sliced = s.slice_ref(sub);
        prop_assert_eq!(sliced.as_str(), sub);
    }
}
