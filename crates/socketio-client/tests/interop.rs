//! The client against servers no one here wrote (the reference Node.js server, python-socketio)
//! and against this workspace's server, over long-polling, WebSocket, and polling upgraded to
//! WebSocket: every feature, a server restart with emits buffered meanwhile, and connection state
//! recovery across a cut connection.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Kind, Recorder, TestServer, bin};
use faultproxy::Proxy;
use serde_json::{Value, json};
use socketio_client::{AckError, ConnectError, Socket, TransportKind, Transports};

/// Records what a socket sees as lines: `connect /`, `disconnect / <reason>`,
/// `<event> <json args>`, `any <event>`, `manager <event>`, `connect_error <message> <data>`.
fn recorded(url: &str, transports: Transports, rec: &Recorder) -> socketio_client::ClientBuilder {
    let (r1, r2, r3, r4, r5) = (
        rec.clone(),
        rec.clone(),
        rec.clone(),
        rec.clone(),
        rec.clone(),
    );
    socketio_client::connect(url)
        .transports(transports)
        .reconnection_delay(Duration::from_millis(200))
        .reconnection_delay_max(Duration::from_millis(1000))
        .on_connect(move |s| r1.push(format!("connect {}", s.nsp())))
        .on_disconnect(move |s, reason| r2.push(format!("disconnect {} {reason}", s.nsp())))
        .on_any(move |_s, m| {
            r3.push(format!("{} {}", m.name(), args_json(&m)));
        })
        .on_connect_error(move |s, e| r4.push(format!("connect_error {} {e}", s.nsp())))
        .on_manager(move |e| r5.push(format!("manager {e:?}")))
}

/// The arguments' JSON text, placeholders of binary values included.
fn args_json(m: &socketio_client::Message) -> Value {
    let all: Vec<Value> = serde_json::from_str(m.payload().json()).unwrap_or_default();
    Value::Array(all.into_iter().skip(1).collect())
}

fn record_socket(socket: &Socket, rec: &Recorder) {
    let (r1, r2, r3, r4) = (rec.clone(), rec.clone(), rec.clone(), rec.clone());
    socket
        .on_connect(move |s| r1.push(format!("connect {}", s.nsp())))
        .on_disconnect(move |s, reason| r2.push(format!("disconnect {} {reason}", s.nsp())))
        .on_any(move |s, m| {
            r3.push(format!("{}:{} {}", s.nsp(), m.name(), args_json(&m)));
        })
        .on_connect_error(move |s, e| {
            let line = match e {
                ConnectError::Refused { message, data } => {
                    format!(
                        "connect_error {} {message} {}",
                        s.nsp(),
                        data.unwrap_or_default()
                    )
                }
                e => format!("connect_error {} {e}", s.nsp()),
            };
            r4.push(line)
        });
}

async fn wait_transport(socket: &Socket, want: TransportKind) {
    tokio::time::timeout(Duration::from_secs(15), async {
        while socket.transport() != Some(want) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the transport is not {want:?}: {:?}", socket.transport()));
}

/// Every feature, on one connection.
async fn features(kind: Kind, transports: Transports) {
    let server = TestServer::start(kind, 0, false).await;
    let rec = Recorder::default();
    let socket = recorded(&server.url(), transports, &rec)
        .auth(json!({ "token": "t1" }))
        .on("question", |_s, m| {
            let (n,): (i64,) = m.args().unwrap();
            m.ack(&(n * 2,)).unwrap();
        })
        .connect()
        .unwrap();
    rec.wait_line("connect /").await;
    // Auth reaches the server.
    rec.wait_line(r#"welcome [{"token":"t1"},false,"/"]"#).await;
    assert!(socket.id().is_some());
    assert!(!socket.recovered());
    match transports {
        Transports::PollingThenWebSocket => {
            wait_transport(&socket, TransportKind::WebSocket).await;
            rec.wait_line("manager Upgrade").await;
        }
        Transports::WebSocket => assert_eq!(socket.transport(), Some(TransportKind::WebSocket)),
        Transports::Polling => assert_eq!(socket.transport(), Some(TransportKind::Polling)),
    }

    // Events both ways, binary included.
    socket
        .emit("echo", &("a", 1, bin(), json!({"k": [true, null]})))
        .unwrap();
    let line = rec.wait("echo-back", |l| l.starts_with("echo-back ")).await;
    assert!(line.starts_with(r#"echo-back ["a",1,"#), "{line}");
    let echoed = Recorder::default();
    let e2 = echoed.clone();
    socket.on("echo-back", move |_s, m| {
        // Anything but one binary argument is recorded as None.
        let bin = m.args::<(Bytes,)>().ok().map(|(b,)| b.to_vec());
        e2.push(format!("{bin:?}"));
    });
    socket
        .emit("echo", &(Bytes::from_static(&[9, 8, 7]),))
        .unwrap();
    echoed.wait_line("Some([9, 8, 7])").await;
    // A handler removed sees nothing more.
    socket.off("echo-back");
    socket.emit("echo", &("after off",)).unwrap();
    rec.wait_line(r#"echo-back ["after off"]"#).await;
    assert_eq!(echoed.lines().len(), 1);
    // A handler that panics is caught: the client goes on.
    socket.on("echo-back", |_s, _m| panic!("a handler panics"));
    socket.emit("echo", &("boom",)).unwrap();
    rec.wait_line(r#"echo-back ["boom"]"#).await;
    socket.off("echo-back");

    // Acks from the server, with binary.
    let answer = socket
        .emit_with_ack("ack", &(1, "x", bin()))
        .unwrap()
        .await
        .unwrap();
    let (n, s, b): (i64, String, Bytes) = answer.args().unwrap();
    assert_eq!((n, s.as_str(), b), (1, "x", bin()));
    // Acks to the server.
    socket.emit("ask", &(21,)).unwrap();
    rec.wait_line("answered [42]").await;
    // An ack that does not come times out.
    let late = socket
        .timeout(Duration::from_millis(300))
        .emit_with_ack("nothing", &())
        .unwrap()
        .await;
    assert!(matches!(late, Err(AckError::Timeout)), "{late:?}");
    // Volatile emits go out while connected.
    socket.volatile().emit("count", &()).unwrap();
    let count = socket
        .emit_with_ack("get-count", &())
        .unwrap()
        .await
        .unwrap();
    assert_eq!(count.args::<(u64,)>().unwrap(), (1,));

    // Another namespace over the same connection.
    let admin = socket.of("/admin");
    record_socket(&admin, &rec);
    admin.connect_with_auth(json!({"who": "admin"})).unwrap();
    rec.wait_line(r#"/admin:welcome [{"who":"admin"},false,"/admin"]"#)
        .await;
    admin.emit("echo", &("from admin",)).unwrap();
    rec.wait_line(r#"/admin:echo-back ["from admin"]"#).await;

    // A namespace that refuses, with its data; then accepts with the right auth.
    let private = socket.of("/private");
    record_socket(&private, &rec);
    private
        .connect_with_auth(json!({"token": "wrong"}))
        .unwrap();
    rec.wait_line(r#"connect_error /private not authorized {"code":403}"#)
        .await;
    assert!(!private.connected());
    private
        .connect_with_auth(json!({"token": "secret"}))
        .unwrap();
    rec.wait_line("connect /private").await;
    assert!(private.connected());
    // An unknown namespace.
    let nowhere = socket.of("/nowhere");
    record_socket(&nowhere, &rec);
    nowhere.connect().unwrap();
    rec.wait("unknown namespace refusal", |l| {
        l.starts_with("connect_error /nowhere")
    })
    .await;
    assert!(socket.connected(), "a refusal leaves the connection");

    // The server disconnects a socket: final, the others stay.
    admin.emit("kick", &()).unwrap();
    rec.wait_line("disconnect /admin io server disconnect")
        .await;
    assert!(socket.connected());
    socket.emit("echo", &("still here",)).unwrap();
    rec.wait_line(r#"echo-back ["still here"]"#).await;

    // The client disconnects: no reconnection.
    socket.close();
    rec.wait_line("disconnect / io client disconnect").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        rec.count("manager ReconnectAttempt"),
        0,
        "{:#?}",
        rec.lines()
    );
    assert_eq!(rec.count_line("connect /"), 1);
    drop(server);
}

/// The server goes away and comes back: the client reconnects, and what it emitted meanwhile
/// goes out.
async fn restart(kind: Kind, transports: Transports) {
    let server = TestServer::start(kind, 0, false).await;
    let rec = Recorder::default();
    let socket = recorded(&server.url(), transports, &rec).connect().unwrap();
    rec.wait_line("connect /").await;
    if transports == Transports::PollingThenWebSocket {
        wait_transport(&socket, TransportKind::WebSocket).await;
    }
    let server = {
        let (kind, port) = (server.kind, server.port);
        server.stop().await;
        rec.wait("a disconnection", |l| l.starts_with("disconnect / "))
            .await;
        // Emitted while the server is down: buffered.
        for i in 0..3 {
            socket.emit("count", &(i,)).unwrap();
        }
        socket.emit("echo", &("buffered",)).unwrap();
        rec.wait("a failed attempt", |l| {
            l.starts_with("manager ReconnectError")
        })
        .await;
        let server = TestServer::start(kind, port, false).await;
        assert_eq!(server.port, port);
        server
    };
    rec.wait("the reconnection", |l| l.starts_with("manager Reconnect("))
        .await;
    rec.wait_line(r#"echo-back ["buffered"]"#).await;
    let count = socket
        .emit_with_ack("get-count", &())
        .unwrap()
        .await
        .unwrap();
    assert_eq!(count.args::<(u64,)>().unwrap(), (3,));
    assert_eq!(rec.count_line("connect /"), 2);
    let reason = rec
        .wait("the reason", |l| l.starts_with("disconnect / "))
        .await;
    assert!(
        reason == "disconnect / transport close" || reason == "disconnect / transport error",
        "{reason}"
    );
    socket.close();
    drop(server);
}

/// A connection cut under the client, the server broadcasting meanwhile: with connection state
/// recovery on, the client gets its session back and every event once, in order.
async fn recovery(kind: Kind, transports: Transports) {
    let server = TestServer::start(kind, 0, true).await;
    let proxy = Proxy::start(server.addr()).await.unwrap();
    let rec = Recorder::default();
    let ticks = Recorder::default();
    let t2 = ticks.clone();
    let socket = recorded(&proxy.url(), transports, &rec)
        .reconnection_delay(Duration::from_millis(100))
        .on("tick", move |_s, m| {
            let (i,): (u64,) = m.args().unwrap();
            t2.push(i.to_string());
        })
        .connect()
        .unwrap();
    rec.wait_line("connect /").await;
    if transports == Transports::PollingThenWebSocket {
        wait_transport(&socket, TransportKind::WebSocket).await;
    }
    let id = socket.id().unwrap();
    socket.emit("ticks", &(30, 60)).unwrap();
    ticks.wait_line("5").await;
    // Longer than the server's pingInterval + pingTimeout, so that a server serving polling
    // sees the client gone too, and keeps its session.
    proxy.blackout(Duration::from_millis(6000));
    rec.wait("a disconnection", |l| l.starts_with("disconnect / "))
        .await;
    rec.wait_count("connect /", 2).await;
    ticks.wait_line("30").await;
    assert!(socket.recovered(), "{:#?}", rec.lines());
    assert_eq!(socket.id().unwrap(), id);
    let got: Vec<u64> = ticks.lines().iter().map(|l| l.parse().unwrap()).collect();
    assert_eq!(got, (1..=30).collect::<Vec<u64>>());
    // The welcome is not sent again to a recovered socket.
    assert_eq!(rec.count("welcome"), 1);
    socket.close();
    drop(server);
}

/// A client built with a reconnection limit against nothing: the reconnection events, then it
/// gives up.
#[tokio::test]
async fn no_server_gives_up_after_the_attempts() {
    tokio::time::timeout(Duration::from_secs(60), no_server())
        .await
        .expect("the scenario ends in time");
}

async fn no_server() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rec = Recorder::default();
    let socket = recorded(
        &format!("http://127.0.0.1:{port}"),
        Transports::Polling,
        &rec,
    )
    .reconnection_attempts(3)
    .reconnection_delay(Duration::from_millis(50))
    .connect()
    .unwrap();
    rec.wait_line("manager ReconnectFailed").await;
    assert_eq!(rec.count("manager ReconnectAttempt"), 3);
    assert_eq!(rec.count("manager ReconnectError"), 3);
    assert_eq!(
        rec.count("connect_error / connection failed: xhr poll error"),
        4
    );
    let dropped = socket.emit_with_ack("x", &()).unwrap();
    socket.close();
    let dropped = tokio::time::timeout(Duration::from_secs(10), dropped).await;
    assert!(
        matches!(dropped, Ok(Err(AckError::Disconnected))),
        "{dropped:?}"
    );
    assert!(matches!(
        socket.emit("x", &()),
        Err(socketio_client::EmitError::Closed)
    ));
}

macro_rules! matrix {
    ($kind:expr, $($name:ident: $scenario:ident $transports:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                tokio::time::timeout(Duration::from_secs(90), $scenario($kind, Transports::$transports))
                    .await
                    .expect("the scenario ends in time");
            }
        )*
    };
}

mod node {
    use super::*;
    matrix! { Kind::Node,
        features_polling: features Polling;
        features_websocket: features WebSocket;
        features_upgrade: features PollingThenWebSocket;
        restart_polling: restart Polling;
        restart_websocket: restart WebSocket;
        restart_upgrade: restart PollingThenWebSocket;
        recovery_polling: recovery Polling;
        recovery_websocket: recovery WebSocket;
        recovery_upgrade: recovery PollingThenWebSocket;
    }
}

/// python-socketio has no connection state recovery: the recovery scenario is not run there.
mod python {
    use super::*;
    matrix! { Kind::Python,
        features_polling: features Polling;
        features_websocket: features WebSocket;
        features_upgrade: features PollingThenWebSocket;
        restart_polling: restart Polling;
        restart_websocket: restart WebSocket;
        restart_upgrade: restart PollingThenWebSocket;
    }
}

mod ours {
    use super::*;
    matrix! { Kind::Ours,
        features_polling: features Polling;
        features_websocket: features WebSocket;
        features_upgrade: features PollingThenWebSocket;
        restart_polling: restart Polling;
        restart_websocket: restart WebSocket;
        restart_upgrade: restart PollingThenWebSocket;
        recovery_polling: recovery Polling;
        recovery_websocket: recovery WebSocket;
        recovery_upgrade: recovery PollingThenWebSocket;
    }
}
