//! What the measuring examples share: a socket joined over long-polling,
//! as a binding would drive it.

use std::time::Instant;

use socketio_proto::{Connection, ConnectionHandle, Endpoint, Event, Request, RequestId, Route};

/// A socket on `/` of connection number `n`, in `rooms`; its connection is
/// the caller's to keep.
pub(crate) fn socket(
    endpoint: &mut Endpoint,
    n: u64,
    now: Instant,
    rooms: &[String],
) -> (ConnectionHandle, Box<Connection>) {
    let req = Request::get("/socket.io/?EIO=4&transport=polling");
    let Route::New(handle, mut conn) = endpoint.handle_request(now, RequestId(n * 3), &req) else {
        panic!("a handshake opens a session");
    };
    let post = Request::post(
        &format!("/socket.io/?EIO=4&transport=polling&sid={}", conn.sid()),
        "40",
    );
    conn.handle_request(now, RequestId(n * 3 + 1), post);
    while let Some(event) = conn.poll_event() {
        if let Event::ConnectRequest { nsp, .. } = event {
            let sid = conn.accept(&nsp).expect("accepted");
            while let Some(ev) = conn.poll_endpoint_event() {
                endpoint.handle_event(now, handle, ev);
            }
            for room in rooms {
                endpoint.join("/", &sid, room.as_str());
            }
        }
    }
    while conn.poll_response().is_some() {}
    (handle, conn)
}
