//! The Engine.IO packet codec, revisions 4 and 3: packets, WebSocket frames and polling payloads.
//!
//! This crate turns bytes from the wire into [`Packet`]s and back. It does no I/O, reads no clock,
//! and knows nothing of HTTP, sessions, heartbeats or upgrades: a transport hands it a WebSocket
//! frame or a polling body, and sends what it encodes.
//!
//! - One packet: [`Packet::decode_text`] and [`Packet::decode_binary`] for WebSocket frames (or
//!   one packet of a payload), [`Packet::to_ws_frame`] and [`Packet::encode_text_into`] to encode.
//! - Polling payloads: [`payload::v4`] (`\x1e`-separated) and [`payload::v3`] (length-prefixed text,
//!   or the XHR2 binary form).
//!
//! Decoding is zero-copy where it pays: a text message is a [`Str`] slice of the frame or body it
//! came in, sharing its buffer. Decoding never panics, and never allocates more than the input's
//! length. Errors are [`DecodeError`]s; the reference server closes the session on any of them.
//!
//! The wire format follows the reference JavaScript implementation (`engine.io-parser`, and the
//! revision 3 parser of the `engine.io` server); where the two protocol documents and the reference
//! differ, the reference is followed.
//!
//! ```
//! use bytes::Bytes;
//! use engineio_packet::{payload, Data, Packet, ProtocolVersion, Str};
//!
//! // A revision 4 polling body: a text message, a pong and a binary message.
//! let body = Bytes::from_static(b"4hello\x1e3\x1ebAQIDBA==");
//! let packets = payload::v4::decode(body, 16)?;
//! assert_eq!(
//!     packets,
//!     [
//!         Packet::text("hello"),
//!         Packet::Pong(Str::EMPTY),
//!         Packet::binary(Bytes::from_static(&[1, 2, 3, 4])),
//!     ]
//! );
//!
//! // The same packets for a revision 3 client, as a text payload.
//! let mut out = Vec::new();
//! payload::v3::encode_text(&packets, &mut out);
//! assert_eq!(out, b"6:4hello1:310:b4AQIDBA==");
//!
//! // Over WebSocket, a binary message is a binary frame.
//! let frame = packets[2].to_ws_frame(ProtocolVersion::V4);
//! assert_eq!(frame, Data::Binary(Bytes::from_static(&[1, 2, 3, 4])));
//! # Ok::<(), engineio_packet::DecodeError>(())
//! ```

mod b64;
mod error;
mod handshake;
mod packet;
pub mod payload;
mod str;
mod version;

pub use crate::error::DecodeError;
pub use crate::handshake::{Handshake, HandshakeRef};
pub use crate::packet::{Data, Packet, PacketType};
pub use crate::str::Str;
pub use crate::version::{ProtocolVersion, UnsupportedVersion};
