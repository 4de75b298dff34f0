//! The benchmark server on socketio-tokio, on a current-thread runtime (the
//! server is pinned to one core).

use bench_servers::{ROOM, announce, port};
use socketio_tokio::{AckSender, Data, Socket, SocketIo};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let io = SocketIo::new()?;
    io.ns("/", |socket: Socket| async move {
        socket.on(
            "echo",
            |socket: Socket, Data(args): Data<(u64, u64)>| async move {
                let _ = socket.emit("echo", &args);
            },
        );
        socket.on(
            "echo_ack",
            |Data(args): Data<(u64, u64)>, ack: AckSender| async move {
                let _ = ack.send(&args);
            },
        );
        socket.on(
            "join",
            |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
                socket.join(room);
                let _ = ack.send(&());
            },
        );
        socket.on(
            "broadcast",
            |socket: Socket, Data(args): Data<(u64, u64)>| async move {
                let _ = socket.within(ROOM).emit("bcast", &args);
            },
        );
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port())).await?;
    announce(listener.local_addr()?);
    io.serve(listener).await?;
    Ok(())
}
