//! Redis going away and coming back, and garbage on the adapter's channels.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Node, Redis, eventually, got, node_ready, rust_server};
use serde_json::json;
use socketio_packet::Packet;
use socketio_redis::wire;
use socketio_tokio::Str;
use socketio_tokio::socketio_proto::BroadcastOptions;

fn count(clients: &Node, name: &str, event: &str) -> usize {
    common::events_of(clients, name)
        .iter()
        .filter(|(e, _)| e == event)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_run() {
    node_ready();
    let mut redis = Redis::start();
    let (a, _adapter_a, addr_a) = rust_server(&redis.url()).await;
    let (b, _adapter_b, addr_b) = rust_server(&redis.url()).await;
    let spec = json!([
        {"name": "a1", "url": format!("http://{addr_a}")},
        {"name": "b1", "url": format!("http://{addr_b}")},
    ]);
    let clients = Node::spawn("clients.mjs", &[spec.to_string()]).await;
    clients
        .wait_for("the clients", |v| v.get("ready").is_some())
        .await;

    a.emit("before", &()).unwrap();
    eventually("before reaches b1", || got(&clients, "b1", "before")).await;

    redis.kill();
    // Local delivery never stops while Redis is away.
    for i in 0..5 {
        a.emit("during-a", &i).unwrap();
        b.emit("during-b", &i).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("local delivery during the outage", || {
        count(&clients, "a1", "during-a") == 5 && count(&clients, "b1", "during-b") == 5
    })
    .await;
    assert!(a.server_count("/").await.is_err());

    redis.restart();
    // Remote broadcasts resume, both ways, once both nodes reconnected.
    let mut resumed = false;
    for i in 0..100 {
        a.emit("after-a", &i).unwrap();
        b.emit("after-b", &i).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if got(&clients, "b1", "after-a") && got(&clients, "a1", "after-b") {
            resumed = true;
            break;
        }
    }
    assert!(resumed, "broadcasts did not resume after the restart");
    // And so do the queries (both nodes subscribed again).
    let mut n = 0;
    for _ in 0..50 {
        n = a.server_count("/").await.unwrap_or(0);
        if n == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, 2);
    // What the adapter counted: the reconnection, the messages lost while
    // Redis was away, and its queue.
    let stats = a.adapter_stats().unwrap();
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(stats.dropped >= 1, "{stats:?}");
    assert!(stats.queue_capacity > 0 && stats.queue_depth <= stats.queue_capacity);
    let sockets = a.of("/").fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 2);
    // Local delivery never missed a message.
    assert!(count(&clients, "a1", "after-a") >= count(&clients, "b1", "after-a"));
    clients.stop().await;
}

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_ignored() {
    node_ready();
    let logs = Logs::default();
    let writer = logs.clone();
    let _ = tracing_subscriber::fmt()
        .with_env_filter("socketio_redis=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init();

    let redis = Redis::start();
    let (a, _adapter, addr_a) = rust_server(&redis.url()).await;
    let spec = json!([{"name": "a1", "url": format!("http://{addr_a}"), "room": "r1"}]);
    let clients = Node::spawn("clients.mjs", &[spec.to_string()]).await;
    clients
        .wait_for("the clients", |v| v.get("ready").is_some())
        .await;

    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let garbage: [(&str, &[u8]); 8] = [
        ("socket.io#/#", b"not msgpack"),
        ("socket.io#/#", b"\x93\xa1x\x80\x80"),
        (
            "socket.io#/#r1#",
            b"\x93\xa1x\x83\xa4type\x02\xa4data\x90\xa3nsp\xa1/\x80",
        ),
        (
            "socket.io#/#",
            b"\x93\xa1x\x83\xa4type\x02\xa4data\x91\xa1e\xa3nsp\xa1/\x81\xa5rooms\xc3",
        ),
        ("socket.io-request#/#", b"{not json"),
        ("socket.io-request#/#", b"\x81\xa3uid\xa1x"),
        ("socket.io-request#/#", b"{\"type\":\"five\"}"),
        ("socket.io-response#/#", b"\xc1"),
    ];
    for (channel, payload) in garbage {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    // A well-formed broadcast after the garbage still arrives.
    let packet = Packet::event(Str::from("/"), "valid", &("ok",), None).unwrap();
    let opts = BroadcastOptions::default().to("r1");
    let _: i64 = redis::cmd("PUBLISH")
        .arg(wire::broadcast_channel("socket.io", "/", &opts))
        .arg(wire::encode_broadcast("other", &packet, &opts).as_ref())
        .query_async(&mut conn)
        .await
        .unwrap();
    eventually("the valid broadcast arrives", || {
        got(&clients, "a1", "valid")
    })
    .await;
    // So does a well-formed request's answer.
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("socket.io-response#/#").await.unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("socket.io-request#/#")
        .arg(r#"{"uid":"other","requestId":"q1","type":1}"#)
        .query_async(&mut conn)
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), async {
        use futures_util::StreamExt;
        pubsub.on_message().next().await.unwrap()
    })
    .await
    .unwrap();
    let response: serde_json::Value = serde_json::from_slice(msg.get_payload_bytes()).unwrap();
    assert_eq!(response["requestId"], "q1");
    assert!(response["rooms"].as_array().unwrap().contains(&json!("r1")));

    // Only the valid event reached the client, and each piece of garbage
    // was reported.
    let events: Vec<String> = common::events_of(&clients, "a1")
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert_eq!(events, ["valid"]);
    let text = logs.text();
    assert_eq!(
        text.matches("ignoring a malformed broadcast").count(),
        4,
        "{text}"
    );
    assert_eq!(
        text.matches("ignoring a malformed request").count(),
        3,
        "{text}"
    );
    assert_eq!(
        text.matches("ignoring a malformed response").count(),
        1,
        "{text}"
    );
    drop(a);
    clients.stop().await;
}
