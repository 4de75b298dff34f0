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
use serde::de::DeserializeOwned;

use crate::de::Skip;
use crate::rules::RESERVED_EVENTS;
use crate::scan::MAX_DEPTH;
use crate::ser::{write_placeholder_bytes, write_str_bytes};
use crate::{DataError, DecodeError, EncodeError, Packet, PacketKind, PacketType, Payload, Str};

/// The msgpack data of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MsgpackData {
    /// One msgpack value.
    pub(crate) data: Bytes,
    /// False when the data holds notepack extensions (`undefined`, ArrayBuffer) that must be
    /// rewritten as nil and bin before `rmp-serde` reads it.
    pub(crate) plain: bool,
}

impl MsgpackData {
    pub(crate) fn deserialize<T: DeserializeOwned>(
        &self,
        skip: usize,
        args: bool,
    ) -> Result<T, DataError> {
        let rewritten;
        let bytes: &[u8] = if self.plain {
            &self.data
        } else {
            rewritten = normalize(&self.data);
            &rewritten
        };
        let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
        if args {
            Ok(T::deserialize(Skip {
                inner: &mut de,
                skip,
            })?)
        } else {
            Ok(T::deserialize(&mut de)?)
        }
    }
}

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

/// One msgpack item: a scalar, or the header of an array or a map.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Nil,
    /// notepack's `undefined`.
    Undefined,
    Bool(bool),
    Uint(u64),
    Int(i64),
    Float(f64),
    Str(Range<usize>),
    Bin(Range<usize>),
    /// notepack's ArrayBuffer: ext 8/16/32 of type 0.
    ArrayBuffer(Range<usize>),
    Ext,
    Array(u32),
    Map(u32),
}

/// The bin values (in document order) and whether notepack extensions occur.
struct Collect {
    bins: Vec<Range<usize>>,
    plain: bool,
}

impl Default for Collect {
    fn default() -> Self {
        Collect {
            bins: Vec::new(),
            plain: true,
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

type Offset = usize;

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<Range<usize>, Offset> {
        let start = self.i;
        let end = start
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(start)?;
        self.i = end;
        Ok(start..end)
    }

    fn u8(&mut self) -> Result<u8, Offset> {
        let r = self.take(1)?;
        Ok(self.b[r.start])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], Offset> {
        let r = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(&self.b[r]);
        Ok(out)
    }

    fn len8(&mut self) -> Result<usize, Offset> {
        Ok(usize::from(self.u8()?))
    }

    fn len16(&mut self) -> Result<usize, Offset> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }

    fn len32(&mut self) -> Result<usize, Offset> {
        usize::try_from(u32::from_be_bytes(self.be()?)).map_err(|_| self.i)
    }

    fn str(&mut self, len: usize) -> Result<Item, Offset> {
        let start = self.i;
        let r = self.take(len)?;
        std::str::from_utf8(&self.b[r.clone()]).map_err(|_| start)?;
        Ok(Item::Str(r))
    }

    fn ext(&mut self, len: usize, fixed: bool) -> Result<Item, Offset> {
        let ty = self.u8()?;
        let r = self.take(len)?;
        Ok(match (ty, fixed, len) {
            (0, true, 1) => Item::Undefined,
            (0, false, _) => Item::ArrayBuffer(r),
            _ => Item::Ext,
        })
    }

    /// Reads one item; strings, binaries and extensions with their data.
    fn item(&mut self) -> Result<Item, Offset> {
        let at = self.i;
        let m = self.u8()?;
        Ok(match m {
            0x00..=0x7f => Item::Uint(u64::from(m)),
            0x80..=0x8f => Item::Map(u32::from(m & 0x0f)),
            0x90..=0x9f => Item::Array(u32::from(m & 0x0f)),
            0xa0..=0xbf => return self.str(usize::from(m & 0x1f)),
            0xc0 => Item::Nil,
            0xc2 => Item::Bool(false),
            0xc3 => Item::Bool(true),
            0xc4 => Item::Bin({
                let n = self.len8()?;
                self.take(n)?
            }),
            0xc5 => Item::Bin({
                let n = self.len16()?;
                self.take(n)?
            }),
            0xc6 => Item::Bin({
                let n = self.len32()?;
                self.take(n)?
            }),
            0xc7 => {
                let n = self.len8()?;
                return self.ext(n, false);
            }
            0xc8 => {
                let n = self.len16()?;
                return self.ext(n, false);
            }
            0xc9 => {
                let n = self.len32()?;
                return self.ext(n, false);
            }
            0xca => Item::Float(f64::from(f32::from_be_bytes(self.be()?))),
            0xcb => Item::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Item::Uint(u64::from(self.u8()?)),
            0xcd => Item::Uint(u64::from(u16::from_be_bytes(self.be()?))),
            0xce => Item::Uint(u64::from(u32::from_be_bytes(self.be()?))),
            0xcf => Item::Uint(u64::from_be_bytes(self.be()?)),
            0xd0 => Item::Int(i64::from(i8::from_be_bytes(self.be()?))),
            0xd1 => Item::Int(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => Item::Int(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => Item::Int(i64::from_be_bytes(self.be()?)),
            0xd4 => return self.ext(1, true),
            0xd5 => return self.ext(2, true),
            0xd6 => return self.ext(4, true),
            0xd7 => return self.ext(8, true),
            0xd8 => return self.ext(16, true),
            0xd9 => {
                let n = self.len8()?;
                return self.str(n);
            }
            0xda => {
                let n = self.len16()?;
                return self.str(n);
            }
            0xdb => {
                let n = self.len32()?;
                return self.str(n);
            }
            0xdc => Item::Array(u32::from(u16::from_be_bytes(self.be()?))),
            0xdd => Item::Array(u32::from_be_bytes(self.be()?)),
            0xde => Item::Map(u32::from(u16::from_be_bytes(self.be()?))),
            0xdf => Item::Map(u32::from_be_bytes(self.be()?)),
            0xe0..=0xff => Item::Int(i64::from(m as i8)),
            0xc1 => return Err(at),
        })
    }

    /// Walks the children of `item` (nothing for a scalar), without recursion, collecting binary
    /// values and extensions.
    fn walk(&mut self, item: Item, collect: &mut Collect) -> Result<(), Offset> {
        let mut remaining = [0u64; MAX_DEPTH];
        let mut depth = 0usize;
        let mut item = item;
        loop {
            let children = match item {
                Item::Array(n) => u64::from(n),
                Item::Map(n) => 2 * u64::from(n),
                Item::Bin(r) => {
                    collect.bins.push(r);
                    0
                }
                Item::ArrayBuffer(r) => {
                    collect.plain = false;
                    collect.bins.push(r);
                    0
                }
                Item::Undefined => {
                    collect.plain = false;
                    0
                }
                _ => 0,
            };
            if children > 0 {
                // Every child takes at least one byte.
                if children > (self.b.len() - self.i) as u64 || depth == MAX_DEPTH {
                    return Err(self.i);
                }
                remaining[depth] = children;
                depth += 1;
            } else {
                // One complete value: count it against the open containers.
                loop {
                    if depth == 0 {
                        return Ok(());
                    }
                    remaining[depth - 1] -= 1;
                    if remaining[depth - 1] > 0 {
                        break;
                    }
                    depth -= 1;
                }
            }
            item = self.item()?;
        }
    }

    /// Reads and walks one complete value.
    fn value(&mut self, collect: &mut Collect) -> Result<Item, Offset> {
        let item = self.item()?;
        self.walk(item.clone(), collect)?;
        Ok(item)
    }
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

/// Rewrites notepack extensions for `rmp-serde`: `undefined` as nil, ArrayBuffer as bin.
fn normalize(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rd = Reader { b: data, i: 0 };
    while rd.i < data.len() {
        let start = rd.i;
        match rd.item() {
            Ok(Item::Undefined) => out.push(0xc0),
            Ok(Item::ArrayBuffer(r)) => {
                write_bin_header(&mut out, r.len());
                out.extend_from_slice(&data[r]);
            }
            Ok(_) => out.extend_from_slice(&data[start..rd.i]),
            Err(_) => {
                out.extend_from_slice(&data[start..]);
                break;
            }
        }
    }
    out
}

fn len32(len: usize) -> [u8; 4] {
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

fn write_bin_header(out: &mut Vec<u8>, len: usize) {
    if len < 0x100 {
        out.extend_from_slice(&[0xc4, len as u8]);
    } else if len < 0x1_0000 {
        out.push(0xc5);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&len32(len));
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

fn write_float(out: &mut Vec<u8>, f: f64) {
    let mut ser = serde_json::Serializer::new(out);
    let _ = serde::Serializer::serialize_f64(&mut ser, f);
}

/// Writes msgpack data as JSON text, binary values as numbered placeholders.
pub(crate) fn write_json(data: &[u8], out: &mut Vec<u8>) {
    let mut rd = Reader { b: data, i: 0 };
    let mut num = 0usize;
    if json_value(&mut rd, out, &mut num, 0).is_err() {
        out.extend_from_slice(b"null");
    }
}

fn json_value(
    rd: &mut Reader<'_>,
    out: &mut Vec<u8>,
    num: &mut usize,
    depth: usize,
) -> Result<(), Offset> {
    if depth > MAX_DEPTH {
        return Err(rd.i);
    }
    let mut buf = itoa::Buffer::new();
    match rd.item()? {
        Item::Nil | Item::Undefined | Item::Ext => out.extend_from_slice(b"null"),
        Item::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Item::Uint(u) => out.extend_from_slice(buf.format(u).as_bytes()),
        Item::Int(i) => out.extend_from_slice(buf.format(i).as_bytes()),
        Item::Float(f) => write_float(out, f),
        Item::Str(r) => write_str_bytes(out, std::str::from_utf8(&rd.b[r]).unwrap_or_default()),
        Item::Bin(_) | Item::ArrayBuffer(_) => {
            write_placeholder_bytes(out, *num);
            *num += 1;
        }
        Item::Array(n) => {
            out.push(b'[');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                json_value(rd, out, num, depth + 1)?;
            }
            out.push(b']');
        }
        Item::Map(n) => {
            out.push(b'{');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                json_key(rd, out, num, depth)?;
                out.push(b':');
                json_value(rd, out, num, depth + 1)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// A map key as a JavaScript object would hold it: its string form.
fn json_key(
    rd: &mut Reader<'_>,
    out: &mut Vec<u8>,
    num: &mut usize,
    depth: usize,
) -> Result<(), Offset> {
    let mut text = String::new();
    key_text(rd, &mut text, num, depth + 1)?;
    write_str_bytes(out, &text);
    Ok(())
}

/// Appends JavaScript's string form of the value at `rd` (`String(value)`): arrays joined by
/// commas, objects as `[object Object]`. Binary values count as attachments but add no text.
fn key_text(
    rd: &mut Reader<'_>,
    out: &mut String,
    num: &mut usize,
    depth: usize,
) -> Result<(), Offset> {
    if depth > MAX_DEPTH {
        return Err(rd.i);
    }
    let mut buf = itoa::Buffer::new();
    match rd.item()? {
        Item::Str(r) => out.push_str(std::str::from_utf8(&rd.b[r]).unwrap_or_default()),
        Item::Uint(u) => out.push_str(buf.format(u)),
        Item::Int(i) => out.push_str(buf.format(i)),
        Item::Float(f) => {
            let mut bytes = Vec::new();
            write_float(&mut bytes, f);
            out.push_str(std::str::from_utf8(&bytes).unwrap_or_default());
        }
        Item::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Item::Nil => out.push_str("null"),
        Item::Undefined => out.push_str("undefined"),
        Item::Ext => {}
        Item::Bin(_) | Item::ArrayBuffer(_) => *num += 1,
        Item::Array(n) => {
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                // `null` and `undefined` elements join as empty strings.
                let start = rd.i;
                match rd.item()? {
                    Item::Nil | Item::Undefined => {}
                    _ => {
                        rd.i = start;
                        key_text(rd, out, num, depth + 1)?;
                    }
                }
            }
        }
        Item::Map(n) => {
            let mut ignored = String::new();
            for _ in 0..2 * u64::from(n) {
                ignored.clear();
                key_text(rd, &mut ignored, num, depth + 1)?;
            }
            out.push_str("[object Object]");
        }
    }
    Ok(())
}
