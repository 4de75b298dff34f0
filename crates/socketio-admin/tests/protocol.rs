//! The admin namespace's protocol with the official JavaScript client
//! (`interop/clients/admin.mjs`), as the Admin UI speaks it: basic
//! authentication and sessions, `config`, `all_sockets`, the verbose events
//! of development mode, `server_stats`, the UI's actions, and a Node.js
//! server instrumented by `@socket.io/admin-ui` in the same Redis cluster.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use socketio_admin::{AdminOptions, Auth};
use socketio_tokio::{AckSender, Data, Socket, SocketIo};
use tokio::net::TcpListener;
use tokio::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Checks that node and the npm packages are there; fails with how to
/// install them otherwise.
fn require_node() {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        node,
        "node is not installed: install Node.js 18 or later, then run `npm ci --prefix interop`"
    );
    assert!(
        workspace()
            .join("interop/node_modules/@socket.io/admin-ui/package.json")
            .exists(),
        "@socket.io/admin-ui is missing: run `npm ci --prefix interop` at the workspace root"
    );
}

/// A server (with connection state recovery, as the chat example) whose `/` namespace joins a socket to the room it asks for
/// (`join`, acknowledged, answered with `joined`), instrumented with
/// `options`, served on a free port.
async fn server(options: AdminOptions) -> (SocketIo, SocketAddr) {
    let io = SocketIo::builder()
        .connection_state_recovery(socketio_tokio::Recovery::default())
        .build()
        .unwrap();
    io.ns("/", |socket: Socket| async move {
        socket.on(
            "join",
            |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
                socket.join(room.clone());
                socket.emit("joined", &room)?;
                ack.send(&true)
            },
        );
    });
    socketio_admin::instrument(&io, options).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = io.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    (io, addr)
}

fn basic() -> Auth {
    Auth::basic("admin", bcrypt::hash("secret", 4).unwrap())
}

/// Runs a scenario of `admin.mjs`; its JSON result.
async fn scenario(args: &[String]) -> Value {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new("node")
            .arg(workspace().join("interop/clients/admin.mjs"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the script finishes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| {
            panic!(
                "no result: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(out.status.success(), "{result}");
    assert!(result.get("error").is_none(), "{result}");
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_sessions_and_features() {
    require_node();
    let (_io, addr) = server(AdminOptions::new(basic())).await;
    let (_ro, ro_addr) = server(AdminOptions::new(basic()).readonly(true)).await;
    let r = scenario(&[
        "auth".into(),
        format!("http://{addr}"),
        format!("http://{ro_addr}"),
    ])
    .await;
    assert_eq!(r["wrongPassword"], "invalid credentials");
    assert_eq!(r["noCredentials"], "invalid credentials");
    let session = r["session"].as_str().unwrap();
    assert_eq!(session.len(), 16, "{r}");
    assert!(session.chars().all(|c| c.is_ascii_hexdigit()), "{r}");
    assert_eq!(
        r["features"],
        json!([
            "EMIT",
            "JOIN",
            "LEAVE",
            "DISCONNECT",
            "MJOIN",
            "MLEAVE",
            "MDISCONNECT",
            "AGGREGATED_EVENTS",
            "ALL_EVENTS"
        ])
    );
    assert_eq!(r["sessionAccepted"], true, "a saved session logs in again");
    assert_eq!(r["unknownSessionAccepted"], "invalid credentials");
    assert_eq!(
        r["readonlyFeatures"],
        json!(["AGGREGATED_EVENTS", "ALL_EVENTS"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_rooms_events_stats_and_actions() {
    require_node();
    let (io, addr) = server(AdminOptions::new(basic()).server_id("rust-server")).await;
    let r = scenario(&["activity".into(), format!("http://{addr}")]).await;
    let ana = &r["allSockets"]["ana"];
    assert_eq!(ana["nsp"], "/", "{r}");
    assert!(
        ana["rooms"].as_array().unwrap().contains(&json!("lobby")),
        "{r}"
    );
    assert_eq!(ana["clientId"].as_str().unwrap().len(), 12, "{r}");
    assert_eq!(ana["transport"], "websocket", "{r}");
    assert_eq!(
        ana["data"],
        json!({}),
        "the _admin field is not shown as data: {r}"
    );
    assert_eq!(ana["hasHeaders"], true);
    assert!(
        ana["url"].as_str().unwrap().starts_with("/socket.io/"),
        "{r}"
    );
    assert_eq!(
        r["allSockets"]["admin"], true,
        "the admin socket is listed too"
    );

    assert_eq!(r["socketConnected"]["nsp"], "/");
    assert_eq!(r["socketConnected"]["transport"], "websocket");
    assert_eq!(r["socketConnected"]["query"]["who"], "bob");
    assert_eq!(r["socketConnected"]["date"], true);
    assert_eq!(r["roomJoined"], json!(["/", "kitchen"]));
    assert_eq!(r["eventReceived"], json!(["/", ["hello", "world", 42]]));
    assert_eq!(r["eventSent"], json!(["joined", "kitchen"]));

    let stats = &r["stats"];
    assert_eq!(stats["serverId"], "rust-server");
    assert_eq!(stats["hostname"], "string");
    assert_eq!(stats["pid"], std::process::id());
    assert_eq!(stats["uptime"], "number");
    assert_eq!(stats["clientsCount"], 3, "ana, bob and the admin: {r}");
    assert_eq!(stats["pollingClientsCount"], 0);
    let namespaces = stats["namespaces"].as_array().unwrap();
    assert!(
        namespaces.contains(&json!({ "name": "/", "socketsCount": 2 })),
        "{r}"
    );
    assert!(
        namespaces.contains(&json!({ "name": "/admin", "socketsCount": 1 })),
        "{r}"
    );
    let agg = &r["aggregated"];
    assert!(agg["rawConnection"].as_u64().unwrap() >= 3, "{r}");
    for kind in ["packetsIn", "packetsOut", "bytesIn", "bytesOut"] {
        assert!(agg[kind].as_u64().unwrap() > 0, "{kind}: {r}");
    }

    // With connection state recovery, the packet's offset comes last, as
    // from the reference server.
    assert_eq!(r["notice"][0], "hi", "{r}");
    assert_eq!(r["notice"][1], json!({ "n": 1 }), "{r}");
    assert_eq!(r["joinedByAdmin"], "extra");
    assert_eq!(r["leftByAdmin"], "extra");
    assert_eq!(r["bobReason"], "io server disconnect");
    assert_eq!(r["disconnectedReason"], "server namespace disconnect");
    drop(io);
}

struct Redis(std::process::Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `redis-server` on a free port; its URL.
fn redis() -> (Redis, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = Redis(
        std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is missing (apt-get install redis-server)"),
    );
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    (redis, format!("redis://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_server_in_the_cluster_shows_up_both_ways() {
    require_node();
    let (_redis, url) = redis();
    let io = SocketIo::new().unwrap();
    io.ns("/", |_socket: Socket| async move {});
    socketio_admin::instrument(&io, AdminOptions::new(Auth::None).server_id("rust-server"))
        .unwrap();
    let _adapter = socketio_redis::RedisAdapter::builder(&url)
        .attach(&io)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = io.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    let r = scenario(&["cluster".into(), format!("http://{addr}"), url]).await;
    assert_eq!(
        r["serversSeenByRust"],
        json!(["node-server", "rust-server"])
    );
    assert_eq!(
        r["serversSeenByNode"],
        json!(["node-server", "rust-server"])
    );
    assert_eq!(r["rustSeesNodeSocket"], true, "{r}");
    let seen = &r["nodeSeesRustSocket"];
    assert_eq!(seen["nsp"], "/", "{r}");
    assert_eq!(seen["clientId"].as_str().unwrap().len(), 12, "{r}");
    assert_eq!(seen["transport"], "websocket", "{r}");
}

#[test]
fn hashes_made_by_bcryptjs_are_verified() {
    require_node();
    let out = std::process::Command::new("node")
        .current_dir(workspace().join("interop"))
        .args([
            "-e",
            "const b = require('./node_modules/bcryptjs'); console.log(b.hashSync('secret', 4));",
        ])
        .output()
        .unwrap();
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(hash.starts_with("$2a$04$"), "{hash}");
    for prefix in ["$2a$", "$2b$", "$2y$"] {
        let h = format!("{prefix}{}", &hash[4..]);
        assert!(bcrypt::verify("secret", &h).unwrap(), "{h}");
        assert!(!bcrypt::verify("Secret", &h).unwrap(), "{h}");
    }
    let io = SocketIo::new().unwrap();
    assert!(
        socketio_admin::instrument(&io, AdminOptions::new(Auth::basic("admin", "plain"))).is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_field_stays_out_of_the_applications_data() {
    let io = SocketIo::new().unwrap();
    io.ns("/", |socket: Socket| async move {
        socket.set_data(&json!({ "name": "ana" })).unwrap();
    });
    socketio_admin::instrument(&io, AdminOptions::new(Auth::None)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = io.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    let client = socketio_client::connect(&format!("http://{addr}/"))
        .connect()
        .unwrap();
    let mut sockets = Vec::new();
    for _ in 0..400 {
        sockets = io.of("/").sockets();
        if sockets.first().is_some_and(|s| s.data::<Value>().is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let socket = sockets.first().expect("the client joined");
    // The client opens with long-polling and upgrades: the field follows.
    for _ in 0..400 {
        if socket.transport().as_str() == "websocket" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(socket.transport().as_str(), "websocket");
    // The application reads back what it set, and only that.
    assert_eq!(socket.data::<Value>(), Some(json!({ "name": "ana" })));
    let fetched = io.of("/").fetch_sockets().await.unwrap();
    let data = &fetched[0].data;
    assert_eq!(data["name"], "ana");
    assert_eq!(data["_admin"]["clientId"].as_str().unwrap().len(), 12);
    assert_eq!(data["_admin"]["transport"], "websocket");
    // Setting the data again leaves the field in place.
    socket.set_data(&json!({ "name": "bea" })).unwrap();
    let fetched = io.of("/").fetch_sockets().await.unwrap();
    assert_eq!(fetched[0].data["name"], "bea");
    assert_eq!(fetched[0].data["_admin"]["transport"], "websocket");
    assert_eq!(socket.data::<Value>(), Some(json!({ "name": "bea" })));
    drop(client);
}
