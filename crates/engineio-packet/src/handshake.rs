//! [`Handshake`]: the JSON data of the open packet.

use serde::{Deserialize, Serialize};

use crate::DecodeError;

/// The data of the open packet (`0{...}`), which the server sends first on a new session.
///
/// Serialized with exactly these keys, in this order, as the reference server does:
/// `{"sid":..,"upgrades":[..],"pingInterval":..,"pingTimeout":..,"maxPayload":..}`.
/// Decoding is tolerant: unknown keys are ignored, and `upgrades` and `maxPayload`
/// (which revision 3 servers may omit) default to empty and 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    /// The session id.
    pub sid: String,
    /// The transports the client may upgrade to: `["websocket"]` on polling, `[]` on WebSocket.
    #[serde(default)]
    pub upgrades: Vec<String>,
    /// Milliseconds between two heartbeats.
    pub ping_interval: u64,
    /// Milliseconds the other side waits for the heartbeat's answer.
    pub ping_timeout: u64,
    /// The largest HTTP body the server accepts, in bytes (0 when the server did not say).
    #[serde(default)]
    pub max_payload: u64,
}

impl Handshake {
    /// The JSON text, byte for byte what the reference server writes.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(self.json_len());
        self.write_json(&mut out);
        // Only UTF-8 strings, ASCII punctuation and digits were written.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the JSON text to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.fields().write_json(out);
    }

    /// The same fields, borrowed.
    pub(crate) fn fields(&self) -> HandshakeRef<'_, String> {
        HandshakeRef {
            sid: &self.sid,
            upgrades: &self.upgrades,
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            max_payload: self.max_payload,
        }
    }

    /// Parses the JSON text of an open packet.
    ///
    /// # Errors
    /// [`DecodeError::InvalidHandshake`] when the text is not a JSON object with a string `sid`
    /// and integer `pingInterval` and `pingTimeout`.
    pub fn from_json(json: &str) -> Result<Handshake, DecodeError> {
        match parse_canonical(json) {
            Some(handshake) => Ok(handshake),
            None => {
                serde_json::from_str(json).map_err(|e| DecodeError::InvalidHandshake(e.to_string()))
            }
        }
    }

    /// The length in bytes of the JSON text.
    pub fn json_len(&self) -> usize {
        self.fields().json_len()
    }
}

/// The fields of a [`Handshake`], borrowed: the open packet's JSON text
/// measured and written as [`Handshake`] writes it, with no `Handshake`
/// made (no `String` for the id, no list of upgrades). `U` is how an
/// upgrade's name is held: `&str` (a server's `&["websocket"]`) or
/// `String` (a [`Handshake`]'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeRef<'a, U = &'a str> {
    /// The session id.
    pub sid: &'a str,
    /// The transports the client may upgrade to.
    pub upgrades: &'a [U],
    /// Milliseconds between two heartbeats.
    pub ping_interval: u64,
    /// Milliseconds the other side waits for the heartbeat's answer.
    pub ping_timeout: u64,
    /// The largest HTTP body the server accepts, in bytes.
    pub max_payload: u64,
}

impl<U: AsRef<str>> From<HandshakeRef<'_, U>> for Handshake {
    /// The same fields, owned.
    fn from(fields: HandshakeRef<'_, U>) -> Handshake {
        Handshake {
            sid: fields.sid.to_owned(),
            upgrades: fields
                .upgrades
                .iter()
                .map(|u| u.as_ref().to_owned())
                .collect(),
            ping_interval: fields.ping_interval,
            ping_timeout: fields.ping_timeout,
            max_payload: fields.max_payload,
        }
    }
}

impl<U: AsRef<str>> HandshakeRef<'_, U> {
    /// The length in bytes of the JSON text.
    pub fn json_len(&self) -> usize {
        // `{"sid":`, `,"upgrades":[`, `],"pingInterval":`, `,"pingTimeout":`, `,"maxPayload":`, `}`.
        const PUNCTUATION: usize = 7 + 13 + 17 + 15 + 14 + 1;
        let upgrades: usize = self.upgrades.iter().map(|u| json_str_len(u.as_ref())).sum();
        PUNCTUATION
            + json_str_len(self.sid)
            + upgrades
            + self.upgrades.len().saturating_sub(1)
            + digits(self.ping_interval)
            + digits(self.ping_timeout)
            + digits(self.max_payload)
    }

    /// Appends the JSON text to `out`, byte for byte what the reference
    /// server writes.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(b"{\"sid\":");
        write_json_str(out, self.sid);
        out.extend_from_slice(b",\"upgrades\":[");
        for (i, upgrade) in self.upgrades.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_str(out, upgrade.as_ref());
        }
        out.extend_from_slice(b"],\"pingInterval\":");
        out.extend_from_slice(num.format(self.ping_interval).as_bytes());
        out.extend_from_slice(b",\"pingTimeout\":");
        out.extend_from_slice(num.format(self.ping_timeout).as_bytes());
        out.extend_from_slice(b",\"maxPayload\":");
        out.extend_from_slice(num.format(self.max_payload).as_bytes());
        out.push(b'}');
    }

    /// Appends the open packet's text to `out`: `0`, then the JSON text.
    pub fn write_packet(&self, out: &mut Vec<u8>) {
        out.reserve_exact(1 + self.json_len());
        out.push(b'0');
        self.write_json(out);
    }
}

/// Parses the JSON as the reference server lays it out (these keys in this order, no white space,
/// no escapes); `None` for anything else, which serde_json then reads.
/// What this accepts, serde_json reads the same.
fn parse_canonical(json: &str) -> Option<Handshake> {
    let mut r = Reader(json);
    r.tag("{\"sid\":")?;
    let sid = r.string()?;
    r.tag(",\"upgrades\":[")?;
    let mut upgrades = Vec::new();
    if r.tag("]").is_none() {
        loop {
            upgrades.push(r.string()?);
            if r.tag("]").is_some() {
                break;
            }
            r.tag(",")?;
        }
    }
    r.tag(",\"pingInterval\":")?;
    let ping_interval = r.number()?;
    r.tag(",\"pingTimeout\":")?;
    let ping_timeout = r.number()?;
    r.tag(",\"maxPayload\":")?;
    let max_payload = r.number()?;
    r.tag("}")?;
    r.0.is_empty().then_some(Handshake {
        sid,
        upgrades,
        ping_interval,
        ping_timeout,
        max_payload,
    })
}

struct Reader<'a>(&'a str);

impl Reader<'_> {
    fn tag(&mut self, tag: &str) -> Option<()> {
        self.0 = self.0.strip_prefix(tag)?;
        Some(())
    }

    /// A JSON string without escapes.
    fn string(&mut self) -> Option<String> {
        let (s, rest) = self.0.strip_prefix('"')?.split_once('"')?;
        if s.bytes().any(|b| b == b'\\' || b < 0x20) {
            return None;
        }
        self.0 = rest;
        Some(s.to_owned())
    }

    /// A JSON integer that fits a `u64`.
    fn number(&mut self) -> Option<u64> {
        let len = self.0.bytes().take_while(u8::is_ascii_digit).count();
        let (digits, rest) = self.0.split_at(len);
        if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
            return None;
        }
        let n = digits.bytes().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?;
        self.0 = rest;
        Some(n)
    }
}

/// Number of decimal digits of `n`.
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Per byte, its length in a JSON string as [`write_json_str`] writes it:
/// 1 for a byte written as it is, 2 for a short escape, 6 for `\u00XX`.
const JSON_LEN: [u8; 256] = {
    let mut table = [1; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = 6;
        b += 1;
    }
    let mut i = 0;
    let short = [b'"', b'\\', b'\n', b'\r', b'\t', 0x08, 0x0c];
    while i < short.len() {
        table[short[i] as usize] = 2;
        i += 1;
    }
    table
};

/// Length of `s` written by [`write_json_str`].
fn json_str_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| usize::from(JSON_LEN[usize::from(b)]))
        .sum::<usize>()
}

/// Writes `s` as a JSON string, escaped as `JSON.stringify` does.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if JSON_LEN[usize::from(b)] == 1 {
            continue;
        }
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_length_of_a_json_string_is_what_is_written() {
        for c in (0..=0x7f_u8).map(char::from).chain(['é', '€', '😀']) {
            let s = format!("a{c}b{c}");
            let mut out = Vec::new();
            write_json_str(&mut out, &s);
            assert_eq!(json_str_len(&s), out.len(), "{c:?}");
            let parsed: String = serde_json::from_slice(&out).unwrap_or_default();
            assert_eq!(parsed, s);
        }
    }

    #[test]
    fn escapes_like_json_stringify() {
        let mut out = Vec::new();
        write_json_str(&mut out, "a\"b\\c\nd\u{1}e\u{7f}é");
        assert_eq!(out, b"\"a\\\"b\\\\c\\nd\\u0001e\x7f\xc3\xa9\"");
    }

    #[test]
    fn writer_agrees_with_serde() {
        let h = Handshake {
            sid: "s\"id\u{1f}".into(),
            upgrades: vec!["websocket".into(), "x\ty".into()],
            ping_interval: u64::MAX,
            ping_timeout: 0,
            max_payload: 1_000_000,
        };
        assert_eq!(h.to_json(), serde_json::to_string(&h).expect("serializes"));
        assert_eq!(h.json_len(), h.to_json().len());
        assert_eq!(Handshake::from_json(&h.to_json()), Ok(h));
    }

    #[test]
    fn fast_path_agrees_with_serde() {
        let canonical = r#"{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        let cases = [
            canonical,
            r#"{"sid":"","upgrades":[],"pingInterval":0,"pingTimeout":0,"maxPayload":0}"#,
            r#"{"sid":"é😀","upgrades":["a","b"],"pingInterval":1,"pingTimeout":2,"maxPayload":18446744073709551615}"#,
            // Not canonical: serde_json decides.
            r#"{"sid":"a\"b","upgrades":[],"pingInterval":1,"pingTimeout":2,"maxPayload":3}"#,
            r#"{"sid":"a","upgrades":[],"pingInterval":01,"pingTimeout":2,"maxPayload":3}"#,
            r#"{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":2,"maxPayload":18446744073709551616}"#,
            r#"{"sid":"a","upgrades":[,],"pingInterval":1,"pingTimeout":2,"maxPayload":3}"#,
            r#"{"sid":"a","upgrades":["x",],"pingInterval":1,"pingTimeout":2,"maxPayload":3}"#,
            r#"{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":2,"maxPayload":3} "#,
            r#"{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":2,"maxPayload":3}x"#,
            r#"{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":2,"maxPayload":3}"#,
            r#"{"sid":"a","upgrades":[],"pingInterval":-1,"pingTimeout":2,"maxPayload":3}"#,
            r#"{"sid":"a","upgrades":[],"pingInterval":1.0,"pingTimeout":2,"maxPayload":3}"#,
            r#"{ "sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":2,"maxPayload":3}"#,
            r#"{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":2}"#,
            r#"{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":2,"maxPayload":3"#,
        ];
        for json in cases {
            let serde = serde_json::from_str::<Handshake>(json).ok();
            if let Some(fast) = parse_canonical(json) {
                assert_eq!(Some(fast), serde, "{json}");
            }
            assert_eq!(Handshake::from_json(json).ok(), serde, "{json}");
        }
        assert!(parse_canonical(canonical).is_some());
    }
}
