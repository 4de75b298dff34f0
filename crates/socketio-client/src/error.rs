//! Errors of the client's API.

pub use socketio_client_proto::{AckError, ConnectError, EmitError};

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not `http://`, `https://`, `ws://` or `wss://` followed by a host.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// The URL asks for TLS, and the `tls` feature is off.
    #[error("TLS is not supported by this build (the `tls` feature)")]
    TlsUnsupported,
    /// A root certificate could not be read or used.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// The namespace is not valid.
    #[error(transparent)]
    Emit(#[from] EmitError),
}
