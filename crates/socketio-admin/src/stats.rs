//! `server_stats`: the server's counters sampled every second into
//! per-second buckets (the reference's `aggregatedEvents`), emitted with
//! the server's figures to the admin namespace every 2 s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use socketio_tokio::{ServerStats, WeakSocketIo};

use crate::wire::now_ms;

/// What does not change while the server runs.
pub(crate) struct BaseStats {
    pub(crate) server_id: String,
    pub(crate) hostname: String,
    pub(crate) pid: u32,
    pub(crate) started: Instant,
}

/// Counts by (second, type, sub-type), as the reference's `EventBuffer`.
#[derive(Debug, Default)]
pub(crate) struct EventBuffer {
    buckets: BTreeMap<(u64, &'static str, Option<String>), u64>,
}

impl EventBuffer {
    /// Adds `count` events of `kind` (and `sub`) in the second of `ms`.
    pub(crate) fn push(&mut self, ms: u64, kind: &'static str, sub: Option<&str>, count: u64) {
        if count == 0 {
            return;
        }
        *self
            .buckets
            .entry((ms - ms % 1000, kind, sub.map(str::to_owned)))
            .or_default() += count;
    }

    /// The counts as the UI reads them, and empties the buffer.
    pub(crate) fn take(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.buckets)
            .into_iter()
            .map(|((timestamp, kind, sub), count)| {
                let mut v = json!({ "timestamp": timestamp, "type": kind, "count": count });
                if let Some(sub) = sub {
                    v["subType"] = Value::String(sub);
                }
                v
            })
            .collect()
    }

    /// Adds what happened between two samples of the counters.
    pub(crate) fn add_delta(&mut self, ms: u64, before: &ServerStats, now: &ServerStats) {
        let opened =
            |s: &ServerStats| s.connections_opened_polling + s.connections_opened_websocket;
        self.push(
            ms,
            "rawConnection",
            None,
            opened(now).saturating_sub(opened(before)),
        );
        for (reason, count) in &now.connections_closed {
            let was = before
                .connections_closed
                .iter()
                .find(|(r, _)| r == reason)
                .map_or(0, |(_, c)| *c);
            self.push(
                ms,
                "rawDisconnection",
                Some(reason.as_str()),
                count.saturating_sub(was),
            );
        }
        self.push(
            ms,
            "packetsIn",
            None,
            now.packets_in.saturating_sub(before.packets_in),
        );
        self.push(
            ms,
            "packetsOut",
            None,
            now.packets_out.saturating_sub(before.packets_out),
        );
        self.push(
            ms,
            "bytesIn",
            None,
            now.bytes_in.saturating_sub(before.bytes_in),
        );
        self.push(
            ms,
            "bytesOut",
            None,
            now.bytes_out.saturating_sub(before.bytes_out),
        );
    }
}

/// Samples the counters every second and emits `server_stats` every 2 s,
/// the first at once, until the server is gone.
pub(crate) async fn run(weak: WeakSocketIo, admin_ns: Arc<str>, base: BaseStats) {
    let mut buffer = EventBuffer::default();
    let Some(mut last) = weak.upgrade().map(|io| io.stats()) else {
        return;
    };
    let mut last_ms = now_ms();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let Some(io) = weak.upgrade() else {
            return;
        };
        let now = io.stats();
        buffer.add_delta(last_ms, &last, &now);
        last = now;
        last_ms = now_ms();
        if n.is_multiple_of(2) {
            let (polling, _) = io.connections_by_transport();
            let namespaces: Vec<Value> = io
                .namespaces()
                .into_iter()
                .map(|(name, count)| json!({ "name": &*name, "socketsCount": count }))
                .collect();
            let stats = json!({
                "serverId": base.server_id,
                "hostname": base.hostname,
                "pid": base.pid,
                "uptime": base.started.elapsed().as_secs_f64(),
                "clientsCount": io.connection_count(),
                "pollingClientsCount": polling,
                "aggregatedEvents": buffer.take(),
                "namespaces": namespaces,
            });
            let _ = io.of(admin_ns.to_string()).emit("server_stats", &stats);
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fall_in_their_second_and_are_taken_once() {
        let mut b = EventBuffer::default();
        b.push(5_250, "packetsIn", None, 2);
        b.push(5_999, "packetsIn", None, 3);
        b.push(6_000, "packetsIn", None, 1);
        b.push(6_000, "rawDisconnection", Some("transport close"), 1);
        b.push(6_000, "bytesIn", None, 0);
        let taken = b.take();
        assert_eq!(
            taken,
            vec![
                json!({ "timestamp": 5000, "type": "packetsIn", "count": 5 }),
                json!({ "timestamp": 6000, "type": "packetsIn", "count": 1 }),
                json!({ "timestamp": 6000, "type": "rawDisconnection", "subType": "transport close", "count": 1 }),
            ]
        );
        assert!(b.take().is_empty());
    }
}
