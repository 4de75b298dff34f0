//! What a test server saw, in order (disconnect reasons, listener calls), and
//! bounded waits on it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a wait on the log may take: generous, for a loaded machine.
const LOG_WAIT: Duration = Duration::from_secs(20);

/// What the server saw, in order.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (bounded) until the log holds `line`.
    pub async fn wait_for(&self, line: &str) {
        self.wait_until(&format!("{line:?}"), |l| l == line).await;
    }

    /// Waits (bounded) until a line satisfies `f`.
    pub async fn wait_until(&self, what: &str, f: impl Fn(&str) -> bool) {
        let found = tokio::time::timeout(LOG_WAIT, async {
            while !self.lines().iter().any(|l| f(l)) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(found.is_ok(), "never saw {what}; log: {:?}", self.lines());
    }
}
