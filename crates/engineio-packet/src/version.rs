//! [`ProtocolVersion`]: the `EIO` query parameter.

use std::fmt;
use std::str::FromStr;

/// The Engine.IO protocol revision a session speaks, from the `EIO` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ProtocolVersion {
    /// Revision 3 (Socket.IO v1 and v2 clients): length-prefixed polling payloads, client-sent pings.
    V3 = 3,
    /// Revision 4 (Socket.IO v3 and later clients): `\x1e`-separated polling payloads, server-sent pings.
    V4 = 4,
}

impl ProtocolVersion {
    /// The revision number, 3 or 4.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// The `EIO` value is not a supported protocol revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported protocol version")]
pub struct UnsupportedVersion;

impl FromStr for ProtocolVersion {
    type Err = UnsupportedVersion;
    /// Parses `"3"` or `"4"`.
    fn from_str(s: &str) -> Result<ProtocolVersion, UnsupportedVersion> {
        match s {
            "3" => Ok(ProtocolVersion::V3),
            "4" => Ok(ProtocolVersion::V4),
            _ => Err(UnsupportedVersion),
        }
    }
}

impl TryFrom<u8> for ProtocolVersion {
    type Error = UnsupportedVersion;
    fn try_from(v: u8) -> Result<ProtocolVersion, UnsupportedVersion> {
        match v {
            3 => Ok(ProtocolVersion::V3),
            4 => Ok(ProtocolVersion::V4),
            _ => Err(UnsupportedVersion),
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_u8(), f)
    }
}
