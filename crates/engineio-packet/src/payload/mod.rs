//! Polling payloads: several packets in one HTTP body.
//!
//! Each decoder comes in two forms: an iterator that yields the packets in order and stops after the
//! first error (the reference server handles the packets before a bad one, then closes the session),
//! and a function that collects them, failing as a whole.
//! The bodies are decoded in place: text packets are slices of the body, not copies.

pub mod v3;
pub mod v4;

/// Collects `iter` into a vector of at most `max_packets` packets.
fn collect<I>(iter: I, max_packets: usize) -> Result<Vec<crate::Packet>, crate::DecodeError>
where
    I: Iterator<Item = Result<crate::Packet, crate::DecodeError>>,
{
    let mut packets = Vec::new();
    for packet in iter {
        if packets.len() == max_packets {
            return Err(crate::DecodeError::TooManyPackets);
        }
        packets.push(packet?);
    }
    Ok(packets)
}
