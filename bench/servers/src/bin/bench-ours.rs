//! The benchmark server on socketio-tokio, on a current-thread runtime (the
//! server is pinned to one core). `--deflate` turns on permessage-deflate
//! with the reference's defaults.

use bench_servers::announce;
use socketio_tokio::SocketIo;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let io = if bench_servers::flag("deflate") {
        SocketIo::builder()
            .per_message_deflate(Some(socketio_tokio::PerMessageDeflate::new()))
            .build()?
    } else {
        SocketIo::new()?
    };
    bench_servers::ours_handlers(&io);
    let listener = bench_servers::listen()?;
    announce(listener.local_addr()?);
    io.serve(listener).await?;
    Ok(())
}
