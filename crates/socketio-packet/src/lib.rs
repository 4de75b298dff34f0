//! The Socket.IO packet codec, revisions 5 and 4: the text format with binary attachments, and
//! (with the `msgpack` feature) the format of `socket.io-msgpack-parser`.
//!
//! This crate turns the Engine.IO messages of one connection into [`Packet`]s and back. It does
//! no I/O and keeps no session state beyond a binary packet awaiting its attachments: namespaces,
//! acks, rooms and handshakes belong to the layer above. It reads no Engine.IO framing either: it
//! takes the text after the Engine.IO `4` (message) type, and the raw bytes of binary messages.
//!
//! - Decoding: a [`Decoder`] per connection takes text and binary messages in arrival order and
//!   gives complete packets. The payload is checked the way the reference (`socket.io-parser`)
//!   checks it, in one pass over the JSON that builds no tree; the payload then stays a zero-copy
//!   [`Str`] slice of the message until the application asks for typed data
//!   ([`Packet::event_args`], [`Payload::deserialize`]).
//! - Encoding: [`Packet::event`] and [`Packet::ack`] serialize the arguments in one pass, taking
//!   binary values (`bytes::Bytes`, `serde_bytes::ByteBuf`) out as attachments;
//!   [`Packet::encode_into`] appends the text form to a buffer, and the attachments follow it
//!   as binary messages.
//!
//! Decoding never panics, and allocates nothing sized by the peer beyond the input's length and
//! the attachment limit.
//!
//! ```
//! use bytes::Bytes;
//! use serde::{Deserialize, Serialize};
//! use socketio_packet::{Decoder, Packet, PacketType, ProtocolVersion, Str};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Upload {
//!     name: String,
//!     file: Bytes,
//! }
//!
//! // The server emits "upload" with a binary buffer inside a struct.
//! let upload = Upload { name: "a.bin".into(), file: Bytes::from_static(&[1, 2, 3]) };
//! let packet = Packet::event(Str::from("/files"), "upload", &(&upload, 42), None)?;
//! assert_eq!(packet.packet_type(), PacketType::BinaryEvent);
//! let header = packet.encode(ProtocolVersion::V5);
//! assert_eq!(
//!     header,
//!     r#"51-/files,["upload",{"name":"a.bin","file":{"_placeholder":true,"num":0}},42]"#
//! );
//! let attachments = packet.attachments().to_vec();
//!
//! // The peer decodes the header, then the attachment.
//! let mut decoder = Decoder::default();
//! assert_eq!(decoder.decode_text(header)?, None);
//! let decoded = decoder.decode_binary(attachments[0].clone())?.expect("complete");
//! assert_eq!(decoded, packet);
//! assert_eq!(decoded.event_name().map(|n| n.as_str()), Some("upload"));
//!
//! // Typed arguments, with the buffer back in place.
//! let (got, n): (Upload, u32) = decoded.event_args()?;
//! assert_eq!((got, n), (upload, 42));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The wire format follows the reference JavaScript implementation (`socket.io-parser`); where this
//! crate is stricter, the docs of [`decode_packet`] say so.

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod de;
mod decode;
mod error;
#[cfg(feature = "msgpack")]
mod mpvalue;
#[cfg(feature = "msgpack")]
pub mod msgpack;
mod packet;
mod payload;
mod scan;
mod ser;
mod wire;

pub use engineio_packet::Str;

pub use crate::decode::{DEFAULT_MAX_ATTACHMENTS, Decoder, Header, decode_packet};
pub use crate::error::{DataError, DecodeError, EncodeError};
pub use crate::packet::{Packet, PacketKind, ProtocolVersion, encode_event, is_valid_namespace};
pub use crate::payload::Payload;
pub use crate::wire::PacketType;
pub use crate::wire::RESERVED_EVENTS;
