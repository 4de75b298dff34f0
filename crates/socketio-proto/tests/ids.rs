//! Session and socket ids: many from one generator and its forks (one per
//! connection, as the endpoint makes them) never repeat. `ID_COUNT` sets
//! how many (default 200000, a few seconds in a debug build; a million
//! for a long run).

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use socketio_proto::IdGenerator;

#[test]
fn many_ids_are_unique() {
    let count: usize = std::env::var("ID_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
        .max(2_000);
    let mut root = IdGenerator::from_os().unwrap();
    let mut seen: HashSet<[u8; 20]> = HashSet::with_capacity(count);
    let mut add = |id: &str| {
        let bytes: [u8; 20] = id.as_bytes().try_into().unwrap();
        assert!(seen.insert(bytes), "id {id} repeated");
    };
    // Session ids from the endpoint's generator; socket ids from the
    // connections' forks.
    for _ in 0..count / 2 {
        add(&root.next_id());
    }
    for _ in 0..count / 2 / 500 {
        let mut fork = root.fork();
        for _ in 0..500 {
            add(&fork.next_id());
        }
    }
    assert_eq!(seen.len(), count / 2 + count / 2 / 500 * 500);
}

#[test]
fn generators_seeded_by_the_system_differ() {
    let mut a = IdGenerator::from_os().unwrap();
    let mut b = IdGenerator::from_os().unwrap();
    assert_ne!(a.next_id(), b.next_id());
}

/// Session ids the application gives: used as they are when valid, refused
/// when invalid or in use, and only for a request that opens a session.
#[test]
fn session_ids_given_by_the_application() {
    use socketio_proto::{Config, Endpoint, Request, RequestId, Route, SessionIdError, Str};
    let now = std::time::Instant::now();
    let mut endpoint = Endpoint::with_ids(Config::default(), IdGenerator::from_seed([5; 32]));
    let handshake = Request::get("/socket.io/?EIO=4&transport=polling");
    let given = |s: &str| Str::from(s.to_owned());

    let Ok(Route::New(_, mut conn)) =
        endpoint.handle_request_with_id(now, RequestId(1), &handshake, given("node-1_a"))
    else {
        panic!("a valid id opens a session");
    };
    assert_eq!(conn.sid().as_str(), "node-1_a");
    let (_, open) = conn.poll_response().unwrap();
    assert!(
        open.body_text().starts_with(r#"0{"sid":"node-1_a","#),
        "{}",
        open.body_text()
    );
    assert!(endpoint.session("node-1_a").is_some());

    let refused = |endpoint: &mut Endpoint, id: &str| {
        endpoint
            .handle_request_with_id(now, RequestId(2), &handshake, given(id))
            .err()
    };
    assert_eq!(
        refused(&mut endpoint, "node-1_a"),
        Some(SessionIdError::InUse)
    );
    assert_eq!(refused(&mut endpoint, ""), Some(SessionIdError::Empty));
    assert_eq!(
        refused(&mut endpoint, &"x".repeat(65)),
        Some(SessionIdError::TooLong(65))
    );
    assert_eq!(
        refused(&mut endpoint, "a&sid=b"),
        Some(SessionIdError::InvalidCharacter)
    );
    assert_eq!(
        endpoint.session_count(),
        1,
        "no refused id opened a session"
    );

    // A request that opens no session ignores the id; an invalid handshake
    // gets its own error first.
    let poll = Request::get("/socket.io/?EIO=4&transport=polling&sid=node-1_a");
    assert!(matches!(
        endpoint.handle_request_with_id(now, RequestId(3), &poll, given("")),
        Ok(Route::Existing(_))
    ));
    let bad = Request::get("/socket.io/?EIO=4&transport=carrier-pigeon");
    let Ok(Route::Respond(r)) = endpoint.handle_request_with_id(now, RequestId(4), &bad, given(""))
    else {
        panic!("an unknown transport is answered");
    };
    assert_eq!(r.body_text(), r#"{"code":0,"message":"Transport unknown"}"#);
}
