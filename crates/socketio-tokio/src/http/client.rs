//! The official client's bundle, served under the server's path as the
//! reference's `serveClient` serves it.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::Full;

use crate::config::{CLIENT_FILES, ClientFiles};
use crate::http::compress::Coding;

/// The bundle's file a request asks for: the path is the server's path
/// (`/socket.io/`) followed by one of [`CLIENT_FILES`], as the reference
/// reads it.
pub(crate) fn file_name(path: &str, base: &str) -> Option<&'static str> {
    let name = path.strip_prefix(base)?;
    CLIENT_FILES.into_iter().find(|f| *f == name)
}

/// The answer to a request for `name`: 304 when `If-None-Match` names the
/// bundle's ETag (strong or weak), 404 when the file was not in the
/// directory, otherwise the file, compressed when the client accepts gzip
/// or deflate.
pub(crate) fn serve(
    files: &ClientFiles,
    name: &'static str,
    headers: &HeaderMap,
) -> http::Response<Full<Bytes>> {
    let etag = files.etag.as_bytes();
    let matches = headers.get(header::IF_NONE_MATCH).is_some_and(|v| {
        let v = v.as_bytes();
        v == etag || v.strip_prefix(b"W/") == Some(etag)
    });
    if matches {
        let mut res = http::Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        return res;
    }
    let Some(file) = files.files.iter().find(|f| f.name == name) else {
        tracing::debug!(name, "a file of the client bundle that is not there");
        let body = format!("{name} is not in {}\n", files.dir.display());
        let mut res = http::Response::new(Full::new(Bytes::from(body)));
        *res.status_mut() = StatusCode::NOT_FOUND;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return res;
    };
    let coding = Coding::negotiate(headers);
    let body = coding.and_then(|coding| {
        let slot = match coding {
            Coding::Gzip => &file.gzip,
            Coding::Deflate => &file.deflate,
        };
        let body = slot.get_or_init(|| coding.compress(&file.bytes)).clone()?;
        Some((coding, body))
    });
    let (coding, body) = match body {
        Some((coding, body)) => (Some(coding), body),
        None => (None, file.bytes.clone()),
    };
    let mut res = http::Response::new(Full::new(body));
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0"),
    );
    let content_type = match name.ends_with(".map") {
        true => "application/json; charset=utf-8",
        false => "application/javascript; charset=utf-8",
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(etag) = HeaderValue::from_str(&files.etag) {
        h.insert(header::ETAG, etag);
    }
    if let Some(coding) = coding {
        h.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(coding.name()),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bundle_s_names_right_under_the_path() {
        let base = "/socket.io/";
        assert_eq!(
            file_name("/socket.io/socket.io.js", base),
            Some("socket.io.js")
        );
        assert_eq!(
            file_name("/socket.io/socket.io.msgpack.min.js.map", base),
            Some("socket.io.msgpack.min.js.map")
        );
        assert_eq!(file_name("/socket.io/", base), None);
        assert_eq!(file_name("/socket.io/socket.io.msgpack.js", base), None);
        assert_eq!(file_name("/socket.io/x/socket.io.js", base), None);
        assert_eq!(file_name("/other/socket.io.js", base), None);
    }
}
