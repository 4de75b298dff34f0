//! The sharded adapter's dynamic subscription modes on a real Redis
//! Cluster (three masters): a Rust server and a Node `socket.io` server
//! with `createShardedAdapter` in the same mode, official clients on each.
//! Room broadcasts go on the rooms' own channels, which each server
//! subscribes to while the room has members there, and reach exactly the
//! right sockets both ways.

#![cfg(feature = "sharded")]
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Node, RedisCluster, exactly_among, node_ready, set};
use serde_json::json;
use socketio_redis::{ShardedRedisAdapter, SubscriptionMode};
use socketio_tokio::SocketIo;

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

/// How many clients subscribe to `channel` (on the node that serves it).
fn subscribers(cluster: &RedisCluster, channel: &str) -> u64 {
    let out = cluster.cli(
        cluster.owner_of(channel),
        &["pubsub", "shardnumsub", channel],
    );
    out.lines().nth(1).unwrap_or("0").trim().parse().unwrap()
}

/// Waits (bounded) until `channel` has `n` subscribers.
async fn wait_subscribers(cluster: &RedisCluster, channel: &str, n: u64) {
    for _ in 0..400 {
        if subscribers(cluster, channel) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(subscribers(cluster, channel), n, "{channel}");
}

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

    // Each room's channel has a subscriber on each server where the room
    // has members: r1 and r2 on both, r3 on the Node server only.
    wait_subscribers(&cluster, "socket.io#/#r1#", 2).await;
    wait_subscribers(&cluster, "socket.io#/#r2#", 2).await;
    wait_subscribers(&cluster, "socket.io#/#r3#", 1).await;
    // Sockets' own rooms have channels in the private mode only.
    let own = format!("socket.io#/#{}#", id("a1"));
    let private = usize::from(mode == SubscriptionMode::DynamicPrivate);
    wait_subscribers(&cluster, &own, private as u64).await;

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
    wait_subscribers(&cluster, "socket.io#/#r2#", 1).await;
    n.command(json!({"op": "emit", "to": ["r2"], "event": "n-to-r2-again", "args": []}))
        .await;
    exactly_among(&clients, &CLIENTS, "n-to-r2-again", &set(&["n2"])).await;
    // A room that gets a member here again is subscribed again.
    a.local().to(id("a3")).join("r3");
    wait_subscribers(&cluster, "socket.io#/#r3#", 2).await;
    n.command(json!({"op": "emit", "to": ["r3"], "event": "n-to-r3-again", "args": []}))
        .await;
    exactly_among(&clients, &CLIENTS, "n-to-r3-again", &set(&["a3", "n3"])).await;
    adapter.close();
    n.stop().await;
    clients.stop().await;
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
