//! Server-side WebSocket framing (RFC 6455), with no I/O.
//!
//! A WebSocket server reads masked frames from its clients and writes unmasked frames back. This
//! crate does both halves and nothing else: the opening handshake is HTTP's business, the socket
//! is the caller's.
//!
//! - [`Decoder::decode`] takes the bytes read so far and gives back whole messages: a fragmented
//!   text or binary message is put together, control frames (ping, pong, close) come out between
//!   its fragments as they arrive. A text message is checked to be UTF-8 once, and comes out as a
//!   [`ByteString`]. A message that arrived in one frame shares the read buffer; nothing is copied.
//! - Every violation of the protocol is a [`ProtocolError`] whose [`close_code`] is the code the
//!   server closes with: 1002 for a malformed frame (a length not in its shortest form among
//!   them), 1007 for text that is not UTF-8 (in a fragmented message, found at the fragment that
//!   makes it invalid), 1009 for a message over the decoder's limit. After an error the decoder is
//!   spent: the connection closes.
//! - [`encode_header`], [`encode`] and [`encode_close`] write server frames: unmasked, one frame
//!   per message.
//! - The permessage-deflate extension (RFC 7692, [`deflate`]): its negotiation, compressed server
//!   frames ([`compressed_header`]), and a decoder that inflates compressed messages
//!   ([`Decoder::permessage_deflate`]).
//!
//! The decoder never reserves more than the frame it is reading needs, and never more than its
//! message limit allows, so a peer cannot make it allocate more than the limit by announcing a
//! large frame; a compressed message is inflated under the same limit, so a small frame that
//! inflates to more than the limit allocates no more than the limit either.
//!
//! ```
//! use bytes::BytesMut;
//! use websocket_frame::{Decoder, Message, OpCode};
//!
//! // A client's masked text frame "hi", then a ping.
//! let mut buf = BytesMut::from(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2, 0x89, 0x80, 0, 0, 0, 0][..]);
//! let mut decoder = Decoder::new(1024);
//! assert_eq!(decoder.decode(&mut buf)?, Some(Message::Text("hi".into())));
//! assert_eq!(decoder.decode(&mut buf)?, Some(Message::Ping(Default::default())));
//! assert_eq!(decoder.decode(&mut buf)?, None);
//!
//! // The server's answer to a text message is one unmasked frame.
//! let mut out = Vec::new();
//! websocket_frame::encode(OpCode::Text, b"hi", &mut out);
//! assert_eq!(out, [0x81, 0x02, b'h', b'i']);
//! # Ok::<(), websocket_frame::ProtocolError>(())
//! ```
//!
//! [`close_code`]: ProtocolError::close_code

use bytes::{Buf, Bytes, BytesMut};
pub use bytestring::ByteString;

pub mod deflate;

use deflate::{InflateError, Inflater};

/// The kind of a frame (RFC 6455, section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// The next fragment of a text or binary message.
    Continuation,
    /// The first (or only) frame of a text message.
    Text,
    /// The first (or only) frame of a binary message.
    Binary,
    /// The closing handshake.
    Close,
    /// A ping, to be answered with a pong carrying the same data.
    Ping,
    /// A pong.
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0 => OpCode::Continuation,
            1 => OpCode::Text,
            2 => OpCode::Binary,
            8 => OpCode::Close,
            9 => OpCode::Ping,
            10 => OpCode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0,
            OpCode::Text => 1,
            OpCode::Binary => 2,
            OpCode::Close => 8,
            OpCode::Ping => 9,
            OpCode::Pong => 10,
        }
    }

    /// Whether frames of this kind are control frames (close, ping, pong).
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A message read from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, checked to be UTF-8.
    Text(ByteString),
    /// A binary message.
    Binary(Bytes),
    /// A ping: the peer expects a pong with the same data.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The peer starts (or answers) the closing handshake.
    Close(Option<CloseFrame>),
}

/// The status code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code (RFC 6455, section 7.4).
    pub code: u16,
    /// The reason, UTF-8, at most 123 bytes.
    pub reason: ByteString,
}

/// A violation of the protocol by the peer. The connection cannot go on after one: the server
/// sends a close frame with [`ProtocolError::close_code`] and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A client frame without a mask (section 5.1).
    #[error("a client frame is not masked")]
    Unmasked,
    /// A reserved bit is set that no agreed extension defines for this frame (RSV1 is
    /// permessage-deflate's, on the first frame of a data message only).
    #[error("reserved bits set: {0:#x}")]
    ReservedBits(u8),
    /// A payload length not written in the fewest bytes (section 5.2).
    #[error("a payload length of {0} not in its shortest form")]
    NonMinimalLength(u64),
    /// A compressed message that is not valid deflate data.
    #[error("a compressed message that does not inflate")]
    InvalidCompressed,
    /// An opcode that RFC 6455 reserves.
    #[error("reserved opcode {0:#x}")]
    ReservedOpCode(u8),
    /// A control frame split into fragments.
    #[error("a fragmented control frame")]
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload.
    #[error("a control frame of {0} bytes")]
    ControlTooLong(u64),
    /// A continuation frame with no message to continue.
    #[error("a continuation frame outside a message")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is still open.
    #[error("a new message before the last one ended")]
    ExpectedContinuation,
    /// A message longer than the decoder's limit.
    #[error("a message of more than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A text message (or close reason) that is not UTF-8.
    #[error("text that is not UTF-8")]
    InvalidUtf8,
    /// A close frame with a one-byte payload.
    #[error("a close frame of one byte")]
    ShortClose,
    /// A close frame with a status code that may not be sent.
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
}

impl ProtocolError {
    /// The status code of the close frame that answers this error.
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressed => {
                close_code::INVALID_DATA
            }
            ProtocolError::TooLarge { .. } => close_code::TOO_BIG,
            _ => close_code::PROTOCOL_ERROR,
        }
    }
}

/// The status codes of close frames that a server sends (RFC 6455, section 7.4.1).
pub mod close_code {
    /// The purpose of the connection is fulfilled.
    pub const NORMAL: u16 = 1000;
    /// The server is going away.
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A message's data does not match its type (text that is not UTF-8).
    pub const INVALID_DATA: u16 = 1007;
    /// A message is too big to process.
    pub const TOO_BIG: u16 = 1009;
    /// The server met a condition that kept it from going on.
    pub const INTERNAL_ERROR: u16 = 1011;

    /// Whether a peer may send `code` in a close frame. 1004 to 1006 and 1015 are reserved for
    /// reporting, codes below 1000 and from 1016 to 2999 are unassigned, 3000 to 4999 belong to
    /// libraries and applications.
    pub fn is_sendable(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// The longest frame header: two bytes, eight of length, four of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// What the decoder knows of the frame it is reading.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    /// RSV1: the message is compressed (permessage-deflate).
    compressed: bool,
    opcode: OpCode,
    /// Header bytes, mask included.
    header_len: usize,
    payload_len: usize,
    mask: [u8; 4],
}

/// The data of an unfinished message.
#[derive(Debug)]
enum Body {
    /// As it came.
    Plain(BytesMut),
    /// Inflated from compressed frames.
    Inflated {
        data: Vec<u8>,
        inflater: Inflater,
        /// The compressed bytes read so far.
        wire: usize,
    },
}

/// The fragments of an unfinished message.
#[derive(Debug)]
struct Partial {
    opcode: OpCode,
    body: Body,
    /// How much of a text message's data is known to be UTF-8 so far.
    checked: usize,
}

impl Partial {
    fn data(&self) -> &[u8] {
        match &self.body {
            Body::Plain(data) => data,
            Body::Inflated { data, .. } => data,
        }
    }

    /// The bytes of the message read off the wire so far.
    fn wire(&self) -> usize {
        match &self.body {
            Body::Plain(data) => data.len(),
            Body::Inflated { wire, .. } => *wire,
        }
    }

    /// Checks the text that came since the last check: an error as soon as it cannot be
    /// UTF-8, whatever follows; a code point cut by the end of a fragment waits for the next
    /// (but not past the last).
    fn check_utf8(&mut self, last: bool) -> Result<(), ProtocolError> {
        if self.opcode != OpCode::Text {
            return Ok(());
        }
        let data = self.data();
        let new = data.get(self.checked..).unwrap_or_default();
        self.checked = match std::str::from_utf8(new) {
            Ok(_) => data.len(),
            Err(e) if e.error_len().is_none() && !last => self.checked + e.valid_up_to(),
            Err(_) => return Err(ProtocolError::InvalidUtf8),
        };
        Ok(())
    }
}

/// Reads client frames into messages, under a limit on a message's length.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    /// Whether permessage-deflate was agreed: RSV1 marks a compressed message.
    deflate: bool,
    /// The fragments of an unfinished message (boxed: most connections never
    /// see a fragmented message, and a server keeps a decoder per connection).
    partial: Option<Box<Partial>>,
    /// The error that ended the stream, given again to every later call.
    failed: Option<ProtocolError>,
}

impl Decoder {
    /// A decoder that refuses messages (and frames) longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            max_message,
            deflate: false,
            partial: None,
            failed: None,
        }
    }

    /// A decoder for a connection that agreed on permessage-deflate ([`deflate::negotiate`]):
    /// a message whose first frame has RSV1 set is inflated, and is refused (1009) as soon as it
    /// inflates to more than `max_message` bytes, or its compressed frames add up to more. No
    /// context is kept between messages, as the server's answer to the negotiation asks of the
    /// client.
    pub fn permessage_deflate(mut self, on: bool) -> Decoder {
        self.deflate = on;
        self
    }

    /// The longest message this decoder takes.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Whether a fragmented message is under way.
    pub fn in_message(&self) -> bool {
        self.partial.is_some()
    }

    /// Decodes the next message from the front of `buf`, taking the bytes it used. `Ok(None)`
    /// means more bytes are needed: then `buf` has room reserved for the rest of the frame under
    /// way, so that the next read can take it whole.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] when the peer broke the protocol; every later call gives the same
    /// error again.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.decode_inner(buf);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
            self.partial = None;
        }
        result
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        loop {
            let Some(header) = self.parse_header(buf)? else {
                return Ok(None);
            };
            let total = header.header_len + header.payload_len;
            if buf.len() < total {
                buf.reserve(total - buf.len());
                return Ok(None);
            }
            buf.advance(header.header_len);
            // A frame that is all the buffer holds takes the buffer whole:
            // splitting would make the buffer shared, which allocates.
            let mut payload = if buf.len() == header.payload_len {
                std::mem::take(buf)
            } else {
                buf.split_to(header.payload_len)
            };
            unmask(&mut payload, header.mask);
            if let Some(message) = self.on_frame(header, payload)? {
                return Ok(Some(message));
            }
        }
    }

    /// Reads and checks the header at the front of `buf`, if it is all there. Checks that need
    /// only the first two bytes are made as soon as they are in.
    fn parse_header(&self, buf: &[u8]) -> Result<Option<Header>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let rsv = b0 & 0x70;
        let opcode =
            OpCode::from_bits(b0 & 0x0f).ok_or(ProtocolError::ReservedOpCode(b0 & 0x0f))?;
        // RSV1 only with permessage-deflate, and only on the first frame of a data message.
        let compressed =
            rsv == 0x40 && self.deflate && matches!(opcode, OpCode::Text | OpCode::Binary);
        if rsv != 0 && !compressed {
            return Err(ProtocolError::ReservedBits(rsv));
        }
        if b1 & 0x80 == 0 {
            return Err(ProtocolError::Unmasked);
        }
        let len7 = b1 & 0x7f;
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if len7 > 125 {
                return Err(ProtocolError::ControlTooLong(u64::from(len7)));
            }
        } else {
            match (opcode, &self.partial) {
                (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
                (OpCode::Text | OpCode::Binary, Some(_)) => {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                _ => {}
            }
        }
        let (ext, len) = match len7 {
            126 => {
                let Some(b) = buf.get(2..4) else {
                    return Ok(None);
                };
                let len = u64::from(u16::from_be_bytes([b[0], b[1]]));
                if len < 126 {
                    return Err(ProtocolError::NonMinimalLength(len));
                }
                (2, len)
            }
            127 => {
                let Some(b) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut be = [0; 8];
                be.copy_from_slice(b);
                let len = u64::from_be_bytes(be);
                if len <= u64::from(u16::MAX) {
                    return Err(ProtocolError::NonMinimalLength(len));
                }
                (8, len)
            }
            n => (0, u64::from(n)),
        };
        let so_far = self.partial.as_deref().map_or(0, Partial::wire);
        let limit = self.max_message;
        let payload_len = match usize::try_from(len) {
            Ok(n) if opcode.is_control() || n <= limit.saturating_sub(so_far) => n,
            _ => return Err(ProtocolError::TooLarge { limit }),
        };
        let Some(m) = buf.get(2 + ext..6 + ext) else {
            return Ok(None);
        };
        Ok(Some(Header {
            fin,
            compressed,
            opcode,
            header_len: 6 + ext,
            payload_len,
            mask: [m[0], m[1], m[2], m[3]],
        }))
    }

    /// Takes a whole, unmasked frame: a message when it ends one.
    fn on_frame(
        &mut self,
        header: Header,
        payload: BytesMut,
    ) -> Result<Option<Message>, ProtocolError> {
        match header.opcode {
            OpCode::Ping => Ok(Some(Message::Ping(payload.freeze()))),
            OpCode::Pong => Ok(Some(Message::Pong(payload.freeze()))),
            OpCode::Close => close_frame(payload.freeze()).map(|c| Some(Message::Close(c))),
            OpCode::Text | OpCode::Binary if header.fin && !header.compressed => {
                message(header.opcode, payload.freeze()).map(Some)
            }
            OpCode::Text | OpCode::Binary => {
                let body = if header.compressed {
                    let mut data = Vec::new();
                    let mut inflater = Inflater::new();
                    self.inflate(&mut inflater, &payload, header.fin, &mut data)?;
                    if header.fin {
                        return message(header.opcode, Bytes::from(data)).map(Some);
                    }
                    Body::Inflated {
                        data,
                        inflater,
                        wire: payload.len(),
                    }
                } else {
                    Body::Plain(payload)
                };
                let mut partial = Partial {
                    opcode: header.opcode,
                    body,
                    checked: 0,
                };
                partial.check_utf8(false)?;
                self.partial = Some(Box::new(partial));
                Ok(None)
            }
            OpCode::Continuation => {
                let Some(mut partial) = self.partial.take() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                match &mut partial.body {
                    Body::Plain(data) => data.extend_from_slice(&payload),
                    Body::Inflated {
                        data,
                        inflater,
                        wire,
                    } => {
                        *wire += payload.len();
                        self.inflate(inflater, &payload, header.fin, data)?;
                    }
                }
                partial.check_utf8(header.fin)?;
                if !header.fin {
                    self.partial = Some(partial);
                    return Ok(None);
                }
                let partial = *partial;
                let data = match partial.body {
                    Body::Plain(data) => data.freeze(),
                    Body::Inflated { data, .. } => Bytes::from(data),
                };
                message(partial.opcode, data).map(Some)
            }
        }
    }

    /// Inflates a compressed frame's payload into the message under way, under the limit.
    fn inflate(
        &self,
        inflater: &mut Inflater,
        payload: &[u8],
        last: bool,
        data: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        let limit = self.max_message;
        inflater
            .inflate(payload, last, data, limit)
            .map_err(|e| match e {
                InflateError::TooLarge => ProtocolError::TooLarge { limit },
                InflateError::Invalid => ProtocolError::InvalidCompressed,
            })
    }
}

/// A whole text or binary message.
fn message(opcode: OpCode, data: Bytes) -> Result<Message, ProtocolError> {
    if opcode == OpCode::Text {
        ByteString::try_from(data)
            .map(Message::Text)
            .map_err(|_| ProtocolError::InvalidUtf8)
    } else {
        Ok(Message::Binary(data))
    }
}

/// The payload of a close frame: nothing, or a code and a UTF-8 reason.
fn close_frame(mut payload: Bytes) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(ProtocolError::ShortClose),
        _ => {
            let code = payload.get_u16();
            if !close_code::is_sendable(code) {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            let reason = ByteString::try_from(payload).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

/// XORs `data` with the frame's mask.
fn unmask(data: &mut [u8], mask: [u8; 4]) {
    if mask == [0; 4] {
        return;
    }
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut b = [0; 8];
        b.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(b) ^ word).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// The longest header of a server frame: two bytes and eight of length.
pub const MAX_SERVER_HEADER_LEN: usize = 10;

/// The header of an unmasked, final frame of `len` payload bytes, and how many of its bytes are
/// used.
pub fn header(opcode: OpCode, len: usize) -> ([u8; MAX_SERVER_HEADER_LEN], usize) {
    let mut out = [0; MAX_SERVER_HEADER_LEN];
    out[0] = 0x80 | opcode.bits();
    if len < 126 {
        out[1] = len as u8;
        (out, 2)
    } else if let Ok(len) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        (out, 4)
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (out, 10)
    }
}

/// The header of an unmasked, final frame of `len` bytes of a message compressed with
/// permessage-deflate ([`deflate::Deflater::compress`]): RSV1 set.
pub fn compressed_header(opcode: OpCode, len: usize) -> ([u8; MAX_SERVER_HEADER_LEN], usize) {
    let (mut bytes, used) = header(opcode, len);
    bytes[0] |= 0x40;
    (bytes, used)
}

/// Writes the header of an unmasked, final frame of `len` payload bytes.
pub fn encode_header(opcode: OpCode, len: usize, out: &mut Vec<u8>) {
    let (bytes, used) = header(opcode, len);
    out.extend_from_slice(&bytes[..used]);
}

/// Writes a whole unmasked frame: a message, or a ping or pong.
pub fn encode(opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(payload.len() + 10);
    encode_header(opcode, payload.len(), out);
    out.extend_from_slice(payload);
}

/// Writes a client frame, masked with `mask`, as a client would send it: for clients, proxies,
/// tests and fuzzers. `first_byte` is written as given (FIN, the reserved bits and the opcode), so
/// that malformed frames can be written too.
pub fn encode_client(first_byte: u8, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    let (mut bytes, used) = header(OpCode::Continuation, payload.len());
    bytes[0] = first_byte;
    bytes[1] |= 0x80;
    out.reserve(used + 4 + payload.len());
    out.extend_from_slice(&bytes[..used]);
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    unmask(&mut out[start..], mask);
}

/// Writes a close frame with `code` and `reason` (cut to the 123 bytes a control frame has room
/// for, on a character boundary).
pub fn encode_close(code: u16, reason: &str, out: &mut Vec<u8>) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    encode_header(OpCode::Close, 2 + end, out);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
}

#[cfg(test)]
mod tests;
