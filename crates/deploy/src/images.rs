//! The image of every service: built where the service has `build:` and the image is missing
//! (or every one with `--build`), else found on the engine. berth never pulls from a registry.

use crate::build::{BuildError, BuildProgress, BuildRequest};
use crate::desired::Desired;
use berth_engine::{Engine, EngineError};
use std::collections::BTreeMap;
use std::time::Duration;

/// What resolving images reports while it builds.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageEvent {
    /// A build of `image` for `service` started.
    Building { service: String, image: String },
    /// `image` was built.
    Built {
        image: String,
        elapsed: Duration,
        steps: usize,
        cached_steps: usize,
        layers: usize,
        size_bytes: i64,
    },
    /// Something about a build the user should see (the classic builder used instead).
    Notice { service: String, text: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A build could not start or failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Images that are neither on the engine nor buildable, one line per service.
    #[error("{}", .0.join("\n"))]
    Missing(Vec<String>),
}

/// Builds images as needed (in parallel, through [`crate::build`]) and returns the id of
/// every service's image.
pub async fn resolve(
    engine: &Engine,
    desired: &Desired,
    build_all: bool,
    on: &(dyn Fn(ImageEvent) + Sync),
) -> Result<BTreeMap<String, String>, ImageError> {
    let mut ids = BTreeMap::new();
    let mut missing = Vec::new();
    let mut to_build = Vec::new();
    for svc in &desired.services {
        let present = engine.image_id(&svc.image).await?;
        match (&svc.build, present) {
            (Some(_), present) if build_all || present.is_none() => to_build.push(svc.name.clone()),
            (_, Some(id)) => {
                ids.insert(svc.name.clone(), id);
            }
            (_, None) => missing.push(format!(
                "service `{}`: image {} is not on this engine and berth never pulls from a registry; build it, load it (`docker load`), or add `build:`",
                svc.name, svc.image
            )),
        }
    }
    if !missing.is_empty() {
        return Err(ImageError::Missing(missing));
    }
    if !to_build.is_empty() {
        let request = BuildRequest {
            services: to_build,
            parallel: default_parallelism(),
            ..Default::default()
        };
        let forward = |p: BuildProgress| match p {
            BuildProgress::Started { service, image } => {
                on(ImageEvent::Building { service, image })
            }
            BuildProgress::Notice { service, text } => on(ImageEvent::Notice { service, text }),
            BuildProgress::Finished(report) => on(ImageEvent::Built {
                image: report.image.clone(),
                elapsed: Duration::from_secs_f64(report.wall_seconds),
                steps: report.steps,
                cached_steps: report.steps_cached,
                layers: report.layers.len(),
                size_bytes: report.size_bytes,
            }),
            _ => {}
        };
        let reports = crate::build::build(engine, desired, &request, &forward).await?;
        ids.extend(crate::build::ids(&reports));
    }
    Ok(ids)
}

/// Builds at once when none is asked for: one per core, as buildx does.
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Routed services join the host's proxy network; it is created here when no proxy was
/// booted yet, so `up` and `deploy` work before `berth proxy boot`.
pub async fn ensure_proxy_network(engine: &Engine, desired: &Desired) -> Result<(), EngineError> {
    if desired
        .external_networks
        .iter()
        .any(|n| n == crate::labels::PROXY_NETWORK)
    {
        engine
            .ensure_network(&crate::labels::proxy_network())
            .await?;
    }
    Ok(())
}
