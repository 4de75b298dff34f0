//! What connection state recovery costs in memory: the heap bytes one
//! stored packet and one saved session hold, counted by the allocator.
//!
//! Each figure is the difference between two runs of the same steps, with
//! recovery on and off, divided by the count: what the store adds and
//! nothing else. Run with `cargo run --release -p socketio-proto --example
//! recovery_memory`; `bench/node/recovery-memory.mjs` measures the same for
//! the reference server.

use std::time::Instant;

use socketio_proto::socketio_packet::ProtocolVersion;
use socketio_proto::{
    BroadcastOptions, Config, DisconnectReason, Encoded, Endpoint, IdGenerator, Packet, Recovery,
    Str,
};

#[path = "common/sockets.rs"]
mod sockets;

// The heap, counted: every allocation and free goes through dhat.
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn live() -> isize {
    dhat::HeapStats::get().curr_bytes as isize
}

const PACKETS: usize = 100_000;
const SESSIONS: usize = 10_000;

/// A chat message, as the chat example broadcasts it.
fn message(n: usize) -> Packet {
    let msg = serde_json::json!({
        "id": format!("18c2f-{n}"),
        "room": "general",
        "name": "Ana Lima",
        "text": "Hi Bo! Is the new build ready to try?",
        "ts": 1_764_633_600_000u64 + n as u64,
    });
    Packet::event(Str::from("/"), "message", &(msg,), None).expect("encodes")
}

fn endpoint(recovery: bool) -> Endpoint {
    let recovery = recovery.then(|| {
        Recovery::default()
            .with_store_bounds(usize::MAX, usize::MAX)
            .with_max_sessions(usize::MAX)
    });
    Endpoint::with_ids(
        Config::default().with_recovery(recovery),
        IdGenerator::from_seed([7; 32]),
    )
}

/// Heap bytes held after `PACKETS` broadcasts to a room with no member.
fn packets(recovery: bool) -> isize {
    let packets: Vec<Packet> = (0..PACKETS).map(message).collect();
    let mut endpoint = endpoint(recovery);
    let now = Instant::now();
    let opts = BroadcastOptions::all().to("room:general");
    let before = live();
    for p in &packets {
        let plan = endpoint.broadcast(now, p, &opts);
        drop(plan);
    }
    live() - before
}

/// Heap bytes held after `SESSIONS` sockets dropped (their connections
/// gone; with recovery, their sessions saved).
fn sessions(recovery: bool) -> isize {
    let mut endpoint = endpoint(recovery);
    let now = Instant::now();
    let before = live();
    let conns: Vec<_> = (0..SESSIONS as u64)
        .map(|n| {
            let rooms = ["room:general".to_owned(), format!("user:{n}")];
            sockets::socket(&mut endpoint, n, now, &rooms)
        })
        .collect();
    for (handle, mut conn) in conns {
        conn.close(now, DisconnectReason::TransportClose);
        while let Some(ev) = conn.poll_endpoint_event() {
            endpoint.handle_event(now, handle, ev);
        }
    }
    live() - before
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let stored = packets(true) - packets(false);
    let saved = sessions(true) - sessions(false);
    let encoded = Encoded::new(&message(0), ProtocolVersion::V5);
    println!(
        "{{\"bytes_per_stored_packet\":{},\"packet_wire_bytes\":{},\"bytes_per_saved_session\":{}}}",
        stored / PACKETS as isize,
        encoded.size(),
        saved / SESSIONS as isize,
    );
}
