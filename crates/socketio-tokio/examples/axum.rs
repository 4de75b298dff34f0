//! Socket.IO mounted in an axum application, beside ordinary routes.
//!
//! ```text
//! cargo run -p socketio-tokio --example axum
//! ```
//!
//! Then `GET http://127.0.0.1:3000/` answers "hello", `GET /stats` reports
//! the connected sockets, and Socket.IO clients connect to
//! `http://127.0.0.1:3000` (a `chat` event is broadcast to everyone else).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use socketio_tokio::{AckSender, Cors, Data, DisconnectReason, Socket, SocketIo};

#[derive(Debug, Deserialize, Serialize)]
struct Chat {
    user: String,
    text: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();

    let io = SocketIo::builder().cors(Cors::any()).build()?;
    io.ns("/", |socket: Socket| async move {
        tracing::info!(id = socket.id(), "connected");
        socket.on(
            "chat",
            |socket: Socket, Data(chat): Data<Chat>, ack: AckSender| async move {
                socket.broadcast().emit("chat", &chat)?;
                ack.send(&"delivered")
            },
        );
        socket.on_disconnect(|socket: Socket, reason: DisconnectReason| async move {
            tracing::info!(id = socket.id(), %reason, "disconnected");
        });
    });

    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/stats",
            get(|State(io): State<SocketIo>| async move {
                format!("{} sockets on /\n", io.socket_count("/"))
            }),
        )
        .with_state(io.clone())
        .layer(io.layer());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    // Not `axum::serve`: it has no header read timeout, so a client that
    // trickles its headers, or connects and sends nothing, would hold its
    // connection forever. This server closes both (after 30 s by default,
    // `header_read_timeout` on the builder), limits request heads, and
    // refuses connections past its caps.
    io.http_server()
        .max_connections(10_000)
        .max_connections_per_ip(1_000)
        .serve_until(listener, app, async move {
            let _ = tokio::signal::ctrl_c().await;
            io.shutdown().await;
        })
        .await?;
    Ok(())
}
