//! [`Packet`], its kinds, the builders and the text encoder.

use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ser::{ArgsSer, JsonSer, serialize_then, serialize_with, write_str};
use crate::wire::PacketType;
use crate::{DataError, EncodeError, Payload, Str};

/// The Socket.IO protocol revision spoken on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ProtocolVersion {
    /// Revision 4, spoken by Socket.IO 2 clients over Engine.IO 3: no CONNECT payload
    /// (the client's query rides in the namespace, `/nsp?x=y`), and an ERROR packet (type 4)
    /// whose payload is the error's data or message.
    V4 = 4,
    /// Revision 5, the current one.
    #[default]
    V5 = 5,
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Socket.IO packet: a namespace and what is sent to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The namespace, such as `/` or `/admin`. A revision 4 CONNECT may carry a query after it
    /// (`/admin?token=x`): see [`Packet::nsp_path`] and [`Packet::nsp_query`].
    pub nsp: Str,
    /// What the packet carries.
    pub kind: PacketKind,
}

/// What a packet carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketKind {
    /// Connection to the namespace, with the client's auth object (revision 5), or from the server
    /// with `{"sid":..}`; revision 4 has no payload.
    Connect(Option<Payload>),
    /// Disconnection from the namespace.
    Disconnect,
    /// An event. Travels as BINARY_EVENT when the data has attachments.
    Event {
        /// The event name: the first element of the array, or its text when it is a number.
        name: Str,
        /// The whole array, event name included: `["chat","hi"]`.
        data: Payload,
        /// The ack id, when the sender awaits an acknowledgement.
        id: Option<u64>,
    },
    /// An acknowledgement. Travels as BINARY_ACK when the data has attachments.
    Ack {
        /// The array of arguments: `["ok"]`.
        data: Payload,
        /// The id of the acknowledged event.
        id: u64,
    },
    /// A refused connection: `{"message":..,"data":..}` or a string (revision 4: any value).
    ConnectError(Payload),
}

/// Whether `nsp` can be written and read back: `/`, or `/` followed by anything but a comma.
pub fn is_valid_namespace(nsp: &str) -> bool {
    nsp.starts_with('/') && memchr::memchr(b',', nsp.as_bytes()).is_none()
}

fn check_namespace(nsp: &str) -> Result<(), EncodeError> {
    let b = nsp.as_bytes();
    if b == b"/" || (b.first() == Some(&b'/') && memchr::memchr(b',', b).is_none()) {
        Ok(())
    } else {
        Err(EncodeError::InvalidNamespace(nsp.to_string()))
    }
}

/// JavaScript truthiness of a JSON value.
fn truthy(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

impl Packet {
    /// An event: `["name", ...args]`, written in one serializer pass.
    ///
    /// `args` that serialize as a sequence (a tuple, a `Vec`, an array) give one argument per
    /// element; `()` gives none; any other value is one argument. Binary values become
    /// attachments (see [`Payload::from_value`]), and the packet then travels as BINARY_EVENT.
    ///
    /// # Errors
    /// [`EncodeError`] when `nsp` is not a valid namespace (see [`is_valid_namespace`]) or the
    /// arguments cannot be serialized.
    pub fn event<T: Serialize + ?Sized>(
        nsp: Str,
        name: &str,
        args: &T,
        id: Option<u64>,
    ) -> Result<Packet, EncodeError> {
        check_namespace(&nsp)?;
        let mut bins = Vec::new();
        let out = serialize_with(|out| write_event(out, name, args, &mut bins))?;
        // The name gets its own small buffer: cheaper than sharing the JSON's, whose reference
        // count would then be updated on every clone and drop.
        let json = Str::from(out);
        let name = Str::from(name);
        Ok(Packet {
            nsp,
            kind: PacketKind::Event {
                name,
                data: Payload::from_parts(json, bins),
                id,
            },
        })
    }

    /// An acknowledgement of event `id`, with `args` as in [`Packet::event`].
    ///
    /// # Errors
    /// [`EncodeError`] when `nsp` is not a valid namespace or the arguments cannot be serialized.
    pub fn ack<T: Serialize + ?Sized>(nsp: Str, id: u64, args: &T) -> Result<Packet, EncodeError> {
        check_namespace(&nsp)?;
        let mut bins = Vec::new();
        let out = serialize_with(|out| {
            out.push('[');
            args.serialize(ArgsSer {
                out,
                bins: &mut bins,
                has_prev: false,
            })
        })?;
        let data = Payload::from_parts(Str::from(out), bins);
        Ok(Packet {
            nsp,
            kind: PacketKind::Ack { data, id },
        })
    }

    /// A CONNECT packet, with an optional payload (for the server's answer, `{"sid":..}`).
    ///
    /// Only events and acks carry attachments: a payload with attachments here would lose them.
    pub fn connect(nsp: Str, data: Option<Payload>) -> Packet {
        Packet {
            nsp,
            kind: PacketKind::Connect(data),
        }
    }

    /// A DISCONNECT packet.
    pub fn disconnect(nsp: Str) -> Packet {
        Packet {
            nsp,
            kind: PacketKind::Disconnect,
        }
    }

    /// A revision 5 CONNECT_ERROR packet: `{"message":..,"data":..}`, without `data` when `None`.
    pub fn connect_error(nsp: Str, message: &str, data: Option<&serde_json::Value>) -> Packet {
        Packet::connect_error_for(ProtocolVersion::V5, nsp, message, data)
    }

    /// A CONNECT_ERROR packet for `version`: revision 5 as [`Packet::connect_error`]; revision 4
    /// sends `data` when it is truthy (in the JavaScript sense), else the message as a string,
    /// as the reference does for those clients.
    pub fn connect_error_for(
        version: ProtocolVersion,
        nsp: Str,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> Packet {
        let mut out = String::with_capacity(32 + message.len());
        let mut bins = Vec::new();
        match (version, data) {
            (ProtocolVersion::V4, Some(data)) if truthy(data) => {
                let _ = data.serialize(JsonSer::new(&mut out, &mut bins));
            }
            (ProtocolVersion::V4, _) => write_str(&mut out, message),
            (ProtocolVersion::V5, data) => {
                out.push_str("{\"message\":");
                write_str(&mut out, message);
                if let Some(data) = data {
                    out.push_str(",\"data\":");
                    let _ = data.serialize(JsonSer::new(&mut out, &mut bins));
                }
                out.push('}');
            }
        }
        let json = Str::from(out);
        Packet {
            nsp,
            kind: PacketKind::ConnectError(Payload::from_parts(json, Vec::new())),
        }
    }

    /// The type this packet is written as: BINARY_EVENT or BINARY_ACK when an event's or an ack's
    /// payload has attachments.
    pub fn packet_type(&self) -> PacketType {
        match &self.kind {
            PacketKind::Connect(_) => PacketType::Connect,
            PacketKind::Disconnect => PacketType::Disconnect,
            PacketKind::Event { data, .. } if data.is_binary() => PacketType::BinaryEvent,
            PacketKind::Event { .. } => PacketType::Event,
            PacketKind::Ack { data, .. } if data.is_binary() => PacketType::BinaryAck,
            PacketKind::Ack { .. } => PacketType::Ack,
            PacketKind::ConnectError(_) => PacketType::ConnectError,
        }
    }

    /// The payload, if the packet has one.
    pub fn payload(&self) -> Option<&Payload> {
        match &self.kind {
            PacketKind::Connect(p) => p.as_ref(),
            PacketKind::Disconnect => None,
            PacketKind::Event { data, .. }
            | PacketKind::Ack { data, .. }
            | PacketKind::ConnectError(data) => Some(data),
        }
    }

    /// The ack id: an event's (when it awaits an ack) or an ack's.
    pub fn id(&self) -> Option<u64> {
        match &self.kind {
            PacketKind::Event { id, .. } => *id,
            PacketKind::Ack { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The event name, for an event.
    pub fn event_name(&self) -> Option<&Str> {
        match &self.kind {
            PacketKind::Event { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The binary attachments that follow the packet, in placeholder order
    /// (only events and acks have any).
    pub fn attachments(&self) -> &[Bytes] {
        match &self.kind {
            PacketKind::Event { data, .. } | PacketKind::Ack { data, .. } => data.attachments(),
            _ => &[],
        }
    }

    /// The namespace without its query: `/admin` for `/admin?token=x`.
    pub fn nsp_path(&self) -> &str {
        let nsp = self.nsp.as_str();
        nsp.split_once('?').map_or(nsp, |(path, _)| path)
    }

    /// The query that a revision 4 client appends to the namespace of its CONNECT:
    /// `token=x` for `/admin?token=x`.
    pub fn nsp_query(&self) -> Option<&str> {
        self.nsp.as_str().split_once('?').map(|(_, query)| query)
    }

    /// Typed arguments: for an event, the elements after the event name; for an ack, all the
    /// elements; deserialized as a sequence (`T` is a tuple, a `Vec`, or a type that deserializes
    /// from a sequence), with attachments in place of their placeholders.
    ///
    /// # Errors
    /// [`DataError::NoArguments`] for other packets; [`DataError`] when the arguments do not match `T`.
    pub fn event_args<T: DeserializeOwned>(&self) -> Result<T, DataError> {
        match &self.kind {
            PacketKind::Event { data, .. } => data.args(1),
            PacketKind::Ack { data, .. } => data.args(0),
            _ => Err(DataError::NoArguments),
        }
    }

    /// Appends the text form, `<type>[<n>-][<nsp>,][<id>][<json>]`, to `out`.
    ///
    /// The namespace is omitted when it is `/` (or empty). `out` may already hold something,
    /// such as an Engine.IO `4` prefix, so that a broadcast is encoded once and shared.
    /// The attachments ([`Packet::attachments`]) are sent after it, one binary message each.
    /// For revision 4, a CONNECT is written without payload.
    pub fn encode_into(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len(version));
        self.write_into(version, out);
    }

    /// Writes the text form to `out`, which has room for it.
    /// Writes everything before the payload (type, attachment count,
    /// namespace, ack id); returns the payload to write after it.
    fn write_head<S: Sink>(&self, version: ProtocolVersion, out: &mut S) -> Option<&Payload> {
        let payload = match &self.kind {
            PacketKind::Connect(p) if version == ProtocolVersion::V5 => p.as_ref(),
            PacketKind::Connect(_) | PacketKind::Disconnect => None,
            PacketKind::Event { data, .. }
            | PacketKind::Ack { data, .. }
            | PacketKind::ConnectError(data) => Some(data),
        };
        self.head().write(out);
        payload
    }

    /// Everything before the payload.
    fn head(&self) -> Head<'_> {
        Head {
            ty: self.packet_type(),
            attachments: self.attachments().len(),
            nsp: self.nsp.as_str(),
            id: self.id(),
        }
    }

    fn write_into(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        let payload = self.write_head(version, out);
        #[cfg(feature = "msgpack")]
        if let Some(m) = payload.and_then(Payload::msgpack_data) {
            crate::mpvalue::write_json(&m.data, out);
            return;
        }
        if let Some(p) = payload {
            out.extend_from_slice(p.json().as_bytes());
        }
    }

    /// The text form (see [`Packet::encode_into`]).
    pub fn encode(&self, version: ProtocolVersion) -> Str {
        if let Some(text) = self.encode_short(version) {
            return text;
        }
        // The exact length, so that the buffer becomes a `Str` without reallocating.
        let len = self.encoded_len(version);
        #[cfg(feature = "msgpack")]
        if self.payload().is_some_and(Payload::is_msgpack) {
            let mut out = Vec::with_capacity(len);
            self.write_into(version, &mut out);
            return Str::from_utf8(Bytes::from(out)).unwrap_or_default();
        }
        // Written as a `String` from `str` pieces: no UTF-8 check afterwards.
        let mut out = String::with_capacity(len);
        if let Some(p) = self.write_head(version, &mut out) {
            out.push_str(p.json());
        }
        debug_assert_eq!(out.len(), len);
        Str::from(out)
    }

    /// The text form of a packet whose header is its type alone (the root namespace, no
    /// attachments, no ack id): one digit, then the JSON. `None` for other packets.
    #[inline]
    fn encode_short(&self, version: ProtocolVersion) -> Option<Str> {
        if !matches!(self.nsp.as_bytes(), b"/" | b"") {
            return None;
        }
        let (digit, payload) = match &self.kind {
            PacketKind::Connect(p) if version == ProtocolVersion::V5 => ("0", p.as_ref()),
            PacketKind::Connect(_) => ("0", None),
            PacketKind::Disconnect => ("1", None),
            PacketKind::Event { data, id: None, .. } if !data.is_binary() => ("2", Some(data)),
            PacketKind::ConnectError(data) => ("4", Some(data)),
            _ => return None,
        };
        #[cfg(feature = "msgpack")]
        if payload.is_some_and(Payload::is_msgpack) {
            return None;
        }
        let json = payload.map_or("", |p| p.json().as_str());
        let mut out = String::with_capacity(1 + json.len());
        out.push_str(digit);
        out.push_str(json);
        Some(Str::from(out))
    }

    /// The length of the text form that [`encode_into`](Packet::encode_into) writes: exact
    /// for JSON payloads, an estimate for msgpack values carried through JSON.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        let mut len = self.head().len();
        let payload = match &self.kind {
            PacketKind::Connect(_) if version == ProtocolVersion::V4 => None,
            _ => self.payload(),
        };
        if let Some(p) = payload {
            len += p.json().len();
            #[cfg(feature = "msgpack")]
            if let Some(m) = p.msgpack_data() {
                len += m.data.len() * 2 + 16;
            }
        }
        len
    }
}

/// Writes an event's array, `["name", ...args]`, its binary values taken into `bins`.
fn write_event<T: Serialize + ?Sized>(
    out: &mut String,
    name: &str,
    args: &T,
    bins: &mut Vec<Bytes>,
) -> crate::ser::Result<()> {
    out.push('[');
    write_str(out, name);
    args.serialize(ArgsSer {
        out,
        bins,
        has_prev: true,
    })
}

/// The number of decimal digits of `n`.
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The text form of the event [`Packet::event`] makes, written after `prefix` (such as an
/// Engine.IO `4`) straight from `args`, and its attachments: the bytes that
/// [`Packet::encode_into`] writes after `prefix` for that packet, with no packet in between
/// (one serializer pass, one exactly sized buffer).
///
/// # Errors
/// As [`Packet::event`].
pub fn encode_event<T: Serialize + ?Sized>(
    prefix: &str,
    nsp: &str,
    name: &str,
    args: &T,
    id: Option<u64>,
) -> Result<(Str, Vec<Bytes>), EncodeError> {
    check_namespace(nsp)?;
    serialize_then(
        |out| {
            let mut bins = Vec::new();
            write_event(out, name, args, &mut bins).map(|()| bins)
        },
        |json, bins| {
            let head = Head {
                ty: match bins.is_empty() {
                    true => PacketType::Event,
                    false => PacketType::BinaryEvent,
                },
                attachments: bins.len(),
                nsp,
                id,
            };
            let len = prefix.len() + head.len() + json.len();
            let mut out = String::with_capacity(len);
            out.push_str(prefix);
            head.write(&mut out);
            out.push_str(json);
            debug_assert_eq!(out.len(), len);
            (Str::from(out), bins)
        },
    )
}

/// What the text form writes before the payload: `<type>[<n>-][<nsp>,][<id>]`.
struct Head<'a> {
    ty: PacketType,
    /// The attachment count, written for binary types.
    attachments: usize,
    /// Written unless it is `/` (or empty).
    nsp: &'a str,
    id: Option<u64>,
}

impl Head<'_> {
    fn with_nsp(&self) -> bool {
        !self.nsp.is_empty() && self.nsp != "/"
    }

    /// Its length in bytes.
    fn len(&self) -> usize {
        let mut len = 1;
        if self.ty.is_binary() {
            len += digits(self.attachments as u64) + 1;
        }
        if self.with_nsp() {
            len += self.nsp.len() + 1;
        }
        if let Some(id) = self.id {
            len += digits(id);
        }
        len
    }

    fn write<S: Sink>(&self, out: &mut S) {
        const DIGITS: [&str; 7] = ["0", "1", "2", "3", "4", "5", "6"];
        out.put(DIGITS[usize::from(self.ty.digit() - b'0')]);
        let mut buf = itoa::Buffer::new();
        if self.ty.is_binary() {
            out.put(buf.format(self.attachments));
            out.put("-");
        }
        if self.with_nsp() {
            out.put(self.nsp);
            out.put(",");
        }
        if let Some(id) = self.id {
            out.put(buf.format(id));
        }
    }
}

/// Where the text form is written: bytes (after an Engine.IO prefix) or a
/// `String` (which then needs no UTF-8 check).
trait Sink {
    fn put(&mut self, s: &str);
}

impl Sink for Vec<u8> {
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

impl Sink for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}
