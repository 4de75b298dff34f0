//! Errors of the decoders.

/// Why a packet or a payload could not be decoded.
///
/// The peer broke the protocol: the reference server closes the session with the reason "parse error".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet, frame or payload is empty where a packet was expected.
    #[error("empty packet")]
    Empty,
    /// The packet type is not one of 0 to 6 (the byte as received: an ASCII digit in text, a raw value in binary).
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// A binary packet's base64 text is not valid base64.
    #[error("invalid base64 in a binary packet")]
    InvalidBase64,
    /// Text that must be UTF-8 is not.
    #[error("invalid utf-8 in a text packet or payload")]
    InvalidUtf8,
    /// A payload's length prefix is malformed, or points past the end of the payload or inside a character.
    #[error("invalid length prefix in a payload")]
    InvalidLength,
    /// The open packet's JSON is not a handshake (the message is serde_json's).
    #[error("invalid open packet: {0}")]
    InvalidHandshake(String),
    /// The payload holds more packets than the caller allows.
    #[error("too many packets in a payload")]
    TooManyPackets,
}
