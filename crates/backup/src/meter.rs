//! How far a long step has got — reading a volume into the repository, restoring it, reading
//! packs back — as rustic counts it, handed to whoever shows it (the CLI draws a bar with
//! bytes and throughput on a terminal). Only rustic's byte counters are passed on; its
//! spinners and item counters (listing snapshots, reading the index) are too short to show.

use std::fmt;
use std::sync::Arc;

use rustic_core::{Progress, ProgressBars, ProgressType, RusticProgress};

/// One change of a byte counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// A counted step begins: `backing up`, `restoring file contents`, `reading pack data`.
    Begin { title: String },
    /// The bytes the step expects in all, once rustic knows.
    Total(u64),
    /// Bytes done since the last tick.
    Advance(u64),
    /// The step ended.
    End,
}

type Sink = Arc<dyn Fn(Tick) + Send + Sync>;

/// Where ticks go; the default sends them nowhere.
#[derive(Clone, Default)]
pub struct Meter(Option<Sink>);

impl Meter {
    pub fn new(sink: impl Fn(Tick) + Send + Sync + 'static) -> Meter {
        Meter(Some(Arc::new(sink)))
    }
}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Meter(shown)"
        } else {
            "Meter(none)"
        })
    }
}

/// Two configurations are the same whether or not progress is shown.
impl PartialEq for Meter {
    fn eq(&self, _: &Meter) -> bool {
        true
    }
}

impl Eq for Meter {}

impl ProgressBars for Meter {
    fn progress(&self, kind: ProgressType, prefix: &str) -> Progress {
        match (&self.0, kind) {
            (Some(sink), ProgressType::Bytes) => {
                sink(Tick::Begin {
                    title: prefix.trim_end_matches('.').to_string(),
                });
                Progress::new(Counter(sink.clone()))
            }
            _ => Progress::hidden(),
        }
    }
}

struct Counter(Sink);

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Counter")
    }
}

impl RusticProgress for Counter {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        (self.0)(Tick::Total(len));
    }
    fn set_title(&self, _title: &str) {}
    fn inc(&self, inc: u64) {
        (self.0)(Tick::Advance(inc));
    }
    fn finish(&self) {
        (self.0)(Tick::End);
    }
}
