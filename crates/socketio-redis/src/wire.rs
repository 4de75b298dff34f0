//! The messages of `@socket.io/redis-adapter` 8.x (classic mode), byte for
//! byte.
//!
//! - A broadcast is the msgpack array `[uid, packet, {rooms, except, flags}]`
//!   published on `<key>#<nsp>#`, or on `<key>#<nsp>#<room>#` when it goes
//!   to exactly one room. The packet is the Socket.IO packet object as the
//!   Node parser sees it, `{type, data, nsp}` (with `id` when acknowledged),
//!   in the format of `socket.io-msgpack-parser`: an event is type 2 even
//!   when it carries binary data, and a Buffer is a msgpack `bin`.
//! - Requests go to `<key>-request#<nsp>#`, responses to
//!   `<key>-response#<nsp>#`; both are JSON objects, except the requests
//!   and responses of broadcasts with acknowledgements, which are msgpack
//!   maps. A message that starts with `{` is JSON.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use socketio_packet::{Packet, PacketKind, Payload, msgpack};
use socketio_tokio::socketio_proto::BroadcastOptions;
use socketio_tokio::{RemoteSocket, Str};

/// The request types, as numbered by the reference.
pub mod request_type {
    /// The ids of the sockets in some rooms.
    pub const SOCKETS: u8 = 0;
    /// Every room with a member.
    pub const ALL_ROOMS: u8 = 1;
    /// Sockets join rooms.
    pub const REMOTE_JOIN: u8 = 2;
    /// Sockets leave rooms.
    pub const REMOTE_LEAVE: u8 = 3;
    /// Sockets are disconnected.
    pub const REMOTE_DISCONNECT: u8 = 4;
    /// Descriptions of sockets.
    pub const REMOTE_FETCH: u8 = 5;
    /// An event for the servers themselves.
    pub const SERVER_SIDE_EMIT: u8 = 6;
    /// A broadcast whose acknowledgements are collected.
    pub const BROADCAST: u8 = 7;
    /// How many clients a node sent such a broadcast to.
    pub const BROADCAST_CLIENT_COUNT: u8 = 8;
    /// One client's acknowledgement of such a broadcast.
    pub const BROADCAST_ACK: u8 = 9;
}

/// A message on a channel is not what the adapter's protocol says.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not msgpack, or not the expected shape.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// The packet inside a broadcast is not a valid Socket.IO packet.
    #[error("invalid packet: {0}")]
    Packet(#[from] socketio_packet::DecodeError),
    /// A request or response is not valid JSON of the expected shape.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The channel of a broadcast to `nsp` with `opts`.
pub fn broadcast_channel(key: &str, nsp: &str, opts: &BroadcastOptions) -> String {
    match opts.rooms.as_slice() {
        [room] => format!("{key}#{nsp}#{room}#"),
        _ => format!("{key}#{nsp}#"),
    }
}

/// The request channel of `nsp` (its subscribers are the cluster's nodes).
pub fn request_channel(key: &str, nsp: &str) -> String {
    format!("{key}-request#{nsp}#")
}

/// The common response channel of `nsp`.
pub fn response_channel(key: &str, nsp: &str) -> String {
    format!("{key}-response#{nsp}#")
}

/// Encodes a broadcast: `[uid, packet, {rooms, except, flags}]`.
pub fn encode_broadcast(uid: &str, packet: &Packet, opts: &BroadcastOptions) -> Bytes {
    let packet = msgpack::encode(packet);
    let mut out = Vec::with_capacity(packet.len() + 64);
    out.push(0x93);
    write_str(&mut out, uid);
    out.extend_from_slice(&packet);
    write_opts(&mut out, opts, 0);
    Bytes::from(out)
}

/// Writes broadcast options as the reference adapter does:
/// `{rooms, except, flags}`, the flags holding `volatile` when set,
/// `compress: false` when compression is turned off, and then `extra_flags`
/// more entries, which the caller writes next.
fn write_opts(out: &mut Vec<u8>, opts: &BroadcastOptions, extra_flags: u8) {
    out.push(0x83);
    write_str(out, "rooms");
    write_strs(out, &opts.rooms);
    write_str(out, "except");
    write_strs(out, &opts.except);
    write_str(out, "flags");
    out.push(0x80 | (u8::from(opts.volatile) + u8::from(!opts.compress) + extra_flags));
    if opts.volatile {
        write_str(out, "volatile");
        out.push(0xc3);
    }
    if !opts.compress {
        write_str(out, "compress");
        out.push(0xc2);
    }
}

/// A broadcast another node published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastMessage {
    /// The publishing node's uid (`"emitter"` for `@socket.io/redis-emitter`).
    pub uid: String,
    /// The packet; its `nsp` says where.
    pub packet: Packet,
    /// Who receives it.
    pub opts: BroadcastOptions,
}

/// Decodes a broadcast. Keys of the options map may come in any order
/// (the emitter writes `flags` before `except`); unknown flags are ignored.
///
/// # Errors
///
/// [`WireError`] when the message is not such an array or its packet is invalid.
pub fn decode_broadcast(msg: &Bytes) -> Result<BroadcastMessage, WireError> {
    let mut rd: &[u8] = msg;
    let len =
        rmp::decode::read_array_len(&mut rd).map_err(|_| WireError::Malformed("not an array"))?;
    if len != 3 {
        return Err(WireError::Malformed("not an array of 3"));
    }
    let uid = match read_value(&mut rd)? {
        rmpv::Value::String(s) => s.into_str().ok_or(WireError::Malformed("uid"))?,
        _ => return Err(WireError::Malformed("uid is not a string")),
    };
    let start = msg.len() - rd.len();
    read_value(&mut rd)?;
    let end = msg.len() - rd.len();
    let opts = read_value(&mut rd)?;
    if !rd.is_empty() {
        return Err(WireError::Malformed("trailing bytes"));
    }
    let packet = msgpack::decode(msg.slice(start..end))?;
    let (opts, _) = read_opts(opts)?;
    Ok(BroadcastMessage {
        uid: uid.to_owned(),
        packet,
        opts,
    })
}

/// Broadcast options as the Node adapter writes them:
/// `{rooms, except, flags: {volatile, timeout, ...}}`; the timeout in ms.
fn read_opts(value: rmpv::Value) -> Result<(BroadcastOptions, Option<Duration>), WireError> {
    let rmpv::Value::Map(entries) = value else {
        return Err(WireError::Malformed("options are not a map"));
    };
    let mut opts = BroadcastOptions::default();
    let mut timeout = None;
    for (k, v) in entries {
        match k.as_str() {
            Some("rooms") => opts.rooms = rooms(v)?,
            Some("except") => opts.except = rooms(v)?,
            Some("flags") => {
                let rmpv::Value::Map(flags) = v else { continue };
                for (k, v) in flags {
                    match k.as_str() {
                        Some("volatile") => opts.volatile = v.as_bool().unwrap_or(false),
                        Some("compress") => opts.compress = v.as_bool().unwrap_or(true),
                        Some("timeout") => {
                            timeout = v
                                .as_u64()
                                .or_else(|| v.as_f64().map(|f| f.max(0.0) as u64))
                                .map(Duration::from_millis);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok((opts, timeout))
}

fn read_value(rd: &mut &[u8]) -> Result<rmpv::Value, WireError> {
    rmpv::decode::read_value(rd).map_err(|_| WireError::Malformed("invalid msgpack"))
}

/// Room names: strings, or numbers (a Node room may be one).
fn rooms(v: rmpv::Value) -> Result<Vec<Str>, WireError> {
    match v {
        rmpv::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                rmpv::Value::String(s) => s
                    .into_str()
                    .map(Str::from)
                    .ok_or(WireError::Malformed("room is not UTF-8")),
                rmpv::Value::Integer(n) => Ok(Str::from(n.to_string())),
                _ => Err(WireError::Malformed("room is not a string")),
            })
            .collect(),
        rmpv::Value::Nil => Ok(Vec::new()),
        _ => Err(WireError::Malformed("rooms are not an array")),
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n < 0x100 {
        out.push(0xd9);
        out.push(n as u8);
    } else if n < 0x10000 {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn write_strs(out: &mut Vec<u8>, items: &[Str]) {
    let n = items.len();
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if n < 0x10000 {
        out.push(0xdc);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    for item in items {
        write_str(out, item);
    }
}

/// The `opts` of a request: which sockets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestOpts {
    /// Only sockets in one of these rooms; every socket when empty.
    #[serde(default, deserialize_with = "de_rooms")]
    pub rooms: Vec<Str>,
    /// Not the sockets in any of these rooms.
    #[serde(default, deserialize_with = "de_rooms")]
    pub except: Vec<Str>,
}

impl RequestOpts {
    /// From the core's options.
    pub fn from_options(opts: &BroadcastOptions) -> Self {
        RequestOpts {
            rooms: opts.rooms.clone(),
            except: opts.except.clone(),
        }
    }

    /// To the core's options (never local: it came from the cluster).
    pub fn into_options(self) -> BroadcastOptions {
        BroadcastOptions {
            rooms: self.rooms,
            except: self.except,
            ..BroadcastOptions::default()
        }
    }
}

fn de_rooms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Str>, D::Error> {
    let items: Option<Vec<serde_json::Value>> = Option::deserialize(d)?;
    items
        .unwrap_or_default()
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(Str::from(s)),
            serde_json::Value::Number(n) => Ok(Str::from(n.to_string())),
            _ => Err(serde::de::Error::custom("a room is a string or a number")),
        })
        .collect()
}

/// A request, as every request type writes it (absent fields are `None`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The requesting node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The request id, for requests that are answered.
    #[serde(rename = "requestId", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The type (see [`request_type`]).
    #[serde(rename = "type")]
    pub kind: u8,
    /// Which sockets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opts: Option<RequestOpts>,
    /// The rooms to join or leave (REMOTE_JOIN, REMOTE_LEAVE), or the rooms
    /// whose sockets are asked for (SOCKETS).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_rooms"
    )]
    pub rooms: Option<Vec<Str>>,
    /// One socket (the older form of REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// One room (the older form of REMOTE_JOIN, REMOTE_LEAVE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Close whole connections (REMOTE_DISCONNECT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<bool>,
    /// The arguments of SERVER_SIDE_EMIT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

fn de_opt_rooms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<Str>>, D::Error> {
    de_rooms(d).map(Some)
}

/// Decodes a request: JSON when it starts with `{`, else a msgpack map
/// (only broadcasts with acknowledgements are sent so), of which the type
/// is read.
///
/// # Errors
///
/// [`WireError`] when it is neither.
pub fn decode_request(msg: &[u8]) -> Result<Request, WireError> {
    if msg.first() == Some(&b'{') {
        return Ok(serde_json::from_slice(msg)?);
    }
    let mut rd = msg;
    let rmpv::Value::Map(entries) = read_value(&mut rd)? else {
        return Err(WireError::Malformed("request is not a map"));
    };
    let mut request = Request::default();
    let mut typed = false;
    for (k, v) in entries {
        match k.as_str() {
            Some("type") => {
                request.kind = v
                    .as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or(WireError::Malformed("type"))?;
                typed = true;
            }
            Some("uid") => request.uid = v.as_str().map(str::to_owned),
            Some("requestId") => request.request_id = v.as_str().map(str::to_owned),
            _ => {}
        }
    }
    if !typed {
        return Err(WireError::Malformed("request without a type"));
    }
    Ok(request)
}

/// A response to a request (absent fields are `None`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The type, in responses to broadcasts with acknowledgements and
    /// server-side emits.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<u8>,
    /// The request answered.
    #[serde(rename = "requestId", default)]
    pub request_id: Option<String>,
    /// Socket ids (SOCKETS) or descriptions (REMOTE_FETCH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets: Option<serde_json::Value>,
    /// Rooms (ALL_ROOMS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<serde_json::Value>>,
    /// A node's answer to SERVER_SIDE_EMIT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// How many clients a node sent a broadcast to (BROADCAST_CLIENT_COUNT).
    #[serde(
        rename = "clientCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_count: Option<usize>,
}

/// A node's answer to a server-side emit: `{"type":6,"requestId","data"}`.
pub fn server_side_response(request_id: &str, data: serde_json::Value) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(rename = "type")]
        kind: u8,
        #[serde(rename = "requestId")]
        request_id: &'a str,
        data: serde_json::Value,
    }
    serde_json::to_string(&Out {
        kind: request_type::SERVER_SIDE_EMIT,
        request_id,
        data,
    })
    .unwrap_or_default()
}

/// The answer to SOCKETS: `{"requestId", "sockets": [ids]}`.
pub fn socket_ids_response(request_id: &str, ids: &[Str]) -> String {
    serde_json::json!({ "requestId": request_id, "sockets": ids }).to_string()
}

/// The answer to ALL_ROOMS: `{"requestId", "rooms": [...]}`.
pub fn rooms_response(request_id: &str, rooms: &[Str]) -> String {
    serde_json::json!({ "requestId": request_id, "rooms": rooms }).to_string()
}

/// The answer to REMOTE_FETCH: `{"requestId", "sockets": [{id, handshake, rooms, data}]}`.
pub fn fetch_response(request_id: &str, sockets: &[RemoteSocket]) -> String {
    serde_json::json!({ "requestId": request_id, "sockets": sockets }).to_string()
}

/// The answer to the older, one-socket forms of REMOTE_JOIN, REMOTE_LEAVE
/// and REMOTE_DISCONNECT: `{"requestId"}`.
pub fn done_response(request_id: &str) -> String {
    serde_json::json!({ "requestId": request_id }).to_string()
}

/// Decodes a response (JSON, or a msgpack map of which the type and request
/// id are read).
///
/// # Errors
///
/// [`WireError`] when it is neither.
pub fn decode_response(msg: &[u8]) -> Result<Response, WireError> {
    if msg.first() == Some(&b'{') {
        return Ok(serde_json::from_slice(msg)?);
    }
    let request = decode_request(msg)?;
    Ok(Response {
        kind: Some(request.kind),
        request_id: request.request_id,
        ..Response::default()
    })
}

/// A map entry: its key (when a string) and the byte range of its value.
type Entry = (Option<String>, Range<usize>);

/// The entries of a msgpack map.
fn map_entries(msg: &[u8]) -> Result<Vec<Entry>, WireError> {
    let mut rd = msg;
    let n = rmp::decode::read_map_len(&mut rd).map_err(|_| WireError::Malformed("not a map"))?;
    let mut out = Vec::new();
    for _ in 0..n {
        let key = read_value(&mut rd)?;
        let start = msg.len() - rd.len();
        read_value(&mut rd)?;
        let end = msg.len() - rd.len();
        out.push((key.as_str().map(str::to_owned), start..end));
    }
    if !rd.is_empty() {
        return Err(WireError::Malformed("trailing bytes"));
    }
    Ok(out)
}

/// A broadcast whose acknowledgements are collected (request type 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastRequest {
    /// The requesting node.
    pub uid: String,
    /// Where the counts and acknowledgements go back to.
    pub request_id: String,
    /// The event.
    pub packet: Packet,
    /// Who receives it.
    pub opts: BroadcastOptions,
    /// How long acknowledgements are awaited (`flags.timeout`).
    pub timeout: Option<Duration>,
}

/// Encodes a broadcast with acknowledgements:
/// `{uid, requestId, type: 7, packet, opts: {rooms, except, flags: {timeout}}}`.
pub fn encode_broadcast_request(
    uid: &str,
    request_id: &str,
    packet: &Packet,
    opts: &BroadcastOptions,
    timeout: Duration,
) -> Bytes {
    let packet = msgpack::encode(packet);
    let mut out = Vec::with_capacity(packet.len() + 96);
    out.push(0x85);
    write_str(&mut out, "uid");
    write_str(&mut out, uid);
    write_str(&mut out, "requestId");
    write_str(&mut out, request_id);
    write_str(&mut out, "type");
    out.push(request_type::BROADCAST);
    write_str(&mut out, "packet");
    out.extend_from_slice(&packet);
    write_str(&mut out, "opts");
    write_opts(&mut out, opts, 1);
    write_str(&mut out, "timeout");
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    out.push(0xce);
    out.extend_from_slice(&ms.to_be_bytes());
    Bytes::from(out)
}

/// Decodes a broadcast with acknowledgements.
///
/// # Errors
///
/// [`WireError`] when it is not such a map or its packet is invalid.
pub fn decode_broadcast_request(msg: &Bytes) -> Result<BroadcastRequest, WireError> {
    let mut uid = None;
    let mut request_id = None;
    let mut packet = None;
    let mut opts = BroadcastOptions::default();
    let mut timeout = None;
    for (key, range) in map_entries(msg)? {
        let mut value = &msg[range.clone()];
        match key.as_deref() {
            Some("uid") => uid = read_value(&mut value)?.as_str().map(str::to_owned),
            Some("requestId") => request_id = read_value(&mut value)?.as_str().map(str::to_owned),
            Some("packet") => packet = Some(msgpack::decode(msg.slice(range))?),
            Some("opts") => (opts, timeout) = read_opts(read_value(&mut value)?)?,
            _ => {}
        }
    }
    Ok(BroadcastRequest {
        uid: uid.ok_or(WireError::Malformed("no uid"))?,
        request_id: request_id.ok_or(WireError::Malformed("no requestId"))?,
        packet: packet.ok_or(WireError::Malformed("no packet"))?,
        opts,
        timeout,
    })
}

/// How many clients a node sent a broadcast with acknowledgements to:
/// `{"type":8,"requestId","clientCount"}`.
pub fn client_count_response(request_id: &str, count: usize) -> String {
    serde_json::json!({
        "type": request_type::BROADCAST_CLIENT_COUNT,
        "requestId": request_id,
        "clientCount": count,
    })
    .to_string()
}

/// One client's acknowledgement of a broadcast: `{type: 9, requestId,
/// packet: <its first argument>}` in msgpack (binary values as `bin`).
pub fn ack_response(request_id: &str, ack: &Payload) -> Bytes {
    let packet = Packet {
        nsp: Str::from("/"),
        kind: PacketKind::Ack {
            data: ack.clone(),
            id: 0,
        },
    };
    let encoded = msgpack::encode(&packet);
    let first = map_entries(&encoded).ok().and_then(|entries| {
        let (_, range) = entries
            .into_iter()
            .find(|(k, _)| k.as_deref() == Some("data"))?;
        let mut rd = &encoded[range.clone()];
        let n = rmp::decode::read_array_len(&mut rd).ok()?;
        if n == 0 {
            return None;
        }
        let start = range.end - rd.len();
        read_value(&mut rd).ok()?;
        Some(start..range.end - rd.len())
    });
    let mut out = Vec::with_capacity(encoded.len() + 32);
    out.push(0x83);
    write_str(&mut out, "type");
    out.push(request_type::BROADCAST_ACK);
    write_str(&mut out, "requestId");
    write_str(&mut out, request_id);
    write_str(&mut out, "packet");
    match first {
        Some(range) => out.extend_from_slice(&encoded[range]),
        None => out.push(0xc0),
    }
    Bytes::from(out)
}

/// A msgpack response: its type, request id, and for BROADCAST_ACK the
/// acknowledgement as a payload of one argument.
#[derive(Debug, Clone)]
pub struct MsgpackResponse {
    /// The type.
    pub kind: u8,
    /// The request answered.
    pub request_id: String,
    /// The acknowledgement (BROADCAST_ACK).
    pub ack: Option<Payload>,
}

/// Decodes a msgpack response.
///
/// # Errors
///
/// [`WireError`] when it is not such a map.
pub fn decode_msgpack_response(msg: &[u8]) -> Result<MsgpackResponse, WireError> {
    let mut kind = None;
    let mut request_id = None;
    let mut ack = None;
    for (key, range) in map_entries(msg)? {
        let mut value = &msg[range.clone()];
        match key.as_deref() {
            Some("type") => kind = read_value(&mut value)?.as_u64(),
            Some("requestId") => request_id = read_value(&mut value)?.as_str().map(str::to_owned),
            Some("packet") => {
                // `{type: 3, id: 0, data: [<value>], nsp: "/"}`: an ack packet
                // whose payload is the one argument.
                let mut wrapped = Vec::with_capacity(range.len() + 24);
                wrapped.push(0x84);
                write_str(&mut wrapped, "type");
                wrapped.push(3);
                write_str(&mut wrapped, "id");
                wrapped.push(0);
                write_str(&mut wrapped, "data");
                wrapped.push(0x91);
                wrapped.extend_from_slice(value);
                write_str(&mut wrapped, "nsp");
                write_str(&mut wrapped, "/");
                let packet = msgpack::decode(Bytes::from(wrapped))?;
                if let PacketKind::Ack { data, .. } = packet.kind {
                    ack = Some(data);
                }
            }
            _ => {}
        }
    }
    Ok(MsgpackResponse {
        kind: kind
            .and_then(|k| u8::try_from(k).ok())
            .ok_or(WireError::Malformed("response without a type"))?,
        request_id: request_id.ok_or(WireError::Malformed("response without a requestId"))?,
        ack,
    })
}
