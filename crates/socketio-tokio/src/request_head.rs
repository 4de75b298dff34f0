//! The URI and headers of the request that opened a connection, kept for the
//! connection's life in one buffer.
//!
//! A `HeaderMap` costs about 1 KiB for the ten headers of a browser's
//! handshake (its index, its entries of more than 100 bytes each, one
//! allocation per value), and hyper's header values are slices of the HTTP
//! connection's read buffer (8 to 16 KiB), which they would keep alive. Here
//! the URI, the names and the values are copied back to back into one
//! allocation; the `HeaderMap` and `Uri` are built from it (sharing it) the
//! first time the application asks for them.
//!
//! Of the request's extensions (what tower layers inserted: an
//! authenticated user, say), only those of the types the application named
//! are kept, moved from the request: 8 bytes when there are none. Keeping
//! them all would keep whatever they share, such as a clone of hyper's URI
//! (axum's `OriginalUri`), a slice of the connection's read buffer.

use std::sync::OnceLock;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Uri};

/// The top bit of a value's end: the value is sensitive.
const SENSITIVE: u32 = 1 << 31;

/// The request head, compact.
#[derive(Debug)]
pub(crate) struct RequestHead {
    /// The URI as text, then each header's name and value.
    buf: Bytes,
    /// Where the URI ends in `buf`.
    uri_end: u32,
    /// Per header: where its name ends and where its value ends in `buf`
    /// (the value's end may carry [`SENSITIVE`]).
    ends: Box<[(u32, u32)]>,
    /// The URI and headers, parsed together the first time either is
    /// asked for (one cell: 16 bytes while unused).
    parsed: OnceLock<Box<Parsed>>,
    extensions: http::Extensions,
}

/// The URI and headers as `http` types.
#[derive(Debug)]
struct Parsed {
    uri: Uri,
    headers: HeaderMap,
}

impl RequestHead {
    /// Copies `uri` and `headers`: nothing of the request stays shared.
    pub(crate) fn new(uri: &Uri, headers: &HeaderMap) -> RequestHead {
        // A request's URI is a path and query (origin form), which is its
        // text as it is; any other form is written out.
        let written;
        let uri_text = match (uri.scheme(), uri.authority(), uri.path_and_query()) {
            (None, None, Some(path_and_query)) => path_and_query.as_str(),
            _ => {
                written = uri.to_string();
                written.as_str()
            }
        };
        RequestHead::copy(uri_text, || {
            headers
                .iter()
                .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes(), v.is_sensitive()))
        })
    }

    /// Copies a head as it was read: its origin-form `target` and
    /// httparse's `headers`, names lowercased as `http` keeps them (and as
    /// [`RequestHead::new`] copies them).
    pub(crate) fn from_raw(target: &str, headers: &[httparse::Header<'_>]) -> RequestHead {
        RequestHead::copy(target, || {
            headers.iter().map(|h| (h.name.as_bytes(), h.value, false))
        })
    }

    /// The URI's text, then each header's name (lowercased) and value,
    /// back to back in one allocation; `headers` gives them (twice).
    fn copy<'a, I>(uri_text: &str, headers: impl Fn() -> I) -> RequestHead
    where
        I: Iterator<Item = (&'a [u8], &'a [u8], bool)>,
    {
        let (size, count) = headers().fold((uri_text.len(), 0), |(size, count), (n, v, _)| {
            (size + n.len() + v.len(), count + 1)
        });
        let mut buf = Vec::with_capacity(size);
        buf.extend_from_slice(uri_text.as_bytes());
        let uri_end = offset(buf.len());
        let mut ends = Vec::with_capacity(count);
        for (name, value, sensitive) in headers() {
            let start = buf.len();
            buf.extend_from_slice(name);
            buf[start..].make_ascii_lowercase();
            let name_end = buf.len();
            buf.extend_from_slice(value);
            let value_end = buf.len();
            match (u32::try_from(name_end), u32::try_from(value_end)) {
                (Ok(n), Ok(v)) if v < SENSITIVE => {
                    let flag = if sensitive { SENSITIVE } else { 0 };
                    ends.push((n, v | flag));
                }
                // Beyond 2 GiB of headers (no server reads that much):
                // the rest is not kept.
                _ => {
                    buf.truncate(start);
                    break;
                }
            }
        }
        RequestHead {
            buf: Bytes::from(buf),
            uri_end,
            ends: ends.into_boxed_slice(),
            parsed: OnceLock::new(),
            extensions: http::Extensions::new(),
        }
    }

    /// Keeps `extensions` with the head.
    pub(crate) fn with_extensions(mut self, extensions: http::Extensions) -> RequestHead {
        self.extensions = extensions;
        self
    }

    /// The request's extensions.
    pub(crate) fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// The URI as text.
    fn uri_text(&self) -> &str {
        // The buffer starts with the URI's text form, which is ASCII.
        std::str::from_utf8(&self.buf[..self.uri_end as usize]).unwrap_or("")
    }

    /// The query string of the URI (without `?`), `""` when it has none.
    pub(crate) fn query(&self) -> &str {
        let uri = self.uri_text();
        let uri = uri.split_once('#').map_or(uri, |(u, _)| u);
        uri.split_once('?').map_or("", |(_, q)| q)
    }

    /// The URI, parsed the first time it is asked for.
    pub(crate) fn uri(&self) -> &Uri {
        &self.parsed().uri
    }

    /// The headers, built the first time they are asked for (their values
    /// share this buffer).
    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.parsed().headers
    }

    fn parsed(&self) -> &Parsed {
        self.parsed.get_or_init(|| {
            let text = self.buf.slice(..self.uri_end as usize);
            let uri = Uri::from_maybe_shared(text).unwrap_or_default();
            let mut map = HeaderMap::with_capacity(self.ends.len());
            let mut start = self.uri_end as usize;
            for &(name_end, value_end) in &*self.ends {
                let (name_end, sensitive) = (name_end as usize, value_end & SENSITIVE != 0);
                let value_end = (value_end & !SENSITIVE) as usize;
                let name = HeaderName::from_bytes(&self.buf[start..name_end]);
                let value = HeaderValue::from_maybe_shared(self.buf.slice(name_end..value_end));
                start = value_end;
                // Both were a valid name and value when they were copied.
                if let (Ok(name), Ok(mut value)) = (name, value) {
                    value.set_sensitive(sensitive);
                    map.append(name, value);
                }
            }
            Box::new(Parsed { uri, headers: map })
        })
    }
}

fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Uri, HeaderMap) {
        let uri: Uri = "/socket.io/?EIO=4&transport=websocket&token=a%20b"
            .parse()
            .unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("localhost:3000"));
        headers.append("x-custom", HeaderValue::from_static("one"));
        headers.insert("cookie", HeaderValue::from_static("a=1"));
        headers.append("x-custom", HeaderValue::from_static("two"));
        let mut secret = HeaderValue::from_static("Bearer t");
        secret.set_sensitive(true);
        headers.insert("authorization", secret);
        headers.insert("x-empty", HeaderValue::from_static(""));
        headers.insert(
            "x-bytes",
            HeaderValue::from_bytes(b"caf\xc3\xa9")
                .unwrap_or_else(|_| HeaderValue::from_static("")),
        );
        (uri, headers)
    }

    #[test]
    fn gives_back_the_same_headers_uri_and_query() {
        let (uri, headers) = sample();
        let head = RequestHead::new(&uri, &headers);
        assert_eq!(head.headers(), &headers);
        let got: Vec<_> = head.headers().iter().collect();
        let want: Vec<_> = headers.iter().collect();
        assert_eq!(got, want);
        assert!(head.headers()["authorization"].is_sensitive());
        assert!(!head.headers()["host"].is_sensitive());
        assert_eq!(head.uri(), &uri);
        assert_eq!(head.query(), uri.query().unwrap_or(""));
    }

    #[test]
    fn a_head_copied_as_read_is_the_head_copied_from_http_parts() {
        let raw = b"GET /socket.io/?EIO=4&transport=polling&t=x HTTP/1.1\r\n\
            Host: localhost:3000\r\nX-Custom: one\r\nCookie: a=1\r\n\
            x-custom: two\r\nX-Empty: \r\nX-Bytes: caf\xc3\xa9\r\n\r\n";
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(raw).is_ok_and(|s| s.is_complete()));
        let target = req.path.unwrap_or_default();
        let copied = RequestHead::from_raw(target, req.headers);
        let uri: Uri = target.parse().unwrap_or_default();
        let mut map = HeaderMap::new();
        for h in req.headers.iter() {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(h.name.as_bytes()),
                HeaderValue::from_bytes(h.value),
            ) {
                map.append(name, value);
            }
        }
        let from_parts = RequestHead::new(&uri, &map);
        assert_eq!(copied.headers(), from_parts.headers());
        assert_eq!(copied.headers().get_all("x-custom").iter().count(), 2);
        assert_eq!(copied.uri(), &uri);
        assert_eq!(copied.query(), "EIO=4&transport=polling&t=x");
        assert_eq!(copied.buf.len(), from_parts.buf.len());
    }

    #[test]
    fn an_absolute_uri_and_no_query() {
        let uri: Uri = "https://example.com:8443/socket.io/"
            .parse()
            .unwrap_or_default();
        let head = RequestHead::new(&uri, &HeaderMap::new());
        assert_eq!(head.uri(), &uri);
        assert_eq!(head.query(), "");
        assert!(head.headers().is_empty());
    }

    #[test]
    fn shares_nothing_with_the_request() {
        let (uri, headers) = sample();
        let head = RequestHead::new(&uri, &headers);
        let size: usize = headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        assert_eq!(head.buf.len(), uri.to_string().len() + size);
        assert_eq!(head.ends.len(), headers.len());
    }
}
