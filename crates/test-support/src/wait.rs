//! Polling until a condition holds, for state that Docker reaches asynchronously.

use std::time::{Duration, Instant};

const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Polls `check` until it returns true or `timeout` passes; returns whether it held.
pub fn try_wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Like [`try_wait_for`], but panics with `what` when the condition never holds.
pub fn wait_for(what: &str, timeout: Duration, check: impl FnMut() -> bool) {
    if !try_wait_for(timeout, check) {
        panic!("timed out after {timeout:?} waiting for {what}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_the_condition_holds() {
        let mut calls = 0;
        assert!(try_wait_for(Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        }));
        assert_eq!(calls, 3);
    }

    #[test]
    fn gives_up_after_the_timeout() {
        assert!(!try_wait_for(Duration::from_millis(250), || false));
    }
}
