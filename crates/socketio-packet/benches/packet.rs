//! Encode and decode, side by side with socketioxide's common parser on the same inputs.
//!
//! Each group is one row, with two functions: `ours` and `socketioxide`. Both sides do the same
//! work and produce the same text:
//! - encode rows start from typed arguments and end with the text form and its attachments
//!   (serialize the data, build the packet, encode it);
//! - decode rows start from a shared message buffer and end with a packet whose JSON payload is
//!   checked and whose event name is known. socketioxide's `decode_str` only splits the header and
//!   defers reading the JSON: its server reads the event name of every event with `read_event`
//!   (which parses the whole JSON), so event rows add that call to its side; for CONNECT and ACK,
//!   whose payloads it reads only when the application asks, its side adds a serde_json pass
//!   (`decode_default::<IgnoredAny>`), the check our decoder makes.
//! - `decode header` rows compare header splitting alone (no JSON read on either side).
//! - `decode + args` rows also deserialize the typed arguments.

#![allow(missing_docs)] // criterion_group! generates an undocumented function.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use socketio_packet::{Decoder, Header, Packet, Payload, ProtocolVersion, Str};
use socketioxide_core::Value;
use socketioxide_core::packet::Packet as TheirPacket;
use socketioxide_core::parser::{Parse, ParseConfig, ParseError, ParserState};
use socketioxide_parser_common::CommonParser;

type TheirStr = socketioxide_core::Str;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Sid {
    sid: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Item {
    id: u32,
    name: String,
    tags: Vec<String>,
    score: f64,
    active: bool,
}

/// About 1 KiB of JSON.
fn items() -> Vec<Item> {
    (0..9)
        .map(|i| Item {
            id: 1000 + i,
            name: format!("item number {i} with a longer name"),
            tags: vec!["alpha".into(), "beta".into(), format!("tag-{i}")],
            score: f64::from(i) * 1.25 + 0.5,
            active: i % 2 == 0,
        })
        .collect()
}

const ROOT: Str = Str::from_static("/");

fn our_str(text: &str) -> Str {
    let s = Str::from(text.to_owned());
    // A shared buffer, as a frame from the network: clones only count references.
    let _ = s.clone();
    s
}

fn their_str(text: &str) -> TheirStr {
    let s = TheirStr::from(text.to_owned());
    let _ = s.clone();
    s
}

fn text_of(value: &Value) -> &str {
    match value {
        Value::Str(s, _) => s.as_str(),
        Value::Bytes(_) => "",
    }
}

fn encode_rows(c: &mut Criterion) {
    let bin1 = Bytes::from_static(&[7; 32]);
    let bin2 = Bytes::from_static(&[8; 64]);
    let items = items();
    let custom = Str::from_static("/custom");

    // Check that both sides write the same text.
    let ours = Packet::event(ROOT, "chat", &(&items,), None).map(|p| p.encode(ProtocolVersion::V5));
    let theirs = CommonParser.encode(TheirPacket::event(
        "/",
        CommonParser
            .encode_value(&(&items,), Some("chat"))
            .unwrap_or_else(|e| panic!("{e}")),
    ));
    assert_eq!(ours.ok().as_deref(), Some(text_of(&theirs)));
    assert!(text_of(&theirs).len() > 1000, "{}", text_of(&theirs).len());

    let mut group = c.benchmark_group("encode connect /");
    let sid = Sid {
        sid: "wZX3oN0bSVIhsaknAAAI".into(),
    };
    group.bench_function("ours", |b| {
        b.iter(|| {
            let data = Payload::from_value(black_box(&sid)).ok();
            black_box(Packet::connect(ROOT, data).encode(ProtocolVersion::V5))
        })
    });
    group.bench_function("socketioxide", |b| {
        b.iter(|| {
            let data = CommonParser.encode_default(black_box(&sid)).ok();
            black_box(CommonParser.encode(TheirPacket::connect("/", data)))
        })
    });
    group.finish();

    macro_rules! event_row {
        ($name:expr, $nsp:expr, $their_nsp:expr, $args:expr, $id:expr) => {{
            let mut group = c.benchmark_group($name);
            let args = $args;
            group.bench_function("ours", |b| {
                b.iter(|| {
                    let p = Packet::event($nsp.clone(), "chat", black_box(&args), $id).ok();
                    black_box(p.map(|p| (p.encode(ProtocolVersion::V5), p)))
                })
            });
            group.bench_function("socketioxide", |b| {
                b.iter(|| {
                    let value = CommonParser
                        .encode_value(black_box(&args), Some("chat"))
                        .ok();
                    let mut packet =
                        TheirPacket::event($their_nsp, value.unwrap_or(Value::Bytes(Bytes::new())));
                    if let Some(id) = $id {
                        packet.inner.set_ack_id(id as i64);
                    }
                    black_box(CommonParser.encode(packet))
                })
            });
            group.finish();
        }};
    }

    event_row!("encode event /", ROOT, "/", ("hello world",), None::<u64>);
    event_row!(
        "encode event /custom",
        custom,
        "/custom",
        ("hello world",),
        None::<u64>
    );
    event_row!(
        "encode event with ack id",
        ROOT,
        "/",
        ("hello world",),
        Some(12u64)
    );
    event_row!(
        "encode binary event 1 attachment",
        ROOT,
        "/",
        ("file", bin1.clone()),
        None::<u64>
    );
    event_row!(
        "encode binary event 2 attachments",
        ROOT,
        "/",
        (bin1.clone(), bin2.clone()),
        None::<u64>
    );
    event_row!("encode event 1 KiB", ROOT, "/", (&items,), None::<u64>);

    let mut group = c.benchmark_group("encode ack");
    group.bench_function("ours", |b| {
        b.iter(|| {
            let p = Packet::ack(ROOT, 12, black_box(&("ok",))).ok();
            black_box(p.map(|p| p.encode(ProtocolVersion::V5)))
        })
    });
    group.bench_function("socketioxide", |b| {
        b.iter(|| {
            let value = CommonParser.encode_value(black_box(&("ok",)), None).ok();
            black_box(CommonParser.encode(TheirPacket::ack(
                "/",
                value.unwrap_or(Value::Bytes(Bytes::new())),
                12,
            )))
        })
    });
    group.finish();
}

/// Decodes a message and its attachments with socketioxide's parser.
fn their_decode(
    state: &ParserState,
    config: &ParseConfig,
    text: &TheirStr,
    bins: &[Bytes],
) -> Option<TheirPacket> {
    match CommonParser.decode_str(config, state, text.clone()) {
        Ok(p) => Some(p),
        Err(ParseError::NeedsMoreBinaryData) => {
            for bin in bins {
                match CommonParser.decode_bin(config, state, bin.clone()) {
                    Ok(p) => return Some(p),
                    Err(ParseError::NeedsMoreBinaryData) => {}
                    Err(_) => return None,
                }
            }
            None
        }
        Err(_) => None,
    }
}

fn our_decode(decoder: &mut Decoder, text: &Str, bins: &[Bytes]) -> Option<Packet> {
    let mut out = decoder.decode_text(text.clone()).ok()?;
    for bin in bins {
        out = decoder.decode_binary(bin.clone()).ok()?;
    }
    out
}

/// What socketioxide needs to do for the checks of our decoder: read the event name of an event
/// (as its server does to dispatch it), or check the JSON of other payloads.
fn their_event_name(packet: &TheirPacket) -> Option<usize> {
    use socketioxide_core::packet::PacketData;
    match &packet.inner {
        PacketData::Event(v, _) | PacketData::BinaryEvent(v, _) => {
            CommonParser.read_event(v).ok().map(str::len)
        }
        PacketData::Connect(Some(v)) | PacketData::EventAck(v, _) | PacketData::BinaryAck(v, _) => {
            CommonParser
                .decode_default::<serde::de::IgnoredAny>(Some(v))
                .ok()
                .map(|_| 0)
        }
        _ => Some(0),
    }
}

fn decode_rows(c: &mut Criterion) {
    let config = ParseConfig::default();
    let ph = |n: usize| format!("{{\"_placeholder\":true,\"num\":{n}}}");
    let big = Packet::event(ROOT, "chat", &(&items(),), None)
        .map(|p| p.encode(ProtocolVersion::V5).to_string())
        .unwrap_or_default();
    let rows: Vec<(&str, String, Vec<Bytes>)> = vec![
        ("decode connect /", "0{\"token\":\"123\"}".into(), vec![]),
        (
            "decode event /",
            "2[\"chat\",\"hello world\"]".into(),
            vec![],
        ),
        (
            "decode event /custom",
            "2/custom,[\"chat\",\"hello world\"]".into(),
            vec![],
        ),
        (
            "decode event with ack id",
            "212[\"chat\",\"hello world\"]".into(),
            vec![],
        ),
        ("decode ack", "312[\"ok\"]".into(), vec![]),
        (
            "decode binary event 1 attachment",
            format!("51-[\"chat\",\"file\",{}]", ph(0)),
            vec![Bytes::from(vec![7u8; 32])],
        ),
        (
            "decode binary event 2 attachments",
            format!("52-[\"chat\",{},{}]", ph(0), ph(1)),
            vec![Bytes::from(vec![7u8; 32]), Bytes::from(vec![8u8; 64])],
        ),
        ("decode event 1 KiB", big.clone(), vec![]),
    ];
    for (name, text, bins) in rows {
        let ours = our_str(&text);
        let theirs = their_str(&text);
        let bins: Vec<Bytes> = bins
            .iter()
            .map(|b| {
                let _ = b.clone();
                b.clone()
            })
            .collect();
        let mut decoder = Decoder::default();
        let state = ParserState::default();
        assert!(our_decode(&mut decoder, &ours, &bins).is_some(), "{name}");
        assert!(
            their_decode(&state, &config, &theirs, &bins).is_some(),
            "{name}"
        );
        let mut group = c.benchmark_group(name);
        group.bench_function("ours", |b| {
            b.iter(|| black_box(our_decode(&mut decoder, black_box(&ours), &bins)))
        });
        group.bench_function("socketioxide", |b| {
            b.iter(|| {
                let packet = their_decode(&state, &config, black_box(&theirs), &bins);
                let name = packet.as_ref().and_then(their_event_name);
                black_box((packet, name))
            })
        });
        group.finish();
    }

    // Header only: no JSON read on either side; both keep the namespace and payload as shared
    // slices of the message.
    let state = ParserState::default();
    for (name, text) in [
        ("decode header connect /", "0{\"token\":\"123\"}"),
        ("decode header event /", "2[\"chat\",\"hello world\"]"),
        ("decode header ack", "312[\"ok\"]"),
    ] {
        let ours = our_str(text);
        let theirs = their_str(text);
        let mut group = c.benchmark_group(name);
        group.bench_function("ours", |b| {
            b.iter(|| {
                let s = black_box(&ours);
                let h = Header::parse(s.as_str()).ok().map(|h| {
                    let nsp = if h.nsp == "/" {
                        ROOT
                    } else {
                        s.slice_ref(h.nsp)
                    };
                    (h.packet_type, h.id, nsp, s.slice_ref(h.payload))
                });
                black_box(h)
            })
        });
        group.bench_function("socketioxide", |b| {
            b.iter(|| {
                black_box(
                    CommonParser
                        .decode_str(&config, &state, black_box(&theirs).clone())
                        .ok(),
                )
            })
        });
        group.finish();
    }
    let text = "2[\"chat\",\"hello world\"]";
    let ours = our_str(text);
    let theirs = their_str(text);

    // Decode, then deserialize the typed arguments.
    let mut group = c.benchmark_group("decode + args event /");
    let mut decoder = Decoder::default();
    group.bench_function("ours", |b| {
        b.iter(|| {
            let packet = decoder.decode_text(black_box(&ours).clone()).ok().flatten();
            black_box(packet.and_then(|p| p.event_args::<(String,)>().ok()))
        })
    });
    group.bench_function("socketioxide", |b| {
        b.iter(|| {
            let packet = CommonParser
                .decode_str(&config, &state, black_box(&theirs).clone())
                .ok();
            black_box(packet.and_then(|mut p| {
                their_event_name(&p)?;
                match &mut p.inner {
                    socketioxide_core::packet::PacketData::Event(v, _) => {
                        CommonParser.decode_value::<(String,)>(v, true).ok()
                    }
                    _ => None,
                }
            }))
        })
    });
    group.finish();

    let ours = our_str(&big);
    let theirs = their_str(&big);
    let mut group = c.benchmark_group("decode + args event 1 KiB");
    group.bench_function("ours", |b| {
        b.iter(|| {
            let packet = decoder.decode_text(black_box(&ours).clone()).ok().flatten();
            black_box(packet.and_then(|p| p.event_args::<(Vec<Item>,)>().ok()))
        })
    });
    group.bench_function("socketioxide", |b| {
        b.iter(|| {
            let packet = CommonParser
                .decode_str(&config, &state, black_box(&theirs).clone())
                .ok();
            black_box(packet.and_then(|mut p| {
                their_event_name(&p)?;
                match &mut p.inner {
                    socketioxide_core::packet::PacketData::Event(v, _) => {
                        CommonParser.decode_value::<(Vec<Item>,)>(v, true).ok()
                    }
                    _ => None,
                }
            }))
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = encode_rows, decode_rows
}
criterion_main!(benches);
