//! The permessage-deflate extension (RFC 7692): its negotiation, and the compression and
//! decompression of whole messages, with no I/O.
//!
//! [`negotiate`] reads a client's `Sec-WebSocket-Extensions` offers and gives the server's answer,
//! as the reference's WebSocket server (`ws`) does: an offer it cannot read is an error (the
//! handshake is refused with 400), as is a permessage-deflate offer none of whose variants the
//! server can accept.
//!
//! No deflate state lives with a connection between messages: the server's answer always carries
//! `server_no_context_takeover` and `client_no_context_takeover` (RFC 7692 lets a server add both to
//! any offer it accepts), so each message is compressed and decompressed on its own. The compressor
//! and the decompressor are then kept once per thread and reset after each message; a connection
//! holds a decompressor only while a compressed message it is receiving is split over frames
//! that have not all arrived.
//!
//! ```
//! use websocket_frame::deflate::{DeflateConfig, negotiate};
//!
//! let agreed = negotiate(&DeflateConfig::default(), ["permessage-deflate; client_max_window_bits"])?
//!     .expect("an offer the server accepts");
//! assert_eq!(
//!     agreed.response(),
//!     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
//! );
//! # Ok::<(), websocket_frame::deflate::ExtensionError>(())
//! ```

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The four bytes a sender takes off the end of a compressed message, and a receiver puts back
/// (RFC 7692, section 7.2.1): an empty stored block, as a sync flush ends.
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// What a server accepts and asks for in the negotiation, and how it compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// The largest LZ77 window (as a power of two, 8 to 15; others are taken as the nearest) the
    /// server compresses with; an offer
    /// that asks for a smaller one (`server_max_window_bits`) is declined, as `ws` declines it.
    /// `None`: whatever the offer asks for, 15 when it asks for nothing.
    pub server_max_window_bits: Option<u8>,
    /// The largest window (8 to 15; others are taken as the nearest) the server asks clients to
    /// compress with; an offer that does
    /// not say the client can limit its window (`client_max_window_bits`) is declined, as `ws`
    /// declines it. `None`: the client's choice.
    pub client_max_window_bits: Option<u8>,
    /// Messages shorter than this many bytes are sent uncompressed (the reference's default:
    /// 1024).
    pub threshold: usize,
    /// The zlib compression level, 0 to 9 (default 6, zlib's default, which `ws` uses).
    pub level: u32,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_max_window_bits: None,
            client_max_window_bits: None,
            threshold: 1024,
            level: 6,
        }
    }
}

/// A `Sec-WebSocket-Extensions` header the server refuses, as `ws` refuses it: the handshake is
/// answered 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    /// The header does not follow its grammar (RFC 6455, section 9.1), or is not ASCII.
    #[error("a malformed Sec-WebSocket-Extensions header")]
    Malformed,
    /// A permessage-deflate parameter that RFC 7692 does not define.
    #[error("an unknown permessage-deflate parameter")]
    UnknownParameter,
    /// A permessage-deflate parameter given twice in one offer.
    #[error("a permessage-deflate parameter given twice")]
    DuplicateParameter,
    /// A permessage-deflate parameter with a value it may not have.
    #[error("an invalid permessage-deflate parameter value")]
    InvalidValue,
    /// Permessage-deflate offers of which the server can accept none.
    #[error("no permessage-deflate offer can be accepted")]
    Unacceptable,
}

/// One permessage-deflate offer, its parameters read and checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter with no value.
    client_max_window_bits: Option<Option<u8>>,
}

/// The agreed parameters of a permessage-deflate extension, and the server's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The window the client asked the server to keep to, or the server's own limit; `None`: 15.
    pub server_max_window_bits: Option<u8>,
    /// The window the server asked the client to keep to; `None`: no limit asked.
    pub client_max_window_bits: Option<u8>,
    /// Messages shorter than this are sent uncompressed.
    pub threshold: usize,
    /// The compression level.
    pub level: u32,
}

impl Agreed {
    /// The value of the `Sec-WebSocket-Extensions` header of the server's answer.
    pub fn response(&self) -> String {
        let mut out = String::from(EXTENSION_NAME);
        out.push_str("; server_no_context_takeover; client_no_context_takeover");
        if let Some(bits) = self.server_max_window_bits {
            out.push_str("; server_max_window_bits=");
            out.push_str(&bits.to_string());
        }
        if let Some(bits) = self.client_max_window_bits {
            out.push_str("; client_max_window_bits=");
            out.push_str(&bits.to_string());
        }
        out
    }

    /// The compressor's settings for what was agreed.
    pub fn deflater(&self) -> Deflater {
        // zlib's raw deflate takes no 8-bit window. A 9-bit one gives matches no farther than
        // 250 bytes back (the window less zlib's 262 bytes of lookahead), within the 256 bytes a
        // client that asked for 8 keeps, which is why Node's zlib (and so `ws`) makes 8 a 9.
        let bits = self.server_max_window_bits.unwrap_or(15).clamp(9, 15);
        Deflater {
            level: self.level.min(9),
            window_bits: bits,
            threshold: self.threshold,
        }
    }
}

/// Reads the client's `Sec-WebSocket-Extensions` header lines and picks the first
/// permessage-deflate offer the server accepts. `Ok(None)`: the client offered no
/// permessage-deflate (other extensions are ignored).
///
/// # Errors
///
/// An [`ExtensionError`] when a line is malformed, a permessage-deflate offer has an unknown,
/// repeated or invalid parameter, or no permessage-deflate offer is acceptable: the reference
/// refuses the handshake with 400 for each of these.
pub fn negotiate<'a>(
    config: &DeflateConfig,
    headers: impl IntoIterator<Item = &'a str>,
) -> Result<Option<Agreed>, ExtensionError> {
    let mut offers = Vec::new();
    for line in headers {
        parse_line(line, &mut offers)?;
    }
    if offers.is_empty() {
        return Ok(None);
    }
    // Window sizes outside what RFC 7692 allows are taken as its nearest.
    let server_bits = config.server_max_window_bits.map(|b| b.clamp(8, 15));
    let client_bits = config.client_max_window_bits.map(|b| b.clamp(8, 15));
    let accepted = offers.into_iter().find(|offer| {
        let window_too_large = matches!(
            (offer.server_max_window_bits, server_bits),
            (Some(asked), Some(ours)) if ours > asked
        );
        let client_cannot_limit = client_bits.is_some() && offer.client_max_window_bits.is_none();
        !window_too_large && !client_cannot_limit
    });
    let Some(offer) = accepted else {
        return Err(ExtensionError::Unacceptable);
    };
    let client_max_window_bits = match (client_bits, offer.client_max_window_bits) {
        (Some(ours), Some(Some(theirs))) => Some(ours.min(theirs)),
        (Some(ours), _) => Some(ours),
        (None, Some(theirs)) => theirs,
        (None, None) => None,
    };
    Ok(Some(Agreed {
        server_max_window_bits: server_bits.or(offer.server_max_window_bits),
        client_max_window_bits,
        threshold: config.threshold,
        level: config.level,
    }))
}

/// Whether `b` may appear in a token (RFC 7230, section 3.2.6).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A cursor over one header line.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn skip_space(&mut self) {
        while matches!(self.bytes.get(self.at), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn token(&mut self) -> Result<&'a [u8], ExtensionError> {
        self.skip_space();
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        if self.at == start {
            return Err(ExtensionError::Malformed);
        }
        let token = &self.bytes[start..self.at];
        self.skip_space();
        Ok(token)
    }

    /// A parameter's value: a token, or a quoted string whose content is a token (RFC 6455,
    /// section 9.1), unescaped.
    fn value(&mut self) -> Result<Vec<u8>, ExtensionError> {
        self.skip_space();
        if self.peek() != Some(b'"') {
            return self.token().map(<[u8]>::to_vec);
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b) if is_tchar(b) => out.push(b),
                        _ => return Err(ExtensionError::Malformed),
                    }
                    self.at += 1;
                }
                Some(b) if is_tchar(b) => {
                    out.push(b);
                    self.at += 1;
                }
                _ => return Err(ExtensionError::Malformed),
            }
        }
        if out.is_empty() {
            return Err(ExtensionError::Malformed);
        }
        self.skip_space();
        Ok(out)
    }
}

/// Reads the extensions of one header line, keeping the permessage-deflate offers.
fn parse_line(line: &str, offers: &mut Vec<Offer>) -> Result<(), ExtensionError> {
    let mut c = Cursor {
        bytes: line.as_bytes(),
        at: 0,
    };
    loop {
        let name = c.token()?;
        let deflate = name.eq_ignore_ascii_case(EXTENSION_NAME.as_bytes());
        let mut offer = Offer::default();
        let mut seen = [false; 4];
        while c.peek() == Some(b';') {
            c.at += 1;
            let key = c.token()?;
            let value = if c.peek() == Some(b'=') {
                c.at += 1;
                Some(c.value()?)
            } else {
                None
            };
            if deflate {
                add_param(&mut offer, &mut seen, key, value.as_deref())?;
            }
        }
        if deflate {
            offers.push(offer);
        }
        match c.peek() {
            None => return Ok(()),
            Some(b',') => c.at += 1,
            Some(_) => return Err(ExtensionError::Malformed),
        }
    }
}

/// Window bits written as a decimal number from 8 to 15.
fn window_bits(value: &[u8]) -> Result<u8, ExtensionError> {
    match value {
        [d] if d.is_ascii_digit() && *d >= b'8' => Ok(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Ok(10 + d - b'0'),
        _ => Err(ExtensionError::InvalidValue),
    }
}

fn add_param(
    offer: &mut Offer,
    seen: &mut [bool; 4],
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(), ExtensionError> {
    let index = match key {
        b"server_no_context_takeover" => 0,
        b"client_no_context_takeover" => 1,
        b"server_max_window_bits" => 2,
        b"client_max_window_bits" => 3,
        _ => return Err(ExtensionError::UnknownParameter),
    };
    if std::mem::replace(&mut seen[index], true) {
        return Err(ExtensionError::DuplicateParameter);
    }
    match (index, value) {
        (0, None) => offer.server_no_context_takeover = true,
        (1, None) => offer.client_no_context_takeover = true,
        (2, Some(v)) => offer.server_max_window_bits = Some(window_bits(v)?),
        (3, None) => offer.client_max_window_bits = Some(None),
        (3, Some(v)) => offer.client_max_window_bits = Some(Some(window_bits(v)?)),
        _ => return Err(ExtensionError::InvalidValue),
    }
    Ok(())
}

/// How the server compresses its messages: the agreed window, the level and the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflater {
    level: u32,
    window_bits: u8,
    threshold: usize,
}

thread_local! {
    /// The thread's compressor, with the level and window it was made for.
    static COMPRESSOR: RefCell<Option<(u32, u8, Box<Compress>)>> = const { RefCell::new(None) };
    /// The thread's decompressor, between messages.
    static DECOMPRESSOR: RefCell<Option<Box<Decompress>>> = const { RefCell::new(None) };
}

impl Deflater {
    /// Messages shorter than this are sent as they are.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The window, as a power of two, that compression keeps to.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// Compresses `data` as one message's payload (RFC 7692, section 7.2.1: deflate, a sync
    /// flush, its last four bytes taken off), appending it to `out`. Returns false, with `out` as
    /// it was, when the compressed form would be no shorter than `data`: the message is then better
    /// sent as it is.
    pub fn compress(&self, data: &[u8], out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let done = COMPRESSOR.with_borrow_mut(|slot| {
            let compress = match slot {
                Some((level, bits, c)) if *level == self.level && *bits == self.window_bits => c,
                _ => {
                    let c = Compress::new_with_window_bits(
                        Compression::new(self.level),
                        false,
                        self.window_bits,
                    );
                    &mut slot.insert((self.level, self.window_bits, Box::new(c))).2
                }
            };
            let done = deflate_into(compress, data, out, start + data.len() + TRAILER.len());
            compress.reset();
            done
        });
        if done && out.ends_with(&TRAILER) && out.len() - TRAILER.len() - start < data.len() {
            out.truncate(out.len() - TRAILER.len());
            true
        } else {
            out.truncate(start);
            false
        }
    }
}

/// Deflates `data` with a sync flush into `out`, giving up (false) once `out` would reach
/// `max` bytes.
fn deflate_into(compress: &mut Compress, data: &[u8], out: &mut Vec<u8>, max: usize) -> bool {
    let base = compress.total_in();
    loop {
        let consumed = usize::try_from(compress.total_in() - base).unwrap_or(usize::MAX);
        let input = data.get(consumed..).unwrap_or_default();
        if out.len() >= max {
            return false;
        }
        out.reserve((max - out.len()).min(input.len() / 2 + 64));
        if compress
            .compress_vec(input, out, FlushCompress::Sync)
            .is_err()
        {
            return false;
        }
        // A sync flush is complete when all input is taken and the output did not fill the room
        // it had.
        let taken = usize::try_from(compress.total_in() - base).unwrap_or(usize::MAX);
        if taken == data.len() && out.len() < out.capacity() {
            return true;
        }
    }
}

/// Decompresses one message's frames as they come, never producing more than its limit.
///
/// It holds a decompressor from the thread's (or a new one) while the message is under way, and
/// gives it back when the message ends.
#[derive(Debug)]
pub struct Inflater {
    decompress: Option<Box<Decompress>>,
}

/// Why a compressed message could not be decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The data is not a valid deflate stream.
    Invalid,
    /// The message would go over the limit.
    TooLarge,
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    /// An inflater for one message.
    pub fn new() -> Inflater {
        let decompress = DECOMPRESSOR
            .with_borrow_mut(Option::take)
            // A 15-bit window reads every stream, whatever window its sender kept to.
            .unwrap_or_else(|| Box::new(Decompress::new(false)));
        Inflater {
            decompress: Some(decompress),
        }
    }

    /// Decompresses one frame's payload of the message, appending to `out`, which must not grow
    /// past `limit` bytes; `last`: the frame ends the message (its trailer is added, and the
    /// decompressor goes back to the thread).
    ///
    /// # Errors
    ///
    /// [`InflateError::TooLarge`] when the message would be longer than `limit` (`out` then holds
    /// at most `limit` bytes and has room for no more), [`InflateError::Invalid`] when the data is
    /// not deflate.
    pub fn inflate(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        let Some(d) = self.decompress.as_deref_mut() else {
            return Err(InflateError::Invalid);
        };
        let mut result = inflate_into(d, input, out, limit);
        if result.is_ok() && last {
            result = inflate_into(d, &TRAILER, out, limit);
        }
        if last || result.is_err() {
            self.finish();
        }
        result
    }

    /// Gives the decompressor back to the thread, reset.
    fn finish(&mut self) {
        if let Some(mut d) = self.decompress.take() {
            d.reset(false);
            DECOMPRESSOR.with_borrow_mut(|slot| *slot = Some(d));
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Inflates all of `input` into `out`, which never grows past `limit` bytes.
fn inflate_into(
    d: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), InflateError> {
    let base = d.total_in();
    loop {
        let consumed = usize::try_from(d.total_in() - base).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        let before = (d.total_in(), d.total_out());
        // Whether zlib may have stopped for want of room rather than of input.
        let (status, filled) = if out.len() >= limit {
            // At the limit: one more byte out means the message is too large.
            let mut probe = [0u8; 1];
            let status = d
                .decompress(rest, &mut probe, FlushDecompress::Sync)
                .map_err(|_| InflateError::Invalid)?;
            if d.total_out() > before.1 {
                return Err(InflateError::TooLarge);
            }
            (status, false)
        } else {
            if out.len() == out.capacity() {
                // Room grows with what came out so far, never past the limit.
                let grow = out.len().max(rest.len().saturating_mul(4)).max(4096);
                out.reserve_exact(grow.min(limit - out.len()));
            }
            let status = d
                .decompress_vec(rest, out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Invalid)?;
            (status, out.len() == out.capacity())
        };
        if out.len() > limit {
            // Only if the allocator gave more room than was asked for.
            out.truncate(limit);
            return Err(InflateError::TooLarge);
        }
        let all_taken = d.total_in() - base == input.len() as u64;
        // Output that filled the room may have more behind it, even with
        // every input byte taken: look again (at the limit, with the probe).
        let room_left = !filled;
        if status == Status::StreamEnd || (all_taken && room_left) {
            // After a final block, what is left (the trailer) is not read.
            return Ok(());
        }
        if (d.total_in(), d.total_out()) == before && room_left {
            return Err(InflateError::Invalid);
        }
    }
}

#[cfg(test)]
mod tests;
