//! The application API against the official JavaScript client
//! (`interop/clients/api.mjs`): extractors in every kind of handler,
//! middlewares given at registration, the argument convention, several
//! listeners per event, `disconnecting`, error events, upgrades, fetched
//! sockets acted on, broadcast acknowledgements awaited whole, and a
//! dynamic namespace's parent broadcast.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use socketio_tokio::{
    AckSender, ConnectError, ConnectHandler, ConnectRequest, Data, DisconnectReason, Extension,
    ListenerId, ProtocolVersion, RoomEvent, Socket, SocketIo, State, TransportType, TryData,
};

/// The application's state: how many sockets joined, and the namespaces
/// the server announced.
#[derive(Clone, Default)]
struct App {
    joined: Arc<AtomicUsize>,
    namespaces: Arc<Mutex<Vec<String>>>,
}

#[derive(Deserialize)]
struct Auth {
    name: String,
}

/// What the middleware attaches to the socket.
#[derive(Clone)]
struct User(String);

async fn authorize(Data(auth): Data<Auth>, req: ConnectRequest) -> Result<(), ConnectError> {
    if auth.name == "mallory" {
        return Err(ConnectError::new("not you"));
    }
    req.extensions().insert(User(auth.name));
    Ok(())
}

async fn on_connect(
    socket: Socket,
    State(app): State<App>,
    Extension(User(name)): Extension<User>,
    transport: TransportType,
    version: ProtocolVersion,
) -> Result<(), socketio_tokio::EmitError> {
    let n = app.joined.fetch_add(1, Ordering::SeqCst) + 1;
    let v5 = version == ProtocolVersion::V5;
    socket.emit("welcome", &(name, transport.as_str(), n, v5))?;
    socket.on_upgrade(|socket| {
        let _ = socket.emit("upgraded", &socket.transport().as_str());
    });
    socket.on_error(|socket, error| {
        let _ = socket.emit("error-event", &error.to_string());
    });
    socket.use_middleware(|_socket, event| async move {
        match event.name.as_str() {
            "forbidden" => Err("not allowed"),
            _ => Ok(()),
        }
    });
    socket.on(
        "one-array",
        |Data(v): Data<Vec<i64>>, ack: AckSender| async move { ack.send(&v.iter().sum::<i64>()) },
    );
    socket.on(
        "pair",
        |Data((s, n)): Data<(String, u32)>, ack: AckSender| async move { ack.send(&(n, s)) },
    );
    socket.on(
        "single-tuple",
        |Data((s,)): Data<(String,)>, ack: AckSender| async move { ack.send(&s) },
    );
    socket.on(
        "try-data",
        |TryData(v): TryData<u8>, ack: AckSender| async move {
            match v {
                Ok(v) => ack.send(&v),
                Err(e) => ack.send(&e.to_string()),
            }
        },
    );
    socket.on("typed", |Data(_n): Data<u32>| async move {});

    let counts = Arc::new(Mutex::new((0, 0, 0)));
    let c = counts.clone();
    socket.on("multi", move || {
        c.lock().unwrap().0 += 1;
        async {}
    });
    let c = counts.clone();
    socket.on("multi", move || {
        c.lock().unwrap().1 += 1;
        async {}
    });
    let c = counts.clone();
    socket.once("multi", move || {
        c.lock().unwrap().2 += 1;
        async {}
    });
    let gone_runs = Arc::new(AtomicUsize::new(0));
    let g = gone_runs.clone();
    let gone: ListenerId = socket.on("gone", move || {
        g.fetch_add(1, Ordering::SeqCst);
        async {}
    });
    socket.off(gone);
    socket.on("listener-counts", move |socket: Socket, ack: AckSender| {
        let counts = *counts.lock().unwrap();
        let gone = gone_runs.load(Ordering::SeqCst);
        let multi = socket.listener_count("multi");
        async move {
            ack.send(
                &json!({ "counts": [counts.0, counts.1, counts.2], "gone": gone, "multi": multi }),
            )
        }
    });

    socket.on(
        "join",
        |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
            socket.join(room);
            ack.send(&())
        },
    );
    socket.on_disconnecting(|socket: Socket| async move {
        let mut rooms: Vec<String> = socket
            .rooms()
            .into_iter()
            .filter(|r| **r != *socket.id())
            .map(|r| r.to_string())
            .collect();
        rooms.sort();
        let _ = socket.broadcast().emit("bye", &rooms);
    });
    socket.on_disconnect(
        |socket: Socket, reason: DisconnectReason, io: SocketIo| async move {
            let _ = io.of("/api").emit(
                "gone",
                &json!({ "rooms": socket.rooms().len(), "reason": reason.to_string() }),
            );
        },
    );
    socket.on("fetch", |io: SocketIo, ack: AckSender| async move {
        let sockets = io.of("/api").fetch_sockets().await.unwrap_or_default();
        for s in &sockets {
            let _ = s.emit("fetched", &s.id);
            let _ = s.join("fetched-room");
        }
        let members = io.of("/api").to("fetched-room").sockets().len();
        let _ = io.of("/api").to("fetched-room").emit("in-room", &members);
        ack.send(&sockets.len())
    });
    socket.on("who-is-there", |io: SocketIo, ack: AckSender| async move {
        let names = io
            .of("/api")
            .timeout(Duration::from_secs(5))
            .emit_with_ack::<String, _>("who", &())?
            .await;
        match names {
            Ok(names) => ack.send(&names),
            Err(e) => ack.send(&e.to_string()),
        }?;
        Ok::<(), socketio_tokio::AckError>(())
    });
    socket.on(
        "parent-broadcast",
        |State(app): State<App>, ack: AckSender| async move {
            let parent = PARENT.lock().unwrap().clone();
            if let Some(parent) = parent {
                parent.broadcast().emit("news", &"hello children")?;
            }
            let mut names = app.namespaces.lock().unwrap().clone();
            names.sort();
            ack.send(&names)
        },
    );
    Ok(())
}

/// The dynamic namespace of the games, for the handler that broadcasts to it.
static PARENT: Mutex<Option<socketio_tokio::Namespace>> = Mutex::new(None);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_api_with_the_official_client() {
    let app = App::default();
    let builder = common::builder().with_state(app.clone());
    let server = common::start_with(builder, "127.0.0.1:0", common::Log::default()).await;
    let io = &server.io;
    let names = app.namespaces.clone();
    io.on_new_namespace(move |nsp| {
        if nsp.starts_with("/game-") || nsp == "/api" {
            names.lock().unwrap().push(nsp.to_owned());
        }
    });
    let rooms = Arc::new(Mutex::new(Vec::new()));
    let r1 = rooms.clone();
    io.on_room_event(move |event| {
        let line = match event {
            RoomEvent::Created { nsp, room } if room == "r1" => format!("create {nsp} {room}"),
            RoomEvent::Joined { room, .. } if room == "r1" => format!("join {room}"),
            RoomEvent::Left { room, .. } if room == "r1" => format!("leave {room}"),
            RoomEvent::Deleted { room, .. } if room == "r1" => format!("delete {room}"),
            _ => return,
        };
        r1.lock().unwrap().push(line);
    });
    let joined = Arc::new(Mutex::new(Vec::new()));
    let j = joined.clone();
    io.on_connection(move |socket| {
        // Every namespace's sockets, each with its Engine.IO session.
        j.lock()
            .unwrap()
            .push((socket.ns().to_owned(), socket.conn_id()));
    });
    io.ns("/api", on_connect.with(authorize));
    let parent = io.dyn_ns(
        |name| name.starts_with("/game-"),
        |_socket: Socket| async {},
    );
    *PARENT.lock().unwrap() = Some(parent);

    let r = common::run_script("api.mjs", "all", &server.url(), &[]).await;
    assert_eq!(r["refused"], "not you");
    assert_eq!(r["welcome"], json!(["ann", "polling", 1, true]));
    assert_eq!(r["upgraded"], "websocket");
    assert_eq!(r["oneArray"], 6);
    assert_eq!(r["pair"], json!([2, "x"]));
    assert_eq!(r["singleTuple"], "solo");
    assert_eq!(r["tryData"], "expected 1 argument(s), got 2");
    let extract_error = r["extractError"].as_str().unwrap();
    assert!(
        extract_error.starts_with(
            "event typed not handled: arguments do not match: json: invalid type: string \"not a number\", expected u32"
        ),
        "{extract_error}"
    );
    assert_eq!(r["middlewareError"], "event forbidden refused: not allowed");
    assert_eq!(
        r["listeners"],
        json!({ "counts": [2, 2, 1], "gone": 0, "multi": 2 })
    );
    assert_eq!(r["disconnecting"], json!(["r1"]));
    assert_eq!(
        r["disconnected"],
        json!({ "rooms": 0, "reason": "client namespace disconnect" })
    );
    assert_eq!(r["fetchCount"], 1);
    assert_eq!(r["fetched"], true);
    assert_eq!(r["inRoom"], 1);
    assert_eq!(r["who"], json!(["ann", "carl"]));
    assert_eq!(r["namespaces"], json!(["/api", "/game-1", "/game-2"]));
    assert_eq!(r["news"], json!(["hello children", "hello children"]));
    let joined = joined.lock().unwrap().clone();
    assert!(joined.iter().all(|(_, conn)| !conn.is_empty()));
    let mut joined: Vec<String> = joined.into_iter().map(|(nsp, _)| nsp).collect();
    joined.sort();
    assert_eq!(joined, ["/api", "/api", "/api", "/game-1", "/game-2"]);
    // Without cleanup, the children stay after their sockets left.
    let parent = PARENT.lock().unwrap().clone().unwrap();
    assert_eq!(parent.children(), ["/game-1", "/game-2"]);
    assert_eq!(
        *rooms.lock().unwrap(),
        ["create /api r1", "join r1", "leave r1", "delete r1"]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_child_namespaces_are_cleaned_up_when_asked() {
    let builder = common::builder().cleanup_empty_child_namespaces(true);
    let server = common::start_with(builder, "127.0.0.1:0", common::Log::default()).await;
    let io = &server.io;
    let announced = Arc::new(Mutex::new(Vec::new()));
    let a = announced.clone();
    io.on_new_namespace(move |nsp| a.lock().unwrap().push(nsp.to_owned()));
    let parent = io.dyn_ns(
        |name| name.starts_with("/game-"),
        |socket: Socket| async move {
            socket.on("leave-me", |socket: Socket, ack: AckSender| async move {
                ack.send(&())?;
                socket.disconnect()
            });
        },
    );
    let r = common::run_script("api.mjs", "child", &server.url(), &[]).await;
    assert_eq!(r["done"], true);
    // Created again after it was cleaned up: announced twice, gone now.
    assert_eq!(*announced.lock().unwrap(), ["/game-9", "/game-9"]);
    assert!(parent.children().is_empty());
    server.stop().await;
}

/// The next text frame of a WebSocket client.
async fn next_text(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> String {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            return t.to_string();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_acknowledgement_per_event_and_a_connect_handler_that_cannot_run_lets_go() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let server = common::start_with(common::builder(), "127.0.0.1:0", common::Log::default()).await;
    server.io.ns("/acks", |socket: Socket| async move {
        socket.on(
            "two-acks",
            |ack: AckSender| async move { ack.send(&"first") },
        );
        socket.on(
            "two-acks",
            |ack: AckSender| async move { ack.send(&"second") },
        );
        socket.on("cloned-ack", |ack: AckSender| async move {
            ack.clone().send(&1)?;
            ack.send(&2)
        });
        socket.on("ping", |ack: AckSender| async move { ack.send(&"pong") })
    });
    #[derive(Clone)]
    struct NotGiven;
    server.io.ns(
        "/needs-state",
        |_s: Socket, State(_n): State<NotGiven>| async move {},
    );
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("0{"));
    ws.send(Message::text("40/acks,")).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40/acks,{"));
    ws.send(Message::text(r#"42/acks,1["two-acks"]"#))
        .await
        .unwrap();
    ws.send(Message::text(r#"42/acks,2["cloned-ack"]"#))
        .await
        .unwrap();
    ws.send(Message::text(r#"42/acks,3["ping"]"#))
        .await
        .unwrap();
    // Each event is acknowledged once, with the first answer sent.
    assert_eq!(next_text(&mut ws).await, r#"43/acks,1["first"]"#);
    assert_eq!(next_text(&mut ws).await, "43/acks,2[1]");
    assert_eq!(next_text(&mut ws).await, r#"43/acks,3["pong"]"#);
    // A connect handler whose extractors fail: the socket is let go.
    ws.send(Message::text("40/needs-state,")).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40/needs-state,{"));
    assert_eq!(next_text(&mut ws).await, "41/needs-state,");
    server.stop().await;
}
