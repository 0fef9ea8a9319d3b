//! What one build cost: wall time, steps run and cached, the slowest steps, the context
//! sent, the image's size and what each layer adds, and the advice. `berth build` prints it
//! and `--format json` gives it as it is.

use std::time::Duration;

use berth_engine::BuiltImage;

use super::Advice;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildReport {
    pub service: String,
    pub image: String,
    pub image_id: String,
    /// `buildkit` or `classic`: the builder that ran (BuildKit may have fallen back).
    pub builder: &'static str,
    pub wall_seconds: f64,
    pub steps: usize,
    pub steps_run: usize,
    pub steps_cached: usize,
    /// The three steps that ran longest, longest first.
    pub slowest: Vec<StepTime>,
    pub context_bytes: u64,
    pub context_files: u64,
    /// The image's size as the engine reports it.
    pub size_bytes: i64,
    /// The layers that add bytes, oldest first (the base image's included).
    pub layers: Vec<LayerSize>,
    pub advice: Vec<Advice>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepTime {
    pub step: String,
    pub seconds: f64,
    pub cached: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerSize {
    pub created_by: String,
    pub size_bytes: i64,
}

/// How many of the slowest steps a report names.
const SLOWEST: usize = 3;

impl BuildReport {
    pub fn new(
        service: &str,
        image: &str,
        built: &BuiltImage,
        wall: Duration,
        advice: Vec<Advice>,
    ) -> BuildReport {
        let mut slowest: Vec<StepTime> = built
            .steps
            .iter()
            .filter(|s| !s.cached)
            .map(|s| StepTime {
                step: s.name.clone(),
                seconds: s.elapsed.as_secs_f64(),
                cached: s.cached,
            })
            .collect();
        slowest.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        slowest.truncate(SLOWEST);
        let cached = built.cached_steps();
        BuildReport {
            service: service.to_string(),
            image: image.to_string(),
            image_id: built.id.clone(),
            builder: built.builder.name(),
            wall_seconds: wall.as_secs_f64(),
            steps: built.steps.len(),
            steps_run: built.steps.len() - cached,
            steps_cached: cached,
            slowest,
            context_bytes: built.context.bytes,
            context_files: built.context.entries,
            size_bytes: built.size_bytes,
            layers: built
                .layers
                .iter()
                .filter(|l| l.size_bytes > 0)
                .map(|l| LayerSize {
                    created_by: l.created_by.clone(),
                    size_bytes: l.size_bytes,
                })
                .collect(),
            advice,
        }
    }
}
