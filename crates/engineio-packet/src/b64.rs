//! The base64 flavour of binary packets in text form.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;

use crate::DecodeError;

/// Standard alphabet, padded on output; on input padding is optional and non-zero trailing bits
/// are accepted, as Node.js's `Buffer.from(text, "base64")` does.
const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Length of the padded base64 text of `n` bytes.
pub(crate) const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Appends the base64 text of `data` to `out`.
pub(crate) fn encode_into(data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + encoded_len(data.len()), 0);
    // The slot is exactly the encoded length, so this cannot fail; on failure nothing is left behind.
    match ENGINE.encode_slice(data, &mut out[start..]) {
        Ok(written) => out.truncate(start + written),
        Err(_) => out.truncate(start),
    }
}

/// Decodes base64 text; the output is never longer than the input.
pub(crate) fn decode(text: &[u8]) -> Result<Bytes, DecodeError> {
    // The exact decoded length of valid text, so that the buffer becomes a `Bytes` without another
    // allocation. Invalid text fails in the decoder whatever this says.
    let unpadded = match text {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] | rest => rest.len(),
    };
    let len = match unpadded % 4 {
        0 => unpadded / 4 * 3,
        2 => unpadded / 4 * 3 + 1,
        3 => unpadded / 4 * 3 + 2,
        _ => return Err(DecodeError::InvalidBase64),
    };
    let mut out = vec![0; len];
    let written = ENGINE
        .decode_slice(text, &mut out)
        .map_err(|_| DecodeError::InvalidBase64)?;
    out.truncate(written);
    Ok(Bytes::from(out))
}
