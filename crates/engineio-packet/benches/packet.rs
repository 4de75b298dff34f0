//! Encode and decode, per packet, against `engineioxide-core` (the codec of socketioxide) on the same input.
//!
//! One group per row (`encode/ping`, `decode/message`, ...), with two functions: `ours` and `socketioxide`.
//! Every packet is in its revision 4 text form, as in a polling payload or a WebSocket text frame;
//! encoding produces an owned buffer, as a transport would send it.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::str::FromStr;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion};
use engineio_packet::{Handshake, Packet, ProtocolVersion, Str, payload};
use engineioxide_core as theirs;
use futures_util::Stream;

const SID: &str = "AAAAAAAAAAAAAAAA";
const OPEN: &str = "0{\"sid\":\"AAAAAAAAAAAAAAAA\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}";
const BINARY: [u8; 64] = {
    let mut b = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        b[i] = i as u8;
        i += 1;
    }
    b
};

fn ours_handshake() -> Handshake {
    Handshake {
        sid: SID.into(),
        upgrades: vec!["websocket".into()],
        ping_interval: 25000,
        ping_timeout: 20000,
        max_payload: 1_000_000,
    }
}

fn theirs_open() -> theirs::OpenPacket {
    theirs::OpenPacket {
        sid: theirs::Sid::from_str(SID).expect("a valid sid"),
        max_payload: 1_000_000,
        ..theirs::OpenPacket::default()
    }
}

/// Polls a future or stream that never waits (every input is in memory).
fn ready<T>(poll: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> T {
    match poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(t) => t,
        Poll::Pending => panic!("the input is in memory"),
    }
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_secs(1));
    g.sample_size(50);
    g
}

/// One encode row: our packet, their packet.
fn encode_row(c: &mut Criterion, name: &str, ours: Packet, theirs: theirs::Packet) {
    let expected = String::from(theirs.clone());
    assert_eq!(ours.encode_text(ProtocolVersion::V4), expected.as_str());
    let mut g = group(c, &format!("encode/{name}"));
    g.bench_function("ours", |b| {
        b.iter_batched(
            || (),
            |()| {
                let mut out = Vec::new();
                black_box(&ours).encode_text_into(ProtocolVersion::V4, &mut out);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("socketioxide", |b| {
        b.iter_batched(|| theirs.clone(), String::from, BatchSize::SmallInput)
    });
    g.finish();
}

/// One decode row: the same wire text for both.
fn decode_row(c: &mut Criterion, name: &str, wire: &'static str, expected: Packet) {
    let input = Str::from_static(wire);
    let their_input = theirs::Str::from(wire);
    assert_eq!(
        Packet::decode_text(input.clone(), ProtocolVersion::V4),
        Ok(expected)
    );
    let mut g = group(c, &format!("decode/{name}"));
    g.bench_function("ours", |b| {
        b.iter_batched(
            || input.clone(),
            |s| Packet::decode_text(s, ProtocolVersion::V4),
            BatchSize::SmallInput,
        )
    });
    if wire.starts_with('0') {
        // engineioxide's `Packet::parse` leaves the open packet to the client: decode its JSON directly.
        g.bench_function("socketioxide", |b| {
            b.iter_batched(
                || their_input.clone(),
                |s| serde_json::from_str::<theirs::OpenPacket>(&s[1..]).map(theirs::Packet::Open),
                BatchSize::SmallInput,
            )
        });
    } else {
        assert!(theirs::Packet::parse(theirs::ProtocolVersion::V4, their_input.clone()).is_ok());
        g.bench_function("socketioxide", |b| {
            b.iter_batched(
                || their_input.clone(),
                |s| theirs::Packet::parse(theirs::ProtocolVersion::V4, s),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn packets(c: &mut Criterion) {
    let binary = Bytes::from_static(&BINARY);
    let mut binary_wire = Vec::new();
    Packet::binary(binary.clone()).encode_text_into(ProtocolVersion::V4, &mut binary_wire);
    let binary_wire: &'static str = String::from_utf8(binary_wire).expect("base64").leak();

    encode_row(c, "ping", Packet::Ping(Str::EMPTY), theirs::Packet::Ping);
    decode_row(c, "ping", "2", Packet::Ping(Str::EMPTY));

    encode_row(
        c,
        "message",
        Packet::text(Str::from_static("hello world")),
        theirs::Packet::Message(theirs::Str::from("hello world")),
    );
    decode_row(
        c,
        "message",
        "4hello world",
        Packet::text(Str::from_static("hello world")),
    );

    encode_row(
        c,
        "binary64",
        Packet::binary(binary.clone()),
        theirs::Packet::Binary(binary.clone()),
    );
    decode_row(c, "binary64", binary_wire, Packet::binary(binary.clone()));

    encode_row(
        c,
        "open",
        Packet::Open(ours_handshake()),
        theirs::Packet::Open(theirs_open()),
    );
    decode_row(c, "open", OPEN, Packet::Open(ours_handshake()));
}

fn payloads(c: &mut Criterion) {
    let binary = Bytes::from_static(&BINARY[..10]);
    let ours = vec![
        Packet::text(Str::from_static("hello world")),
        Packet::Ping(Str::EMPTY),
        Packet::binary(binary.clone()),
    ];
    let their_packets = vec![
        theirs::Packet::Message(theirs::Str::from("hello world")),
        theirs::Packet::Ping,
        theirs::Packet::Binary(binary),
    ];
    let wire = Bytes::from_static(b"4hello world\x1e2\x1ebAAECAwQFBgcICQ==");

    let their_encode = |packets: Vec<theirs::Packet>| {
        let mut buf = theirs::PacketBuf::new();
        buf.extend(packets);
        let rx = futures_util::stream::iter([buf]);
        let encode = pin!(theirs::payload::encoder(
            rx,
            theirs::ProtocolVersion::V4,
            false,
            1_000_000
        ));
        ready(|cx| encode.poll(cx)).data
    };
    let their_decode = |body: Bytes| {
        let body = http_body_util::Full::new(body);
        let mut stream = pin!(theirs::payload::decoder(
            body,
            None,
            theirs::ProtocolVersion::V4,
            1_000_000
        ));
        let mut packets = Vec::new();
        while let Some(packet) = ready(|cx| stream.as_mut().poll_next(cx)) {
            packets.push(packet);
        }
        packets
    };

    let mut out = Vec::new();
    payload::v4::encode(&ours, &mut out);
    assert_eq!(out, wire);
    assert_eq!(their_encode(their_packets.clone()), wire);
    assert_eq!(payload::v4::decode(wire.clone(), 16).as_ref(), Ok(&ours));
    assert!(their_decode(wire.clone()).iter().all(Result::is_ok));

    let mut g = group(c, "encode/payload3");
    g.bench_function("ours", |b| {
        b.iter_batched(
            || (),
            |()| {
                let mut out = Vec::new();
                payload::v4::encode(black_box(&ours), &mut out);
                Bytes::from(out)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("socketioxide", |b| {
        b.iter_batched(
            || their_packets.clone(),
            their_encode,
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = group(c, "decode/payload3");
    g.bench_function("ours", |b| {
        b.iter_batched(
            || wire.clone(),
            |w| payload::v4::decode(w, 16),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("socketioxide", |b| {
        b.iter_batched(|| wire.clone(), their_decode, BatchSize::SmallInput)
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    packets(&mut c);
    payloads(&mut c);
    c.final_summary();
}
