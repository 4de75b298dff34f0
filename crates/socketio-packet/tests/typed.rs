//! Typed data: binary values out as attachments and back, through the encoder and the decoder.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use socketio_packet::{
    DataError, DecodeError, Decoder, EncodeError, Packet, PacketKind, PacketType, Payload,
    ProtocolVersion, Str,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Inner {
    label: String,
    blob: ByteBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    id: u32,
    head: Bytes,
    parts: Vec<Inner>,
    maybe: Option<Bytes>,
    none: Option<ByteBuf>,
    by_name: BTreeMap<String, Bytes>,
    by_num: HashMap<u16, ByteBuf>,
    #[serde(with = "serde_bytes")]
    raw: Vec<u8>,
    plain: Vec<u8>,
    tagged: Tagged,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Tagged {
    Unit,
    Blob(Bytes),
    Pair(u8, Bytes),
    Named { data: Bytes },
}

fn doc() -> Doc {
    Doc {
        id: 7,
        head: Bytes::from_static(b"head"),
        parts: vec![
            Inner {
                label: "a".into(),
                blob: ByteBuf::from(vec![1, 2]),
            },
            Inner {
                label: "b".into(),
                blob: ByteBuf::from(vec![]),
            },
        ],
        maybe: Some(Bytes::from_static(&[0xff; 3])),
        none: None,
        by_name: [
            ("x".to_owned(), Bytes::from_static(b"X")),
            ("y".to_owned(), Bytes::from_static(b"Y")),
        ]
        .into(),
        by_num: [(3, ByteBuf::from(vec![3]))].into(),
        raw: vec![9, 9],
        plain: vec![1, 2, 3],
        tagged: Tagged::Named {
            data: Bytes::from_static(b"n"),
        },
    }
}

/// Sends a packet through its text form and attachments, and decodes it back.
fn roundtrip(packet: &Packet) -> Packet {
    let mut decoder = Decoder::new(ProtocolVersion::V5, 100);
    let text = packet.encode(ProtocolVersion::V5);
    let mut out = decoder.decode_text(text).unwrap_or_else(|e| panic!("{e}"));
    for bin in packet.attachments() {
        assert!(out.is_none());
        out = decoder
            .decode_binary(bin.clone())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    out.unwrap_or_else(|| panic!("incomplete"))
}

#[test]
fn placeholders_are_numbered_depth_first() {
    let payload = Payload::from_value(&doc()).unwrap_or_else(|e| panic!("{e}"));
    let p = |n: usize| format!("{{\"_placeholder\":true,\"num\":{n}}}");
    let expected = format!(
        "{{\"id\":7,\"head\":{},\"parts\":[{{\"label\":\"a\",\"blob\":{}}},{{\"label\":\"b\",\"blob\":{}}}],\
         \"maybe\":{},\"none\":null,\"by_name\":{{\"x\":{},\"y\":{}}},\"by_num\":{{\"3\":{}}},\"raw\":{},\
         \"plain\":[1,2,3],\"tagged\":{{\"Named\":{{\"data\":{}}}}}}}",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7),
        p(8)
    );
    assert_eq!(payload.json(), expected.as_str());
    let bins: Vec<&[u8]> = payload.attachments().iter().map(|b| &b[..]).collect();
    assert_eq!(
        bins,
        [
            &b"head"[..],
            &[1, 2],
            &[],
            &[0xff; 3],
            b"X",
            b"Y",
            &[3],
            &[9, 9],
            b"n"
        ]
    );
    assert!(payload.is_binary());
    assert_eq!(payload.deserialize::<Doc>().ok(), Some(doc()));
}

#[test]
fn event_with_typed_binary_data_roundtrips() {
    let d = doc();
    let packet = Packet::event(Str::from("/files"), "doc", &(&d, "tail", 5), Some(3))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(packet.packet_type(), PacketType::BinaryEvent);
    assert_eq!(packet.attachments().len(), 9);
    let decoded = roundtrip(&packet);
    assert_eq!(decoded, packet);
    let (got, tail, n): (Doc, String, u8) = decoded.event_args().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((got, tail.as_str(), n), (d.clone(), "tail", 5));
    // A struct that deserializes from a sequence.
    #[derive(Deserialize)]
    struct Args(Doc, String);
    let Args(got, tail) = decoded.event_args().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((got, tail.as_str()), (d, "tail"));
    // Extra arguments are ignored; missing ones are an error.
    let (_, _): (Doc, String) = decoded.event_args().unwrap_or_else(|e| panic!("{e}"));
    assert!(decoded.event_args::<(Doc, String, u8, u8)>().is_err());
    // The whole payload, event name included.
    let whole: (String, Doc, String, u8) = decoded
        .payload()
        .map(|p| p.deserialize())
        .into_iter()
        .flatten()
        .next()
        .unwrap_or_else(|| panic!("no payload"));
    assert_eq!(whole.0, "doc");
}

#[test]
fn ack_with_binary_roundtrips() {
    let packet = Packet::ack(Str::from("/"), 9, &(Bytes::from_static(b"xyz"), 1))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(packet.packet_type(), PacketType::BinaryAck);
    assert_eq!(
        packet.encode(ProtocolVersion::V5),
        "61-9[{\"_placeholder\":true,\"num\":0},1]"
    );
    let decoded = roundtrip(&packet);
    assert_eq!(decoded, packet);
    let (b, n): (Bytes, i32) = decoded.event_args().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((&b[..], n), (&b"xyz"[..], 1));
    // A placeholder reads as Vec<u8> and ByteBuf too.
    let (v, _): (Vec<u8>, i32) = decoded.event_args().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v, b"xyz");
    let (v, _): (ByteBuf, i32) = decoded.event_args().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.as_slice(), b"xyz");
}

#[test]
fn argument_shapes() {
    let nsp = || Str::from("/");
    let enc = |p: Result<Packet, EncodeError>| {
        p.map(|p| p.encode(ProtocolVersion::V5).to_string())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(enc(Packet::event(nsp(), "e", &(), None)), "2[\"e\"]");
    assert_eq!(enc(Packet::event(nsp(), "e", &1, None)), "2[\"e\",1]");
    assert_eq!(
        enc(Packet::event(nsp(), "e", "hi", None)),
        "2[\"e\",\"hi\"]"
    );
    assert_eq!(
        enc(Packet::event(nsp(), "e", &("a", 2), None)),
        "2[\"e\",\"a\",2]"
    );
    assert_eq!(
        enc(Packet::event(nsp(), "e", &vec![1, 2], None)),
        "2[\"e\",1,2]"
    );
    assert_eq!(
        enc(Packet::event(nsp(), "e", &[[1, 2]], None)),
        "2[\"e\",[1,2]]"
    );
    assert_eq!(enc(Packet::event(nsp(), "e", &Some(1), None)), "2[\"e\",1]");
    assert_eq!(
        enc(Packet::event(nsp(), "e", &None::<u8>, None)),
        "2[\"e\",null]"
    );
    assert_eq!(
        enc(Packet::event(
            nsp(),
            "e",
            &serde_json::json!({"a": 1}),
            None
        )),
        "2[\"e\",{\"a\":1}]"
    );
    assert_eq!(
        enc(Packet::event(
            nsp(),
            "e",
            &serde_json::json!([1, {"b": 2}]),
            None
        )),
        "2[\"e\",1,{\"b\":2}]"
    );
    assert_eq!(
        enc(Packet::event(nsp(), "e", &Tagged::Unit, None)),
        "2[\"e\",\"Unit\"]"
    );
    assert_eq!(
        enc(Packet::event(
            nsp(),
            "e",
            &Tagged::Pair(1, Bytes::new()),
            None
        )),
        "51-[\"e\",{\"Pair\":[1,{\"_placeholder\":true,\"num\":0}]}]"
    );
    assert_eq!(
        enc(Packet::event(nsp(), "e", &Tagged::Blob(Bytes::new()), None)),
        "51-[\"e\",{\"Blob\":{\"_placeholder\":true,\"num\":0}}]"
    );
    assert_eq!(
        enc(Packet::event(
            nsp(),
            "e",
            &Bytes::from_static(b"z"),
            Some(4)
        )),
        "51-4[\"e\",{\"_placeholder\":true,\"num\":0}]"
    );
    assert_eq!(
        enc(Packet::event(nsp(), "a\"b", &f64::NAN, None)),
        "2[\"a\\\"b\",null]"
    );
    assert_eq!(enc(Packet::ack(nsp(), 1, &())), "31[]");
    assert_eq!(enc(Packet::ack(nsp(), 1, &("x",))), "31[\"x\"]");
    assert_eq!(
        enc(Packet::ack(nsp(), 1, &serde_json::json!({"k": [1]}))),
        "31[{\"k\":[1]}]"
    );

    // The name is its own string, escapes resolved.
    let p = Packet::event(nsp(), "a\"b", &(), None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.event_name().map(|n| n.as_str()), Some("a\"b"));
    assert_eq!(roundtrip(&p), p);

    // Maps with integer and boolean keys, as serde_json writes them.
    let m: BTreeMap<i32, bool> = [(-1, true), (2, false)].into();
    assert_eq!(
        enc(Packet::event(nsp(), "e", &m, None)),
        "2[\"e\",{\"-1\":true,\"2\":false}]"
    );
    let m: HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
    assert!(matches!(
        Packet::event(nsp(), "e", &m, None),
        Err(EncodeError::KeyMustBeAString)
    ));
}

#[test]
fn same_text_as_serde_json() {
    let values = [
        serde_json::json!({"a": [1, 2.5, -3, "s\u{1}\n\"", null, true, {"b": {}}], "c": []}),
        serde_json::json!("é™\u{7f}"),
        serde_json::json!(1e300),
        serde_json::json!(u64::MAX),
        serde_json::json!(i64::MIN),
    ];
    for v in values {
        let p = Payload::from_value(&v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.json().as_str(),
            serde_json::to_string(&v).unwrap_or_default()
        );
        assert!(!p.is_binary());
        assert_eq!(p.deserialize::<serde_json::Value>().ok(), Some(v));
    }
}

#[test]
fn invalid_namespaces_are_refused() {
    for nsp in ["", "admin", "/a,b"] {
        assert!(matches!(
            Packet::event(Str::from(nsp), "e", &(), None),
            Err(EncodeError::InvalidNamespace(_))
        ));
        assert!(matches!(
            Packet::ack(Str::from(nsp), 1, &()),
            Err(EncodeError::InvalidNamespace(_))
        ));
        assert!(!socketio_packet::is_valid_namespace(nsp));
    }
    assert!(socketio_packet::is_valid_namespace("/"));
    assert!(socketio_packet::is_valid_namespace("/admin?x=1"));
}

#[test]
fn too_deep_values_are_refused() {
    fn nest(n: usize) -> serde_json::Value {
        let mut v = serde_json::json!(1);
        for _ in 0..n {
            v = serde_json::Value::Array(vec![v]);
        }
        v
    }
    assert!(Payload::from_value(&nest(127)).is_ok());
    assert!(matches!(
        Payload::from_value(&nest(128)),
        Err(EncodeError::TooDeep)
    ));
    // The arguments' array counts as a level.
    assert!(Packet::event(Str::from("/"), "e", &(nest(126),), None).is_ok());
    assert!(matches!(
        Packet::event(Str::from("/"), "e", &(nest(127),), None),
        Err(EncodeError::TooDeep)
    ));
    let ok =
        Packet::event(Str::from("/"), "e", &(nest(126),), None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(roundtrip(&ok), ok);
}

#[test]
fn bad_placeholders() {
    // Built by hand: a placeholder beyond the attachments.
    let json = Str::from("[\"a\",{\"_placeholder\":true,\"num\":1}]");
    assert_eq!(
        Payload::from_json(json.clone(), vec![Bytes::new()]),
        Err(DecodeError::BadPlaceholder)
    );
    // Without attachments, placeholders are plain objects.
    let p = Payload::from_json(json, vec![]).unwrap_or_else(|e| panic!("{e}"));
    assert!(p.check_placeholders().is_ok());
    let v: (String, serde_json::Value) = p.deserialize().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.1["num"], 1);
    assert!(matches!(
        p.deserialize::<(String, Bytes)>(),
        Err(DataError::Json(_))
    ));
    assert!(Payload::from_json(Str::from("[1"), vec![]).is_err());
    assert_eq!(
        Payload::from_json(Str::from("  [1] "), vec![]).map(|p| p.json().to_string()),
        Ok("[1]".to_owned())
    );
}

#[test]
fn text_payloads_deserialize_straight_from_the_text() {
    let mut decoder = Decoder::default();
    let packet = decoder
        .decode_text(Str::from("2[\"chat\",\"hello world\",{\"n\":[1,2]}]"))
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no packet"));
    #[derive(Deserialize, PartialEq, Debug)]
    struct N {
        n: Vec<u8>,
    }
    let (msg, n): (String, N) = packet.event_args().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((msg.as_str(), n), ("hello world", N { n: vec![1, 2] }));
    let all: Vec<serde_json::Value> = packet.event_args().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 2);
    assert!(matches!(
        packet.event_args::<(u8,)>(),
        Err(DataError::Json(_))
    ));
    assert!(matches!(
        Packet::disconnect(Str::from("/")).event_args::<()>(),
        Err(DataError::NoArguments)
    ));
    let PacketKind::Event { data, .. } = &packet.kind else {
        panic!("not an event")
    };
    let skipped: (N,) = data.args(2).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(skipped.0.n, [1, 2]);
}
