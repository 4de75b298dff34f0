//! The error types: one per failure domain.

use crate::wire::PacketType;

/// A message that breaks the Socket.IO protocol.
///
/// The reference server closes the whole connection on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The text message is empty.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type digit from 0 to 6.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A msgpack packet's `type` is missing, not an integer, or not from 0 to 4.
    #[error("invalid packet type")]
    InvalidPacketType,
    /// A binary packet's attachment count is missing, not decimal digits, not followed by `-`, or zero.
    #[error("invalid attachment count")]
    InvalidAttachmentCount,
    /// A binary packet announces more attachments than the decoder accepts.
    #[error("too many attachments: {count}, at most {max} accepted")]
    TooManyAttachments {
        /// The announced count (saturated at `usize::MAX`).
        count: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A msgpack packet's `nsp` is missing or not a string.
    #[error("invalid namespace")]
    InvalidNamespace,
    /// The ack id does not fit in 64 bits, or (msgpack) is not a non-negative integer.
    #[error("invalid ack id")]
    InvalidAckId,
    /// An ACK packet carries no ack id.
    #[error("missing ack id")]
    MissingAckId,
    /// The payload is not valid JSON (or nests deeper than 127 levels).
    #[error("invalid json at byte {offset} of the payload")]
    InvalidJson {
        /// Byte offset in the payload where the error was found.
        offset: usize,
    },
    /// The msgpack message is malformed, truncated, nests too deep or has trailing bytes.
    #[error("invalid msgpack at byte {offset}")]
    InvalidMsgpack {
        /// Byte offset in the message where the error was found.
        offset: usize,
    },
    /// An EVENT, ACK or CONNECT_ERROR packet has no payload.
    #[error("missing payload in a {0} packet")]
    MissingPayload(PacketType),
    /// A DISCONNECT packet has a payload.
    #[error("unexpected payload in a {0} packet")]
    UnexpectedPayload(PacketType),
    /// The payload's JSON type is wrong for the packet type
    /// (CONNECT: an object; EVENT and ACK: an array; CONNECT_ERROR: a string or an object).
    #[error("invalid payload for a {0} packet")]
    InvalidPayload(PacketType),
    /// An event's array is empty or its first element is neither a string nor a number.
    #[error("invalid event name")]
    InvalidEventName,
    /// The event name is reserved (connect, connect_error, disconnect, disconnecting, newListener, removeListener).
    #[error("reserved event name {0:?}")]
    ReservedEventName(String),
    /// A placeholder of a binary packet has a `num` that is not an index of its attachments.
    #[error("illegal attachments: bad placeholder")]
    BadPlaceholder,
    /// A text message arrived while the attachments of a binary packet were awaited.
    #[error("text message while attachments are awaited")]
    UnexpectedText,
    /// A binary message arrived while no binary packet awaited attachments.
    #[error("binary message with no packet awaiting attachments")]
    UnexpectedBinary,
}

/// Application data that cannot be turned into a payload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The value's `Serialize` implementation failed.
    #[error("serialization failed: {0}")]
    Custom(String),
    /// A map key is not a string, a character, a boolean or an integer.
    #[error("map key must be a string")]
    KeyMustBeAString,
    /// The value nests deeper than 127 levels, which no decoder of this crate would accept.
    #[error("value nests too deep")]
    TooDeep,
    /// A namespace is empty, does not start with `/`, or contains a comma.
    #[error("invalid namespace {0:?}")]
    InvalidNamespace(String),
    /// The JSON writer failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The msgpack writer failed.
    #[cfg(feature = "msgpack")]
    #[error("msgpack: {0}")]
    Msgpack(#[from] rmp_serde::encode::Error),
}

impl serde::ser::Error for EncodeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        EncodeError::Custom(msg.to_string())
    }
}

/// A payload that cannot be deserialized into the requested type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The JSON does not match the requested type.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The msgpack data does not match the requested type.
    #[cfg(feature = "msgpack")]
    #[error("msgpack: {0}")]
    Msgpack(#[from] rmp_serde::decode::Error),
    /// A placeholder's `num` is not an index of the payload's attachments.
    #[error("bad placeholder")]
    BadPlaceholder,
    /// The packet carries no arguments (it is not an EVENT or an ACK).
    #[error("the packet has no arguments")]
    NoArguments,
    /// The packet carries another number of arguments than the requested
    /// type takes (a tuple takes one argument per element, any other type
    /// one).
    #[error("expected {expected} argument(s), got {got}")]
    ArgumentCount {
        /// The number of arguments the type takes.
        expected: usize,
        /// The number of arguments the packet carries.
        got: usize,
    },
    /// The data does not match the requested type.
    #[error("{0}")]
    Custom(String),
}

impl serde::de::Error for DataError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        DataError::Custom(msg.to_string())
    }
}
