//! Deserializers: argument skipping, and placeholder resolution over a JSON tree.

use std::fmt;

use bytes::Bytes;
use serde::de::value::{BorrowedStrDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde_json::Value;

use crate::DataError;

/// Deserializes the elements of a sequence after the first `skip`, as a sequence.
///
/// Elements left over by the target type are read and ignored, as JavaScript ignores extra arguments.
pub(crate) struct Skip<D> {
    pub(crate) inner: D,
    pub(crate) skip: usize,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Skip<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_seq(SkipVisitor {
            inner: visitor,
            skip: self.skip,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct SkipVisitor<V> {
    inner: V,
    skip: usize,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for SkipVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<V::Value, A::Error> {
        for _ in 0..self.skip {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
        }
        let value = self.inner.visit_seq(&mut seq)?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(value)
    }
}

/// The attachment a placeholder's `num` designates.
fn attachment<'a>(num: Option<&Value>, bins: &'a [Bytes]) -> Result<&'a Bytes, DataError> {
    let index = match num {
        Some(Value::Number(n)) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < bins.len() as f64)
                .map(|f| f as u64)
        }),
        _ => None,
    };
    index
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| bins.get(i))
        .ok_or(DataError::BadPlaceholder)
}

/// A deserializer over a JSON tree that yields the attachment's bytes for each placeholder object.
#[derive(Clone, Copy)]
pub(crate) struct PlaceholderDe<'a> {
    pub(crate) value: &'a Value,
    pub(crate) bins: &'a [Bytes],
}

impl<'a> PlaceholderDe<'a> {
    fn placeholder(&self) -> Option<Result<&'a Bytes, DataError>> {
        let Value::Object(map) = self.value else {
            return None;
        };
        if map.get("_placeholder") != Some(&Value::Bool(true)) {
            return None;
        }
        Some(attachment(map.get("num"), self.bins))
    }

    fn invalid_type(&self, exp: &dyn de::Expected) -> DataError {
        let unexp = match self.value {
            Value::Null => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(*b),
            Value::Number(_) => de::Unexpected::Other("number"),
            Value::String(s) => de::Unexpected::Str(s),
            Value::Array(_) => de::Unexpected::Seq,
            Value::Object(_) => de::Unexpected::Map,
        };
        de::Error::invalid_type(unexp, exp)
    }
}

impl<'a> Deserializer<'a> for PlaceholderDe<'a> {
    type Error = DataError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DataError> {
        if let Some(bytes) = self.placeholder() {
            return visitor.visit_bytes(bytes?);
        }
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => {
                let mut seq = ArrayDe {
                    iter: items.iter(),
                    bins: self.bins,
                };
                let value = visitor.visit_seq(&mut seq)?;
                let left = seq.iter.len();
                if left == 0 {
                    Ok(value)
                } else {
                    Err(de::Error::invalid_length(
                        items.len(),
                        &"fewer elements in array",
                    ))
                }
            }
            Value::Object(map) => {
                let mut access = MapDe {
                    iter: map.iter(),
                    value: None,
                    bins: self.bins,
                };
                let value = visitor.visit_map(&mut access)?;
                if access.iter.len() == 0 {
                    Ok(value)
                } else {
                    Err(de::Error::invalid_length(
                        map.len(),
                        &"fewer elements in map",
                    ))
                }
            }
        }
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DataError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DataError> {
        match self.placeholder() {
            Some(bytes) => visitor.visit_bytes(bytes?),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DataError> {
        self.deserialize_bytes(visitor)
    }

    /// A placeholder read as a sequence yields its bytes one by one (for `Vec<u8>`).
    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DataError> {
        match self.placeholder() {
            Some(bytes) => {
                let mut seq = SeqDeserializer::<_, DataError>::new(bytes?.iter().copied());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DataError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DataError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DataError> {
        match self.value {
            Value::String(s) => visitor.visit_enum(BorrowedStrDeserializer::<DataError>::new(s)),
            Value::Object(map) if map.len() == 1 => match map.iter().next() {
                Some((variant, value)) => visitor.visit_enum(EnumDe {
                    variant,
                    value,
                    bins: self.bins,
                }),
                None => Err(self.invalid_type(&"an enum")),
            },
            _ => Err(self.invalid_type(&"a string or a map with one key")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DataError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'a>>
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct tuple_struct map struct identifier
    }
}

struct ArrayDe<'a> {
    iter: std::slice::Iter<'a, Value>,
    bins: &'a [Bytes],
}

impl<'a> SeqAccess<'a> for ArrayDe<'a> {
    type Error = DataError;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DataError> {
        match self.iter.next() {
            Some(value) => seed
                .deserialize(PlaceholderDe {
                    value,
                    bins: self.bins,
                })
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapDe<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
    bins: &'a [Bytes],
}

impl<'a> MapAccess<'a> for MapDe<'a> {
    type Error = DataError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DataError> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(KeyDe(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, DataError> {
        match self.value.take() {
            Some(value) => seed.deserialize(PlaceholderDe {
                value,
                bins: self.bins,
            }),
            None => Err(de::Error::custom("value requested before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// A map key: a string, also readable as a number or a boolean (as serde_json reads keys).
struct KeyDe<'a>(&'a str);

macro_rules! parse_key {
    ($($method:ident => $visit:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DataError> {
                match self.0.parse() {
                    Ok(v) => visitor.$visit(v),
                    Err(_) => Err(de::Error::invalid_value(de::Unexpected::Str(self.0), &visitor)),
                }
            }
        )*
    };
}

impl<'a> Deserializer<'a> for KeyDe<'a> {
    type Error = DataError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DataError> {
        visitor.visit_borrowed_str(self.0)
    }

    parse_key! {
        deserialize_bool => visit_bool,
        deserialize_i8 => visit_i8,
        deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32,
        deserialize_i64 => visit_i64,
        deserialize_i128 => visit_i128,
        deserialize_u8 => visit_u8,
        deserialize_u16 => visit_u16,
        deserialize_u32 => visit_u32,
        deserialize_u64 => visit_u64,
        deserialize_u128 => visit_u128,
        deserialize_f32 => visit_f32,
        deserialize_f64 => visit_f64,
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DataError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DataError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DataError> {
        visitor.visit_enum(BorrowedStrDeserializer::<DataError>::new(self.0))
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'a>>
        char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct EnumDe<'a> {
    variant: &'a str,
    value: &'a Value,
    bins: &'a [Bytes],
}

impl<'a> EnumAccess<'a> for EnumDe<'a> {
    type Error = DataError;
    type Variant = PlaceholderDe<'a>;

    fn variant_seed<V: DeserializeSeed<'a>>(
        self,
        seed: V,
    ) -> Result<(V::Value, PlaceholderDe<'a>), DataError> {
        let variant = seed.deserialize(BorrowedStrDeserializer::<DataError>::new(self.variant))?;
        Ok((
            variant,
            PlaceholderDe {
                value: self.value,
                bins: self.bins,
            },
        ))
    }
}

impl<'a> VariantAccess<'a> for PlaceholderDe<'a> {
    type Error = DataError;

    fn unit_variant(self) -> Result<(), DataError> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, DataError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, DataError> {
        self.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DataError> {
        self.deserialize_any(visitor)
    }
}
