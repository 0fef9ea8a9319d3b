//! The image of every service: built where the service has `build:` and the image is missing
//! (or every one with `--build`), else found on the engine. berth never pulls from a registry.

use crate::desired::Desired;
use berth_engine::{Engine, EngineError};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A service's build failed.
    #[error("service `{service}`: {source}")]
    Build {
        service: String,
        #[source]
        source: EngineError,
    },
    /// Images that are neither on the engine nor buildable, one line per service.
    #[error("{}", .0.join("\n"))]
    Missing(Vec<String>),
}

/// Builds images as needed and returns the id of every service's image.
pub async fn resolve(
    engine: &Engine,
    desired: &Desired,
    build_all: bool,
    on: &(dyn Fn(ImageEvent) + Sync),
) -> Result<BTreeMap<String, String>, ImageError> {
    let mut ids = BTreeMap::new();
    let mut missing = Vec::new();
    for svc in &desired.services {
        let present = engine.image_id(&svc.image).await?;
        let id = match (&svc.build, present) {
            (Some(build), present) if build_all || present.is_none() => {
                let started = Instant::now();
                on(ImageEvent::Building {
                    service: svc.name.clone(),
                    image: svc.image.clone(),
                });
                let mut spec = build.clone();
                if !spec.tags.contains(&svc.image) {
                    spec.tags.push(svc.image.clone());
                }
                let built = engine.build_image(&spec, |_| {}).await.map_err(|source| {
                    ImageError::Build {
                        service: svc.name.clone(),
                        source,
                    }
                })?;
                on(ImageEvent::Built {
                    image: svc.image.clone(),
                    elapsed: started.elapsed(),
                    steps: built.steps,
                    cached_steps: built.cached_steps,
                    layers: built.layers,
                    size_bytes: built.size_bytes,
                });
                built.id
            }
            (_, Some(id)) => id,
            (_, None) => {
                missing.push(format!(
                    "service `{}`: image {} is not on this engine and berth never pulls from a registry; build it, load it (`docker load`), or add `build:`",
                    svc.name, svc.image
                ));
                continue;
            }
        };
        ids.insert(svc.name.clone(), id);
    }
    if !missing.is_empty() {
        return Err(ImageError::Missing(missing));
    }
    Ok(ids)
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
