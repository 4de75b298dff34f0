//! msgpack values as `socket.io-msgpack-parser` writes them, below the
//! packet format: a reader of items (notepack's extensions included), the
//! msgpack data a payload keeps, and its conversion to JSON text.

use std::ops::Range;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::de::Skip;
use crate::error::DataError;
use crate::scan::MAX_DEPTH;
use crate::ser::{write_placeholder_bytes, write_str_bytes};

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

/// One msgpack item: a scalar, or the header of an array or a map.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
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
pub(crate) struct Collect {
    pub(crate) bins: Vec<Range<usize>>,
    pub(crate) plain: bool,
}

impl Default for Collect {
    fn default() -> Self {
        Collect {
            bins: Vec::new(),
            plain: true,
        }
    }
}

pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) i: usize,
}

pub(crate) type Offset = usize;

impl Reader<'_> {
    pub(crate) fn take(&mut self, n: usize) -> Result<Range<usize>, Offset> {
        let start = self.i;
        let end = start
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(start)?;
        self.i = end;
        Ok(start..end)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Offset> {
        let r = self.take(1)?;
        Ok(self.b[r.start])
    }

    pub(crate) fn be<const N: usize>(&mut self) -> Result<[u8; N], Offset> {
        let r = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(&self.b[r]);
        Ok(out)
    }

    pub(crate) fn len8(&mut self) -> Result<usize, Offset> {
        Ok(usize::from(self.u8()?))
    }

    pub(crate) fn len16(&mut self) -> Result<usize, Offset> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }

    pub(crate) fn len32(&mut self) -> Result<usize, Offset> {
        usize::try_from(u32::from_be_bytes(self.be()?)).map_err(|_| self.i)
    }

    pub(crate) fn str(&mut self, len: usize) -> Result<Item, Offset> {
        let start = self.i;
        let r = self.take(len)?;
        std::str::from_utf8(&self.b[r.clone()]).map_err(|_| start)?;
        Ok(Item::Str(r))
    }

    pub(crate) fn ext(&mut self, len: usize, fixed: bool) -> Result<Item, Offset> {
        let ty = self.u8()?;
        let r = self.take(len)?;
        Ok(match (ty, fixed, len) {
            (0, true, 1) => Item::Undefined,
            (0, false, _) => Item::ArrayBuffer(r),
            _ => Item::Ext,
        })
    }

    /// Reads one item; strings, binaries and extensions with their data.
    pub(crate) fn item(&mut self) -> Result<Item, Offset> {
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
    pub(crate) fn walk(&mut self, item: Item, collect: &mut Collect) -> Result<(), Offset> {
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
    pub(crate) fn value(&mut self, collect: &mut Collect) -> Result<Item, Offset> {
        let item = self.item()?;
        self.walk(item.clone(), collect)?;
        Ok(item)
    }
}

/// Rewrites notepack extensions for `rmp-serde`: `undefined` as nil, ArrayBuffer as bin.
pub(crate) fn normalize(data: &[u8]) -> Vec<u8> {
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

pub(crate) fn len32(len: usize) -> [u8; 4] {
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

pub(crate) fn write_bin_header(out: &mut Vec<u8>, len: usize) {
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

pub(crate) fn write_float(out: &mut Vec<u8>, f: f64) {
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

pub(crate) fn json_value(
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
pub(crate) fn json_key(
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
pub(crate) fn key_text(
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
