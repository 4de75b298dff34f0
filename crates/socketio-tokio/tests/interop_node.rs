//! Interoperability with the official JavaScript client (`socket.io-client`).

#![allow(clippy::unwrap_used)]

mod common;

use serde_json::json;

async fn roundtrip(transports: &str, expected_transport: &str) {
    let server = common::start().await;
    let r = common::run_node("roundtrip", &server.url(), &[transports]).await;
    assert_eq!(r["transport"], expected_transport);
    assert_eq!(r["echo"], json!(["hello", {"n": 1}, [true, null]]));
    assert_eq!(r["binaryEcho"], json!([[1, 2, 3], [4]]));
    assert_eq!(r["greeting"], "hello ana (7)");
    assert_eq!(r["serverBinary"], json!([[7, 7, 7], "label"]));
    assert_eq!(r["sum"], 3);
    assert_eq!(r["ackBinary"], json!([5, 6]));
    assert_eq!(r["serverAck"], "answer to life/[9, 8]");
    assert_eq!(r["serverAckTimeout"], "timeout");
    assert_eq!(r["fallback"], "fallback");
    assert_eq!(r["afterRefusal"], 5);
    assert_eq!(r["clientReason"], "io client disconnect");
    common::client_left_after_greeting(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_only() {
    roundtrip("websocket", "websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_only() {
    roundtrip("polling", "polling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_then_upgrade() {
    roundtrip("polling,websocket", "websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_auth_accepted_and_rejected() {
    let server = common::start().await;
    let r = common::run_node("auth", &server.url(), &[]).await;
    assert_eq!(r["accepted"], "good");
    assert_eq!(
        r["rejected"],
        json!({ "message": "forbidden", "data": { "reason": "bad token" } })
    );
    assert_eq!(r["unknownNamespace"], "Invalid namespace");
    assert_eq!(r["dynamic"], "/dyn-42");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_broadcasts_across_clients() {
    let server = common::start().await;
    let r = common::run_node("rooms", &server.url(), &["4"]).await;
    assert_eq!(r["votes"], json!([0, 1, 2, 3]));
    assert_eq!(r["rooms"], json!([2, ["room-0", "room-1"]]));
    let received = r["received"].as_array().unwrap();
    // Socket 0 shouted to room-0 (sockets 0 and 2) without itself; socket 1
    // sent to everyone.
    assert_eq!(received[0], json!([["all", "hi all"]]));
    assert_eq!(received[1], json!([["all", "hi all"]]));
    assert_eq!(
        received[2],
        json!([["shout", "hi room 0"], ["all", "hi all"]])
    );
    assert_eq!(received[3], json!([["all", "hi all"]]));
    assert_eq!(
        r["kicked"],
        json!(["io server disconnect", "io server disconnect"])
    );
    server
        .log
        .wait_until("the kicked sockets", |l| {
            l == "disconnect / server namespace disconnect"
        })
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_reasons_on_both_sides() {
    let server = common::start().await;
    let r = common::run_node("reasons", &server.url(), &[]).await;
    assert_eq!(r["serverDisconnect"], "io server disconnect");
    assert_eq!(r["serverClose"], "io server disconnect");
    assert_eq!(r["clientDisconnect"], "io client disconnect");
    let log = &server.log;
    log.wait_until("client namespace disconnect", |l| {
        l == "disconnect / client namespace disconnect"
    })
    .await;
    let lines = log.lines();
    assert!(
        lines.contains(&"disconnect / server namespace disconnect".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"disconnect / forced server close".to_owned()),
        "{lines:?}"
    );
    server.stop().await;
}

async fn restart_then_automatic_reconnect(transports: &str) {
    let first = common::start().await;
    let (result, second) =
        common::restart_scenario("scenarios.mjs", transports, first, |addr| async move {
            common::start_on(&addr, common::Log::default()).await
        })
        .await;
    assert!(result.get("error").is_none(), "{result:#}");
    assert_eq!(
        result["events"],
        json!([
            "connect",
            "disconnect: transport close",
            "connect",
            "disconnect: io client disconnect"
        ])
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_then_automatic_reconnect_websocket() {
    restart_then_automatic_reconnect("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_then_automatic_reconnect_polling() {
    restart_then_automatic_reconnect("polling").await;
}
