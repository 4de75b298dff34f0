//! Decodes arbitrary bytes as one Socket.IO text message; whatever decodes must survive a round
//! trip through the encoder (with made-up attachments for binary packets), and reading its data
//! must not panic.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketio_packet::{Decoder, Packet, PacketKind, Payload, ProtocolVersion, Str, decode_packet};

/// Gives a decoded binary packet its attachments.
fn attach(packet: &mut Packet, count: usize) {
    if let PacketKind::Event { data, .. } | PacketKind::Ack { data, .. } = &mut packet.kind {
        let bins = (0..count)
            .map(|i| Bytes::from(vec![i as u8; i % 4]))
            .collect();
        if let Ok(p) = Payload::from_json(data.json().clone(), bins) {
            *data = p;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = Str::try_from(Bytes::copy_from_slice(data)) else {
        return;
    };
    let Ok((mut packet, count)) = decode_packet(text) else {
        return;
    };
    if count > 64 {
        return;
    }
    attach(&mut packet, count);
    assert_eq!(packet.attachments().len(), count);

    let _ = packet.event_args::<Vec<Option<String>>>();
    if let Some(payload) = packet.payload() {
        let _ = payload.deserialize::<Vec<Option<Bytes>>>();
        assert!(payload.check_placeholders().is_ok());
    }

    let encoded = packet.encode(ProtocolVersion::V5);
    let mut decoder = Decoder::new(ProtocolVersion::V5, 64);
    let mut out = decoder
        .decode_text(encoded)
        .expect("re-encoded text decodes");
    for bin in packet.attachments() {
        assert!(out.is_none());
        out = decoder
            .decode_binary(bin.clone())
            .expect("attachment accepted");
    }
    assert_eq!(out.as_ref(), Some(&packet));
});
