//! [`Packet`], its type and its encodings.

use bytes::Bytes;

use crate::{DecodeError, Handshake, ProtocolVersion, Str, b64};

/// The type of a packet: its first character in text form, its first byte in a revision 3 binary frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: the server's first packet, with the [`Handshake`].
    Open = 0,
    /// `1`: closes the session.
    Close = 1,
    /// `2`: a heartbeat (sent by the server in revision 4, by the client in revision 3), or the upgrade probe.
    Ping = 2,
    /// `3`: the answer to a ping.
    Pong = 3,
    /// `4`: application data.
    Message = 4,
    /// `5`: completes an upgrade to WebSocket.
    Upgrade = 5,
    /// `6`: ends a pending long-polling request during an upgrade.
    Noop = 6,
}

impl PacketType {
    /// Every type, in order.
    pub const ALL: [PacketType; 7] = [
        PacketType::Open,
        PacketType::Close,
        PacketType::Ping,
        PacketType::Pong,
        PacketType::Message,
        PacketType::Upgrade,
        PacketType::Noop,
    ];

    /// The digit of the text form, `'0'` to `'6'`.
    pub const fn as_char(self) -> char {
        self.as_byte() as char
    }

    /// The ASCII digit of the text form, `b'0'` to `b'6'`.
    pub const fn as_byte(self) -> u8 {
        b'0' + self as u8
    }

    /// The type whose ASCII digit is `b` (`b'0'` to `b'6'`), as in the text form.
    pub const fn from_byte(b: u8) -> Option<PacketType> {
        match b {
            b'0'..=b'6' => PacketType::from_index(b - b'0'),
            _ => None,
        }
    }

    /// The type numbered `n` (0 to 6), as in the first byte of a revision 3 binary frame.
    pub const fn from_index(n: u8) -> Option<PacketType> {
        match n {
            0 => Some(PacketType::Open),
            1 => Some(PacketType::Close),
            2 => Some(PacketType::Ping),
            3 => Some(PacketType::Pong),
            4 => Some(PacketType::Message),
            5 => Some(PacketType::Upgrade),
            6 => Some(PacketType::Noop),
            _ => None,
        }
    }

    /// The number of the type, 0 to 6.
    pub const fn index(self) -> u8 {
        self as u8
    }
}

/// A message's payload, or the body of a WebSocket frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Data {
    /// Text: a text message, or a WebSocket text frame.
    Text(Str),
    /// Bytes: a binary message, or a WebSocket binary frame.
    Binary(Bytes),
}

impl Data {
    /// Whether this is [`Data::Binary`].
    pub fn is_binary(&self) -> bool {
        matches!(self, Data::Binary(_))
    }

    /// The bytes: the UTF-8 text, or the binary data.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Data::Text(s) => s.as_bytes(),
            Data::Binary(b) => b,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

impl From<Str> for Data {
    fn from(s: Str) -> Data {
        Data::Text(s)
    }
}

impl From<Bytes> for Data {
    fn from(b: Bytes) -> Data {
        Data::Binary(b)
    }
}

/// An Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Packet {
    /// `0{...}`: opens the session.
    Open(Handshake),
    /// `1`: closes the session.
    Close,
    /// `2[data]`: a heartbeat (empty data) or the upgrade probe (`2probe`).
    Ping(Str),
    /// `3[data]`: the answer to a ping, with the same data.
    Pong(Str),
    /// `4<text>`, or binary data (`b<base64>` in text form, a binary frame over WebSocket).
    Message(Data),
    /// `5`: completes an upgrade.
    Upgrade,
    /// `6`: does nothing; ends a pending poll during an upgrade.
    Noop,
}

const PROBE: &str = "probe";

impl Packet {
    /// A text message.
    pub fn text(text: impl Into<Str>) -> Packet {
        Packet::Message(Data::Text(text.into()))
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Packet {
        Packet::Message(Data::Binary(data.into()))
    }

    /// The type of the packet.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping(_) => PacketType::Ping,
            Packet::Pong(_) => PacketType::Pong,
            Packet::Message(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }

    /// Whether this is a binary message.
    pub fn is_binary(&self) -> bool {
        matches!(self, Packet::Message(Data::Binary(_)))
    }

    /// Decodes one packet from its text form: a WebSocket text frame, or one packet of a polling payload.
    ///
    /// The data after the type is kept for ping, pong and message packets, parsed as JSON for open,
    /// and ignored for close, upgrade and noop, as the reference does.
    /// A leading `b` marks a binary message in base64: `bAQI=` in revision 4;
    /// in revision 3 the type digit follows (`b4AQI=`), and the decoded bytes are read as
    /// [`Packet::decode_binary`] reads a frame's data.
    ///
    /// # Errors
    /// [`DecodeError::Empty`] for an empty text, [`DecodeError::UnknownType`] when the first character
    /// is not a type, [`DecodeError::InvalidBase64`], [`DecodeError::InvalidHandshake`] for an open packet
    /// that is not a handshake, and [`DecodeError::InvalidUtf8`] for revision 3 base64 ping or pong data.
    pub fn decode_text(text: Str, version: ProtocolVersion) -> Result<Packet, DecodeError> {
        let bytes = text.as_bytes();
        let Some(&first) = bytes.first() else {
            return Err(DecodeError::Empty);
        };
        let packet = match first {
            b'0' => Packet::Open(Handshake::from_json(
                text.as_str().get(1..).unwrap_or_default(),
            )?),
            b'1' => Packet::Close,
            b'2' => Packet::Ping(text.tail(1)),
            b'3' => Packet::Pong(text.tail(1)),
            b'4' => Packet::Message(Data::Text(text.tail(1))),
            b'5' => Packet::Upgrade,
            b'6' => Packet::Noop,
            b'b' => match version {
                ProtocolVersion::V4 => Packet::Message(Data::Binary(b64::decode(&bytes[1..])?)),
                ProtocolVersion::V3 => {
                    let Some(&t) = bytes.get(1) else {
                        return Err(DecodeError::UnknownType(b'b'));
                    };
                    let ty = PacketType::from_byte(t).ok_or(DecodeError::UnknownType(t))?;
                    with_binary_data(ty, b64::decode(&bytes[2..])?)?
                }
            },
            other => return Err(DecodeError::UnknownType(other)),
        };
        Ok(packet)
    }

    /// Decodes a binary WebSocket frame.
    ///
    /// Revision 4: the frame is a binary message, whatever it holds.
    /// Revision 3: the first byte is the packet type (0 to 6) and the rest its data:
    /// type 4 gives a binary message; ping and pong data is read as UTF-8 text, open data as the handshake JSON,
    /// and the data of the other types is ignored.
    ///
    /// # Errors
    /// Revision 3 only: [`DecodeError::Empty`] for an empty frame, [`DecodeError::UnknownType`],
    /// [`DecodeError::InvalidUtf8`] and [`DecodeError::InvalidHandshake`].
    pub fn decode_binary(frame: Bytes, version: ProtocolVersion) -> Result<Packet, DecodeError> {
        match version {
            ProtocolVersion::V4 => Ok(Packet::Message(Data::Binary(frame))),
            ProtocolVersion::V3 => {
                let Some(&first) = frame.first() else {
                    return Err(DecodeError::Empty);
                };
                let ty = PacketType::from_index(first).ok_or(DecodeError::UnknownType(first))?;
                with_binary_data(ty, frame.slice(1..))
            }
        }
    }

    /// Decodes a WebSocket frame body: [`Packet::decode_text`] for text, [`Packet::decode_binary`] for binary.
    ///
    /// # Errors
    /// Those of the two functions.
    pub fn decode_frame(frame: Data, version: ProtocolVersion) -> Result<Packet, DecodeError> {
        match frame {
            Data::Text(text) => Packet::decode_text(text, version),
            Data::Binary(bytes) => Packet::decode_binary(bytes, version),
        }
    }

    /// Encodes the packet for a WebSocket.
    ///
    /// Every packet is a text frame with its text form, except a binary message, which is a binary frame:
    /// the bytes as they are in revision 4 (no copy), the type byte 4 then the bytes in revision 3.
    pub fn to_ws_frame(&self, version: ProtocolVersion) -> Data {
        let text = match self {
            Packet::Message(Data::Binary(data)) => {
                return Data::Binary(match version {
                    ProtocolVersion::V4 => data.clone(),
                    ProtocolVersion::V3 => {
                        let mut frame = Vec::with_capacity(1 + data.len());
                        frame.push(PacketType::Message.index());
                        frame.extend_from_slice(data);
                        Bytes::from(frame)
                    }
                });
            }
            Packet::Close => Str::from_static("1"),
            Packet::Ping(s) if s.is_empty() => Str::from_static("2"),
            Packet::Ping(s) if *s == PROBE => Str::from_static("2probe"),
            Packet::Pong(s) if s.is_empty() => Str::from_static("3"),
            Packet::Pong(s) if *s == PROBE => Str::from_static("3probe"),
            Packet::Upgrade => Str::from_static("5"),
            Packet::Noop => Str::from_static("6"),
            _ => self.encode_text(version),
        };
        Data::Text(text)
    }

    /// The text form: what goes into a polling payload, or a WebSocket text frame.
    pub fn encode_text(&self, version: ProtocolVersion) -> Str {
        let mut out = Vec::new();
        self.encode_text_into(version, &mut out);
        // The text form is ASCII around UTF-8 strings.
        Str::from_utf8(Bytes::from(out)).unwrap_or_default()
    }

    /// Appends the text form to `out`: the type digit, then the data;
    /// a binary message as `b<base64>` (revision 4) or `b4<base64>` (revision 3).
    pub fn encode_text_into(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        match self {
            Packet::Open(handshake) => handshake.fields().write_packet(out),
            Packet::Ping(data) | Packet::Pong(data) | Packet::Message(Data::Text(data)) => {
                let data = data.as_bytes();
                reserve(out, 1 + data.len());
                out.push(self.packet_type().as_byte());
                if !data.is_empty() {
                    out.extend_from_slice(data);
                }
            }
            Packet::Message(Data::Binary(data)) => {
                reserve(out, self.text_len(version));
                out.push(b'b');
                if version == ProtocolVersion::V3 {
                    out.push(b'4');
                }
                b64::encode_into(data, out);
            }
            Packet::Close | Packet::Upgrade | Packet::Noop => {
                reserve(out, 1);
                out.push(self.packet_type().as_byte());
            }
        }
    }

    /// The length in bytes of the text form.
    pub fn text_len(&self, version: ProtocolVersion) -> usize {
        match self {
            Packet::Open(handshake) => 1 + handshake.json_len(),
            Packet::Ping(data) | Packet::Pong(data) | Packet::Message(Data::Text(data)) => {
                1 + data.len()
            }
            Packet::Message(Data::Binary(data)) => {
                let prefix = match version {
                    ProtocolVersion::V4 => 1,
                    ProtocolVersion::V3 => 2,
                };
                prefix + b64::encoded_len(data.len())
            }
            Packet::Close | Packet::Upgrade | Packet::Noop => 1,
        }
    }
}

/// Makes room for `additional` bytes; allocates an unallocated buffer directly, which is faster
/// than growing it.
pub(crate) fn reserve(out: &mut Vec<u8>, additional: usize) {
    if out.capacity() == 0 {
        *out = Vec::with_capacity(additional);
    } else {
        out.reserve(additional);
    }
}

/// A packet of type `ty` whose data came as bytes (a revision 3 binary frame, or revision 3 base64).
fn with_binary_data(ty: PacketType, data: Bytes) -> Result<Packet, DecodeError> {
    let text = |data: Bytes| Str::from_utf8(data).map_err(|_| DecodeError::InvalidUtf8);
    Ok(match ty {
        PacketType::Open => Packet::Open(Handshake::from_json(text(data)?.as_str())?),
        PacketType::Close => Packet::Close,
        PacketType::Ping => Packet::Ping(text(data)?),
        PacketType::Pong => Packet::Pong(text(data)?),
        PacketType::Message => Packet::Message(Data::Binary(data)),
        PacketType::Upgrade => Packet::Upgrade,
        PacketType::Noop => Packet::Noop,
    })
}
