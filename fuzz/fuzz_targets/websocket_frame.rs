//! Reads arbitrary bytes as client WebSocket frames, whole and in chunks of a size taken from the
//! input: both ways give the same messages and the same error, and the read buffer never holds
//! more than the input and one frame under the decoder's limit.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use websocket_frame::{Decoder, MAX_HEADER_LEN, Message, ProtocolError};

const LIMIT: usize = 4096;

fn decode(data: &[u8], chunk: usize) -> (Vec<Message>, Option<ProtocolError>) {
    let mut decoder = Decoder::new(LIMIT);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        assert!(buf.capacity() <= data.len() + LIMIT + MAX_HEADER_LEN + chunk);
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let whole = decode(rest, rest.len().max(1));
    let chunked = decode(rest, usize::from(first % 64) + 1);
    assert_eq!(whole, chunked);
});
