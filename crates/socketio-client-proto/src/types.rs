//! The types that cross the boundary between the core and a binding.

use bytes::Bytes;
use engineio_packet::{Data, Str};
use socketio_packet::Payload;

/// Identifies one HTTP request or WebSocket, chosen by the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Which transport carries the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl TransportKind {
    /// The name used on the wire (`polling`, `websocket`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::WebSocket => "websocket",
        }
    }
}

/// An HTTP method the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A handshake or a long-polling read.
    Get,
    /// A long-polling write (`Content-Type: text/plain;charset=UTF-8`).
    Post,
}

/// Something for the binding to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Send an HTTP request; answer with [`Client::handle_response`](crate::Client::handle_response)
    /// or [`Client::handle_failure`](crate::Client::handle_failure).
    Http {
        /// The request's id.
        id: RequestId,
        /// The method.
        method: Method,
        /// The path and query, such as `/socket.io/?EIO=4&transport=polling`.
        path_and_query: String,
        /// The body (empty for a GET).
        body: Bytes,
    },
    /// Open a WebSocket; report [`Client::handle_ws_open`](crate::Client::handle_ws_open),
    /// then its messages and its end.
    OpenWebSocket {
        /// The WebSocket's id.
        id: RequestId,
        /// The path and query.
        path_and_query: String,
    },
    /// Send a message on a WebSocket.
    Frame {
        /// The WebSocket.
        id: RequestId,
        /// A text or binary message.
        frame: Data,
    },
    /// Close a WebSocket, after the messages handed out before.
    CloseWebSocket {
        /// The WebSocket.
        id: RequestId,
    },
    /// Give up an HTTP request in flight: its answer is no longer read.
    Cancel {
        /// The request.
        id: RequestId,
    },
}

/// Why a socket was disconnected, with the official client's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The server disconnected the socket (a DISCONNECT packet); the client does not reconnect.
    IoServerDisconnect,
    /// The application disconnected the socket; the client does not reconnect.
    IoClientDisconnect,
    /// The server sent no ping within `pingInterval + pingTimeout`.
    PingTimeout,
    /// The connection was closed (by the server, or the network).
    TransportClose,
    /// The connection failed (an HTTP error, a refused request, an oversized message).
    TransportError,
    /// The server sent something that could not be decoded.
    ParseError,
    /// The client closed the connection because no socket uses it any more.
    ForcedClose,
}

impl DisconnectReason {
    /// The reason as the official client names it (`"io server disconnect"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::IoServerDisconnect => "io server disconnect",
            DisconnectReason::IoClientDisconnect => "io client disconnect",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ForcedClose => "forced close",
        }
    }

    /// Whether the client reconnects by itself after this disconnection
    /// (when reconnection is on): every reason but the two deliberate ones.
    pub fn reconnects(self) -> bool {
        !matches!(
            self,
            DisconnectReason::IoServerDisconnect | DisconnectReason::IoClientDisconnect
        )
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a namespace could not be joined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The server refused the namespace (a CONNECT_ERROR packet): its message, and its `data`
    /// when there is some. The client does not try this namespace again by itself.
    #[error("refused: {message}")]
    Refused {
        /// The `message` of the refusal (`"Invalid namespace"`, or a middleware's error).
        message: String,
        /// The `data` of the refusal, as JSON text.
        data: Option<String>,
    },
    /// The connection could not be opened (`"timeout"`, `"xhr poll error"`, `"websocket error"`, ...);
    /// the client tries again when reconnection is on.
    #[error("connection failed: {0}")]
    Transport(&'static str),
    /// The server's CONNECT answer had no socket id (a server of another major version).
    #[error("the server's connect answer has no socket id")]
    BadAnswer,
}

/// Why an acknowledgement will not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The timeout given to the emit passed.
    #[error("operation has timed out")]
    Timeout,
    /// The socket was disconnected after the event was sent.
    #[error("socket has been disconnected")]
    Disconnected,
}

/// An application's misuse of the API; bad input from a server is never an `EmitError`.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The event name is one the protocol reserves (`connect`, `disconnect`, ...).
    #[error("\"{0}\" is a reserved event name")]
    ReservedName(String),
    /// The namespace was never joined with [`Client::connect`](crate::Client::connect).
    #[error("no socket for namespace {0}")]
    UnknownNamespace(String),
    /// The client was closed for good (a binding's [`close`](crate::Client::close) that ends it).
    #[error("the client is closed")]
    Closed,
    /// The emit would go over `max_buffered` while the client is disconnected.
    #[error("the buffer of emits waiting for a connection is full")]
    BufferFull,
    /// The namespace is not valid, or the arguments could not be serialized.
    #[error(transparent)]
    Encode(#[from] socketio_packet::EncodeError),
}

/// An event received from the server.
#[derive(Debug, Clone)]
pub struct EventMessage {
    /// The namespace.
    pub nsp: Str,
    /// The event name.
    pub name: Str,
    /// The whole payload: the JSON array (event name first) and its attachments.
    pub data: Payload,
    /// The id to answer with [`Client::ack`](crate::Client::ack), when the server asked for one.
    pub ack_id: Option<u64>,
}

impl EventMessage {
    /// The arguments after the event name, deserialized as a sequence (a tuple, a `Vec`, ...).
    ///
    /// # Errors
    /// [`socketio_packet::DataError`] when they do not match `T`.
    pub fn args<T: serde::de::DeserializeOwned>(&self) -> Result<T, socketio_packet::DataError> {
        self.data.args(1)
    }
}

/// Something that happened, for the application.
#[derive(Debug, Clone)]
pub enum Event {
    /// The Engine.IO connection opened.
    Open {
        /// The Engine.IO session id.
        sid: String,
        /// The transport it opened over.
        transport: TransportKind,
    },
    /// The connection moved to another transport (after the WebSocket probe).
    Upgrade {
        /// The new transport.
        transport: TransportKind,
    },
    /// The Engine.IO connection closed; sockets get their own [`Event::Disconnect`].
    Close {
        /// Why.
        reason: DisconnectReason,
    },
    /// A namespace was joined.
    Connect {
        /// The namespace.
        nsp: Str,
        /// The socket id the server gave.
        sid: String,
        /// Whether the server restored the previous session (connection state recovery).
        recovered: bool,
    },
    /// A namespace could not be joined.
    ConnectError {
        /// The namespace.
        nsp: Str,
        /// Why.
        error: ConnectError,
    },
    /// A socket was disconnected.
    Disconnect {
        /// The namespace.
        nsp: Str,
        /// Why.
        reason: DisconnectReason,
    },
    /// An event from the server.
    Message(EventMessage),
    /// The answer to an emit that asked for one, or why it will not come.
    Ack {
        /// The namespace.
        nsp: Str,
        /// The id [`Client::emit`](crate::Client::emit) returned.
        id: u64,
        /// The arguments of the acknowledgement (a JSON array and its attachments).
        result: Result<Payload, AckError>,
    },
    /// A reconnection attempt starts (counted from 1).
    ReconnectAttempt {
        /// The attempt's number.
        attempt: u32,
    },
    /// A reconnection attempt failed.
    ReconnectError {
        /// Why.
        error: &'static str,
    },
    /// The client reconnected after `attempt` attempts.
    Reconnect {
        /// The attempt that succeeded.
        attempt: u32,
    },
    /// The client gave up after `reconnection_attempts` attempts.
    ReconnectFailed,
}
