//! Compression of polling responses, as the reference's `httpCompression`:
//! a response of at least the threshold (1 KiB by default) goes out with
//! gzip or deflate when the request's `Accept-Encoding` takes one.

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use http::{HeaderMap, HeaderValue, header};

/// A content coding the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Deflate,
}

impl Coding {
    /// The `Content-Encoding` value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }

    /// The coding a request's `Accept-Encoding` prefers among gzip and
    /// deflate: the higher quality, then the one the client named first
    /// (`*` names every coding it does not name itself), then gzip; none
    /// when neither is acceptable (absent, or `q=0`).
    pub(crate) fn negotiate(headers: &HeaderMap) -> Option<Coding> {
        Coding::negotiate_values(
            headers
                .get_all(header::ACCEPT_ENCODING)
                .into_iter()
                .map(HeaderValue::as_bytes),
        )
    }

    /// [`negotiate`](Coding::negotiate) over the values of the
    /// `Accept-Encoding` headers, in order.
    pub(crate) fn negotiate_values<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<Coding> {
        // (quality in thousandths, position in the header) of each.
        let mut gzip: Option<(u16, usize)> = None;
        let mut deflate: Option<(u16, usize)> = None;
        let mut any: Option<(u16, usize)> = None;
        let mut position = 0;
        for value in values {
            let Some(value) = super::header_str(value) else {
                continue;
            };
            for element in value.split(',') {
                let mut parts = element.split(';');
                let name = parts.next().unwrap_or_default().trim();
                if name.is_empty() {
                    continue;
                }
                let quality = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .next()
                    .map_or(Some(1000), quality);
                let Some(quality) = quality else { continue };
                let slot = if name.eq_ignore_ascii_case("gzip") {
                    &mut gzip
                } else if name.eq_ignore_ascii_case("deflate") {
                    &mut deflate
                } else if name == "*" {
                    &mut any
                } else {
                    position += 1;
                    continue;
                };
                slot.get_or_insert((quality, position));
                position += 1;
            }
        }
        let gzip = gzip.or(any).filter(|(q, _)| *q > 0);
        let deflate = deflate.or(any).filter(|(q, _)| *q > 0);
        match (gzip, deflate) {
            (Some(g), Some(d)) => {
                if d.0 > g.0 || (d.0 == g.0 && d.1 < g.1) {
                    Some(Coding::Deflate)
                } else {
                    Some(Coding::Gzip)
                }
            }
            (Some(_), None) => Some(Coding::Gzip),
            (None, Some(_)) => Some(Coding::Deflate),
            (None, None) => None,
        }
    }

    /// `body` compressed with this coding, at zlib's default level (as
    /// Node's `zlib` compresses); `None` if the encoder failed.
    pub(crate) fn compress(self, body: &[u8]) -> Option<Bytes> {
        let out = Vec::with_capacity(body.len() / 2);
        let level = Compression::default();
        let out = match self {
            Coding::Gzip => {
                let mut e = GzEncoder::new(out, level);
                e.write_all(body).ok()?;
                e.finish().ok()?
            }
            Coding::Deflate => {
                // HTTP's `deflate` is the zlib format (RFC 9110), as Node's
                // `createDeflate` writes it.
                let mut e = ZlibEncoder::new(out, level);
                e.write_all(body).ok()?;
                e.finish().ok()?
            }
        };
        Some(Bytes::from(out))
    }
}

/// A `q` value in thousandths (`1`, `0.5`, `0.125`); `None` when malformed.
fn quality(q: &str) -> Option<u16> {
    let q = q.trim();
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = match whole {
        "0" => fraction
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0u16, |n, b| n * 10 + u16::from(b - b'0')),
        "1" if fraction.bytes().all(|b| b == b'0') => 1000,
        _ => return None,
    };
    Some(thousandths)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Read;

    use http::HeaderValue;

    use super::*;

    fn negotiate(values: &[&str]) -> Option<Coding> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        Coding::negotiate(&headers)
    }

    #[test]
    fn the_client_s_preference_decides() {
        assert_eq!(negotiate(&[]), None);
        assert_eq!(negotiate(&["identity"]), None);
        assert_eq!(negotiate(&["br"]), None);
        assert_eq!(negotiate(&["gzip, deflate, br"]), Some(Coding::Gzip));
        assert_eq!(negotiate(&["deflate, gzip"]), Some(Coding::Deflate));
        assert_eq!(negotiate(&["deflate"]), Some(Coding::Deflate));
        assert_eq!(negotiate(&["gzip;q=0.5, deflate"]), Some(Coding::Deflate));
        assert_eq!(negotiate(&["gzip;q=0, deflate;q=0"]), None);
        assert_eq!(negotiate(&["gzip;q=0"]), None);
        assert_eq!(negotiate(&["*"]), Some(Coding::Gzip));
        assert_eq!(negotiate(&["*;q=0.1, deflate"]), Some(Coding::Deflate));
        assert_eq!(negotiate(&["*, gzip;q=0"]), Some(Coding::Deflate));
        assert_eq!(negotiate(&["br", "DEFLATE ; q=0.9"]), Some(Coding::Deflate));
        // A malformed quality drops its element, not the header.
        assert_eq!(
            negotiate(&["gzip;q=2, deflate;q=0.3"]),
            Some(Coding::Deflate)
        );
        assert_eq!(negotiate(&["gzip;q=abc"]), None);
    }

    #[test]
    fn qualities_are_read_to_the_thousandth() {
        assert_eq!(quality("1"), Some(1000));
        assert_eq!(quality("1.000"), Some(1000));
        assert_eq!(quality("0"), Some(0));
        assert_eq!(quality("0.5"), Some(500));
        assert_eq!(quality("0.125"), Some(125));
        assert_eq!(quality("0.1250"), None);
        assert_eq!(quality("1.5"), None);
        assert_eq!(quality(""), None);
    }

    #[test]
    fn what_is_compressed_inflates_back() {
        let body = "42[\"state\",".to_owned() + &"{\"value\":1},".repeat(200) + "0]";
        let gz = Coding::Gzip.compress(body.as_bytes()).unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, body);
        assert!(gz.len() < body.len() / 4);
        let z = Coding::Deflate.compress(body.as_bytes()).unwrap();
        let mut text = String::new();
        flate2::read::ZlibDecoder::new(&z[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, body);
    }
}
