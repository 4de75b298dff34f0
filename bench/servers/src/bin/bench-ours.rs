//! The benchmark server on socketio-tokio, on a current-thread runtime (the
//! server is pinned to one core).

use bench_servers::{announce, port};
use socketio_tokio::SocketIo;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let io = SocketIo::new()?;
    bench_servers::ours_handlers(&io);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port())).await?;
    announce(listener.local_addr()?);
    io.serve(listener).await?;
    Ok(())
}
