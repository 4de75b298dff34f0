//! The server's address, read from the URL given to `connect`.

use crate::error::Error;

/// Where the server is, and which namespace the URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Whether the connection uses TLS (`https`, `wss`).
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The namespace: the URL's path (`/` when it has none), as the official client reads it.
    pub(crate) nsp: String,
}

impl Target {
    /// Reads `http://host:port/nsp` (also `https`, `ws`, `wss`).
    pub(crate) fn parse(url: &str) -> Result<Target, Error> {
        let bad = || Error::InvalidUrl(url.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            _ => return Err(bad()),
        };
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().map_err(|_| bad())?),
                None if after.is_empty() => None,
                None => return Err(bad()),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p.parse().map_err(|_| bad())?)),
                None => (authority.to_owned(), None),
            }
        };
        let nsp = match path.trim_end_matches('/') {
            "" => "/".to_owned(),
            p => p.to_owned(),
        };
        Ok(Target {
            tls,
            port: port.unwrap_or(if tls { 443 } else { 80 }),
            host,
            nsp,
        })
    }

    /// `host:port` for a `Host` header and for connecting.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://localhost:3000").expect("url");
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.nsp.as_str()),
            (false, "localhost", 3000, "/")
        );
        let t = Target::parse("https://example.com/admin/?x=1").expect("url");
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.nsp.as_str()),
            (true, "example.com", 443, "/admin")
        );
        let t = Target::parse("ws://[::1]:80/").expect("url");
        assert_eq!((t.authority().as_str(), t.nsp.as_str()), ("[::1]:80", "/"));
        for bad in [
            "localhost:3000",
            "ftp://x",
            "http://",
            "http://h:99999",
            "http://u@h",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
