//! The binding's values carried by the endpoint: attached to a session and
//! to its sockets, found by the selections, dropped with their entries.

use std::time::Instant;

use socketio_proto::{
    BroadcastOptions, Config, Endpoint, IdGenerator, Request, RequestId, Route, Str,
};

/// Opens a polling session and connects its client to `/`: the session's
/// handle and connection, the socket's id.
fn session(
    endpoint: &mut Endpoint<&'static str, String>,
    now: Instant,
    n: u64,
) -> (
    socketio_proto::ConnectionHandle,
    Box<socketio_proto::Connection>,
    Str,
) {
    let req = Request::get("/socket.io/?EIO=4&transport=polling");
    let Route::New(handle, mut conn) = endpoint.handle_request(now, RequestId(n * 10), &req) else {
        panic!("a handshake opens a session");
    };
    let sid = conn.sid().clone();
    let post = Request::post(
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        "40",
    );
    conn.handle_request(now, RequestId(n * 10 + 1), post);
    let Some(socketio_proto::Event::ConnectRequest { nsp, .. }) = conn.poll_event() else {
        panic!("the client asks to join /");
    };
    let socket = conn.accept(&nsp).expect("accepted");
    while let Some(ev) = conn.poll_endpoint_event() {
        endpoint.handle_event(now, handle, ev);
    }
    (handle, conn, socket)
}

#[test]
fn values_live_and_die_with_their_entries() {
    let now = Instant::now();
    let mut endpoint: Endpoint<&'static str, String> =
        Endpoint::carrying(Config::default(), IdGenerator::from_seed([7; 32]));
    let (a, mut conn_a, socket_a) = session(&mut endpoint, now, 1);
    let (b, _conn_b, socket_b) = session(&mut endpoint, now, 2);

    // Nothing is attached until the binding attaches it.
    assert_eq!(endpoint.connection(a), None);
    assert!(
        endpoint
            .sockets_with_data("/", &BroadcastOptions::all())
            .is_empty()
    );

    assert!(endpoint.attach(a, "task a"));
    assert!(endpoint.attach(b, "task b"));
    assert!(endpoint.attach_socket("/", &socket_a, format!("socket {socket_a}")));
    assert!(endpoint.attach_socket("/", &socket_b, format!("socket {socket_b}")));
    // No such socket: refused.
    assert!(!endpoint.attach_socket("/other", &socket_a, String::new()));

    assert_eq!(endpoint.session(conn_a.sid()), Some(a));
    assert_eq!(endpoint.connection(a), Some(&"task a"));
    let mut all: Vec<&&str> = endpoint.connections().collect();
    all.sort();
    assert_eq!(all, [&"task a", &"task b"]);

    endpoint.join("/", &socket_b, "room");
    let in_room = endpoint.sockets_with_data("/", &BroadcastOptions::all().to("room"));
    assert_eq!(in_room.len(), 1);
    assert_eq!(in_room[0].0, &socket_b);
    assert_eq!(in_room[0].1, b);
    assert_eq!(in_room[0].2, &format!("socket {socket_b}"));

    // The socket leaves: its value goes; the session closes: its value goes.
    assert!(conn_a.disconnect("/").is_ok());
    while let Some(ev) = conn_a.poll_endpoint_event() {
        endpoint.handle_event(now, a, ev);
    }
    assert_eq!(endpoint.socket("/", &socket_a), None);
    assert_eq!(
        endpoint.socket("/", &socket_b),
        Some(&format!("socket {socket_b}"))
    );
    conn_a.close(now, socketio_proto::DisconnectReason::ForcedClose);
    // A polling session closes once its close packet is fetched or the
    // close timeout passes.
    conn_a.handle_timeout(now + std::time::Duration::from_secs(60));
    while let Some(ev) = conn_a.poll_endpoint_event() {
        endpoint.handle_event(now, a, ev);
    }
    assert_eq!(endpoint.connection(a), None);
    assert_eq!(endpoint.session(conn_a.sid()), None);
    assert!(!endpoint.attach(a, "too late"));
    assert_eq!(endpoint.connections().count(), 1);
}
