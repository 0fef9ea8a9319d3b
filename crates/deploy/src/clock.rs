//! Wall-clock time as the state store and the project lock record it: milliseconds since the
//! Unix epoch, and a readable UTC rendering of such a time.
//!
//! Times are kept as plain integers so that the database, the lock file and `--format json`
//! share one unambiguous form; rendering is UTC because reading the host's time zone rules
//! (`/etc/localtime`) would need a time-zone crate for a message that only has to say "when".

use berth_base::civil::civil_from_days;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch now. A clock set before 1970 reads as 0 rather than
/// failing, because a wrong timestamp in a release record is better than a failed deploy.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `ms` (since the Unix epoch) as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // A u64 count of days since 1970 fits an i64 for any time a u64 of milliseconds holds.
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 is a leap day in a century year divisible by 400.
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_795_325_467_999), "2026-11-22 05:31:07 UTC");
    }
}
