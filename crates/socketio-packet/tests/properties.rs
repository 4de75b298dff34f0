//! Properties: `decode(encode(p)) == p` for every packet the encoder produces, and decoding never
//! panics on arbitrary input.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use proptest::prelude::*;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use socketio_packet::{
    Decoder, Packet, PacketKind, Payload, ProtocolVersion, RESERVED_EVENTS, Str, encode_event,
};

/// A JSON-like value with binary buffers anywhere.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Null,
    Bool(bool),
    Int(i64),
    /// Never an integer, so that it reads back as a float.
    Float(f64),
    Str(String),
    Bin(Vec<u8>),
    List(Vec<Arg>),
    Map(BTreeMap<String, Arg>),
}

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Arg::Null => s.serialize_unit(),
            Arg::Bool(b) => s.serialize_bool(*b),
            Arg::Int(i) => s.serialize_i64(*i),
            Arg::Float(f) => s.serialize_f64(*f),
            Arg::Str(v) => s.serialize_str(v),
            Arg::Bin(b) => s.serialize_bytes(b),
            Arg::List(l) => l.serialize(s),
            Arg::Map(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Arg, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Arg;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_unit<E>(self) -> Result<Arg, E> {
                Ok(Arg::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Arg, E> {
                Ok(Arg::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Arg, E> {
                Ok(Arg::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Arg, E> {
                i64::try_from(v).map(Arg::Int).map_err(E::custom)
            }
            fn visit_f64<E>(self, v: f64) -> Result<Arg, E> {
                Ok(Arg::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Arg, E> {
                Ok(Arg::Str(v.to_owned()))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Arg, E> {
                Ok(Arg::Bin(v.to_vec()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Arg, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Arg::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Arg, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry()? {
                    out.insert(k, v);
                }
                Ok(Arg::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn arg() -> impl Strategy<Value = Arg> {
    let leaf = prop_oneof![
        Just(Arg::Null),
        any::<bool>().prop_map(Arg::Bool),
        any::<i64>().prop_map(Arg::Int),
        (-1_000_000i64..1_000_000).prop_map(|i| Arg::Float(i as f64 + 0.5)),
        ".{0,12}".prop_map(Arg::Str),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Arg::Bin),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Arg::List),
            proptest::collection::btree_map("[a-z_]{0,6}", inner, 0..6).prop_map(Arg::Map),
        ]
    })
}

/// The same value without binary buffers (they cannot travel in a CONNECT).
fn text_only(a: Arg) -> Arg {
    match a {
        Arg::Bin(b) => Arg::List(b.into_iter().map(|b| Arg::Int(i64::from(b))).collect()),
        Arg::List(l) => Arg::List(l.into_iter().map(text_only).collect()),
        Arg::Map(m) => Arg::Map(m.into_iter().map(|(k, v)| (k, text_only(v))).collect()),
        other => other,
    }
}

fn nsp() -> impl Strategy<Value = Str> {
    prop_oneof![Just(Str::from("/")), "/[^,]{0,10}".prop_map(Str::from)]
}

fn name() -> impl Strategy<Value = String> {
    ".{0,10}".prop_filter("reserved", |n| !RESERVED_EVENTS.contains(&n.as_str()))
}

fn packet() -> impl Strategy<Value = (Packet, Vec<Arg>)> {
    let args = || proptest::collection::vec(arg(), 0..5);
    prop_oneof![
        (
            nsp(),
            proptest::option::of(proptest::collection::btree_map(
                "[a-z]{1,4}",
                arg().prop_map(text_only),
                0..4
            ))
        )
            .prop_map(|(nsp, auth)| {
                let data = auth.map(|a| Payload::from_value(&a).unwrap_or_else(|e| panic!("{e}")));
                (Packet::connect(nsp, data), vec![])
            }),
        nsp().prop_map(|nsp| (Packet::disconnect(nsp), vec![])),
        (nsp(), name(), args(), proptest::option::of(any::<u64>())).prop_map(
            |(nsp, name, args, id)| {
                (
                    Packet::event(nsp, &name, &args, id).unwrap_or_else(|e| panic!("{e}")),
                    args,
                )
            }
        ),
        (nsp(), any::<u64>(), args()).prop_map(|(nsp, id, args)| {
            (
                Packet::ack(nsp, id, &args).unwrap_or_else(|e| panic!("{e}")),
                args,
            )
        }),
        (nsp(), ".{0,10}", proptest::option::of(any::<i32>())).prop_map(|(nsp, msg, data)| {
            let data = data.map(|d| serde_json::json!({ "code": d }));
            (Packet::connect_error(nsp, &msg, data.as_ref()), vec![])
        }),
    ]
}

/// Sends a packet through its text form and attachments.
fn transmit(decoder: &mut Decoder, packet: &Packet) -> Packet {
    let mut out = decoder
        .decode_text(packet.encode(ProtocolVersion::V5))
        .unwrap_or_else(|e| panic!("{e}"));
    for bin in packet.attachments() {
        assert_eq!(out, None);
        out = decoder
            .decode_binary(bin.clone())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    out.unwrap_or_else(|| panic!("incomplete"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn text_roundtrip((packet, args) in packet()) {
        let mut decoder = Decoder::new(ProtocolVersion::V5, usize::MAX);
        let decoded = transmit(&mut decoder, &packet);
        prop_assert_eq!(&decoded, &packet);
        prop_assert!(!decoder.is_awaiting_attachments());
        if matches!(packet.kind, PacketKind::Event { .. } | PacketKind::Ack { .. }) {
            let back: Vec<Arg> = decoded.event_args().unwrap_or_else(|e| panic!("{e}"));
            prop_assert_eq!(back, args);
        }
        // The same decoder goes on with the next packet.
        let again = transmit(&mut decoder, &packet);
        prop_assert_eq!(again, packet);
    }

    #[test]
    fn an_event_encoded_straight_is_the_packets_text(
        nsp in nsp(),
        name in name(),
        args in proptest::collection::vec(arg(), 0..5),
        one in arg(),
        id in proptest::option::of(any::<u64>()),
        prefix in prop_oneof![Just(""), Just("4")],
    ) {
        // A list of arguments, and a single value (one argument).
        let same = |packet: Packet, (text, bins): (Str, Vec<Bytes>)| {
            let mut out = prefix.as_bytes().to_vec();
            packet.encode_into(ProtocolVersion::V5, &mut out);
            prop_assert_eq!(text.as_bytes(), &out[..]);
            prop_assert_eq!(&bins[..], packet.attachments());
            Ok(())
        };
        let encoded = encode_event(prefix, &nsp, &name, &args, id).unwrap_or_else(|e| panic!("{e}"));
        same(Packet::event(nsp.clone(), &name, &args, id).unwrap_or_else(|e| panic!("{e}")), encoded)?;
        let encoded = encode_event(prefix, &nsp, &name, &one, id).unwrap_or_else(|e| panic!("{e}"));
        same(Packet::event(nsp.clone(), &name, &one, id).unwrap_or_else(|e| panic!("{e}")), encoded)?;
    }

    #[test]
    fn an_event_encoded_straight_refuses_what_a_packet_refuses(nsp in ".{0,6}", name in name()) {
        let straight = encode_event("4", &nsp, &name, &(1, 2), None).map(|_| ());
        let packet = Packet::event(Str::from(nsp.as_str()), &name, &(1, 2), None).map(|_| ());
        prop_assert_eq!(format!("{straight:?}"), format!("{packet:?}"));
    }

    #[test]
    fn json_text_matches_serde_json(a in arg().prop_map(text_only), s in any::<String>(), f in any::<f64>()) {
        let value = (&a, &s, f, f as f32);
        let p = Payload::from_value(&value).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(p.json().as_str(), serde_json::to_string(&value).unwrap_or_default());
    }

    #[test]
    fn text_decode_never_panics(messages in proptest::collection::vec(
        prop_oneof![
            ".{0,40}".prop_map(Ok),
            "[0-6][0-9]{0,2}-?(/[a-z,]{0,4})?[0-9]{0,3}[\\[\\]{}\",:0-9a-z_ ]{0,30}".prop_map(Ok),
            "5[1-3]-\\[\"a\",\\{\"_placeholder\":(true|1),\"num\":[0-9.\"-]{1,3}\\}\\]".prop_map(Ok),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Err),
        ],
        0..12,
    )) {
        let mut decoder = Decoder::new(ProtocolVersion::V5, 3);
        for m in messages {
            let _ = match m {
                Ok(text) => decoder.decode_text(Str::from(text)),
                Err(bin) => decoder.decode_binary(Bytes::from(bin)),
            };
        }
    }
}

#[cfg(feature = "msgpack")]
mod msgpack {
    use super::*;
    use socketio_packet::msgpack;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn msgpack_roundtrip((packet, args) in packet()) {
            let bytes = msgpack::encode(&packet);
            let decoded = msgpack::decode(bytes.clone()).unwrap_or_else(|e| panic!("{e}"));
            prop_assert_eq!(&decoded.nsp, &packet.nsp);
            prop_assert_eq!(decoded.packet_type(), packet.packet_type());
            prop_assert_eq!(decoded.id(), packet.id());
            prop_assert_eq!(decoded.event_name(), packet.event_name());
            prop_assert_eq!(decoded.attachments(), packet.attachments());
            // The data is the same, read as JSON text or typed.
            let json = |p: &Packet| p.payload().map(|p| p.to_json().json().to_string());
            prop_assert_eq!(json(&decoded), json(&packet));
            if matches!(packet.kind, PacketKind::Event { .. } | PacketKind::Ack { .. }) {
                let back: Vec<Arg> = decoded.event_args().unwrap_or_else(|e| panic!("{e}"));
                prop_assert_eq!(back, args);
            }
            // A decoded packet encodes to the same bytes, and to the same text.
            prop_assert_eq!(msgpack::encode(&decoded), bytes);
            prop_assert_eq!(decoded.encode(ProtocolVersion::V5), packet.encode(ProtocolVersion::V5));
        }

        #[test]
        fn msgpack_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = msgpack::decode(Bytes::from(bytes));
        }

        #[test]
        fn msgpack_decode_of_mutated_packets_never_panics(
            (packet, _) in packet(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = msgpack::encode(&packet).to_vec();
            for (i, b) in flips {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            if let Ok(p) = msgpack::decode(Bytes::from(bytes)) {
                let _ = p.event_args::<Vec<Arg>>();
                let _ = p.encode(ProtocolVersion::V5);
                let _ = msgpack::encode(&p);
            }
        }
    }
}
