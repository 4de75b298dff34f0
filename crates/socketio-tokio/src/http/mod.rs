//! The HTTP side: the tower service and layer (CORS, admission, the
//! WebSocket upgrade, the client bundle) and the standalone server.

pub(crate) mod client;
pub(crate) mod compress;
pub(crate) mod h1;
pub(crate) mod serve;
pub(crate) mod service;
