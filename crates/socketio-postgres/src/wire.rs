//! What `@socket.io/postgres-adapter` 0.5 notifies and stores, byte for
//! byte, beside the messages themselves (`socketio_cluster_adapter::wire`).
//!
//! A message goes on the channel `<prefix>#<nsp>` as its JSON text when it
//! is JSON and shorter than the threshold; otherwise its msgpack form is
//! stored in the attachments table and the channel carries
//! `{"uid","type","attachmentId"}`, the id as a string.

/// The bytes stored in the attachments table for `message` (JSON or
/// msgpack): its msgpack form. `None` when it is neither.
pub fn attachment_payload(message: &[u8]) -> Option<Vec<u8>> {
    if message.first() != Some(&b'{') {
        return Some(message.to_vec());
    }
    // Straight into a msgpack value, which keeps the keys in their order.
    let value: rmpv::Value = serde_json::from_slice(message).ok()?;
    let mut out = Vec::with_capacity(message.len());
    rmpv::encode::write_value(&mut out, &value).ok()?;
    Some(out)
}

/// The notification that points at attachment `id`:
/// `{"uid":..,"type":..,"attachmentId":"<id>"}`.
pub fn attachment_header(uid: &str, kind: u64, id: i64) -> String {
    format!(
        "{{\"uid\":{},\"type\":{kind},\"attachmentId\":\"{id}\"}}",
        serde_json::Value::from(uid)
    )
}

/// The id an attachment header points at, if it is one (as a string, as
/// the reference writes it, or a number).
pub fn attachment_id(payload: &str) -> Option<i64> {
    let header: serde_json::Value = serde_json::from_str(payload).ok()?;
    match header.get("attachmentId")? {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    }
}
