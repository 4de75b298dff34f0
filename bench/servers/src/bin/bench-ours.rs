//! The benchmark server on socketio-tokio, on a current-thread runtime (the
//! server is pinned to one core), on the system's allocator (glibc's malloc
//! here). `--deflate` turns on permessage-deflate with the reference's
//! defaults, `--recovery` connection state recovery, `--ping-interval S`
//! the interval between pings.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    bench_servers::run_ours()
}
