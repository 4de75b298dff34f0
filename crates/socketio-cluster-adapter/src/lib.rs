//! The protocol of `socket.io-adapter`'s `ClusterAdapter` (2.5) for
//! [`socketio_tokio`], over any transport.
//!
//! The Node.js adapters written on `ClusterAdapter` (the sharded mode of
//! `@socket.io/redis-adapter`, `@socket.io/redis-streams-adapter`,
//! `@socket.io/postgres-adapter`) all exchange the same messages,
//! `{type, data, uid, nsp}` in JSON or msgpack ([`wire`]), and differ only
//! in how they carry them. [`ClusterNode`] is one node of such a cluster:
//! it is the server's [`Adapter`](socketio_tokio::Adapter), it turns the
//! binding's operations into messages and the other nodes' messages into
//! deliveries and answers, and it keeps the requests in flight. A
//! [`Transport`] moves the bytes: `socketio-redis`'s sharded adapter is one.
//!
//! What crosses the cluster, both ways with Node servers: broadcasts (rooms,
//! exceptions, volatile, `compress(false)`, binary data as msgpack),
//! `socketsJoin`, `socketsLeave`, `disconnectSockets`, `fetchSockets`,
//! server-side emits with and without acknowledgements, and broadcasts with
//! acknowledgements. The protocol has no request for the rooms of the other
//! nodes: [`all_rooms`](socketio_tokio::SocketIo::all_rooms) answers with
//! the local rooms, as the reference does.

mod node;
pub mod wire;

pub use node::{ClusterNode, Heartbeat, Route, Transport, random_id};
