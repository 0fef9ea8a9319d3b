//! Long silent steps (a release build with `--quiet`, debootstrap) shown while they run: a
//! spinner with the elapsed time on a terminal, one plain line before and one after when the
//! output is piped (CI logs stay line-oriented).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

/// Runs `work` while telling the user that `title` is under way; ends with the time it took.
pub fn during<T>(title: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = Instant::now();
    let spinner = if std::io::stdout().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(title.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    } else {
        println!("{title} ...");
        None
    };
    let result = work();
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    let took = started.elapsed().as_secs_f64();
    match &result {
        Ok(_) => println!("{title}: done in {took:.1}s"),
        Err(_) => println!("{title}: failed after {took:.1}s"),
    }
    result
}
