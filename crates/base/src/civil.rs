//! Days since the Unix epoch to and from a proleptic Gregorian (year, month, day), after
//! Howard Hinnant's `days_from_civil` and `civil_from_days`
//! (<https://howardhinnant.github.io/date_algorithms.html>).
//!
//! berth reads and writes a handful of dates (engine timestamps, certificate validity, HTTP
//! `Date:` headers, release times); a date crate for these two conversions would cost more
//! than the arithmetic.

/// The days from 1970-01-01 to `year-month-day` (negative before the epoch). `month` is
/// 1-12 and `day` 1-31; the caller checks the ranges, as each format has its own error.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    // Count years from March, so that a leap day is the last day of its year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month 1-12, day 1-31) that is `days` after 1970-01-01 (before it when
/// negative).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so that a leap day is the last day of its "year".
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both values are small (1-31 and 1-12), so the conversions cannot truncate.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dates with their day numbers, checked against `date -u -d @$((N*86400))`.
    const KNOWN: &[(i64, (i64, u32, u32))] = &[
        (0, (1970, 1, 1)),
        (-1, (1969, 12, 31)),
        (59, (1970, 3, 1)),
        (10_956, (1999, 12, 31)),
        (10_957, (2000, 1, 1)),
        // 2000 is divisible by 400, so it has a 29 February.
        (11_016, (2000, 2, 29)),
        (11_017, (2000, 3, 1)),
        (19_782, (2024, 2, 29)),
        (20_792, (2026, 12, 5)),
        // 2100 is divisible by 100 but not 400, so it has none.
        (47_540, (2100, 2, 28)),
        (47_541, (2100, 3, 1)),
        (-719_468, (0, 3, 1)),
    ];

    #[test]
    fn known_dates_both_ways() {
        for &(days, (y, m, d)) in KNOWN {
            assert_eq!(civil_from_days(days), (y, m, d), "civil_from_days({days})");
            assert_eq!(
                days_from_civil(y, m, d),
                days,
                "days_from_civil({y}-{m}-{d})"
            );
        }
    }

    #[test]
    fn every_day_round_trips_and_follows_the_previous() {
        // From 1900 to 2200, each day is the next date after the one before.
        let mut prev = civil_from_days(days_from_civil(1900, 1, 1) - 1);
        for days in days_from_civil(1900, 1, 1)..days_from_civil(2200, 1, 1) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            let next_in_month = (prev.0, prev.1, prev.2 + 1);
            let next_month = if prev.1 == 12 {
                (prev.0 + 1, 1, 1)
            } else {
                (prev.0, prev.1 + 1, 1)
            };
            assert!(
                (y, m, d) == next_in_month || (y, m, d) == next_month,
                "{prev:?} is followed by {:?}",
                (y, m, d)
            );
            prev = (y, m, d);
        }
    }

    #[test]
    fn leap_years() {
        let feb = |y| days_from_civil(y, 3, 1) - days_from_civil(y, 2, 1);
        assert_eq!(feb(1970), 28);
        assert_eq!(feb(2000), 29);
        assert_eq!(feb(2024), 29);
        assert_eq!(feb(2100), 28);
        assert_eq!(feb(1900), 28);
    }
}
