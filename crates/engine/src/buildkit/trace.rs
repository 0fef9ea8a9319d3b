//! BuildKit's status stream, turned into steps. The engine sends it inside the `/build`
//! response as `moby.buildkit.trace` messages: base64 protobuf `StatusResponse`s, each an
//! update to some of the build's vertexes (a vertex is one step: a FROM, a RUN, a COPY, or
//! BuildKit's own `[internal]` work), with their log output.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
use prost::Message;

use crate::{BuildEvent, StepRecord, StepStatus};

/// How many output lines of each step are kept, for the error of a step that fails.
const KEPT_LINES: usize = 20;

#[derive(Debug, Default)]
pub(crate) struct Trace {
    /// Vertexes by digest, and the order they first appeared in.
    vertexes: BTreeMap<String, Vertex>,
    order: Vec<String>,
}

#[derive(Debug, Default)]
struct Vertex {
    name: String,
    cached: bool,
    started: Option<(i64, i32)>,
    completed: Option<(i64, i32)>,
    error: String,
    lines: VecDeque<String>,
    /// The part of the output after its last newline, until the rest arrives.
    partial: Vec<u8>,
    /// What was last reported, so that an unchanged vertex is not reported again.
    reported: Option<StepStatus>,
}

/// A step that failed: its name (the Dockerfile instruction), BuildKit's error and the last
/// lines it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) step: String,
    pub(crate) error: String,
    pub(crate) lines: Vec<String>,
}

impl Trace {
    /// Applies one base64 `StatusResponse`, calling `on_event` for each step that started,
    /// finished or printed.
    pub(crate) fn apply(
        &mut self,
        encoded: &str,
        on_event: &mut impl FnMut(BuildEvent),
    ) -> Result<(), String> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|err| format!("a status message is not base64: {err}"))?;
        let status = StatusResponse::decode(bytes.as_slice())
            .map_err(|err| format!("a status message does not decode: {err}"))?;
        self.update(status, on_event);
        Ok(())
    }

    fn update(&mut self, status: StatusResponse, on_event: &mut impl FnMut(BuildEvent)) {
        let mut touched = Vec::new();
        for v in status.vertexes {
            if !self.vertexes.contains_key(&v.digest) {
                self.order.push(v.digest.clone());
            }
            let entry = self.vertexes.entry(v.digest.clone()).or_default();
            entry.name = v.name;
            entry.cached |= v.cached;
            if let Some(t) = v.started {
                entry.started = Some((t.seconds, t.nanos));
            }
            if let Some(t) = v.completed {
                entry.completed = Some((t.seconds, t.nanos));
            }
            if !v.error.is_empty() {
                entry.error = v.error;
            }
            touched.push(v.digest);
        }
        for log in status.logs {
            let Some(entry) = self.vertexes.get_mut(&log.vertex) else {
                continue;
            };
            entry.partial.extend_from_slice(&log.msg);
            while let Some(at) = entry.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = entry.partial.drain(..=at).collect();
                let line = String::from_utf8_lossy(&line).trim_end().to_string();
                if entry.lines.len() == KEPT_LINES {
                    entry.lines.pop_front();
                }
                entry.lines.push_back(line.clone());
                if is_step(&entry.name) {
                    on_event(BuildEvent::Output {
                        step: entry.name.clone(),
                        line,
                    });
                }
            }
        }
        for digest in touched {
            let entry = self.vertexes.get_mut(&digest).expect("touched above");
            let status = entry.status();
            if is_step(&entry.name) && entry.reported.as_ref() != Some(&status) {
                entry.reported = Some(status.clone());
                on_event(BuildEvent::Step {
                    name: entry.name.clone(),
                    status,
                });
            }
        }
    }

    /// The build's steps in the order BuildKit started them; BuildKit's own `[internal]`
    /// vertexes and the export are left out, as buildx's summary leaves them out.
    pub(crate) fn steps(&self) -> Vec<StepRecord> {
        self.order
            .iter()
            .filter_map(|digest| self.vertexes.get(digest))
            .filter(|v| is_step(&v.name))
            .map(|v| StepRecord {
                name: v.name.clone(),
                cached: v.cached,
                elapsed: v.elapsed(),
            })
            .collect()
    }

    /// The first step that failed, if one did.
    pub(crate) fn failure(&self) -> Option<Failure> {
        self.order
            .iter()
            .filter_map(|digest| self.vertexes.get(digest))
            .find(|v| !v.error.is_empty() && !v.error.contains("context canceled"))
            .map(|v| Failure {
                step: v.name.clone(),
                error: v.error.clone(),
                lines: v.lines.iter().cloned().collect(),
            })
    }
}

impl Vertex {
    fn status(&self) -> StepStatus {
        if !self.error.is_empty() {
            StepStatus::Failed(self.error.clone())
        } else if self.cached && self.completed.is_some() {
            StepStatus::Cached
        } else if self.completed.is_some() {
            StepStatus::Done(self.elapsed())
        } else {
            StepStatus::Running
        }
    }

    fn elapsed(&self) -> Duration {
        match (self.started, self.completed) {
            (Some((s0, n0)), Some((s1, n1))) => {
                let nanos = (s1 - s0) as i128 * 1_000_000_000 + (n1 - n0) as i128;
                Duration::from_nanos(nanos.max(0) as u64)
            }
            _ => Duration::ZERO,
        }
    }
}

/// Whether a vertex is a Dockerfile step (`[stage 2/4] RUN …`, `[1/3] FROM …`) rather than
/// BuildKit's own bookkeeping (`[internal] load metadata …`, `exporting to image`).
fn is_step(name: &str) -> bool {
    name.starts_with('[') && !name.starts_with("[internal]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_buildkit_proto::google::protobuf::Timestamp;
    use bollard_buildkit_proto::moby::buildkit::v1::{Vertex as V, VertexLog};

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    fn vertex(digest: &str, name: &str, started: i64, completed: Option<i64>) -> V {
        V {
            digest: digest.into(),
            name: name.into(),
            started: at(started),
            completed: completed.and_then(at),
            ..Default::default()
        }
    }

    #[test]
    fn steps_are_timed_cached_and_reported_once_per_change() {
        let mut trace = Trace::default();
        let mut events = Vec::new();
        let mut on = |e| events.push(e);
        trace.update(
            StatusResponse {
                vertexes: vec![
                    vertex("a", "[internal] load build definition", 0, Some(1)),
                    vertex("b", "[1/2] FROM base", 1, None),
                ],
                ..Default::default()
            },
            &mut on,
        );
        trace.update(
            StatusResponse {
                vertexes: vec![
                    vertex("b", "[1/2] FROM base", 1, Some(2)),
                    V {
                        cached: true,
                        ..vertex("c", "[2/2] RUN make", 2, Some(2))
                    },
                ],
                logs: vec![VertexLog {
                    vertex: "b".into(),
                    msg: b"one\ntw".to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            &mut on,
        );
        trace.update(
            StatusResponse {
                vertexes: vec![vertex("b", "[1/2] FROM base", 1, Some(2))],
                ..Default::default()
            },
            &mut on,
        );
        assert_eq!(
            events,
            vec![
                BuildEvent::Step {
                    name: "[1/2] FROM base".into(),
                    status: StepStatus::Running
                },
                BuildEvent::Output {
                    step: "[1/2] FROM base".into(),
                    line: "one".into()
                },
                BuildEvent::Step {
                    name: "[1/2] FROM base".into(),
                    status: StepStatus::Done(Duration::from_secs(1))
                },
                BuildEvent::Step {
                    name: "[2/2] RUN make".into(),
                    status: StepStatus::Cached
                },
            ]
        );
        let steps = trace.steps();
        assert_eq!(steps.len(), 2);
        assert!(!steps[0].cached && steps[1].cached);
        assert_eq!(steps[0].elapsed, Duration::from_secs(1));
    }

    #[test]
    fn a_failed_step_keeps_its_last_lines() {
        let mut trace = Trace::default();
        let lines: String = (0..30).map(|i| format!("line {i}\n")).collect();
        trace.update(
            StatusResponse {
                vertexes: vec![V {
                    error:
                        "process \"/bin/sh -c false\" did not complete successfully: exit code: 1"
                            .into(),
                    ..vertex("x", "[2/2] RUN false", 0, Some(1))
                }],
                logs: vec![VertexLog {
                    vertex: "x".into(),
                    msg: lines.into_bytes(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            &mut |_| {},
        );
        let failure = trace.failure().unwrap();
        assert_eq!(failure.step, "[2/2] RUN false");
        assert_eq!(failure.lines.len(), KEPT_LINES);
        assert_eq!(failure.lines.last().unwrap(), "line 29");
    }
}
