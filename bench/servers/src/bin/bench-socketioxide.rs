//! The benchmark server on socketioxide (crates.io), served by hyper's HTTP/1
//! connection with upgrades as in its own hyper example, tracing off, default
//! buffers, TCP_NODELAY as ours and Node set it, on a current-thread runtime
//! (the server is pinned to one core). `--ping-interval S` sets the interval
//! between pings.

use bench_servers::{ROOM, announce};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = SocketIo::builder();
    if let Some(interval) = bench_servers::ping_interval() {
        builder = builder.ping_interval(interval);
    }
    let (svc, io) = builder.build_svc();
    // `--burst`: the handlers of the `burst` and `broadcast_burst` scenarios,
    // as ours has them.
    let burst = bench_servers::flag("burst");
    io.ns("/", async move |socket: SocketRef| {
        if burst {
            socket.on(
                "burst",
                async |socket: SocketRef, Data((a, b, n)): Data<(u64, u64, u64)>| {
                    for _ in 0..n.min(64) {
                        let _ = socket.emit("echo", &(a, b));
                    }
                },
            );
            socket.on(
                "broadcast_burst",
                async |socket: SocketRef, Data((a, b, n)): Data<(u64, u64, u64)>| {
                    for _ in 0..n.min(64) {
                        let _ = socket.within(ROOM).emit("bcast", &(a, b)).await;
                    }
                },
            );
        }
        socket.on(
            "echo",
            async |socket: SocketRef, Data(args): Data<(u64, u64)>| {
                let _ = socket.emit("echo", &args);
            },
        );
        socket.on(
            "echo_ack",
            async |Data(args): Data<(u64, u64)>, ack: AckSender| {
                let _ = ack.send(&args);
            },
        );
        socket.on(
            "join",
            async |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
                socket.join(room);
                let _ = ack.send(&());
            },
        );
        socket.on("stats", async |io: SocketIo, ack: AckSender| {
            let _ = ack.send(&(io.sockets().len(), bench_servers::alive_tasks()));
        });
        socket.on(
            "broadcast",
            async |socket: SocketRef, Data(args): Data<(u64, u64)>| {
                let _ = socket.within(ROOM).emit("bcast", &args).await;
            },
        );
    });
    let listener = bench_servers::listen()?;
    announce(listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        // As ours and Node do: no Nagle delay on small frames.
        let _ = stream.set_nodelay(true);
        let svc = svc.clone();
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}
