//! What the load generator and the runner share: the report a generator
//! process prints at its end, the HDR histogram codec that lets the runner
//! merge the reports of several processes, readers of `/proc`, and what a
//! run's header says of the time and the machine.
//!
//! The generator (`loadgen`) prints one line per phase on its standard
//! output: `READY` once its clients are connected (and joined), `START` and
//! `END` around the measured window, and `REPORT <json>` last.

use std::io::Cursor;

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

/// The figures of one generator process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// The scenario: `echo`, `echo_ack`, `broadcast`, `idle`, `poll`, `connect` or `connect_poll`.
    pub scenario: String,
    /// Clients asked for.
    pub clients: u64,
    /// Clients that completed the handshake.
    pub connected: u64,
    /// Clients whose handshake failed.
    pub failed: u64,
    /// Seconds from the first connection attempt until every client was up.
    pub connect_secs: f64,
    /// Messages sent (events, or broadcasts) whose intended time fell in the window.
    pub sent: u64,
    /// Answers (or deliveries) to the messages counted in `sent`.
    pub received: u64,
    /// Deliveries expected for the broadcasts in the window (`sent` × recipients).
    pub expected: u64,
    /// HTTP requests made in the window (long-polling).
    pub requests: u64,
    /// Length of the measured window in seconds.
    pub window_secs: f64,
    /// Seconds from the first intended send of the window to the last answer or delivery.
    pub span_secs: f64,
    /// CPU seconds (user + system) the generator spent in the window.
    pub gen_cpu_secs: f64,
    /// Latency in microseconds from the intended send time (HDR, see [`encode`]).
    pub latency: String,
    /// Latency in microseconds from the actual send time.
    pub service: String,
    /// Broadcast: microseconds from the intended send time to the last recipient, per broadcast.
    pub last_recipient: String,
}

/// A histogram of microseconds, 1 µs to 100 s, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// The histogram in the V2 format, base64.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut out = Vec::new();
    if V2Serializer::new().serialize(h, &mut out).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// The histogram [`encode`] wrote (an empty one for an empty or broken text).
pub fn decode(text: &str) -> Histogram<u64> {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text) else {
        return histogram();
    };
    Deserializer::new()
        .deserialize(&mut Cursor::new(bytes))
        .unwrap_or_else(|_| histogram())
}

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
pub const TICKS_PER_SEC: f64 = 100.0;

/// User plus system CPU time of a process, in clock ticks, from `/proc/<pid>/stat`.
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // Fields 14 and 15 of the line (utime, stime) are 11 and 12 after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Resident memory of a process in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The time now, `YYYY-MM-DD HH:MM UTC`, for a run's header.
pub fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The machine, `<cores> cores, <CPU model>`, from `/proc/cpuinfo`.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown CPU")
        .trim()
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

/// The load averages over 1, 5 and 15 minutes, from `/proc/loadavg`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_survive_the_round_trip() {
        let mut h = histogram();
        for v in [1, 10, 100, 1000, 50_000, 2_000_000] {
            h.record(v).expect("in range");
        }
        let back = decode(&encode(&h));
        assert_eq!(back.len(), 6);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn broken_text_gives_an_empty_histogram() {
        assert_eq!(decode("not base64!").len(), 0);
        assert_eq!(decode("").len(), 0);
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let mut spin = 0u64;
        for i in 0..5_000_000u64 {
            spin = spin.wrapping_add(i * i);
        }
        assert!(spin > 0);
        assert!(cpu_ticks("self").is_some());
        assert!(rss_kib("self").is_some_and(|k| k > 0));
    }
}
