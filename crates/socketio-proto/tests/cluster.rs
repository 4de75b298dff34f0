//! Two endpoints joined through the cluster interface, and bare Engine.IO.

mod harness;

use std::time::Duration;

use harness::Harness;
use socketio_proto::{
    BroadcastOptions, ClusterAction, ClusterOp, Config, Data, Event, Packet, RequestId, Str,
};

fn config() -> Config {
    Config::default().with_heartbeat(Duration::from_secs(300), Duration::from_secs(200))
}

fn joined(h: &mut Harness) -> (String, RequestId, Str) {
    let (sid, ws) = h.open_websocket();
    h.ws_text(&sid, ws, "40");
    let socket = Str::from(harness::sid_of(&h.text_frames(ws)[0]));
    (sid, ws, socket)
}

/// Hands every operation `from` published to `to`, delivering broadcasts.
fn relay(from: &mut Harness, to: &mut Harness) -> usize {
    let mut n = 0;
    while let Some(op) = from.endpoint.poll_cluster_op() {
        n += 1;
        match to.endpoint.handle_cluster_op(to.now, op) {
            ClusterAction::Broadcast(plan) => {
                for handle in plan.targets {
                    let conn = to.conns.get_mut(&handle).expect("connection");
                    conn.send_encoded("/", &plan.encoded, plan.volatile)
                        .expect("sent");
                }
            }
            ClusterAction::Disconnect { targets, .. } => {
                for (sid, handle) in targets {
                    let conn = to.conns.get_mut(&handle).expect("connection");
                    assert_eq!(conn.socket_id("/"), Some(&sid));
                    conn.disconnect("/").expect("connected");
                }
            }
            ClusterAction::Done => {}
        }
    }
    to.pump();
    n
}

fn news() -> Packet {
    Packet::event(Str::from("/"), "news", &("x",), None).expect("encodes")
}

#[test]
fn broadcasts_and_room_changes_reach_the_other_node() {
    let mut a = Harness::new(config());
    let mut b = Harness::seeded(config(), 7);
    a.endpoint.set_clustered(true);
    b.endpoint.set_clustered(true);
    let a1 = joined(&mut a);
    let b1 = joined(&mut b);
    let b2 = joined(&mut b);
    b.endpoint.join("/", &b1.2, "room");

    // A broadcast to a room from node A reaches B's member only.
    let plan = a
        .endpoint
        .broadcast(a.now, &news(), &BroadcastOptions::all().to("room"));
    assert!(plan.targets.is_empty(), "no member on A");
    assert_eq!(relay(&mut a, &mut b), 1);
    assert_eq!(b.text_frames(b1.1), ["42[\"news\",\"x\"]"]);
    assert!(b.text_frames(b2.1).is_empty());

    // A local broadcast stays on its node.
    a.endpoint
        .broadcast(a.now, &news(), &BroadcastOptions::all().local());
    assert_eq!(relay(&mut a, &mut b), 0);

    // Room changes requested on A apply on B.
    a.endpoint.add_sockets(
        "/",
        &BroadcastOptions::all().except(b1.2.clone()),
        &[Str::from("late")],
    );
    relay(&mut a, &mut b);
    assert!(b.endpoint.rooms_of("/", &b2.2).contains(&Str::from("late")));
    assert!(!b.endpoint.rooms_of("/", &b1.2).contains(&Str::from("late")));
    assert!(a.endpoint.rooms_of("/", &a1.2).contains(&Str::from("late")));
    a.endpoint
        .del_sockets("/", &BroadcastOptions::all(), &[Str::from("late")]);
    relay(&mut a, &mut b);
    assert!(!b.endpoint.rooms_of("/", &b2.2).contains(&Str::from("late")));

    // Disconnecting a room's sockets across the cluster.
    let local = a
        .endpoint
        .disconnect_sockets("/", &BroadcastOptions::all().to("room"), false);
    assert!(local.is_empty());
    let ops: Vec<ClusterOp> = std::iter::from_fn(|| a.endpoint.poll_cluster_op()).collect();
    assert_eq!(ops.len(), 1);
    for op in ops {
        if let ClusterAction::Disconnect { targets, close } =
            b.endpoint.handle_cluster_op(b.now, op)
        {
            assert!(!close);
            assert_eq!(targets.len(), 1);
            let conn = b.conns.get_mut(&targets[0].1).expect("connection");
            conn.disconnect("/").expect("connected");
        } else {
            panic!("a disconnect");
        }
    }
    b.pump();
    assert_eq!(b.text_frames(b1.1), ["41"]);
    assert_eq!(b.endpoint.socket_count("/"), 1);
}

#[test]
fn bare_engineio_messages_reach_the_application() {
    let mut h = Harness::new(config().with_engine_only(true));
    let id = h.request(socketio_proto::Request::get(
        "/engine.io/?EIO=4&transport=polling",
    ));
    let sid = harness::sid_of(&h.body(id));
    let post = h.request(socketio_proto::Request::post(
        &format!("/engine.io/?EIO=4&transport=polling&sid={sid}"),
        "4hello\x1ebAQI=",
    ));
    assert_eq!(h.body(post), "ok");
    let events = h.take_events();
    let messages: Vec<&Data> = events
        .iter()
        .filter_map(|e| match e {
            Event::EngineMessage(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(
        messages,
        [
            &Data::Text(Str::from("hello")),
            &Data::Binary(bytes::Bytes::from_static(&[1, 2]))
        ]
    );
    let conn = h.conn(&sid);
    conn.send_message(Data::Text(Str::from("back")))
        .expect("sent");
    conn.send_message(Data::Binary(bytes::Bytes::from_static(&[3])))
        .expect("sent");
    let get = h.request(socketio_proto::Request::get(&format!(
        "/engine.io/?EIO=4&transport=polling&sid={sid}"
    )));
    assert_eq!(h.body(get), "4back\x1ebAw==");
    // No Socket.IO connect timeout in bare Engine.IO.
    h.advance(Duration::from_secs(100));
    assert!(!h.conn(&sid).is_closed());
}
