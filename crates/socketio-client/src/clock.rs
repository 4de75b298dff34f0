//! The one clock: tokio's, so that a runtime with its clock paused drives the client in virtual time.

use std::time::Instant;

/// Now, by tokio's clock.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
