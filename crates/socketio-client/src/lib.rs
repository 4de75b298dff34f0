//! A Socket.IO client on tokio, with the API of the official JavaScript client.
//!
//! `socketio-client` connects to any Socket.IO v5 server (the Node.js `socket.io` 4 server,
//! python-socketio, this workspace's `socketio-tokio`) over HTTP long-polling, WebSocket, or
//! polling upgraded to WebSocket, and reconnects by itself with the official client's
//! randomised exponential delays. Every protocol decision is the sans-IO
//! [`socketio-client-proto`](socketio_client_proto)'s; this crate moves bytes, runs one timer
//! and calls handlers.
//!
//! - [`connect`] (the official `io(url)`) gives a [`ClientBuilder`] with the options, then a
//!   [`Socket`] for the URL's namespace; [`Socket::of`] joins more over the same connection.
//! - [`Socket::on`], [`Socket::on_any`], [`Socket::on_connect`], [`Socket::on_disconnect`],
//!   [`Socket::on_connect_error`], [`Socket::on_manager`] (the reconnection events).
//!   Handlers are plain closures run on the client's task: spawn a task for slow work.
//!   A handler that panics is caught and logged; the client goes on.
//! - [`Socket::emit`], [`Socket::emit_with_ack`] (a future), [`Socket::timeout`],
//!   [`Socket::volatile`], [`Socket::disconnect`], [`Socket::close`].
//! - Emits made while disconnected wait in a bounded buffer and go out on connection;
//!   connection state recovery is automatic against a server that has it on
//!   ([`Socket::recovered`]).
//!
//! With the `tls` feature, `https` and `wss` URLs go through rustls, trusting the Mozilla roots
//! and those given to [`ClientBuilder::tls_root_certificates_pem`]; without it they are refused.
//! It does not speak the protocol of Socket.IO 2 servers (Engine.IO 3).
//!
//! ```
//! use std::time::Duration;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // A server to talk to: this workspace's, answering "ping" with "pong".
//! # let io = socketio_tokio::SocketIo::builder().build()?;
//! # io.ns("/", |socket: socketio_tokio::Socket| async move {
//! #     socket.on("ping", |ack: socketio_tokio::AckSender| async move { ack.send(&"pong") });
//! # });
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let url = format!("http://{}", listener.local_addr()?);
//! # let server = io.clone();
//! # tokio::spawn(async move { server.serve(listener).await });
//! let (tx, mut connected) = tokio::sync::mpsc::unbounded_channel();
//! let socket = socketio_client::connect(&url)
//!     .auth(json!({ "token": "abc" }))
//!     .on("chat", |_socket, msg| {
//!         let (text,): (String,) = msg.args().unwrap_or_default();
//!         println!("chat: {text}");
//!     })
//!     .on_connect(move |socket| {
//!         let _ = tx.send(socket.id());
//!     })
//!     .connect()?;
//! let id = connected.recv().await.flatten();
//! assert!(id.is_some());
//!
//! // An emit that waits for the server's acknowledgement.
//! let answer = socket
//!     .timeout(Duration::from_secs(5))
//!     .emit_with_ack("ping", &())?
//!     .await?;
//! let (pong,): (String,) = answer.args()?;
//! assert_eq!(pong, "pong");
//! socket.close();
//! # Ok(())
//! # }
//! ```

mod builder;
mod clock;
mod driver;
mod error;
mod io;
mod socket;
mod url;

pub use builder::ClientBuilder;
pub use error::{AckError, ConnectError, EmitError, Error};
pub use socket::{AckFuture, AckResponse, AckSender, Emitter, ManagerEvent, Message, Socket};
pub use socketio_client_proto::{self, DisconnectReason, Payload, TransportKind, Transports};

/// Starts a client for `url` (`http://host:port/namespace`), as `io(url)` does: set options
/// and handlers on the builder, then [`ClientBuilder::connect`].
pub fn connect(url: &str) -> ClientBuilder {
    ClientBuilder::new(url)
}
