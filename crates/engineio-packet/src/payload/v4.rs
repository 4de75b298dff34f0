//! Revision 4 payloads: text packets joined with the record separator `\x1e`.
//!
//! `4hello\x1e2\x1ebAQIDBA==` holds a text message, a ping and a binary message.
//! Binary messages are always in base64, so the body is UTF-8 text.

use std::iter::FusedIterator;

use bytes::Bytes;

use crate::{DecodeError, Packet, ProtocolVersion, Str};

/// The record separator between two packets.
pub const SEPARATOR: u8 = 0x1e;

/// Decodes a polling body: splits it on `\x1e` and decodes each packet.
///
/// # Errors
/// [`DecodeError::InvalidUtf8`] when the body is not UTF-8, [`DecodeError::TooManyPackets`] when it holds
/// more than `max_packets` packets, and the first error of [`Packet::decode_text`]
/// (an empty body, or an empty packet between two separators, is [`DecodeError::Empty`]).
pub fn decode(body: Bytes, max_packets: usize) -> Result<Vec<Packet>, DecodeError> {
    let body = Str::from_utf8(body).map_err(|_| DecodeError::InvalidUtf8)?;
    super::collect(iter(&body), max_packets)
}

/// Decodes a polling body of one packet (no `\x1e` in it, as most are)
/// as [`decode`] does, without a list for it: `None` when the body holds
/// several packets, or `max_packets` is 0; [`decode`] takes those.
///
/// # Errors
/// As [`decode`]'s.
pub fn decode_single(body: &Bytes, max_packets: usize) -> Option<Result<Packet, DecodeError>> {
    if max_packets == 0 || memchr::memchr(SEPARATOR, body).is_some() {
        return None;
    }
    Some(match Str::from_utf8(body.clone()) {
        Ok(text) => Packet::decode_text(text, ProtocolVersion::V4),
        Err(_) => Err(DecodeError::InvalidUtf8),
    })
}

/// The packets of a polling body, in order, up to and including the first error.
pub fn iter(body: &Str) -> Iter {
    Iter {
        body: body.clone(),
        pos: 0,
        done: false,
    }
}

/// Iterator over the packets of a revision 4 payload, made by [`iter`].
#[derive(Debug, Clone)]
pub struct Iter {
    body: Str,
    pos: usize,
    done: bool,
}

impl Iterator for Iter {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.body.as_bytes().get(self.pos..).unwrap_or_default();
        let end = match memchr::memchr(SEPARATOR, rest) {
            Some(i) => self.pos + i,
            None => {
                self.done = true;
                self.body.len()
            }
        };
        // The separator is ASCII, so both ends are character boundaries.
        let packet = Packet::decode_text(self.body.sub(self.pos, end), ProtocolVersion::V4);
        self.pos = end + 1;
        if packet.is_err() {
            self.done = true;
        }
        Some(packet)
    }
}

impl FusedIterator for Iter {}

/// Appends the packets' text forms to `out`, joined with `\x1e`.
///
/// A text packet holding `\x1e` would split in two on the other side: the protocol assumes the
/// separator is not used in text.
pub fn encode(packets: &[Packet], out: &mut Vec<u8>) {
    let len: usize = packets
        .iter()
        .map(|p| p.text_len(ProtocolVersion::V4) + 1)
        .sum();
    crate::packet::reserve(out, len);
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        packet.encode_text_into(ProtocolVersion::V4, out);
    }
}
