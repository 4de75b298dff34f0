//! The one convention for arguments, used by every emit, acknowledgement,
//! handler and ack future: **a tuple is the argument list, anything else is
//! one argument**.
//!
//! - Sending: `&("a", 1)` sends two arguments, `&()` none, `&"a"` one, and
//!   `&vec![1, 2]` one argument (the array `[1,2]`).
//! - Receiving: [`Data<(A, B)>`](crate::Data) takes exactly two arguments,
//!   `Data<(A,)>` exactly one, `Data<T>` for any other `T` exactly one (or
//!   none, when `T` deserializes from `null`, as `Option<_>` and `()` do).
//!   Another count is [`DataError::ArgumentCount`].
//!
//! A fixed-size array (`[T; N]`) counts as a tuple: serde sees the two alike.
//! So does `serde_json::Value::Null` count as `()`, no argument: send one
//! `null` argument as `&(Value::Null,)` (or `&None::<()>`).
//!
//! Room names are given as one or more too ([`RoomParam`]).

use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny, Visitor};
use serde::ser::Impossible;
use socketio_proto::socketio_packet::{DataError, EncodeError, Packet};
use socketio_proto::{Encoded, Payload, Str};

/// What a probe learnt of a type's serde shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A tuple (or fixed-size array): an argument list.
    Tuple,
    /// `()`: no arguments.
    Unit,
    /// Anything else: one argument.
    One,
}

#[derive(Debug)]
struct Probed(Shape);

impl std::fmt::Display for Probed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Probed {}

impl serde::ser::Error for Probed {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Probed(Shape::One)
    }
}

impl serde::de::Error for Probed {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Probed(Shape::One)
    }
}

/// A serializer that stops at the first call, telling which it was.
struct SerProbe;

macro_rules! one {
    ($($name:ident($($ty:ty),*)),* $(,)?) => {
        $(fn $name(self, $(_: $ty),*) -> Result<Self::Ok, Self::Error> {
            Err(Probed(Shape::One))
        })*
    };
}

impl serde::Serializer for SerProbe {
    type Ok = ();
    type Error = Probed;
    type SerializeSeq = Impossible<(), Probed>;
    type SerializeTuple = Impossible<(), Probed>;
    type SerializeTupleStruct = Impossible<(), Probed>;
    type SerializeTupleVariant = Impossible<(), Probed>;
    type SerializeMap = Impossible<(), Probed>;
    type SerializeStruct = Impossible<(), Probed>;
    type SerializeStructVariant = Impossible<(), Probed>;

    one!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_unit(self) -> Result<(), Probed> {
        Err(Probed(Shape::Unit))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Probed> {
        Err(Probed(Shape::One))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Probed> {
        Err(Probed(Shape::One))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Probed> {
        Err(Probed(Shape::One))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Probed> {
        Err(Probed(Shape::One))
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Probed> {
        Err(Probed(Shape::Tuple))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Probed> {
        Err(Probed(Shape::One))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Probed> {
        Err(Probed(Shape::One))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Probed> {
        Err(Probed(Shape::One))
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Probed> {
        Err(Probed(Shape::One))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Probed> {
        Err(Probed(Shape::One))
    }
}

/// A deserializer that stops at the first call, telling which it was.
struct DeProbe;

impl<'de> serde::Deserializer<'de> for DeProbe {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed(Shape::One))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Probed> {
        Err(Probed(Shape::Tuple))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq
        tuple_struct map struct enum identifier ignored_any
    }
}

fn ser_shape<T: Serialize + ?Sized>(value: &T) -> Shape {
    match value.serialize(SerProbe) {
        Err(Probed(shape)) => shape,
        Ok(()) => Shape::One,
    }
}

fn de_shape<T: DeserializeOwned>() -> Shape {
    match T::deserialize(DeProbe) {
        Err(Probed(shape)) => shape,
        Ok(_) => Shape::One,
    }
}

/// Whether `args` is an argument list (a tuple, or `()`), rather than one
/// argument.
pub(crate) fn is_arg_list<T: Serialize + ?Sized>(args: &T) -> bool {
    ser_shape(args) != Shape::One
}

/// An EVENT packet of `name` with `args` as the convention reads them.
pub(crate) fn event_packet<T: Serialize + ?Sized>(
    nsp: Str,
    name: &str,
    args: &T,
) -> Result<Packet, EncodeError> {
    match is_arg_list(args) {
        true => Packet::event(nsp, name, args, None),
        false => Packet::event(nsp, name, &(args,), None),
    }
}

/// The EVENT of [`event_packet`] encoded straight for the default parser,
/// with no packet in between.
pub(crate) fn event_encoded<T: Serialize + ?Sized>(
    nsp: &str,
    name: &str,
    args: &T,
) -> Result<Encoded, EncodeError> {
    match is_arg_list(args) {
        true => Encoded::event(nsp, name, args),
        false => Encoded::event(nsp, name, &(args,)),
    }
}

/// The data of an ACK packet with `args` as the convention reads them.
pub(crate) fn ack_data<T: Serialize + ?Sized>(
    nsp: Str,
    id: u64,
    args: &T,
) -> Result<Payload, EncodeError> {
    let packet = match is_arg_list(args) {
        true => Packet::ack(nsp, id, args)?,
        false => Packet::ack(nsp, id, &(args,))?,
    };
    Ok(match packet.kind {
        socketio_proto::PacketKind::Ack { data, .. } => data,
        _ => Payload::default(),
    })
}

/// `args` as a list of JSON values, as the convention reads them.
pub(crate) fn arg_values<T: Serialize + ?Sized>(
    args: &T,
) -> Result<Vec<serde_json::Value>, serde_json::Error> {
    match ser_shape(args) {
        Shape::Unit => Ok(Vec::new()),
        Shape::Tuple => match serde_json::to_value(args)? {
            serde_json::Value::Array(items) => Ok(items),
            other => Ok(vec![other]),
        },
        Shape::One => Ok(vec![serde_json::to_value(args)?]),
    }
}

/// The arguments of `payload` (the elements of its array from `skip` on),
/// deserialized as the convention reads them.
pub(crate) fn from_args<T: DeserializeOwned>(
    payload: &Payload,
    skip: usize,
) -> Result<T, DataError> {
    if de_shape::<T>() == Shape::Tuple {
        return payload.args(skip);
    }
    let got = payload.args::<Vec<IgnoredAny>>(skip)?.len();
    match got {
        1 => payload.args::<(T,)>(skip).map(|(value,)| value),
        0 => T::deserialize(serde_json::Value::Null)
            .map_err(|_| DataError::ArgumentCount { expected: 1, got }),
        _ => Err(DataError::ArgumentCount { expected: 1, got }),
    }
}

/// One or more room names.
///
/// ```
/// # fn f(socket: socketio_tokio::Socket) {
/// socket.join("a");
/// socket.join(String::from("b"));
/// socket.join(["c", "d"]);
/// socket.join(vec!["e".to_string()]);
/// # }
/// ```
pub trait RoomParam {
    /// The room names.
    fn into_rooms(self) -> Vec<Str>;
}

impl RoomParam for &str {
    fn into_rooms(self) -> Vec<Str> {
        vec![Str::from(self)]
    }
}

impl RoomParam for String {
    fn into_rooms(self) -> Vec<Str> {
        vec![Str::from(self)]
    }
}

impl RoomParam for &String {
    fn into_rooms(self) -> Vec<Str> {
        vec![Str::from(self.as_str())]
    }
}

impl RoomParam for Str {
    fn into_rooms(self) -> Vec<Str> {
        vec![self]
    }
}

impl<T: RoomParam> RoomParam for Vec<T> {
    fn into_rooms(self) -> Vec<Str> {
        self.into_iter().flat_map(RoomParam::into_rooms).collect()
    }
}

impl<T: RoomParam, const N: usize> RoomParam for [T; N] {
    fn into_rooms(self) -> Vec<Str> {
        self.into_iter().flat_map(RoomParam::into_rooms).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn payload(json: &str) -> Payload {
        Payload::from_json(Str::from(json.to_owned()), Vec::new()).unwrap()
    }

    #[test]
    fn a_tuple_is_the_argument_list_anything_else_one_argument() {
        let json = |args: Payload| args.json().as_str().to_owned();
        let ev = |p: Packet| match p.kind {
            socketio_proto::PacketKind::Event { data, .. } => json(data),
            _ => unreachable!(),
        };
        let nsp = || Str::from_static("/");
        assert_eq!(
            ev(event_packet(nsp(), "e", &("a", 1)).unwrap()),
            r#"["e","a",1]"#
        );
        assert_eq!(ev(event_packet(nsp(), "e", &()).unwrap()), r#"["e"]"#);
        assert_eq!(ev(event_packet(nsp(), "e", &"a").unwrap()), r#"["e","a"]"#);
        assert_eq!(
            ev(event_packet(nsp(), "e", &vec![1, 2]).unwrap()),
            r#"["e",[1,2]]"#
        );
        assert_eq!(
            ev(event_packet(nsp(), "e", &[1, 2][..]).unwrap()),
            r#"["e",[1,2]]"#
        );
        assert_eq!(
            ev(event_packet(nsp(), "e", &("a",)).unwrap()),
            r#"["e","a"]"#
        );
        assert_eq!(
            ev(event_packet(nsp(), "e", &serde_json::json!([1, 2])).unwrap()),
            r#"["e",[1,2]]"#
        );
        assert_eq!(json(ack_data(nsp(), 1, &vec!["x"]).unwrap()), r#"[["x"]]"#);
        assert_eq!(json(ack_data(nsp(), 1, &(1, 2)).unwrap()), "[1,2]");
        assert_eq!(arg_values(&(1, "b")).unwrap().len(), 2);
        assert_eq!(arg_values(&vec![1, 2]).unwrap().len(), 1);
        assert!(arg_values(&()).unwrap().is_empty());
    }

    #[test]
    fn receiving_follows_the_same_rule_and_a_mismatch_is_a_typed_error() {
        let one = payload(r#"["e",[1,2]]"#);
        assert_eq!(from_args::<Vec<u8>>(&one, 1).unwrap(), vec![1, 2]);
        assert_eq!(from_args::<(Vec<u8>,)>(&one, 1).unwrap(), (vec![1, 2],));
        let two = payload(r#"["e",1,2]"#);
        assert_eq!(from_args::<(u8, u8)>(&two, 1).unwrap(), (1, 2));
        assert!(matches!(
            from_args::<Vec<u8>>(&two, 1),
            Err(DataError::ArgumentCount {
                expected: 1,
                got: 2
            })
        ));
        let none = payload(r#"["e"]"#);
        assert_eq!(from_args::<Option<u8>>(&none, 1).unwrap(), None);
        from_args::<()>(&none, 1).unwrap();
        assert!(matches!(
            from_args::<u8>(&none, 1),
            Err(DataError::ArgumentCount {
                expected: 1,
                got: 0
            })
        ));
        // An acknowledgement's arguments start at index 0.
        assert_eq!(from_args::<String>(&payload(r#"["ok"]"#), 0).unwrap(), "ok");
        assert!(from_args::<(u8, u8)>(&payload("[1]"), 0).is_err());
    }
}
