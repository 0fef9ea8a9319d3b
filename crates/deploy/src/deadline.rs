//! How long to wait for a dependency before giving up.
//!
//! Docker marks a container `unhealthy` after `retries` consecutive failed probes, counted only
//! once `start_period` is over; each probe takes at most `timeout` and the next one starts
//! `interval` later. So the latest moment a container can still turn healthy, or be declared
//! unhealthy, is `start_period + (interval + timeout) * retries`. We add a margin for the
//! engine's own scheduling and our polling. Waiting longer than that is pointless: the engine
//! has made up its mind by then.

use berth_compose::model::Healthcheck;
use std::time::Duration;

/// Docker's defaults for a healthcheck field the user left out.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RETRIES: u64 = 3;
pub const DEFAULT_START_PERIOD: Duration = Duration::ZERO;

/// Slack for the engine and our polling on top of the healthcheck's own budget.
pub const MARGIN: Duration = Duration::from_secs(5);

/// How long a container without a healthcheck gets to reach (and stay in) `running`. A process
/// that crashes on start does so within seconds; this catches it without delaying healthy ones.
pub const RUNNING_CHECK: Duration = Duration::from_secs(10);

/// The deadline for `service_healthy`.
///
/// `None` (no `healthcheck:` in the compose file) still uses Docker's defaults, because the
/// image itself may declare a `HEALTHCHECK` with default timing. A disabled healthcheck cannot
/// ever report healthy; we give it the running check, and the waiter reports the mismatch.
pub fn healthy(hc: Option<&Healthcheck>) -> Duration {
    if let Some(hc) = hc {
        if hc.disable || hc.test.first().map(String::as_str) == Some("NONE") {
            return RUNNING_CHECK;
        }
    }
    let get = |f: fn(&Healthcheck) -> Option<Duration>, d: Duration| hc.and_then(f).unwrap_or(d);
    let interval = get(|h| h.interval.map(|d| d.0), DEFAULT_INTERVAL);
    let timeout = get(|h| h.timeout.map(|d| d.0), DEFAULT_TIMEOUT);
    let start_period = get(|h| h.start_period.map(|d| d.0), DEFAULT_START_PERIOD);
    let retries = hc.and_then(|h| h.retries).unwrap_or(DEFAULT_RETRIES);
    // Docker treats `retries: 0` as its default.
    let retries = if retries == 0 {
        DEFAULT_RETRIES
    } else {
        retries
    };
    let per_try = interval.saturating_add(timeout);
    start_period
        .saturating_add(per_try.saturating_mul(retries.min(u32::MAX as u64) as u32))
        .saturating_add(MARGIN)
}

/// The deadline for `service_started`: the container must be running.
pub fn started() -> Duration {
    RUNNING_CHECK
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_compose::duration::GoDuration;

    fn d(s: u64) -> Option<GoDuration> {
        Some(GoDuration(Duration::from_secs(s)))
    }

    #[test]
    fn deadlines() {
        let cases: &[(Option<Healthcheck>, u64)] = &[
            // Docker's defaults: 0 + (30 + 30) * 3 + 5.
            (None, 185),
            (Some(Healthcheck::default()), 185),
            (
                Some(Healthcheck {
                    test: vec!["CMD".into(), "true".into()],
                    interval: d(2),
                    timeout: d(1),
                    retries: Some(5),
                    start_period: d(2),
                    ..Default::default()
                }),
                2 + 3 * 5 + 5,
            ),
            (
                Some(Healthcheck {
                    interval: d(2),
                    retries: Some(15),
                    ..Default::default()
                }),
                (2 + 30) * 15 + 5,
            ),
            (
                Some(Healthcheck {
                    retries: Some(0),
                    interval: d(1),
                    timeout: d(1),
                    ..Default::default()
                }),
                2 * 3 + 5,
            ),
            (
                Some(Healthcheck {
                    disable: true,
                    ..Default::default()
                }),
                10,
            ),
            (
                Some(Healthcheck {
                    test: vec!["NONE".into()],
                    ..Default::default()
                }),
                10,
            ),
        ];
        for (hc, secs) in cases {
            assert_eq!(healthy(hc.as_ref()), Duration::from_secs(*secs), "{hc:?}");
        }
        assert_eq!(started(), Duration::from_secs(10));
    }
}
