//! What `@socket.io/redis-streams-adapter` 0.3 writes, byte for byte,
//! beside the messages themselves (`socketio_cluster_adapter::wire`).
//!
//! Requests that await answers (server-side emits, `fetchSockets`,
//! broadcasts with acknowledgements) and the answers go through pub/sub as
//! the msgpack form of the message; everything else is appended to the
//! stream as the fields `uid`, `nsp`, `type` (in decimal) and `data` (the
//! JSON text of the message's data, or its msgpack form in base64 when it
//! holds binary values).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use socketio_cluster_adapter::wire::message_type;
use socketio_tokio::Str;
use socketio_tokio::socketio_proto::ClusterSession;

/// Whether a message goes through pub/sub rather than the stream (the
/// reference's `isEphemeral`): requests awaiting answers.
pub fn is_ephemeral(kind: u64, message: &[u8]) -> bool {
    match u8::try_from(kind).unwrap_or(0) {
        message_type::SERVER_SIDE_EMIT | message_type::FETCH_SOCKETS => true,
        message_type::BROADCAST => {
            // With a request id: a broadcast whose acknowledgements are collected.
            to_value(message)
                .and_then(|v| {
                    field(&v, "data")
                        .and_then(|d| field(d, "requestId"))
                        .cloned()
                })
                .is_some()
        }
        _ => false,
    }
}

/// A message (JSON or msgpack) as a msgpack value, its keys in their order.
pub fn to_value(message: &[u8]) -> Option<rmpv::Value> {
    if message.first() == Some(&b'{') {
        serde_json::from_slice(message).ok()
    } else {
        let mut rd = message;
        rmpv::decode::read_value(&mut rd).ok()
    }
}

/// The value of `key` in map `v`.
pub fn field<'a>(v: &'a rmpv::Value, key: &str) -> Option<&'a rmpv::Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// The msgpack form of a message, as published on the channels.
pub fn pubsub_payload(message: &[u8]) -> Option<Vec<u8>> {
    if message.first() != Some(&b'{') {
        return Some(message.to_vec());
    }
    let mut out = Vec::with_capacity(message.len());
    rmpv::encode::write_value(&mut out, &to_value(message)?).ok()?;
    Some(out)
}

/// The fields of a stream entry: `uid`, `nsp`, `type` (in decimal), and
/// `data`: its JSON text, or its msgpack form in base64 when it holds
/// binary values (the message came as msgpack).
pub fn entry_fields(kind: u64, message: &[u8]) -> Option<Vec<(&'static str, String)>> {
    let value = to_value(message)?;
    let text = |key| {
        field(&value, key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let mut fields = vec![
        ("uid", text("uid")?),
        ("nsp", text("nsp")?),
        ("type", kind.to_string()),
    ];
    if let Some(data) = field(&value, "data") {
        let data = if message.first() == Some(&b'{') {
            serde_json::to_string(data).ok()?
        } else {
            let mut out = Vec::new();
            rmpv::encode::write_value(&mut out, data).ok()?;
            BASE64.encode(out)
        };
        fields.push(("data", data));
    }
    Some(fields)
}

/// A stream entry's fields as a message in msgpack (`None` when it is not
/// one: no `nsp`, a bad type or data).
pub fn entry_message(fields: &[(String, String)]) -> Option<Vec<u8>> {
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let nsp = get("nsp")?;
    let kind: u64 = get("type")?.parse().ok()?;
    let mut map = vec![(rmpv::Value::from("type"), rmpv::Value::from(kind))];
    if let Some(data) = get("data") {
        let data: rmpv::Value = if data.starts_with('{') {
            serde_json::from_str(data).ok()?
        } else {
            let bytes = BASE64.decode(data).ok()?;
            let mut rd = &bytes[..];
            rmpv::decode::read_value(&mut rd).ok()?
        };
        map.push((rmpv::Value::from("data"), data));
    }
    map.push((
        rmpv::Value::from("uid"),
        rmpv::Value::from(get("uid").unwrap_or_default()),
    ));
    map.push((rmpv::Value::from("nsp"), rmpv::Value::from(nsp)));
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &rmpv::Value::Map(map)).ok()?;
    Some(out)
}

/// A stream entry's id, `<milliseconds>-<sequence>`, in the stream's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId(pub u64, pub u64);

impl StreamId {
    /// Reads `<digits>-<digits>` (the reference accepts nothing else as an
    /// offset).
    pub fn parse(id: &str) -> Option<StreamId> {
        let (ms, seq) = id.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

/// A session kept for recovery as the reference keeps it: the msgpack map
/// `{sid, pid, rooms, data}` in base64 (`data` an empty map when the
/// application set none, as a socket's `data` starts on the reference's
/// servers), with its namespace as `nsp` (which the reference ignores).
pub fn encode_session(session: &ClusterSession) -> String {
    let data = session
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .and_then(|d| rmpv::ext::to_value(d).ok())
        .unwrap_or_else(|| rmpv::Value::Map(Vec::new()));
    let text = |s: &str| rmpv::Value::from(s);
    let mut map = vec![
        (text("sid"), text(&session.sid)),
        (text("pid"), text(&session.pid)),
        (
            text("rooms"),
            rmpv::Value::Array(session.rooms.iter().map(|r| text(r)).collect()),
        ),
        (text("data"), data),
    ];
    // Not the reference's: it reads no other field.
    if let Some(nsp) = &session.nsp {
        map.push((text("nsp"), text(nsp)));
    }
    let map = rmpv::Value::Map(map);
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, &map);
    BASE64.encode(out)
}

/// The most rooms a kept session may name: one with more is not read
/// (whoever can write to Redis must not make a server hold without bound).
pub const MAX_SESSION_ROOMS: usize = 10_000;

/// The longest kept session read, base64 included.
pub const MAX_SESSION_LEN: usize = 4 << 20;

/// A session kept by [`encode_session`] or by the reference; `None` when it
/// is not one, or is beyond [`MAX_SESSION_LEN`] or [`MAX_SESSION_ROOMS`].
/// Its missed broadcasts are left empty.
pub fn decode_session(raw: &str) -> Option<ClusterSession> {
    if raw.len() > MAX_SESSION_LEN {
        return None;
    }
    let bytes = BASE64.decode(raw).ok()?;
    let mut rd = &bytes[..];
    let value = rmpv::decode::read_value(&mut rd).ok()?;
    let text = |key| field(&value, key).and_then(|v| v.as_str()).map(Str::from);
    let rooms = field(&value, "rooms")?.as_array()?;
    if rooms.len() > MAX_SESSION_ROOMS {
        return None;
    }
    let rooms = rooms
        .iter()
        .map(|r| r.as_str().map(Str::from))
        .collect::<Option<Vec<Str>>>()?;
    let data = match field(&value, "data") {
        None | Some(rmpv::Value::Nil) => None,
        // Data that JSON cannot hold (msgpack binary or extension types,
        // which a server of the reference may have kept) is left out: the
        // session is given back without it rather than lost.
        Some(data) => match rmpv::ext::from_value::<serde_json::Value>(data.clone()) {
            Ok(json) => Some(Str::from(json.to_string())),
            Err(error) => {
                tracing::warn!(%error, "a kept session's data is not JSON; it is given back without");
                None
            }
        },
    };
    Some(ClusterSession {
        sid: text("sid")?,
        pid: text("pid")?,
        rooms,
        data,
        nsp: text("nsp"),
        missed: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(nsp: Option<&str>) -> ClusterSession {
        ClusterSession {
            sid: Str::from("sid"),
            pid: Str::from("pid"),
            rooms: vec![Str::from("sid"), Str::from("r")],
            data: Some(Str::from("{\"user\":\"ann\"}")),
            nsp: nsp.map(Str::from),
            missed: Vec::new(),
        }
    }

    /// A session as a server of the reference keeps it, with `data`.
    fn reference_session(data: rmpv::Value) -> String {
        let text = |s: &str| rmpv::Value::from(s);
        let map = rmpv::Value::Map(vec![
            (text("sid"), text("sid")),
            (text("pid"), text("pid")),
            (text("rooms"), rmpv::Value::Array(vec![text("sid")])),
            (text("data"), data),
        ]);
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &map).expect("encoded");
        BASE64.encode(out)
    }

    #[test]
    fn a_session_keeps_its_namespace() {
        let kept = session(Some("/chat"));
        assert_eq!(decode_session(&encode_session(&kept)), Some(kept));
        let kept = session(None);
        assert_eq!(decode_session(&encode_session(&kept)), Some(kept));
    }

    #[test]
    fn a_session_without_data_is_kept_with_an_empty_map() {
        let mut kept = session(Some("/"));
        kept.data = None;
        let raw = BASE64.decode(encode_session(&kept)).expect("base64");
        let value = rmpv::decode::read_value(&mut raw.as_slice()).expect("msgpack");
        assert_eq!(field(&value, "data"), Some(&rmpv::Value::Map(Vec::new())));
        assert_eq!(
            decode_session(&encode_session(&kept)).and_then(|s| s.data),
            Some(Str::from("{}"))
        );
    }

    #[test]
    fn a_session_of_the_reference_names_no_namespace() {
        let raw = reference_session(rmpv::Value::Nil);
        let got = decode_session(&raw).expect("a session");
        assert_eq!(got.nsp, None);
        assert_eq!(got.data, None);
        assert_eq!(&*got.pid, "pid");
    }

    #[test]
    fn a_session_whose_data_is_not_json_is_kept_without_it() {
        for data in [
            rmpv::Value::Binary(vec![1, 2, 3]),
            rmpv::Value::Ext(1, vec![0]),
            rmpv::Value::Map(vec![(
                rmpv::Value::from("blob"),
                rmpv::Value::Binary(vec![0xff]),
            )]),
        ] {
            let got = decode_session(&reference_session(data.clone())).expect("a session");
            assert_eq!(got.data, None, "{data:?}");
            assert_eq!(&*got.sid, "sid");
            assert_eq!(got.rooms, vec![Str::from("sid")]);
        }
    }

    #[test]
    fn a_session_with_too_many_rooms_is_not_read() {
        let mut kept = session(Some("/"));
        kept.rooms = (0..=MAX_SESSION_ROOMS)
            .map(|i| Str::from(i.to_string().as_str()))
            .collect();
        assert_eq!(decode_session(&encode_session(&kept)), None);
        kept.rooms.pop();
        assert!(decode_session(&encode_session(&kept)).is_some());
    }
}
