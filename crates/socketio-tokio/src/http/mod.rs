//! The HTTP side: the tower service and layer (CORS, admission, the
//! WebSocket upgrade, the client bundle) and the standalone server.

pub(crate) mod client;
pub(crate) mod compress;
pub(crate) mod h1;
pub(crate) mod serve;
pub(crate) mod service;

/// A header value as text, when it is all visible ASCII, spaces and tabs
/// (what `HeaderValue::to_str` takes).
pub(crate) fn header_str(value: &[u8]) -> Option<&str> {
    let visible = value
        .iter()
        .all(|b| *b == b'\t' || (b' '..=b'~').contains(b));
    visible.then(|| std::str::from_utf8(value).ok()).flatten()
}
