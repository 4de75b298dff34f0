//! Connection state recovery across the servers of a Redis Streams
//! cluster, on a real `redis-server`: the official client in a room on
//! server A is cut off while broadcasts go on, comes back to server B, and
//! gets its session and every packet it missed, once and in order. A and B
//! are our servers, or one of them a Node `socket.io` server with
//! `@socket.io/redis-streams-adapter`.

#![cfg(feature = "streams")]
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Node, Redis, eventually, node_ready};
use serde_json::{Value, json};
use socketio_redis::StreamsRedisAdapter;
use socketio_tokio::{ConnectError, ConnectHandler, ConnectRequest, Recovery, Socket, SocketIo};

/// A server of the cluster, with recovery on: sockets join the room of
/// their `room` query parameter.
enum Server {
    Rust(SocketIo, StreamsRedisAdapter, SocketAddr),
    Node(Node, u16),
}

impl Server {
    async fn rust(url: &str) -> Server {
        Server::rust_with(url, 4096, Recovery::default()).await
    }

    /// A server of ours whose publish queue holds `queue` messages, with
    /// `recovery`; its namespace `/admin` lets no one in.
    async fn rust_with(url: &str, queue: usize, recovery: Recovery) -> Server {
        let io = SocketIo::builder()
            .connection_state_recovery(recovery)
            .build()
            .unwrap();
        let admin = |_socket: Socket| async move {};
        io.ns(
            "/admin",
            admin.with(|_req: ConnectRequest| async move {
                Err::<(), _>(ConnectError::new("forbidden"))
            }),
        );
        common::join_room_of_query(&io);
        let adapter = StreamsRedisAdapter::builder(url)
            .requests_timeout(Duration::from_secs(3))
            .queue_capacity(queue)
            .attach(&io)
            .await
            .unwrap();
        let addr = common::serve(&io).await;
        Server::Rust(io, adapter, addr)
    }

    async fn node(url: &str) -> Server {
        let port = common::free_port();
        let n = Node::spawn(
            "node-server.mjs",
            &[
                url.to_owned(),
                port.to_string(),
                "streams".into(),
                "recovery".into(),
            ],
        )
        .await;
        n.wait_for("the Node server", |v| v.get("ready").is_some())
            .await;
        Server::Node(n, port)
    }

    fn url(&self) -> String {
        match self {
            Server::Rust(_, _, addr) => format!("http://{addr}"),
            Server::Node(_, port) => format!("http://127.0.0.1:{port}"),
        }
    }

    /// Broadcasts `event` with `n` to the room "r", from this server.
    async fn emit(&mut self, event: &str, n: u64) {
        match self {
            Server::Rust(io, _, _) => io.to("r").emit(event, &(n,)).unwrap(),
            Server::Node(node, _) => {
                node.command(json!({"op": "emit", "to": ["r"], "event": event, "args": [n]}))
                    .await;
            }
        }
    }

    async fn stop(self) {
        match self {
            Server::Rust(io, adapter, _) => {
                adapter.close();
                drop(io);
            }
            Server::Node(node, _) => node.stop().await,
        }
    }
}

/// What the client printed: its connections, in order.
fn connects(client: &Node) -> Vec<Value> {
    client
        .lines()
        .into_iter()
        .filter(|v| v["event"] == "connect")
        .collect()
}

/// The ticks the client got, in order, with their offsets.
fn ticks(client: &Node) -> Vec<(u64, String)> {
    client
        .lines()
        .into_iter()
        .filter(|v| v.get("tick").is_some())
        .map(|v| {
            (
                v["tick"].as_u64().unwrap(),
                v["offset"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// An offset as the stream's entry id it must be.
fn entry_id(offset: &str) -> (u64, u64) {
    let (ms, seq) = offset
        .split_once('-')
        .unwrap_or_else(|| panic!("{offset:?} is not an entry id"));
    (ms.parse().unwrap(), seq.parse().unwrap())
}

async fn sessions_kept(redis: &Redis) -> usize {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("sio:session:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.len()
}

/// The official client on the server at `url`, once a broadcast from
/// `from` reaches it there (it is in the room "r"), with the line of its
/// first connection.
async fn client_in_room(url: String, from: &mut Server) -> (Node, Value) {
    let client = Node::spawn("../clients/cross-recovery.mjs", &[url]).await;
    let first = client
        .wait_for("the first connection", |v| v["event"] == "connect")
        .await;
    let probed = |client: &Node| client.lines().iter().any(|v| v["ev"] == "probe");
    for n in 0..200 {
        if probed(&client) {
            break;
        }
        from.emit("probe", n).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("a probe", || probed(&client)).await;
    (client, first)
}

/// The scenario: the client on `a`, cut off, back on `b`.
async fn recovers_across(mut a: Server, mut b: Server, redis: &Redis) {
    // In the room once broadcasts from `b` reach it on `a`.
    let (mut client, first) = client_in_room(a.url(), &mut b).await;
    assert_eq!(first["recovered"], false);
    let id = first["id"].as_str().unwrap().to_owned();
    for n in 1..=5 {
        b.emit("tick", n).await;
    }
    eventually("ticks 1 to 5 on a", || {
        ticks(&client).last().is_some_and(|(n, _)| *n == 5)
    })
    .await;

    // Cut off; meanwhile ticks 6 to 10 go out from `b`.
    client.send_line("cut").await;
    client
        .wait_for("the disconnection", |v| v["event"] == "disconnect")
        .await;
    for n in 6..=10 {
        b.emit("tick", n).await;
    }
    // `a` keeps the session in Redis.
    for _ in 0..400 {
        if sessions_kept(redis).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        sessions_kept(redis).await,
        1,
        "the session is kept in Redis"
    );

    // Back, on `b`: the same socket, recovered, and the missed ticks.
    client.send_line(&format!("connect {}", b.url())).await;
    eventually("the second connection", || connects(&client).len() == 2).await;
    let second = &connects(&client)[1];
    assert_eq!(second["recovered"], true, "{second}");
    assert_eq!(second["id"], id.as_str());
    assert_eq!(
        sessions_kept(redis).await,
        0,
        "a session is given back once"
    );
    // Ticks from `a` now reach it on `b`.
    for n in 11..=15 {
        a.emit("tick", n).await;
    }
    eventually("ticks up to 15 on b", || {
        ticks(&client).last().is_some_and(|(n, _)| *n == 15)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let got = ticks(&client);
    let numbers: Vec<u64> = got.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        numbers,
        (1..=15).collect::<Vec<_>>(),
        "every tick once and in order"
    );
    // The offsets are the stream's entry ids, in the stream's order.
    let ids: Vec<(u64, u64)> = got.iter().map(|(_, o)| entry_id(o)).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{got:?}");

    client.send_line("quit").await;
    client.stop().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_from_one_rust_server_to_another() {
    node_ready();
    let redis = Redis::start();
    let a = Server::rust(&redis.url()).await;
    let b = Server::rust(&redis.url()).await;
    recovers_across(a, b, &redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_from_a_rust_server_to_a_node_server() {
    node_ready();
    let redis = Redis::start();
    let a = Server::rust(&redis.url()).await;
    let b = Server::node(&redis.url()).await;
    recovers_across(a, b, &redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_from_a_node_server_to_a_rust_server() {
    node_ready();
    let redis = Redis::start();
    let a = Server::node(&redis.url()).await;
    let b = Server::rust(&redis.url()).await;
    recovers_across(a, b, &redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_away_broadcasts_still_reach_this_servers_clients() {
    node_ready();
    let mut redis = Redis::start();
    let mut a = Server::rust(&redis.url()).await;
    // A broadcast of this server's reaches its client through the stream,
    // with the entry's id as its offset.
    let (mut client, _) = client_in_room(a.url(), &mut a).await;
    a.emit("tick", 1).await;
    eventually("tick 1", || !ticks(&client).is_empty()).await;
    entry_id(&ticks(&client)[0].1);

    // Redis goes away: the stream takes nothing, and a broadcast is
    // delivered here all the same, without an offset (as the reference
    // does), once. (One sent on the connection as it broke may be lost:
    // the stream may have it, so it is left to the reader.)
    redis.kill();
    for n in 2..200 {
        if ticks(&client).len() > 1 {
            break;
        }
        a.emit("tick", n).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("a tick without Redis", || ticks(&client).len() > 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = client.lines();
    let got: Vec<&Value> = lines.iter().filter(|v| v.get("tick").is_some()).collect();
    let numbers: Vec<u64> = got.iter().map(|v| v["tick"].as_u64().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    for tick in &got[1..] {
        assert_eq!(tick["offset"], tick["tick"], "no offset: {tick}");
    }

    client.send_line("quit").await;
    client.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_publish_queue_full_broadcasts_still_reach_this_servers_clients() {
    node_ready();
    let redis = Redis::start();
    let mut a = Server::rust_with(&redis.url(), 1, Recovery::default()).await;
    let (mut client, _) = client_in_room(a.url(), &mut a).await;

    // More broadcasts at once than the queue holds: those it has no room
    // for are delivered here without an offset, the others through the
    // stream; each once.
    let Server::Rust(io, _, _) = &a else {
        unreachable!()
    };
    for n in 1..=50u64 {
        io.to("r").emit("tick", &(n,)).unwrap();
    }
    eventually("50 ticks", || ticks(&client).len() >= 50).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut numbers: Vec<u64> = ticks(&client).iter().map(|(n, _)| *n).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=50).collect::<Vec<_>>(), "every tick once");

    client.send_line("quit").await;
    client.stop().await;
    a.stop().await;
}

/// The client on `a`, in the room, cut off while `b` sends `missed` ticks,
/// with its session kept in Redis.
async fn cut_off(a: &Server, b: &mut Server, missed: u64, redis: &Redis) -> Node {
    let (mut client, _) = client_in_room(a.url(), b).await;
    client.send_line("cut").await;
    client
        .wait_for("the disconnection", |v| v["event"] == "disconnect")
        .await;
    for n in 1..=missed {
        b.emit("tick", n).await;
    }
    for _ in 0..400 {
        if sessions_kept(redis).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(sessions_kept(redis).await, 1, "the session is kept");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_not_given_back_on_another_namespace() {
    node_ready();
    let redis = Redis::start();
    let a = Server::rust(&redis.url()).await;
    let mut b = Server::rust(&redis.url()).await;
    let mut client = cut_off(&a, &mut b, 1, &redis).await;
    // The session of `/` asked for on `/admin`: its middleware runs, and
    // refuses the client.
    client
        .send_line(&format!("connect-nsp {} /admin", b.url()))
        .await;
    let refused = client
        .wait_for("the answer on /admin", |v| {
            v["nsp"] == "/admin" && (v["event"] == "connect" || v["event"] == "connect_error")
        })
        .await;
    assert_eq!(refused["event"], "connect_error", "{refused}");
    assert_eq!(refused["message"], "forbidden");

    client.send_line("quit").await;
    client.stop().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_missed_more_than_it_may_replay_is_not_recovered() {
    node_ready();
    let redis = Redis::start();
    let a = Server::rust(&redis.url()).await;
    let bounded = Recovery::default().with_missed_bounds(3, 1 << 20);
    let mut b = Server::rust_with(&redis.url(), 4096, bounded).await;
    let mut client = cut_off(&a, &mut b, 10, &redis).await;
    client.send_line(&format!("connect {}", b.url())).await;
    eventually("the second connection", || connects(&client).len() == 2).await;
    let second = &connects(&client)[1];
    assert_eq!(second["recovered"], false, "{second}");

    client.send_line("quit").await;
    client.stop().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_entries_outweigh_its_packets_gets_them_all() {
    node_ready();
    let redis = Redis::start();
    let a = Server::rust(&redis.url()).await;
    // 20 ticks of about 35 bytes each as the client gets them fit in
    // 1,000; as the stream holds them, with four long rooms excepted,
    // they weigh about seven times that.
    let bounded = Recovery::default().with_missed_bounds(10_000, 1_000);
    let mut b = Server::rust_with(&redis.url(), 4096, bounded).await;
    let mut client = cut_off(&a, &mut b, 0, &redis).await;
    let Server::Rust(io, _, _) = &b else {
        unreachable!("b is ours")
    };
    // A client of `b` in the room: once it has tick 20, so has `b`'s
    // reader, and the replay holds all twenty.
    let mut watcher = Node::spawn("../clients/cross-recovery.mjs", &[b.url()]).await;
    watcher
        .wait_for("the watcher's connection", |v| v["event"] == "connect")
        .await;
    let except: Vec<String> = (0..4).map(|i| format!("{i}{}", "x".repeat(59))).collect();
    for n in 1..=20u64 {
        io.to("r")
            .except(except.clone())
            .emit("tick", &(n,))
            .unwrap();
    }
    eventually("tick 20 on b's watcher", || {
        ticks(&watcher).last().is_some_and(|(n, _)| *n == 20)
    })
    .await;
    client.send_line(&format!("connect {}", b.url())).await;
    eventually("the second connection", || connects(&client).len() == 2).await;
    let second = &connects(&client)[1];
    assert_eq!(second["recovered"], true, "{second}");
    eventually("tick 20", || {
        ticks(&client).last().is_some_and(|(n, _)| *n == 20)
    })
    .await;
    let numbers: Vec<u64> = ticks(&client).iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=20).collect::<Vec<_>>(), "every tick, no hole");

    for node in [&mut client, &mut watcher] {
        node.send_line("quit").await;
    }
    watcher.stop().await;
    client.stop().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_adapter_leaves_broadcasts_to_this_servers_clients() {
    node_ready();
    let redis = Redis::start();
    let mut a = Server::rust(&redis.url()).await;
    let mut client = Node::spawn("../clients/cross-recovery.mjs", &[a.url()]).await;
    client
        .wait_for("the connection", |v| v["event"] == "connect")
        .await;
    let Server::Rust(_, adapter, _) = &a else {
        unreachable!("a is ours")
    };
    adapter.close();
    for n in 1..=3 {
        a.emit("tick", n).await;
    }
    eventually("ticks 1 to 3", || {
        ticks(&client).last().is_some_and(|(n, _)| *n == 3)
    })
    .await;
    let numbers: Vec<u64> = ticks(&client).iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [1, 2, 3]);

    client.send_line("quit").await;
    client.stop().await;
    a.stop().await;
}

/// The process id of `redis`.
async fn pid_of(redis: &Redis) -> String {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .unwrap()
        .trim()
        .to_owned()
}

fn signal(pid: &str, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, pid])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_silent_broadcasts_reach_this_servers_clients_within_a_timeout() {
    node_ready();
    let redis = Redis::start();
    let mut a = Server::rust(&redis.url()).await;
    let (mut client, _) = client_in_room(a.url(), &mut a).await;

    // Redis stops answering, its connections open: the first broadcast
    // waits out the requests timeout (3 s here), and may be in the stream;
    // the others are not sent, and reach the client while Redis is still
    // silent, not one timeout each later.
    let pid = pid_of(&redis).await;
    signal(&pid, "-STOP");
    for n in 1..=20 {
        a.emit("tick", n).await;
    }
    eventually("ticks 2 to 20 while Redis is silent", || {
        ticks(&client).len() >= 19
    })
    .await;
    let numbers: Vec<u64> = ticks(&client).iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (2..=20).collect::<Vec<_>>());
    // Back: the first one was appended after all, and the reader gives it.
    signal(&pid, "-CONT");
    eventually("tick 1 from the stream", || ticks(&client).len() == 20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut numbers: Vec<u64> = ticks(&client).iter().map(|(n, _)| *n).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=20).collect::<Vec<_>>(), "every tick once");

    client.send_line("quit").await;
    client.stop().await;
    a.stop().await;
}
