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
