//! The format of `socket.io-msgpack-parser`: one msgpack message per packet.
//!
//! A packet is a map `{type, data, id?, nsp}`, written with notepack's encodings (the smallest
//! integer, string, binary, array and map forms, floats as float 64) and with the key order of the
//! reference server. Binary values are msgpack `bin` values inside the data, so there are no
//! attachments on the wire and no BINARY_* types: an event is type 2, an ack type 3.
//!
//! Decoding follows the parser's `checkPacket`: `type` an integer from 0 to 4, `nsp` a string,
//! `data` as the type requires, `id` absent or an integer. notepack's extensions are understood:
//! `undefined` (fixext 1 of type 0) counts as absent, and an ArrayBuffer (ext 8/16/32 of type 0)
//! counts as binary, like `bin`.
//!
//! A decoded [`Payload`] keeps the msgpack data (a zero-copy slice of the message);
//! [`Payload::deserialize`] and [`Packet::event_args`] read it with `rmp-serde`, and its binary
//! values are also its [`Payload::attachments`], so that [`Packet::encode_into`] can write it in
//! the text format. A JSON payload (from [`Packet::event`] and the like) is converted by [`encode`].

use std::ops::Range;

use bytes::Bytes;
use serde::Serialize;

use crate::mpvalue::{
    Collect, Item, MsgpackData, Offset, Reader, len32, write_bin_header, write_float,
};
use crate::wire::RESERVED_EVENTS;
use crate::{DecodeError, EncodeError, Packet, PacketKind, PacketType, Payload, Str};

/// Serializes `value` as a msgpack payload (structs as maps, binary values as `bin`), for packets
/// sent with [`encode`] without going through JSON.
///
/// # Errors
/// [`EncodeError::Msgpack`] when the value cannot be serialized; [`EncodeError::TooDeep`] when it
/// nests deeper than 127 levels.
pub fn payload_from_value<T: Serialize + ?Sized>(value: &T) -> Result<Payload, EncodeError> {
    let data = Bytes::from(rmp_serde::to_vec_named(value)?);
    let mut rd = Reader { b: &data, i: 0 };
    let mut collect = Collect::default();
    let item = rd.item().map_err(|_| EncodeError::TooDeep)?;
    rd.walk(item, &mut collect)
        .map_err(|_| EncodeError::TooDeep)?;
    Ok(payload(&data, 0..data.len(), collect))
}

fn payload(data: &Bytes, range: Range<usize>, collect: Collect) -> Payload {
    let attachments = collect.bins.into_iter().map(|r| data.slice(r)).collect();
    let data = MsgpackData {
        data: data.slice(range),
        plain: collect.plain,
    };
    Payload::from_msgpack(data, attachments)
}

fn invalid(offset: Offset) -> DecodeError {
    DecodeError::InvalidMsgpack { offset }
}

/// A number as the parser's `isInteger` sees it, when non-negative.
fn as_index(item: &Item) -> Option<Option<u64>> {
    match *item {
        Item::Uint(u) => Some(Some(u)),
        Item::Int(i) => Some(u64::try_from(i).ok()),
        Item::Float(f) if f.is_finite() && f.fract() == 0.0 => Some(
            (0.0..18_446_744_073_709_551_616.0)
                .contains(&f)
                .then_some(f as u64),
        ),
        _ => None,
    }
}

/// Decodes one msgpack message into a packet.
///
/// Stricter than the reference in two ways: strings must be UTF-8, and an event's first element
/// must be a name, as in the text format (a string that is not reserved, or a number).
///
/// # Errors
/// [`DecodeError::InvalidMsgpack`] (malformed, truncated, nesting deeper than 127, trailing bytes),
/// [`DecodeError::InvalidPacketType`], [`DecodeError::InvalidNamespace`],
/// [`DecodeError::InvalidAckId`], and the payload errors of the text format.
pub fn decode(message: Bytes) -> Result<Packet, DecodeError> {
    let mut rd = Reader { b: &message, i: 0 };
    let entries = match rd.item().map_err(invalid)? {
        Item::Map(n) => n,
        other => {
            rd.walk(other, &mut Collect::default()).map_err(invalid)?;
            if rd.i != message.len() {
                return Err(invalid(rd.i));
            }
            return Err(DecodeError::InvalidPacketType);
        }
    };
    let mut ty: Option<Item> = None;
    let mut nsp: Option<Item> = None;
    let mut id: Option<Item> = None;
    let mut data: Option<(Item, Range<usize>, Collect)> = None;
    for _ in 0..entries {
        let key = rd.value(&mut Collect::default()).map_err(invalid)?;
        let key: &[u8] = match &key {
            Item::Str(r) => &message[r.clone()],
            _ => b"",
        };
        let start = rd.i;
        let mut collect = Collect::default();
        let value = rd.value(&mut collect).map_err(invalid)?;
        match key {
            b"type" => ty = Some(value),
            b"nsp" => nsp = Some(value),
            b"id" => id = Some(value),
            b"data" => data = Some((value, start..rd.i, collect)),
            _ => {}
        }
    }
    if rd.i != message.len() {
        return Err(invalid(rd.i));
    }

    let ty = match ty.as_ref().and_then(as_index) {
        Some(Some(0)) => PacketType::Connect,
        Some(Some(1)) => PacketType::Disconnect,
        Some(Some(2)) => PacketType::Event,
        Some(Some(3)) => PacketType::Ack,
        Some(Some(4)) => PacketType::ConnectError,
        _ => return Err(DecodeError::InvalidPacketType),
    };
    let nsp = match nsp {
        Some(Item::Str(r)) => {
            Str::from_utf8(message.slice(r)).map_err(|_| DecodeError::InvalidNamespace)?
        }
        _ => return Err(DecodeError::InvalidNamespace),
    };
    let data = data.filter(|(item, _, _)| *item != Item::Undefined);
    let id = match id {
        None | Some(Item::Undefined) => None,
        Some(item) => Some(as_index(&item).flatten().ok_or(DecodeError::InvalidAckId)?),
    };

    let kind = match (ty, data) {
        (PacketType::Connect, None) => PacketKind::Connect(None),
        (PacketType::Connect, Some((Item::Map(_), range, collect))) => {
            PacketKind::Connect(Some(payload(&message, range, collect)))
        }
        (PacketType::Disconnect, None) => PacketKind::Disconnect,
        (PacketType::Disconnect, Some(_)) => return Err(DecodeError::UnexpectedPayload(ty)),
        (PacketType::ConnectError, Some((Item::Map(_) | Item::Str(_), range, collect))) => {
            PacketKind::ConnectError(payload(&message, range, collect))
        }
        (PacketType::Event, Some((Item::Array(n), range, collect))) => {
            let name = event_name(&message, range.start, n)?;
            PacketKind::Event {
                name,
                data: payload(&message, range, collect),
                id,
            }
        }
        (PacketType::Ack, Some((Item::Array(_), range, collect))) => {
            let id = id.ok_or(DecodeError::MissingAckId)?;
            PacketKind::Ack {
                data: payload(&message, range, collect),
                id,
            }
        }
        (_, None) => return Err(DecodeError::MissingPayload(ty)),
        (_, Some(_)) => return Err(DecodeError::InvalidPayload(ty)),
    };
    Ok(Packet { nsp, kind })
}

/// The event name: the first element of the array at `start`, which holds `len` elements.
fn event_name(message: &Bytes, start: usize, len: u32) -> Result<Str, DecodeError> {
    if len == 0 {
        return Err(DecodeError::InvalidEventName);
    }
    let mut rd = Reader {
        b: message,
        i: start,
    };
    // The array was read once already: these reads succeed.
    let _ = rd.item();
    let first = rd.item().map_err(invalid)?;
    let mut buf = itoa::Buffer::new();
    match first {
        Item::Str(r) => {
            let name =
                Str::from_utf8(message.slice(r)).map_err(|_| DecodeError::InvalidEventName)?;
            let s = name.as_str();
            if RESERVED_EVENTS.contains(&s) {
                return Err(DecodeError::ReservedEventName(s.to_owned()));
            }
            Ok(name)
        }
        Item::Uint(u) => Ok(Str::from(buf.format(u))),
        Item::Int(i) => Ok(Str::from(buf.format(i))),
        Item::Float(f) => {
            let mut out = Vec::new();
            write_float(&mut out, f);
            Ok(Str::from(String::from_utf8(out).unwrap_or_default()))
        }
        _ => Err(DecodeError::InvalidEventName),
    }
}

fn write_str_mp(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 0x20 {
        out.push(0xa0 | len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len < 0x1_0000 {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&len32(len));
    }
    out.extend_from_slice(s);
}

fn write_container(out: &mut Vec<u8>, len: usize, fix: u8, m16: u8) {
    if len < 0x10 {
        out.push(fix | len as u8);
    } else if len < 0x1_0000 {
        out.push(m16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m16 + 1);
        out.extend_from_slice(&len32(len));
    }
}

fn write_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else if v < 0x100 {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v < 0x1_0000 {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v < 0x1_0000_0000 {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn write_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        write_uint(out, v as u64);
    } else if v >= -0x20 {
        out.push(v as u8);
    } else if v >= -0x80 {
        out.extend_from_slice(&[0xd0, v as u8]);
    } else if v >= -0x8000 {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= -0x8000_0000 {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// A summary of a value, enough to recognize a placeholder.
enum Seen {
    True,
    Index(u64),
    Other,
}

/// Transcodes one JSON value to msgpack in one pass, keeping key order, with the binary values of
/// `bins` in place of their placeholders (only when there are attachments, as the reference
/// resolves placeholders of binary packets only).
struct Transcode<'a> {
    out: &'a mut Vec<u8>,
    bins: &'a [Bytes],
}

impl<'de> serde::de::DeserializeSeed<'de> for Transcode<'_> {
    type Value = Seen;
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Seen, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Transcode<'_> {
    type Value = Seen;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Seen, E> {
        self.out.push(0xc0);
        Ok(Seen::Other)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Seen, E> {
        self.out.push(if v { 0xc3 } else { 0xc2 });
        Ok(if v { Seen::True } else { Seen::Other })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Seen, E> {
        write_uint(self.out, v);
        Ok(Seen::Index(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Seen, E> {
        write_int(self.out, v);
        Ok(u64::try_from(v).map_or(Seen::Other, Seen::Index))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Seen, E> {
        if v.is_finite()
            && v.fract() == 0.0
            && (-9_223_372_036_854_775_808.0..18_446_744_073_709_551_616.0).contains(&v)
        {
            if v >= 0.0 {
                return self.visit_u64(v as u64);
            }
            return self.visit_i64(v as i64);
        }
        self.out.push(0xcb);
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(Seen::Other)
    }
    fn visit_str<E>(self, v: &str) -> Result<Seen, E> {
        write_str_mp(self.out, v.as_bytes());
        Ok(Seen::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Seen, A::Error> {
        let start = self.out.len();
        let mut n = 0usize;
        while seq
            .next_element_seed(Transcode {
                out: &mut *self.out,
                bins: self.bins,
            })?
            .is_some()
        {
            n += 1;
        }
        insert_header(self.out, start, n, 0x90, 0xdc);
        Ok(Seen::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Seen, A::Error> {
        let start = self.out.len();
        let mut n = 0usize;
        let mut placeholder = false;
        let mut num = None;
        while let Some(key) = map.next_key_seed(Key {
            out: &mut *self.out,
        })? {
            let seen = map.next_value_seed(Transcode {
                out: &mut *self.out,
                bins: self.bins,
            })?;
            match (key, seen) {
                (KeyKind::Placeholder, seen) => placeholder = matches!(seen, Seen::True),
                (KeyKind::Num, Seen::Index(i)) => num = Some(i),
                (KeyKind::Num, _) => num = None,
                (KeyKind::Other, _) => {}
            }
            n += 1;
        }
        if placeholder && !self.bins.is_empty() {
            let bin = num
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| self.bins.get(i));
            self.out.truncate(start);
            match bin {
                Some(bin) => {
                    write_bin_header(self.out, bin.len());
                    self.out.extend_from_slice(bin);
                }
                None => self.out.push(0xc0),
            }
        } else {
            insert_header(self.out, start, n, 0x80, 0xde);
        }
        Ok(Seen::Other)
    }
}

#[derive(Clone, Copy)]
enum KeyKind {
    Placeholder,
    Num,
    Other,
}

/// Writes a map key.
struct Key<'a> {
    out: &'a mut Vec<u8>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Key<'_> {
    type Value = KeyKind;
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<KeyKind, D::Error> {
        de.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for Key<'_> {
    type Value = KeyKind;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, v: &str) -> Result<KeyKind, E> {
        write_str_mp(self.out, v.as_bytes());
        Ok(match v {
            "_placeholder" => KeyKind::Placeholder,
            "num" => KeyKind::Num,
            _ => KeyKind::Other,
        })
    }
}

/// Inserts, at `start`, the header of the array or map whose `len` elements follow it.
fn insert_header(out: &mut Vec<u8>, start: usize, len: usize, fix: u8, m16: u8) {
    let mut header = Vec::with_capacity(5);
    write_container(&mut header, len, fix, m16);
    if header.len() == 1 {
        out.insert(start, header[0]);
    } else {
        out.splice(start..start, header);
    }
}

fn write_payload(out: &mut Vec<u8>, payload: &Payload) {
    if let Some(m) = payload.msgpack_data() {
        out.extend_from_slice(&m.data);
        return;
    }
    let start = out.len();
    let mut de = serde_json::Deserializer::from_str(payload.json().as_str());
    let seed = Transcode {
        out: &mut *out,
        bins: payload.attachments(),
    };
    if serde::de::DeserializeSeed::deserialize(seed, &mut de).is_err() {
        out.truncate(start);
        out.push(0xc0);
    }
}

fn key(out: &mut Vec<u8>, k: &str) {
    write_str_mp(out, k.as_bytes());
}

/// Encodes a packet as one msgpack message, with the reference server's key order:
/// `{type, data, id?, nsp}` for events, `{id, type, data, nsp}` for acks.
pub fn encode(packet: &Packet) -> Bytes {
    let size = packet.payload().map_or(0, |p| {
        p.msgpack_data().map_or(p.json().len(), |m| m.data.len())
            + p.attachments().iter().map(Bytes::len).sum::<usize>()
    });
    let mut out = Vec::with_capacity(size + packet.nsp.len() + 32);
    let nsp = packet.nsp.as_bytes();
    let ty = |out: &mut Vec<u8>, t: u8| {
        key(out, "type");
        out.push(t);
    };
    match &packet.kind {
        PacketKind::Connect(None) => {
            out.push(0x82);
            ty(&mut out, 0);
        }
        PacketKind::Connect(Some(data)) => {
            out.push(0x83);
            ty(&mut out, 0);
            key(&mut out, "data");
            write_payload(&mut out, data);
        }
        PacketKind::Disconnect => {
            out.push(0x82);
            ty(&mut out, 1);
        }
        PacketKind::Event { data, id, .. } => {
            out.push(if id.is_some() { 0x84 } else { 0x83 });
            ty(&mut out, 2);
            key(&mut out, "data");
            write_payload(&mut out, data);
            if let Some(id) = id {
                key(&mut out, "id");
                write_uint(&mut out, *id);
            }
        }
        PacketKind::Ack { data, id } => {
            out.push(0x84);
            key(&mut out, "id");
            write_uint(&mut out, *id);
            ty(&mut out, 3);
            key(&mut out, "data");
            write_payload(&mut out, data);
        }
        PacketKind::ConnectError(data) => {
            out.push(0x83);
            ty(&mut out, 4);
            key(&mut out, "data");
            write_payload(&mut out, data);
        }
    }
    key(&mut out, "nsp");
    write_str_mp(&mut out, nsp);
    Bytes::from(out)
}
