//! The chat example's Prometheus metrics (`--metrics`), scraped around a
//! short chat session of the official JavaScript client
//! (`interop/clients/chat-session.mjs`): every counter moves by what the
//! session did.

#![allow(clippy::unwrap_used)]

#[path = "../examples/chat/server.rs"]
#[allow(dead_code)]
mod chat;
mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;

/// The samples of a scrape: `name{labels}` to value.
async fn scrape(base: &str) -> HashMap<String, f64> {
    let body = http_get(&format!("{base}/metrics")).await;
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// A GET over a plain TCP connection: the body.
async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!("GET /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_owned()
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    let get = |m: &HashMap<String, f64>| m.get(key).copied().unwrap_or(0.0);
    get(after) - get(before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_metrics_count_a_chat_session() {
    let io = chat::new_server().unwrap();
    let metrics = socketio_metrics::Metrics::new(&io);
    let routes = axum::Router::new().route_service("/metrics", metrics);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = chat::http_server(&io);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(chat::serve_with_routes(
        io.clone(),
        server,
        listener,
        Bytes::new(),
        routes,
        async move {
            let _ = stop_rx.await;
        },
    ));

    let before = scrape(&base).await;
    // One handshake the protocol refuses.
    let refused = format!("{base}/socket.io/?EIO=9&transport=polling");
    let _ = http_get_any(&refused).await;
    let r = common::run_script("chat-session.mjs", "session", &base, &[]).await;
    assert_eq!(r["joined"], true);
    assert_eq!(r["received"], serde_json::json!(["one", "two", "three"]));
    // The server learns of the second client's leaving a moment later.
    let mut after = scrape(&base).await;
    for _ in 0..200 {
        if delta(
            &before,
            &after,
            r#"socketio_connections_closed_total{reason="transport close"}"#,
        ) >= 2.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        after = scrape(&base).await;
    }
    let d = |key: &str| delta(&before, &after, key);
    assert_eq!(
        d(r#"socketio_connections_opened_total{transport="websocket"}"#),
        2.0
    );
    assert_eq!(
        d(r#"socketio_connections_opened_total{transport="polling"}"#),
        0.0
    );
    assert_eq!(
        d(r#"socketio_connections_closed_total{reason="transport close"}"#),
        2.0
    );
    assert_eq!(d("socketio_sockets_connected_total"), 2.0);
    assert_eq!(
        d(r#"socketio_sockets_disconnected_total{reason="client namespace disconnect"}"#),
        2.0
    );
    assert_eq!(d(r#"socketio_connections{transport="websocket"}"#), 0.0);
    // Two joins and three messages.
    assert_eq!(d("socketio_events_received_total"), 5.0);
    // "joined" twice, three messages, "left" twice: to 0, 1, 1, 1, 1, 1, 0 members.
    assert_eq!(d("socketio_broadcasts_total"), 7.0);
    assert_eq!(d("socketio_broadcast_recipients_total"), 5.0);
    assert_eq!(
        d(r#"socketio_handshakes_refused_total{reason="protocol"}"#),
        1.0
    );
    assert_eq!(d("socketio_ack_timeouts_total"), 0.0);
    assert_eq!(d("socketio_buffer_overflows_total"), 0.0);
    // Each client: two CONNECTs, five events, one DISCONNECT and a close at
    // least; the server answers each.
    assert!(d("socketio_packets_received_total") >= 9.0, "{after:?}");
    assert!(d("socketio_packets_sent_total") >= 9.0, "{after:?}");
    assert!(d("socketio_bytes_received_total") > 100.0, "{after:?}");
    assert!(d("socketio_bytes_sent_total") > 100.0, "{after:?}");
    assert!(!after.keys().any(|k| k.starts_with("socketio_adapter_")));

    let _ = stop_tx.send(());
    task.await.unwrap().unwrap();
}

/// A GET whose answer is not checked: the request is what counts.
async fn http_get_any(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!("GET /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}
