//! Decodes arbitrary bytes as a revision 4 polling payload; whatever decodes must re-encode
//! to a body that decodes the same.

#![no_main]

use bytes::Bytes;
use engineio_packet::{Str, payload::v4};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(text) = Str::try_from(body.clone()) {
        // The iterator stops after its first error.
        let items: Vec<_> = v4::iter(&text).collect();
        assert!(items.iter().rev().skip(1).all(Result::is_ok));
    }
    if let Ok(packets) = v4::decode(body, usize::MAX) {
        let mut out = Vec::new();
        v4::encode(&packets, &mut out);
        assert_eq!(v4::decode(Bytes::from(out), usize::MAX), Ok(packets));
    }
});
