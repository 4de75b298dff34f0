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
