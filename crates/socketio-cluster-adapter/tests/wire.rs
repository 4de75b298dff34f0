//! The messages against what the reference publishes, byte for byte. The
//! vectors in `vectors/node-sharded-adapter-8.3.0.jsonl` were recorded with
//! `interop/cluster/record-sharded-vectors.mjs` (a Node `socket.io` server
//! with `createShardedAdapter` of `@socket.io/redis-adapter` 8.3.0 on
//! `socket.io-adapter` 2.5, its uid fixed to `node01`); the sharded tests of
//! `socketio-redis` record them again and compare.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use socketio_cluster_adapter::wire::{self, Body, Message};
use socketio_packet::{Packet, Payload};
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
    include_str!("vectors/node-sharded-adapter-8.3.0.jsonl")
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

fn message(body: Body) -> Message {
    Message {
        uid: "node01".into(),
        nsp: "/".into(),
        body,
    }
}

fn opts(rooms: &[&str], except: &[&str]) -> BroadcastOptions {
    BroadcastOptions {
        rooms: rooms.iter().map(|r| Str::from(*r)).collect(),
        except: except.iter().map(|r| Str::from(*r)).collect(),
        ..BroadcastOptions::default()
    }
}

/// Decodes vector `i` as a broadcast; checks the event and options, and
/// that ours encodes to the same bytes.
fn broadcast(v: &(String, Bytes), event: Packet, want: &BroadcastOptions) {
    let (channel, bytes) = v;
    assert_eq!(channel, "socket.io#/#");
    let m = wire::decode(bytes).unwrap();
    assert_eq!(m.uid, "node01");
    assert_eq!(m.nsp, "/");
    let Body::Broadcast {
        packet,
        opts,
        request_id,
        timeout,
    } = m.body
    else {
        panic!("not a broadcast: {m:?}");
    };
    assert_eq!(&*packet.nsp, "/");
    assert_eq!(packet.event_name(), event.event_name());
    if event.attachments().is_empty() {
        assert_eq!(args(&packet), args(&event));
    } else {
        let bytes = |p: &Packet| p.event_args::<(serde_bytes::ByteBuf,)>().unwrap().0;
        assert_eq!(bytes(&packet), bytes(&event));
    }
    assert_eq!(packet.attachments(), event.attachments());
    assert_eq!(&opts, want);
    assert_eq!((request_id, timeout), (None, None));
    let ours = message(Body::Broadcast {
        packet: event,
        opts: want.clone(),
        request_id: None,
        timeout: None,
    });
    assert_eq!(
        wire::encode(&ours),
        *bytes,
        "{}",
        String::from_utf8_lossy(bytes)
    );
}

#[test]
fn broadcasts_decode_and_encode_like_node() {
    let v = vectors();
    let ev = |name: &str, args: serde_json::Value| {
        Packet::event(Str::from("/"), name, &args, None).unwrap()
    };
    broadcast(&v[0], ev("plain", json!(["hello", 1])), &opts(&[], &[]));
    broadcast(
        &v[1],
        ev("room", json!([{"a": [1, 2.5, null, true]}])),
        &opts(&["room1"], &[]),
    );
    broadcast(&v[2], ev("multi", json!([])), &opts(&["r1", "r2"], &["r3"]));
    // A Buffer makes the whole message msgpack, the Buffer a `bin`.
    let bin = Packet::event(
        Str::from("/"),
        "bin",
        &(serde_bytes::Bytes::new(&[1, 2, 3]),),
        None,
    )
    .unwrap();
    broadcast(&v[3], bin, &BroadcastOptions::default().volatile());
    broadcast(
        &v[4],
        ev("nocompress", json!([])),
        &BroadcastOptions::default().compress(false),
    );
}

#[test]
fn room_and_disconnect_requests_decode_and_encode_like_node() {
    let v = vectors();
    let a = opts(&["a"], &[]);
    let cases = [
        Body::SocketsJoin {
            opts: a.clone(),
            rooms: vec![Str::from("b")],
        },
        Body::SocketsLeave {
            opts: a,
            rooms: vec![Str::from("b")],
        },
        Body::DisconnectSockets {
            opts: opts(&["a"], &["c"]),
            close: true,
        },
        Body::ServerSideEmit {
            data: vec![json!("hello"), json!("world"), json!(2)],
            request_id: None,
        },
    ];
    for (i, body) in cases.into_iter().enumerate() {
        let (channel, bytes) = &v[5 + i];
        assert_eq!(channel, "socket.io#/#");
        let m = message(body);
        assert_eq!(wire::decode(bytes).unwrap(), m);
        assert_eq!(
            wire::encode(&m),
            *bytes,
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn responses_decode_and_encode_like_node() {
    let v = vectors();
    let cases = [
        Body::FetchSocketsResponse {
            request_id: "req1".into(),
            sockets: vec![],
        },
        Body::ServerSideEmitResponse {
            request_id: "req2".into(),
            data: json!("pong"),
        },
        Body::BroadcastClientCount {
            request_id: "req3".into(),
            count: 0,
        },
    ];
    for (i, body) in cases.into_iter().enumerate() {
        let (channel, bytes) = &v[9 + i];
        // Answers go to the requesting node's own channel.
        assert_eq!(channel, "socket.io#/#rust01#");
        let m = message(body);
        assert_eq!(wire::decode(bytes).unwrap(), m);
        assert_eq!(wire::encode(&m), *bytes);
    }
    assert_eq!(v.len(), 12);
}

#[test]
fn requests_and_acks_round_trip() {
    // Broadcasts with acknowledgements carry their request id and timeout.
    let packet = Packet::event(Str::from("/chat"), "ask", &(1,), None).unwrap();
    let m = Message {
        uid: "u1".into(),
        nsp: "/chat".into(),
        body: Body::Broadcast {
            packet,
            opts: opts(&["x"], &[]),
            request_id: Some("r1".into()),
            timeout: Some(Duration::from_millis(1500)),
        },
    };
    let bytes = wire::encode(&m);
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        r#"{"type":3,"data":{"packet":{"type":2,"data":["ask",1]},"requestId":"r1","opts":{"rooms":["x"],"except":[],"flags":{"timeout":1500}}},"uid":"u1","nsp":"/chat"}"#
    );
    let Body::Broadcast {
        packet,
        request_id,
        timeout,
        ..
    } = wire::decode(&bytes).unwrap().body
    else {
        panic!()
    };
    assert_eq!(&*packet.nsp, "/chat");
    assert_eq!(args(&packet), json!([1]));
    assert_eq!(request_id.as_deref(), Some("r1"));
    assert_eq!(timeout, Some(Duration::from_millis(1500)));

    // An acknowledgement: JSON, or msgpack when it holds binary data.
    for (ack, binary) in [
        (Payload::from_value(&("a1", 2)).unwrap(), false),
        (
            Payload::from_value(&(serde_bytes::Bytes::new(&[9, 8]),)).unwrap(),
            true,
        ),
    ] {
        let m = message(Body::BroadcastAck {
            request_id: "r2".into(),
            ack: ack.clone(),
        });
        let bytes = wire::encode(&m);
        assert_eq!(bytes[0] == b'{', !binary);
        let Body::BroadcastAck {
            request_id,
            ack: back,
        } = wire::decode(&bytes).unwrap().body
        else {
            panic!()
        };
        assert_eq!(request_id, "r2");
        // Only the first argument travels, as in the reference.
        if binary {
            let first = |p: &Payload| p.args::<(serde_bytes::ByteBuf,)>(0).unwrap().0;
            assert_eq!(first(&back), first(&ack));
            assert_eq!(back.attachments(), ack.attachments());
        } else {
            assert_eq!(
                back.deserialize::<serde_json::Value>().unwrap(),
                json!(["a1"])
            );
        }
    }

    // A fetch request, and the sockets of the answer.
    let m = message(Body::FetchSockets {
        opts: opts(&["r"], &["s"]),
        request_id: "r3".into(),
    });
    assert_eq!(wire::decode(&wire::encode(&m)).unwrap(), m);
}

#[test]
fn malformed_messages_are_errors() {
    for bad in [
        &b""[..],
        b"{",
        b"{\"type\":3,\"uid\":\"x\"}",
        b"{\"type\":3,\"nsp\":\"/\",\"uid\":\"x\",\"data\":{}}",
        b"{\"type\":3,\"nsp\":\"/\",\"uid\":\"x\",\"data\":{\"packet\":{\"type\":2,\"data\":[\"connect\"]}}}",
        b"{\"type\":11,\"nsp\":\"/\",\"uid\":\"x\",\"data\":{\"requestId\":\"a\"}}",
        b"\x93\x01\x02\x03",
        b"\xc1",
    ] {
        assert!(wire::decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
    // An unknown type is not an error: it is ignored as the reference does.
    let m = wire::decode(b"{\"type\":42,\"nsp\":\"/\",\"uid\":\"x\"}").unwrap();
    assert_eq!(m.body, Body::Unknown(42));
}
