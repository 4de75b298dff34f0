//! Permessage-deflate's receiving side with arbitrary bytes.
//!
//! The input, read as compressed data, goes through the inflater under a limit the input picks:
//! what it gives must be what an unbounded zlib gives, it never holds more than the limit, and it
//! reports the message as too large only when zlib's output goes past the limit.
//! The same bytes, cut into the fragments of one compressed message (RSV1 on the first), go
//! through a decoder with permessage-deflate on, whole and in chunks: both ways give the same
//! messages and the same error, none longer than the limit.

#![no_main]

use bytes::BytesMut;
use flate2::{Decompress, FlushDecompress, Status};
use libfuzzer_sys::fuzz_target;
use websocket_frame::deflate::{InflateError, Inflater};
use websocket_frame::{Decoder, Message, ProtocolError, encode_client};

/// What zlib makes of the data.
#[derive(Debug)]
enum Zlib {
    Inflated(Vec<u8>),
    TooLarge,
    Invalid,
    /// Invalid, after more than the limit came out: either answer is right.
    InvalidPastLimit,
}

/// Inflates `input` and the trailer with a fresh zlib, stopping one byte past `limit`.
fn zlib(input: &[u8], limit: usize) -> Zlib {
    let mut data = input.to_vec();
    data.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut d = Decompress::new(false);
    let mut out = vec![0; limit + 1];
    loop {
        let (read, written) = (d.total_in() as usize, d.total_out() as usize);
        let Ok(status) = d.decompress(&data[read..], &mut out[written..], FlushDecompress::Sync)
        else {
            return if d.total_out() as usize > limit {
                Zlib::InvalidPastLimit
            } else {
                Zlib::Invalid
            };
        };
        let (now_read, now_written) = (d.total_in() as usize, d.total_out() as usize);
        if now_written > limit {
            return Zlib::TooLarge;
        }
        if status == Status::StreamEnd || now_read == data.len() {
            out.truncate(now_written);
            return Zlib::Inflated(out);
        }
        if (now_read, now_written) == (read, written) {
            return Zlib::Invalid;
        }
    }
}

fn decode(wire: &[u8], chunk: usize, limit: usize) -> (Vec<Message>, Option<ProtocolError>) {
    let mut decoder = Decoder::new(limit).permessage_deflate(true);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in wire.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(m)) => {
                    if let Message::Text(t) = &m {
                        assert!(t.len() <= limit);
                    }
                    if let Message::Binary(b) = &m {
                        assert!(b.len() <= limit);
                    }
                    out.push(m);
                }
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let limit = usize::from(u16::from_le_bytes([*a, *b])) % 20_000;

    let mut out = Vec::new();
    let ours = Inflater::new()
        .inflate(rest, true, &mut out, limit)
        .map(|()| out.clone());
    assert!(out.len() <= limit && out.capacity() <= limit);
    match (&ours, zlib(rest, limit)) {
        (Ok(got), Zlib::Inflated(expected)) => assert_eq!(got, &expected),
        (Err(InflateError::TooLarge), Zlib::TooLarge | Zlib::InvalidPastLimit) => {}
        (Err(InflateError::Invalid), Zlib::Invalid | Zlib::InvalidPastLimit) => {}
        (got, expected) => panic!("inflater {got:?}, zlib {expected:?}"),
    }

    // The same bytes as the fragments of one message, cut where the input says.
    let pieces = usize::from(*a % 4) + 1;
    let step = rest.len().div_ceil(pieces).max(1);
    let mut wire = Vec::new();
    let parts: Vec<&[u8]> = if rest.is_empty() {
        vec![&[]]
    } else {
        rest.chunks(step).collect()
    };
    for (i, part) in parts.iter().enumerate() {
        let fin = if i + 1 == parts.len() { 0x80 } else { 0 };
        let first = match (i, b & 1) {
            (0, 0) => 0x41,
            (0, _) => 0x42,
            _ => 0,
        };
        encode_client(fin | first, part, [1, 2, 3, 4], &mut wire);
    }
    let whole = decode(&wire, wire.len().max(1), limit);
    let chunked = decode(&wire, usize::from(*b % 64) + 1, limit);
    assert_eq!(whole, chunked);
    // In one fragment, the decoder agrees with the inflater.
    if parts.len() == 1 && b & 1 == 1 {
        match (&whole, &ours) {
            ((m, None), Ok(expected)) => {
                assert_eq!(m, &[Message::Binary(expected.clone().into())])
            }
            ((_, Some(ProtocolError::TooLarge { .. })), Err(InflateError::TooLarge)) => {}
            ((_, Some(ProtocolError::InvalidCompressed)), Err(InflateError::Invalid)) => {}
            ((_, Some(ProtocolError::TooLarge { .. })), _) if rest.len() > limit => {}
            (got, expected) => panic!("decoder {got:?}, inflater {expected:?}"),
        }
    }
});
