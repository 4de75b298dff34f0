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
//! What crosses the cluster, both ways with Node servers:
//!
//! - broadcasts, with rooms, exceptions and the volatile flag (and those of
//!   `@socket.io/redis-emitter`, whose uid is `"emitter"`); binary data
//!   travels as msgpack `bin`;
//! - sockets joining and leaving rooms and being disconnected through a
//!   [`BroadcastOperator`](socketio_tokio::BroadcastOperator) (the
//!   reference's `socketsJoin`, `socketsLeave`, `disconnectSockets`, and
//!   their older one-socket forms);
//! - queries: [`fetch_sockets`](socketio_tokio::BroadcastOperator::fetch_sockets)
//!   (`fetchSockets()`: id, handshake, rooms, data),
//!   [`all_rooms`](socketio_tokio::SocketIo::all_rooms),
//!   [`server_count`](socketio_tokio::SocketIo::server_count) (`PUBSUB
//!   NUMSUB` of the request channel), and the SOCKETS request;
//! - server-side emits, with or without acknowledgements
//!   ([`server_side_emit`](socketio_tokio::SocketIo::server_side_emit),
//!   [`on_server_side_emit`](socketio_tokio::SocketIo::on_server_side_emit));
//! - broadcasts with acknowledgements
//!   ([`emit_with_ack`](socketio_tokio::BroadcastOperator::emit_with_ack),
//!   the reference's `timeout(t).emitWithAck()`): every node tells how many
//!   clients it sent to, then passes each acknowledgement on.
//!
//! Local operations ([`local`](socketio_tokio::BroadcastOperator::local))
//! are never published, and a node ignores its own messages. Dynamic namespaces receive broadcasts (one pattern covers
//! every namespace) but take part in requests only once declared with
//! [`SocketIo::ns`](socketio_tokio::SocketIo::ns).
//!
//! The Redis client is the [`redis`] crate (tokio, async): the most used
//! Rust client, with pub/sub on its own connection and multiplexed commands
//! on another, which is exactly the reference's pair of `pubClient` and
//! `subClient`. The adapter reconnects both by itself: when Redis goes away,
//! local delivery goes on, broadcasts for the other nodes are dropped (with
//! a warning) until it is back, and the subscriber reconnects and
//! resubscribes with exponential backoff. Messages wait to be published in
//! a bounded queue ([`RedisAdapterBuilder::queue_capacity`]); a malformed
//! message on a channel is ignored with a warning. (The `redis` crate
//! buffers received messages in a queue of its own, without a bound: this
//! adapter takes them as fast as they come, without awaiting anything.)

//!
//! # Sharded mode, for a Redis Cluster
//!
//! With the `sharded` feature, [`ShardedRedisAdapter`] speaks the sharded
//! mode of the same library (`createShardedAdapter`, Redis 7's SPUBLISH and
//! SSUBSCRIBE), whose messages are those of `socket.io-adapter`'s
//! `ClusterAdapter` (the `socketio-cluster-adapter` crate). It connects with
//! the `redis` crate's cluster client (RESP3, which carries the sharded
//! messages as pushes), which follows the cluster's slots as they move and
//! subscribes again after a node fails over or restarts. It speaks the
//! three subscription modes ([`SubscriptionMode`]): `"dynamic"` (the
//! default, as in the reference) and `"dynamic-private"`, where each room
//! has a channel that a server subscribes to while the room has members
//! there, and `"static"`.
//!
//! ```no_run
//! # #[cfg(feature = "sharded")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use socketio_redis::ShardedRedisAdapter;
//! let io = socketio_tokio::SocketIo::new()?;
//! let _adapter = ShardedRedisAdapter::builder(["redis://127.0.0.1:7000"])
//!     .attach(&io)
//!     .await?;
//! # Ok(())
//! # }
//! ```

//!
//! # Redis Streams
//!
//! With the `streams` feature, [`StreamsRedisAdapter`] speaks
//! `@socket.io/redis-streams-adapter` 0.3: broadcasts, room changes and
//! disconnections are appended to one stream (`XADD`, trimmed to about
//! 10,000 entries), which every node reads from where it last read, so a
//! node whose connection to Redis drops for a moment misses nothing the
//! stream still holds; requests and answers go through pub/sub. With
//! connection state recovery on, the adapter carries it across servers as
//! the reference does (sessions kept in Redis, offsets that are the
//! stream's entry ids): a client that reconnects to another server, ours
//! or a Node one, gets its session back with every broadcast it missed.

mod node;
#[cfg(feature = "sharded")]
mod sharded;
#[cfg(feature = "streams")]
mod streams;
#[cfg(feature = "streams")]
pub mod streams_wire;
pub mod wire;

pub use node::{RedisAdapter, RedisAdapterBuilder, RedisAdapterError};
#[cfg(feature = "sharded")]
pub use sharded::{ShardedRedisAdapter, ShardedRedisAdapterBuilder, SubscriptionMode};
#[cfg(feature = "streams")]
pub use streams::{StreamsRedisAdapter, StreamsRedisAdapterBuilder};
