//! The HTTP side of Engine.IO, reduced to what the protocol reads and writes.
//!
//! A binding turns its HTTP library's request into a [`Request`] (method,
//! path and query, the few headers that matter, the whole body) and writes
//! a [`Response`] back. No HTTP library type crosses this boundary.

use std::borrow::Cow;

use bytes::Bytes;

/// An HTTP method, as far as Engine.IO tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`: a handshake, a long-polling read, or a WebSocket upgrade.
    Get,
    /// `POST`: a long-polling write.
    Post,
    /// `OPTIONS`: a CORS preflight, answered by the binding.
    Options,
    /// Any other method.
    Other,
}

impl Method {
    /// Maps a method name (`"GET"`, `"POST"`, ...) to a [`Method`].
    pub fn from_name(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// An HTTP request addressed to the Engine.IO endpoint.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path and the query, as the request line has them
    /// (`/socket.io/?EIO=4&transport=polling`): one copy for both.
    target: String,
    /// The path's length in `target`; the query starts after the `?` that
    /// follows it, if one does.
    path_len: usize,
    /// Where the Engine.IO parameters are in the query: found once, as
    /// the request is made.
    params: ParamRanges,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// Whether the request asks for a WebSocket upgrade (`Upgrade: websocket`).
    pub websocket: bool,
    /// The whole body (empty for a GET).
    pub body: Bytes,
    /// The body went over `max_payload` and the binding stopped reading it
    /// (`body` then holds nothing): the session answers 413 and closes.
    pub body_too_large: bool,
}

impl Request {
    /// A `GET` for `path_and_query` (`/socket.io/?EIO=4&transport=polling`).
    pub fn get(path_and_query: &str) -> Request {
        Request::new(Method::Get, path_and_query, Bytes::new())
    }

    /// A `POST` of `body` to `path_and_query`.
    pub fn post(path_and_query: &str, body: impl Into<Bytes>) -> Request {
        Request::new(Method::Post, path_and_query, body.into())
    }

    /// A WebSocket upgrade request for `path_and_query`.
    pub fn websocket(path_and_query: &str) -> Request {
        let mut req = Request::get(path_and_query);
        req.websocket = true;
        req
    }

    /// A request with the given method, path and query, and body.
    pub fn new(method: Method, path_and_query: &str, body: Bytes) -> Request {
        let path_len = path_len(path_and_query);
        let query = path_and_query.get(path_len + 1..).unwrap_or_default();
        Request {
            method,
            target: path_and_query.to_owned(),
            path_len,
            params: ParamRanges::find(query),
            content_type: None,
            websocket: false,
            body,
            body_too_large: false,
        }
    }

    /// The path, without the query (`/socket.io/`).
    pub fn path(&self) -> &str {
        self.target.get(..self.path_len).unwrap_or_default()
    }

    /// The raw query string without the `?` (`EIO=4&transport=polling&t=x`).
    pub fn query(&self) -> &str {
        self.target.get(self.path_len + 1..).unwrap_or_default()
    }

    /// The first value of the query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(self.query(), name)
    }

    /// The first value of the query parameter `name`, percent-decoded,
    /// borrowed from the query when it has nothing to decode.
    pub fn query_value(&self, name: &str) -> Option<Cow<'_, str>> {
        query_value(self.query(), name)
    }

    /// The query parameters Engine.IO reads, in one walk over the query.
    pub fn engine_params(&self) -> EngineParams<'_> {
        self.params.read(self.query())
    }

    /// Whether the query names a session (`sid`): a session's request,
    /// not a handshake.
    pub fn names_session(&self) -> bool {
        match self.params.walk {
            true => self.engine_params().sid.is_some(),
            false => self.params.found & 1 << SID != 0,
        }
    }
}

/// The length of the path in a request's path and query: up to its `?`.
/// A byte loop, not `str::find`: a path is a dozen bytes, shorter than
/// what a search sets up for.
fn path_len(path_and_query: &str) -> usize {
    path_and_query
        .bytes()
        .position(|b| b == b'?')
        .unwrap_or(path_and_query.len())
}

/// The path of a request's path and query: up to its first `?`.
pub fn path_of(path_and_query: &str) -> &str {
    path_and_query
        .get(..path_len(path_and_query))
        .unwrap_or_default()
}

/// The query of a request's path and query: what follows its first `?`.
pub fn query_of(path_and_query: &str) -> &str {
    path_and_query
        .get(path_len(path_and_query) + 1..)
        .unwrap_or_default()
}

/// The first value of `name` in a raw query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query_value(query, name).map(Cow::into_owned)
}

/// The first value of `name` in a raw query string, percent-decoded: a
/// slice of `query` when the value has nothing to decode.
pub fn query_value<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    raw_pairs(query).find_map(|pair| pair.key_is(name).then(|| pair.value()))
}

/// Whether a raw query string names `name`: a key that decodes to it,
/// with or without a value.
pub fn has_query_param(query: &str, name: &str) -> bool {
    query_value(query, name).is_some()
}

/// The query parameters Engine.IO reads, found in one walk over the query
/// (the first value of each, percent-decoded).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EngineParams<'q> {
    /// `EIO`: the protocol version.
    pub eio: Option<Cow<'q, str>>,
    /// `transport`: `polling` or `websocket`.
    pub transport: Option<Cow<'q, str>>,
    /// `sid`: the session, absent on a handshake.
    pub sid: Option<Cow<'q, str>>,
    /// `j`: a JSONP callback index (Engine.IO v3).
    pub j: Option<Cow<'q, str>>,
    /// `b64`: the client cannot take binary polling payloads.
    pub b64: Option<Cow<'q, str>>,
}

/// The Engine.IO parameters of a raw query string.
pub fn engine_params(query: &str) -> EngineParams<'_> {
    ParamRanges::find(query).read(query)
}

/// The index of each Engine.IO parameter in [`ParamRanges`]: `EIO`,
/// `transport`, `sid`, `j`, `b64`.
const EIO: usize = 0;
const TRANSPORT: usize = 1;
const SID: usize = 2;
const J: usize = 3;
const B64: usize = 4;

/// Where the first value of each Engine.IO parameter is in a query, as
/// byte ranges: found in one walk from `&` to `&`, eight bytes at a time,
/// with a look at each key only, and read with no walk. A query with an
/// escape in it (few are), or too long for the ranges (64 KiB), is walked
/// again when read, with what it has decoded. The ranges are 16 bits each
/// so that a [`Request`] stays small enough to move without a call to
/// `memcpy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ParamRanges {
    /// The value of each parameter found, by index (`EIO`...).
    values: [(u16, u16); 5],
    /// A bit per parameter found, by index.
    found: u8,
    /// The query is read by walking it again.
    walk: bool,
}

impl ParamRanges {
    fn find(query: &str) -> ParamRanges {
        let bytes = query.as_bytes();
        let mut ranges = ParamRanges::default();
        if has_escape(bytes) || u16::try_from(bytes.len()).is_err() {
            ranges.walk = true;
            return ranges;
        }
        let mut from = 0;
        loop {
            let end = pair_end(bytes, from);
            let pair = &bytes[from..end];
            let eq = key_len(pair);
            if let Some(at) = engine_index(&pair[..eq])
                && ranges.found & 1 << at == 0
            {
                ranges.found |= 1 << at;
                // Within the query, whose length fits in a u16.
                let start = (from + eq + 1).min(end) as u16;
                ranges.values[at] = (start, end as u16);
            }
            if end == bytes.len() {
                return ranges;
            }
            from = end + 1;
        }
    }

    /// The parameters of `query`, the query these ranges were found in.
    fn read(self, query: &str) -> EngineParams<'_> {
        if self.walk {
            return walk_engine_params(query);
        }
        let value = |at: usize| {
            let (start, end) = self.values[at];
            (self.found & 1 << at != 0)
                .then(|| Cow::Borrowed(query.get(start as usize..end as usize).unwrap_or_default()))
        };
        EngineParams {
            eio: value(EIO),
            transport: value(TRANSPORT),
            sid: value(SID),
            j: value(J),
            b64: value(B64),
        }
    }
}

/// The index in [`ParamRanges`] of the parameter named `key`, if
/// Engine.IO reads it.
fn engine_index(key: &[u8]) -> Option<usize> {
    match key {
        b"EIO" => Some(EIO),
        b"transport" => Some(TRANSPORT),
        b"sid" => Some(SID),
        b"j" => Some(J),
        b"b64" => Some(B64),
        _ => None,
    }
}

/// The Engine.IO parameters of a query with escapes, decoded: pair by
/// pair, each key decoded before it is compared.
fn walk_engine_params(query: &str) -> EngineParams<'_> {
    let mut params = EngineParams::default();
    for pair in raw_pairs(query) {
        let key = match pair.key_escaped {
            true => Cow::Owned(percent_decode(pair.key)),
            false => Cow::Borrowed(pair.key),
        };
        let slot = match engine_index(key.as_bytes()) {
            Some(EIO) => &mut params.eio,
            Some(TRANSPORT) => &mut params.transport,
            Some(SID) => &mut params.sid,
            Some(J) => &mut params.j,
            Some(_) => &mut params.b64,
            None => continue,
        };
        if slot.is_none() {
            *slot = Some(pair.value());
        }
    }
    params
}

const ONES: u64 = u64::from_le_bytes([1; 8]);
const HIGHS: u64 = ONES << 7;

/// The high bit of each byte of `word` that is `b`, and of some bytes
/// after such a byte: only the lowest bit set counts.
fn bytes_of(word: u64, b: u8) -> u64 {
    let x = word ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The index of the first `&` in `bytes` from `i` on, or the length:
/// eight bytes at a time, then one at a time.
fn pair_end(bytes: &[u8], mut i: usize) -> usize {
    while let Some(Ok(chunk)) = bytes.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let found = bytes_of(u64::from_le_bytes(chunk), b'&');
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && bytes[i] != b'&' {
        i += 1;
    }
    i
}

/// The length of a pair's key: up to its first `=`.
fn key_len(pair: &[u8]) -> usize {
    pair.iter().position(|b| *b == b'=').unwrap_or(pair.len())
}

/// Whether `bytes` has a `%` or a `+` to decode: eight bytes at a time.
fn has_escape(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let found = words.by_ref().any(|chunk| {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        bytes_of(word, b'%') | bytes_of(word, b'+') != 0
    });
    found || words.remainder().iter().any(|b| matches!(b, b'%' | b'+'))
}

/// One `key=value` pair of a query, as written.
struct RawPair<'q> {
    key: &'q str,
    value: &'q str,
    key_escaped: bool,
    value_escaped: bool,
}

impl<'q> RawPair<'q> {
    fn key_is(&self, name: &str) -> bool {
        match self.key_escaped {
            true => percent_decode(self.key) == name,
            false => self.key == name,
        }
    }

    fn value(&self) -> Cow<'q, str> {
        match self.value_escaped {
            true => Cow::Owned(percent_decode(self.value)),
            false => Cow::Borrowed(self.value),
        }
    }
}

/// The bytes a walk over a query stops at: `&`, `=`, `%` and `+`.
const SPECIAL: [bool; 256] = {
    let mut special = [false; 256];
    special[b'&' as usize] = true;
    special[b'=' as usize] = true;
    special[b'%' as usize] = true;
    special[b'+' as usize] = true;
    special
};

/// The index of the first of `&`, `=`, `%` and `+` in `bytes` from `i`
/// on, or the length: eight bytes at a time, then one at a time.
fn skip_plain(bytes: &[u8], mut i: usize) -> usize {
    while let Some(Ok(chunk)) = bytes.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let word = u64::from_le_bytes(chunk);
        let found = bytes_of(word, b'&')
            | bytes_of(word, b'=')
            | bytes_of(word, b'%')
            | bytes_of(word, b'+');
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && !SPECIAL[usize::from(bytes[i])] {
        i += 1;
    }
    i
}

/// The pairs of a query, split at every `&` (an empty query is one empty
/// pair), each key at its first `=`, in one walk that also notes what has
/// escapes to decode.
fn raw_pairs(query: &str) -> impl Iterator<Item = RawPair<'_>> {
    let bytes = query.as_bytes();
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        let mut eq = None;
        let (mut key_escaped, mut value_escaped) = (false, false);
        let mut i = from;
        loop {
            i = skip_plain(bytes, i);
            if i >= bytes.len() {
                break;
            }
            match bytes[i] {
                b'&' => break,
                b'=' if eq.is_none() => eq = Some(i),
                b'%' | b'+' if eq.is_none() => key_escaped = true,
                b'%' | b'+' => value_escaped = true,
                _ => {}
            }
            i += 1;
        }
        start = (i < bytes.len()).then_some(i + 1);
        Some(match eq {
            Some(eq) => RawPair {
                key: &query[from..eq],
                value: &query[eq + 1..i],
                key_escaped,
                value_escaped,
            },
            None => RawPair {
                key: &query[from..i],
                value: "",
                key_escaped,
                value_escaped: false,
            },
        })
    })
}

/// Decodes `%XX` escapes and `+` as in `application/x-www-form-urlencoded`.
/// Invalid escapes are kept as they are; invalid UTF-8 is replaced.
pub fn percent_decode(s: &str) -> String {
    if !has_escape(s.as_bytes()) {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The content type of long-polling responses and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// `text/plain; charset=UTF-8`: polling payloads and `ok`.
    Text,
    /// `application/octet-stream`: Engine.IO v3 binary payloads.
    Binary,
    /// `application/json`: error bodies.
    Json,
    /// `text/javascript; charset=UTF-8`: Engine.IO v3 JSONP payloads.
    Javascript,
}

impl ContentType {
    /// The header value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ContentType::Text => "text/plain; charset=UTF-8",
            ContentType::Binary => "application/octet-stream",
            ContentType::Json => "application/json",
            ContentType::Javascript => "text/javascript; charset=UTF-8",
        }
    }
}

/// An HTTP response to write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: ContentType,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// `200` with a text body.
    pub fn text(body: impl Into<Bytes>) -> Response {
        Response {
            status: 200,
            content_type: ContentType::Text,
            body: body.into(),
        }
    }

    /// `200` with `ok`: the answer to a polling POST.
    pub fn ok() -> Response {
        Response::text(Bytes::from_static(b"ok"))
    }

    /// The reference's JSON error for `error`.
    pub fn error(error: HttpError) -> Response {
        let body = format!(
            "{{\"code\":{},\"message\":\"{}\"}}",
            error.code(),
            error.message()
        );
        Response {
            status: error.status(),
            content_type: ContentType::Json,
            body: Bytes::from(body),
        }
    }

    /// A `413 Payload Too Large` with an empty body, as the reference answers
    /// a polling body over `maxPayload`.
    pub fn payload_too_large() -> Response {
        Response {
            status: 413,
            content_type: ContentType::Text,
            body: Bytes::new(),
        }
    }

    /// A `400 Bad Request` with an empty body.
    pub fn bad_request() -> Response {
        Response {
            status: 400,
            content_type: ContentType::Text,
            body: Bytes::new(),
        }
    }

    /// The body as text (lossy), for tests and logs.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The Engine.IO HTTP errors, with the reference's codes and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum HttpError {
    /// Code 0: the `transport` parameter names no enabled transport.
    #[error("transport unknown")]
    UnknownTransport,
    /// Code 1: the `sid` names no live session (or the wrong transport).
    #[error("session id unknown")]
    UnknownSid,
    /// Code 2: a handshake with a method other than `GET`.
    #[error("bad handshake method")]
    BadHandshakeMethod,
    /// Code 3: a request the session cannot take now.
    #[error("bad request")]
    BadRequest,
    /// Code 4: refused by the application's `allow_request` hook.
    #[error("forbidden")]
    Forbidden,
    /// Code 5: an `EIO` version this server does not speak.
    #[error("unsupported protocol version")]
    UnsupportedProtocolVersion,
}

impl HttpError {
    /// The JSON `code`.
    pub fn code(self) -> u8 {
        match self {
            HttpError::UnknownTransport => 0,
            HttpError::UnknownSid => 1,
            HttpError::BadHandshakeMethod => 2,
            HttpError::BadRequest => 3,
            HttpError::Forbidden => 4,
            HttpError::UnsupportedProtocolVersion => 5,
        }
    }

    /// The JSON `message`, as the reference writes it.
    pub fn message(self) -> &'static str {
        match self {
            HttpError::UnknownTransport => "Transport unknown",
            HttpError::UnknownSid => "Session ID unknown",
            HttpError::BadHandshakeMethod => "Bad handshake method",
            HttpError::BadRequest => "Bad request",
            HttpError::Forbidden => "Forbidden",
            HttpError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The status: 403 for [`HttpError::Forbidden`], 400 otherwise.
    pub fn status(self) -> u16 {
        match self {
            HttpError::Forbidden => 403,
            _ => 400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_splits_its_target_at_the_first_question_mark() {
        for (target, path, query) in [
            ("/socket.io/?EIO=4&t=x", "/socket.io/", "EIO=4&t=x"),
            ("/socket.io/", "/socket.io/", ""),
            ("/socket.io/?", "/socket.io/", ""),
            ("/a?b?c", "/a", "b?c"),
            ("?x=1", "", "x=1"),
            ("", "", ""),
        ] {
            let req = Request::get(target);
            assert_eq!((req.path(), req.query()), (path, query), "{target}");
            assert_eq!(query_of(target), query, "{target}");
            assert_eq!(path_of(target), path, "{target}");
        }
    }

    #[test]
    fn query_params_are_found_and_decoded() {
        let req = Request::get("/socket.io/?EIO=4&transport=polling&sid=a%2Bb&x");
        assert_eq!(req.path(), "/socket.io/");
        assert_eq!(req.query_param("EIO").as_deref(), Some("4"));
        assert_eq!(req.query_param("sid").as_deref(), Some("a+b"));
        assert_eq!(req.query_param("x").as_deref(), Some(""));
        assert_eq!(req.query_param("t"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("a+b%20c"), "a b c");
        // An encoded key is decoded before the comparison.
        let req = Request::get("/socket.io/?%73id=x&EIO=4");
        assert_eq!(req.query_param("sid").as_deref(), Some("x"));
        assert_eq!(req.query_param("%73id"), None);
        // Empty pairs, a key without `=`, a value with `=` in it.
        assert_eq!(query_param("&&a&b=1=2&", "b").as_deref(), Some("1=2"));
        assert_eq!(query_param("&&a&b=1=2&", "a").as_deref(), Some(""));
        assert_eq!(query_param("", ""), Some(String::new()));
        assert_eq!(query_param("a=1&", ""), Some(String::new()));
        assert_eq!(query_param("a=1", "b"), None);
        // Values with nothing to decode are borrowed.
        assert!(matches!(req.query_value("sid"), Some(Cow::Borrowed("x"))));
        assert!(matches!(
            query_value("a=b%20c", "a"),
            Some(Cow::Owned(v)) if v == "b c"
        ));
    }

    /// The next of a sequence of test values (xorshift64).
    fn xorshift(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn a_query_names_a_parameter_as_its_value_says() {
        let alphabet = ["sid", "s", "id", "=", "&", "%73", "+", "x", "sidx", "xsid"];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            let parts = seed % 7;
            let query: String = (0..parts)
                .map(|_| alphabet[(xorshift(&mut seed) % alphabet.len() as u64) as usize])
                .collect();
            seed = seed.wrapping_add(1);
            for name in ["sid", "x", "s+d", ""] {
                assert_eq!(
                    has_query_param(&query, name),
                    query_value(&query, name).is_some(),
                    "{query:?} {name:?}"
                );
            }
        }
        // Queries too long for 16-bit ranges are walked when read.
        for len in [65_530, 65_535, 65_536, 70_000] {
            let query = format!("t={}&sid=abc", "x".repeat(len - 10));
            assert_eq!(query.len(), len);
            let request = Request::get(&format!("/socket.io/?{query}"));
            assert_eq!(request.engine_params(), engine_params(&query));
            assert_eq!(request.engine_params().sid.as_deref(), Some("abc"), "{len}");
            assert!(request.names_session());
        }
        assert!(!Request::get("/socket.io/").names_session());
        assert!(Request::get("/socket.io/?sid").names_session());
        assert_eq!(
            Request::get("/socket.io/?sid")
                .engine_params()
                .sid
                .as_deref(),
            Some("")
        );
        assert!(has_query_param("EIO=4&transport=polling&sid=abc", "sid"));
        assert!(!has_query_param("EIO=4&transport=polling&xsid=abc", "sid"));
        assert!(has_query_param("sid", "sid"));
    }

    #[test]
    fn the_walks_eight_bytes_at_a_time_stop_where_a_byte_loop_does() {
        let first = |bytes: &[u8], from: usize, stop: fn(u8) -> bool| {
            (from..bytes.len())
                .find(|&i| stop(bytes[i]))
                .unwrap_or(bytes.len())
        };
        let alphabet = b"ab&=%+\x01\x7f\x80\xff0";
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..40 {
            for _ in 0..50 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| alphabet[(xorshift(&mut seed) % alphabet.len() as u64) as usize])
                    .collect();
                for from in 0..=len {
                    let special = |b| matches!(b, b'&' | b'=' | b'%' | b'+');
                    let at = (skip_plain(&bytes, from), pair_end(&bytes, from));
                    let want = (
                        first(&bytes, from, special),
                        first(&bytes, from, |b| b == b'&'),
                    );
                    assert_eq!(at, want, "{bytes:?} {from}");
                }
                let escaped = bytes.iter().any(|b| matches!(b, b'%' | b'+'));
                assert_eq!(has_escape(&bytes), escaped, "{bytes:?}");
            }
        }
    }

    #[test]
    fn engine_params_of_long_queries_agree_with_query_value() {
        let parts = [
            "EIO=4",
            "transport=polling",
            "t=PZx1a2Bc",
            "sid=AAAAAAAAAAAAAAAAAAAA",
            "sid=a%62c",
            "j=0",
            "b64=1",
            "%73id=x",
            "EI%4F=3",
            "tr+ansport=y",
            "x=1&&y",
            "transport=web%73ocket",
            "=",
            "",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..5_000 {
            let n = 1 + xorshift(&mut seed) % 7;
            let query = (0..n)
                .map(|_| parts[(xorshift(&mut seed) % parts.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join("&");
            let p = engine_params(&query);
            let get = |name| query_value(&query, name);
            assert_eq!(p.eio, get("EIO"), "{query}");
            assert_eq!(p.transport, get("transport"), "{query}");
            assert_eq!(p.sid, get("sid"), "{query}");
            assert_eq!(p.j, get("j"), "{query}");
            assert_eq!(p.b64, get("b64"), "{query}");
            for name in ["sid", "EIO", "t", "x"] {
                assert_eq!(
                    has_query_param(&query, name),
                    get(name).is_some(),
                    "{query} {name}"
                );
            }
            // A request reads them from where it found them when made.
            let request = Request::get(&format!("/socket.io/?{query}"));
            assert_eq!(request.engine_params(), p, "{query}");
            assert_eq!(request.names_session(), p.sid.is_some(), "{query}");
        }
    }

    /// The query as the URL standard splits it, one pair at a time: what
    /// the one-walk `query_value` must agree with.
    fn split_query_value(query: &str, name: &str) -> Option<String> {
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }

    proptest::proptest! {
        #[test]
        fn query_value_agrees_with_splitting_the_query(
            query in "[a-c=&%+2E]{0,24}",
            name in "[a-c.%+2E]{0,3}",
        ) {
            proptest::prop_assert_eq!(
                query_value(&query, &name).map(Cow::into_owned),
                split_query_value(&query, &name)
            );
        }

        #[test]
        fn engine_params_agree_with_query_value(
            query in "(EIO|sid|j|b64|transport|t|%73id|EI%4F|=|&|%|\\+|[a-c2])*",
        ) {
            let p = engine_params(&query);
            let get = |name| query_value(&query, name);
            proptest::prop_assert_eq!(p.eio, get("EIO"));
            proptest::prop_assert_eq!(p.transport, get("transport"));
            proptest::prop_assert_eq!(p.sid, get("sid"));
            proptest::prop_assert_eq!(p.j, get("j"));
            proptest::prop_assert_eq!(p.b64, get("b64"));
        }
    }

    #[test]
    fn errors_have_the_reference_shape() {
        let r = Response::error(HttpError::UnknownSid);
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body_text(),
            r#"{"code":1,"message":"Session ID unknown"}"#
        );
        assert_eq!(Response::error(HttpError::Forbidden).status, 403);
    }
}
