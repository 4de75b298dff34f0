//! Property tests: every decoder takes any input without panicking, and whatever decodes
//! re-encodes to something that decodes the same.

use bytes::Bytes;
use engineio_packet::{Data, Packet, ProtocolVersion, Str, payload};
use proptest::prelude::*;

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3, ProtocolVersion::V4];

/// Random bytes, and bytes drawn from the characters the formats give meaning to, which reach deeper.
fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    let meaningful = prop::collection::vec(
        prop::sample::select(vec![
            0u8, 1, 2, 4, 6, 9, 10, 0xff, 0x1e, b':', b'0', b'1', b'2', b'3', b'4', b'6', b'9',
            b'b', b'A', b'Q', b'=', b'{', b'}', b'"', 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80,
        ]),
        0..40,
    );
    prop_oneof![prop::collection::vec(any::<u8>(), 0..64), meaningful]
}

/// Checks that a decoded packet survives encoding.
fn check_packet(packet: &Packet, v: ProtocolVersion) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        Packet::decode_text(packet.encode_text(v), v),
        Ok(packet.clone())
    );
    prop_assert_eq!(
        Packet::decode_frame(packet.to_ws_frame(v), v),
        Ok(packet.clone())
    );
    Ok(())
}

fn has_record_separator(packet: &Packet) -> bool {
    match packet {
        Packet::Ping(s) | Packet::Pong(s) | Packet::Message(Data::Text(s)) => s.contains('\u{1e}'),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn packets(input in arb_bytes()) {
        for v in VERSIONS {
            if let Ok(text) = Str::try_from(Bytes::from(input.clone()))
                && let Ok(packet) = Packet::decode_text(text, v)
            {
                check_packet(&packet, v)?;
            }
            if let Ok(packet) = Packet::decode_binary(Bytes::from(input.clone()), v) {
                check_packet(&packet, v)?;
            }
        }
    }

    #[test]
    fn a_single_packet_decodes_as_in_a_list_of_one(input in arb_bytes(), max in 0usize..3) {
        let body = Bytes::from(input);
        let all = payload::v4::decode(body.clone(), max);
        match payload::v4::decode_single(&body, max) {
            Some(one) => prop_assert_eq!(one.map(|p| vec![p]), all),
            None => prop_assert!(max == 0 || body.contains(&payload::v4::SEPARATOR)),
        }
    }

    #[test]
    fn v4_payloads(input in arb_bytes()) {
        if let Ok(packets) = payload::v4::decode(Bytes::from(input), usize::MAX) {
            prop_assert!(!packets.is_empty());
            prop_assert!(!packets.iter().any(has_record_separator));
            let mut out = Vec::new();
            payload::v4::encode(&packets, &mut out);
            prop_assert_eq!(payload::v4::decode(Bytes::from(out), usize::MAX), Ok(packets));
        }
    }

    #[test]
    fn v3_text_payloads(input in arb_bytes()) {
        if let Ok(packets) = payload::v3::decode_text(Bytes::from(input), usize::MAX) {
            let mut out = Vec::new();
            payload::v3::encode_text(&packets, &mut out);
            prop_assert_eq!(payload::v3::decode_text(Bytes::from(out), usize::MAX), Ok(packets));
        }
    }

    #[test]
    fn v3_binary_payloads(input in arb_bytes()) {
        if let Ok(packets) = payload::v3::decode_binary(Bytes::from(input), usize::MAX) {
            let mut out = Vec::new();
            payload::v3::encode_binary(&packets, &mut out);
            prop_assert_eq!(payload::v3::decode_binary(Bytes::from(out), usize::MAX), Ok(packets));
        }
    }

    #[test]
    fn iterators_stop_after_an_error(input in arb_bytes(), max in 0usize..4) {
        let bytes = Bytes::from(input);
        // The collecting form agrees with the iterator up to the limit.
        let collected: Result<Vec<Packet>, _> = payload::v3::iter_binary(&bytes).collect();
        let limited = payload::v3::decode_binary(bytes.clone(), max);
        match (&collected, &limited) {
            (Ok(all), Ok(some)) => prop_assert_eq!(all, some),
            (Ok(all), Err(_)) => prop_assert!(all.len() > max),
            (Err(_), _) => prop_assert!(limited.is_err()),
        }
        for items in [
            payload::v3::iter_binary(&bytes).collect::<Vec<_>>(),
            Str::try_from(bytes.clone())
                .map(|s| payload::v3::iter_text(&s).collect::<Vec<_>>())
                .unwrap_or_default(),
            Str::try_from(bytes.clone())
                .map(|s| payload::v4::iter(&s).collect::<Vec<_>>())
                .unwrap_or_default(),
        ] {
            // Only the last item may be an error.
            let errors = items.iter().filter(|i| i.is_err()).count();
            prop_assert!(errors == 0 || (errors == 1 && items.last().is_some_and(Result::is_err)));
        }
    }

    #[test]
    fn str_any_bytes(input in arb_bytes()) {
        let ok = std::str::from_utf8(&input).is_ok();
        prop_assert_eq!(Str::try_from(Bytes::from(input)).is_ok(), ok);
    }
}
