//! The shapes the UI reads: serialized sockets, dates, argument lists.

use serde::ser::{Serialize, SerializeTuple, Serializer};
use serde_json::{Map, Value, json};
use socketio_tokio::{RemoteSocket, Socket};

/// A list of arguments of any length, sent as the argument list of an
/// emit (serialized as a tuple).
pub(crate) struct ArgList(pub(crate) Vec<Value>);

impl Serialize for ArgList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut t = serializer.serialize_tuple(self.0.len())?;
        for v in &self.0 {
            t.serialize_element(v)?;
        }
        t.end()
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `ms` as JSON writes a JavaScript `Date`: `2024-01-31T12:00:00.000Z`.
pub(crate) fn iso_date(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// The address the reference's `serialize` shows: a proxy's header, else
/// the handshake's address.
fn address(headers: &Value, address: &Value) -> Value {
    headers
        .get("cf-connecting-ip")
        .or_else(|| headers.get("x-forwarded-for"))
        .unwrap_or(address)
        .clone()
}

/// The data without `_admin`, and `_admin`'s client id and transport.
fn split_data(data: &Value) -> (Value, Value, Value) {
    let admin = data.get("_admin");
    let client_id = admin
        .and_then(|a| a.get("clientId"))
        .cloned()
        .unwrap_or(Value::Null);
    let transport = admin
        .and_then(|a| a.get("transport"))
        .cloned()
        .unwrap_or(Value::Null);
    let data = match data {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "_admin")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        Value::Null => json!({}),
        other => other.clone(),
    };
    (data, client_id, transport)
}

/// A socket as the reference's `serialize` describes it, from what
/// `fetch_sockets` gave (on this server or another, Node.js ones included).
pub(crate) fn serialize_remote(socket: &RemoteSocket, nsp: &str) -> Value {
    let (data, client_id, transport) = split_data(&socket.data);
    let hs = &socket.handshake;
    let headers = hs.get("headers").cloned().unwrap_or_else(|| json!({}));
    json!({
        "id": socket.id,
        "clientId": client_id,
        "transport": transport,
        "nsp": nsp,
        "data": data,
        "handshake": {
            "address": address(&headers, hs.get("address").unwrap_or(&Value::Null)),
            "headers": headers,
            "query": hs.get("query").cloned().unwrap_or_else(|| json!({})),
            "issued": hs.get("issued").cloned().unwrap_or(Value::Null),
            "secure": hs.get("secure").cloned().unwrap_or(Value::Bool(false)),
            "time": hs.get("time").cloned().unwrap_or(Value::Null),
            "url": hs.get("url").cloned().unwrap_or(Value::Null),
            "xdomain": hs.get("xdomain").cloned().unwrap_or(Value::Bool(false)),
        },
        "rooms": socket.rooms,
    })
}

/// A local socket as the reference's `serialize` describes it.
pub(crate) fn serialize_socket(socket: &Socket) -> Value {
    let hs = socket.handshake();
    let mut headers = Map::new();
    for (name, value) in hs.headers() {
        if let Ok(v) = value.to_str() {
            headers.insert(name.as_str().to_owned(), v.into());
        }
    }
    let headers = Value::Object(headers);
    let mut query = Map::new();
    for pair in hs.query().split('&').filter(|p| !p.is_empty()) {
        let key = pair.split('=').next().unwrap_or_default();
        if let Some(value) = hs.query_param(key) {
            query.insert(key.to_owned(), value.into());
        }
    }
    let client_id: String = socket.conn_id().chars().take(12).collect();
    let secure = hs
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes() == b"https");
    let remote = hs
        .remote_addr()
        .map(|a| Value::String(a.ip().to_string()))
        .unwrap_or(Value::Null);
    let rooms: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
    json!({
        "id": socket.id(),
        "clientId": client_id,
        "transport": socket.transport().as_str(),
        "nsp": socket.ns(),
        "data": socket.data::<Value>().map_or_else(|| json!({}), |d| split_data(&d).0),
        "handshake": {
            "address": address(&headers, &remote),
            "headers": headers,
            "query": query,
            "issued": hs.issued(),
            "secure": secure,
            "time": iso_date(hs.issued()),
            "url": hs.uri().to_string(),
            "xdomain": hs.headers().contains_key("origin"),
        },
        "rooms": rooms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_as_javascript_writes_them() {
        assert_eq!(iso_date(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_date(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso_date(1_767_225_599_999), "2025-12-31T23:59:59.999Z");
    }

    #[test]
    fn the_admin_field_is_taken_out_of_the_data() {
        let (data, client, transport) = split_data(
            &json!({ "_admin": { "clientId": "abc", "transport": "polling" }, "name": "ana" }),
        );
        assert_eq!(data, json!({ "name": "ana" }));
        assert_eq!(client, json!("abc"));
        assert_eq!(transport, json!("polling"));
    }
}
