//! The protocol's rules on names that decoders of every format share.

/// Event names that the reference refuses, since they have a meaning of their own.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];
