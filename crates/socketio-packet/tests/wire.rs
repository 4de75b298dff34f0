//! Wire vectors: the examples of the protocol document (revisions 5 and 4), the cases of the
//! reference parser's tests and of the protocol's test suite, encoded and decoded.

use bytes::Bytes;
use socketio_packet::{
    DecodeError, Decoder, Packet, PacketKind, PacketType, Payload, ProtocolVersion, Str,
    decode_packet,
};

fn payload(json: &str, bins: &[&[u8]]) -> Payload {
    let bins = bins.iter().map(|b| Bytes::copy_from_slice(b)).collect();
    Payload::from_json(Str::from(json), bins).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn connect(nsp: &str, json: Option<&str>) -> Packet {
    Packet::connect(Str::from(nsp), json.map(|j| payload(j, &[])))
}

fn event(nsp: &str, name: &str, json: &str, bins: &[&[u8]], id: Option<u64>) -> Packet {
    Packet {
        nsp: Str::from(nsp),
        kind: PacketKind::Event {
            name: Str::from(name),
            data: payload(json, bins),
            id,
        },
    }
}

fn ack(nsp: &str, json: &str, bins: &[&[u8]], id: u64) -> Packet {
    Packet {
        nsp: Str::from(nsp),
        kind: PacketKind::Ack {
            data: payload(json, bins),
            id,
        },
    }
}

fn connect_error(nsp: &str, json: &str) -> Packet {
    Packet {
        nsp: Str::from(nsp),
        kind: PacketKind::ConnectError(payload(json, &[])),
    }
}

/// Decodes a text message and its attachments through a fresh decoder.
fn decode(text: &str, bins: &[&[u8]]) -> Result<Packet, DecodeError> {
    let mut decoder = Decoder::default();
    let first = decoder.decode_text(Str::from(text))?;
    if bins.is_empty() {
        return Ok(first.unwrap_or_else(|| panic!("{text}: awaits attachments")));
    }
    assert_eq!(first, None, "{text}");
    assert!(decoder.is_awaiting_attachments());
    for (i, bin) in bins.iter().enumerate() {
        assert_eq!(decoder.awaited_attachments(), bins.len() - i);
        let out = decoder.decode_binary(Bytes::copy_from_slice(bin))?;
        if i + 1 < bins.len() {
            assert_eq!(out, None);
        } else {
            assert!(!decoder.is_awaiting_attachments());
            return Ok(out.unwrap_or_else(|| panic!("{text}: incomplete")));
        }
    }
    unreachable!()
}

/// Canonical vectors: decoding gives the packet, encoding gives the text and attachments back.
fn canonical() -> Vec<(&'static str, Vec<&'static [u8]>, Packet)> {
    const B1234: &[u8] = &[1, 2, 3, 4];
    vec![
        // The protocol document, revision 5: connection to a namespace.
        ("0", vec![], connect("/", None)),
        (
            "0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}",
            vec![],
            connect("/", Some("{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}")),
        ),
        ("0/admin,", vec![], connect("/admin", None)),
        (
            "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}",
            vec![],
            connect("/admin", Some("{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}")),
        ),
        (
            "4{\"message\":\"Not authorized\"}",
            vec![],
            connect_error("/", "{\"message\":\"Not authorized\"}"),
        ),
        // Sending and receiving data.
        (
            "2[\"foo\"]",
            vec![],
            event("/", "foo", "[\"foo\"]", &[], None),
        ),
        (
            "2/admin,[\"bar\"]",
            vec![],
            event("/admin", "bar", "[\"bar\"]", &[], None),
        ),
        (
            "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]",
            vec![B1234],
            event(
                "/",
                "baz",
                "[\"baz\",{\"_placeholder\":true,\"num\":0}]",
                &[B1234],
                None,
            ),
        ),
        (
            "52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
            vec![&[1, 2], &[3, 4]],
            event(
                "/admin",
                "baz",
                "[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
                &[&[1, 2], &[3, 4]],
                None,
            ),
        ),
        // Acknowledgement.
        (
            "212[\"foo\"]",
            vec![],
            event("/", "foo", "[\"foo\"]", &[], Some(12)),
        ),
        ("312[]", vec![], ack("/", "[]", &[], 12)),
        (
            "2/admin,13[\"foo\"]",
            vec![],
            event("/admin", "foo", "[\"foo\"]", &[], Some(13)),
        ),
        (
            "3/admin,13[\"bar\"]",
            vec![],
            ack("/admin", "[\"bar\"]", &[], 13),
        ),
        (
            "51-14[\"foo\",{\"_placeholder\":true,\"num\":0}]",
            vec![B1234],
            event(
                "/",
                "foo",
                "[\"foo\",{\"_placeholder\":true,\"num\":0}]",
                &[B1234],
                Some(14),
            ),
        ),
        ("314[\"bar\"]", vec![], ack("/", "[\"bar\"]", &[], 14)),
        (
            "215[\"foo\"]",
            vec![],
            event("/", "foo", "[\"foo\"]", &[], Some(15)),
        ),
        (
            "61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]",
            vec![B1234],
            ack(
                "/",
                "[\"bar\",{\"_placeholder\":true,\"num\":0}]",
                &[B1234],
                15,
            ),
        ),
        // Disconnection from a namespace.
        ("1", vec![], Packet::disconnect(Str::from("/"))),
        ("1/admin,", vec![], Packet::disconnect(Str::from("/admin"))),
        // The sample session.
        (
            "2[\"hey\",\"Jude\"]",
            vec![],
            event("/", "hey", "[\"hey\",\"Jude\"]", &[], None),
        ),
        (
            "2[\"hello\"]",
            vec![],
            event("/", "hello", "[\"hello\"]", &[], None),
        ),
        (
            "2/admin,1[\"tellme\"]",
            vec![],
            event("/admin", "tellme", "[\"tellme\"]", &[], Some(1)),
        ),
        (
            "61-/admin,1[{\"_placeholder\":true,\"num\":0}]",
            vec![b"x"],
            ack("/admin", "[{\"_placeholder\":true,\"num\":0}]", &[b"x"], 1),
        ),
        // The reference parser's tests.
        (
            "0/woot,{\"token\":\"123\"}",
            vec![],
            connect("/woot", Some("{\"token\":\"123\"}")),
        ),
        ("1/woot,", vec![], Packet::disconnect(Str::from("/woot"))),
        (
            "2[\"a\",1,{}]",
            vec![],
            event("/", "a", "[\"a\",1,{}]", &[], None),
        ),
        (
            "2[1,\"a\",{}]",
            vec![],
            event("/", "1", "[1,\"a\",{}]", &[], None),
        ),
        (
            "2/test,1[\"a\",1,{}]",
            vec![],
            event("/test", "a", "[\"a\",1,{}]", &[], Some(1)),
        ),
        (
            "3123[\"a\",1,{}]",
            vec![],
            ack("/", "[\"a\",1,{}]", &[], 123),
        ),
        (
            "4\"Unauthorized\"",
            vec![],
            connect_error("/", "\"Unauthorized\""),
        ),
        (
            "4{\"message\":\"Unauthorized\"}",
            vec![],
            connect_error("/", "{\"message\":\"Unauthorized\"}"),
        ),
        (
            "51-/cool,23[\"a\",{\"_placeholder\":true,\"num\":0}]",
            vec![b"abc"],
            event(
                "/cool",
                "a",
                "[\"a\",{\"_placeholder\":true,\"num\":0}]",
                &[b"abc"],
                Some(23),
            ),
        ),
        (
            "51-/cool,23[\"a\",{\"b\":[\"c\",{\"_placeholder\":true,\"num\":0}]}]",
            vec![b"abc"],
            event(
                "/cool",
                "a",
                "[\"a\",{\"b\":[\"c\",{\"_placeholder\":true,\"num\":0}]}]",
                &[b"abc"],
                Some(23),
            ),
        ),
        (
            "61-/back,127[\"a\",{\"_placeholder\":true,\"num\":0},{}]",
            vec![b"xxx"],
            ack(
                "/back",
                "[\"a\",{\"_placeholder\":true,\"num\":0},{}]",
                &[b"xxx"],
                127,
            ),
        ),
        (
            "51-0[\"a\",{\"_placeholder\":true,\"num\":0}]",
            vec![&[0, 0]],
            event(
                "/",
                "a",
                "[\"a\",{\"_placeholder\":true,\"num\":0}]",
                &[&[0, 0]],
                Some(0),
            ),
        ),
        (
            "51-0[\"a\",{\"array\":{\"_placeholder\":true,\"num\":0}}]",
            vec![&[0, 0]],
            event(
                "/",
                "a",
                "[\"a\",{\"array\":{\"_placeholder\":true,\"num\":0}}]",
                &[&[0, 0]],
                Some(0),
            ),
        ),
        (
            "51-0[\"a\",{\"_placeholder\":true,\"num\":0}]",
            vec![&[0, 1, 2, 3, 4]],
            event(
                "/",
                "a",
                "[\"a\",{\"_placeholder\":true,\"num\":0}]",
                &[&[0, 1, 2, 3, 4]],
                Some(0),
            ),
        ),
        (
            "52-/deep,999[\"a\",{\"a\":\"hi\",\"b\":{\"why\":{\"_placeholder\":true,\"num\":0}},\"c\":{\"a\":\"bye\",\"b\":{\"a\":{\"_placeholder\":true,\"num\":1}}}}]",
            vec![&[0; 3], &[0; 6]],
            event(
                "/deep",
                "a",
                "[\"a\",{\"a\":\"hi\",\"b\":{\"why\":{\"_placeholder\":true,\"num\":0}},\"c\":{\"a\":\"bye\",\"b\":{\"a\":{\"_placeholder\":true,\"num\":1}}}}]",
                &[&[0; 3], &[0; 6]],
                Some(999),
            ),
        ),
        (
            "51-600[\"a\",{\"a\":\"b\",\"c\":4,\"e\":{\"g\":null},\"h\":{\"_placeholder\":true,\"num\":0}}]",
            vec![&[0; 9]],
            event(
                "/",
                "a",
                "[\"a\",{\"a\":\"b\",\"c\":4,\"e\":{\"g\":null},\"h\":{\"_placeholder\":true,\"num\":0}}]",
                &[&[0; 9]],
                Some(600),
            ),
        ),
        (
            "52-[\"a\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
            vec![&[1, 2, 3], &[4, 5, 6]],
            event(
                "/",
                "a",
                "[\"a\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
                &[&[1, 2, 3], &[4, 5, 6]],
                None,
            ),
        ),
        (
            "2[\"b\",{\"a\":\"val\"}]",
            vec![],
            event("/", "b", "[\"b\",{\"a\":\"val\"}]", &[], None),
        ),
        // The protocol's test suite.
        (
            "0{\"token\":\"123\"}",
            vec![],
            connect("/", Some("{\"token\":\"123\"}")),
        ),
        (
            "0/custom,{\"token\":\"abc\"}",
            vec![],
            connect("/custom", Some("{\"token\":\"abc\"}")),
        ),
        (
            "2[\"auth\",{}]",
            vec![],
            event("/", "auth", "[\"auth\",{}]", &[], None),
        ),
        (
            "2/custom,[\"auth\",{\"token\":\"abc\"}]",
            vec![],
            event(
                "/custom",
                "auth",
                "[\"auth\",{\"token\":\"abc\"}]",
                &[],
                None,
            ),
        ),
        (
            "4/random,{\"message\":\"Invalid namespace\"}",
            vec![],
            connect_error("/random", "{\"message\":\"Invalid namespace\"}"),
        ),
        (
            "2[\"message\",1,\"2\",{\"3\":[true]}]",
            vec![],
            event(
                "/",
                "message",
                "[\"message\",1,\"2\",{\"3\":[true]}]",
                &[],
                None,
            ),
        ),
        (
            "2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]",
            vec![],
            event(
                "/",
                "message-with-ack",
                "[\"message-with-ack\",1,\"2\",{\"3\":[false]}]",
                &[],
                Some(456),
            ),
        ),
        (
            "3456[1,\"2\",{\"3\":[false]}]",
            vec![],
            ack("/", "[1,\"2\",{\"3\":[false]}]", &[], 456),
        ),
        (
            "52-789[\"message-with-ack\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
            vec![&[1, 2, 3], &[4, 5, 6]],
            event(
                "/",
                "message-with-ack",
                "[\"message-with-ack\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
                &[&[1, 2, 3], &[4, 5, 6]],
                Some(789),
            ),
        ),
        (
            "62-789[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
            vec![&[1, 2, 3], &[4, 5, 6]],
            ack(
                "/",
                "[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
                &[&[1, 2, 3], &[4, 5, 6]],
                789,
            ),
        ),
        // Revision 4: the query rides in the namespace, the error is a string.
        ("0/admin?token=x,", vec![], connect("/admin?token=x", None)),
        (
            "4\"Invalid namespace\"",
            vec![],
            connect_error("/", "\"Invalid namespace\""),
        ),
        (
            "4/admin,\"Not authorized\"",
            vec![],
            connect_error("/admin", "\"Not authorized\""),
        ),
        // Escapes and non-ASCII text.
        (
            "2/admin™,[\"é\\n\",\"™\"]",
            vec![],
            event("/admin™", "é\n", "[\"é\\n\",\"™\"]", &[], None),
        ),
        (
            "2[\"\\u0063hat\"]",
            vec![],
            event("/", "chat", "[\"\\u0063hat\"]", &[], None),
        ),
        (
            "2[1.5e3]",
            vec![],
            event("/", "1.5e3", "[1.5e3]", &[], None),
        ),
        (
            "218446744073709551615[\"max\"]",
            vec![],
            event("/", "max", "[\"max\"]", &[], Some(u64::MAX)),
        ),
    ]
}

#[test]
fn canonical_vectors_decode() {
    for (text, bins, packet) in canonical() {
        let decoded = decode(text, &bins).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(decoded, packet, "{text}");
    }
}

#[test]
fn canonical_vectors_encode() {
    for (text, bins, packet) in canonical() {
        assert_eq!(packet.encode(ProtocolVersion::V5), text, "{text}");
        let mut out = b"4".to_vec();
        packet.encode_into(ProtocolVersion::V5, &mut out);
        assert_eq!(&out[1..], text.as_bytes());
        // Both encoders agree for revision 4 too (a CONNECT then has no payload).
        let mut v4 = Vec::new();
        packet.encode_into(ProtocolVersion::V4, &mut v4);
        assert_eq!(
            packet.encode(ProtocolVersion::V4).as_bytes(),
            &v4[..],
            "{text}"
        );
        assert_eq!(
            packet.attachments(),
            bins.iter()
                .map(|b| Bytes::copy_from_slice(b))
                .collect::<Vec<_>>()
        );
        if !bins.is_empty() {
            assert!(matches!(
                packet.packet_type(),
                PacketType::BinaryEvent | PacketType::BinaryAck
            ));
        }
    }
}

#[test]
fn stateless_decode_reports_the_attachment_count() {
    for (text, bins, packet) in canonical() {
        let (mut decoded, count) =
            decode_packet(Str::from(text)).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(count, bins.len(), "{text}");
        if let PacketKind::Event { data, .. } | PacketKind::Ack { data, .. } = &mut decoded.kind {
            *data = Payload::from_json(
                data.json().clone(),
                bins.iter().map(|b| Bytes::copy_from_slice(b)).collect(),
            )
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        }
        assert_eq!(decoded, packet, "{text}");
    }
}

/// Accepted forms that the encoder writes differently.
#[test]
fn lenient_forms() {
    let cases: Vec<(&str, Packet, &str)> = vec![
        // The namespace may end the message without a comma.
        ("0/custom", connect("/custom", None), "0/custom,"),
        ("0/random", connect("/random", None), "0/random,"),
        (
            "1/custom",
            Packet::disconnect(Str::from("/custom")),
            "1/custom,",
        ),
        // An explicit main namespace.
        ("0/,", connect("/", None), "0"),
        (
            "2/,[\"a\"]",
            event("/", "a", "[\"a\"]", &[], None),
            "2[\"a\"]",
        ),
        // Leading zeros in the ack id.
        (
            "2007[\"a\"]",
            event("/", "a", "[\"a\"]", &[], Some(7)),
            "27[\"a\"]",
        ),
        // Whitespace around the JSON, as JSON.parse allows.
        (
            "2 [ \"a\" , 1 ] \n",
            event("/", "a", "[ \"a\" , 1 ]", &[], None),
            "2[ \"a\" , 1 ]",
        ),
        // An ack id on packets that carry none is read and ignored.
        ("01{}", connect("/", Some("{}")), "0{}"),
        ("15", Packet::disconnect(Str::from("/")), "1"),
        // A placeholder-like object in a text packet stays an object.
        (
            "2[\"a\",{\"_placeholder\":true,\"num\":5}]",
            event(
                "/",
                "a",
                "[\"a\",{\"_placeholder\":true,\"num\":5}]",
                &[],
                None,
            ),
            "2[\"a\",{\"_placeholder\":true,\"num\":5}]",
        ),
        // Placeholders with keys in another order, extra keys, or a float index.
        (
            "51-[\"a\",{\"num\":0.0,\"_placeholder\":true,\"x\":1}]",
            event(
                "/",
                "a",
                "[\"a\",{\"num\":0.0,\"_placeholder\":true,\"x\":1}]",
                &[b"z"],
                None,
            ),
            "51-[\"a\",{\"num\":0.0,\"_placeholder\":true,\"x\":1}]",
        ),
    ];
    for (text, packet, canonical) in cases {
        let bins: &[&[u8]] = if packet.attachments().is_empty() {
            &[]
        } else {
            &[b"z"]
        };
        assert_eq!(
            decode(text, bins).unwrap_or_else(|e| panic!("{text}: {e}")),
            packet,
            "{text}"
        );
        assert_eq!(packet.encode(ProtocolVersion::V5), canonical, "{text}");
    }
}

#[test]
fn errors() {
    let deep = format!("2[\"a\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, DecodeError)> = vec![
        ("", DecodeError::Empty),
        // The reference parser's tests: "invalid payload".
        (
            "442[\"some\",\"data\"",
            DecodeError::InvalidJson { offset: 14 },
        ),
        (
            "0/admin,\"invalid\"",
            DecodeError::InvalidPayload(PacketType::Connect),
        ),
        ("0[]", DecodeError::InvalidPayload(PacketType::Connect)),
        (
            "1/admin,{}",
            DecodeError::UnexpectedPayload(PacketType::Disconnect),
        ),
        ("2/admin,\"invalid", DecodeError::InvalidJson { offset: 8 }),
        ("2/admin,{}", DecodeError::InvalidPayload(PacketType::Event)),
        ("2[{\"toString\":\"foo\"}]", DecodeError::InvalidEventName),
        ("2[true,\"foo\"]", DecodeError::InvalidEventName),
        ("2[null,\"bar\"]", DecodeError::InvalidEventName),
        (
            "2[\"connect\"]",
            DecodeError::ReservedEventName("connect".into()),
        ),
        (
            "2[\"disconnect\",\"123\"]",
            DecodeError::ReservedEventName("disconnect".into()),
        ),
        // "Illegal attachments".
        ("5", DecodeError::InvalidAttachmentCount),
        ("51", DecodeError::InvalidAttachmentCount),
        ("50-", DecodeError::InvalidAttachmentCount),
        ("5a-", DecodeError::InvalidAttachmentCount),
        ("51.23-", DecodeError::InvalidAttachmentCount),
        ("5-[\"a\"]", DecodeError::InvalidAttachmentCount),
        ("6", DecodeError::InvalidAttachmentCount),
        // "unknown packet type".
        ("999", DecodeError::UnknownType('9')),
        ("7", DecodeError::UnknownType('7')),
        ("é", DecodeError::UnknownType('é')),
        // The protocol's test suite.
        ("abc", DecodeError::UnknownType('a')),
        ("2{}", DecodeError::InvalidPayload(PacketType::Event)),
        (
            "2abc[\"message-with-ack\",1,\"2\",{\"3\":[false]}]",
            DecodeError::InvalidJson { offset: 0 },
        ),
        // Every reserved name.
        (
            "2[\"connect_error\"]",
            DecodeError::ReservedEventName("connect_error".into()),
        ),
        (
            "2[\"disconnecting\"]",
            DecodeError::ReservedEventName("disconnecting".into()),
        ),
        (
            "2[\"newListener\"]",
            DecodeError::ReservedEventName("newListener".into()),
        ),
        (
            "2[\"removeListener\",1]",
            DecodeError::ReservedEventName("removeListener".into()),
        ),
        (
            "2[\"\\u0063onnect\"]",
            DecodeError::ReservedEventName("connect".into()),
        ),
        // Payload rules.
        ("2", DecodeError::MissingPayload(PacketType::Event)),
        ("2/admin,", DecodeError::MissingPayload(PacketType::Event)),
        ("2[]", DecodeError::InvalidEventName),
        ("2[[\"a\"]]", DecodeError::InvalidEventName),
        ("2\"a\"", DecodeError::InvalidPayload(PacketType::Event)),
        ("3[]", DecodeError::MissingAckId),
        ("31", DecodeError::MissingPayload(PacketType::Ack)),
        ("31{}", DecodeError::InvalidPayload(PacketType::Ack)),
        ("4", DecodeError::MissingPayload(PacketType::ConnectError)),
        ("4[]", DecodeError::InvalidPayload(PacketType::ConnectError)),
        ("41", DecodeError::MissingPayload(PacketType::ConnectError)),
        ("0null", DecodeError::InvalidPayload(PacketType::Connect)),
        ("1 ", DecodeError::UnexpectedPayload(PacketType::Disconnect)),
        ("0 ", DecodeError::InvalidJson { offset: 1 }),
        // JSON syntax.
        ("2[\"a\"] x", DecodeError::InvalidJson { offset: 6 }),
        ("2[\"a\",]", DecodeError::InvalidJson { offset: 5 }),
        ("2[\"a\"][\"b\"]", DecodeError::InvalidJson { offset: 5 }),
        ("2[\"a\",01]", DecodeError::InvalidJson { offset: 6 }),
        ("2[\"a\u{1}\"]", DecodeError::InvalidJson { offset: 3 }),
        ("2[\"a\",NaN]", DecodeError::InvalidJson { offset: 5 }),
        (&deep, DecodeError::InvalidJson { offset: 131 }),
        // The ack id does not fit in 64 bits.
        ("218446744073709551616[\"a\"]", DecodeError::InvalidAckId),
        // Placeholders of binary packets.
        (
            "51-[\"hello\",{\"_placeholder\":true,\"num\":\"splice\"}]",
            DecodeError::BadPlaceholder,
        ),
        (
            "51-[\"hello\",{\"_placeholder\":true,\"num\":1}]",
            DecodeError::BadPlaceholder,
        ),
        (
            "51-[\"hello\",{\"_placeholder\":true}]",
            DecodeError::BadPlaceholder,
        ),
        (
            "51-[\"hello\",{\"_placeholder\":true,\"num\":-1}]",
            DecodeError::BadPlaceholder,
        ),
        (
            "61-1[{\"_placeholder\":true,\"num\":1}]",
            DecodeError::BadPlaceholder,
        ),
        // Too many attachments for the default limit of 10.
        (
            "511-[\"a\"]",
            DecodeError::TooManyAttachments { count: 11, max: 10 },
        ),
        (
            "599999999999999999999999-[\"a\"]",
            DecodeError::TooManyAttachments {
                count: usize::MAX,
                max: 10,
            },
        ),
    ];
    for (text, err) in cases {
        let mut decoder = Decoder::default();
        let shown: String = text.chars().take(60).collect();
        assert_eq!(decoder.decode_text(Str::from(text)), Err(err), "{shown}");
        assert!(!decoder.is_awaiting_attachments());
    }
}

#[test]
fn too_many_attachments() {
    let mut decoder = Decoder::new(ProtocolVersion::V5, 2);
    assert_eq!(decoder.max_attachments(), 2);
    let text = "53-[\"hello\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":2}]";
    assert_eq!(
        decoder.decode_text(Str::from(text)),
        Err(DecodeError::TooManyAttachments { count: 3, max: 2 })
    );
    let mut unlimited = Decoder::new(ProtocolVersion::V5, 3);
    assert_eq!(unlimited.decode_text(Str::from(text)), Ok(None));
}

#[test]
fn a_high_limit_does_not_allocate_what_the_peer_announces() {
    let mut decoder = Decoder::new(ProtocolVersion::V5, usize::MAX);
    assert_eq!(
        decoder.decode_text(Str::from("5999999999999-[\"a\"]")),
        Ok(None)
    );
    assert_eq!(decoder.awaited_attachments(), 999_999_999_999);
    assert_eq!(decoder.decode_binary(Bytes::new()), Ok(None));
    assert_eq!(decoder.awaited_attachments(), 999_999_999_998);
}

#[test]
fn binary_without_header() {
    let mut decoder = Decoder::default();
    assert_eq!(
        decoder.decode_binary(Bytes::from_static(b"world")),
        Err(DecodeError::UnexpectedBinary)
    );
}

#[test]
fn text_while_awaiting_attachments() {
    let mut decoder = Decoder::default();
    let header = Str::from("51-[\"hello\",{\"_placeholder\":true,\"num\":0}]");
    assert_eq!(decoder.decode_text(header.clone()), Ok(None));
    assert_eq!(
        decoder.decode_text(Str::from("2[\"hello\"]")),
        Err(DecodeError::UnexpectedText)
    );
    // A second header is text too.
    assert_eq!(
        decoder.decode_text(header),
        Err(DecodeError::UnexpectedText)
    );
    // The error left the pending packet in place.
    let packet = decoder.decode_binary(Bytes::from_static(b"x"));
    assert!(matches!(packet, Ok(Some(_))));
    assert_eq!(
        decoder
            .decode_text(Str::from("2[\"hello\"]"))
            .map(|p| p.is_some()),
        Ok(true)
    );
}

#[test]
fn resumes_after_reset() {
    let mut decoder = Decoder::default();
    assert_eq!(decoder.decode_text(Str::from("51-[\"hello\"]")), Ok(None));
    decoder.reset();
    assert!(!decoder.is_awaiting_attachments());
    let packet = decoder.decode_text(Str::from("2[\"hello\"]"));
    assert_eq!(
        packet,
        Ok(Some(event("/", "hello", "[\"hello\"]", &[], None)))
    );
}

#[test]
fn attachments_share_their_buffers() {
    let mut decoder = Decoder::default();
    let text = Str::from("51-[\"a\",{\"_placeholder\":true,\"num\":0}]");
    assert_eq!(decoder.decode_text(text.clone()), Ok(None));
    let bin = Bytes::from(vec![7u8; 64]);
    let packet = decoder
        .decode_binary(bin.clone())
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("incomplete"));
    assert_eq!(packet.attachments()[0].as_ptr(), bin.as_ptr());
    // The JSON and the event name are slices of the message.
    let PacketKind::Event { name, data, .. } = &packet.kind else {
        panic!("not an event")
    };
    let range = text.as_bytes().as_ptr_range();
    assert!(range.contains(&data.json().as_bytes().as_ptr()));
    assert!(range.contains(&name.as_bytes().as_ptr()));
}

#[test]
fn revision_4() {
    let mut decoder = Decoder::new(ProtocolVersion::V4, 10);
    assert_eq!(decoder.version(), ProtocolVersion::V4);
    let packet = decoder
        .decode_text(Str::from("0/admin?token=x&y=1,"))
        .ok()
        .flatten();
    let packet = packet.unwrap_or_else(|| panic!("no packet"));
    assert_eq!(packet.nsp, "/admin?token=x&y=1");
    assert_eq!(packet.nsp_path(), "/admin");
    assert_eq!(packet.nsp_query(), Some("token=x&y=1"));
    let plain = connect("/admin", None);
    assert_eq!((plain.nsp_path(), plain.nsp_query()), ("/admin", None));

    // A revision 4 CONNECT has no payload.
    let connect = connect("/admin", Some("{\"sid\":\"x\"}"));
    assert_eq!(connect.encode(ProtocolVersion::V4), "0/admin,");
    assert_eq!(
        connect.encode(ProtocolVersion::V5),
        "0/admin,{\"sid\":\"x\"}"
    );

    // The error: the data when truthy, else the message.
    let data = serde_json::json!({"code": 1});
    fn err(data: Option<&serde_json::Value>) -> Packet {
        Packet::connect_error_for(ProtocolVersion::V4, Str::from("/"), "Not authorized", data)
    }
    assert_eq!(err(None).encode(ProtocolVersion::V4), "4\"Not authorized\"");
    assert_eq!(
        err(Some(&data)).encode(ProtocolVersion::V4),
        "4{\"code\":1}"
    );
    assert_eq!(
        err(Some(&serde_json::json!(""))).encode(ProtocolVersion::V4),
        "4\"Not authorized\""
    );
    assert_eq!(
        err(Some(&serde_json::json!(0))).encode(ProtocolVersion::V4),
        "4\"Not authorized\""
    );
}

#[test]
fn connect_error_builder() {
    let p = Packet::connect_error(Str::from("/random"), "Invalid namespace", None);
    assert_eq!(
        p.encode(ProtocolVersion::V5),
        "4/random,{\"message\":\"Invalid namespace\"}"
    );
    let data = serde_json::json!({"content": "Please retry later"});
    let p = Packet::connect_error(Str::from("/"), "not \"authorized\"", Some(&data));
    assert_eq!(
        p.encode(ProtocolVersion::V5),
        "4{\"message\":\"not \\\"authorized\\\"\",\"data\":{\"content\":\"Please retry later\"}}"
    );
    assert_eq!(decode(&p.encode(ProtocolVersion::V5), &[]), Ok(p));
}

#[test]
fn packet_types() {
    for (digit, ty) in [
        (b'0', PacketType::Connect),
        (b'1', PacketType::Disconnect),
        (b'2', PacketType::Event),
        (b'3', PacketType::Ack),
        (b'4', PacketType::ConnectError),
        (b'5', PacketType::BinaryEvent),
        (b'6', PacketType::BinaryAck),
    ] {
        assert_eq!(PacketType::from_digit(digit), Some(ty));
        assert_eq!(ty.digit(), digit);
        assert_eq!(ty.is_binary(), digit >= b'5');
    }
    assert_eq!(PacketType::from_digit(b'7'), None);
    assert_eq!(PacketType::BinaryEvent.to_string(), "BINARY_EVENT");
    assert_eq!(ProtocolVersion::default(), ProtocolVersion::V5);
    assert_eq!(ProtocolVersion::V4 as u8, 4);
}
