#![allow(clippy::unwrap_used)]

use super::*;

fn agree(config: &DeflateConfig, line: &str) -> Result<Option<String>, ExtensionError> {
    negotiate(config, [line]).map(|a| a.map(|a| a.response()))
}

/// A negotiation case: the configuration, the offer, the answer or the refusal.
type Case<'a> = (
    &'a DeflateConfig,
    &'a str,
    Result<Option<String>, ExtensionError>,
);

const BOTH: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// Each case: the configuration, the offer, and the answer (or the refusal).
#[test]
fn negotiation_cases() {
    let default = DeflateConfig::default();
    let limited = DeflateConfig {
        server_max_window_bits: Some(10),
        client_max_window_bits: Some(11),
        ..DeflateConfig::default()
    };
    let cases: Vec<Case<'_>> = vec![
        // What browsers and `ws` clients offer.
        (
            &default,
            "permessage-deflate; client_max_window_bits",
            Ok(Some(BOTH.into())),
        ),
        (&default, "permessage-deflate", Ok(Some(BOTH.into()))),
        // The client's hints, accepted (and always answered with both).
        (
            &default,
            "permessage-deflate; server_no_context_takeover",
            Ok(Some(BOTH.into())),
        ),
        (
            &default,
            "permessage-deflate; client_no_context_takeover",
            Ok(Some(BOTH.into())),
        ),
        // A window the client asks the server to keep to, confirmed.
        (
            &default,
            "permessage-deflate; server_max_window_bits=10",
            Ok(Some(format!("{BOTH}; server_max_window_bits=10"))),
        ),
        (
            &default,
            "permessage-deflate; server_max_window_bits=\"8\"",
            Ok(Some(format!("{BOTH}; server_max_window_bits=8"))),
        ),
        // The client's own window, echoed.
        (
            &default,
            "permessage-deflate; client_max_window_bits=12",
            Ok(Some(format!("{BOTH}; client_max_window_bits=12"))),
        ),
        // The server's limits: its window, the client's (no larger than the client offered).
        (
            &limited,
            "permessage-deflate; client_max_window_bits",
            Ok(Some(format!(
                "{BOTH}; server_max_window_bits=10; client_max_window_bits=11"
            ))),
        ),
        (
            &limited,
            "permessage-deflate; client_max_window_bits=9; server_max_window_bits=12",
            Ok(Some(format!(
                "{BOTH}; server_max_window_bits=10; client_max_window_bits=9"
            ))),
        ),
        // Declined variants: the first acceptable one is taken.
        (
            &limited,
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits, \
             permessage-deflate; client_max_window_bits",
            Ok(Some(format!(
                "{BOTH}; server_max_window_bits=10; client_max_window_bits=11"
            ))),
        ),
        // None acceptable: refused, as `ws` refuses it.
        (
            &limited,
            "permessage-deflate",
            Err(ExtensionError::Unacceptable),
        ),
        (
            &limited,
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits",
            Err(ExtensionError::Unacceptable),
        ),
        // Other extensions are passed over.
        (&default, "x-webkit-deflate-frame", Ok(None)),
        (
            &default,
            "foo; bar=1, Permessage-Deflate ; client_max_window_bits ",
            Ok(Some(BOTH.into())),
        ),
        // Invalid offers: refused.
        (
            &default,
            "permessage-deflate; foo",
            Err(ExtensionError::UnknownParameter),
        ),
        (
            &default,
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            Err(ExtensionError::DuplicateParameter),
        ),
        (
            &default,
            "permessage-deflate; server_no_context_takeover=1",
            Err(ExtensionError::InvalidValue),
        ),
        (
            &default,
            "permessage-deflate; client_no_context_takeover=\"x\"",
            Err(ExtensionError::InvalidValue),
        ),
        (
            &default,
            "permessage-deflate; server_max_window_bits",
            Err(ExtensionError::InvalidValue),
        ),
        (
            &default,
            "permessage-deflate; server_max_window_bits=7",
            Err(ExtensionError::InvalidValue),
        ),
        (
            &default,
            "permessage-deflate; client_max_window_bits=16",
            Err(ExtensionError::InvalidValue),
        ),
        (
            &default,
            "permessage-deflate; client_max_window_bits=010",
            Err(ExtensionError::InvalidValue),
        ),
        // Malformed lines: refused, whatever extension they name.
        (&default, "", Err(ExtensionError::Malformed)),
        (
            &default,
            "permessage-deflate,",
            Err(ExtensionError::Malformed),
        ),
        (
            &default,
            "permessage-deflate;; client_max_window_bits",
            Err(ExtensionError::Malformed),
        ),
        (&default, "foo; bar=\"a b\"", Err(ExtensionError::Malformed)),
        (&default, "foo bar", Err(ExtensionError::Malformed)),
        (
            &default,
            "permessage-deflate; client_max_window_bits=\"10",
            Err(ExtensionError::Malformed),
        ),
    ];
    for (config, offer, expected) in cases {
        assert_eq!(agree(config, offer), expected, "{offer:?}");
    }
}

#[test]
fn window_sizes_out_of_range_are_taken_as_the_nearest() {
    let config = DeflateConfig {
        server_max_window_bits: Some(3),
        client_max_window_bits: Some(200),
        ..DeflateConfig::default()
    };
    let agreed = negotiate(&config, ["permessage-deflate; client_max_window_bits"])
        .unwrap()
        .unwrap();
    assert_eq!(
        agreed.response(),
        format!("{BOTH}; server_max_window_bits=8; client_max_window_bits=15")
    );
    assert_eq!(agreed.deflater().window_bits(), 9);
}

#[test]
fn offers_over_several_header_lines() {
    let got = negotiate(&DeflateConfig::default(), ["foo", "permessage-deflate"]).unwrap();
    assert!(got.is_some());
    assert_eq!(
        negotiate(&DeflateConfig::default(), ["foo", "permessage-deflate; x"]),
        Err(ExtensionError::UnknownParameter)
    );
    assert_eq!(
        negotiate(&DeflateConfig::default(), std::iter::empty::<&str>()),
        Ok(None)
    );
}

#[test]
fn an_eight_bit_window_is_kept_with_zlib_nine() {
    let agreed = negotiate(
        &DeflateConfig::default(),
        ["permessage-deflate; server_max_window_bits=8"],
    )
    .unwrap()
    .unwrap();
    assert_eq!(agreed.deflater().window_bits(), 9);
    // No match reaches farther back than 256 bytes: a 256-byte pattern repeated does not
    // compress at all, while a 200-byte one does.
    let pattern: Vec<u8> = (0..=255u8).collect();
    let long: Vec<u8> = pattern.iter().cycle().take(4096).copied().collect();
    let mut out = Vec::new();
    assert!(!agreed.deflater().compress(&long, &mut out));
    let short: Vec<u8> = pattern[..200].iter().cycle().take(4096).copied().collect();
    let mut out = Vec::new();
    assert!(agreed.deflater().compress(&short, &mut out));
    assert!(out.len() < 2000, "{}", out.len());
}

/// Inflates `compressed` as one message under `limit`.
fn inflate_all(compressed: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    Inflater::new().inflate(compressed, true, &mut out, limit)?;
    Ok(out)
}

#[test]
fn compress_then_inflate() {
    let deflater = negotiate(&DeflateConfig::default(), ["permessage-deflate"])
        .unwrap()
        .unwrap()
        .deflater();
    let text = "{\"user\":\"alice\",\"text\":\"hello there\"}".repeat(100);
    let mut out = vec![0xaa];
    assert!(deflater.compress(text.as_bytes(), &mut out));
    assert_eq!(out[0], 0xaa, "appended");
    assert!(!out.ends_with(&TRAILER));
    assert!(out.len() < text.len() / 10);
    assert_eq!(inflate_all(&out[1..], text.len()).unwrap(), text.as_bytes());
    // Exactly at the limit is fine, one byte under it is not.
    assert_eq!(
        inflate_all(&out[1..], text.len() - 1),
        Err(InflateError::TooLarge)
    );
    // Each message stands alone: a second one inflates with a fresh context.
    let mut again = Vec::new();
    assert!(deflater.compress(text.as_bytes(), &mut again));
    assert_eq!(again, out[1..]);
    // Incompressible data is not worth it.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..2000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    let mut none = vec![1, 2];
    assert!(!deflater.compress(&noise, &mut none));
    assert_eq!(none, [1, 2]);
}

#[test]
fn a_bomb_stops_at_the_limit() {
    // 10 MB of zeros compress to about 10 KB.
    let deflater = DeflateConfig::default();
    let agreed = negotiate(&deflater, ["permessage-deflate"])
        .unwrap()
        .unwrap();
    let zeros = vec![0u8; 10_000_000];
    let mut bomb = Vec::new();
    assert!(agreed.deflater().compress(&zeros, &mut bomb));
    assert!(bomb.len() < 20_000, "{}", bomb.len());
    let mut out = Vec::new();
    let got = Inflater::new().inflate(&bomb, true, &mut out, 100_000);
    assert_eq!(got, Err(InflateError::TooLarge));
    assert!(out.capacity() <= 100_000, "{}", out.capacity());
    // Fed in pieces, the limit counts every piece.
    let mut inflater = Inflater::new();
    let mut out = Vec::new();
    let mut result = Ok(());
    for (i, piece) in bomb.chunks(1000).enumerate() {
        let last = (i + 1) * 1000 >= bomb.len();
        result = inflater.inflate(piece, last, &mut out, 100_000);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(InflateError::TooLarge));
    assert!(out.capacity() <= 100_000);
}

#[test]
fn garbage_does_not_inflate() {
    // A block of the reserved type 3.
    assert_eq!(
        inflate_all(&[0xff, 0xff, 0xff], 1000),
        Err(InflateError::Invalid)
    );
    // The empty message.
    assert_eq!(inflate_all(&[0x00], 10), Ok(Vec::new()));
    assert_eq!(inflate_all(&[], 10), Ok(Vec::new()));
    // A final block: what follows it is not read.
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(100);
    c.compress_vec(b"abc", &mut out, FlushCompress::Finish)
        .unwrap();
    assert_eq!(inflate_all(&out, 10), Ok(b"abc".to_vec()));
}

proptest::proptest! {
    /// No input makes the inflater panic or go past its limit.
    #[test]
    fn arbitrary_input_is_bounded(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        limit in 0usize..3000,
    ) {
        let mut out = Vec::new();
        let _ = Inflater::new().inflate(&bytes, true, &mut out, limit);
        proptest::prop_assert!(out.len() <= limit);
        proptest::prop_assert!(out.capacity() <= limit);
    }

    /// What the deflater writes inflates back to the message.
    #[test]
    fn round_trip(
        words in proptest::collection::vec(0u8..8, 0..3000),
        bits in 8u8..=15,
        level in 0u32..=9,
    ) {
        let data: Vec<u8> = words.iter().map(|w| b"abcdefgh"[usize::from(*w)]).collect();
        let config = DeflateConfig { level, threshold: 0, ..DeflateConfig::default() };
        let offer = format!("permessage-deflate; server_max_window_bits={bits}");
        let agreed = negotiate(&config, [offer.as_str()]).unwrap().unwrap();
        let mut out = Vec::new();
        if agreed.deflater().compress(&data, &mut out) {
            proptest::prop_assert_eq!(inflate_all(&out, data.len()).unwrap(), data);
        }
    }
}

/// Found by the fuzzer: data that turns invalid right after its first byte, against a limit of
/// nothing, is refused either way and leaves nothing behind.
#[test]
fn invalid_past_the_limit() {
    let mut out = Vec::new();
    let got = Inflater::new().inflate(&[0x7a, 0x0f, 0x00, 0x03, 0x3d], true, &mut out, 0);
    assert!(got.is_err());
    assert_eq!(out.capacity(), 0);
}

/// Found by the fuzzer: output that fills the room up to the limit exactly, with every input
/// byte taken, still has more behind it inside zlib: the message is too large, not cut short.
#[test]
fn output_that_fills_the_limit_exactly_is_looked_at_again() {
    let data = [0x8a, 0x7e, 0x7a, 0x7e];
    let mut out = Vec::new();
    let got = Inflater::new().inflate(&data, true, &mut out, 119);
    assert_eq!(got, Err(InflateError::TooLarge));
    // With room for all of it, it inflates.
    let mut all = Vec::new();
    Inflater::new()
        .inflate(&data, true, &mut all, 100_000)
        .unwrap();
    assert!(all.len() > 119, "{}", all.len());
    assert_eq!(&all[..119], &out[..]);
}
