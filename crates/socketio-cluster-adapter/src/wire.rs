//! The messages of `socket.io-adapter`'s `ClusterAdapter` (2.5), byte for
//! byte.
//!
//! A message is `{type, data, uid, nsp}`: JSON, or msgpack (as `notepack.io`
//! writes it) when its data holds binary values, which only broadcasts,
//! their acknowledgements, fetched sockets and server-side emits may. A
//! message that starts with `{` is JSON. The packet of a broadcast is the
//! Socket.IO packet object without its namespace, `{type: 2, data}` (the
//! message's `nsp` says where).

use std::time::Duration;

use bytes::Bytes;
use socketio_packet::{Packet, PacketKind, Payload, msgpack};
use socketio_tokio::socketio_proto::BroadcastOptions;
use socketio_tokio::{RemoteSocket, Str};

/// The message types, as numbered by the reference.
pub mod message_type {
    /// A node announces itself; the others answer with a heartbeat.
    pub const INITIAL_HEARTBEAT: u8 = 1;
    /// A node is alive.
    pub const HEARTBEAT: u8 = 2;
    /// A broadcast (with a request id: its acknowledgements are collected).
    pub const BROADCAST: u8 = 3;
    /// Sockets join rooms.
    pub const SOCKETS_JOIN: u8 = 4;
    /// Sockets leave rooms.
    pub const SOCKETS_LEAVE: u8 = 5;
    /// Sockets are disconnected.
    pub const DISCONNECT_SOCKETS: u8 = 6;
    /// Descriptions of sockets are asked for.
    pub const FETCH_SOCKETS: u8 = 7;
    /// A node's sockets, described.
    pub const FETCH_SOCKETS_RESPONSE: u8 = 8;
    /// An event for the servers themselves.
    pub const SERVER_SIDE_EMIT: u8 = 9;
    /// A node's answer to such an event.
    pub const SERVER_SIDE_EMIT_RESPONSE: u8 = 10;
    /// How many clients a node sent a broadcast with acknowledgements to.
    pub const BROADCAST_CLIENT_COUNT: u8 = 11;
    /// One client's acknowledgement of such a broadcast.
    pub const BROADCAST_ACK: u8 = 12;
    /// A node leaves the cluster.
    pub const ADAPTER_CLOSE: u8 = 13;
}

use message_type as t;

/// A message is not what the protocol says.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not JSON or msgpack, or not the expected shape.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// The packet inside a broadcast is not a valid Socket.IO packet.
    #[error("invalid packet: {0}")]
    Packet(#[from] socketio_packet::DecodeError),
    /// Not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One message between the nodes of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The sending node (`"emitter"` for the emitters).
    pub uid: String,
    /// The namespace it is about.
    pub nsp: String,
    /// What it says.
    pub body: Body,
}

/// What a [`Message`] says, by type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Body {
    /// A node announces itself (type 1).
    InitialHeartbeat,
    /// A node is alive (type 2).
    Heartbeat,
    /// A broadcast (type 3).
    Broadcast {
        /// The event; its namespace is the message's.
        packet: Packet,
        /// Who receives it.
        opts: BroadcastOptions,
        /// Set when the sender collects the acknowledgements.
        request_id: Option<String>,
        /// How long the acknowledgements are awaited (`flags.timeout`).
        timeout: Option<Duration>,
    },
    /// Sockets join rooms (type 4).
    SocketsJoin {
        /// Which sockets.
        opts: BroadcastOptions,
        /// The rooms.
        rooms: Vec<Str>,
    },
    /// Sockets leave rooms (type 5).
    SocketsLeave {
        /// Which sockets.
        opts: BroadcastOptions,
        /// The rooms.
        rooms: Vec<Str>,
    },
    /// Sockets are disconnected (type 6).
    DisconnectSockets {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Close their whole connections.
        close: bool,
    },
    /// Descriptions of sockets are asked for (type 7).
    FetchSockets {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Where the answers go back to.
        request_id: String,
    },
    /// A node's sockets (type 8).
    FetchSocketsResponse {
        /// The request answered.
        request_id: String,
        /// The sockets.
        sockets: Vec<RemoteSocket>,
    },
    /// An event for the servers themselves (type 9): its name and arguments.
    ServerSideEmit {
        /// The event name and its arguments.
        data: Vec<serde_json::Value>,
        /// Set when the sender awaits one answer per node.
        request_id: Option<String>,
    },
    /// A node's answer to a server-side emit (type 10).
    ServerSideEmitResponse {
        /// The request answered.
        request_id: String,
        /// The answer (one value).
        data: serde_json::Value,
    },
    /// How many clients a node sent a broadcast with acknowledgements to (type 11).
    BroadcastClientCount {
        /// The request answered.
        request_id: String,
        /// How many clients.
        count: usize,
    },
    /// One client's acknowledgement (type 12): a payload of one argument.
    BroadcastAck {
        /// The request answered.
        request_id: String,
        /// The acknowledgement's first argument, as a payload `[value]`.
        ack: Payload,
    },
    /// A node leaves the cluster (type 13).
    AdapterClose,
    /// A type this crate does not know.
    Unknown(u64),
}

impl Body {
    /// The message type.
    pub fn kind(&self) -> u64 {
        u64::from(match self {
            Body::InitialHeartbeat => t::INITIAL_HEARTBEAT,
            Body::Heartbeat => t::HEARTBEAT,
            Body::Broadcast { .. } => t::BROADCAST,
            Body::SocketsJoin { .. } => t::SOCKETS_JOIN,
            Body::SocketsLeave { .. } => t::SOCKETS_LEAVE,
            Body::DisconnectSockets { .. } => t::DISCONNECT_SOCKETS,
            Body::FetchSockets { .. } => t::FETCH_SOCKETS,
            Body::FetchSocketsResponse { .. } => t::FETCH_SOCKETS_RESPONSE,
            Body::ServerSideEmit { .. } => t::SERVER_SIDE_EMIT,
            Body::ServerSideEmitResponse { .. } => t::SERVER_SIDE_EMIT_RESPONSE,
            Body::BroadcastClientCount { .. } => t::BROADCAST_CLIENT_COUNT,
            Body::BroadcastAck { .. } => t::BROADCAST_ACK,
            Body::AdapterClose => t::ADAPTER_CLOSE,
            Body::Unknown(kind) => return *kind,
        })
    }

    /// Whether this is an answer to a request of one node (types 8, 10, 11, 12).
    pub fn is_response(&self) -> bool {
        matches!(
            self,
            Body::FetchSocketsResponse { .. }
                | Body::ServerSideEmitResponse { .. }
                | Body::BroadcastClientCount { .. }
                | Body::BroadcastAck { .. }
        )
    }
}

// ----- encoding -----

fn js(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn js_strs(items: &[Str]) -> String {
    let items: Vec<String> = items.iter().map(|s| js(s)).collect();
    format!("[{}]", items.join(","))
}

/// `{rooms, except, flags}` with the flags the reference writes: `volatile`,
/// `compress: false`, `timeout`, in that order.
fn js_opts(opts: &BroadcastOptions, timeout: Option<Duration>) -> String {
    let mut flags = Vec::new();
    if opts.volatile {
        flags.push("\"volatile\":true".to_owned());
    }
    if !opts.compress {
        flags.push("\"compress\":false".to_owned());
    }
    if let Some(timeout) = timeout {
        flags.push(format!("\"timeout\":{}", timeout.as_millis()));
    }
    format!(
        "{{\"rooms\":{},\"except\":{},\"flags\":{{{}}}}}",
        js_strs(&opts.rooms),
        js_strs(&opts.except),
        flags.join(",")
    )
}

/// The JSON text of a payload (msgpack data converted).
fn payload_json(payload: &Payload) -> String {
    if payload.is_msgpack() {
        payload.to_json().json().to_string()
    } else {
        payload.json().to_string()
    }
}

/// The first element of a JSON payload `[a, ...]`, or `null`.
fn first_json(payload: &Payload) -> String {
    let text = payload_json(payload);
    match serde_json::from_str::<Vec<serde_json::Value>>(&text) {
        Ok(items) => items
            .into_iter()
            .next()
            .unwrap_or(serde_json::Value::Null)
            .to_string(),
        Err(_) => "null".to_owned(),
    }
}

/// Encodes a message: msgpack when it carries binary values (as the
/// reference decides), JSON otherwise, with the reference's key order.
pub fn encode(message: &Message) -> Bytes {
    let kind = message.body.kind();
    let tail = format!(
        ",\"uid\":{},\"nsp\":{}}}",
        js(&message.uid),
        js(&message.nsp)
    );
    let data = match &message.body {
        Body::InitialHeartbeat | Body::Heartbeat | Body::AdapterClose | Body::Unknown(_) => {
            return Bytes::from(format!("{{\"type\":{kind}{tail}"));
        }
        Body::Broadcast {
            packet,
            opts,
            request_id,
            timeout,
        } => {
            let payload = match packet.payload() {
                Some(p) if p.is_binary() => return encode_binary(message, packet, None),
                Some(p) => payload_json(p),
                None => "[]".to_owned(),
            };
            let request = request_id
                .as_ref()
                .map(|id| format!(",\"requestId\":{}", js(id)))
                .unwrap_or_default();
            format!(
                "{{\"packet\":{{\"type\":2,\"data\":{payload}}}{request},\"opts\":{}}}",
                js_opts(opts, *timeout)
            )
        }
        Body::SocketsJoin { opts, rooms } | Body::SocketsLeave { opts, rooms } => format!(
            "{{\"opts\":{},\"rooms\":{}}}",
            js_opts(opts, None),
            js_strs(rooms)
        ),
        Body::DisconnectSockets { opts, close } => {
            format!("{{\"opts\":{},\"close\":{close}}}", js_opts(opts, None))
        }
        Body::FetchSockets { opts, request_id } => format!(
            "{{\"opts\":{},\"requestId\":{}}}",
            js_opts(opts, None),
            js(request_id)
        ),
        Body::FetchSocketsResponse {
            request_id,
            sockets,
        } => format!(
            "{{\"requestId\":{},\"sockets\":{}}}",
            js(request_id),
            serde_json::to_string(sockets).unwrap_or_else(|_| "[]".to_owned())
        ),
        Body::ServerSideEmit { data, request_id } => {
            let packet = serde_json::Value::Array(data.clone()).to_string();
            match request_id {
                Some(id) => format!("{{\"requestId\":{},\"packet\":{packet}}}", js(id)),
                None => format!("{{\"packet\":{packet}}}"),
            }
        }
        Body::ServerSideEmitResponse { request_id, data } => {
            format!("{{\"requestId\":{},\"packet\":{data}}}", js(request_id))
        }
        Body::BroadcastClientCount { request_id, count } => format!(
            "{{\"requestId\":{},\"clientCount\":{count}}}",
            js(request_id)
        ),
        Body::BroadcastAck { request_id, ack } => {
            if ack.is_binary() {
                let packet = Packet {
                    nsp: Str::from("/"),
                    kind: PacketKind::Ack {
                        data: ack.clone(),
                        id: 0,
                    },
                };
                return encode_binary(message, &packet, Some(request_id));
            }
            format!(
                "{{\"requestId\":{},\"packet\":{}}}",
                js(request_id),
                first_json(ack)
            )
        }
    };
    Bytes::from(format!("{{\"type\":{kind},\"data\":{data}{tail}"))
}

/// The msgpack form of a broadcast or an acknowledgement holding binary
/// values: `{type, data: {packet, [requestId,] opts}, uid, nsp}` for a
/// broadcast, `{type, data: {requestId, packet: <first argument>}, uid, nsp}`
/// for an acknowledgement (`ack_of` set).
fn encode_binary(message: &Message, packet: &Packet, ack_of: Option<&String>) -> Bytes {
    let encoded = msgpack::encode(packet);
    let data_range = map_entries(&encoded).ok().and_then(|entries| {
        entries
            .into_iter()
            .find(|(k, _)| k.as_deref() == Some("data"))
            .map(|(_, r)| r)
    });
    let data = data_range.map_or(&[0x90u8][..], |r| &encoded[r]);
    let mut out = Vec::with_capacity(encoded.len() + 128);
    out.push(0x84);
    write_str(&mut out, "type");
    out.push(u8::try_from(message.body.kind()).unwrap_or(0));
    write_str(&mut out, "data");
    match (&message.body, ack_of) {
        (_, Some(request_id)) => {
            out.push(0x82);
            write_str(&mut out, "requestId");
            write_str(&mut out, request_id);
            write_str(&mut out, "packet");
            // The first element of the data array.
            let mut rd = data;
            match rmp::decode::read_array_len(&mut rd) {
                Ok(n) if n > 0 => {
                    let start = data.len() - rd.len();
                    if read_value(&mut rd).is_ok() {
                        let end = data.len() - rd.len();
                        out.extend_from_slice(&data[start..end]);
                    } else {
                        out.push(0xc0);
                    }
                }
                _ => out.push(0xc0),
            }
        }
        (
            Body::Broadcast {
                opts,
                request_id,
                timeout,
                ..
            },
            None,
        ) => {
            out.push(if request_id.is_some() { 0x83 } else { 0x82 });
            write_str(&mut out, "packet");
            out.push(0x82);
            write_str(&mut out, "type");
            out.push(2);
            write_str(&mut out, "data");
            out.extend_from_slice(data);
            if let Some(id) = request_id {
                write_str(&mut out, "requestId");
                write_str(&mut out, id);
            }
            write_str(&mut out, "opts");
            write_opts(&mut out, opts, *timeout);
        }
        _ => out.push(0xc0),
    }
    write_str(&mut out, "uid");
    write_str(&mut out, &message.uid);
    write_str(&mut out, "nsp");
    write_str(&mut out, &message.nsp);
    Bytes::from(out)
}

fn write_opts(out: &mut Vec<u8>, opts: &BroadcastOptions, timeout: Option<Duration>) {
    out.push(0x83);
    write_str(out, "rooms");
    write_strs(out, &opts.rooms);
    write_str(out, "except");
    write_strs(out, &opts.except);
    write_str(out, "flags");
    let n = u8::from(opts.volatile) + u8::from(!opts.compress) + u8::from(timeout.is_some());
    out.push(0x80 | n);
    if opts.volatile {
        write_str(out, "volatile");
        out.push(0xc3);
    }
    if !opts.compress {
        write_str(out, "compress");
        out.push(0xc2);
    }
    if let Some(timeout) = timeout {
        write_str(out, "timeout");
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let _ = rmp::encode::write_uint(out, ms);
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    let _ = rmp::encode::write_str(out, s);
}

fn write_strs(out: &mut Vec<u8>, items: &[Str]) {
    let _ = rmp::encode::write_array_len(out, u32::try_from(items.len()).unwrap_or(u32::MAX));
    for item in items {
        write_str(out, item);
    }
}

fn read_value(rd: &mut &[u8]) -> Result<rmpv::Value, WireError> {
    rmpv::decode::read_value(rd).map_err(|_| WireError::Malformed("invalid msgpack"))
}

/// A map entry: its key (when a string) and the byte range of its value.
type Entry = (Option<String>, std::ops::Range<usize>);

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
    Ok(out)
}

// ----- decoding -----

/// Decodes a message, JSON or msgpack.
///
/// # Errors
///
/// [`WireError`] when it is neither, or not of the protocol's shape.
pub fn decode(msg: &[u8]) -> Result<Message, WireError> {
    decode_in(msg, None)
}

/// Decodes a message that may lack its `nsp` (those of
/// `@socket.io/postgres-emitter` do), taking `nsp` then: the namespace of
/// the channel it came on.
///
/// # Errors
///
/// [`WireError`] when it is neither JSON nor msgpack, or not of the
/// protocol's shape.
pub fn decode_in(msg: &[u8], nsp: Option<&str>) -> Result<Message, WireError> {
    let value = if msg.first() == Some(&b'{') {
        let json: serde_json::Value = serde_json::from_slice(msg)?;
        from_json(&json)
    } else {
        let mut rd = msg;
        let value = read_value(&mut rd)?;
        if !rd.is_empty() {
            return Err(WireError::Malformed("trailing bytes"));
        }
        value
    };
    decode_value(&value, nsp)
}

fn get<'a>(map: &'a rmpv::Value, key: &str) -> Option<&'a rmpv::Value> {
    match map {
        rmpv::Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn get_str(map: &rmpv::Value, key: &str) -> Option<String> {
    get(map, key).and_then(|v| v.as_str()).map(str::to_owned)
}

fn request_id(data: &rmpv::Value) -> Result<String, WireError> {
    get_str(data, "requestId").ok_or(WireError::Malformed("no requestId"))
}

/// Rooms: an array of strings or numbers (a lone string counts as one).
fn rooms(v: Option<&rmpv::Value>) -> Vec<Str> {
    let one = |v: &rmpv::Value| match v {
        rmpv::Value::String(s) => s.as_str().map(Str::from),
        rmpv::Value::Integer(n) => Some(Str::from(n.to_string())),
        rmpv::Value::F64(f) => Some(Str::from(f.to_string())),
        _ => None,
    };
    match v {
        Some(rmpv::Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// `{rooms, except, flags}`, and the flags' timeout.
fn opts(v: Option<&rmpv::Value>) -> (BroadcastOptions, Option<Duration>) {
    let Some(v) = v else {
        return (BroadcastOptions::default(), None);
    };
    let flags = get(v, "flags");
    let flag = |k: &str| flags.and_then(|f| get(f, k));
    let opts = BroadcastOptions {
        rooms: rooms(get(v, "rooms")),
        except: rooms(get(v, "except")),
        volatile: flag("volatile").and_then(rmpv::Value::as_bool) == Some(true),
        compress: flag("compress").and_then(rmpv::Value::as_bool) != Some(false),
        ..BroadcastOptions::default()
    };
    let timeout = flag("timeout")
        .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)))
        .map(Duration::from_millis);
    (opts, timeout)
}

fn packet(nsp: &str, v: &rmpv::Value) -> Result<Packet, WireError> {
    let rmpv::Value::Map(entries) = v else {
        return Err(WireError::Malformed("packet is not a map"));
    };
    let mut entries: Vec<(rmpv::Value, rmpv::Value)> = entries
        .iter()
        .filter(|(k, _)| k.as_str() != Some("nsp"))
        .cloned()
        .collect();
    entries.push((rmpv::Value::from("nsp"), rmpv::Value::from(nsp)));
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &rmpv::Value::Map(entries))
        .map_err(|_| WireError::Malformed("packet"))?;
    let packet = msgpack::decode(Bytes::from(out))?;
    match packet.kind {
        PacketKind::Event { .. } => Ok(packet),
        _ => Err(WireError::Malformed("the packet is not an event")),
    }
}

/// A payload of one argument `[value]` (binary values kept).
fn ack_payload(v: &rmpv::Value) -> Result<Payload, WireError> {
    let wrapped = rmpv::Value::Map(vec![
        (rmpv::Value::from("type"), rmpv::Value::from(3)),
        (rmpv::Value::from("id"), rmpv::Value::from(0)),
        (
            rmpv::Value::from("data"),
            rmpv::Value::Array(vec![v.clone()]),
        ),
        (rmpv::Value::from("nsp"), rmpv::Value::from("/")),
    ]);
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &wrapped).map_err(|_| WireError::Malformed("ack"))?;
    match msgpack::decode(Bytes::from(out))?.kind {
        PacketKind::Ack { data, .. } => Ok(data),
        _ => Err(WireError::Malformed("ack")),
    }
}

fn decode_value(v: &rmpv::Value, default_nsp: Option<&str>) -> Result<Message, WireError> {
    let kind = get(v, "type")
        .and_then(rmpv::Value::as_u64)
        .ok_or(WireError::Malformed("no type"))?;
    let uid = get_str(v, "uid").unwrap_or_default();
    let nsp = get_str(v, "nsp")
        .or_else(|| default_nsp.map(str::to_owned))
        .ok_or(WireError::Malformed("no nsp"))?;
    let nil = rmpv::Value::Nil;
    let data = get(v, "data").unwrap_or(&nil);
    let body = match u8::try_from(kind).unwrap_or(0) {
        t::INITIAL_HEARTBEAT => Body::InitialHeartbeat,
        t::HEARTBEAT => Body::Heartbeat,
        t::ADAPTER_CLOSE => Body::AdapterClose,
        t::BROADCAST => {
            let (opts, timeout) = opts(get(data, "opts"));
            Body::Broadcast {
                packet: packet(
                    &nsp,
                    get(data, "packet").ok_or(WireError::Malformed("no packet"))?,
                )?,
                opts,
                request_id: get_str(data, "requestId"),
                timeout,
            }
        }
        t::SOCKETS_JOIN => Body::SocketsJoin {
            opts: opts(get(data, "opts")).0,
            rooms: rooms(get(data, "rooms")),
        },
        t::SOCKETS_LEAVE => Body::SocketsLeave {
            opts: opts(get(data, "opts")).0,
            rooms: rooms(get(data, "rooms")),
        },
        t::DISCONNECT_SOCKETS => Body::DisconnectSockets {
            opts: opts(get(data, "opts")).0,
            close: get(data, "close").and_then(rmpv::Value::as_bool) == Some(true),
        },
        t::FETCH_SOCKETS => Body::FetchSockets {
            opts: opts(get(data, "opts")).0,
            request_id: request_id(data)?,
        },
        t::FETCH_SOCKETS_RESPONSE => Body::FetchSocketsResponse {
            request_id: request_id(data)?,
            sockets: serde_json::from_value(to_json(get(data, "sockets").unwrap_or(&nil)))?,
        },
        t::SERVER_SIDE_EMIT => {
            let serde_json::Value::Array(items) = to_json(get(data, "packet").unwrap_or(&nil))
            else {
                return Err(WireError::Malformed("server-side emit without data"));
            };
            Body::ServerSideEmit {
                data: items,
                request_id: get_str(data, "requestId"),
            }
        }
        t::SERVER_SIDE_EMIT_RESPONSE => Body::ServerSideEmitResponse {
            request_id: request_id(data)?,
            data: to_json(get(data, "packet").unwrap_or(&nil)),
        },
        t::BROADCAST_CLIENT_COUNT => Body::BroadcastClientCount {
            request_id: request_id(data)?,
            count: get(data, "clientCount")
                .and_then(rmpv::Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(WireError::Malformed("no clientCount"))?,
        },
        t::BROADCAST_ACK => Body::BroadcastAck {
            request_id: request_id(data)?,
            ack: ack_payload(get(data, "packet").unwrap_or(&nil))?,
        },
        _ => Body::Unknown(kind),
    };
    Ok(Message { uid, nsp, body })
}

/// JSON to msgpack values: integers stay integers, other numbers are floats.
pub fn from_json(v: &serde_json::Value) -> rmpv::Value {
    use serde_json::Value as J;
    match v {
        J::Null => rmpv::Value::Nil,
        J::Bool(b) => rmpv::Value::Boolean(*b),
        J::Number(n) => {
            if let Some(u) = n.as_u64() {
                rmpv::Value::from(u)
            } else if let Some(i) = n.as_i64() {
                rmpv::Value::from(i)
            } else {
                rmpv::Value::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        J::String(s) => rmpv::Value::from(s.as_str()),
        J::Array(items) => rmpv::Value::Array(items.iter().map(from_json).collect()),
        J::Object(map) => rmpv::Value::Map(
            map.iter()
                .map(|(k, v)| (rmpv::Value::from(k.as_str()), from_json(v)))
                .collect(),
        ),
    }
}

/// Msgpack to JSON values: binary values become arrays of numbers (as a
/// Node Buffer's `toJSON` data), extensions `null`.
pub fn to_json(v: &rmpv::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        rmpv::Value::Nil | rmpv::Value::Ext(..) => J::Null,
        rmpv::Value::Boolean(b) => J::Bool(*b),
        rmpv::Value::Integer(n) => n
            .as_u64()
            .map(J::from)
            .or_else(|| n.as_i64().map(J::from))
            .unwrap_or(J::Null),
        rmpv::Value::F32(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(J::Null, J::Number)
        }
        rmpv::Value::F64(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        rmpv::Value::String(s) => s.as_str().map_or(J::Null, J::from),
        rmpv::Value::Binary(b) => J::Array(b.iter().map(|x| J::from(*x)).collect()),
        rmpv::Value::Array(items) => J::Array(items.iter().map(to_json).collect()),
        rmpv::Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        rmpv::Value::String(s) => s.as_str().unwrap_or_default().to_owned(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}
