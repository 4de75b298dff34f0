//! The benchmark server on socketio-tokio, on a current-thread runtime (the
//! server is pinned to one core). `--deflate` turns on permessage-deflate
//! with the reference's defaults, `--recovery` connection state recovery,
//! `--ping-interval S` the interval between pings.

use bench_servers::announce;
use socketio_tokio::SocketIo;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = SocketIo::builder();
    if bench_servers::flag("deflate") {
        builder = builder.per_message_deflate(Some(socketio_tokio::PerMessageDeflate::new()));
    }
    if let Some(interval) = bench_servers::ping_interval() {
        builder = builder.ping_interval(interval);
    }
    if bench_servers::flag("recovery") {
        builder = builder.connection_state_recovery(socketio_tokio::Recovery::default());
    }
    let io = builder.build()?;
    bench_servers::ours_handlers(&io);
    let listener = bench_servers::listen()?;
    announce(listener.local_addr()?);
    io.serve(listener).await?;
    Ok(())
}
