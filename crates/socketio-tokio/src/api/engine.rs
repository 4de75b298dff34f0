//! Bare Engine.IO: one [`EngineSocket`] per connection, messages in and out.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use socketio_proto::{Data, DisconnectReason, Str};
use tokio::sync::mpsc;

use crate::api::link::Link;
use crate::api::socket::Handshake;
use crate::error::EmitError;
use crate::mailbox::Inbox;

pub(crate) type EngineHandler = Arc<dyn Fn(EngineSocket) -> BoxFuture<'static, ()> + Send + Sync>;

/// One Engine.IO connection of a server built with
/// [`SocketIoBuilder::build_engine`](crate::SocketIoBuilder::build_engine):
/// text and binary messages, without Socket.IO's namespaces and events.
pub struct EngineSocket {
    pub(crate) id: Str,
    pub(crate) link: Arc<Link>,
    pub(crate) rx: mpsc::UnboundedReceiver<Data>,
    pub(crate) inbox: Inbox,
    pub(crate) handshake: Handshake,
}

impl fmt::Debug for EngineSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineSocket")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl EngineSocket {
    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The opening request's headers, query, address and time.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The next message from the client, or `None` once the connection is closed.
    ///
    /// Messages wait here until read, up to `max_buffer_size` bytes: a
    /// connection whose messages are left unread beyond that is closed
    /// ("transport error").
    pub async fn recv(&mut self) -> Option<Data> {
        let data = self.rx.recv().await?;
        self.inbox.read(&data);
        Some(data)
    }

    /// Sends a message: [`Data::Text`] or [`Data::Binary`].
    ///
    /// # Errors
    ///
    /// [`EmitError::Disconnected`] when the connection is gone;
    /// [`EmitError::BufferFull`] when the client does not read fast enough
    /// and more than `max_buffer_size` bytes wait for it (the connection is
    /// being closed, "transport error").
    pub fn send(&self, message: Data) -> Result<(), EmitError> {
        self.link.send_message(message)
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.link.close(DisconnectReason::ForcedClose);
    }
}
