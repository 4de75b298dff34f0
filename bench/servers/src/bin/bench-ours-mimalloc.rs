//! `bench-ours` on mimalloc instead of the system's allocator: the same
//! server, the same flags. mimalloc gives the pages it no longer uses back to
//! the system, where glibc's malloc keeps a peak's free memory resident (the
//! reconnect storm of `faults-run` shows the difference).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    bench_servers::run_ours()
}
