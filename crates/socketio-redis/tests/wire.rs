//! The adapter's messages against what the reference publishes, byte for
//! byte. The vectors in `vectors/node-adapter-8.3.0.jsonl` were recorded
//! with `interop/cluster/record-vectors.mjs` (a Node `socket.io` server
//! with `@socket.io/redis-adapter` 8.3.0 and `@socket.io/redis-emitter`
//! 5.1.0, the adapter's uid fixed to `node01`); `recorded_vectors_match_node`
//! in `cluster.rs` records them again and compares.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use serde::Deserialize;
use socketio_packet::Packet;
use socketio_redis::wire::{self, Request, RequestOpts, request_type};
use socketio_tokio::Str;
use socketio_tokio::socketio_proto::BroadcastOptions;

#[derive(Deserialize)]
struct Vector {
    channel: String,
    hex: String,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> Vec<(String, Bytes)> {
    include_str!("vectors/node-adapter-8.3.0.jsonl")
        .lines()
        .map(|l| {
            let v: Vector = serde_json::from_str(l).unwrap();
            (v.channel, Bytes::from(unhex(&v.hex)))
        })
        .collect()
}

fn args(p: &Packet) -> serde_json::Value {
    p.event_args::<serde_json::Value>().unwrap()
}

#[test]
fn broadcasts_decode_and_encode_like_node() {
    let v = vectors();

    // io.emit("plain", "hello", 1)
    let (channel, bytes) = &v[0];
    let m = wire::decode_broadcast(bytes).unwrap();
    assert_eq!(m.uid, "node01");
    assert_eq!(&*m.packet.nsp, "/");
    assert_eq!(m.packet.event_name().map(|s| &**s), Some("plain"));
    assert_eq!(args(&m.packet), serde_json::json!(["hello", 1]));
    assert_eq!(m.opts, BroadcastOptions::default());
    let ours = Packet::event(Str::from("/"), "plain", &("hello", 1), None).unwrap();
    assert_eq!(wire::encode_broadcast("node01", &ours, &m.opts), *bytes);
    assert_eq!(wire::broadcast_channel("socket.io", "/", &m.opts), *channel);

    // io.to("room1").emit("room", {a: [1, 2.5, null, true]})
    let (channel, bytes) = &v[1];
    let m = wire::decode_broadcast(bytes).unwrap();
    assert_eq!(m.opts, BroadcastOptions::default().to("room1"));
    assert_eq!(
        args(&m.packet),
        serde_json::json!([{"a": [1, 2.5, null, true]}])
    );
    let value = serde_json::json!({"a": [1, 2.5, null, true]});
    let ours = Packet::event(Str::from("/"), "room", &(value,), None).unwrap();
    assert_eq!(wire::encode_broadcast("node01", &ours, &m.opts), *bytes);
    assert_eq!(wire::broadcast_channel("socket.io", "/", &m.opts), *channel);
    assert_eq!(channel, "socket.io#/#room1#");

    // io.to(["r1", "r2"]).except("r3").emit("multi")
    let (channel, bytes) = &v[2];
    let m = wire::decode_broadcast(bytes).unwrap();
    assert_eq!(
        m.opts,
        BroadcastOptions::default().to("r1").to("r2").except("r3")
    );
    let ours = Packet::event(Str::from("/"), "multi", &(), None).unwrap();
    assert_eq!(wire::encode_broadcast("node01", &ours, &m.opts), *bytes);
    assert_eq!(wire::broadcast_channel("socket.io", "/", &m.opts), *channel);

    // io.volatile.emit("bin", Buffer.from([1, 2, 3])): type 2, a msgpack bin.
    let (_, bytes) = &v[3];
    let m = wire::decode_broadcast(bytes).unwrap();
    assert!(m.opts.volatile);
    assert_eq!(m.packet.attachments(), &[Bytes::from_static(&[1, 2, 3])]);
    let (bin,): (serde_bytes::ByteBuf,) = m.packet.event_args().unwrap();
    assert_eq!(bin.as_ref(), &[1, 2, 3]);
    let ours = Packet::event(
        Str::from("/"),
        "bin",
        &(serde_bytes::Bytes::new(&[1, 2, 3]),),
        None,
    )
    .unwrap();
    assert_eq!(wire::encode_broadcast("node01", &ours, &m.opts), *bytes);
}

#[test]
fn emitter_broadcasts_decode() {
    let v = vectors();
    // emitter.to("room1").emit("from-emitter", "x"): flags before except.
    let (channel, bytes) = &v[6];
    assert_eq!(channel, "socket.io#/#room1#");
    let m = wire::decode_broadcast(bytes).unwrap();
    assert_eq!(m.uid, "emitter");
    assert_eq!(m.opts, BroadcastOptions::default().to("room1"));
    assert_eq!(args(&m.packet), serde_json::json!(["x"]));
    // emitter.of("/chat").emit("nsp", 42)
    let (channel, bytes) = &v[7];
    assert_eq!(channel, "socket.io#/chat#");
    let m = wire::decode_broadcast(bytes).unwrap();
    assert_eq!(&*m.packet.nsp, "/chat");
    assert_eq!(args(&m.packet), serde_json::json!([42]));
}

#[test]
fn requests_encode_like_node() {
    let v = vectors();
    // adapter.addSockets({rooms: ["a"]}, ["b"])
    let (channel, bytes) = &v[4];
    assert_eq!(*channel, wire::request_channel("socket.io", "/"));
    let r = wire::decode_request(bytes).unwrap();
    assert_eq!(r.kind, request_type::REMOTE_JOIN);
    let ours = Request {
        uid: Some("node01".into()),
        kind: request_type::REMOTE_JOIN,
        opts: Some(RequestOpts::from_options(
            &BroadcastOptions::default().to("a"),
        )),
        rooms: Some(vec![Str::from("b")]),
        ..Request::default()
    };
    assert_eq!(r, ours);
    assert_eq!(serde_json::to_vec(&ours).unwrap(), *bytes);

    // adapter.disconnectSockets({rooms: ["a"], except: ["c"]}, true)
    let (_, bytes) = &v[5];
    let r = wire::decode_request(bytes).unwrap();
    let ours = Request {
        uid: Some("node01".into()),
        kind: request_type::REMOTE_DISCONNECT,
        opts: Some(RequestOpts::from_options(
            &BroadcastOptions::default().to("a").except("c"),
        )),
        close: Some(true),
        ..Request::default()
    };
    assert_eq!(r, ours);
    assert_eq!(serde_json::to_vec(&ours).unwrap(), *bytes);
}

#[test]
fn malformed_messages_are_errors() {
    for bad in [
        &b""[..],
        b"\x93",
        b"\x92\xa1a\x80",
        b"\x93\x01\x80\x80",
        b"\x93\xa1a\x80\x80",                         // packet without type
        b"\x93\xa1a\x82\xa4type\x09\xa3nsp\xa1/\x80", // type 9
        b"{\"not\": \"msgpack\"}",
        b"\x93\xa1a\x83\xa4type\x02\xa4data\x91\xa1e\xa3nsp\xa1/\x80\xc0", // trailing byte
        b"\x93\xa1a\x83\xa4type\x02\xa4data\x91\xa1e\xa3nsp\xa1/\x81\xa5rooms\x91\xc3", // room is a bool
    ] {
        assert!(
            wire::decode_broadcast(&Bytes::copy_from_slice(bad)).is_err(),
            "accepted {bad:?}"
        );
    }
    assert!(wire::decode_request(b"{\"type\": \"x\"}").is_err());
    assert!(wire::decode_request(b"\x81\xa3uid\xa1a").is_err());
    assert!(wire::decode_request(b"nope").is_err());
    // A well-formed broadcast next to them, to show the shape is right.
    let ok = b"\x93\xa1a\x83\xa4type\x02\xa4data\x91\xa1e\xa3nsp\xa1/\x80";
    assert!(wire::decode_broadcast(&Bytes::from_static(ok)).is_ok());
}

#[test]
fn numeric_rooms_from_node_are_strings() {
    let r = wire::decode_request(
        br#"{"uid":"x","type":2,"opts":{"rooms":[1],"except":[]},"rooms":[2]}"#,
    )
    .unwrap();
    assert_eq!(r.opts.unwrap().rooms, vec![Str::from("1")]);
    assert_eq!(r.rooms, Some(vec![Str::from("2")]));
}

#[test]
fn broadcast_requests_and_acks_round_trip() {
    use std::time::Duration;
    let packet = Packet::event(
        Str::from("/chat"),
        "ask",
        &(1, serde_bytes::Bytes::new(&[9, 8])),
        None,
    )
    .unwrap();
    let opts = BroadcastOptions::default().to("r1").except("r2").volatile();
    let bytes =
        wire::encode_broadcast_request("me", "q1", &packet, &opts, Duration::from_millis(2500));
    let r = wire::decode_broadcast_request(&bytes).unwrap();
    assert_eq!(r.uid, "me");
    assert_eq!(r.request_id, "q1");
    assert_eq!(r.opts, opts);
    assert_eq!(r.timeout, Some(Duration::from_millis(2500)));
    assert_eq!(&*r.packet.nsp, "/chat");
    let (n, bin): (u32, serde_bytes::ByteBuf) = r.packet.event_args().unwrap();
    assert_eq!((n, bin.as_ref()), (1, &[9u8, 8][..]));

    // An acknowledgement's first argument, binary included, crosses intact.
    let ack = Packet::ack(
        Str::from("/"),
        3,
        &(serde_bytes::Bytes::new(&[1, 2]), "extra"),
    )
    .unwrap();
    let data = ack.payload().unwrap();
    let bytes = wire::ack_response("q1", data);
    // {type: 9, requestId: "q1", packet: <bin 0102>}
    assert_eq!(
        bytes.as_ref(),
        b"\x83\xa4type\x09\xa9requestId\xa2q1\xa6packet\xc4\x02\x01\x02"
    );
    let r = wire::decode_msgpack_response(&bytes).unwrap();
    assert_eq!(
        (r.kind, r.request_id.as_str()),
        (request_type::BROADCAST_ACK, "q1")
    );
    let (bin,): (serde_bytes::ByteBuf,) = r.ack.unwrap().args(0).unwrap();
    assert_eq!(bin.as_ref(), &[1, 2]);
    // An acknowledgement without arguments gives nil, as `undefined` would.
    let empty = Packet::ack(Str::from("/"), 3, &()).unwrap();
    let bytes = wire::ack_response("q1", empty.payload().unwrap());
    assert!(bytes.ends_with(b"\xa6packet\xc0"));
}

/// `compress(false)` crosses the cluster as the reference's `flags.compress`, with `volatile` and a
/// request's timeout beside it; a broadcast that compresses writes no flag, as before.
#[test]
fn the_compress_flag_crosses() {
    let packet = Packet::event(Str::from("/"), "big", &("x",), None).unwrap();
    for opts in [
        BroadcastOptions::default().compress(false),
        BroadcastOptions::default().volatile().compress(false),
        BroadcastOptions::default(),
    ] {
        let m = wire::decode_broadcast(&wire::encode_broadcast("me", &packet, &opts)).unwrap();
        assert_eq!(m.opts, opts);
        let bytes = wire::encode_broadcast_request(
            "me",
            "q2",
            &packet,
            &opts,
            std::time::Duration::from_millis(10),
        );
        let r = wire::decode_broadcast_request(&bytes).unwrap();
        assert_eq!(
            (r.opts, r.timeout),
            (opts, Some(std::time::Duration::from_millis(10)))
        );
    }
    let plain = wire::encode_broadcast("me", &packet, &BroadcastOptions::default());
    assert!(!plain.windows(8).any(|w| w == b"compress"));
}
