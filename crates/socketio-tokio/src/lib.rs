//! A Socket.IO server on tokio and hyper: the binding that runs the sans-IO
//! [`socketio_proto`] core over real sockets, and the API applications are
//! written against.
//!
//! - Mount it as a tower [`Layer`](tower_layer::Layer) in axum or any tower
//!   stack ([`SocketIo::layer`]), as a [`Service`](tower_service::Service)
//!   ([`SocketIo::service`]), or run it alone ([`SocketIo::serve`], [`serve`]).
//! - Declare namespaces ([`SocketIo::ns`], dynamic ones with
//!   [`SocketIo::dyn_ns`]), refuse clients in connect middlewares
//!   ([`Namespace::with`]), handle typed events ([`Socket::on`] with
//!   [`Data`], [`AckSender`], ...), emit, await acknowledgements, join rooms
//!   and broadcast ([`BroadcastOperator`]).
//! - Serve bare Engine.IO with [`SocketIoBuilder::build_engine`].
//!
//! Each Engine.IO connection runs on a task of its own that owns its
//! protocol state, its WebSocket (4 KiB buffers) and its timer; the
//! application's handlers for that connection run on the same task, so a
//! message costs no task spawn. The shared endpoint (routing, rooms) sits
//! behind a lock taken only to route a new request, change rooms or plan a
//! broadcast; a broadcast is encoded once and the same bytes are handed to
//! each recipient's task. A handler that panics or fails is logged and
//! affects nothing else.
//!
//! Several servers share broadcasts and rooms through an [`Adapter`]
//! (`socketio-redis` is one). It does not compress polling responses or
//! speak JSONP.
//!
//! ```no_run
//! use socketio_tokio::{AckSender, Data, SocketIo, Socket};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let io = SocketIo::new()?;
//!     io.ns("/", |socket: Socket| async move {
//!         // Answer "message" with "message-back", and acknowledge "ping".
//!         socket.on("message", |socket: Socket, Data(text): Data<String>| async move {
//!             let _ = socket.emit("message-back", &text);
//!         });
//!         socket.on("ping", |ack: AckSender| async move {
//!             let _ = ack.send(&"pong");
//!         });
//!     });
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     io.serve(listener).await?;
//!     Ok(())
//! }
//! ```

mod adapter;
mod config;
mod driver;
mod engine;
mod error;
mod handler;
mod handler_map;
mod io;
mod limits;
mod ns;
mod operators;
mod queue;
mod request_head;
mod serve;
mod service;
mod socket;
mod ws;

pub use adapter::{Adapter, AdapterError, LocalNode, RemoteSocket, ServerAck, ServerSideEvent};
pub use config::{Cors, SocketIoBuilder};
pub use engine::EngineSocket;
pub use error::{AckError, BuildError, EmitError, ServeError};
pub use handler::{
    AckSender, Bin, Data, EventContext, EventHandler, EventName, ExtractError, FromEvent,
    HandlerResult, RawArgs, TryData,
};
pub use io::SocketIo;
pub use ns::{ConnectError, ConnectRequest, Namespace};
pub use operators::{AckStream, BroadcastOperator, RoomParam};
pub use serve::{HttpServer, serve};
pub use service::{
    BoxError, NotFound, ResponseFuture, SocketIoBody, SocketIoLayer, SocketIoService,
};
pub use socket::{AckFuture, Emitter, EventInfo, Extensions, Handshake, RemoteAddr, Socket};

pub use socketio_proto::{self, Data as Message, DisconnectReason, Payload, Str};
