//! What the adapter notifies and stores against what the reference does,
//! byte for byte. The vectors in `vectors/node-postgres-adapter-0.5.0.jsonl`
//! were recorded with `interop/cluster/record-postgres-vectors.mjs` (a Node
//! `socket.io` server with `@socket.io/postgres-adapter` 0.5.0, its uid
//! fixed to `node01`, and `@socket.io/postgres-emitter` 0.1.1);
//! `recorded_vectors_match_node` in `cluster.rs` records them again and
//! compares.

#![allow(clippy::unwrap_used)]

use serde::Deserialize;
use serde_json::json;
use socketio_cluster_adapter::wire::{self, Body, Message};
use socketio_packet::Packet;
use socketio_postgres::wire::{attachment_header, attachment_id, attachment_payload};
use socketio_tokio::Str;
use socketio_tokio::socketio_proto::BroadcastOptions;

#[derive(Deserialize)]
struct Vector {
    channel: String,
    payload: String,
    attachment: Option<String>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> Vec<Vector> {
    include_str!("vectors/node-postgres-adapter-0.5.0.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn message(body: Body) -> Message {
    Message {
        uid: "node01".into(),
        nsp: "/".into(),
        body,
    }
}

fn broadcast(packet: Packet, opts: BroadcastOptions) -> Message {
    message(Body::Broadcast {
        packet,
        opts,
        request_id: None,
        timeout: None,
    })
}

fn event<T: serde::Serialize + ?Sized>(name: &str, args: &T) -> Packet {
    Packet::event(Str::from("/"), name, args, None).unwrap()
}

/// The event name and JSON arguments of a decoded broadcast.
fn event_of(m: &Message) -> (String, serde_json::Value) {
    let Body::Broadcast { packet, .. } = &m.body else {
        panic!("not a broadcast: {m:?}");
    };
    (
        packet.event_name().unwrap().to_string(),
        packet.event_args::<serde_json::Value>().unwrap(),
    )
}

#[test]
fn notifications_and_attachments_are_nodes() {
    let v = vectors();
    assert_eq!(v.len(), 8);
    assert!(v.iter().all(|v| v.channel == "socket.io#/"));

    // Notified as JSON, the same bytes as ours.
    let two_rooms = BroadcastOptions {
        rooms: vec![Str::from("r1"), Str::from("r2")],
        except: vec![Str::from("r3")],
        ..BroadcastOptions::default()
    };
    let json_cases = [
        (
            0,
            broadcast(event("plain", &("hello", 1)), BroadcastOptions::default()),
        ),
        (
            1,
            broadcast(
                event("multi", &json!([{"a": [1, 2.5, null, true]}])),
                two_rooms,
            ),
        ),
        (
            4,
            message(Body::SocketsJoin {
                opts: BroadcastOptions::default().to("a"),
                rooms: vec![Str::from("b")],
            }),
        ),
        (
            5,
            message(Body::ServerSideEmit {
                data: vec![json!("hello"), json!("world"), json!(2)],
                request_id: None,
            }),
        ),
        (6, message(Body::Heartbeat)),
    ];
    for (i, ours) in json_cases {
        let theirs = &v[i];
        assert_eq!(attachment_id(&theirs.payload), None);
        assert_eq!(wire::encode(&ours), theirs.payload.as_bytes(), "vector {i}");
        let decoded = wire::decode(theirs.payload.as_bytes()).unwrap();
        match &ours.body {
            Body::Broadcast { .. } => assert_eq!(event_of(&decoded), event_of(&ours)),
            _ => assert_eq!(decoded, ours),
        }
    }

    // A Buffer, and a message over the threshold: stored as msgpack, the
    // same bytes as ours, and pointed at by a header like ours.
    let bin = broadcast(
        event("bin", &(serde_bytes::Bytes::new(&[1, 2, 3]),)),
        BroadcastOptions::default(),
    );
    let big = broadcast(
        event("big", &("x".repeat(9000),)),
        BroadcastOptions::default(),
    );
    for (i, ours, id) in [(2, bin, 1), (3, big, 2)] {
        let theirs = &v[i];
        assert_eq!(theirs.payload, attachment_header("node01", 3, id));
        assert_eq!(attachment_id(&theirs.payload), Some(id));
        let stored = unhex(theirs.attachment.as_deref().unwrap());
        assert_eq!(
            attachment_payload(&wire::encode(&ours)).unwrap(),
            stored,
            "vector {i}"
        );
        let decoded = wire::decode(&stored).unwrap();
        assert_eq!(decoded.uid, "node01");
        assert_eq!(decoded.nsp, "/");
    }
    let big = wire::decode(&unhex(v[3].attachment.as_deref().unwrap())).unwrap();
    assert_eq!(
        event_of(&big),
        ("big".to_owned(), json!(["x".repeat(9000)]))
    );

    // The emitter names no namespace: the channel's is taken.
    let emitted = &v[7];
    assert!(wire::decode(emitted.payload.as_bytes()).is_err());
    let m = wire::decode_in(emitted.payload.as_bytes(), Some("/")).unwrap();
    assert_eq!(m.uid, "emitter");
    assert_eq!(event_of(&m), ("from-emitter".to_owned(), json!(["x"])));
    let Body::Broadcast { opts, .. } = m.body else {
        panic!()
    };
    assert_eq!(opts, BroadcastOptions::default().to("room1"));
}
