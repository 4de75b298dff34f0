//! A compact JSON serializer that takes binary values out.
//!
//! Every `serialize_bytes` call (from `bytes::Bytes`, `serde_bytes::ByteBuf`, ...) writes a
//! placeholder `{"_placeholder":true,"num":N}` and pushes the bytes to the attachment list, in
//! depth-first order, in the same single pass that writes the JSON. Scalars are written by
//! serde_json, so the text is exactly what `serde_json::to_string` would give.
//!
//! [`ArgsSer`] writes the arguments of an event or an ack into an array that is already open:
//! a sequence (tuple, `Vec`, array) contributes its elements, `()` contributes nothing, and any
//! other value is one argument.

use std::cell::Cell;
use std::fmt;

use bytes::Bytes;
use serde::ser::{self, Impossible, Serialize};

use crate::EncodeError;
use crate::scan::{MAX_DEPTH, is_special, special_mask};

pub(crate) type Result<T, E = SerError> = std::result::Result<T, E>;

/// The error of the serializers here: an [`EncodeError`] behind one pointer, so that every
/// result they pass up stays one word wide.
pub(crate) struct SerError(Box<EncodeError>);

impl SerError {
    #[cold]
    fn new(e: EncodeError) -> SerError {
        SerError(Box::new(e))
    }
}

impl ser::Error for SerError {
    #[cold]
    fn custom<T: fmt::Display>(msg: T) -> Self {
        SerError::new(EncodeError::Custom(msg.to_string()))
    }
}

impl fmt::Debug for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SerError {}

/// The largest scratch buffer kept between serializations.
const SCRATCH_KEEP: usize = 64 * 1024;

thread_local! {
    /// A buffer reused by serializations on this thread, so that the JSON is written without
    /// growing a fresh buffer and then copied once into an exactly sized one. A serialization
    /// takes it out and puts it back; one nested in it (from a `Serialize` implementation)
    /// finds it empty and grows its own.
    static SCRATCH: Cell<String> = const { Cell::new(String::new()) };
}

/// Runs `write` on an empty buffer and returns what it wrote, in an exactly sized `String`
/// (which becomes a `Str` without another allocation).
pub(crate) fn serialize_with(
    write: impl FnOnce(&mut String) -> Result<()>,
) -> Result<String, EncodeError> {
    serialize_then(write, |json, ()| String::from(json))
}

/// Runs `write` on an empty buffer and returns what `finish` makes of what it wrote and of
/// what it returned.
pub(crate) fn serialize_then<W, R>(
    write: impl FnOnce(&mut String) -> Result<W>,
    finish: impl FnOnce(&str, W) -> R,
) -> Result<R, EncodeError> {
    // During thread teardown the scratch buffer is gone: a fresh one serves.
    let mut buf = SCRATCH.try_with(Cell::take).unwrap_or_default();
    buf.clear();
    let out = match write(&mut buf) {
        Ok(w) => Ok(finish(buf.as_str(), w)),
        Err(SerError(e)) => Err(*e),
    };
    if buf.capacity() <= SCRATCH_KEEP {
        let _ = SCRATCH.try_with(|cell| cell.set(buf));
    }
    out
}

/// The index of the first byte at or after `i` that a JSON string must escape (a quote, a
/// backslash or a control character), or the length.
#[inline(always)]
fn next_escape(b: &[u8], mut i: usize) -> usize {
    loop {
        match b.get(i..i + 8).map(<[u8; 8]>::try_from) {
            Some(Ok(chunk)) => {
                let mask = special_mask(u64::from_le_bytes(chunk));
                if mask != 0 {
                    return i + (mask.trailing_zeros() / 8) as usize;
                }
                i += 8;
            }
            _ => {
                while b.get(i).is_some_and(|&c| !is_special(c)) {
                    i += 1;
                }
                return i;
            }
        }
    }
}

/// Whether a JSON string needs no escape in `b`: whole words at a time, the last one
/// overlapping the one before it, and byte by byte below 8 bytes.
#[inline(always)]
fn is_clean(b: &[u8]) -> bool {
    let Some(last) = b.last_chunk::<8>() else {
        return b.iter().all(|&c| !is_special(c));
    };
    // Without an escaped byte no borrow crosses bytes, so the masks are all zero.
    let mut acc = special_mask(u64::from_le_bytes(*last));
    let mut rest = b;
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        acc |= special_mask(u64::from_le_bytes(*word));
        rest = tail;
    }
    acc == 0
}

/// Writes `s` as a JSON string, escaped as serde_json and `JSON.stringify` do.
#[inline]
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    write_str_rest(out, s);
}

/// Writes `s` as a JSON string whose opening quote is already written.
#[inline]
fn write_str_rest(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = s.as_bytes();
    if is_clean(b) {
        // Nothing to escape: the common case.
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut i = next_escape(b, 0);
    let mut start = 0;
    loop {
        // `start` and `i` are next to ASCII bytes, so on character boundaries.
        out.push_str(s.get(start..i).unwrap_or_default());
        let Some(&c) = b.get(i) else {
            break;
        };
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(c >> 4)]));
                out.push(char::from(HEX[usize::from(c & 0xf)]));
            }
        }
        start = i + 1;
        i = next_escape(b, start);
    }
    out.push('"');
}

/// Writes `s` as a JSON string into bytes.
#[cfg(feature = "msgpack")]
#[inline]
pub(crate) fn write_str_bytes(out: &mut Vec<u8>, s: &str) {
    let mut ser = serde_json::Serializer::new(out);
    // Writing to a `Vec` cannot fail.
    let _ = ser::Serializer::serialize_str(&mut ser, s);
}

/// Writes a float as serde_json does (`null` when not finite, as `JSON.stringify`).
#[inline]
fn write_float(
    out: &mut String,
    f: impl FnOnce(&mut serde_json::Serializer<&mut &mut [u8]>) -> serde_json::Result<()>,
) {
    let mut buf = [0u8; 40];
    let mut w = &mut buf[..];
    let mut ser = serde_json::Serializer::new(&mut w);
    if f(&mut ser).is_ok() {
        let len = 40 - w.len();
        // The text is ASCII: each byte is its own character.
        out.extend(buf[..len].iter().map(|&b| char::from(b)));
    } else {
        out.push_str("null");
    }
}

#[inline]
fn write_f64(out: &mut String, v: f64) {
    write_float(out, |s| ser::Serializer::serialize_f64(s, v));
}

#[inline]
fn write_f32(out: &mut String, v: f32) {
    write_float(out, |s| ser::Serializer::serialize_f32(s, v));
}

#[inline]
fn write_int(out: &mut String, v: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Writes a placeholder for attachment `num`.
#[inline]
pub(crate) fn write_placeholder(out: &mut String, num: usize) {
    out.push_str("{\"_placeholder\":true,\"num\":");
    write_int(out, num);
    out.push('}');
}

/// Writes a placeholder for attachment `num` into bytes.
#[cfg(feature = "msgpack")]
#[inline]
pub(crate) fn write_placeholder_bytes(out: &mut Vec<u8>, num: usize) {
    out.extend_from_slice(b"{\"_placeholder\":true,\"num\":");
    out.extend_from_slice(itoa::Buffer::new().format(num).as_bytes());
    out.push(b'}');
}

/// Serializes a value as JSON into `out`, taking binary values out into `bins`.
pub(crate) struct JsonSer<'a> {
    pub(crate) out: &'a mut String,
    pub(crate) bins: &'a mut Vec<Bytes>,
    /// Containers still allowed.
    pub(crate) depth: usize,
}

impl<'a> JsonSer<'a> {
    pub(crate) fn new(out: &'a mut String, bins: &'a mut Vec<Bytes>) -> Self {
        JsonSer {
            out,
            bins,
            depth: MAX_DEPTH,
        }
    }

    #[inline]
    fn open(self, open: &str, close: Close) -> Result<Compound<'a>> {
        if self.depth == 0 {
            return Err(SerError::new(EncodeError::TooDeep));
        }
        self.out.push_str(open);
        Ok(Compound {
            out: self.out,
            bins: self.bins,
            depth: self.depth - 1,
            first: true,
            close,
        })
    }

    /// `{"variant":` then a container.
    fn open_variant(self, variant: &str, open: char, close: Close) -> Result<Compound<'a>> {
        if self.depth < 2 {
            return Err(SerError::new(EncodeError::TooDeep));
        }
        self.out.push('{');
        write_str(self.out, variant);
        self.out.push(':');
        self.out.push(open);
        Ok(Compound {
            out: self.out,
            bins: self.bins,
            depth: self.depth - 2,
            first: true,
            close,
        })
    }
}

/// A sequence, map or struct being written.
pub(crate) struct Compound<'a> {
    out: &'a mut String,
    bins: &'a mut Vec<Bytes>,
    depth: usize,
    first: bool,
    /// What `end` writes.
    close: Close,
}

/// What closes a container: its own bracket, then those of the containers around it that
/// close with it.
#[derive(Clone, Copy)]
enum Close {
    /// `]`
    Array,
    /// `}`
    Object,
    /// `]}`
    ArrayVariant,
    /// `}}`
    ObjectVariant,
    /// `}]`
    ObjectArg,
    /// `]}]`
    ArrayVariantArg,
    /// `}}]`
    ObjectVariantArg,
}

impl Close {
    #[inline]
    fn as_str(self) -> &'static str {
        match self {
            Close::Array => "]",
            Close::Object => "}",
            Close::ArrayVariant => "]}",
            Close::ObjectVariant => "}}",
            Close::ObjectArg => "}]",
            Close::ArrayVariantArg => "]}]",
            Close::ObjectVariantArg => "}}]",
        }
    }
}

impl Compound<'_> {
    #[inline]
    fn sep(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.out.push(',');
        }
    }

    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.sep();
        value.serialize(JsonSer {
            out: self.out,
            bins: self.bins,
            depth: self.depth,
        })
    }

    #[inline]
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        if self.first {
            self.first = false;
            self.out.push('"');
        } else {
            self.out.push_str(",\"");
        }
        if is_clean(key.as_bytes()) {
            self.out.push_str(key);
            self.out.push_str("\":");
        } else {
            write_str_rest(self.out, key);
            self.out.push(':');
        }
        value.serialize(JsonSer {
            out: self.out,
            bins: self.bins,
            depth: self.depth,
        })
    }

    #[inline]
    fn close(self) -> Result<()> {
        match self.close {
            // One byte: a store, not a copy of a string whose length is unknown here.
            Close::Array => self.out.push(']'),
            Close::Object => self.out.push('}'),
            close => self.out.push_str(close.as_str()),
        }
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.close()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.close()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.close()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.sep();
        key.serialize(KeySer { out: self.out })?;
        self.out.push(':');
        Ok(())
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(JsonSer {
            out: self.out,
            bins: self.bins,
            depth: self.depth,
        })
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.close()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.close()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = SerError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }
    #[inline]
    fn end(self) -> Result<()> {
        self.close()
    }
}

impl<'a> ser::Serializer for JsonSer<'a> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<()> {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<()> {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<()> {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<()> {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_i128(self, v: i128) -> Result<()> {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<()> {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<()> {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<()> {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<()> {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u128(self, v: u128) -> Result<()> {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<()> {
        write_f32(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<()> {
        write_f64(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result<()> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        write_str(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        write_placeholder(self.out, self.bins.len());
        self.bins.push(Bytes::copy_from_slice(v));
        Ok(())
    }
    #[inline]
    fn serialize_none(self) -> Result<()> {
        self.serialize_unit()
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> Result<()> {
        self.out.push_str("null");
        Ok(())
    }
    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.serialize_unit()
    }
    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.serialize_str(variant)
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        if self.depth == 0 {
            return Err(SerError::new(EncodeError::TooDeep));
        }
        self.out.push('{');
        write_str(self.out, variant);
        self.out.push(':');
        value.serialize(JsonSer {
            out: &mut *self.out,
            bins: self.bins,
            depth: self.depth - 1,
        })?;
        self.out.push('}');
        Ok(())
    }
    #[inline]
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>> {
        self.open("[", Close::Array)
    }
    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a>> {
        self.open("[", Close::Array)
    }
    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a>> {
        self.open("[", Close::Array)
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>> {
        self.open_variant(variant, '[', Close::ArrayVariant)
    }
    #[inline]
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>> {
        self.open("{", Close::Object)
    }
    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a>> {
        self.open("{", Close::Object)
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>> {
        self.open_variant(variant, '{', Close::ObjectVariant)
    }
}

/// Writes a map key: strings as they are, characters, booleans and integers quoted.
struct KeySer<'a> {
    out: &'a mut String,
}

impl KeySer<'_> {
    #[inline]
    fn quoted_int(self, v: impl itoa::Integer) -> Result<()> {
        self.out.push('"');
        write_int(self.out, v);
        self.out.push('"');
        Ok(())
    }
}

impl ser::Serializer for KeySer<'_> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Impossible<(), SerError>;
    type SerializeTuple = Impossible<(), SerError>;
    type SerializeTupleStruct = Impossible<(), SerError>;
    type SerializeTupleVariant = Impossible<(), SerError>;
    type SerializeMap = Impossible<(), SerError>;
    type SerializeStruct = Impossible<(), SerError>;
    type SerializeStructVariant = Impossible<(), SerError>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push_str(if v { "\"true\"" } else { "\"false\"" });
        Ok(())
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.quoted_int(v)
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.quoted_int(v)
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.quoted_int(v)
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.quoted_int(v)
    }
    #[inline]
    fn serialize_i128(self, v: i128) -> Result<()> {
        self.quoted_int(v)
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.quoted_int(v)
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.quoted_int(v)
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.quoted_int(v)
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.quoted_int(v)
    }
    #[inline]
    fn serialize_u128(self, v: u128) -> Result<()> {
        self.quoted_int(v)
    }
    #[inline]
    fn serialize_f32(self, _v: f32) -> Result<()> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_f64(self, _v: f64) -> Result<()> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result<()> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        write_str(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_bytes(self, _v: &[u8]) -> Result<()> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_none(self) -> Result<()> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<()> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_unit(self) -> Result<()> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.serialize_str(variant)
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<()> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(SerError::new(EncodeError::KeyMustBeAString))
    }
}

/// Writes event or ack arguments into an array whose `[` (and event name) are already written,
/// and closes it.
pub(crate) struct ArgsSer<'a> {
    pub(crate) out: &'a mut String,
    pub(crate) bins: &'a mut Vec<Bytes>,
    /// Whether the array already holds an element (the event name).
    pub(crate) has_prev: bool,
}

impl<'a> ArgsSer<'a> {
    /// The serializer for a single argument, after its separator.
    #[inline]
    fn single(self) -> JsonSer<'a> {
        if self.has_prev {
            self.out.push(',');
        }
        JsonSer {
            out: self.out,
            bins: self.bins,
            depth: MAX_DEPTH - 1,
        }
    }

    #[inline]
    fn close(out: &mut String) -> Result<()> {
        out.push(']');
        Ok(())
    }

    /// The elements of a sequence become the arguments.
    #[inline]
    fn spread(self) -> Compound<'a> {
        Compound {
            out: self.out,
            bins: self.bins,
            depth: MAX_DEPTH - 1,
            first: !self.has_prev,
            close: Close::Array,
        }
    }

    /// A container that is one argument: closes it, then the arguments' array.
    fn one(self, open: &str, close: Close) -> Result<Compound<'a>> {
        let ser = self.single();
        ser.out.push_str(open);
        Ok(Compound {
            out: ser.out,
            bins: ser.bins,
            depth: ser.depth - 1,
            first: true,
            close,
        })
    }
}

macro_rules! one_scalar {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            #[inline]
            fn $method(self, v: $ty) -> Result<()> {
                ser_then_close(self.single(), |s| ser::Serializer::$method(s, v))
            }
        )*
    };
}

/// Runs `f` on the single-argument serializer, then closes the arguments' array.
#[inline]
fn ser_then_close(ser: JsonSer<'_>, f: impl FnOnce(JsonSer<'_>) -> Result<()>) -> Result<()> {
    let JsonSer { out, bins, depth } = ser;
    f(JsonSer {
        out: &mut *out,
        bins,
        depth,
    })?;
    ArgsSer::close(out)
}

impl<'a> ser::Serializer for ArgsSer<'a> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    one_scalar!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
    );

    #[inline]
    fn serialize_none(self) -> Result<()> {
        ser_then_close(self.single(), |s| ser::Serializer::serialize_none(s))
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        ser_then_close(self.single(), |s| value.serialize(s))
    }
    /// `()`: no arguments.
    #[inline]
    fn serialize_unit(self) -> Result<()> {
        ArgsSer::close(self.out)
    }
    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        ser_then_close(self.single(), |s| ser::Serializer::serialize_unit(s))
    }
    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<()> {
        ser_then_close(self.single(), |s| {
            ser::Serializer::serialize_str(s, variant)
        })
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        ser_then_close(self.single(), |s| {
            ser::Serializer::serialize_newtype_variant(s, name, index, variant, value)
        })
    }
    #[inline]
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>> {
        Ok(self.spread())
    }
    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a>> {
        Ok(self.spread())
    }
    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a>> {
        Ok(self.spread())
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>> {
        let ser = self.single();
        ser.out.push('{');
        write_str(ser.out, variant);
        ser.out.push_str(":[");
        Ok(Compound {
            out: ser.out,
            bins: ser.bins,
            depth: ser.depth - 2,
            first: true,
            close: Close::ArrayVariantArg,
        })
    }
    #[inline]
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>> {
        self.one("{", Close::ObjectArg)
    }
    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a>> {
        self.one("{", Close::ObjectArg)
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>> {
        let ser = self.single();
        ser.out.push('{');
        write_str(ser.out, variant);
        ser.out.push_str(":{");
        Ok(Compound {
            out: ser.out,
            bins: ser.bins,
            depth: ser.depth - 2,
            first: true,
            close: Close::ObjectVariantArg,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::write_str;

    /// Every length around the word size, with each escaped byte at each position.
    #[test]
    fn write_str_escapes_as_serde_json() {
        for len in 0..26 {
            for special in ['"', '\\', '\n', '\u{1f}', 'é'] {
                for at in 0..=len {
                    let mut s: String = "abcdefghijklmnopqrstuvwxyz".chars().take(len).collect();
                    if at < len {
                        s.replace_range(at..=at, special.encode_utf8(&mut [0; 4]));
                    }
                    let mut out = String::new();
                    write_str(&mut out, &s);
                    assert_eq!(out, serde_json::to_string(&s).expect("a string"), "{s:?}");
                }
            }
        }
    }
}
