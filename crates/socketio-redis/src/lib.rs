//! A Redis adapter for [`socketio_tokio`]: several servers share broadcasts,
//! rooms and socket queries over Redis pub/sub, wire-compatible with the
//! classic mode of `@socket.io/redis-adapter` 8.x, so that Node servers,
//! `@socket.io/redis-emitter` and these servers form one cluster.
//!
//! ```no_run
//! use socketio_tokio::{SocketIo, Socket};
//! use socketio_redis::RedisAdapter;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let io = SocketIo::new()?;
//!     io.ns("/", |socket: Socket| async move {
//!         socket.join("lobby");
//!     });
//!     // Fails at once, with a typed error, when Redis cannot be reached.
//!     let _adapter = RedisAdapter::builder("redis://127.0.0.1:6379").attach(&io).await?;
//!     // Reaches the lobby's sockets on every server of the cluster.
//!     io.to("lobby").emit("news", &"hello")?;
//!     io.serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?).await?;
//!     Ok(())
//! }
//! ```
//!
//! What crosses the cluster: broadcasts (with rooms, exceptions and the
//! volatile flag), sockets joining and leaving rooms and being disconnected
//! through [`BroadcastOperator`](socketio_tokio::BroadcastOperator),
//! `fetch_sockets`, `all_rooms`, and the server count (`PUBSUB NUMSUB` of
//! the request channel). What the other nodes ask (`fetchSockets()`,
//! `allRooms()`, `socketsJoin()`, `socketsLeave()`, `disconnectSockets()`,
//! the older one-socket forms) is answered. Local operations
//! ([`local`](socketio_tokio::BroadcastOperator::local)) are never
//! published. Server-side emits and broadcasts with acknowledgements across
//! nodes are not carried: such requests from Node servers are ignored.
//!
//! The Redis client is the [`redis`] crate (tokio, async): the most used
//! Rust client, with pub/sub on its own connection and multiplexed commands
//! on another, which is exactly the reference's pair of `pubClient` and
//! `subClient`. The adapter reconnects both by itself: when Redis goes away,
//! local delivery goes on, broadcasts for the other nodes are dropped (with
//! a warning) until it is back, and the subscriber reconnects and
//! resubscribes with exponential backoff. Broadcasts wait to be published
//! in a bounded queue; a malformed message on a channel is ignored with a
//! warning.

mod node;
pub mod wire;

pub use node::{RedisAdapter, RedisAdapterBuilder, RedisAdapterError};
