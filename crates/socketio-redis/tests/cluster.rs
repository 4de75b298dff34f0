//! Two Rust servers and one Node `socket.io` server with
//! `@socket.io/redis-adapter` form one cluster over a real `redis-server`;
//! official clients on each. Broadcasts, rooms, exceptions, local-only
//! emits, the emitter, and cluster queries both ways.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    Node, Redis, events_of, eventually, node_ready, receivers, rust_server, set, times_got,
};
use serde_json::{Value, json};
use socketio_redis::{RedisAdapter, RedisAdapterError};
use socketio_tokio::SocketIo;

/// What the Node server answered to `command`, under `key`.
async fn node_answer(n: &mut Node, command: Value, key: &str) -> Value {
    let replies = n.command(command).await;
    replies.iter().find_map(|v| v.get(key)).unwrap().clone()
}

/// The sockets a Node server's `fetchSockets()` found, for `command`.
async fn node_fetch(n: &mut Node, command: Value) -> Vec<Value> {
    let fetched = node_answer(n, command, "fetched").await;
    fetched.as_array().unwrap().clone()
}

/// A JSON array of strings, sorted.
fn sorted(v: Value) -> Vec<String> {
    let mut items: Vec<String> = serde_json::from_value(v).unwrap();
    items.sort();
    items
}

/// The ids of fetched sockets.
fn ids_of(fetched: &[Value]) -> BTreeSet<String> {
    fetched
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_node_servers_form_one_cluster() {
    node_ready();
    let _ = tracing_subscriber::fmt()
        .with_env_filter("socketio_redis=debug,socketio_tokio=debug")
        .with_test_writer()
        .try_init();
    let redis = Redis::start();
    let (a, _adapter_a, addr_a) = rust_server(&redis.url()).await;
    let (b, _adapter_b, addr_b) = rust_server(&redis.url()).await;
    let node_port = common::free_port();
    let mut n = Node::spawn("node-server.mjs", &[redis.url(), node_port.to_string()]).await;
    n.wait_for("the Node server", |v| v.get("ready").is_some())
        .await;

    let spec = json!([
        {"name": "a1", "url": format!("http://{addr_a}"), "room": "r1"},
        {"name": "a2", "url": format!("http://{addr_a}"), "room": "r2"},
        {"name": "b1", "url": format!("http://{addr_b}"), "room": "r1"},
        {"name": "b2", "url": format!("http://{addr_b}")},
        {"name": "n1", "url": format!("http://127.0.0.1:{node_port}"), "room": "r1"},
        {"name": "n2", "url": format!("http://127.0.0.1:{node_port}"), "room": "r2"},
    ]);
    let clients = Node::spawn("clients.mjs", &[spec.to_string()]).await;
    let ready = clients
        .wait_for("the clients", |v| v.get("ready").is_some())
        .await;
    let id = |name: &str| ready["ready"][name].as_str().unwrap().to_owned();

    // Three nodes subscribe to the request channel (the Node adapter
    // subscribes without waiting, so give it a moment).
    let mut count = 0;
    for _ in 0..100 {
        count = a.server_count("/").await.unwrap();
        if count == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count, 3);
    assert_eq!(b.server_count("/").await.unwrap(), 3);
    let count = n.command(json!({"op": "count"})).await;
    assert!(count.iter().any(|v| v["count"] == 3), "{count:?}");

    // A broadcast from each server reaches every client of the others.
    a.emit("from-a", &("hello", 1)).unwrap();
    b.to("r1")
        .emit("from-b-to-r1", &json!({"x": [1, 2.5, null]}))
        .unwrap();
    n.command(json!({"op": "emit", "except": ["r1"], "event": "from-n-except-r1", "args": ["n"]}))
        .await;
    n.command(json!({"op": "emit", "to": ["r2"], "event": "from-n-to-r2", "args": []}))
        .await;
    // Binary data crosses as msgpack bin, both ways.
    a.emit("bin-from-a", &(serde_bytes::Bytes::new(&[1, 2, 3]),))
        .unwrap();
    n.command(json!({"op": "emit", "event": "bin-from-n", "args": [{"$hex": "0a0b"}]}))
        .await;
    // The emitter, as a Node process that is no server.
    n.command(json!({"op": "emitter", "to": ["r1"], "event": "from-emitter", "args": ["e"]}))
        .await;
    // Local-only broadcasts stay on their node.
    a.local().emit("local-a", &()).unwrap();
    n.command(json!({"op": "emit", "local": true, "event": "local-n", "args": []}))
        .await;
    // Several rooms and an exception, from a Rust node.
    b.to(["r1", "r2"])
        .except("r2")
        .except(id("b1"))
        .emit("rooms-from-b", &())
        .unwrap();

    let everyone = set(&["a1", "a2", "b1", "b2", "n1", "n2"]);
    let expected = [
        ("from-a", everyone.clone()),
        ("from-b-to-r1", set(&["a1", "b1", "n1"])),
        ("from-n-except-r1", set(&["a2", "b2", "n2"])),
        ("from-n-to-r2", set(&["a2", "n2"])),
        ("bin-from-a", everyone.clone()),
        ("bin-from-n", everyone.clone()),
        ("from-emitter", set(&["a1", "b1", "n1"])),
        ("local-a", set(&["a1", "a2"])),
        ("local-n", set(&["n1", "n2"])),
        ("rooms-from-b", set(&["a1", "n1"])),
    ];
    for (event, want) in &expected {
        eventually(&format!("{event} reaches {want:?}"), || {
            receivers(&clients, event) == *want
        })
        .await;
    }
    // Nothing more arrives after a while: no duplicates, nothing leaked.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (event, want) in &expected {
        assert_eq!(receivers(&clients, event), *want, "{event}");
        for c in want {
            let n = times_got(&clients, c, event);
            assert_eq!(n, 1, "{c} got {event} {n} times");
        }
    }
    // Payloads arrive intact.
    let args_of = |c: &str, event: &str| {
        events_of(&clients, c)
            .into_iter()
            .find(|(e, _)| e == event)
            .map(|(_, a)| a)
            .unwrap()
    };
    assert_eq!(args_of("n1", "from-a"), json!(["hello", 1]));
    assert_eq!(
        args_of("n1", "from-b-to-r1"),
        json!([{"x": [1, 2.5, null]}])
    );
    assert_eq!(args_of("b2", "from-n-except-r1"), json!(["n"]));
    assert_eq!(args_of("n2", "bin-from-a"), json!([{"$hex": "010203"}]));
    assert_eq!(args_of("a1", "bin-from-n"), json!([{"$hex": "0a0b"}]));
    assert_eq!(args_of("b1", "from-emitter"), json!(["e"]));

    // io.fetchSockets() on the Node server sees the Rust servers' sockets.
    let fetched = node_fetch(&mut n, json!({"op": "fetch"})).await;
    let ids = ids_of(&fetched);
    let all: BTreeSet<String> = ["a1", "a2", "b1", "b2", "n1", "n2"]
        .iter()
        .map(|c| id(c))
        .collect();
    assert_eq!(ids, all);
    let a1 = fetched.iter().find(|s| s["id"] == id("a1")).unwrap();
    let rooms: BTreeSet<&str> = a1["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(rooms, BTreeSet::from([id("a1").as_str(), "r1"]));
    assert_eq!(a1["handshake"]["query"]["room"], "r1");
    assert_eq!(a1["handshake"]["query"]["EIO"], "4");
    assert_eq!(a1["handshake"]["address"], "127.0.0.1");
    assert!(a1["handshake"]["issued"].as_u64().unwrap() > 0);
    assert!(a1["handshake"]["headers"]["host"].is_string());
    // ... with rooms selected on the Node side.
    let fetched = node_fetch(&mut n, json!({"op": "fetch", "to": ["r2"]})).await;
    assert_eq!(ids_of(&fetched), BTreeSet::from([id("a2"), id("n2")]));

    // fetch_sockets on a Rust server sees the others'.
    let sockets = a.of("/").to("r1").fetch_sockets().await.unwrap();
    let ids: BTreeSet<String> = sockets.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, BTreeSet::from([id("a1"), id("b1"), id("n1")]));
    let n1 = sockets.iter().find(|s| s.id == id("n1")).unwrap();
    assert_eq!(n1.data, json!({"who": "node"}));
    assert_eq!(n1.handshake["query"]["room"], "r1");
    let local = a.of("/").local().fetch_sockets().await.unwrap();
    assert_eq!(local.len(), 2);

    // allRooms both ways.
    let rooms = a.all_rooms("/").await.unwrap();
    for r in ["r1", "r2"] {
        assert!(rooms.iter().any(|x| &**x == r), "{rooms:?}");
    }
    for c in ["a1", "b2", "n2"] {
        assert!(rooms.iter().any(|x| **x == id(c)), "{rooms:?}");
    }
    let node_rooms = n.command(json!({"op": "rooms"})).await;
    let node_rooms = node_rooms.iter().find_map(|v| v.get("rooms")).unwrap();
    assert!(node_rooms.as_array().unwrap().contains(&json!(id("b2"))));

    // Broadcasts with acknowledgements across the cluster, both ways.
    let mut acks: Vec<String> = a
        .timeout(Duration::from_secs(3))
        .emit_with_ack("ask", &())
        .unwrap()
        .await
        .unwrap();
    acks.sort();
    assert_eq!(acks, ["a1", "a2", "b1", "b2", "n1", "n2"]);
    let mut acks: Vec<String> = b
        .to("r1")
        .timeout(Duration::from_secs(3))
        .emit_with_ack("ask-r1", &(1,))
        .unwrap()
        .await
        .unwrap();
    acks.sort();
    assert_eq!(acks, ["a1", "b1", "n1"]);
    let acks = sorted(
        node_answer(
            &mut n,
            json!({"op": "emit-ack", "to": ["r2"], "event": "ask-r2", "args": []}),
            "acks",
        )
        .await,
    );
    assert_eq!(acks, ["a2", "n2"]);
    let acks = sorted(
        node_answer(
            &mut n,
            json!({"op": "emit-ack", "event": "ask-all", "args": []}),
            "acks",
        )
        .await,
    );
    assert_eq!(acks, ["a1", "a2", "b1", "b2", "n1", "n2"]);

    // socketsJoin from Node moves a Rust server's socket; a Rust server's
    // join moves a Node server's socket.
    n.command(json!({"op": "join", "to": [id("b2")], "rooms": ["r9"]}))
        .await;
    eventually("b2 joins r9", || b.of("/").to("r9").sockets().len() == 1).await;
    a.of("/").to(id("n2")).join("r9");
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.to("r9").emit("to-r9", &()).unwrap();
    eventually("r9 members get to-r9", || {
        receivers(&clients, "to-r9") == set(&["b2", "n2"])
    })
    .await;

    // disconnectSockets from Node disconnects a Rust server's socket, and
    // a Rust server's disconnect reaches a Node server's socket.
    n.command(json!({"op": "disconnect", "to": [id("a1")]}))
        .await;
    b.of("/").to(id("n1")).disconnect().unwrap();
    eventually("a1 and n1 are disconnected", || {
        receivers(&clients, "disconnect") == set(&["a1", "n1"])
    })
    .await;
    assert_eq!(
        events_of(&clients, "a1").last().unwrap().1,
        json!(["io server disconnect"])
    );

    // Server-side emits, with and without acknowledgements, both ways.
    let seen = Arc::new(Mutex::new(Vec::new()));
    for (io, name) in [(&a, "pong-a"), (&b, "pong-b")] {
        let seen = seen.clone();
        io.on_server_side_emit(move |ev| {
            if ev.event == "ping" {
                if let Some(ack) = ev.ack {
                    ack.send(&name).unwrap();
                }
            } else {
                seen.lock().unwrap().push((name, ev.event, ev.args));
            }
        });
    }
    let mut answers: Vec<String> = b.server_side_emit_with_ack("ping", &()).await.unwrap();
    answers.sort();
    assert_eq!(answers, ["pong-a", "pong-node"]);
    let answers = sorted(
        node_answer(
            &mut n,
            json!({"op": "sse-ack", "event": "ping", "args": []}),
            "responses",
        )
        .await,
    );
    assert_eq!(answers, ["pong-a", "pong-b"]);
    n.command(json!({"op": "sse", "event": "hello", "args": [1, "two"]}))
        .await;
    a.server_side_emit("hello", &("from-a",)).unwrap();
    n.wait_for("the Node server gets hello", |v| {
        v["serverSide"] == json!(["hello", "from-a"])
    })
    .await;
    eventually("the Rust servers get hello", || {
        seen.lock().unwrap().len() == 3
    })
    .await;
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
    assert_eq!(
        seen,
        [
            ("pong-a", "hello".to_owned(), vec![json!(1), json!("two")]),
            ("pong-b", "hello".to_owned(), vec![json!(1), json!("two")]),
            ("pong-b", "hello".to_owned(), vec![json!("from-a")]),
        ]
    );

    clients.stop().await;
    n.stop().await;
    drop(redis);
}

#[tokio::test]
async fn unreachable_redis_is_a_typed_error() {
    let io = SocketIo::new().unwrap();
    let port = common::free_port();
    let err = RedisAdapter::builder(format!("redis://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_secs(2))
        .attach(&io)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RedisAdapterError::Connect { .. } | RedisAdapterError::Timeout(_)
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    // The server was left alone: it still works without an adapter.
    assert_eq!(io.server_count("/").await.unwrap(), 1);
    let bad = RedisAdapter::builder("http://nope")
        .attach(&io)
        .await
        .unwrap_err();
    assert!(matches!(bad, RedisAdapterError::InvalidUrl(_)), "{bad:?}");
}

#[tokio::test]
async fn a_second_adapter_is_refused() {
    let redis = Redis::start();
    let (io, _adapter, _) = rust_server(&redis.url()).await;
    let err = RedisAdapter::builder(redis.url())
        .attach(&io)
        .await
        .unwrap_err();
    assert!(matches!(err, RedisAdapterError::AlreadyAttached), "{err:?}");
}

#[tokio::test]
async fn recorded_vectors_match_node() {
    node_ready();
    let redis = Redis::start();
    let out = tokio::process::Command::new("node")
        .arg(common::workspace().join("interop/cluster/record-vectors.mjs"))
        .arg(redis.url())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        recorded.trim_end(),
        include_str!("vectors/node-adapter-8.3.0.jsonl").trim_end()
    );
}
