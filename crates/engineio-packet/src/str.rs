//! [`Str`]: a UTF-8 string that shares its buffer with the frame or body it came from.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::str::Utf8Error;

use bytes::Bytes;
use bytestring::ByteString;

/// A UTF-8 string backed by [`Bytes`]: cheap to clone, and a zero-copy slice of the input it was decoded from.
///
/// The bytes are checked once, when the `Str` is built from untrusted bytes ([`Str::try_from`]).
/// Comparisons, hashing and ordering work on the bytes and agree with those of [`str`],
/// so a `HashMap<Str, _>` can be looked up with a `&str`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Str(ByteString);

impl Str {
    /// The empty string.
    pub const EMPTY: Str = Str::from_static("");

    /// Wraps a static string, without copying it.
    pub const fn from_static(s: &'static str) -> Str {
        Str(ByteString::from_static(s))
    }

    /// Checks that `bytes` are UTF-8 and wraps them, without copying.
    ///
    /// # Errors
    /// Returns the [`Utf8Error`] when the bytes are not UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<Str, Utf8Error> {
        ByteString::try_from(bytes).map(Str)
    }

    /// The string (free: the bytes were checked when the `Str` was built).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The string's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The underlying buffer, without copying.
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A `Str` for `sub`, which should be a slice of `self` (as returned by `str` methods on [`Str::as_str`]).
    ///
    /// When `sub` lies inside `self` the result shares `self`'s buffer; otherwise `sub` is copied,
    /// so this never panics.
    pub fn slice_ref(&self, sub: &str) -> Str {
        if sub.is_empty() {
            return Str::EMPTY;
        }
        let base = self.0.as_bytes().as_ptr() as usize;
        let start = sub.as_ptr() as usize;
        match start.checked_sub(base) {
            Some(offset) if offset <= self.0.len() && sub.len() <= self.0.len() - offset => {
                // A non-empty `str` starts and ends on character boundaries of any UTF-8 text it lies in.
                Str(self.0.slice_ref(sub))
            }
            _ => Str::from(sub),
        }
    }

    /// The tail of the string from byte `start`, which the caller knows is a character boundary.
    pub(crate) fn tail(&self, start: usize) -> Str {
        self.0
            .get(start..)
            .map_or(Str::EMPTY, |s| self.slice_ref(s))
    }

    /// A sub-string by byte range, which the caller knows is on character boundaries.
    pub(crate) fn sub(&self, start: usize, end: usize) -> Str {
        self.0
            .get(start..end)
            .map_or(Str::EMPTY, |s| self.slice_ref(s))
    }
}

impl Deref for Str {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Str {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for Str {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The same bytes that `str`'s `Hash` feeds, so that `Borrow<str>` lookups work.
        state.write(self.0.as_bytes());
        state.write_u8(0xff);
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<Bytes> for Str {
    type Error = Utf8Error;
    fn try_from(bytes: Bytes) -> Result<Str, Utf8Error> {
        Str::from_utf8(bytes)
    }
}

impl From<ByteString> for Str {
    /// Wraps a string already checked to be UTF-8, without copying or checking it again.
    fn from(s: ByteString) -> Str {
        Str(s)
    }
}

impl From<String> for Str {
    fn from(s: String) -> Str {
        Str(ByteString::from(s))
    }
}

impl From<&str> for Str {
    /// Copies the string.
    fn from(s: &str) -> Str {
        Str(ByteString::from(s))
    }
}

impl From<Box<str>> for Str {
    fn from(s: Box<str>) -> Str {
        Str::from(String::from(s))
    }
}

impl From<Str> for Bytes {
    fn from(s: Str) -> Bytes {
        s.0.into_bytes()
    }
}

impl From<Str> for String {
    fn from(s: Str) -> String {
        // `Vec::from(Bytes)` reuses the allocation when the buffer is not shared.
        String::from_utf8(Vec::from(s.0.into_bytes())).unwrap_or_default()
    }
}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<String> for Str {
    fn eq(&self, other: &String) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<Str> for str {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<Str> for &str {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl serde::Serialize for Str {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Str {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Str, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Str;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Str, E> {
                Ok(Str::from(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Str, E> {
                Ok(Str::from(v))
            }
        }
        deserializer.deserialize_string(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn slice_ref_shares_the_buffer() {
        let s = Str::from("hello wörld");
        let sub = &s.as_str()[6..];
        let sliced = s.slice_ref(sub);
        assert_eq!(sliced, "wörld");
        assert_eq!(sliced.as_bytes().as_ptr(), sub.as_ptr());
    }

    #[test]
    fn slice_ref_copies_a_foreign_str() {
        let s = Str::from("hello");
        assert_eq!(s.slice_ref("other"), "other");
        assert_eq!(s.slice_ref(""), "");
    }

    #[test]
    fn hash_matches_str() {
        let mut map = HashMap::new();
        map.insert(Str::from("key"), 1);
        assert_eq!(map.get("key"), Some(&1));
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert!(Str::try_from(Bytes::from_static(b"\xff")).is_err());
        assert_eq!(
            Str::try_from(Bytes::from_static("é".as_bytes())).ok(),
            Some(Str::from("é"))
        );
    }

    #[test]
    fn ordering_matches_str() {
        let mut v = vec![
            Str::from("é"),
            Str::from("z"),
            Str::from("a"),
            Str::from(""),
        ];
        v.sort();
        assert_eq!(v, ["", "a", "z", "é"]);
    }

    #[test]
    fn serde_as_string() {
        let s: Str = serde_json::from_str("\"a\\u00e9\"").unwrap_or_default();
        assert_eq!(s, "aé");
        assert_eq!(serde_json::to_string(&s).ok().as_deref(), Some("\"aé\""));
    }
}
