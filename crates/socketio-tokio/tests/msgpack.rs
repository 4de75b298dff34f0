//! The msgpack parser (`SocketIoBuilder::parser(Parser::Msgpack)`) with
//! the official JavaScript client and `socket.io-msgpack-parser`, over
//! long-polling, WebSocket and the upgrade: events both ways with binary,
//! acknowledgements both ways, broadcasts to a room, a second namespace on
//! the same connection, refused namespaces.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use serde_json::json;
use socketio_tokio::{
    AckError, AckSender, ConnectError, ConnectHandler, ConnectRequest, Data, Parser, RawArgs,
    Socket, SocketIo,
};
use tokio::net::TcpListener;

async fn start() -> String {
    let io = SocketIo::builder().parser(Parser::Msgpack).build().unwrap();
    let io2 = io.clone();
    io.ns("/", move |socket: Socket| {
        let io = io2.clone();
        async move {
            socket.on("echo", |RawArgs(args): RawArgs, ack: AckSender| async move {
                ack.send_raw(args)
            });
            socket.on("send-bin", |socket: Socket| async move {
                socket.emit("bin", &(Bytes::from_static(&[7, 7, 7]), "label"))
            });
            socket.on("ask", |socket: Socket, ack: AckSender| async move {
                let reply = socket
                    .emit_with_ack::<(String, Bytes), _>("question", &"life")?
                    .await;
                match reply {
                    Ok((text, bin)) => ack.send(&format!("{text}/{:?}", bin.to_vec())),
                    Err(e) => ack.send(&format!("error: {e}")),
                }?;
                Ok::<(), AckError>(())
            });
            socket.on("join", |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
                socket.join(room);
                ack.send(&())
            });
            socket.on(
                "shout",
                |socket: Socket, Data((room, text)): Data<(String, String)>, ack: AckSender| async move {
                    socket
                        .to(room)
                        .emit("shout", &(text, Bytes::from_static(&[1, 2])))?;
                    ack.send(&())
                },
            );
            socket.on(
                "to-room",
                move |Data((room, text)): Data<(String, String)>, ack: AckSender| {
                    let io = io.clone();
                    async move {
                        io.to(room).emit("all", &(text, Bytes::from_static(&[3])))?;
                        ack.send(&())
                    }
                },
            );
        }
    });
    io.ns("/admin", |socket: Socket| async move {
        socket.on(
            "echo",
            |RawArgs(args): RawArgs, ack: AckSender| async move { ack.send_raw(args) },
        );
        socket.emit("hello", &(socket.ns(), Bytes::from_static(&[6])))
    });
    let private = |_socket: Socket| async move {};
    io.ns(
        "/private",
        private.with(|_req: ConnectRequest| async move {
            Err::<(), _>(ConnectError::new("forbidden").with_data(json!({ "reason": "msgpack" })))
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { io.serve(listener).await });
    format!("http://{addr}")
}

async fn scenario(transports: &str, expected_transport: &str) {
    let url = start().await;
    common::require_node();
    let mut child = common::spawn_bare_script("msgpack.mjs", &[&url, transports]);
    let out = common::lines(&mut child, |_| {}).await;
    let _ = child.wait().await;
    let r = out.last().cloned().unwrap_or_default();
    assert!(r.get("error").is_none(), "{r:#}");
    assert_eq!(r["transport"], expected_transport);
    assert_eq!(
        r["echo"],
        json!(["hi", {"bytes": [1, 2, 3]}, {"nested": {"bytes": [4]}}, 1.5, null])
    );
    assert_eq!(r["serverBinary"], json!([{"bytes": [7, 7, 7]}, "label"]));
    assert_eq!(r["serverAck"], "answer to life/[9, 8]");
    assert_eq!(r["shout"], json!(["hello room", {"bytes": [1, 2]}]));
    assert_eq!(
        r["roomBroadcast"],
        json!([
            ["to everyone in r", {"bytes": [3]}],
            ["to everyone in r", {"bytes": [3]}]
        ])
    );
    assert_eq!(r["outsider"], json!([]));
    assert_eq!(r["namespace"], json!(["/admin", {"bytes": [6]}]));
    assert_eq!(r["namespaceEcho"], json!([{"bytes": [5]}]));
    assert_eq!(r["unknownNamespace"], "Invalid namespace");
    assert_eq!(
        r["refused"],
        json!({ "message": "forbidden", "data": { "reason": "msgpack" } })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_over_polling() {
    scenario("polling", "polling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_over_websocket() {
    scenario("websocket", "websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_over_polling_then_upgrade() {
    scenario("polling,websocket", "websocket").await;
}
