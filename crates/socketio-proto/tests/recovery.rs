//! Connection state recovery in virtual time: a socket that drops comes
//! back with its id, rooms and data and the packets it missed, once, in
//! order; every request that should not recover gets a new session.

mod harness;

use std::time::Duration;

use harness::Harness;
use socketio_proto::{
    BroadcastOptions, ClusterAction, ClusterOp, ClusterSession, Config, DisconnectReason, Event,
    MissedBroadcast, NotRecovered, Packet, Recovery, RequestId, Resume, Str,
};

fn config(recovery: Recovery) -> Config {
    Config::default()
        .with_heartbeat(Duration::from_secs(300), Duration::from_secs(200))
        .with_connect_timeout(Duration::from_secs(600))
        .with_recovery(Some(recovery))
}

fn harness() -> Harness {
    Harness::new(config(Recovery::default()))
}

/// A socket, as its client sees it.
struct Client {
    sid: String,
    ws: RequestId,
    id: String,
    pid: String,
}

/// The JSON of a frame after its packet type (`42[...]` → `[...]`).
fn json(frame: &str, skip: usize) -> serde_json::Value {
    serde_json::from_str(&frame[skip..]).expect("json")
}

/// A WebSocket session that sends `connect` (`40…`); returns the client and
/// the packets it got before the CONNECT answer (a recovered session's
/// missed packets come first, as the reference sends them).
fn connect_with(h: &mut Harness, connect: &str) -> (Client, Vec<String>) {
    let (sid, ws) = h.open_websocket();
    h.ws_text(&sid, ws, connect);
    let mut frames = h.text_frames(ws);
    let at = frames
        .iter()
        .position(|f| f.starts_with("40"))
        .expect("a CONNECT answer");
    assert_eq!(
        at + 1,
        frames.len(),
        "the CONNECT answer comes last: {frames:?}"
    );
    let answer_frame = frames.pop().expect("the answer");
    let nsp_len = answer_frame[2..].find('{').expect("a CONNECT answer") + 2;
    let answer = json(&answer_frame, nsp_len);
    let client = Client {
        sid,
        ws,
        id: answer["sid"].as_str().expect("sid").to_owned(),
        pid: answer["pid"].as_str().expect("pid").to_owned(),
    };
    (client, frames)
}

fn connect(h: &mut Harness) -> Client {
    let (client, rest) = connect_with(h, "40");
    assert!(rest.is_empty());
    client
}

/// Asks to recover `pid` from `offset`.
fn resume(h: &mut Harness, pid: &str, offset: &str) -> (Client, Vec<String>) {
    connect_with(
        h,
        &format!("40{{\"pid\":\"{pid}\",\"offset\":\"{offset}\"}}"),
    )
}

fn event(name: &str, args: &impl serde::Serialize) -> Packet {
    Packet::event(Str::from("/"), name, args, None).expect("encodes")
}

/// Broadcasts `news` with `n` to whom `opts` selects, as a binding does.
fn broadcast(h: &mut Harness, n: u32, opts: BroadcastOptions) {
    let packet = event("news", &(n,));
    let plan = h.endpoint.broadcast(h.now, &packet, &opts);
    for handle in plan.targets {
        let conn = h.conns.get_mut(&handle).expect("connection");
        conn.send_encoded("/", &plan.encoded, plan.volatile)
            .expect("sent");
    }
    h.pump();
}

/// The events in `frames` as (argument, offset).
fn events(frames: &[String]) -> Vec<(u64, String)> {
    frames
        .iter()
        .map(|f| {
            assert!(f.starts_with("42"), "{f}");
            let v = json(f, 2);
            assert_eq!(v[0], "news");
            assert_eq!(v.as_array().expect("array").len(), 3, "{f}");
            (
                v[1].as_u64().expect("n"),
                v[2].as_str().expect("offset").to_owned(),
            )
        })
        .collect()
}

/// A new connection asking to resume `pid` from `offset`, left unanswered:
/// its session id, WebSocket and request.
fn ask_to_resume(h: &mut Harness, pid: &str, offset: &str) -> (String, RequestId, Resume) {
    h.auto_accept = false;
    let (sid, ws) = h.open_websocket();
    h.ws_text(
        &sid,
        ws,
        &format!("40{{\"pid\":\"{pid}\",\"offset\":\"{offset}\"}}"),
    );
    let resume = h
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::ConnectRequest { resume, .. } => resume,
            _ => None,
        })
        .expect("a request to recover");
    (sid, ws, resume)
}

/// The transport fails under the client.
fn drop_transport(h: &mut Harness, c: &Client) {
    let now = h.now;
    h.conn(&c.sid).handle_transport_closed(now, c.ws, true);
    h.pump();
}

#[test]
fn the_connect_answer_carries_a_private_session_id() {
    let mut h = harness();
    let a = connect(&mut h);
    assert_ne!(a.pid, a.id);
    assert_ne!(a.pid, a.sid);
    let b = connect(&mut h);
    assert_ne!(a.pid, b.pid);

    // Without recovery the answer is the socket id alone.
    let mut plain = Harness::new(Config::default());
    let (sid, ws) = plain.open_websocket();
    plain.ws_text(&sid, ws, "40");
    let frames = plain.text_frames(ws);
    assert!(!frames[0].contains("pid"), "{frames:?}");
}

#[test]
fn a_dropped_socket_gets_its_id_rooms_and_every_missed_packet_in_order() {
    let mut h = harness();
    let a = connect(&mut h);
    let other = connect(&mut h);
    h.endpoint.join("/", &Str::from(a.id.clone()), "room");

    broadcast(&mut h, 1, BroadcastOptions::all().to("room"));
    let got = events(&h.text_frames(a.ws));
    assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), [1]);
    let last = got[0].1.clone();
    // Sent but lost with the transport: the client never read it.
    broadcast(&mut h, 2, BroadcastOptions::all());
    drop_transport(&mut h, &a);
    assert_eq!(h.endpoint.recovery_store_size().1, 1, "one saved session");
    assert_eq!(h.endpoint.socket_count("/"), 1);

    // While it is away.
    h.advance(Duration::from_secs(5));
    broadcast(&mut h, 3, BroadcastOptions::all().to("room"));
    broadcast(&mut h, 4, BroadcastOptions::all().to("elsewhere"));
    broadcast(&mut h, 5, BroadcastOptions::all().except("room"));
    broadcast(&mut h, 6, BroadcastOptions::all().to(a.id.clone()));
    broadcast(&mut h, 7, BroadcastOptions::all());
    h.text_frames(other.ws);

    let (back, replay) = resume(&mut h, &a.pid, &last);
    assert_eq!(back.id, a.id, "the same socket id");
    assert_eq!(
        back.pid, a.pid,
        "the same private id: the client sees it recovered"
    );
    assert_ne!(back.sid, a.sid, "a new Engine.IO session");
    let got = events(&replay);
    assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 3, 6, 7]);
    let offsets: std::collections::HashSet<_> = got.iter().map(|e| &e.1).collect();
    assert_eq!(offsets.len(), 4, "each packet has its own offset");
    assert!(h.not_recovered.is_empty());
    assert_eq!(h.endpoint.recovery_store_size().1, 0, "recovered once");

    // Its rooms are back: a broadcast to the room reaches it.
    assert!(h.endpoint.rooms_of("/", &a.id).contains(&Str::from("room")));
    broadcast(&mut h, 8, BroadcastOptions::all().to("room"));
    assert_eq!(events(&h.text_frames(back.ws))[0].0, 8);
    assert!(h.text_frames(other.ws).is_empty());

    // The application heard of the connection; the client got no
    // duplicate of what it had.
    let connected = h
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, Event::Connected { sid, .. } if **sid == *a.id))
        .count();
    assert_eq!(connected, 2);
}

#[test]
fn a_session_is_recovered_once_and_not_past_the_window() {
    let mut h = Harness::new(config(
        Recovery::default().with_max_disconnection_duration(Duration::from_secs(60)),
    ));
    let a = connect(&mut h);
    broadcast(&mut h, 1, BroadcastOptions::all());
    let last = events(&h.text_frames(a.ws))[0].1.clone();
    drop_transport(&mut h, &a);
    let (back, _) = resume(&mut h, &a.pid, &last);
    assert_eq!(back.id, a.id);

    // The same pid again, while the recovered socket is connected: new.
    let (twin, _) = resume(&mut h, &a.pid, &last);
    assert_ne!(twin.id, a.id);
    assert_ne!(twin.pid, a.pid);
    assert_eq!(h.not_recovered, [NotRecovered::UnknownSession]);

    // Past the window: new.
    broadcast(&mut h, 2, BroadcastOptions::all().to(back.id.clone()));
    let last = events(&h.text_frames(back.ws))[0].1.clone();
    drop_transport(&mut h, &back);
    h.advance(Duration::from_secs(61));
    let (late, replay) = resume(&mut h, &back.pid, &last);
    assert_ne!(late.id, back.id);
    assert!(replay.is_empty());
    assert_eq!(h.endpoint.recovery_store_size(), (0, 0, 0), "all expired");
}

#[test]
fn a_quiet_server_drops_what_it_kept_at_the_end_of_the_window() {
    let window = Duration::from_secs(60);
    let mut h = Harness::new(config(
        Recovery::default().with_max_disconnection_duration(window),
    ));
    assert_eq!(h.endpoint.poll_timeout(), None, "nothing kept");
    let a = connect(&mut h);
    let b = connect(&mut h);
    let start = h.now;
    broadcast(&mut h, 1, BroadcastOptions::all());
    h.advance(Duration::from_secs(10));
    drop_transport(&mut h, &a);
    h.advance(Duration::from_secs(10));
    drop_transport(&mut h, &b);
    assert_eq!(h.endpoint.recovery_store_size().0, 1);
    assert_eq!(h.endpoint.recovery_store_size().1, 2);
    // Nothing else happens: the endpoint says when the oldest goes.
    let first = h.endpoint.poll_timeout().expect("the packet's end");
    assert!(first > start + window && first <= start + window + Duration::from_secs(1));
    h.endpoint.handle_timeout(first - Duration::from_millis(2));
    assert_eq!(h.endpoint.recovery_store_size().0, 1, "not before its end");
    h.endpoint.handle_timeout(first);
    assert_eq!(h.endpoint.recovery_store_size().0, 0, "the packet went");
    assert_eq!(h.endpoint.recovery_store_size().1, 2);
    // Then the first session, then the second.
    let next = h.endpoint.poll_timeout().expect("a's end");
    assert!(
        next > start + window + Duration::from_secs(10),
        "{:?}",
        next - start
    );
    h.endpoint.handle_timeout(next);
    assert_eq!(h.endpoint.recovery_store_size().1, 1);
    let last = h.endpoint.poll_timeout().expect("b's end");
    h.endpoint.handle_timeout(last);
    assert_eq!(h.endpoint.recovery_store_size(), (0, 0, 0), "all expired");
    assert_eq!(h.endpoint.poll_timeout(), None);
}

#[test]
fn a_recovered_session_leaves_no_timeout_behind() {
    let mut h = harness();
    let a = connect(&mut h);
    drop_transport(&mut h, &a);
    assert!(h.endpoint.poll_timeout().is_some());
    let (back, _) = connect_with(&mut h, &format!("40{{\"pid\":\"{}\"}}", a.pid));
    assert_eq!(back.id, a.id);
    assert_eq!(h.endpoint.recovery_store_size(), (0, 0, 0));
    assert_eq!(h.endpoint.poll_timeout(), None);
}

#[test]
fn just_inside_the_window_the_session_is_recovered() {
    let mut h = harness();
    let a = connect(&mut h);
    broadcast(&mut h, 1, BroadcastOptions::all());
    let last = events(&h.text_frames(a.ws))[0].1.clone();
    drop_transport(&mut h, &a);
    h.advance(Duration::from_secs(119));
    broadcast(&mut h, 2, BroadcastOptions::all());
    let (back, replay) = resume(&mut h, &a.pid, &last);
    assert_eq!(back.id, a.id);
    assert_eq!(events(&replay)[0].0, 2);
}

#[test]
fn bad_requests_get_a_new_session() {
    let mut h = harness();
    let a = connect(&mut h);
    let b = connect(&mut h);
    h.endpoint.join("/", &Str::from(b.id.clone()), "b-only");
    broadcast(&mut h, 1, BroadcastOptions::all());
    let a_last = events(&h.text_frames(a.ws))[0].1.clone();
    broadcast(&mut h, 2, BroadcastOptions::all().to("b-only"));
    let b_only = events(&h.text_frames(b.ws))
        .last()
        .expect("b got it")
        .1
        .clone();
    drop_transport(&mut h, &a);

    let fresh = |h: &mut Harness, connect: &str, why: Option<NotRecovered>| {
        h.not_recovered.clear();
        let (c, replay) = connect_with(h, connect);
        assert_ne!(c.id, a.id, "{connect}");
        assert_ne!(c.pid, a.pid, "{connect}");
        assert!(replay.is_empty(), "{connect}");
        assert_eq!(
            h.not_recovered,
            why.into_iter().collect::<Vec<_>>(),
            "{connect}"
        );
    };
    // A forged pid.
    let forged = "AAAAAAAAAAAAAAAAAAAA";
    fresh(
        &mut h,
        &format!("40{{\"pid\":\"{forged}\",\"offset\":\"{a_last}\"}}"),
        Some(NotRecovered::UnknownSession),
    );
    // The pid of a socket still connected.
    fresh(
        &mut h,
        &format!("40{{\"pid\":\"{}\",\"offset\":\"{b_only}\"}}", b.pid),
        Some(NotRecovered::UnknownSession),
    );
    // An offset no packet has (the future, or forged).
    fresh(
        &mut h,
        &format!("40{{\"pid\":\"{}\",\"offset\":\"nope\"}}", a.pid),
        Some(NotRecovered::UnknownOffset),
    );
    // Not strings, or too long: no request at all.
    fresh(
        &mut h,
        &format!("40{{\"pid\":\"{}\",\"offset\":1}}", a.pid),
        None,
    );
    // A pid alone asks too (the session was dropped by the refusal above).
    fresh(
        &mut h,
        &format!("40{{\"pid\":\"{}\"}}", a.pid),
        Some(NotRecovered::UnknownSession),
    );
    fresh(
        &mut h,
        &format!("40{{\"pid\":null,\"offset\":\"{a_last}\"}}"),
        None,
    );
    fresh(
        &mut h,
        &format!(
            "40{{\"pid\":\"{}\",\"offset\":\"{}\"}}",
            a.pid,
            "x".repeat(65)
        ),
        None,
    );

    // Each refusal above that found the session dropped it: a session is
    // given back whole or not at all. Start again for the last two cases.
    let a = connect(&mut h);
    h.endpoint.join("/", &Str::from(a.id.clone()), "a-room");
    broadcast(&mut h, 3, BroadcastOptions::all().to("b-only"));
    let b_only = events(&h.text_frames(b.ws))
        .last()
        .expect("b got it")
        .1
        .clone();
    broadcast(&mut h, 4, BroadcastOptions::all().to("a-room"));
    let a_last = events(&h.text_frames(a.ws))[0].1.clone();
    drop_transport(&mut h, &a);
    // On another namespace (declared, so that it is accepted).
    h.endpoint.add_namespace("/admin");
    h.not_recovered.clear();
    let (other_nsp, _) = connect_with(
        &mut h,
        &format!("40/admin,{{\"pid\":\"{}\",\"offset\":\"{a_last}\"}}", a.pid),
    );
    assert_ne!(other_nsp.id, a.id);
    assert_eq!(h.not_recovered, [NotRecovered::OtherNamespace]);
    // An offset of a packet of another namespace.
    let admin = connect_with(&mut h, "40/admin,").0;
    let plan = h.endpoint.broadcast(
        h.now,
        &Packet::event(Str::from("/admin"), "news", &(9,), None).expect("encodes"),
        &BroadcastOptions::all(),
    );
    for handle in plan.targets {
        let conn = h.conns.get_mut(&handle).expect("connection");
        conn.send_encoded("/admin", &plan.encoded, false)
            .expect("sent");
    }
    let admin_frame = h.text_frames(admin.ws).pop().expect("a packet");
    let admin_offset = json(&admin_frame, admin_frame.find('[').expect("args"))[2]
        .as_str()
        .expect("an offset")
        .to_owned();
    fresh(
        &mut h,
        &format!("40{{\"pid\":\"{}\",\"offset\":\"{admin_offset}\"}}", a.pid),
        Some(NotRecovered::ForeignOffset),
    );
    let _ = b_only;
}

#[test]
fn only_the_reference_reasons_keep_a_session() {
    let kept = [
        DisconnectReason::TransportError,
        DisconnectReason::TransportClose,
        DisconnectReason::ForcedClose,
        DisconnectReason::PingTimeout,
        DisconnectReason::ServerShuttingDown,
    ];
    let not_kept = [
        DisconnectReason::ParseError,
        DisconnectReason::ClientNamespaceDisconnect,
        DisconnectReason::ServerNamespaceDisconnect,
        // A connection the application closes: a client kicked out does not
        // come back in its session.
        DisconnectReason::ForcedServerClose,
    ];
    for reason in kept {
        assert!(reason.keeps_session(), "{reason}");
        let mut h = harness();
        let a = connect(&mut h);
        let now = h.now;
        h.conn(&a.sid).close(now, reason);
        h.pump();
        assert_eq!(h.endpoint.recovery_store_size().1, 1, "{reason}");
    }
    for reason in not_kept {
        assert!(!reason.keeps_session(), "{reason}");
        let mut h = harness();
        let a = connect(&mut h);
        let now = h.now;
        h.conn(&a.sid).close(now, reason);
        h.pump();
        assert_eq!(h.endpoint.recovery_store_size().1, 0, "{reason}");
    }

    // The client leaves the namespace, or the server makes it leave.
    let mut h = harness();
    let a = connect(&mut h);
    h.ws_text(&a.sid, a.ws, "41");
    let b = connect(&mut h);
    h.conn(&b.sid).disconnect("/").expect("connected");
    h.pump();
    assert_eq!(h.endpoint.recovery_store_size().1, 0);

    // A ping timeout keeps it.
    let c = connect(&mut h);
    h.advance(Duration::from_secs(501));
    assert!(h.conns.values().all(|conn| conn.is_closed()));
    assert_eq!(h.endpoint.recovery_store_size().1, 1);
    let _ = c;
}

#[test]
fn acknowledged_and_volatile_packets_are_not_stored() {
    let mut h = harness();
    let a = connect(&mut h);
    let with_ack = Packet::event(Str::from("/"), "news", &(1,), Some(7)).expect("encodes");
    let plan = h
        .endpoint
        .broadcast(h.now, &with_ack, &BroadcastOptions::all());
    assert_eq!(plan.encoded.text().as_str(), "427[\"news\",1]");
    let plan = h.endpoint.broadcast(
        h.now,
        &event("news", &(2,)),
        &BroadcastOptions::all().volatile(),
    );
    assert_eq!(plan.encoded.text().as_str(), "42[\"news\",2]");
    assert_eq!(h.endpoint.recovery_store_size().0, 0);
    // Binary events are stored, the offset after the placeholders' data.
    let bin = event("news", &(bytes::Bytes::from_static(b"\x01\x02"),));
    let plan = h.endpoint.broadcast(h.now, &bin, &BroadcastOptions::all());
    let text = plan.encoded.text().as_str();
    assert!(
        text.starts_with("451-[\"news\",{\"_placeholder\":true,\"num\":0},\""),
        "{text}"
    );
    assert_eq!(plan.encoded.attachments().len(), 1);
    assert_eq!(h.endpoint.recovery_store_size().0, 1);
    let _ = a;
}

#[test]
fn the_store_keeps_its_bounds_and_says_when_a_session_missed_too_much() {
    // At most three packets in total.
    let mut h = Harness::new(config(Recovery::default().with_store_bounds(3, usize::MAX)));
    let a = connect(&mut h);
    broadcast(&mut h, 1, BroadcastOptions::all());
    let last = events(&h.text_frames(a.ws))[0].1.clone();
    drop_transport(&mut h, &a);
    for n in 2..6 {
        broadcast(&mut h, n, BroadcastOptions::all());
    }
    assert_eq!(h.endpoint.recovery_store_size().0, 3);
    let (back, replay) = resume(&mut h, &a.pid, &last);
    assert_ne!(
        back.id, a.id,
        "its offset was evicted: a new session, not holes"
    );
    assert!(replay.is_empty());
    assert_eq!(h.not_recovered, [NotRecovered::UnknownOffset]);

    // At most two missed packets for one session.
    let mut h = Harness::new(config(
        Recovery::default().with_missed_bounds(2, usize::MAX),
    ));
    let a = connect(&mut h);
    broadcast(&mut h, 1, BroadcastOptions::all());
    let last = events(&h.text_frames(a.ws))[0].1.clone();
    drop_transport(&mut h, &a);
    for n in 2..5 {
        broadcast(&mut h, n, BroadcastOptions::all());
    }
    let (back, _) = resume(&mut h, &a.pid, &last);
    assert_ne!(back.id, a.id);
    assert_eq!(h.not_recovered, [NotRecovered::TooMuchMissed]);

    // Missed bytes are bounded by half the send buffer too.
    let mut h = Harness::new(config(Recovery::default()).with_max_buffer_size(400));
    let a = connect(&mut h);
    broadcast(&mut h, 1, BroadcastOptions::all());
    let last = events(&h.text_frames(a.ws))[0].1.clone();
    drop_transport(&mut h, &a);
    for n in 2..10 {
        broadcast(&mut h, n, BroadcastOptions::all());
    }
    let (back, _) = resume(&mut h, &a.pid, &last);
    assert_ne!(back.id, a.id);
    assert_eq!(h.not_recovered, [NotRecovered::TooMuchMissed]);

    // At most one saved session: the older one goes.
    let mut h = Harness::new(config(Recovery::default().with_max_sessions(1)));
    let a = connect(&mut h);
    let b = connect(&mut h);
    broadcast(&mut h, 1, BroadcastOptions::all());
    let a_last = events(&h.text_frames(a.ws))[0].1.clone();
    let b_last = events(&h.text_frames(b.ws))[0].1.clone();
    drop_transport(&mut h, &a);
    drop_transport(&mut h, &b);
    assert_eq!(h.endpoint.recovery_store_size().1, 1);
    let (a2, _) = resume(&mut h, &a.pid, &a_last);
    assert_ne!(a2.id, a.id);
    let (b2, _) = resume(&mut h, &b.pid, &b_last);
    assert_eq!(b2.id, b.id);

    // A total in bytes: packets and sessions together stay under it.
    let limit = 4096;
    let mut h = Harness::new(config(
        Recovery::default().with_store_bounds(usize::MAX, limit),
    ));
    let clients: Vec<Client> = (0..4).map(|_| connect(&mut h)).collect();
    for n in 0..100 {
        broadcast(&mut h, n, BroadcastOptions::all());
        assert!(h.endpoint.recovery_store_size().2 <= limit);
    }
    for c in &clients {
        drop_transport(&mut h, c);
        assert!(h.endpoint.recovery_store_size().2 <= limit);
    }
    let (packets, sessions, bytes) = h.endpoint.recovery_store_size();
    assert!(packets > 0 && packets < 100, "{packets}");
    assert_eq!(sessions, 4);
    assert!(bytes <= limit);
}

#[test]
fn data_saved_with_a_session_comes_back_with_it() {
    let mut h = harness();
    let a = connect(&mut h);
    broadcast(&mut h, 1, BroadcastOptions::all());
    let last = events(&h.text_frames(a.ws))[0].1.clone();
    drop_transport(&mut h, &a);
    assert!(
        h.endpoint
            .set_session_data(&a.pid, Str::from("{\"user\":\"ann\"}"))
    );
    assert!(!h.endpoint.set_session_data("unknown", Str::from("1")));
    assert!(
        h.endpoint
            .keep_with_session(&a.pid, socketio_proto::Kept(Box::new(42u32)))
    );

    let (sid, ws, resume) = ask_to_resume(&mut h, &a.pid, &last);
    let mut restored = h.endpoint.restore(h.now, "/", &resume).expect("restored");
    assert_eq!(restored.data.as_deref(), Some("{\"user\":\"ann\"}"));
    let kept = restored.kept.take().expect("kept").0.downcast::<u32>();
    assert_eq!(kept.ok().map(|k| *k), Some(42));
    assert_eq!(restored.sid.as_str(), a.id);
    assert!(restored.missed.is_empty());
    let id = h.conn(&sid).accept_restored(&restored).expect("accepted");
    assert_eq!(id.as_str(), a.id);
    let frames = h.text_frames(ws);
    assert_eq!(
        frames,
        [format!("40{{\"sid\":\"{}\",\"pid\":\"{}\"}}", a.id, a.pid)]
    );
}

#[test]
fn broadcasts_from_other_nodes_are_stored_with_offsets_of_this_node() {
    let mut a = Harness::seeded(config(Recovery::default()), 1);
    let mut b = Harness::seeded(config(Recovery::default()), 2);
    a.endpoint.set_clustered(true);
    b.endpoint.set_clustered(true);
    let client = connect(&mut b);
    // A broadcast from A: published as the application gave it, no offset.
    let plan = a
        .endpoint
        .broadcast(a.now, &event("news", &(1,)), &BroadcastOptions::all());
    assert!(plan.targets.is_empty());
    let op = a.endpoint.poll_cluster_op().expect("published");
    let socketio_proto::ClusterOp::Broadcast { packet, .. } = &op else {
        panic!("{op:?}")
    };
    assert_eq!(
        packet.payload().expect("data").json().as_str(),
        "[\"news\",1]"
    );
    let socketio_proto::ClusterAction::Broadcast(plan) = b.endpoint.handle_cluster_op(b.now, op)
    else {
        panic!("a broadcast")
    };
    for handle in plan.targets {
        b.conns
            .get_mut(&handle)
            .expect("connection")
            .send_encoded("/", &plan.encoded, false)
            .expect("sent");
    }
    let got = events(&b.text_frames(client.ws));
    assert_eq!(got[0].0, 1);
    assert_eq!(b.endpoint.recovery_store_size().0, 1);
    drop_transport(&mut b, &client);
    let (back, _) = resume(&mut b, &client.pid, &got[0].1);
    assert_eq!(back.id, client.id);
}

#[test]
fn old_clients_get_no_private_session_id() {
    let mut h = Harness::new(config(Recovery::default()).with_eio3(true));
    let id = h.request(socketio_proto::Request::get(
        "/socket.io/?EIO=3&transport=polling&b64=1",
    ));
    let sid = harness::sid_of(&h.body(id));
    let poll = h.request(socketio_proto::Request::get(&format!(
        "/socket.io/?EIO=3&transport=polling&sid={sid}"
    )));
    let body = h.body(poll);
    assert_eq!(body, "2:40");
    assert!(!body.contains("pid"), "{body}");
}

#[test]
fn a_client_that_got_no_stored_packet_recovers_from_when_it_joined() {
    let mut h = harness();
    broadcast(&mut h, 0, BroadcastOptions::all());
    let a = connect(&mut h);
    // Nothing stored reached it: the official client then sends no offset.
    drop_transport(&mut h, &a);
    broadcast(&mut h, 1, BroadcastOptions::all());
    broadcast(&mut h, 2, BroadcastOptions::all());
    let (back, replay) = connect_with(&mut h, &format!("40{{\"pid\":\"{}\"}}", a.pid));
    assert_eq!(back.id, a.id);
    assert_eq!(
        events(&replay).iter().map(|e| e.0).collect::<Vec<_>>(),
        [1, 2],
        "from when it joined, not before"
    );
}

#[test]
fn an_offset_from_an_earlier_session_replays_nothing_from_before_the_socket_joined() {
    let mut h = harness();
    let old = connect(&mut h);
    broadcast(&mut h, 1, BroadcastOptions::all());
    let stale = events(&h.text_frames(old.ws))[0].1.clone();
    // The client's next session: its offset is still the one of the first.
    let a = connect(&mut h);
    broadcast(&mut h, 2, BroadcastOptions::all().to(old.id.clone()));
    drop_transport(&mut h, &a);
    broadcast(&mut h, 3, BroadcastOptions::all());
    let (back, replay) = resume(&mut h, &a.pid, &stale);
    assert_eq!(back.id, a.id);
    assert_eq!(events(&replay).iter().map(|e| e.0).collect::<Vec<_>>(), [3]);
}

#[test]
fn a_second_drop_during_the_replay_loses_nothing() {
    let mut h = harness();
    let a = connect(&mut h);
    broadcast(&mut h, 1, BroadcastOptions::all());
    let last = events(&h.text_frames(a.ws))[0].1.clone();
    drop_transport(&mut h, &a);
    for n in 2..5 {
        broadcast(&mut h, n, BroadcastOptions::all());
    }
    let (back, replay) = resume(&mut h, &a.pid, &last);
    let replay = events(&replay);
    assert_eq!(replay.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 3, 4]);
    // The client read only the first of them before the next drop.
    drop_transport(&mut h, &back);
    let (again, replay) = resume(&mut h, &a.pid, &replay[0].1);
    assert_eq!(again.id, a.id);
    assert_eq!(
        events(&replay).iter().map(|e| e.0).collect::<Vec<_>>(),
        [3, 4]
    );
    // Nor without an offset (it read none of them).
    drop_transport(&mut h, &again);
    let (third, replay) = connect_with(&mut h, &format!("40{{\"pid\":\"{}\"}}", a.pid));
    assert_eq!(third.id, a.id);
    assert_eq!(
        events(&replay).iter().map(|e| e.0).collect::<Vec<_>>(),
        [3, 4]
    );
}

#[test]
fn a_recovered_socket_is_in_its_own_room_and_an_offset_from_a_room_it_left_counts() {
    let mut h = harness();
    let a = connect(&mut h);
    let id = Str::from(a.id.clone());
    h.endpoint.join("/", &id, "old");
    broadcast(&mut h, 1, BroadcastOptions::all().to("old"));
    let last = events(&h.text_frames(a.ws))[0].1.clone();
    h.endpoint.leave("/", &id, "old");
    h.endpoint.leave("/", &id, &a.id);
    drop_transport(&mut h, &a);
    broadcast(&mut h, 2, BroadcastOptions::all());
    broadcast(&mut h, 3, BroadcastOptions::all().to("old"));
    let (back, replay) = resume(&mut h, &a.pid, &last);
    assert_eq!(back.id, a.id);
    assert_eq!(events(&replay).iter().map(|e| e.0).collect::<Vec<_>>(), [2]);
    assert_eq!(h.endpoint.rooms_of("/", &a.id), [id]);
}

#[test]
fn data_makes_room_by_dropping_old_packets() {
    let mut h = Harness::new(config(
        Recovery::default().with_store_bounds(usize::MAX, 8192),
    ));
    let a = connect(&mut h);
    for n in 0..40 {
        broadcast(&mut h, n, BroadcastOptions::all());
    }
    let last = events(&h.text_frames(a.ws)).pop().expect("a packet").1;
    drop_transport(&mut h, &a);
    let (_, _, before) = h.endpoint.recovery_store_size();
    assert!(before > 8192 - 600, "the store is nearly full: {before}");
    let data = format!("\"{}\"", "x".repeat(500));
    assert!(h.endpoint.set_session_data(&a.pid, Str::from(data.clone())));
    assert!(h.endpoint.recovery_store_size().2 <= 8192);
    // Its last packet was kept: it recovers, with its data.
    let (_, _, resume) = ask_to_resume(&mut h, &a.pid, &last);
    let restored = h.endpoint.restore(h.now, "/", &resume).expect("restored");
    assert_eq!(restored.data.as_deref(), Some(data.as_str()));
}

#[test]
fn missed_packets_that_do_not_fit_change_nothing() {
    let mut h = Harness::new(config(Recovery::default()).with_max_buffer_size(1000));
    let a = connect(&mut h);
    broadcast(&mut h, 1, BroadcastOptions::all());
    let last = events(&h.text_frames(a.ws))[0].1.clone();
    drop_transport(&mut h, &a);
    for n in 2..6 {
        broadcast(&mut h, n, BroadcastOptions::all());
    }
    let (sid, _, resume) = ask_to_resume(&mut h, &a.pid, &last);
    let restored = h.endpoint.restore(h.now, "/", &resume).expect("restored");
    assert_eq!(restored.missed.len(), 4);
    // Something else fills the buffer first (a WebSocket's buffer holds
    // what the socket has not taken yet).
    let conn = h.conn(&sid);
    assert!(conn.awaits_connect("/"));
    conn.send_message(socketio_proto::Data::Text(Str::from("y".repeat(900))))
        .expect("queued");
    assert_eq!(
        conn.accept_restored(&restored),
        Err(socketio_proto::SendError::NoRoom)
    );
    assert!(conn.awaits_connect("/"), "still waiting for an answer");
    let id = conn.accept("/").expect("a new session");
    assert_ne!(id.as_str(), a.id);
}

/// A cluster whose adapter owns recovery: this node's endpoint, one
/// client on it.
fn cluster_harness(recovery: Recovery) -> (Harness, Client) {
    let mut h = Harness::new(config(recovery));
    h.endpoint.set_clustered(true);
    h.endpoint.set_cluster_recovery(true);
    assert!(h.endpoint.cluster_recovery());
    let client = connect(&mut h);
    (h, client)
}

/// Delivers a plan to its connections, as a binding does.
fn deliver(h: &mut Harness, plan: &socketio_proto::Broadcast) {
    for handle in &plan.targets {
        let conn = h.conns.get_mut(handle).expect("connection");
        conn.send_encoded("/", &plan.encoded, plan.volatile)
            .expect("sent");
    }
    h.pump();
}

fn missed(n: u32, opts: BroadcastOptions, offset: &str) -> MissedBroadcast {
    MissedBroadcast {
        packet: event("news", &(n,)),
        opts,
        offset: Str::from(offset),
    }
}

#[test]
fn with_the_cluster_owning_recovery_stored_broadcasts_wait_for_their_offset() {
    let (mut h, client) = cluster_harness(Recovery::default());
    let plan = h
        .endpoint
        .broadcast(h.now, &event("news", &(1,)), &BroadcastOptions::all());
    assert!(plan.deferred && plan.targets.is_empty());
    let op = h.endpoint.poll_cluster_op().expect("published");
    assert!(h.text_frames(client.ws).is_empty(), "not delivered yet");
    // The cluster gives it back in its order: delivered with that offset.
    let ClusterAction::Broadcast(plan) =
        h.endpoint
            .handle_cluster_op_at(h.now, op.clone(), "1700000000000-0", true)
    else {
        panic!("a broadcast")
    };
    assert!(plan.stored && !plan.deferred);
    deliver(&mut h, &plan);
    assert_eq!(
        events(&h.text_frames(client.ws)),
        [(1, "1700000000000-0".to_owned())]
    );
    // A volatile one goes out at once, with no offset; given back, it is
    // not delivered again.
    let volatile = BroadcastOptions::all().volatile();
    let plan = h
        .endpoint
        .broadcast(h.now, &event("news", &(2,)), &volatile);
    assert!(!plan.deferred && plan.targets.len() == 1);
    deliver(&mut h, &plan);
    assert_eq!(h.text_frames(client.ws), ["42[\"news\",2]"]);
    let op = h.endpoint.poll_cluster_op().expect("published");
    assert!(matches!(
        h.endpoint
            .handle_cluster_op_at(h.now, op, "1700000000001-0", true),
        ClusterAction::Done
    ));
    // One the cluster could not take is delivered after all, with no
    // offset; a volatile one is not delivered twice.
    h.endpoint
        .broadcast(h.now, &event("news", &(3,)), &BroadcastOptions::all());
    let op = h.endpoint.poll_cluster_op().expect("published");
    let ClusterAction::Broadcast(plan) = h.endpoint.handle_unpublished_op(h.now, op) else {
        panic!("a broadcast")
    };
    assert!(!plan.stored);
    deliver(&mut h, &plan);
    assert_eq!(h.text_frames(client.ws), ["42[\"news\",3]"]);
    h.endpoint
        .broadcast(h.now, &event("news", &(4,)), &volatile);
    let op = h.endpoint.poll_cluster_op().expect("published");
    assert!(matches!(
        h.endpoint.handle_unpublished_op(h.now, op),
        ClusterAction::Done
    ));
    // Nothing is kept by the endpoint itself.
    assert_eq!(h.endpoint.recovery_store_size(), (0, 0, 0));
}

#[test]
fn with_the_cluster_owning_recovery_a_session_goes_to_the_cluster_and_comes_back() {
    let (mut h, client) = cluster_harness(Recovery::default());
    h.endpoint.join("/", &Str::from(client.id.as_str()), "r");
    drop_transport(&mut h, &client);
    assert!(
        h.endpoint
            .set_session_data(&client.pid, Str::from("{\"user\":\"ann\"}"))
    );
    let op = h.endpoint.poll_cluster_op().expect("a session to keep");
    let ClusterOp::PersistSession {
        nsp,
        sid,
        pid,
        rooms,
        data,
    } = op
    else {
        panic!("{op:?}")
    };
    assert_eq!((&*nsp, &*sid, &*pid), ("/", &*client.id, &*client.pid));
    let mut want = vec![Str::from("r"), sid.clone()];
    want.sort();
    assert_eq!(rooms, want);
    assert_eq!(data.as_deref(), Some("{\"user\":\"ann\"}"));
    assert_eq!(h.endpoint.recovery_store_size(), (0, 0, 0));

    // Another node's client comes back here with the session the cluster
    // kept, and what the cluster sent since its offset.
    let (conn_sid, ws, _) = ask_to_resume(&mut h, &client.pid, "1-0");
    let session = ClusterSession {
        sid,
        pid,
        rooms,
        data,
        nsp: Some(Str::from("/")),
        missed: vec![
            missed(2, BroadcastOptions::all(), "2-0"),
            missed(3, BroadcastOptions::all().to("elsewhere"), "3-0"),
            missed(4, BroadcastOptions::all().volatile(), "4-0"),
            missed(5, BroadcastOptions::all().except("r"), "5-0"),
            missed(6, BroadcastOptions::all().to("r"), "6-0"),
        ],
    };
    let restored = h
        .endpoint
        .restore_from_cluster("/", session.clone(), false)
        .expect("restored");
    assert_eq!(restored.missed.len(), 2);
    let id = h.conn(&conn_sid).accept_restored(&restored).expect("ok");
    assert_eq!(id.as_str(), client.id);
    let mut frames = h.text_frames(ws);
    assert_eq!(
        frames.pop(),
        Some(format!(
            "40{{\"sid\":\"{}\",\"pid\":\"{}\"}}",
            client.id, client.pid
        ))
    );
    assert_eq!(
        events(&frames),
        [(2, "2-0".to_owned()), (6, "6-0".to_owned())]
    );
    h.pump();
    // Back in its rooms; and not restored twice while it is connected.
    let rooms = h.endpoint.rooms_of("/", &client.id);
    assert!(rooms.iter().any(|r| &**r == "r"), "{rooms:?}");
    assert_eq!(
        h.endpoint.restore_from_cluster("/", session, false).err(),
        Some(NotRecovered::UnknownSession)
    );
}

#[test]
fn with_the_cluster_owning_recovery_the_replay_keeps_its_bounds() {
    let (mut h, client) = cluster_harness(Recovery::default().with_missed_bounds(2, 1 << 20));
    drop_transport(&mut h, &client);
    let session = |n: u32| ClusterSession {
        sid: Str::from(client.id.as_str()),
        pid: Str::from(client.pid.as_str()),
        rooms: vec![Str::from(client.id.as_str())],
        data: None,
        nsp: Some(Str::from("/")),
        missed: (0..n)
            .map(|i| missed(i, BroadcastOptions::all(), &format!("{i}-1")))
            .collect(),
    };
    assert_eq!(
        h.endpoint
            .restore_from_cluster("/", session(3), false)
            .err(),
        Some(NotRecovered::TooMuchMissed)
    );
    assert_eq!(
        h.endpoint
            .restore_from_cluster("/", session(2), false)
            .map(|r| r.missed.len()),
        Ok(2)
    );
    // Without the cluster owning it, nothing comes from the cluster.
    h.endpoint.set_cluster_recovery(false);
    assert_eq!(
        h.endpoint
            .restore_from_cluster("/", session(0), false)
            .err(),
        Some(NotRecovered::Off)
    );
}

#[test]
fn a_session_the_cluster_kept_is_given_back_on_its_own_namespace_only() {
    let (mut h, client) = cluster_harness(Recovery::default());
    drop_transport(&mut h, &client);
    let session = |nsp: Option<&str>| ClusterSession {
        sid: Str::from(client.id.as_str()),
        pid: Str::from(client.pid.as_str()),
        rooms: vec![Str::from(client.id.as_str())],
        data: None,
        nsp: nsp.map(Str::from),
        missed: Vec::new(),
    };
    // Saved on `/`: never given back on `/admin`, with its middlewares
    // skipped or not.
    for middlewares_ran in [false, true] {
        assert_eq!(
            h.endpoint
                .restore_from_cluster("/admin", session(Some("/")), middlewares_ran)
                .err(),
            Some(NotRecovered::OtherNamespace)
        );
    }
    // Saved without its namespace (by a server of the reference): given
    // back only once the namespace's middlewares ran.
    assert_eq!(
        h.endpoint
            .restore_from_cluster("/admin", session(None), false)
            .err(),
        Some(NotRecovered::OtherNamespace)
    );
    assert!(
        h.endpoint
            .restore_from_cluster("/", session(None), true)
            .is_ok()
    );
    assert!(
        h.endpoint
            .restore_from_cluster("/", session(Some("/")), false)
            .is_ok()
    );
}
