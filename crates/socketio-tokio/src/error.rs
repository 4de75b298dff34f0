//! Error types: one per failure domain.

use socketio_proto::socketio_packet::{DataError, EncodeError};

/// Why an emit could not be queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The arguments could not be serialized.
    #[error("cannot encode the arguments: {0}")]
    Encode(#[from] EncodeError),
    /// The socket is disconnected (or its connection is closed).
    #[error("the socket is disconnected")]
    Disconnected,
    /// The client does not read fast enough: its connection holds more
    /// than `max_buffer_size` bytes waiting to be sent. It is being closed
    /// ("transport error").
    #[error("the connection's send buffer is full; the connection is closing")]
    BufferFull,
}

/// Why an acknowledgement did not come back as expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// No acknowledgement came in time.
    #[error("the acknowledgement timed out")]
    Timeout,
    /// The acknowledgement's arguments do not match the requested type.
    #[error("cannot decode the acknowledgement: {0}")]
    Decode(#[from] DataError),
    /// The socket disconnected before acknowledging.
    #[error("the socket disconnected before acknowledging")]
    Disconnected,
    /// The event could not be sent.
    #[error("cannot send the event: {0}")]
    Emit(#[from] EmitError),
    /// The other nodes of the cluster could not be asked.
    #[error("cluster: {0}")]
    Cluster(AdapterError),
}

/// Why a server could not be started or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Binding or accepting on the listener failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a [`SocketIo`](crate::SocketIo) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The operating system gave no randomness for the session ids.
    #[error("no randomness for the session ids: {0}")]
    Random(String),
    /// The session [`Cookie`](crate::Cookie) has a name or an attribute
    /// that cannot be written in a `Set-Cookie` header.
    #[error("the session cookie: {0}")]
    Cookie(String),
    /// The client bundle of
    /// [`serve_client`](crate::SocketIoBuilder::serve_client) cannot be read.
    #[error("the client bundle in {}: {reason}", path.display())]
    ClientBundle {
        /// The directory given to `serve_client`.
        path: std::path::PathBuf,
        /// What is missing, and how to install it.
        reason: String,
    },
}

/// A cluster query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// Not every node answered in time.
    #[error("timeout reached while waiting for {0} response")]
    Timeout(&'static str),
    /// The transport between the nodes failed.
    #[error("cluster transport: {0}")]
    Transport(String),
    /// Data could not be serialized or deserialized.
    #[error("cluster data: {0}")]
    Encode(String),
}
