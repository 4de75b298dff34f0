//! The application API: the server handle ([`SocketIo`](server::SocketIo)),
//! namespaces, sockets, the extractors of event handlers, broadcast
//! operators, bare Engine.IO sockets, and this node as a cluster adapter
//! sees it.
//!
//! It reaches a connection only through its [`mailbox`](crate::mailbox) and
//! the shared endpoint; it knows nothing of tasks, WebSockets or HTTP.

pub(crate) mod engine;
pub(crate) mod extract;
pub(crate) mod link;
pub(crate) mod node;
pub(crate) mod ns;
pub(crate) mod operators;
pub(crate) mod server;
pub(crate) mod socket;
