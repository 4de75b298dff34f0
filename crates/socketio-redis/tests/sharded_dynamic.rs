//! The sharded adapter's subscription modes on a real Redis Cluster (three
//! masters): a Rust server and a Node `socket.io` server with
//! `createShardedAdapter` in the same mode, official clients on each.
//! In the dynamic modes, room broadcasts go on the rooms' own channels,
//! which each server subscribes to while the room has members there; in
//! every mode, they reach exactly the right sockets both ways. What the
//! Rust server publishes where, seen by a plain Redis client, and what
//! following many rooms costs in subscriptions.

#![cfg(feature = "sharded")]
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Node, RedisCluster, exactly_among, node_ready, set};
use redis::{PushInfo, PushKind, Value};
use serde_json::json;
use socketio_redis::{ShardedRedisAdapter, SubscriptionMode};
use socketio_tokio::SocketIo;
use tokio::sync::mpsc;

async fn rust_server(
    nodes: &[String],
    mode: SubscriptionMode,
) -> (SocketIo, ShardedRedisAdapter, SocketAddr) {
    let io = SocketIo::new().unwrap();
    let adapter = ShardedRedisAdapter::builder(nodes.iter().cloned())
        .subscription_mode(mode)
        .requests_timeout(Duration::from_secs(3))
        .attach(&io)
        .await
        .unwrap();
    common::join_room_of_query(&io);
    let addr = common::serve(&io).await;
    (io, adapter, addr)
}

const CLIENTS: [&str; 6] = ["a1", "a2", "a3", "n1", "n2", "n3"];

async fn rooms_get_channels_of_their_own(mode: SubscriptionMode, node_mode: &str) {
    node_ready();
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    let (a, adapter, addr_a) = rust_server(&urls, mode).await;
    let node_port = common::free_port();
    let mut n = Node::spawn(
        "node-server.mjs",
        &[urls.join(","), node_port.to_string(), node_mode.into()],
    )
    .await;
    n.wait_for("the Node server", |v| v.get("ready").is_some())
        .await;
    let node_url = format!("http://127.0.0.1:{node_port}");
    let spec = json!([
        {"name": "a1", "url": format!("http://{addr_a}"), "room": "r1"},
        {"name": "a2", "url": format!("http://{addr_a}"), "room": "r2"},
        {"name": "a3", "url": format!("http://{addr_a}")},
        {"name": "n1", "url": node_url, "room": "r1"},
        {"name": "n2", "url": node_url, "room": "r2"},
        {"name": "n3", "url": node_url, "room": "r3"},
    ]);
    let clients = Node::spawn("clients.mjs", &[spec.to_string()]).await;
    let ready = clients
        .wait_for("the clients", |v| v.get("ready").is_some())
        .await;
    let id = |name: &str| ready["ready"][name].as_str().unwrap().to_owned();
    let own = |name: &str| format!("socket.io#/#{}#", id(name));

    // In the dynamic modes, each room's channel has a subscriber on each
    // server where the room has members: r1 and r2 on both, r3 on the Node
    // server only. In the static mode, no room has a channel.
    let dynamic = u64::from(mode != SubscriptionMode::Static);
    cluster.wait_subscribers("socket.io#/#", 2).await;
    cluster
        .wait_subscribers("socket.io#/#r1#", 2 * dynamic)
        .await;
    cluster
        .wait_subscribers("socket.io#/#r2#", 2 * dynamic)
        .await;
    cluster.wait_subscribers("socket.io#/#r3#", dynamic).await;
    // Sockets' own rooms have channels in the private mode only (checked
    // for the other modes at the end, once the servers have followed every
    // room change).
    let private = u64::from(mode == SubscriptionMode::DynamicPrivate);
    if private == 1 {
        for name in CLIENTS {
            cluster.wait_subscribers(&own(name), 1).await;
        }
    }

    for room in ["r1", "r2", "r3"] {
        a.to(room).emit(&format!("a-to-{room}"), &()).unwrap();
        n.command(json!({"op": "emit", "to": [room], "event": format!("n-to-{room}"), "args": []}))
            .await;
    }
    a.emit("a-to-all", &()).unwrap();
    n.command(json!({"op": "emit", "event": "n-to-all", "args": []}))
        .await;
    a.to(id("n1")).emit("a-to-n1", &()).unwrap();
    n.command(json!({"op": "emit", "to": [id("a1")], "event": "n-to-a1", "args": []}))
        .await;
    a.to(["r1", "r3"]).emit("a-to-r1-r3", &()).unwrap();
    for (event, want) in [
        ("a-to-r1", set(&["a1", "n1"])),
        ("n-to-r1", set(&["a1", "n1"])),
        ("a-to-r2", set(&["a2", "n2"])),
        ("n-to-r2", set(&["a2", "n2"])),
        ("a-to-r3", set(&["n3"])),
        ("n-to-r3", set(&["n3"])),
        ("a-to-all", set(&CLIENTS)),
        ("n-to-all", set(&CLIENTS)),
        ("a-to-n1", set(&["n1"])),
        ("n-to-a1", set(&["a1"])),
        ("a-to-r1-r3", set(&["a1", "n1", "n3"])),
    ] {
        exactly_among(&clients, &CLIENTS, event, &want).await;
    }

    // The last member of r2 here leaves it: its channel is left too, and
    // the room's broadcasts reach the Node server's member alone.
    a.local().to("r2").leave("r2");
    cluster.wait_subscribers("socket.io#/#r2#", dynamic).await;
    n.command(json!({"op": "emit", "to": ["r2"], "event": "n-to-r2-again", "args": []}))
        .await;
    exactly_among(&clients, &CLIENTS, "n-to-r2-again", &set(&["n2"])).await;
    // A room that gets a member here again is subscribed again.
    a.local().to(id("a3")).join("r3");
    cluster
        .wait_subscribers("socket.io#/#r3#", 2 * dynamic)
        .await;
    n.command(json!({"op": "emit", "to": ["r3"], "event": "n-to-r3-again", "args": []}))
        .await;
    exactly_among(&clients, &CLIENTS, "n-to-r3-again", &set(&["a3", "n3"])).await;
    // The Rust server has long since followed the rooms of a1..a3 (it
    // follows them in order, and r3 is subscribed again): their own rooms
    // have channels in the private mode only, as those of n1..n3.
    for name in CLIENTS {
        assert_eq!(cluster.subscribers(&own(name)), private, "{name}");
    }
    adapter.close();
    n.stop().await;
    clients.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_mode_with_node() {
    rooms_get_channels_of_their_own(SubscriptionMode::Static, "sharded-static").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_mode_with_node() {
    rooms_get_channels_of_their_own(SubscriptionMode::Dynamic, "sharded-dynamic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_private_mode_with_node() {
    rooms_get_channels_of_their_own(SubscriptionMode::DynamicPrivate, "sharded-dynamic-private")
        .await;
}

/// A plain Redis Cluster client subscribed to `channels`: what it receives,
/// as (channel, payload) pairs.
async fn raw_subscriber(
    urls: &[String],
    channels: &[&str],
) -> (
    redis::cluster_async::ClusterConnection,
    mpsc::UnboundedReceiver<PushInfo>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = redis::cluster::ClusterClientBuilder::new(urls.iter().map(String::as_str))
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(tx)
        .build()
        .unwrap();
    let mut conn = client.get_async_connection().await.unwrap();
    for channel in channels {
        conn.ssubscribe(*channel).await.unwrap();
    }
    (conn, rx)
}

/// The (channel, payload) of a sharded message.
fn smessage(push: &PushInfo) -> Option<(String, String)> {
    match (&push.kind, push.data.first(), push.data.get(1)) {
        (PushKind::SMessage, Some(Value::BulkString(c)), Some(Value::BulkString(p))) => Some((
            String::from_utf8_lossy(c).into_owned(),
            String::from_utf8_lossy(p).into_owned(),
        )),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_to_one_room_goes_on_the_rooms_channel() {
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    // The builder's default mode: dynamic, as the reference's.
    let io = SocketIo::new().unwrap();
    let adapter = ShardedRedisAdapter::builder(urls.iter().cloned())
        .attach(&io)
        .await
        .unwrap();
    common::join_room_of_query(&io);
    let (namespace, room) = ("socket.io#/#", "socket.io#/#r1#");
    let (_conn, mut pushes) = raw_subscriber(&urls, &[namespace, room]).await;
    cluster.wait_subscribers(namespace, 2).await;

    io.to("r1").emit("to-r1", &()).unwrap();
    io.to(["r1", "r2"]).emit("to-r1-r2", &()).unwrap();
    io.to("abcdefghijklmnopqrst").emit("to-20", &()).unwrap();
    let acks = io
        .to("r1")
        .timeout(Duration::from_millis(100))
        .emit_with_ack::<serde_json::Value, _>("ack-r1", &())
        .unwrap();
    // Nobody answers: only the message matters.
    let _ = acks.await;

    // The Rust server publishes in order, and a channel's messages arrive
    // in order: once the last is in, a one-room broadcast published on the
    // namespace's channel would be in too.
    let mut seen: Vec<(String, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let has = |seen: &[(String, String)], channel: &str, event: &str| {
        seen.iter()
            .any(|(c, p)| c == channel && p.contains(&format!("\"{event}\"")))
    };
    while !(has(&seen, room, "to-r1") && has(&seen, namespace, "ack-r1")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let push = tokio::time::timeout(left, pushes.recv())
            .await
            .unwrap_or_else(|_| panic!("the broadcasts never all arrived: {seen:#?}"))
            .unwrap();
        seen.extend(smessage(&push));
    }
    for event in ["to-r1-r2", "to-20", "ack-r1"] {
        assert!(has(&seen, namespace, event), "{event}: {seen:#?}");
        assert!(!has(&seen, room, event), "{event}: {seen:#?}");
    }
    assert!(!has(&seen, namespace, "to-r1"), "{seen:#?}");
    adapter.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_many_rooms_costs_a_bounded_number_of_subscriptions() {
    node_ready();
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    let (io, adapter, addr) = rust_server(&urls, SubscriptionMode::Dynamic).await;
    let spec = json!([{"name": "c", "url": format!("http://{addr}")}]);
    let clients = Node::spawn("clients.mjs", &[spec.to_string()]).await;
    let ready = clients
        .wait_for("the client", |v| v.get("ready").is_some())
        .await;
    let id = ready["ready"]["c"].as_str().unwrap().to_owned();
    const ROOMS: usize = 500;
    // What the adapter may assert again per second: the namespace's and the
    // response channel, and 64 rooms.
    const PER_TICK: u64 = 2 + 64;
    let rooms: Vec<String> = (0..ROOMS).map(|i| format!("room-{i}")).collect();
    let started = Instant::now();
    io.local().to(id.as_str()).join(rooms.clone());
    for _ in 0..400 {
        if cluster.shard_channels() == ROOMS + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(cluster.shard_channels(), ROOMS + 2);
    println!("{ROOMS} rooms subscribed in {:?}", started.elapsed());

    // At rest, the subscriptions are asserted again a bounded number at a
    // time, not all every second.
    cluster.reset_stats();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let calls = cluster.calls("ssubscribe");
    let ticks = started.elapsed().as_secs() + 2;
    assert!(
        calls <= ticks * PER_TICK,
        "{calls} SSUBSCRIBE in {:?} with {ROOMS} rooms",
        started.elapsed()
    );

    // Leaving the rooms: the confirmations of its own SUNSUBSCRIBE are not
    // taken for lost subscriptions (which would be subscribed again).
    cluster.reset_stats();
    let started = Instant::now();
    io.local().to(id.as_str()).leave(rooms);
    for _ in 0..400 {
        if cluster.shard_channels() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(cluster.shard_channels(), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(cluster.calls("sunsubscribe"), ROOMS as u64);
    let calls = cluster.calls("ssubscribe");
    let ticks = started.elapsed().as_secs() + 2;
    assert!(
        calls <= ticks * PER_TICK,
        "{calls} SSUBSCRIBE in {:?} while leaving {ROOMS} rooms",
        started.elapsed()
    );
    assert_eq!(cluster.shard_channels(), 2);
    adapter.close();
    clients.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_that_is_down_does_not_hold_up_the_others() {
    let mut cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    // Long enough that a loaded machine stays far within it, short enough
    // that five messages waiting it out in turn (25 s) would show.
    let timeout = Duration::from_secs(5);
    let io = SocketIo::new().unwrap();
    let adapter = ShardedRedisAdapter::builder(urls.iter().cloned())
        .subscription_mode(SubscriptionMode::Dynamic)
        .requests_timeout(timeout)
        .attach(&io)
        .await
        .unwrap();
    // Two rooms whose channels live on different nodes: the first goes
    // away.
    let channel = |room: &str| format!("socket.io#/#{room}#");
    let room_where = |prefix: &str, on_first: bool| {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .find(|room| (cluster.owner_of(&channel(room)) == 0) == on_first)
            .unwrap()
    };
    let (down, up) = (room_where("down", true), room_where("up", false));
    let (_conn, mut pushes) = raw_subscriber(&urls, &[&channel(&up)]).await;
    cluster.kill(0);

    let started = Instant::now();
    for i in 0..5 {
        io.to(down.as_str())
            .emit(&format!("down-{i}"), &())
            .unwrap();
        io.to(up.as_str()).emit(&format!("up-{i}"), &()).unwrap();
    }
    // The messages for the healthy node do not wait behind those for the
    // one that is down (each waits out the timeout), and keep their order.
    let mut got = Vec::new();
    while got.len() < 5 {
        let push = tokio::time::timeout(Duration::from_secs(10), pushes.recv())
            .await
            .unwrap_or_else(|_| panic!("the broadcasts never all arrived: {got:?}"))
            .unwrap();
        if let Some((_, payload)) = smessage(&push) {
            got.push(payload);
        }
    }
    let elapsed = started.elapsed();
    for (i, payload) in got.iter().enumerate() {
        assert!(payload.contains(&format!("\"up-{i}\"")), "{got:?}");
    }
    assert!(
        elapsed < timeout,
        "the healthy node's messages took {elapsed:?}"
    );
    adapter.close();
}
