//! What connection state recovery costs a broadcast in instructions: run
//! it twice under callgrind, with recovery on and off, and divide the
//! difference by the number of broadcasts.
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/recovery_cost on
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/recovery_cost off
//! ```
//!
//! Each run plans `BROADCASTS` chat messages to a room of `MEMBERS`
//! sockets and hands each to every member's connection, as a binding does.

use std::time::Instant;

use socketio_proto::{
    BroadcastOptions, Config, Connection, ConnectionHandle, Endpoint, IdGenerator, Packet,
    Recovery, Str,
};
use std::collections::HashMap;

#[path = "common/sockets.rs"]
mod sockets;

const BROADCASTS: usize = 10_000;
const MEMBERS: u64 = 100;

fn main() {
    let on = std::env::args().nth(1).as_deref() == Some("on");
    let config = Config::default()
        .with_max_buffer_size(usize::MAX)
        .with_recovery(on.then(Recovery::default));
    let mut endpoint = Endpoint::with_ids(config, IdGenerator::from_seed([7; 32]));
    let now = Instant::now();
    let mut conns: HashMap<ConnectionHandle, Box<Connection>> = HashMap::new();
    let rooms = ["room:general".to_owned()];
    for n in 0..MEMBERS {
        let (handle, conn) = sockets::socket(&mut endpoint, n, now, &rooms);
        conns.insert(handle, conn);
    }
    let opts = BroadcastOptions::all().to("room:general");
    let msg = serde_json::json!({
        "room": "general",
        "name": "Ana Lima",
        "text": "Hi Bo! Is the new build ready to try?",
    });
    let mut sent = 0;
    for _ in 0..BROADCASTS {
        let packet = Packet::event(Str::from("/"), "message", &(&msg,), None).expect("encodes");
        let plan = endpoint.broadcast(now, &packet, &opts);
        for handle in &plan.targets {
            if let Some(conn) = conns.get_mut(handle) {
                conn.send_encoded("/", &plan.encoded, false).expect("sent");
                sent += 1;
            }
        }
    }
    println!(
        "{sent} deliveries, recovery {}",
        if on { "on" } else { "off" }
    );
}
