//! The binding's one clock: tokio's, so that a runtime with its clock
//! paused (`tokio::time::pause`) drives heartbeats, upgrade, connect and
//! acknowledgement timeouts in virtual time, as the core's scenario tests do.
//! And the calendar of wall-clock seconds, for the dates the server writes.

use std::time::Instant;

/// Now, as the core takes it.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A moment of UTC on the calendar (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: u64,
    /// 1 to 12.
    pub(crate) month: u64,
    /// 1 to 31.
    pub(crate) day: u64,
    /// The day of the week's English abbreviation (`Thu`).
    pub(crate) weekday: &'static str,
    pub(crate) hour: u64,
    pub(crate) minute: u64,
    pub(crate) second: u64,
}

impl Civil {
    /// The moment `secs` seconds after the Unix epoch.
    pub(crate) fn from_unix(secs: u64) -> Civil {
        const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        let days = secs / 86_400;
        let of_day = secs % 86_400;
        // Days to a date (Howard Hinnant's algorithm), counting from
        // 0000-03-01 so that the leap day ends each 4-year cycle.
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Civil {
            year: yoe + era * 400 + u64::from(month <= 2),
            month,
            day: doy - (153 * mp + 2) / 5 + 1,
            weekday: WEEKDAYS[(days % 7) as usize],
            hour: of_day / 3_600,
            minute: of_day / 60 % 60,
            second: of_day % 60,
        }
    }

    /// The month's English abbreviation (`Jan`).
    pub(crate) fn month_name(&self) -> &'static str {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        MONTHS[(self.month as usize).clamp(1, 12) - 1]
    }
}
