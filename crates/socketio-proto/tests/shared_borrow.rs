//! What the endpoint does through a shared borrow (a binding's read lock):
//! routing the requests of live sessions and planning the broadcasts that
//! change nothing. Each must answer as the `&mut` path does, and step
//! aside (`None`) exactly where that path changes the endpoint.

mod harness;

use std::time::Duration;

use harness::Harness;
use socketio_proto::{
    BroadcastOptions, Config, HttpError, Packet, Recovery, Request, Response, Route, Str,
};

fn config() -> Config {
    Config::default().with_heartbeat(Duration::from_secs(300), Duration::from_secs(200))
}

fn news() -> Packet {
    Packet::event(Str::from("/"), "news", &("x",), None).expect("encodes")
}

fn joined(h: &mut Harness) -> Str {
    let (sid, ws) = h.open_websocket();
    h.ws_text(&sid, ws, "40");
    Str::from(harness::sid_of(&h.text_frames(ws)[0]))
}

/// The shared route of `req`, then the full one (which may open a session).
fn both(h: &mut Harness, req: &Request) -> (Option<Route>, Route) {
    let shared = h.endpoint.route_existing(req);
    let id = h.id();
    let now = h.now;
    let full = h.endpoint.handle_request(now, id, req);
    (shared, full)
}

fn same(a: &Route, b: &Route) -> bool {
    match (a, b) {
        (Route::Existing(x), Route::Existing(y)) => x == y,
        (Route::Respond(x), Route::Respond(y)) => responded(x) == responded(y),
        _ => false,
    }
}

fn responded(r: &Response) -> (u16, String) {
    (r.status, r.body_text())
}

#[test]
fn routing_through_a_shared_borrow_answers_as_the_full_routing() {
    let mut h = Harness::new(config());
    let polling = h.open_polling();
    let (ws_sid, _) = h.open_websocket();
    let sessions = h.endpoint.session_count();
    let requests = [
        format!("/socket.io/?EIO=4&transport=polling&sid={polling}"),
        format!("/socket.io/?EIO=4&transport=polling&sid={ws_sid}"),
        "/socket.io/?EIO=4&transport=polling&sid=nope".to_string(),
        format!("/socket.io/?EIO=4&transport=carrier-pigeon&sid={polling}"),
        format!("/elsewhere/?EIO=4&transport=polling&sid={polling}"),
    ];
    for path in &requests {
        for req in [Request::get(path), Request::post(path, "1:6")] {
            let (shared, full) = both(&mut h, &req);
            let shared = shared.unwrap_or_else(|| panic!("{path}: stepped aside"));
            assert!(same(&shared, &full), "{path}: the two routes differ");
        }
    }
    // An upgrade of a live session, and one naming the wrong version.
    for (path, ok) in [
        (
            format!("/socket.io/?EIO=4&transport=websocket&sid={polling}"),
            true,
        ),
        (
            format!("/socket.io/?EIO=3&transport=websocket&sid={polling}"),
            false,
        ),
    ] {
        let (shared, full) = both(&mut h, &Request::websocket(&path));
        let shared = shared.expect("an upgrade names its session");
        assert!(same(&shared, &full), "{path}");
        assert_eq!(matches!(shared, Route::Existing(_)), ok, "{path}");
    }
    // Unknown sessions get the reference's answer.
    let unknown = h.endpoint.route_existing(&Request::get(
        "/socket.io/?EIO=4&transport=polling&sid=nope",
    ));
    match unknown {
        Some(Route::Respond(r)) => {
            assert_eq!(
                responded(&r),
                responded(&Response::error(HttpError::UnknownSid))
            );
        }
        _ => panic!("an unknown session is refused"),
    }
    // Nothing was opened by any of these.
    assert_eq!(h.endpoint.session_count(), sessions);

    // A handshake steps aside: only the full routing opens sessions.
    let handshake = Request::get("/socket.io/?EIO=4&transport=polling");
    assert!(h.endpoint.route_existing(&handshake).is_none());
    assert_eq!(h.endpoint.session_count(), sessions);
    let (_, full) = both(&mut h, &handshake);
    assert!(matches!(full, Route::New(..)));
}

#[test]
fn a_broadcast_is_planned_through_a_shared_borrow_unless_it_changes_the_endpoint() {
    let mut h = Harness::new(config());
    let a = joined(&mut h);
    let _b = joined(&mut h);
    h.endpoint.join("/", &a, "room");
    let to_room = BroadcastOptions::all().to("room");

    // On a lone node with recovery off, every broadcast plans the same
    // both ways.
    for opts in [
        BroadcastOptions::all(),
        to_room.clone(),
        to_room.clone().local(),
    ] {
        let shared = h.endpoint.plan_broadcast(&news(), &opts).expect("planned");
        let full = h.endpoint.broadcast(h.now, &news(), &opts);
        let mut x = shared.targets.clone();
        let mut y = full.targets.clone();
        x.sort_unstable_by_key(|c| format!("{c:?}"));
        y.sort_unstable_by_key(|c| format!("{c:?}"));
        assert_eq!(x, y);
        assert_eq!(shared.encoded, full.encoded);
        assert!(!shared.stored && !full.stored);
    }
    assert_eq!(
        h.endpoint
            .plan_broadcast(&news(), &to_room)
            .expect("planned")
            .targets
            .len(),
        1
    );

    // In a cluster, a broadcast that goes to the other nodes steps aside;
    // a local one does not.
    h.endpoint.set_clustered(true);
    assert!(h.endpoint.plan_broadcast(&news(), &to_room).is_none());
    assert!(
        h.endpoint
            .plan_broadcast(&news(), &to_room.clone().local())
            .is_some()
    );
    assert!(
        h.endpoint.poll_cluster_op().is_none(),
        "nothing published by a plan"
    );

    // With recovery on, a stored packet steps aside; a volatile one or one
    // awaiting an acknowledgement is not stored, so it does not.
    let mut r = Harness::new(config().with_recovery(Some(Recovery::default())));
    let c = joined(&mut r);
    r.endpoint.join("/", &c, "room");
    assert!(r.endpoint.plan_broadcast(&news(), &to_room).is_none());
    assert!(
        r.endpoint
            .plan_broadcast(&news(), &to_room.clone().volatile())
            .is_some()
    );
    let with_ack = Packet::event(Str::from("/"), "news", &("x",), Some(1)).expect("encodes");
    assert!(r.endpoint.plan_broadcast(&with_ack, &to_room).is_some());
}
