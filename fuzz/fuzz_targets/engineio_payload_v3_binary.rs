//! Decodes arbitrary bytes as a revision 3 binary (XHR2) payload; whatever decodes must re-encode
//! to a body that decodes the same.

#![no_main]

use bytes::Bytes;
use engineio_packet::payload::v3;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    // The iterator stops after its first error.
    let items: Vec<_> = v3::iter_binary(&body).collect();
    assert!(items.iter().rev().skip(1).all(Result::is_ok));
    if let Ok(packets) = v3::decode_binary(body, usize::MAX) {
        let mut out = Vec::new();
        v3::encode_binary(&packets, &mut out);
        assert_eq!(v3::decode_binary(Bytes::from(out), usize::MAX), Ok(packets));
    }
});
