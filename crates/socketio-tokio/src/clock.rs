//! The binding's one clock: tokio's, so that a runtime with its clock
//! paused (`tokio::time::pause`) drives heartbeats, upgrade, connect and
//! acknowledgement timeouts in virtual time, as the core's scenario tests do.

use std::time::Instant;

/// Now, as the core takes it.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
