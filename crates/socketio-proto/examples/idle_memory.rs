//! What an idle WebSocket connection holds in memory: the size of a
//! `Connection`, and the heap blocks and bytes it keeps once a client has
//! joined `/` and the binding has drained every output.
//!
//! The heap is counted by the allocator over many connections, with and
//! without the connections kept, so that the figures are the connections'
//! own and not the endpoint's (its maps and rooms index are counted apart).
//! Then one of them echoes messages, counting the allocations a message in
//! and the same packet out make: what keeping a connection small must not
//! raise, since each costs instructions on a busy connection.
//! Run with `cargo run --release -p socketio-proto --example idle_memory`.

use std::time::{Duration, Instant};

use socketio_proto::{
    Config, Connection, ConnectionHandle, Data, Endpoint, Event, IdGenerator, Request, RequestId,
    Route, Str,
};

// The heap, counted: every allocation and free goes through dhat.
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn allocations() -> u64 {
    dhat::HeapStats::get().total_blocks
}

fn live() -> (isize, isize) {
    let stats = dhat::HeapStats::get();
    (stats.curr_blocks as isize, stats.curr_bytes as isize)
}

const CONNECTIONS: usize = 10_000;
const ECHOES: u64 = 10_000;

/// A WebSocket connection with a socket on `/`, drained as a binding
/// drains it, then left until its connect timeout has passed.
fn idle(endpoint: &mut Endpoint, n: u64, now: Instant) -> (ConnectionHandle, Box<Connection>) {
    let req = Request::websocket("/socket.io/?EIO=4&transport=websocket");
    let ws = RequestId(n);
    let Route::New(handle, mut conn) = endpoint.handle_request(now, ws, &req) else {
        panic!("a handshake opens a session");
    };
    conn.handle_frame(now, ws, Data::Text(Str::from("40")));
    while let Some(event) = conn.poll_event() {
        if let Event::ConnectRequest { nsp, .. } = event {
            conn.accept(&nsp).expect("accepted");
        }
    }
    while conn.poll_transmit().is_some() {}
    while let Some(ev) = conn.poll_endpoint_event() {
        endpoint.handle_event(now, handle, ev);
    }
    while conn.poll_response().is_some() {}
    // The binding's timer: the first ping goes, and the client answers.
    let later = now + Duration::from_secs(60);
    conn.handle_timeout(later);
    while conn.poll_transmit().is_some() {}
    conn.handle_frame(later, ws, Data::Text(Str::from("3")));
    conn.take_counters();
    while conn.poll_event().is_some() {}
    (handle, conn)
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let now = Instant::now();
    let mut endpoint = Endpoint::with_ids(Config::default(), IdGenerator::from_seed([7; 32]));
    // The list that holds the connections is made first, and not counted.
    let mut conns = Vec::with_capacity(CONNECTIONS);
    let before = live();
    for n in 0..CONNECTIONS as u64 {
        conns.push(idle(&mut endpoint, n, now));
    }
    let with = live();
    let (_, mut conn) = conns.pop().expect("connections");
    drop(conns);
    let ws = RequestId(CONNECTIONS as u64 - 1);
    let now = now + Duration::from_secs(60);
    let message = Str::from(r#"42["echo",{"text":"hi"}]"#);
    let before_echoes = allocations();
    for _ in 0..ECHOES {
        conn.handle_frame(now, ws, Data::Text(message.clone()));
        let Some(Event::Message(event)) = conn.poll_event() else {
            panic!("the message comes out");
        };
        conn.emit(&event.packet(), false).expect("sent");
        assert!(conn.poll_transmit().is_some());
        assert!(conn.poll_response().is_none());
        assert!(conn.poll_endpoint_event().is_none());
        conn.take_counters();
    }
    let per_echo = (allocations() - before_echoes) as f64 / ECHOES as f64;
    drop(conn);
    let without = live();
    let holder =
        (CONNECTIONS * std::mem::size_of::<(ConnectionHandle, Box<Connection>)>()) as isize;
    let without = (without.0 + 1, without.1 + holder);
    let per = |d: isize| d as f64 / CONNECTIONS as f64;
    println!(
        "size_of::<Connection>(): {} bytes",
        std::mem::size_of::<Connection>()
    );
    println!(
        "per idle connection, its own: {:.2} blocks, {:.1} bytes (the Box<Connection> included)",
        per(with.0 - without.0),
        per(with.1 - without.1),
    );
    println!(
        "per idle connection, the endpoint's: {:.2} blocks, {:.1} bytes",
        per(without.0 - before.0),
        per(without.1 - before.1),
    );
    println!("allocations per echo: {per_echo:.2}");
}
