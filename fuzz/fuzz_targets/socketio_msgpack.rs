//! Decodes arbitrary bytes as one msgpack packet (as they are, or as the `data` of a packet map
//! whose type and id the first bytes choose); whatever decodes must re-encode to a message that
//! decodes the same, convert to the text format and back, and read its data without panics.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketio_packet::{Decoder, ProtocolVersion, msgpack};

/// `{type, nsp: "/", id?, data}` around `data`.
fn wrap(ty: u8, id: Option<u8>, data: &[u8]) -> Vec<u8> {
    let mut out = vec![if id.is_some() { 0x84 } else { 0x83 }];
    out.extend_from_slice(b"\xa4type");
    out.push(ty % 5);
    out.extend_from_slice(b"\xa3nsp\xa1/");
    if let Some(id) = id {
        out.extend_from_slice(b"\xa2id");
        out.push(id & 0x7f);
    }
    out.extend_from_slice(b"\xa4data");
    out.extend_from_slice(data);
    out
}

fuzz_target!(|data: &[u8]| {
    let message = match data {
        [0, rest @ ..] => rest.to_vec(),
        [1, ty, rest @ ..] => wrap(*ty, None, rest),
        [_, ty, id, rest @ ..] => wrap(*ty, Some(*id), rest),
        _ => data.to_vec(),
    };
    let Ok(packet) = msgpack::decode(Bytes::from(message)) else {
        return;
    };
    let _ = packet.event_args::<Vec<Option<String>>>();
    if let Some(payload) = packet.payload() {
        let _ = payload.deserialize::<Vec<Option<Bytes>>>();
        let _ = payload.to_json();
    }

    let again = msgpack::decode(msgpack::encode(&packet)).expect("re-encoded message decodes");
    assert_eq!(again, packet);

    // The text form of an event or an ack carries the same name, id and attachments.
    if packet.event_name().is_some() || packet.id().is_some() {
        let mut decoder = Decoder::new(ProtocolVersion::V5, usize::MAX);
        let Ok(mut out) = decoder.decode_text(packet.encode(ProtocolVersion::V5)) else {
            return;
        };
        for bin in packet.attachments() {
            out = decoder
                .decode_binary(bin.clone())
                .expect("attachment accepted");
        }
        let text = out.expect("complete");
        assert_eq!(text.event_name(), packet.event_name());
        assert_eq!(text.id(), packet.id());
        assert_eq!(text.attachments(), packet.attachments());
    }
});
