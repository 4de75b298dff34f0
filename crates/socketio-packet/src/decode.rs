//! Text decoding: the header, the payload rules, and the stateful [`Decoder`].

use bytes::{Buf, Bytes};

use crate::scan::{self, First, Kind, scan_error};
use crate::wire::RESERVED_EVENTS;
use crate::{DecodeError, Packet, PacketKind, PacketType, Payload, ProtocolVersion, Str};

/// The attachment limit of the reference decoder.
pub const DEFAULT_MAX_ATTACHMENTS: usize = 10;

const ROOT: Str = Str::from_static("/");

/// The header of a text packet, borrowed from the message, payload unchecked.
///
/// For routing without looking at the payload; [`decode_packet`] and [`Decoder`] check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The packet type, as written (BINARY_EVENT stays BINARY_EVENT).
    pub packet_type: PacketType,
    /// The announced number of attachments: 0 for text packets, at least 1 for binary ones
    /// (saturated at `usize::MAX`).
    pub attachments: usize,
    /// The namespace, `/` when absent.
    pub nsp: &'a str,
    /// The ack id.
    pub id: Option<u64>,
    /// The rest of the message: the JSON payload, or empty.
    pub payload: &'a str,
}

impl<'a> Header<'a> {
    /// Splits a text message into its header fields and payload.
    ///
    /// Follows the reference decoder: the type digit; for binary types the attachment count up to
    /// a `-`; a namespace only if the next character is `/`, up to a `,` (consumed) or the end;
    /// the ack id as a run of digits; the rest is the payload.
    ///
    /// # Errors
    /// [`DecodeError::Empty`], [`DecodeError::UnknownType`], [`DecodeError::InvalidAttachmentCount`],
    /// [`DecodeError::InvalidAckId`] (more than 64 bits).
    pub fn parse(text: &'a str) -> Result<Header<'a>, DecodeError> {
        let h = RawHeader::parse(text.as_bytes())?;
        // The positions are next to ASCII delimiters, so on character boundaries.
        let nsp = h
            .nsp
            .and_then(|(start, end)| text.get(start..end))
            .unwrap_or("/");
        let payload = text.get(h.payload..).unwrap_or_default();
        Ok(Header {
            packet_type: h.packet_type,
            attachments: h.attachments,
            nsp,
            id: h.id,
            payload,
        })
    }
}

/// A header as positions in the message.
struct RawHeader {
    packet_type: PacketType,
    attachments: usize,
    /// The namespace's bounds, when one is written.
    nsp: Option<(usize, usize)>,
    id: Option<u64>,
    /// Where the payload starts.
    payload: usize,
}

impl RawHeader {
    #[inline(always)]
    fn parse(b: &[u8]) -> Result<RawHeader, DecodeError> {
        let Some(&first) = b.first() else {
            return Err(DecodeError::Empty);
        };
        let Some(packet_type) = PacketType::from_digit(first) else {
            return Err(unknown_type(b));
        };
        let mut i = 1;

        let mut attachments = 0usize;
        if packet_type.is_binary() {
            let start = i;
            while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
                attachments = attachments
                    .saturating_mul(10)
                    .saturating_add(usize::from(c - b'0'));
                i += 1;
            }
            if i == start || b.get(i) != Some(&b'-') || attachments == 0 {
                return Err(DecodeError::InvalidAttachmentCount);
            }
            i += 1;
        }

        let mut nsp = None;
        if b.get(i) == Some(&b'/') {
            match memchr::memchr(b',', &b[i..]) {
                Some(comma) => {
                    nsp = Some((i, i + comma));
                    i += comma + 1;
                }
                None => {
                    nsp = Some((i, b.len()));
                    i = b.len();
                }
            }
        }

        let mut id = None;
        if b.get(i).is_some_and(u8::is_ascii_digit) {
            let mut n: u64 = 0;
            while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(c - b'0')))
                    .ok_or(DecodeError::InvalidAckId)?;
                i += 1;
            }
            id = Some(n);
        }

        Ok(RawHeader {
            packet_type,
            attachments,
            nsp,
            id,
            payload: i,
        })
    }
}

#[cold]
fn unknown_type(b: &[u8]) -> DecodeError {
    let c = std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.chars().next())
        .unwrap_or('\u{fffd}');
    DecodeError::UnknownType(c)
}

/// Decodes one text message into a packet, checking its payload as the reference does, and
/// returns it with the number of binary attachments that must follow (0 for text packets).
///
/// For a binary packet, the placeholders are checked against that number; the packet's payload
/// has no attachments yet: push them in order, or use a [`Decoder`], which also bounds the number.
///
/// The rules are the reference's (`socket.io-parser`), a little stricter in corners that its server
/// then ignores or misreads: an empty message (read as a CONNECT by the reference), an EVENT or ACK
/// without payload, an event array that is empty, an ACK without id, an ack id beyond 64 bits, and
/// a placeholder `num` that is not an integer are all errors here. An ack id on other packets is
/// read and dropped, as the reference's server does; surrounding whitespace of the JSON is dropped.
///
/// # Errors
/// Any [`DecodeError`] but [`DecodeError::TooManyAttachments`], [`DecodeError::UnexpectedText`]
/// and [`DecodeError::UnexpectedBinary`].
pub fn decode_packet(text: Str) -> Result<(Packet, usize), DecodeError> {
    decode(text, usize::MAX, |packet, count| (packet, count))
}

/// A sub-string of `text` between ASCII delimiters, sharing its buffer.
#[inline(always)]
fn sub(text: &Str, s: &str, start: usize, end: usize) -> Str {
    text.slice_ref(s.get(start..end).unwrap_or_default())
}

/// A sub-string of `text` between ASCII delimiters, checked on its own, sharing the buffer.
#[inline(always)]
fn sub_checked(text: &Str, start: usize, end: usize) -> Str {
    match text.as_bytes().get(start..end).map(std::str::from_utf8) {
        Some(Ok(s)) => text.slice_ref(s),
        _ => Str::EMPTY,
    }
}

/// The JSON payload at `start..end` of the message, taking over the message's buffer.
#[inline(always)]
fn json(text: Str, start: usize, end: usize) -> Payload {
    let mut bytes = text.into_bytes();
    if end < bytes.len() {
        bytes.truncate(end);
    }
    bytes.advance(start.min(bytes.len()));
    Payload::from_parts(Str::from_utf8(bytes).unwrap_or_default(), Vec::new())
}

/// Decodes a text message, refusing more than `max` attachments before looking at the payload.
///
/// `finish` receives the packet and its attachment count, so that the caller's result is built
/// in place.
#[inline(always)]
fn decode<R>(
    text: Str,
    max: usize,
    finish: impl FnOnce(Packet, usize) -> R,
) -> Result<R, DecodeError> {
    let b = text.as_bytes();
    let h = RawHeader::parse(b)?;
    if h.attachments > max {
        return Err(DecodeError::TooManyAttachments {
            count: h.attachments,
            max,
        });
    }
    let ty = h.packet_type;
    let p = h.payload;
    let payload = &b[p..];
    let nsp = || match h.nsp {
        Some((start, end)) if &b[start..end] != b"/" => sub_checked(&text, start, end),
        _ => ROOT,
    };
    let kind = match ty {
        PacketType::Connect => {
            if payload.is_empty() {
                let nsp = nsp();
                return Ok(finish(
                    Packet {
                        nsp,
                        kind: PacketKind::Connect(None),
                    },
                    0,
                ));
            }
            let r = scan::scan(payload, None).map_err(scan_error)?;
            if r.kind != Kind::Object {
                return Err(DecodeError::InvalidPayload(ty));
            }
            let nsp = nsp();
            let data = json(text, p + r.start, p + r.end);
            return Ok(finish(
                Packet {
                    nsp,
                    kind: PacketKind::Connect(Some(data)),
                },
                0,
            ));
        }
        PacketType::Disconnect => {
            if !payload.is_empty() {
                return Err(DecodeError::UnexpectedPayload(ty));
            }
            PacketKind::Disconnect
        }
        PacketType::ConnectError => {
            if payload.is_empty() {
                return Err(DecodeError::MissingPayload(ty));
            }
            let r = scan::scan(payload, None).map_err(scan_error)?;
            if !matches!(r.kind, Kind::Object | Kind::String) {
                return Err(DecodeError::InvalidPayload(ty));
            }
            let nsp = nsp();
            let data = json(text, p + r.start, p + r.end);
            return Ok(finish(
                Packet {
                    nsp,
                    kind: PacketKind::ConnectError(data),
                },
                0,
            ));
        }
        PacketType::Event | PacketType::BinaryEvent => {
            if payload.is_empty() {
                return Err(DecodeError::MissingPayload(ty));
            }
            let count = ty.is_binary().then_some(h.attachments as u64);
            let r = scan::scan(payload, count).map_err(scan_error)?;
            if r.kind != Kind::Array {
                return Err(DecodeError::InvalidPayload(ty));
            }
            // An event has a name besides its JSON: one check of the whole message, from its
            // aligned start, then slices of it, cost less than checking the two apart.
            let s = text.as_str();
            let name = event_name(&text, s, p, r.first)?;
            let nsp = match h.nsp {
                Some((start, end)) if &b[start..end] != b"/" => sub(&text, s, start, end),
                _ => ROOT,
            };
            let data = Payload::from_parts(sub(&text, s, p + r.start, p + r.end), Vec::new());
            return Ok(finish(
                Packet {
                    nsp,
                    kind: PacketKind::Event {
                        name,
                        data,
                        id: h.id,
                    },
                },
                h.attachments,
            ));
        }
        PacketType::Ack | PacketType::BinaryAck => {
            let id = h.id.ok_or(DecodeError::MissingAckId)?;
            if payload.is_empty() {
                return Err(DecodeError::MissingPayload(ty));
            }
            let count = ty.is_binary().then_some(h.attachments as u64);
            let r = scan::scan(payload, count).map_err(scan_error)?;
            if r.kind != Kind::Array {
                return Err(DecodeError::InvalidPayload(ty));
            }
            let nsp = nsp();
            let data = json(text, p + r.start, p + r.end);
            return Ok(finish(
                Packet {
                    nsp,
                    kind: PacketKind::Ack { data, id },
                },
                h.attachments,
            ));
        }
    };
    Ok(finish(Packet { nsp: nsp(), kind }, h.attachments))
}

/// The event name from the first element of the array (positions relative to the payload at
/// `p`): a string that is not reserved, or a number.
fn event_name(text: &Str, s: &str, p: usize, first: Option<First>) -> Result<Str, DecodeError> {
    let Some(first) = first else {
        return Err(DecodeError::InvalidEventName);
    };
    let b = text.as_bytes();
    let (start, end) = (p + first.start, p + first.end);
    match first.kind {
        Kind::String if !first.escaped => {
            let name = &b[start..end];
            if RESERVED_EVENTS.iter().any(|r| r.as_bytes() == name) {
                return Err(DecodeError::ReservedEventName(
                    String::from_utf8_lossy(name).into_owned(),
                ));
            }
            Ok(sub(text, s, start, end))
        }
        Kind::String => {
            let quoted = &b[start - 1..end + 1];
            let name: String =
                serde_json::from_slice(quoted).map_err(|_| DecodeError::InvalidEventName)?;
            if RESERVED_EVENTS.contains(&name.as_str()) {
                return Err(DecodeError::ReservedEventName(name));
            }
            Ok(Str::from(name))
        }
        Kind::Number => Ok(sub(text, s, start, end)),
        _ => Err(DecodeError::InvalidEventName),
    }
}

/// The decoder of one connection: text messages and binary attachments, in arrival order.
///
/// A binary packet (BINARY_EVENT, BINARY_ACK) is a text header followed by its attachments, one
/// binary message each; the decoder holds the header until the last attachment arrives.
/// Any error means the peer broke the protocol: the reference closes the connection.
/// An error leaves the decoder as it was.
#[derive(Debug, Clone)]
pub struct Decoder {
    version: ProtocolVersion,
    max_attachments: usize,
    pending: Option<(Packet, usize)>,
}

impl Default for Decoder {
    /// Revision 5, at most [`DEFAULT_MAX_ATTACHMENTS`] attachments per packet.
    fn default() -> Self {
        Decoder::new(ProtocolVersion::V5, DEFAULT_MAX_ATTACHMENTS)
    }
}

impl Decoder {
    /// A decoder for `version` that accepts at most `max_attachments` attachments per packet.
    ///
    /// The text format is the same in both revisions; the revision 4 query stays in the namespace.
    pub fn new(version: ProtocolVersion, max_attachments: usize) -> Decoder {
        Decoder {
            version,
            max_attachments,
            pending: None,
        }
    }

    /// The protocol revision.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The attachment limit.
    pub fn max_attachments(&self) -> usize {
        self.max_attachments
    }

    /// Decodes a text message: a complete packet, or `Ok(None)` when it is a binary packet's
    /// header, which now awaits its attachments.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedText`] while attachments are awaited; otherwise as [`decode_packet`],
    /// plus [`DecodeError::TooManyAttachments`].
    pub fn decode_text(&mut self, text: Str) -> Result<Option<Packet>, DecodeError> {
        if self.pending.is_some() {
            return Err(DecodeError::UnexpectedText);
        }
        let pending = &mut self.pending;
        decode(
            text,
            self.max_attachments,
            #[inline(always)]
            |mut packet, count| {
                if count == 0 {
                    return Some(packet);
                }
                if let PacketKind::Event { data, .. } | PacketKind::Ack { data, .. } =
                    &mut packet.kind
                {
                    // Bounded: the limit may be set high, and the count is the peer's word.
                    data.attachments_mut().reserve_exact(count.min(16));
                }
                *pending = Some((packet, count));
                None
            },
        )
    }

    /// Takes one attachment: the complete packet when it was the last one, else `Ok(None)`.
    ///
    /// The attachment is kept as it is, sharing its buffer.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedBinary`] when no packet awaits attachments.
    pub fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
        let Some((packet, count)) = &mut self.pending else {
            return Err(DecodeError::UnexpectedBinary);
        };
        let payload = match &mut packet.kind {
            PacketKind::Event { data, .. } | PacketKind::Ack { data, .. } => data,
            _ => return Err(DecodeError::UnexpectedBinary),
        };
        payload.attachments_mut().push(data);
        if payload.attachments().len() < *count {
            return Ok(None);
        }
        Ok(self.pending.take().map(|(packet, _)| packet))
    }

    /// Whether a binary packet awaits attachments.
    pub fn is_awaiting_attachments(&self) -> bool {
        self.pending.is_some()
    }

    /// How many attachments the pending binary packet still awaits (0 when none is pending).
    pub fn awaited_attachments(&self) -> usize {
        match &self.pending {
            Some((packet, count)) => count.saturating_sub(packet.attachments().len()),
            None => 0,
        }
    }

    /// Drops a pending binary packet, as the reference's `destroy()`.
    pub fn reset(&mut self) {
        self.pending = None;
    }
}
