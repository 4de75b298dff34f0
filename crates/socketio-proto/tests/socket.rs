//! Socket.IO scenarios: namespaces, events, acks, rooms, broadcasts,
//! disconnections, bounded buffers.

mod harness;

use std::time::Duration;

use harness::Harness;
use socketio_proto::{
    BroadcastOptions, Config, DisconnectReason, Event, Packet, Payload, RequestId, SendError, Str,
};

fn config() -> Config {
    Config::default()
        .with_heartbeat(Duration::from_secs(300), Duration::from_secs(200))
        .with_connect_timeout(Duration::from_millis(1000))
}

/// A WebSocket session joined to `/`; returns its sid, WebSocket and socket id.
fn joined(h: &mut Harness) -> (String, RequestId, String) {
    let (sid, ws) = h.open_websocket();
    h.ws_text(&sid, ws, "40");
    let frames = h.text_frames(ws);
    assert_eq!(frames.len(), 1, "{frames:?}");
    let socket_id = harness::sid_of(&frames[0]);
    assert_ne!(socket_id, sid, "socket ids differ from the engine sid");
    assert_eq!(frames[0], format!("40{{\"sid\":\"{socket_id}\"}}"));
    h.take_events();
    (sid, ws, socket_id)
}

fn event(nsp: &str, name: &str, args: &impl serde::Serialize) -> Packet {
    Packet::event(Str::from(nsp.to_owned()), name, args, None).expect("encodes")
}

#[test]
fn connect_events_and_acks_from_the_client() {
    let mut h = Harness::new(config());
    let (sid, ws, _) = joined(&mut h);
    h.ws_text(&sid, ws, "42[\"chat\",\"hi\",{\"n\":1}]");
    h.ws_text(&sid, ws, "421[\"chat\",\"with ack\"]");
    assert_eq!(
        h.event_names(),
        [
            "message / [\"chat\",\"hi\",{\"n\":1}] None",
            "message / [\"chat\",\"with ack\"] Some(1)"
        ]
    );
    let args = Payload::from_value(&("ok", 2)).expect("encodes");
    h.conn(&sid).ack("/", 1, args).expect("acked");
    assert_eq!(h.text_frames(ws), ["431[\"ok\",2]"]);
}

#[test]
fn typed_arguments_come_out_of_the_event() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Msg {
        room: String,
        text: String,
    }
    let mut h = Harness::new(config());
    let (sid, ws, _) = joined(&mut h);
    h.ws_text(&sid, ws, r#"42["message",{"room":"a","text":"hello"}]"#);
    let events = h.take_events();
    let Event::Message(m) = &events[0] else {
        panic!("{events:?}")
    };
    let (msg,): (Msg,) = m.args().expect("typed");
    assert_eq!(
        msg,
        Msg {
            room: "a".into(),
            text: "hello".into()
        }
    );
}

#[test]
fn acks_to_the_server_fire_once_and_time_out() {
    let mut h = Harness::new(config());
    let (sid, ws, _) = joined(&mut h);
    let now = h.now;
    let first = h
        .conn(&sid)
        .emit_with_ack(
            now,
            event("/", "q", &(1,)),
            Duration::from_millis(500),
            true,
        )
        .expect("sent");
    let second = h
        .conn(&sid)
        .emit_with_ack(
            now,
            event("/", "q", &(2,)),
            Duration::from_millis(500),
            true,
        )
        .expect("sent");
    h.pump();
    assert_eq!(
        h.text_frames(ws),
        [
            format!("42{first}[\"q\",1]"),
            format!("42{second}[\"q\",2]")
        ]
    );
    h.ws_text(&sid, ws, &format!("43{first}[\"a\"]"));
    // The same ack again, and an unknown one: ignored.
    h.ws_text(&sid, ws, &format!("43{first}[\"b\"]"));
    h.ws_text(&sid, ws, "4399[\"c\"]");
    assert_eq!(h.event_names(), [format!("ack {first} [\"a\"]")]);
    h.advance(Duration::from_millis(499));
    assert!(h.event_names().is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.event_names(), [format!("ack-timeout {second}")]);
    // A late ack after the timeout is ignored too.
    h.ws_text(&sid, ws, &format!("43{second}[\"late\"]"));
    assert!(h.event_names().is_empty());
    assert!(!h.conn(&sid).is_closed());
}

#[test]
fn an_unknown_namespace_is_refused_and_the_connection_stays() {
    let mut h = Harness::new(config());
    let (sid, ws, _) = joined(&mut h);
    h.ws_text(&sid, ws, "40/random,");
    assert_eq!(
        h.text_frames(ws),
        ["44/random,{\"message\":\"Invalid namespace\"}"]
    );
    assert!(!h.conn(&sid).is_closed());
    // A namespace written without its comma is read the same way.
    h.endpoint.add_namespace("/custom");
    h.ws_text(&sid, ws, "40/custom");
    let frames = h.text_frames(ws);
    assert!(frames[0].starts_with("40/custom,{\"sid\":\""), "{frames:?}");
}

#[test]
fn a_middleware_refusal_carries_message_and_data() {
    let mut h = Harness::new(config());
    h.auto_accept = false;
    let (sid, ws) = h.open_websocket();
    h.ws_text(&sid, ws, "40{\"token\":\"bad\"}");
    let events = h.take_events();
    let Event::ConnectRequest { nsp, auth, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        auth.as_ref().map(|a| a.json().to_string()).as_deref(),
        Some("{\"token\":\"bad\"}")
    );
    let data = serde_json::json!({"retry": false});
    h.conn(&sid)
        .reject(nsp, "not authorized", Some(&data))
        .expect("refused");
    h.pump();
    assert_eq!(
        h.text_frames(ws),
        ["44{\"message\":\"not authorized\",\"data\":{\"retry\":false}}"]
    );
    assert_eq!(
        h.conn(&sid).accept("/"),
        Err(SendError::NoConnectRequest),
        "a request is answered once"
    );
}

#[test]
fn protocol_violations_close_the_connection() {
    for bad in [
        "42[\"x\"]",         // `/` not joined yet... after joining below
        "40",                // duplicate connect
        "44{\"message\":1}", // connect_error from a client
        "42/other,[\"x\"]",  // namespace not joined
        "42[\"connect\"]",   // reserved event name
        "42{\"not\":\"an array\"}",
        "47",
        "42[\"x\"",
    ]
    .iter()
    .skip(1)
    {
        let mut h = Harness::new(config());
        let (sid, ws, _) = joined(&mut h);
        h.ws_text(&sid, ws, bad);
        let names = h.event_names();
        assert!(
            names.contains(&"disconnected / forced close".to_owned())
                && names.contains(&"closed forced close".to_owned()),
            "{bad}: {names:?}"
        );
        assert!(h.closed_ws.contains(&ws), "{bad}");
        assert_eq!(h.endpoint.session_count(), 0);
        assert_eq!(h.endpoint.socket_count("/"), 0);
    }
    // Before joining, an event for `/` is a packet for a namespace not joined.
    let mut h = Harness::new(config());
    let (sid, ws) = h.open_websocket();
    h.ws_text(&sid, ws, "42[\"x\"]");
    assert!(h.event_names().contains(&"closed forced close".to_owned()));
}

#[test]
fn attachments_beyond_the_limit_and_stray_binaries_are_errors() {
    let mut h = Harness::new(config().with_max_attachments(2));
    let (sid, ws, _) = joined(&mut h);
    h.ws_text(&sid, ws, "453-[\"x\",1]");
    assert!(h.event_names().contains(&"closed forced close".to_owned()));

    let mut h = Harness::new(config());
    let (sid, ws, _) = joined(&mut h);
    h.ws_send(
        &sid,
        ws,
        socketio_proto::Data::Binary(bytes::Bytes::from_static(b"\x01")),
    );
    assert!(h.event_names().contains(&"closed forced close".to_owned()));

    let mut h = Harness::new(config());
    let (sid, ws, _) = joined(&mut h);
    h.ws_text(&sid, ws, "451-[\"x\",{\"_placeholder\":true,\"num\":0}]");
    h.ws_text(&sid, ws, "42[\"text while waiting\"]");
    assert!(h.event_names().contains(&"closed forced close".to_owned()));
}

#[test]
fn no_namespace_within_the_connect_timeout_closes() {
    let mut h = Harness::new(config());
    let (_sid, ws) = h.open_websocket();
    h.advance(Duration::from_millis(999));
    assert!(h.event_names().is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.event_names(), ["closed forced close"]);
    assert!(h.closed_ws.contains(&ws));
    // Joining in time keeps the connection.
    let mut h = Harness::new(config());
    let (sid, _ws, _) = joined(&mut h);
    h.advance(Duration::from_millis(2000));
    assert!(!h.conn(&sid).is_closed());
}

#[test]
fn the_connect_timeout_ends_at_the_first_connect() {
    // As the reference's client clears its timer at the first connect: a
    // session whose only socket leaves before the timeout stays open.
    let mut h = Harness::new(config());
    let (sid, ws, _) = joined(&mut h);
    h.advance(Duration::from_millis(500));
    h.ws_text(&sid, ws, "41");
    assert_eq!(
        h.event_names(),
        ["disconnected / client namespace disconnect"]
    );
    h.advance(Duration::from_millis(1000));
    assert!(!h.conn(&sid).is_closed());
    assert!(h.event_names().is_empty());
}

#[test]
fn namespace_disconnects_both_ways() {
    let mut h = Harness::new(config());
    let (sid, ws, _) = joined(&mut h);
    h.endpoint.add_namespace("/admin");
    h.ws_text(&sid, ws, "40/admin,");
    h.text_frames(ws);
    h.take_events();
    // The client leaves `/admin`; the connection stays.
    h.ws_text(&sid, ws, "41/admin,");
    assert_eq!(
        h.event_names(),
        ["disconnected /admin client namespace disconnect"]
    );
    assert_eq!(h.endpoint.socket_count("/admin"), 0);
    // The server makes the socket on `/` leave.
    h.conn(&sid).disconnect("/").expect("connected");
    h.pump();
    assert_eq!(h.text_frames(ws), ["41"]);
    assert_eq!(
        h.event_names(),
        ["disconnected / server namespace disconnect"]
    );
    assert!(!h.conn(&sid).is_closed());
    assert_eq!(h.conn(&sid).disconnect("/"), Err(SendError::NotConnected));
}

#[test]
fn closing_the_connection_tells_every_socket() {
    let mut h = Harness::new(config());
    let (sid, ws, _) = joined(&mut h);
    h.endpoint.add_namespace("/admin");
    h.ws_text(&sid, ws, "40/admin,");
    h.text_frames(ws);
    h.take_events();
    let now = h.now;
    h.conn(&sid)
        .close(now, DisconnectReason::ServerShuttingDown);
    h.pump();
    // No DISCONNECT packets: the client sees its transport close and
    // reconnects (to another server).
    assert!(h.text_frames(ws).is_empty());
    assert!(h.closed_ws.contains(&ws));
    assert_eq!(
        h.event_names(),
        [
            "disconnected / server shutting down",
            "disconnected /admin server shutting down",
            "closed server shutting down"
        ]
    );
}

#[test]
fn closing_a_polling_connection_drains_then_sends_close() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    h.post(&sid, "40");
    let get = h.get(&sid);
    h.body(get);
    h.take_events();
    let now = h.now;
    h.conn(&sid).close(now, DisconnectReason::ForcedServerClose);
    h.pump();
    // The DISCONNECT first, then the close packet in a poll of its own.
    let get = h.get(&sid);
    assert_eq!(h.body(get), "41");
    assert_eq!(h.endpoint.session_count(), 1);
    let get = h.get(&sid);
    assert_eq!(h.body(get), "1");
    assert_eq!(
        h.event_names(),
        [
            "disconnected / forced server close",
            "closed forced server close"
        ]
    );
    assert_eq!(h.endpoint.session_count(), 0);
}

#[test]
fn a_closing_polling_connection_has_no_overdue_timer() {
    // Waiting for the poll that takes the close packet, the connection
    // sends no ping, and no deadline stays in the past (a binding would
    // call `handle_timeout` again and again).
    let mut h = Harness::new(
        config().with_heartbeat(Duration::from_millis(300), Duration::from_millis(200)),
    );
    let sid = h.open_polling();
    h.post(&sid, "40");
    let get = h.get(&sid);
    h.body(get);
    h.take_events();
    let now = h.now;
    h.conn(&sid).close(now, DisconnectReason::ForcedServerClose);
    h.pump();
    h.now += Duration::from_millis(400);
    let now = h.now;
    h.conn(&sid).handle_timeout(now);
    assert!(h.conn(&sid).poll_timeout().is_some_and(|t| t > now));
    let get = h.get(&sid);
    assert_eq!(h.body(get), "41");
    let get = h.get(&sid);
    assert_eq!(h.body(get), "1");
}

#[test]
fn closing_with_a_pending_poll_sends_the_disconnect_before_the_close() {
    // Were they in one payload, the official client would handle the close
    // packet first and report "transport close" instead of
    // "io server disconnect".
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    h.post(&sid, "40");
    let get = h.get(&sid);
    h.body(get);
    let pending = h.get(&sid);
    assert!(h.answer(pending).is_none());
    h.take_events();
    let now = h.now;
    h.conn(&sid).close(now, DisconnectReason::ForcedServerClose);
    h.pump();
    assert_eq!(h.body(pending), "41");
    let get = h.get(&sid);
    assert_eq!(h.body(get), "1");
    assert_eq!(
        h.event_names(),
        [
            "disconnected / forced server close",
            "closed forced server close"
        ]
    );
    let get = h.get(&sid);
    assert_eq!(h.answer(get).expect("answered at once").status, 400);
}

#[test]
fn broadcasts_reach_rooms_and_skip_exceptions() {
    let mut h = Harness::new(config());
    let a = joined(&mut h);
    let b = joined(&mut h);
    let c = joined(&mut h);
    h.endpoint.join("/", &Str::from(a.2.clone()), "room1");
    h.endpoint.join("/", &Str::from(b.2.clone()), "room1");
    h.endpoint.join("/", &Str::from(c.2.clone()), "room2");
    assert_eq!(
        h.endpoint.rooms_of("/", &a.2),
        vec![Str::from(a.2.clone()), Str::from("room1")]
            .into_iter()
            .fold(Vec::new(), |mut v, r| {
                v.push(r);
                v.sort();
                v
            })
    );

    let deliver = |h: &mut Harness, opts: BroadcastOptions| {
        let packet = event("/", "news", &("x",));
        let plan = h.endpoint.broadcast(h.now, &packet, &opts);
        for handle in plan.targets {
            let conn = h.conns.get_mut(&handle).expect("connection");
            conn.send_encoded("/", &plan.encoded, false).expect("sent");
        }
        h.pump();
        let got = |h: &mut Harness, ws| !h.text_frames(ws).is_empty();
        (got(h, a.1), got(h, b.1), got(h, c.1))
    };
    assert_eq!(deliver(&mut h, BroadcastOptions::all()), (true, true, true));
    assert_eq!(
        deliver(&mut h, BroadcastOptions::all().to("room1")),
        (true, true, false)
    );
    assert_eq!(
        deliver(&mut h, BroadcastOptions::all().to("room1").to("room2")),
        (true, true, true)
    );
    assert_eq!(
        deliver(
            &mut h,
            BroadcastOptions::all().to("room1").except(a.2.clone())
        ),
        (false, true, false)
    );
    assert_eq!(
        deliver(&mut h, BroadcastOptions::all().except("room1")),
        (false, false, true)
    );
    // Leaving a room, and disconnecting, take the socket out of the index.
    h.endpoint.leave("/", &Str::from(b.2.clone()), "room1");
    assert_eq!(
        deliver(&mut h, BroadcastOptions::all().to("room1")),
        (true, false, false)
    );
    h.ws_text(&a.0, a.1, "41");
    assert_eq!(
        deliver(&mut h, BroadcastOptions::all().to("room1")),
        (false, false, false)
    );
    assert_eq!(h.endpoint.socket_count("/"), 2);
    assert_eq!(
        h.endpoint.rooms("/").len(),
        3,
        "{:?}",
        h.endpoint.rooms("/")
    );
}

#[test]
fn a_socket_id_is_a_room_that_others_can_join_and_its_owner_leave() {
    let mut h = Harness::new(config());
    let a = joined(&mut h);
    let b = joined(&mut h);
    let c = joined(&mut h);
    let (sa, sb) = (Str::from(a.2.clone()), Str::from(b.2.clone()));
    let deliver = |h: &mut Harness, opts: BroadcastOptions| {
        let packet = event("/", "news", &("x",));
        let plan = h.endpoint.broadcast(h.now, &packet, &opts);
        for handle in plan.targets {
            let conn = h.conns.get_mut(&handle).expect("connection");
            conn.send_encoded("/", &plan.encoded, false).expect("sent");
        }
        h.pump();
        let got = |h: &mut Harness, ws| h.text_frames(ws).len();
        (got(h, a.1), got(h, b.1), got(h, c.1))
    };
    // A socket's id reaches that socket, once.
    assert_eq!(
        deliver(&mut h, BroadcastOptions::all().to(sa.clone())),
        (1, 0, 0)
    );
    // Another socket joins it: both get it, and the room is listed once.
    h.endpoint.join("/", &sb, sa.clone());
    assert_eq!(
        deliver(&mut h, BroadcastOptions::all().to(sa.clone())),
        (1, 1, 0)
    );
    assert_eq!(
        deliver(
            &mut h,
            BroadcastOptions::all().to(sa.clone()).to(sb.clone())
        ),
        (1, 1, 0)
    );
    assert!(h.endpoint.rooms_of("/", &b.2).contains(&sa));
    assert_eq!(
        h.endpoint.rooms("/").len(),
        3,
        "{:?}",
        h.endpoint.rooms("/")
    );
    // A joins its own room again: nothing changes.
    h.endpoint.join("/", &sa, sa.clone());
    assert_eq!(
        deliver(&mut h, BroadcastOptions::all().to(sa.clone())),
        (1, 1, 0)
    );
    // The owner leaves its own room: only the other member is left in it.
    h.endpoint.leave("/", &sa, &a.2);
    assert_eq!(
        deliver(&mut h, BroadcastOptions::all().to(sa.clone())),
        (0, 1, 0)
    );
    assert!(!h.endpoint.rooms_of("/", &a.2).contains(&sa));
    assert_eq!(
        deliver(&mut h, BroadcastOptions::all().except(sa.clone())),
        (1, 0, 1)
    );
    // B leaves it too: the room is gone.
    h.endpoint.leave("/", &sb, &a.2);
    assert_eq!(
        deliver(&mut h, BroadcastOptions::all().to(sa.clone())),
        (0, 0, 0)
    );
    assert!(!h.endpoint.rooms("/").contains(&sa));
    assert_eq!(h.endpoint.rooms("/").len(), 2);
    // Its owner joins it again.
    h.endpoint.join("/", &sa, sa.clone());
    assert_eq!(
        deliver(&mut h, BroadcastOptions::all().to(sa.clone())),
        (1, 0, 0)
    );
}

#[test]
fn volatile_packets_are_dropped_when_the_transport_cannot_take_them() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    h.post(&sid, "40");
    let get = h.get(&sid);
    h.body(get);
    // No poll waiting: a volatile packet is dropped, another is kept.
    let p = event("/", "tick", &(1,));
    assert_eq!(h.conn(&sid).emit(&p, true), Err(SendError::Dropped));
    h.conn(&sid).emit(&p, false).expect("buffered");
    let get = h.get(&sid);
    assert_eq!(h.body(get), "42[\"tick\",1]");
    // A poll waiting: the volatile packet goes.
    let get = h.get(&sid);
    h.conn(&sid).emit(&p, true).expect("sent");
    h.pump();
    assert_eq!(h.body(get), "42[\"tick\",1]");
}

#[test]
fn a_connection_over_its_buffer_bound_is_closed() {
    let mut h = Harness::new(config().with_max_buffer_size(1000));
    let (sid, ws, _) = joined(&mut h);
    let p = event("/", "big", &("x".repeat(100),));
    // The binding does not drain: the buffer fills.
    let mut sent = 0;
    let result = loop {
        match h.conn(&sid).emit(&p, false) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 100, "the bound holds");
    };
    assert_eq!(result, SendError::BufferFull);
    assert!(sent >= 8, "{sent}");
    assert!(h.conn(&sid).buffered_bytes() <= 1000);
    h.pump();
    assert!(
        h.event_names()
            .contains(&"closed transport error".to_owned())
    );
    assert!(h.closed_ws.contains(&ws));
}

#[test]
fn eio3_clients_speak_socketio_v4() {
    let mut h = Harness::new(config().with_eio3(true));
    let ws = h.request(socketio_proto::Request::websocket(
        "/socket.io/?EIO=3&transport=websocket",
    ));
    let frames = h.text_frames(ws);
    assert!(frames[0].starts_with("0{"), "{frames:?}");
    // The server joins `/` by itself and says so without a payload.
    assert_eq!(frames[1], "40");
    let sid = harness::sid_of(&frames[0]);
    // Auth rides in the namespace's query.
    h.endpoint.add_namespace("/admin");
    h.ws_text(&sid, ws, "40/admin?token=abc,");
    assert_eq!(h.text_frames(ws), ["40/admin,"]);
    let names = h.event_names();
    assert!(
        names.contains(&"connect-request /admin".to_owned()),
        "{names:?}"
    );
    // The client pings over the WebSocket; the server answers.
    h.ws_text(&sid, ws, "2");
    assert_eq!(h.text_frames(ws), ["3"]);
}

#[test]
fn every_output_is_deterministic_for_a_seed() {
    let run = || {
        let mut h = Harness::new(config());
        let (sid, ws, socket) = joined(&mut h);
        h.ws_text(&sid, ws, "42[\"x\"]");
        (sid, socket)
    };
    assert_eq!(run(), run());
}

/// The `compress` flag of an emit reaches the WebSocket frames it makes:
/// a packet with its attachments, an event awaiting an ack, a broadcast.
#[test]
fn the_compress_flag_reaches_the_frames() {
    use socketio_proto::socketio_packet::ProtocolVersion;
    use socketio_proto::{Encoded, Transmit};
    let mut h = Harness::new(config());
    let (sid, ws, _) = joined(&mut h);
    let flags = |h: &mut Harness| {
        let mut out = Vec::new();
        while let Some(t) = h.conn(&sid).poll_transmit() {
            if let Transmit::Frame {
                transport,
                compress,
                ..
            } = t
            {
                assert_eq!(transport, ws);
                out.push(compress);
            }
        }
        out
    };
    let binary = Packet::event(
        Str::from("/"),
        "file",
        &(bytes::Bytes::from_static(&[1, 2]),),
        None,
    )
    .expect("encodes");
    let off = Encoded::new(&binary, ProtocolVersion::V5).with_compress(false);
    assert!(!off.compress());
    h.conn(&sid).send_encoded("/", &off, false).expect("sent");
    assert_eq!(
        flags(&mut h),
        [false, false],
        "the header and its attachment"
    );
    h.conn(&sid)
        .emit(&event("/", "a", &(1,)), false)
        .expect("sent");
    assert_eq!(flags(&mut h), [true]);
    let now = h.now;
    h.conn(&sid)
        .emit_with_ack(now, event("/", "q", &(1,)), Duration::from_secs(1), false)
        .expect("sent");
    assert_eq!(flags(&mut h), [false]);
    let opts = BroadcastOptions::all().compress(false);
    let plan = h.endpoint.broadcast(h.now, &event("/", "b", &(1,)), &opts);
    assert!(!plan.encoded.compress());
    assert!(
        h.endpoint
            .broadcast(h.now, &event("/", "b", &(1,)), &BroadcastOptions::all())
            .encoded
            .compress()
    );
}

#[test]
fn room_changes_are_reported_as_the_reference_adapter_reports_them() {
    use socketio_proto::RoomEvent;
    let mut h = Harness::new(config());
    h.endpoint.record_room_events(true);
    let a = joined(&mut h);
    let b = joined(&mut h);
    let (sa, sb) = (Str::from(a.2.clone()), Str::from(b.2.clone()));
    let nsp = || Str::from_static("/");
    let room = |r: &str| Str::from(r.to_owned());
    let events =
        |h: &mut Harness| std::iter::from_fn(|| h.endpoint.poll_room_event()).collect::<Vec<_>>();
    // Each socket is created and joined into its own room as it connects.
    assert_eq!(
        events(&mut h),
        [
            RoomEvent::Created {
                nsp: nsp(),
                room: sa.clone()
            },
            RoomEvent::Joined {
                nsp: nsp(),
                room: sa.clone(),
                sid: sa.clone()
            },
            RoomEvent::Created {
                nsp: nsp(),
                room: sb.clone()
            },
            RoomEvent::Joined {
                nsp: nsp(),
                room: sb.clone(),
                sid: sb.clone()
            },
        ]
    );
    h.endpoint.join("/", &sa, "r");
    h.endpoint.join("/", &sb, "r");
    h.endpoint.join("/", &sb, "r");
    // Joining another socket's room does not create it.
    h.endpoint.join("/", &sb, sa.clone());
    assert_eq!(
        events(&mut h),
        [
            RoomEvent::Created {
                nsp: nsp(),
                room: room("r")
            },
            RoomEvent::Joined {
                nsp: nsp(),
                room: room("r"),
                sid: sa.clone()
            },
            RoomEvent::Joined {
                nsp: nsp(),
                room: room("r"),
                sid: sb.clone()
            },
            RoomEvent::Joined {
                nsp: nsp(),
                room: sa.clone(),
                sid: sb.clone()
            },
        ]
    );
    h.endpoint.leave("/", &sa, "r");
    h.endpoint.leave("/", &sa, "r");
    h.endpoint.leave("/", &sb, "r");
    assert_eq!(
        events(&mut h),
        [
            RoomEvent::Left {
                nsp: nsp(),
                room: room("r"),
                sid: sa.clone()
            },
            RoomEvent::Left {
                nsp: nsp(),
                room: room("r"),
                sid: sb.clone()
            },
            RoomEvent::Deleted {
                nsp: nsp(),
                room: room("r")
            },
        ]
    );
    // B leaves: its own room goes; A's room keeps A.
    h.ws_text(&b.0, b.1, "41");
    h.pump();
    // Its own room first, then the others.
    assert_eq!(
        events(&mut h),
        [
            RoomEvent::Left {
                nsp: nsp(),
                room: sb.clone(),
                sid: sb.clone()
            },
            RoomEvent::Deleted {
                nsp: nsp(),
                room: sb.clone()
            },
            RoomEvent::Left {
                nsp: nsp(),
                room: sa.clone(),
                sid: sb.clone()
            },
        ]
    );
}

#[test]
fn a_connection_counts_its_packets_bytes_and_failed_upgrades() {
    let mut h = Harness::new(config());
    let (sid, ws, _) = joined(&mut h);
    // The CONNECT in; the OPEN and the CONNECT's answer out.
    let first = h.conn(&sid).take_counters();
    assert_eq!((first.packets_in, first.packets_out), (1, 2));
    assert_eq!(first.bytes_in, "0".len() as u64);
    h.ws_text(&sid, ws, r#"42["hello","world"]"#);
    let c = h.conn(&sid).take_counters();
    assert_eq!(
        (c.packets_in, c.bytes_in),
        (1, r#"2["hello","world"]"#.len() as u64)
    );
    assert_eq!(c.upgrades_failed, 0);
    // A polling session whose upgrade never completes.
    let polling = h.open_polling();
    h.conn(&polling).take_counters();
    let _probe = h.upgrade_ws(&polling);
    h.advance(Duration::from_secs(11));
    assert_eq!(h.conn(&polling).take_counters().upgrades_failed, 1);
    assert_eq!(
        h.conn(&polling).take_counters(),
        socketio_proto::Counters::default()
    );
}

/// A broadcast to a WebSocket with nothing buffered is taken as written now:
/// its one frame comes back for the binding to write, counted as sent, and
/// the send buffer stays empty; with anything buffered, or anything that is
/// not that open WebSocket's one frame, nothing changes and the packet takes
/// the send buffer's way, behind what is there.
#[test]
fn a_broadcast_to_an_idle_websocket_is_taken_as_written_now() {
    let mut h = Harness::new(config());
    let (sid, ws, _) = joined(&mut h);
    let packet = Packet::event(Str::from("/"), "news", &(1,), None).expect("an event");
    let plan = h
        .endpoint
        .broadcast(h.now, &packet, &BroadcastOptions::all());
    let _ = h.conn(&sid).take_counters();

    let frame = h.conn(&sid).send_encoded_now("/", &plan.encoded, ws);
    assert_eq!(
        frame,
        Some(socketio_proto::Data::Text(Str::from("42[\"news\",1]")))
    );
    assert_eq!(h.conn(&sid).buffered_bytes(), 0);
    assert!(!h.conn(&sid).has_output());
    let counted = h.conn(&sid).take_counters();
    assert_eq!((counted.packets_out, counted.bytes_out), (1, 12));
    assert!(
        h.text_frames(ws).is_empty(),
        "nothing goes through the buffer"
    );

    // Not this session's WebSocket, not a namespace it joined.
    assert_eq!(
        h.conn(&sid)
            .send_encoded_now("/", &plan.encoded, RequestId(9999)),
        None
    );
    assert_eq!(
        h.conn(&sid).send_encoded_now("/admin", &plan.encoded, ws),
        None
    );
    // A packet with an attachment takes two frames.
    let binary = Packet::event(
        Str::from("/"),
        "file",
        &(serde_bytes::Bytes::new(&[1, 2]),),
        None,
    )
    .expect("an event");
    let two = h
        .endpoint
        .broadcast(h.now, &binary, &BroadcastOptions::all());
    assert_eq!(h.conn(&sid).send_encoded_now("/", &two.encoded, ws), None);
    assert!(!h.conn(&sid).has_output(), "refused, nothing changed");
    h.conn(&sid)
        .send_encoded("/", &two.encoded, false)
        .expect("buffered");

    // Something buffered: the next one waits behind it.
    assert_eq!(h.conn(&sid).send_encoded_now("/", &plan.encoded, ws), None);
    h.conn(&sid)
        .send_encoded("/", &plan.encoded, false)
        .expect("buffered");
    let frames = h.text_frames(ws);
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert_eq!(frames[2], "42[\"news\",1]");
    assert!(
        h.conn(&sid)
            .send_encoded_now("/", &plan.encoded, ws)
            .is_some()
    );

    // A closed connection takes nothing.
    let now = h.now;
    h.conn(&sid).close(now, DisconnectReason::ForcedServerClose);
    assert_eq!(h.conn(&sid).send_encoded_now("/", &plan.encoded, ws), None);
}
