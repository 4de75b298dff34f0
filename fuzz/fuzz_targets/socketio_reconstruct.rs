//! Feeds a Decoder with an arbitrary sequence of text and binary messages (the first byte of each
//! `\xff`-separated chunk chooses which); every packet it completes must survive a round trip
//! through the encoder and a fresh decoder.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketio_packet::{Decoder, Packet, ProtocolVersion, Str};

fn round_trip(packet: &Packet) {
    let _ = packet.event_args::<Vec<Option<String>>>();
    let mut decoder = Decoder::new(ProtocolVersion::V5, 16);
    let mut out = decoder
        .decode_text(packet.encode(ProtocolVersion::V5))
        .expect("re-encoded text decodes");
    for bin in packet.attachments() {
        assert!(out.is_none());
        out = decoder
            .decode_binary(bin.clone())
            .expect("attachment accepted");
    }
    assert_eq!(out.as_ref(), Some(packet));
}

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(ProtocolVersion::V5, 16);
    for chunk in data.split(|&b| b == 0xff) {
        let Some((&kind, body)) = chunk.split_first() else {
            continue;
        };
        let result = if kind & 1 == 0 {
            match Str::try_from(Bytes::copy_from_slice(body)) {
                Ok(text) => decoder.decode_text(text),
                Err(_) => continue,
            }
        } else {
            decoder.decode_binary(Bytes::copy_from_slice(body))
        };
        let awaiting = decoder.is_awaiting_attachments();
        match result {
            Ok(Some(packet)) => {
                assert!(!awaiting);
                round_trip(&packet);
            }
            Ok(None) => assert!(awaiting && decoder.awaited_attachments() > 0),
            Err(_) => {}
        }
        if kind & 2 != 0 {
            decoder.reset();
            assert!(!decoder.is_awaiting_attachments());
        }
    }
});
