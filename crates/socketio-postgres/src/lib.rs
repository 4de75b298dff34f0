//! A Postgres adapter for [`socketio_tokio`]: several servers share
//! broadcasts, rooms and socket queries through Postgres `LISTEN`/`NOTIFY`,
//! wire-compatible with `@socket.io/postgres-adapter` 0.5, so that Node
//! servers with that adapter, `@socket.io/postgres-emitter` and these
//! servers form one cluster.
//!
//! ```no_run
//! use socketio_postgres::PostgresAdapter;
//! use socketio_tokio::SocketIo;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let io = SocketIo::new()?;
//! // Fails at once, with a typed error, when Postgres cannot be reached.
//! let _adapter = PostgresAdapter::builder("host=127.0.0.1 user=postgres")
//!     .attach(&io)
//!     .await?;
//! io.to("lobby").emit("news", &"to the lobby, on every server")?;
//! # Ok(())
//! # }
//! ```
//!
//! The messages are those of `socket.io-adapter`'s
//! `ClusterAdapterWithHeartbeat` (the `socketio-cluster-adapter` crate):
//! broadcasts with rooms, exceptions and binary data, `socketsJoin`,
//! `socketsLeave`, `disconnectSockets`, `fetchSockets`, server-side emits
//! with and without acknowledgements, broadcasts with acknowledgements; the
//! nodes count each other by their heartbeats.
//!
//! A notification carries at most 8000 bytes: a larger message, or one
//! with binary data, is written as msgpack to the attachments table
//! (`socket_io_attachments`, created when missing) and only its id is
//! notified, as the reference does; each node deletes the rows older than
//! the cleanup interval (30 s).
//!
//! The Postgres client is [`tokio_postgres`]: the asynchronous client the
//! ecosystem builds on (sqlx and deadpool-postgres among others), whose
//! connection hands notifications over as messages, which is what `LISTEN`
//! needs. Two connections: one listens, the other publishes and reads
//! attachments. When Postgres goes away, local delivery goes on, messages
//! for the other nodes are dropped (with a warning) until it is back, and
//! both connections are made again with backoff. `NOTIFY` delivers at most
//! once, to the nodes listening at that moment.

mod adapter;
pub mod wire;

pub use adapter::{PostgresAdapter, PostgresAdapterBuilder, PostgresAdapterError};
pub use socketio_cluster_adapter::Heartbeat;
