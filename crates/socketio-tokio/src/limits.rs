//! Admission control: the `Origin` allowlist, and the limits on sessions
//! in total and per remote IP address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use http::HeaderValue;

/// Who may open sessions, as configured on the builder.
#[derive(Debug, Clone, Default)]
pub(crate) struct Admission {
    /// The origins allowed to call (`https://example.com`); `None`: any.
    pub(crate) origins: Option<Vec<HeaderValue>>,
    /// The most sessions at once.
    pub(crate) max_sessions: Option<usize>,
    /// The most sessions at once from one IP address.
    pub(crate) max_sessions_per_ip: Option<usize>,
}

impl Admission {
    /// Whether a request with this `Origin` header may go on. A request
    /// without one (a non-browser client, a same-origin GET) may: browsers
    /// send it with every WebSocket and cross-origin request, which is
    /// what the allowlist guards against.
    pub(crate) fn origin_allowed(&self, origin: Option<&HeaderValue>) -> bool {
        match (&self.origins, origin) {
            (None, _) | (Some(_), None) => true,
            (Some(list), Some(origin)) => list
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin.as_bytes())),
        }
    }
}

/// The sessions counted against the limits.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// The live sessions, shared by the HTTP side and the connections' tasks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sessions(Arc<Mutex<Counts>>);

/// A session's place under the limits, given back when dropped (when its
/// connection's task ends).
#[derive(Debug)]
pub(crate) struct Slot {
    sessions: Sessions,
    ip: Option<IpAddr>,
}

impl Sessions {
    /// Takes a place for a new session from `ip`, if the limits allow.
    pub(crate) fn admit(&self, rules: &Admission, ip: Option<IpAddr>) -> Option<Slot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if rules.max_sessions.is_some_and(|max| counts.total >= max) {
            tracing::debug!(total = counts.total, "session limit reached");
            return None;
        }
        if let (Some(max), Some(ip)) = (rules.max_sessions_per_ip, ip)
            && counts.per_ip.get(&ip).copied().unwrap_or(0) >= max
        {
            tracing::debug!(%ip, "session limit per address reached");
            return None;
        }
        counts.total += 1;
        if let Some(ip) = ip {
            *counts.per_ip.entry(ip).or_default() += 1;
        }
        Some(Slot {
            sessions: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.sessions.0.lock().unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.ip
            && let Some(n) = counts.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }
}
