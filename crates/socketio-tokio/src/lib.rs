//! A Socket.IO server on tokio and hyper: the binding that runs the sans-IO
//! [`socketio_proto`] core over real sockets, and the API applications are
//! written against.
//!
//! - Mount it as a tower [`Layer`](tower_layer::Layer) in axum or any tower
//!   stack ([`SocketIo::layer`]), as a [`Service`](tower_service::Service)
//!   ([`SocketIo::service`]), or run it alone ([`SocketIo::serve`], [`serve`]).
//!   [`HttpServer`] serves either with header and first-bytes timeouts,
//!   header limits and connection caps.
//! - Declare namespaces ([`SocketIo::ns`], dynamic ones with
//!   [`SocketIo::dyn_ns`]), refuse clients in connect middlewares given
//!   with the namespace ([`ConnectHandler::with`]), handle typed events
//!   ([`Socket::on`]) with extractors ([`Data`], [`State`], [`AckSender`],
//!   ...: see [`FromParts`]), emit, await acknowledgements, join rooms and
//!   broadcast ([`BroadcastOperator`]).
//! - Arguments follow one convention everywhere (emits, acknowledgements,
//!   [`Data`], ack futures and streams): a tuple is the argument list,
//!   anything else is one argument.
//! - Serve bare Engine.IO with [`SocketIoBuilder::build_engine`].
//!
//! Each Engine.IO connection runs on a task of its own that owns its
//! WebSockets and its timer; the application's handlers for that
//! connection run on the same task, so a message costs no task spawn. The
//! connection's protocol state sits behind a lock of its own, held for one
//! call at a time: an emit or a broadcast delivery calls the core directly,
//! with no queue in between, and the core's send buffer (bounded by
//! `max_buffer_size`) is where bytes wait for a slow client. The shared
//! endpoint (routing, rooms) sits behind a lock taken only to route a new
//! request, change rooms or plan a broadcast; a broadcast is encoded once
//! and the same bytes are handed to each recipient. A handler that panics or
//! fails is logged and affects nothing else. Timers run on tokio's clock, so
//! a paused clock drives them in virtual time.
//!
//! Several servers share broadcasts and rooms through an [`Adapter`]
//! (`socketio-redis` is one). Old clients (Socket.IO 2.x, Engine.IO v3,
//! JSONP polling included) are served with
//! [`allow_eio3`](SocketIoBuilder::allow_eio3). Polling responses of 1 KiB
//! and more are compressed ([`http_compression`](SocketIoBuilder::http_compression));
//! WebSocket messages are compressed with permessage-deflate when it is turned
//! on ([`per_message_deflate`](SocketIoBuilder::per_message_deflate), off by
//! default as in the reference) and the client offers it; an emit can opt
//! out ([`Socket::compress`]).
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

mod api;
mod args;
mod clock;
mod cluster;
mod config;
mod conn;
mod error;
mod handler_map;
mod http;
mod limits;
#[cfg(feature = "lock-profile")]
mod lock_profile;
mod mailbox;
mod request_head;
mod stats;
mod ws;

pub use api::engine::EngineSocket;
pub use api::extract::{
    AckSender, Bin, Data, DisconnectContext, EventContext, EventName, Extension, ExtractError,
    FromParts, Handler, HandlerResult, MaybeExtension, Middleware, NsName, Parts, RawArgs,
    SocketParts, State, TryData,
};
pub use api::node::LocalNode;
pub use api::ns::{
    ConnectError, ConnectHandler, ConnectRequest, IntoNsHandler, Namespace, NsHandler,
    WithMiddlewares,
};
pub use api::operators::{Ack, AckStream, BroadcastOperator};
pub use api::server::{SocketIo, WeakSocketIo};
pub use api::socket::{
    AckFuture, Emitter, EventInfo, Extensions, Handshake, ListenerId, RemoteAddr, Socket,
    SocketError,
};
pub use args::RoomParam;
pub use cluster::{
    Adapter, AdapterError, AdapterStats, RemoteSocket, RestoredSession, ServerAck, ServerSideEvent,
};
pub use config::{Cookie, Cors, PerMessageDeflate, SameSite, SocketIoBuilder};
pub use error::{AckError, BuildError, EmitError, ServeError};
pub use http::serve::{HttpServer, serve};
pub use http::service::{
    BoxError, NotFound, ResponseFuture, SocketIoBody, SocketIoLayer, SocketIoService,
};
#[cfg(feature = "lock-profile")]
pub use lock_profile::LockSite;
pub use stats::{HandshakeRefusal, REASONS, ServerStats};

pub use socketio_proto::socketio_packet::ProtocolVersion;
pub use socketio_proto::{
    self, Data as Message, DisconnectReason, Parser, Payload, Recovery, RoomEvent, Str,
    TransportKind as TransportType,
};
