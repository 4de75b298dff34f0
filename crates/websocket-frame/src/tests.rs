#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;

/// A client frame: masked with `mask`.
fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_client(if fin { 0x80 } else { 0 } | opcode, payload, mask, &mut out);
    out
}

fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Result<Vec<Message>, ProtocolError> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = decoder.decode(&mut buf)? {
        out.push(m);
    }
    Ok(out)
}

fn error_of(bytes: &[u8]) -> ProtocolError {
    match decode_all(&mut Decoder::new(1 << 20), bytes) {
        Err(e) => e,
        Ok(m) => panic!("decoded {m:?}"),
    }
}

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

#[test]
fn single_frame_messages() {
    let mut bytes = client_frame(true, 1, b"Hello", MASK);
    bytes.extend(client_frame(true, 2, &[0, 1, 2, 255], MASK));
    bytes.extend(client_frame(true, 9, b"", MASK));
    bytes.extend(client_frame(true, 10, b"p", MASK));
    let got = decode_all(&mut Decoder::new(100), &bytes).unwrap();
    assert_eq!(
        got,
        [
            Message::Text("Hello".into()),
            Message::Binary(Bytes::from_static(&[0, 1, 2, 255])),
            Message::Ping(Bytes::new()),
            Message::Pong(Bytes::from_static(b"p")),
        ]
    );
}

/// The example of RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d.
#[test]
fn rfc_example() {
    let bytes = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let got = decode_all(&mut Decoder::new(100), &bytes).unwrap();
    assert_eq!(got, [Message::Text("Hello".into())]);
}

#[test]
fn fragments_with_a_ping_between() {
    let mut bytes = client_frame(false, 1, b"Hel", MASK);
    bytes.extend(client_frame(true, 9, b"x", MASK));
    bytes.extend(client_frame(false, 0, b"l", MASK));
    bytes.extend(client_frame(true, 0, b"o", MASK));
    let mut decoder = Decoder::new(100);
    let got = decode_all(&mut decoder, &bytes).unwrap();
    assert_eq!(
        got,
        [
            Message::Ping(Bytes::from_static(b"x")),
            Message::Text("Hello".into())
        ]
    );
    assert!(!decoder.in_message());
}

#[test]
fn byte_by_byte_input_gives_the_same_messages() {
    let mut bytes = client_frame(true, 2, &[7; 300], MASK);
    bytes.extend(client_frame(true, 1, "é".repeat(40_000).as_bytes(), MASK));
    let mut decoder = Decoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in bytes {
        buf.extend_from_slice(&[b]);
        if let Some(m) = decoder.decode(&mut buf).unwrap() {
            got.push(m);
        }
    }
    assert_eq!(
        got,
        [
            Message::Binary(Bytes::from(vec![7; 300])),
            Message::Text("é".repeat(40_000).into())
        ]
    );
    assert!(buf.is_empty());
}

#[test]
fn room_is_reserved_for_the_frame_under_way() {
    let bytes = client_frame(true, 2, &[1; 5000], MASK);
    let mut buf = BytesMut::from(&bytes[..100]);
    assert_eq!(Decoder::new(10_000).decode(&mut buf), Ok(None));
    assert!(buf.capacity() >= bytes.len());
}

#[test]
fn close_frames() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    let got = decode_all(
        &mut Decoder::new(100),
        &client_frame(true, 8, &payload, MASK),
    )
    .unwrap();
    assert_eq!(
        got,
        [Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "bye".into()
        }))]
    );
    let got = decode_all(&mut Decoder::new(100), &client_frame(true, 8, b"", MASK)).unwrap();
    assert_eq!(got, [Message::Close(None)]);
    assert_eq!(
        error_of(&client_frame(true, 8, &[3], MASK)),
        ProtocolError::ShortClose
    );
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
        assert_eq!(
            error_of(&client_frame(true, 8, &code.to_be_bytes(), MASK)),
            ProtocolError::InvalidCloseCode(code),
            "{code}"
        );
    }
    let mut bad_reason = 1000u16.to_be_bytes().to_vec();
    bad_reason.extend_from_slice(&[0xff, 0xfe]);
    let e = error_of(&client_frame(true, 8, &bad_reason, MASK));
    assert_eq!(
        (e.clone(), e.close_code()),
        (ProtocolError::InvalidUtf8, 1007)
    );
}

#[test]
fn protocol_errors_and_their_close_codes() {
    let unmasked = [0x81, 0x02, b'h', b'i'];
    let cases: Vec<(Vec<u8>, ProtocolError, u16)> = vec![
        (unmasked.to_vec(), ProtocolError::Unmasked, 1002),
        (
            {
                let mut f = client_frame(true, 1, b"x", MASK);
                f[0] |= 0x40;
                f
            },
            ProtocolError::ReservedBits(0x40),
            1002,
        ),
        (
            client_frame(true, 3, b"", MASK),
            ProtocolError::ReservedOpCode(3),
            1002,
        ),
        (
            client_frame(true, 0xb, b"", MASK),
            ProtocolError::ReservedOpCode(0xb),
            1002,
        ),
        (
            client_frame(false, 9, b"", MASK),
            ProtocolError::FragmentedControl,
            1002,
        ),
        (
            client_frame(true, 9, &[0; 126], MASK),
            ProtocolError::ControlTooLong(126),
            1002,
        ),
        (
            client_frame(true, 0, b"x", MASK),
            ProtocolError::UnexpectedContinuation,
            1002,
        ),
        (
            {
                let mut f = client_frame(false, 1, b"x", MASK);
                f.extend(client_frame(true, 2, b"y", MASK));
                f
            },
            ProtocolError::ExpectedContinuation,
            1002,
        ),
        (
            client_frame(true, 1, &[0xc3, 0x28], MASK),
            ProtocolError::InvalidUtf8,
            1007,
        ),
    ];
    for (bytes, error, code) in cases {
        let got = error_of(&bytes);
        assert_eq!(got, error);
        assert_eq!(got.close_code(), code, "{error}");
    }
}

#[test]
fn errors_are_found_from_the_first_two_bytes() {
    let mut decoder = Decoder::new(100);
    let mut buf = BytesMut::from(&[0x81, 0x05][..]);
    assert_eq!(decoder.decode(&mut buf), Err(ProtocolError::Unmasked));
    // The decoder is spent: it says so again.
    let mut ok = BytesMut::from(&client_frame(true, 1, b"x", MASK)[..]);
    assert_eq!(decoder.decode(&mut ok), Err(ProtocolError::Unmasked));
}

#[test]
fn the_limit_counts_every_fragment() {
    let mut decoder = Decoder::new(10);
    let got = decode_all(&mut decoder, &client_frame(true, 2, &[0; 10], MASK)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        error_of_with(
            &mut Decoder::new(10),
            &client_frame(true, 2, &[0; 11], MASK)
        ),
        ProtocolError::TooLarge { limit: 10 }
    );
    let mut two = client_frame(false, 1, &[b'a'; 6], MASK);
    two.extend(client_frame(true, 0, &[b'a'; 5], MASK));
    let e = error_of_with(&mut Decoder::new(10), &two);
    assert_eq!(
        (e.clone(), e.close_code()),
        (ProtocolError::TooLarge { limit: 10 }, 1009)
    );
}

#[test]
fn an_announced_huge_frame_reserves_nothing() {
    // 2^63 bytes announced, nothing sent.
    let mut bytes = vec![0x82, 0xff];
    bytes.extend_from_slice(&(1u64 << 63).to_be_bytes());
    bytes.extend_from_slice(&MASK);
    let mut buf = BytesMut::from(&bytes[..]);
    let cap = buf.capacity();
    assert_eq!(
        Decoder::new(1 << 20).decode(&mut buf),
        Err(ProtocolError::TooLarge { limit: 1 << 20 })
    );
    assert_eq!(buf.capacity(), cap);
}

fn error_of_with(decoder: &mut Decoder, bytes: &[u8]) -> ProtocolError {
    match decode_all(decoder, bytes) {
        Err(e) => e,
        Ok(m) => panic!("decoded {m:?}"),
    }
}

#[test]
fn server_frames() {
    let mut out = Vec::new();
    encode(OpCode::Binary, &[1, 2], &mut out);
    assert_eq!(out, [0x82, 2, 1, 2]);
    out.clear();
    encode(OpCode::Text, &[b'a'; 126], &mut out);
    assert_eq!(&out[..4], [0x81, 126, 0, 126]);
    assert_eq!(out.len(), 4 + 126);
    out.clear();
    encode_header(OpCode::Text, 70_000, &mut out);
    assert_eq!(out, [0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    out.clear();
    encode_close(1000, "", &mut out);
    assert_eq!(out, [0x88, 2, 0x03, 0xe8]);
    out.clear();
    // A reason is cut to 123 bytes on a character boundary.
    encode_close(1001, &"é".repeat(100), &mut out);
    assert_eq!(out[1], 2 + 122);
    assert!(std::str::from_utf8(&out[4..]).is_ok());
}

/// A server frame read back by a client: unmasked.
fn read_server_frame(bytes: &[u8]) -> (u8, Vec<u8>, usize) {
    let opcode = bytes[0] & 0x0f;
    assert_eq!(bytes[0] & 0xf0, 0x80);
    assert_eq!(bytes[1] & 0x80, 0);
    let (len, at) = match bytes[1] {
        126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
        127 => {
            let mut be = [0; 8];
            be.copy_from_slice(&bytes[2..10]);
            (u64::from_be_bytes(be) as usize, 10)
        }
        n => (n as usize, 2),
    };
    (opcode, bytes[at..at + len].to_vec(), at + len)
}

proptest! {
    /// Any sequence of messages, cut into any fragments and fed in any chunks, comes out whole
    /// and in order.
    #[test]
    fn messages_survive_fragmenting_and_chunking(
        messages in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..400), 1usize..4),
            1..6,
        ),
        mask in any::<[u8; 4]>(),
        chunk in 1usize..700,
    ) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (text, data, pieces) in &messages {
            let data: Vec<u8> = if *text {
                String::from_utf8_lossy(data).into_owned().into_bytes()
            } else {
                data.clone()
            };
            let step = data.len().div_ceil(*pieces).max(1);
            let parts: Vec<&[u8]> = if data.is_empty() { vec![&[]] } else { data.chunks(step).collect() };
            for (i, part) in parts.iter().enumerate() {
                let opcode = if i > 0 { 0 } else if *text { 1 } else { 2 };
                wire.extend(client_frame(i + 1 == parts.len(), opcode, part, mask));
                if i == 0 && parts.len() > 1 {
                    wire.extend(client_frame(true, 9, b"mid", mask));
                    expected.push(Message::Ping(Bytes::from_static(b"mid")));
                }
            }
            expected.push(if *text {
                Message::Text(ByteString::try_from(Bytes::from(data)).unwrap())
            } else {
                Message::Binary(Bytes::from(data))
            });
        }
        let mut decoder = Decoder::new(1 << 16);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(m) = decoder.decode(&mut buf).unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got, expected);
        prop_assert!(buf.is_empty());
    }

    /// What the server writes, a client reads back as the same message.
    #[test]
    fn server_frames_read_back(data in proptest::collection::vec(any::<u8>(), 0..70_000), binary in any::<bool>()) {
        let opcode = if binary { OpCode::Binary } else { OpCode::Text };
        let mut out = Vec::new();
        encode(opcode, &data, &mut out);
        let (op, payload, used) = read_server_frame(&out);
        prop_assert_eq!(op, opcode.bits());
        prop_assert_eq!(payload, data);
        prop_assert_eq!(used, out.len());
    }

    /// No input makes the decoder panic, or hold more than the input and its limit.
    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut decoder = Decoder::new(256);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = decoder.decode(&mut buf) {}
        prop_assert!(buf.capacity() <= 300 + 256 + MAX_HEADER_LEN);
    }

    /// With permessage-deflate, compressed frames of any content (a first frame with RSV1, its
    /// continuations) never make the decoder panic or hand out more than its limit.
    #[test]
    fn arbitrary_compressed_frames_are_bounded(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..5),
        binary in any::<bool>(),
    ) {
        let mut wire = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let first = if i > 0 { 0 } else if binary { 0x42 } else { 0x41 };
            wire.extend(client_frame(i + 1 == frames.len(), first, f, MASK));
        }
        let mut decoder = Decoder::new(256).permessage_deflate(true);
        let mut buf = BytesMut::from(&wire[..]);
        while let Ok(Some(m)) = decoder.decode(&mut buf) {
            if let Message::Binary(b) = &m {
                prop_assert!(b.len() <= 256);
            }
            if let Message::Text(t) = &m {
                prop_assert!(t.len() <= 256);
            }
        }
    }
}

#[test]
fn unmask_matches_the_bytewise_definition() {
    for len in 0..40 {
        let data: Vec<u8> = (0..len as u8).collect();
        let mut fast = data.clone();
        unmask(&mut fast, MASK);
        let slow: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[i % 4])
            .collect();
        assert_eq!(fast, slow, "{len}");
    }
}

/// A client frame with its length written in `ext` bytes (0, 2 or 8) whatever it is.
fn frame_with_length(opcode: u8, payload: &[u8], ext: usize) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match ext {
        0 => out.push(0x80 | payload.len() as u8),
        2 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
    out
}

#[test]
fn lengths_must_be_in_their_shortest_form() {
    let got = decode_all(
        &mut Decoder::new(1 << 20),
        &frame_with_length(2, &[1; 125], 0),
    );
    assert_eq!(got.unwrap().len(), 1);
    let got = decode_all(
        &mut Decoder::new(1 << 20),
        &frame_with_length(2, &[1; 126], 2),
    );
    assert_eq!(got.unwrap().len(), 1);
    let got = decode_all(
        &mut Decoder::new(1 << 20),
        &frame_with_length(2, &[1; 65_536], 8),
    );
    assert_eq!(got.unwrap().len(), 1);
    for (len, ext) in [(0, 2), (125, 2), (0, 8), (125, 8), (126, 8), (65_535, 8)] {
        let e = error_of(&frame_with_length(2, &vec![1; len], ext));
        assert_eq!(
            (e.clone(), e.close_code()),
            (ProtocolError::NonMinimalLength(len as u64), 1002),
            "{len} in {ext} bytes"
        );
    }
    // Found from the header alone, before the payload arrives.
    let mut buf = BytesMut::from(&frame_with_length(1, &[b'a'; 100], 2)[..4]);
    assert_eq!(
        Decoder::new(1000).decode(&mut buf),
        Err(ProtocolError::NonMinimalLength(100))
    );
}

#[test]
fn invalid_utf8_is_found_at_the_fragment_that_makes_it() {
    // "é" is c3 a9: cut between two fragments, it is fine.
    let mut decoder = Decoder::new(100);
    let mut bytes = client_frame(false, 1, b"caf\xc3", MASK);
    bytes.extend(client_frame(true, 0, b"\xa9!", MASK));
    assert_eq!(
        decode_all(&mut decoder, &bytes).unwrap(),
        [Message::Text("café!".into())]
    );
    // A byte that can never be UTF-8 fails at its fragment, before the message ends.
    let mut decoder = Decoder::new(100);
    let mut buf = BytesMut::from(&client_frame(false, 1, b"ok", MASK)[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&client_frame(false, 0, b"a\xffb", MASK));
    assert_eq!(decoder.decode(&mut buf), Err(ProtocolError::InvalidUtf8));
    // A lead byte followed by a byte that cannot continue it, across fragments.
    let mut decoder = Decoder::new(100);
    let mut buf = BytesMut::from(&client_frame(false, 1, b"\xe2\x82", MASK)[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&client_frame(false, 0, b"A", MASK));
    assert_eq!(decoder.decode(&mut buf), Err(ProtocolError::InvalidUtf8));
    // A surrogate's encoding is refused at its second byte.
    let mut decoder = Decoder::new(100);
    let mut buf = BytesMut::from(&client_frame(false, 1, b"\xed\xa0", MASK)[..]);
    assert_eq!(decoder.decode(&mut buf), Err(ProtocolError::InvalidUtf8));
    // A code point cut by the end of the last fragment is not.
    let mut bytes = client_frame(false, 1, b"a", MASK);
    bytes.extend(client_frame(true, 0, b"\xc3", MASK));
    let e = error_of(&bytes);
    assert_eq!(
        (e.clone(), e.close_code()),
        (ProtocolError::InvalidUtf8, 1007)
    );
    // Binary messages are not text.
    let mut bytes = client_frame(false, 2, b"\xff", MASK);
    bytes.extend(client_frame(true, 0, b"\xfe", MASK));
    assert_eq!(
        decode_all(&mut Decoder::new(100), &bytes).unwrap(),
        [Message::Binary(Bytes::from_static(b"\xff\xfe"))]
    );
}

/// `data` compressed as a client would send it (RFC 7692: a sync flush, its trailer removed).
fn deflated(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

#[test]
fn compressed_messages() {
    let text = "hello hello hello hello".repeat(20);
    let z = deflated(text.as_bytes());
    // RSV1 on the only frame.
    let mut bytes = client_frame(true, 0x41, &z, MASK);
    // RSV1 on the first of three fragments, with a ping between.
    let (a, rest) = z.split_at(z.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    bytes.extend(client_frame(false, 0x42, a, MASK));
    bytes.extend(client_frame(true, 9, b"", MASK));
    bytes.extend(client_frame(false, 0, b, MASK));
    bytes.extend(client_frame(true, 0, c, MASK));
    // An uncompressed message in between compressed ones.
    bytes.extend(client_frame(true, 1, b"plain", MASK));
    let mut decoder = Decoder::new(1000).permessage_deflate(true);
    assert_eq!(
        decode_all(&mut decoder, &bytes).unwrap(),
        [
            Message::Text(text.clone().into()),
            Message::Ping(Bytes::new()),
            Message::Binary(Bytes::from(text.clone().into_bytes())),
            Message::Text("plain".into()),
        ]
    );
    assert!(!decoder.in_message());
}

#[test]
fn rsv1_where_it_may_not_be() {
    let z = deflated(b"abc");
    let with =
        |bytes: &[u8]| error_of_with(&mut Decoder::new(1000).permessage_deflate(true), bytes);
    // Without the extension.
    assert_eq!(
        error_of(&client_frame(true, 0x41, &z, MASK)),
        ProtocolError::ReservedBits(0x40)
    );
    // On a control frame, on a continuation, or RSV2 and RSV3.
    assert_eq!(
        with(&client_frame(true, 0x49, b"", MASK)),
        ProtocolError::ReservedBits(0x40)
    );
    let mut cont = client_frame(false, 0x41, &z, MASK);
    cont.extend(client_frame(true, 0x40, b"", MASK));
    assert_eq!(with(&cont), ProtocolError::ReservedBits(0x40));
    assert_eq!(
        with(&client_frame(true, 0x21, b"x", MASK)),
        ProtocolError::ReservedBits(0x20)
    );
    assert_eq!(
        with(&client_frame(true, 0x61, b"x", MASK)),
        ProtocolError::ReservedBits(0x60)
    );
    // Data that is not deflate: 1007, as the reference answers it.
    let e = with(&client_frame(true, 0x41, &[0xff, 0xff], MASK));
    assert_eq!(
        (e.clone(), e.close_code()),
        (ProtocolError::InvalidCompressed, 1007)
    );
    // Text that inflates to something that is not UTF-8.
    let e = with(&client_frame(true, 0x41, &deflated(b"a\xffb"), MASK));
    assert_eq!(e, ProtocolError::InvalidUtf8);
}

#[test]
fn a_decompression_bomb_closes_with_1009() {
    // 5 MB of one byte, about 5 KB compressed, against a limit of 100 KB.
    let z = deflated(&vec![b'a'; 5_000_000]);
    assert!(z.len() < 10_000);
    let e = error_of_with(
        &mut Decoder::new(100_000).permessage_deflate(true),
        &client_frame(true, 0x41, &z, MASK),
    );
    assert_eq!(
        (e.clone(), e.close_code()),
        (ProtocolError::TooLarge { limit: 100_000 }, 1009)
    );
    // Fragmented, the limit holds across fragments.
    let mut bytes = Vec::new();
    let pieces: Vec<&[u8]> = z.chunks(512).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let first = if i == 0 { 0x42 } else { 0 };
        bytes.extend(client_frame(i + 1 == pieces.len(), first, piece, MASK));
    }
    let e = error_of_with(&mut Decoder::new(100_000).permessage_deflate(true), &bytes);
    assert_eq!(e, ProtocolError::TooLarge { limit: 100_000 });
    // A compressed frame longer than the limit is refused before it is read.
    let mut buf = BytesMut::from(&client_frame(true, 0x42, &[0; 2000], MASK)[..10]);
    assert_eq!(
        Decoder::new(1000).permessage_deflate(true).decode(&mut buf),
        Err(ProtocolError::TooLarge { limit: 1000 })
    );
}
