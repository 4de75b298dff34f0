//! Decodes arbitrary bytes as one packet (text form and binary frame, both revisions);
//! whatever decodes must survive a round trip through the encoders.

#![no_main]

use bytes::Bytes;
use engineio_packet::{Packet, ProtocolVersion, Str};
use libfuzzer_sys::fuzz_target;

fn round_trip(packet: &Packet, version: ProtocolVersion) {
    let text = packet.encode_text(version);
    assert_eq!(text.len(), packet.text_len(version));
    assert_eq!(Packet::decode_text(text, version).as_ref(), Ok(packet));
    let frame = packet.to_ws_frame(version);
    assert_eq!(Packet::decode_frame(frame, version).as_ref(), Ok(packet));
}

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    for version in [ProtocolVersion::V3, ProtocolVersion::V4] {
        if let Ok(text) = Str::try_from(bytes.clone())
            && let Ok(packet) = Packet::decode_text(text, version)
        {
            round_trip(&packet, version);
        }
        if let Ok(packet) = Packet::decode_binary(bytes.clone(), version) {
            round_trip(&packet, version);
        }
    }
});
