//! Decodes arbitrary bytes as a revision 3 text payload; whatever decodes must re-encode
//! to a body that decodes the same.

#![no_main]

use bytes::Bytes;
use engineio_packet::{Str, payload::v3};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(text) = Str::try_from(body.clone()) {
        // The iterator stops after its first error.
        let items: Vec<_> = v3::iter_text(&text).collect();
        assert!(items.iter().rev().skip(1).all(Result::is_ok));
    }
    if let Ok(packets) = v3::decode_text(body, usize::MAX) {
        let mut out = Vec::new();
        v3::encode_text(&packets, &mut out);
        assert_eq!(v3::decode_text(Bytes::from(out), usize::MAX), Ok(packets));
    }
});
