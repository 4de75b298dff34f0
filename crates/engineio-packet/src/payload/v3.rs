//! Revision 3 payloads, in their two forms.
//!
//! Text (`text/plain`, and what a client that cannot take binary gets):
//! `<length>:<packet>` repeated, with no separator, where the length counts the UTF-16 code units
//! of the packet's text (a character outside the Basic Multilingual Plane counts 2).
//! Binary messages are written `b4<base64>`. `6:4hello2:4€` holds two text messages.
//!
//! Binary (`application/octet-stream`, XHR2 clients): per packet a byte 0 (text) or 1 (binary),
//! the length in bytes written as one byte per decimal digit (each 0 to 9), the byte `0xff`, then the
//! packet: the UTF-8 text form for a text packet, the type byte then the data for a binary one.
//! `00 06 ff 34 68 65 6c 6c 6f 01 05 ff 04 01 02 03 04` holds `4hello` and the bytes `01 02 03 04`.

use std::iter::FusedIterator;

use bytes::Bytes;

use crate::{Data, DecodeError, Packet, ProtocolVersion, Str};

/// What an empty list of packets encodes to in text form.
pub const EMPTY_TEXT_PAYLOAD: &str = "0:";

/// Decodes a text payload.
///
/// Packets of length 0 are skipped, so [`EMPTY_TEXT_PAYLOAD`] decodes to no packet.
///
/// # Errors
/// [`DecodeError::Empty`] for an empty body, [`DecodeError::InvalidUtf8`], [`DecodeError::InvalidLength`]
/// when a length is not digits followed by `:`, or points past the end or inside a character,
/// [`DecodeError::TooManyPackets`] beyond `max_packets`, and the first error of [`Packet::decode_text`].
pub fn decode_text(body: Bytes, max_packets: usize) -> Result<Vec<Packet>, DecodeError> {
    let body = Str::from_utf8(body).map_err(|_| DecodeError::InvalidUtf8)?;
    super::collect(iter_text(&body), max_packets)
}

/// Decodes a binary payload. An empty body holds no packet.
///
/// # Errors
/// [`DecodeError::InvalidLength`] when a packet's header is not 0 or 1, digits 0 to 9, then `0xff`,
/// or its length points past the end; [`DecodeError::InvalidUtf8`] for a text packet that is not UTF-8;
/// [`DecodeError::TooManyPackets`] beyond `max_packets`; and the first error of
/// [`Packet::decode_text`] or [`Packet::decode_binary`].
pub fn decode_binary(body: Bytes, max_packets: usize) -> Result<Vec<Packet>, DecodeError> {
    super::collect(iter_binary(&body), max_packets)
}

/// The packets of a text payload, in order, up to and including the first error.
pub fn iter_text(body: &Str) -> TextIter {
    TextIter {
        body: body.clone(),
        pos: 0,
        state: if body.is_empty() {
            State::Empty
        } else {
            State::Running
        },
    }
}

/// The packets of a binary payload, in order, up to and including the first error.
pub fn iter_binary(body: &Bytes) -> BinaryIter {
    BinaryIter {
        body: body.clone(),
        pos: 0,
        done: false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    Running,
    Done,
}

/// Iterator over the packets of a revision 3 text payload, made by [`iter_text`].
#[derive(Debug, Clone)]
pub struct TextIter {
    body: Str,
    pos: usize,
    state: State,
}

impl TextIter {
    /// The next packet's text, skipping empty ones; `None` at the end.
    fn next_text(&mut self) -> Result<Option<Str>, DecodeError> {
        let bytes = self.body.as_bytes();
        while self.pos < bytes.len() {
            let (units, colon) =
                parse_length(bytes, self.pos, |b| b.is_ascii_digit().then(|| b - b'0'))?;
            if bytes.get(colon) != Some(&b':') {
                return Err(DecodeError::InvalidLength);
            }
            let start = colon + 1;
            let end = skip_utf16_units(bytes, start, units).ok_or(DecodeError::InvalidLength)?;
            self.pos = end;
            if end > start {
                return Ok(Some(self.body.sub(start, end)));
            }
        }
        Ok(None)
    }
}

impl Iterator for TextIter {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = match self.state {
            State::Done => return None,
            State::Empty => Err(DecodeError::Empty),
            State::Running => match self.next_text() {
                Ok(None) => {
                    self.state = State::Done;
                    return None;
                }
                Ok(Some(text)) => Packet::decode_text(text, ProtocolVersion::V3),
                Err(e) => Err(e),
            },
        };
        if item.is_err() {
            self.state = State::Done;
        }
        Some(item)
    }
}

impl FusedIterator for TextIter {}

/// Iterator over the packets of a revision 3 binary payload, made by [`iter_binary`].
#[derive(Debug, Clone)]
pub struct BinaryIter {
    body: Bytes,
    pos: usize,
    done: bool,
}

impl BinaryIter {
    fn next_packet(&mut self) -> Result<Packet, DecodeError> {
        let bytes = &self.body[..];
        let kind = bytes.get(self.pos).copied();
        let (len, sep) = parse_length(bytes, self.pos + 1, |b| (b <= 9).then_some(b))?;
        if bytes.get(sep) != Some(&0xff) {
            return Err(DecodeError::InvalidLength);
        }
        let start = sep + 1;
        let end = start
            .checked_add(len)
            .filter(|&end| end <= bytes.len())
            .ok_or(DecodeError::InvalidLength)?;
        self.pos = end;
        let packet = self.body.slice(start..end);
        match kind {
            Some(STRING) => {
                let text = Str::from_utf8(packet).map_err(|_| DecodeError::InvalidUtf8)?;
                Packet::decode_text(text, ProtocolVersion::V3)
            }
            Some(BINARY) => Packet::decode_binary(packet, ProtocolVersion::V3),
            _ => Err(DecodeError::InvalidLength),
        }
    }
}

impl Iterator for BinaryIter {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.body.len() {
            self.done = true;
            return None;
        }
        let item = self.next_packet();
        if item.is_err() {
            self.done = true;
        }
        Some(item)
    }
}

impl FusedIterator for BinaryIter {}

/// The first byte of a text packet in a binary payload.
const STRING: u8 = 0;
/// The first byte of a binary packet in a binary payload.
const BINARY: u8 = 1;

/// Reads the decimal length at `start` (digits mapped by `digit`), returning it and the index after it.
fn parse_length(
    bytes: &[u8],
    start: usize,
    digit: impl Fn(u8) -> Option<u8>,
) -> Result<(usize, usize), DecodeError> {
    let mut n: usize = 0;
    let mut i = start;
    while let Some(d) = bytes.get(i).and_then(|&b| digit(b)) {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(d)))
            .ok_or(DecodeError::InvalidLength)?;
        i += 1;
    }
    if i == start {
        return Err(DecodeError::InvalidLength);
    }
    Ok((n, i))
}

/// The index after `units` UTF-16 code units of the UTF-8 text starting at `start`;
/// `None` when the text is shorter, or the last unit is the first half of a surrogate pair.
fn skip_utf16_units(bytes: &[u8], start: usize, units: usize) -> Option<usize> {
    // A code unit takes at least one byte, and ASCII takes exactly one.
    let window = bytes.get(start..start.checked_add(units)?)?;
    if window.is_ascii() {
        return Some(start + units);
    }
    let mut i = start;
    let mut counted = 0;
    while counted < units {
        let (width, n) = match *bytes.get(i)? {
            0x00..=0x7f => (1, 1),
            0x80..=0xdf => (2, 1),
            0xe0..=0xef => (3, 1),
            _ => (4, 2),
        };
        i += width;
        counted += n;
    }
    (counted == units && i <= bytes.len()).then_some(i)
}

/// The number of UTF-16 code units of UTF-8 `text`.
pub fn utf16_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    if bytes.is_ascii() {
        return bytes.len();
    }
    // One unit per character (each starts with a byte that is not 0b10xxxxxx), two for 4-byte ones.
    bytes
        .iter()
        .map(|&b| usize::from((b as i8) >= -0x40) + usize::from(b >= 0xf0))
        .sum()
}

/// The UTF-16 length of the packet's text form.
fn text_utf16_len(packet: &Packet) -> Option<usize> {
    match packet {
        Packet::Open(_) => None,
        Packet::Ping(s) | Packet::Pong(s) | Packet::Message(Data::Text(s)) => {
            Some(1 + utf16_len(s))
        }
        // ASCII, one unit per byte.
        Packet::Message(Data::Binary(_)) | Packet::Close | Packet::Upgrade | Packet::Noop => {
            Some(packet.text_len(ProtocolVersion::V3))
        }
    }
}

/// Appends the text payload of `packets` to `out` ([`EMPTY_TEXT_PAYLOAD`] when there is none).
pub fn encode_text(packets: &[Packet], out: &mut Vec<u8>) {
    if packets.is_empty() {
        out.extend_from_slice(EMPTY_TEXT_PAYLOAD.as_bytes());
        return;
    }
    let len: usize = packets
        .iter()
        .map(|p| p.text_len(ProtocolVersion::V3) + 4)
        .sum();
    crate::packet::reserve(out, len);
    let mut num = itoa::Buffer::new();
    for packet in packets {
        if let Some(units) = text_utf16_len(packet) {
            out.extend_from_slice(num.format(units).as_bytes());
            out.push(b':');
            packet.encode_text_into(ProtocolVersion::V3, out);
        } else {
            // The open packet: measure its JSON once written, then move the prefix in front.
            let start = out.len();
            packet.encode_text_into(ProtocolVersion::V3, out);
            let text = std::str::from_utf8(&out[start..]).unwrap_or_default();
            let prefix = num.format(utf16_len(text));
            let prefix_len = prefix.len() + 1;
            out.extend_from_slice(prefix.as_bytes());
            out.push(b':');
            out[start..].rotate_right(prefix_len);
        }
    }
}

/// Appends the binary payload of `packets` to `out` (nothing when there is none).
pub fn encode_binary(packets: &[Packet], out: &mut Vec<u8>) {
    let len: usize = packets
        .iter()
        .map(|p| p.text_len(ProtocolVersion::V3) + 24)
        .sum();
    crate::packet::reserve(out, len);
    for packet in packets {
        match packet {
            Packet::Message(Data::Binary(data)) => {
                write_binary_header(out, BINARY, 1 + data.len());
                out.push(crate::PacketType::Message.index());
                out.extend_from_slice(data);
            }
            _ => {
                write_binary_header(out, STRING, packet.text_len(ProtocolVersion::V3));
                packet.encode_text_into(ProtocolVersion::V3, out);
            }
        }
    }
}

fn write_binary_header(out: &mut Vec<u8>, kind: u8, len: usize) {
    out.push(kind);
    out.extend(itoa::Buffer::new().format(len).bytes().map(|d| d - b'0'));
    out.push(0xff);
}

/// Whether any packet is a binary message: a server sends the binary payload then, when the client takes binary.
pub fn has_binary(packets: &[Packet]) -> bool {
    packets.iter().any(Packet::is_binary)
}
