//! [`Payload`]: the data of a packet.

use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::de::{PlaceholderDe, Skip};
use crate::scan::{self, ScanError, scan_error};
use crate::ser::{JsonSer, serialize_with};
use crate::{DataError, DecodeError, EncodeError, Str};

/// The arguments or data of a packet: JSON text, a zero-copy slice of the message it was decoded
/// from, plus the binary attachments that its placeholders designate.
///
/// Binary values travel out of band: the JSON holds a placeholder `{"_placeholder":true,"num":N}`
/// where the value was, and attachment `N` holds the bytes.
/// [`Payload::from_value`] takes binary values out in one serializer pass, and
/// [`Payload::deserialize`] puts them back.
///
/// With the `msgpack` feature, a payload decoded by `msgpack::decode` holds msgpack data
/// instead of JSON; the methods work the same on it, except [`Payload::json`] (see there).
///
/// `Payload::default()` is empty: no JSON at all, which no packet carries on the wire.
#[derive(Clone, Default)]
pub struct Payload {
    json: Str,
    /// Attachments and msgpack data, boxed so that text packets stay small to move.
    extra: Option<Box<Extra>>,
}

/// The rarer parts of a payload.
#[derive(Clone, Default)]
struct Extra {
    attachments: Vec<Bytes>,
    #[cfg(feature = "msgpack")]
    msgpack: Option<crate::mpvalue::MsgpackData>,
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.json == other.json
            && self.attachments() == other.attachments()
            && self.msgpack_eq(other)
    }
}

impl Eq for Payload {}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Payload");
        #[cfg(feature = "msgpack")]
        if let Some(m) = self.msgpack_data() {
            d.field("msgpack", &m.data.len());
        }
        d.field("json", &self.json)
            .field(
                "attachments",
                &self
                    .attachments()
                    .iter()
                    .map(Bytes::len)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Payload {
    /// Serializes `value` as JSON in one pass, taking every binary value out as an attachment.
    ///
    /// Every `serialize_bytes` call (`bytes::Bytes`, `serde_bytes::ByteBuf`, `serde_bytes::Bytes`,
    /// `&[u8]` with `#[serde(with = "serde_bytes")]`) writes a placeholder `{"_placeholder":true,"num":N}`,
    /// numbered depth-first, and its bytes become attachment `N`.
    /// A `Vec<u8>` without `serde_bytes` is a JSON array of numbers, as with serde_json.
    ///
    /// # Errors
    /// [`EncodeError`] when the value's `Serialize` fails, a map key is not a string, a character,
    /// a boolean or an integer, or the value nests deeper than 127 levels.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Payload, EncodeError> {
        let mut bins = Vec::new();
        let out = serialize_with(|out| value.serialize(JsonSer::new(out, &mut bins)))?;
        Ok(Payload::from_parts(Str::from(out), bins))
    }

    /// A payload from JSON text and its attachments, checked: the text must be one JSON value,
    /// and with attachments, every placeholder must designate one of them.
    ///
    /// Surrounding whitespace is trimmed.
    ///
    /// # Errors
    /// [`DecodeError::InvalidJson`] or [`DecodeError::BadPlaceholder`].
    pub fn from_json(json: Str, attachments: Vec<Bytes>) -> Result<Payload, DecodeError> {
        let text = json.as_str();
        let count = (!attachments.is_empty()).then_some(attachments.len() as u64);
        let scanned = scan::scan(text.as_bytes(), count).map_err(scan_error)?;
        let json = if scanned.start == 0 && scanned.end == text.len() {
            json.clone()
        } else {
            json.slice_ref(&text[scanned.start..scanned.end])
        };
        Ok(Payload::from_parts(json, attachments))
    }

    /// A payload from parts known to be valid.
    #[inline]
    pub(crate) fn from_parts(json: Str, attachments: Vec<Bytes>) -> Payload {
        if attachments.capacity() == 0 {
            // Nothing to free: skips the call that would drop it.
            std::mem::forget(attachments);
            return Payload { json, extra: None };
        }
        let extra = (!attachments.is_empty()).then(|| {
            Box::new(Extra {
                attachments,
                #[cfg(feature = "msgpack")]
                msgpack: None,
            })
        });
        Payload { json, extra }
    }

    /// A payload holding msgpack data.
    #[cfg(feature = "msgpack")]
    pub(crate) fn from_msgpack(
        data: crate::mpvalue::MsgpackData,
        attachments: Vec<Bytes>,
    ) -> Payload {
        Payload {
            json: Str::EMPTY,
            extra: Some(Box::new(Extra {
                attachments,
                msgpack: Some(data),
            })),
        }
    }

    /// The msgpack data, for a payload decoded from msgpack.
    #[cfg(feature = "msgpack")]
    pub(crate) fn msgpack_data(&self) -> Option<&crate::mpvalue::MsgpackData> {
        self.extra.as_ref().and_then(|e| e.msgpack.as_ref())
    }

    fn msgpack_eq(&self, other: &Payload) -> bool {
        #[cfg(feature = "msgpack")]
        {
            self.msgpack_data() == other.msgpack_data()
        }
        #[cfg(not(feature = "msgpack"))]
        {
            let _ = other;
            true
        }
    }

    /// The JSON text, placeholders included.
    ///
    /// For a msgpack payload (from `msgpack::decode`) this is empty:
    /// see [`Payload::to_json`].
    pub fn json(&self) -> &Str {
        &self.json
    }

    /// The binary attachments, in placeholder order.
    pub fn attachments(&self) -> &[Bytes] {
        self.extra.as_ref().map_or(&[], |e| &e.attachments)
    }

    /// Whether the payload has binary attachments (and so travels as BINARY_EVENT or BINARY_ACK).
    pub fn is_binary(&self) -> bool {
        self.extra
            .as_ref()
            .is_some_and(|e| !e.attachments.is_empty())
    }

    /// The JSON text and the attachments.
    pub fn into_parts(self) -> (Str, Vec<Bytes>) {
        (
            self.json,
            self.extra.map(|e| e.attachments).unwrap_or_default(),
        )
    }

    pub(crate) fn attachments_mut(&mut self) -> &mut Vec<Bytes> {
        &mut self.extra.get_or_insert_with(Box::default).attachments
    }

    /// Whether the payload holds msgpack data rather than JSON.
    pub fn is_msgpack(&self) -> bool {
        #[cfg(feature = "msgpack")]
        {
            self.msgpack_data().is_some()
        }
        #[cfg(not(feature = "msgpack"))]
        {
            false
        }
    }

    /// The payload as JSON: itself for a JSON payload; for a msgpack payload, the data converted to
    /// JSON text with placeholders for its binary values (which are its attachments already).
    pub fn to_json(&self) -> Payload {
        #[cfg(feature = "msgpack")]
        if let Some(m) = self.msgpack_data() {
            let mut out = Vec::with_capacity(m.data.len() + 16);
            crate::mpvalue::write_json(&m.data, &mut out);
            let json = json_from_vec(out).unwrap_or_default();
            return Payload::from_parts(json, self.attachments().to_vec());
        }
        self.clone()
    }

    /// This payload, a JSON array, with the string `arg` appended as its last element; `None` when
    /// the payload is not an array. A msgpack payload is converted to JSON first.
    ///
    /// Connection state recovery appends each stored packet's offset this way, where the client
    /// looks for it.
    ///
    /// ```
    /// # use socketio_packet::{Payload, Str};
    /// let p = Payload::from_json(Str::from("[\"chat\",1]"), Vec::new())?;
    /// assert_eq!(p.with_str_arg("x").unwrap().json().as_str(), r#"["chat",1,"x"]"#);
    /// let empty = Payload::from_json(Str::from("[]"), Vec::new())?;
    /// assert_eq!(empty.with_str_arg("x").unwrap().json().as_str(), r#"["x"]"#);
    /// # Ok::<(), socketio_packet::DecodeError>(())
    /// ```
    pub fn with_str_arg(&self, arg: &str) -> Option<Payload> {
        let json = self.to_json();
        let text = json.json.as_str();
        let inner = text.strip_prefix('[')?.strip_suffix(']')?;
        let mut out = String::with_capacity(text.len() + arg.len() + 4);
        out.push('[');
        out.push_str(inner);
        if !inner.trim().is_empty() {
            out.push(',');
        }
        crate::ser::write_str(&mut out, arg);
        out.push(']');
        Some(Payload::from_parts(
            Str::from(out),
            json.attachments().to_vec(),
        ))
    }

    /// Checks that every placeholder designates one of the attachments.
    ///
    /// Decoding already checks this for binary packets; this is for payloads built otherwise.
    ///
    /// # Errors
    /// [`DataError::BadPlaceholder`].
    pub fn check_placeholders(&self) -> Result<(), DataError> {
        if !self.is_binary() || self.is_msgpack() {
            return Ok(());
        }
        match scan::scan(self.json.as_bytes(), Some(self.attachments().len() as u64)) {
            Ok(_) => Ok(()),
            Err(ScanError::BadPlaceholder) => Err(DataError::BadPlaceholder),
            Err(ScanError::Syntax(offset)) => {
                Err(DataError::Custom(format!("invalid json at byte {offset}")))
            }
        }
    }

    /// Deserializes the whole payload, putting the attachments back in place of their placeholders.
    ///
    /// A placeholder yields its bytes to `bytes::Bytes`, `serde_bytes::ByteBuf` and `Vec<u8>` alike.
    /// A payload without attachments deserializes straight from the text, and its placeholder-like
    /// objects stay objects (as in the reference, which resolves placeholders of binary packets only).
    ///
    /// # Errors
    /// [`DataError`] when the data does not match `T`, or a placeholder has a bad `num`.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, DataError> {
        #[cfg(feature = "msgpack")]
        if let Some(m) = self.msgpack_data() {
            return m.deserialize(0, false);
        }
        if !self.is_binary() {
            return Ok(serde_json::from_str(self.json.as_str())?);
        }
        let tree: serde_json::Value = serde_json::from_str(self.json.as_str())?;
        T::deserialize(PlaceholderDe {
            value: &tree,
            bins: self.attachments(),
        })
    }

    /// Deserializes the elements of the payload's array from index `skip` on, as a sequence:
    /// `T` is a tuple, a `Vec`, or a type that deserializes from a sequence.
    ///
    /// Elements that `T` does not take are ignored, as JavaScript ignores extra arguments.
    /// Event arguments are `args(1)` (after the event name); ack arguments are `args(0)`.
    ///
    /// # Errors
    /// [`DataError`] when the payload is not an array, the elements do not match `T`, or a
    /// placeholder has a bad `num`.
    pub fn args<T: DeserializeOwned>(&self, skip: usize) -> Result<T, DataError> {
        #[cfg(feature = "msgpack")]
        if let Some(m) = self.msgpack_data() {
            return m.deserialize(skip, true);
        }
        if !self.is_binary() {
            let mut de = serde_json::Deserializer::from_str(self.json.as_str());
            let value = T::deserialize(Skip {
                inner: &mut de,
                skip,
            })?;
            de.end()?;
            return Ok(value);
        }
        let tree: serde_json::Value = serde_json::from_str(self.json.as_str())?;
        T::deserialize(Skip {
            inner: PlaceholderDe {
                value: &tree,
                bins: self.attachments(),
            },
            skip,
        })
    }
}

/// Text produced by a serializer of this crate (always UTF-8).
#[cfg(feature = "msgpack")]
pub(crate) fn json_from_vec(out: Vec<u8>) -> Result<Str, EncodeError> {
    String::from_utf8(out)
        .map(Str::from)
        .map_err(|_| EncodeError::Custom("serializer produced invalid utf-8".to_owned()))
}
