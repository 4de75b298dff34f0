//! Engine.IO scenarios: handshakes, polling, heartbeat, upgrade, errors.

mod harness;

use std::time::Duration;

use harness::{Harness, sid_of};
use socketio_proto::{Config, Data, Request, Str, TransportKind};

fn config() -> Config {
    Config::default()
        .with_heartbeat(Duration::from_millis(300), Duration::from_millis(200))
        .with_connect_timeout(Duration::from_millis(1000))
}

#[test]
fn polling_handshake_sends_the_open_packet_with_the_five_keys() {
    let mut h = Harness::new(Config::default());
    let id = h.request(Request::get("/socket.io/?EIO=4&transport=polling&t=abc"));
    let r = h.answer(id).expect("answered at once");
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_str(), "text/plain; charset=UTF-8");
    let body = r.body_text();
    let sid = sid_of(&body);
    assert_eq!(sid.len(), 20);
    assert_eq!(
        body,
        format!(
            "0{{\"sid\":\"{sid}\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}}"
        )
    );
}

#[test]
fn websocket_handshake_has_no_upgrades() {
    let mut h = Harness::new(Config::default());
    let ws = h.request(Request::websocket("/socket.io/?EIO=4&transport=websocket"));
    let frames = h.text_frames(ws);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].starts_with("0{\"sid\":"));
    assert!(frames[0].contains("\"upgrades\":[]"));
}

#[test]
fn http_errors_have_the_reference_codes() {
    let mut h = Harness::new(Config::default());
    let cases = [
        (
            "/socket.io/?EIO=4&transport=foo",
            400,
            0,
            "Transport unknown",
        ),
        ("/socket.io/?EIO=4", 400, 0, "Transport unknown"),
        (
            "/socket.io/?EIO=4&transport=polling&sid=nope",
            400,
            1,
            "Session ID unknown",
        ),
        (
            "/socket.io/?EIO=5&transport=polling",
            400,
            5,
            "Unsupported protocol version",
        ),
        (
            "/socket.io/?EIO=3&transport=polling",
            400,
            5,
            "Unsupported protocol version",
        ),
        (
            "/socket.io/?transport=polling",
            400,
            5,
            "Unsupported protocol version",
        ),
        // A WebSocket handshake without the upgrade header.
        (
            "/socket.io/?EIO=4&transport=websocket",
            400,
            3,
            "Bad request",
        ),
    ];
    for (uri, status, code, message) in cases {
        let id = h.request(Request::get(uri));
        let r = h.answer(id).expect("answered");
        assert_eq!(r.status, status, "{uri}");
        assert_eq!(
            r.body_text(),
            format!("{{\"code\":{code},\"message\":\"{message}\"}}"),
            "{uri}"
        );
    }
    let id = h.request(Request::post("/socket.io/?EIO=4&transport=polling", "x"));
    assert_eq!(h.body(id), r#"{"code":2,"message":"Bad handshake method"}"#);
    assert_eq!(h.endpoint.session_count(), 0);
}

#[test]
fn a_get_is_held_until_there_is_something_to_send() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let get = h.get(&sid);
    assert!(h.answer(get).is_none(), "nothing to send yet");
    // The ping is due one interval after the handshake.
    h.advance(Duration::from_millis(299));
    assert!(h.answer(get).is_none());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.body(get), "2");
}

#[test]
fn pongs_keep_the_session_and_silence_times_it_out() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    // Join `/` so that the connect timeout does not end the session.
    h.post(&sid, "40");
    let get = h.get(&sid);
    assert!(h.body(get).starts_with("40{"));
    for _ in 0..5 {
        let get = h.get(&sid);
        h.advance(Duration::from_millis(300));
        assert_eq!(h.body(get), "2");
        assert_eq!(h.post(&sid, "3").body_text(), "ok");
    }
    let get = h.get(&sid);
    h.advance(Duration::from_millis(300));
    assert_eq!(h.body(get), "2");
    h.take_events();
    h.advance(Duration::from_millis(199));
    assert!(h.event_names().is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.event_names(),
        ["disconnected / ping timeout", "closed ping timeout"]
    );
    assert_eq!(h.endpoint.session_count(), 0);
    let get = h.get(&sid);
    assert_eq!(h.body(get), r#"{"code":1,"message":"Session ID unknown"}"#);
}

#[test]
fn a_late_ping_does_not_move_the_pong_deadline() {
    // The official suites poll pingInterval + pingTimeout after the
    // handshake and expect the session gone, however late the ping timer
    // fired.
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let t0 = h.now;
    h.now = t0 + Duration::from_millis(350);
    let now = h.now;
    h.conn(&sid).handle_timeout(now);
    let get = h.get(&sid);
    assert_eq!(h.body(get), "2");
    assert_eq!(
        h.conn(&sid).poll_timeout(),
        Some(t0 + Duration::from_millis(500))
    );
    h.advance(Duration::from_millis(149));
    assert!(h.event_names().is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.event_names(), ["closed ping timeout"]);
    let get = h.get(&sid);
    assert_eq!(h.answer(get).expect("answered at once").status, 400);
}

#[test]
fn a_ping_later_than_the_pong_deadline_times_out_on_the_next_call() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let t0 = h.now;
    h.now = t0 + Duration::from_millis(600);
    let now = h.now;
    h.conn(&sid).handle_timeout(now);
    assert!(h.conn(&sid).poll_timeout().is_some_and(|t| t <= now));
    h.conn(&sid).handle_timeout(now);
    assert_eq!(h.event_names(), ["closed ping timeout"]);
    let get = h.get(&sid);
    assert_eq!(h.answer(get).expect("answered at once").status, 400);
}

#[test]
fn overlapping_gets_close_the_session() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let first = h.get(&sid);
    let second = h.get(&sid);
    let r = h.answer(second).expect("answered");
    assert_eq!(r.status, 400);
    assert_eq!(h.body(first), "1");
    assert_eq!(h.event_names(), ["closed transport error"]);
    assert_eq!(h.endpoint.session_count(), 0);
}

#[test]
fn posts_are_answered_ok_and_batches_are_split() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    assert_eq!(h.post(&sid, "40\x1e40/x,").body_text(), "ok");
    let get = h.get(&sid);
    // Both answers come in one batch: `/` accepted, `/x` refused.
    let body = h.body(get);
    let parts: Vec<&str> = body.split('\x1e').collect();
    assert_eq!(parts.len(), 2, "{body}");
    assert!(parts[0].starts_with("40{\"sid\":\""), "{body}");
    assert_eq!(parts[1], "44/x,{\"message\":\"Invalid namespace\"}");
}

#[test]
fn a_body_over_max_payload_gets_413() {
    let mut h = Harness::new(config().with_max_payload(100));
    let sid = h.open_polling();
    let big = format!("4{}", "x".repeat(100));
    let r = h.post(&sid, &big);
    assert_eq!(r.status, 413);
    assert!(
        h.event_names()
            .contains(&"closed transport error".to_owned())
    );
}

#[test]
fn a_binary_post_is_refused_in_v4() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let mut req = Request::post(
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        "40",
    );
    req.content_type = Some("application/octet-stream".into());
    let id = h.request(req);
    assert_eq!(h.answer(id).expect("answered").status, 400);
}

#[test]
fn a_ping_from_a_v4_client_is_an_error() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let get = h.get(&sid);
    h.post(&sid, "2");
    assert_eq!(h.body(get), "1");
    assert_eq!(h.event_names(), ["closed transport error"]);
}

#[test]
fn a_close_from_the_client_answers_the_pending_poll_with_a_noop() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let get = h.get(&sid);
    h.post(&sid, "1");
    assert_eq!(h.body(get), "6");
    assert_eq!(h.event_names(), ["closed transport close"]);
}

#[test]
fn an_undecodable_packet_is_a_parse_error() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let r = h.post(&sid, "9");
    assert_eq!(r.status, 400);
    assert_eq!(h.event_names(), ["closed parse error"]);
}

#[test]
fn a_post_with_an_invalid_payload_gets_a_400_and_the_session_closes() {
    // The official suite's "closes the session upon invalid packet format":
    // the POST fails (the reference destroys its connection) and the
    // session is gone.
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let get = h.get(&sid);
    let r = h.post(&sid, "abc");
    assert_eq!(r.status, 400);
    assert_ne!(r.body_text(), "ok");
    assert_eq!(h.body(get), "1");
    let again = h.get(&sid);
    assert_eq!(h.answer(again).expect("answered at once").status, 400);
    assert_eq!(h.event_names(), ["closed parse error"]);
}

#[test]
fn upgrade_with_a_pending_poll() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    h.post(&sid, "40");
    let get = h.get(&sid);
    assert!(h.body(get).starts_with("40{\"sid\""));
    let get = h.get(&sid);
    let ws = h.upgrade_ws(&sid);
    assert!(h.text_frames(ws).is_empty());
    h.ws_text(&sid, ws, "2probe");
    assert_eq!(h.text_frames(ws), ["3probe"]);
    // The pending poll returns so that the client can pause polling.
    assert_eq!(h.body(get), "6");
    // Polls during the upgrade return at once.
    let get = h.get(&sid);
    assert_eq!(h.body(get), "6");
    // Messages sent before the switch wait in the buffer.
    let packet =
        socketio_proto::Packet::event(Str::from("/"), "hello", &("world",), None).expect("encodes");
    h.conn(&sid).emit(&packet, false).expect("sent");
    let get = h.get(&sid);
    assert_eq!(h.body(get), "42[\"hello\",\"world\"]");
    h.conn(&sid).emit(&packet, false).expect("sent");
    h.ws_text(&sid, ws, "5");
    assert_eq!(h.conn(&sid).transport(), TransportKind::WebSocket);
    assert_eq!(h.text_frames(ws), ["42[\"hello\",\"world\"]"]);
    // Polling is over for this session.
    let get = h.get(&sid);
    let r = h.answer(get).expect("answered");
    assert_eq!(r.status, 400);
    assert_eq!(r.body_text(), r#"{"code":3,"message":"Bad request"}"#);
    // A second WebSocket for the same session is closed.
    let ws2 = h.upgrade_ws(&sid);
    assert!(h.closed_ws.contains(&ws2));
    // The heartbeat goes on over the WebSocket.
    h.advance(Duration::from_millis(300));
    assert_eq!(h.text_frames(ws), ["2"]);
    h.ws_text(&sid, ws, "3");
    h.advance(Duration::from_millis(250));
    assert!(h.conn(&sid).poll_timeout().is_some());
    assert!(!h.conn(&sid).is_closed());
}

#[test]
fn a_packet_during_the_probe_closes_the_new_transport_only() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let ws = h.upgrade_ws(&sid);
    h.ws_text(&sid, ws, "4hello");
    assert!(h.closed_ws.contains(&ws));
    assert_eq!(h.conn(&sid).transport(), TransportKind::Polling);
    assert!(!h.conn(&sid).is_closed());
    // An upgrade packet before the probe does the same.
    let ws = h.upgrade_ws(&sid);
    h.ws_text(&sid, ws, "5");
    assert!(h.closed_ws.contains(&ws));
    assert_eq!(h.conn(&sid).transport(), TransportKind::Polling);
}

#[test]
fn an_upgrade_that_does_not_finish_in_time_is_dropped() {
    let mut h = Harness::new(
        config()
            .with_upgrade_timeout(Duration::from_millis(100))
            .with_heartbeat(Duration::from_secs(100), Duration::from_secs(100)),
    );
    let sid = h.open_polling();
    let ws = h.upgrade_ws(&sid);
    h.ws_text(&sid, ws, "2probe");
    assert_eq!(h.text_frames(ws), ["3probe"]);
    h.advance(Duration::from_millis(100));
    assert!(h.closed_ws.contains(&ws));
    assert_eq!(h.conn(&sid).transport(), TransportKind::Polling);
    // A second probe on the closed socket is ignored; a new upgrade works.
    let ws = h.upgrade_ws(&sid);
    h.ws_text(&sid, ws, "2probe");
    assert_eq!(h.text_frames(ws), ["3probe"]);
    h.ws_text(&sid, ws, "5");
    assert_eq!(h.conn(&sid).transport(), TransportKind::WebSocket);
}

#[test]
fn a_second_probe_is_answered_again() {
    // The reference's upgrade answers every `2probe` with `3probe`.
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let ws = h.upgrade_ws(&sid);
    h.ws_text(&sid, ws, "2probe");
    h.ws_text(&sid, ws, "2probe");
    assert_eq!(h.text_frames(ws), ["3probe", "3probe"]);
    assert!(!h.closed_ws.contains(&ws));
    h.ws_text(&sid, ws, "5");
    assert_eq!(h.conn(&sid).transport(), TransportKind::WebSocket);
}

#[test]
fn an_upgrade_must_speak_the_sessions_engine_io_version() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let route = h.endpoint.handle_request(
        h.now,
        socketio_proto::RequestId(9_999),
        &Request::websocket(&format!("/socket.io/?EIO=3&transport=websocket&sid={sid}")),
    );
    let socketio_proto::Route::Respond(r) = route else {
        panic!("routed: {route:?}");
    };
    assert_eq!(r.status, 400);
}

#[test]
fn other_methods_on_a_session_get_500_and_keep_it() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    let q = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let id = h.request(Request::new(
        socketio_proto::Method::Other,
        &q,
        bytes::Bytes::new(),
    ));
    assert_eq!(h.answer(id).map(|r| r.status), Some(500));
    assert!(!h.conn(&sid).is_closed());
}

#[test]
fn upgrades_can_be_disabled() {
    let mut h = Harness::new(config().with_allow_upgrades(false));
    let id = h.request(Request::get("/socket.io/?EIO=4&transport=polling"));
    let body = h.body(id);
    assert!(body.contains("\"upgrades\":[]"), "{body}");
    let sid = sid_of(&body);
    let ws = h.upgrade_ws(&sid);
    assert!(h.closed_ws.contains(&ws));
}

#[test]
fn websocket_session_heartbeat_and_close() {
    let mut h = Harness::new(config());
    let (sid, ws) = h.open_websocket();
    h.advance(Duration::from_millis(300));
    assert_eq!(h.text_frames(ws), ["2"]);
    h.ws_text(&sid, ws, "3");
    h.advance(Duration::from_millis(300));
    assert_eq!(h.text_frames(ws), ["2"]);
    h.take_events();
    h.advance(Duration::from_millis(200));
    assert_eq!(h.event_names(), ["closed ping timeout"]);
    assert!(h.closed_ws.contains(&ws));
}

#[test]
fn binary_messages_over_polling_are_base64() {
    let mut h = Harness::new(config());
    let sid = h.open_polling();
    h.post(&sid, "40");
    let get = h.get(&sid);
    h.body(get);
    h.take_events();
    // A binary event: header then the attachment, base64 in the payload.
    h.post(
        &sid,
        "451-[\"file\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID",
    );
    let events = h.take_events();
    let socketio_proto::Event::Message(m) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(&*m.name, "file");
    assert_eq!(
        m.data.attachments(),
        &[bytes::Bytes::from_static(&[1, 2, 3])]
    );
    // And back.
    let packet = socketio_proto::Packet::event(
        Str::from("/"),
        "file",
        &(bytes::Bytes::from_static(&[4, 5]),),
        None,
    )
    .expect("encodes");
    h.conn(&sid).emit(&packet, false).expect("sent");
    let get = h.get(&sid);
    assert_eq!(
        h.body(get),
        "451-[\"file\",{\"_placeholder\":true,\"num\":0}]\x1ebBAU="
    );
}

#[test]
fn binary_frames_over_websocket_are_raw() {
    let mut h = Harness::new(config());
    let (sid, ws) = h.open_websocket();
    h.ws_text(&sid, ws, "40");
    h.text_frames(ws);
    h.take_events();
    h.ws_text(&sid, ws, "451-[\"file\",{\"_placeholder\":true,\"num\":0}]");
    assert!(h.take_events().is_empty(), "waits for the attachment");
    h.ws_send(&sid, ws, Data::Binary(bytes::Bytes::from_static(&[9, 8])));
    let events = h.take_events();
    let socketio_proto::Event::Message(m) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(m.data.attachments(), &[bytes::Bytes::from_static(&[9, 8])]);
    let packet = socketio_proto::Packet::event(
        Str::from("/"),
        "file",
        &(bytes::Bytes::from_static(&[4, 5]),),
        None,
    )
    .expect("encodes");
    h.conn(&sid).emit(&packet, false).expect("sent");
    h.pump();
    assert_eq!(
        h.text_frames(ws),
        [
            "451-[\"file\",{\"_placeholder\":true,\"num\":0}]",
            "<binary [4, 5]>"
        ]
    );
}

#[test]
fn a_websocket_frame_over_max_payload_closes_the_session() {
    let mut h = Harness::new(config().with_max_payload(10));
    let (sid, ws) = h.open_websocket();
    h.ws_text(&sid, ws, "4aaaaaaaaaaaaaaaaaaaaaaaaa");
    assert!(
        h.event_names()
            .contains(&"closed transport error".to_owned())
    );
    assert!(h.closed_ws.contains(&ws));
}

#[test]
fn the_websocket_closing_closes_the_session() {
    let mut h = Harness::new(config());
    let (sid, ws) = h.open_websocket();
    h.ws_text(&sid, ws, "40");
    let now = h.now;
    h.conn(&sid).handle_transport_closed(now, ws, false);
    h.pump();
    assert_eq!(
        h.event_names(),
        [
            "connect-request /",
            "connected /",
            "disconnected / transport close",
            "closed transport close"
        ]
    );
    assert_eq!(h.endpoint.session_count(), 0);
    assert_eq!(h.endpoint.socket_count("/"), 0);
}

#[test]
fn eio3_polling_uses_length_prefixes_and_client_pings() {
    let mut h = Harness::new(config().with_eio3(true));
    let id = h.request(Request::get("/socket.io/?EIO=3&transport=polling&b64=1"));
    let body = h.body(id);
    // `<len>:0{...}`, the length in UTF-16 code units.
    let colon = body.find(':').expect("length prefix");
    let len: usize = body[..colon].parse().expect("a length");
    let open = &body[colon + 1..];
    assert_eq!(open.len(), len);
    assert!(open.starts_with("0{\"sid\":"), "{body}");
    let sid = sid_of(open);
    // The server connects the client to `/` by itself (Socket.IO v4).
    let get = h.request(Request::get(&format!(
        "/socket.io/?EIO=3&transport=polling&sid={sid}"
    )));
    assert_eq!(h.body(get), "2:40");
    // The client pings; the server answers.
    let r = h.request(Request::post(
        &format!("/socket.io/?EIO=3&transport=polling&sid={sid}"),
        "1:2",
    ));
    assert_eq!(h.body(r), "ok");
    let get = h.request(Request::get(&format!(
        "/socket.io/?EIO=3&transport=polling&sid={sid}"
    )));
    assert_eq!(h.body(get), "1:3");
    // No ping within interval + timeout closes the session.
    h.take_events();
    h.advance(Duration::from_millis(500));
    assert!(h.event_names().contains(&"closed ping timeout".to_owned()));
}

#[test]
fn eio3_socket_ids_are_the_ones_old_clients_work_out() {
    let mut h = Harness::new(config().with_eio3(true));
    h.endpoint.add_namespace("/admin");
    let id = h.request(Request::get("/socket.io/?EIO=3&transport=polling&b64=1"));
    let body = h.body(id);
    let sid = sid_of(&body[body.find(':').expect("length prefix") + 1..]);
    // `/` is joined at once, with the engine sid as the socket id.
    assert_eq!(
        h.conn(&sid).socket_id("/").map(|s| s.to_string()),
        Some(sid.clone())
    );
    let r = h.request(Request::post(
        &format!("/socket.io/?EIO=3&transport=polling&sid={sid}"),
        "9:40/admin,",
    ));
    assert_eq!(h.body(r), "ok");
    assert_eq!(
        h.conn(&sid).socket_id("/admin").map(|s| s.to_string()),
        Some(format!("/admin#{sid}"))
    );
    assert_eq!(
        h.endpoint.rooms_of("/admin", &format!("/admin#{sid}")),
        [Str::from(format!("/admin#{sid}"))]
    );
    // An unknown namespace: the reference's object, to old clients too.
    let r = h.request(Request::post(
        &format!("/socket.io/?EIO=3&transport=polling&sid={sid}"),
        "11:40/nowhere,",
    ));
    assert_eq!(h.body(r), "ok");
    let get = h.request(Request::get(&format!(
        "/socket.io/?EIO=3&transport=polling&sid={sid}"
    )));
    let body = h.body(get);
    assert!(
        body.ends_with(r#"4/nowhere,{"message":"Invalid namespace"}"#),
        "{body}"
    );
}
