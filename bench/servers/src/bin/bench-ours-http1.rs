//! Ours (socketio-tokio) as `bench-ours`, but served the way the socketioxide
//! server is: its tower service on hyper's plain HTTP/1 connection with
//! upgrades, instead of `SocketIo::serve` (hyper-util's HTTP/1 and HTTP/2
//! `auto` connection, watched for graceful shutdown). It tells how much the
//! serving path costs.

use bench_servers::{announce, ours_handlers};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use socketio_tokio::SocketIo;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let io = SocketIo::new()?;
    ours_handlers(&io);
    let listener = bench_servers::listen()?;
    announce(listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(io.service());
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}
