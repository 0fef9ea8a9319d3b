//! Building the project's images: every input checked first (Dockerfiles parsed, base
//! images present, platforms the engine's), then the services built in parallel, each
//! ending in a report of what the build cost and advice on what it did (report.rs,
//! advice.rs). `berth build`, and `up`/`deploy` with `--build`, go through here.

mod advice;
mod report;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use berth_compose::dockerfile::Dockerfile;
use berth_compose::Problem;
use berth_engine::{BuildEvent, BuildSpec, Builder, Engine, EngineError, StepStatus};
use futures_util::StreamExt;

use crate::desired::Desired;
pub use advice::Advice;
pub use report::{BuildReport, LayerSize, StepTime};

/// What to build, and how.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// Services to build; empty means every service with `build:`.
    pub services: Vec<String>,
    pub no_cache: bool,
    /// Builds run at once; at least 1.
    pub parallel: usize,
    /// Overrides each service's `x-berth.builder`.
    pub builder: Option<Builder>,
}

/// What a build reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildProgress {
    Started {
        service: String,
        image: String,
    },
    Step {
        service: String,
        name: String,
        status: StepStatus,
    },
    Output {
        service: String,
        step: String,
        line: String,
    },
    Notice {
        service: String,
        text: String,
    },
    Finished(Box<BuildReport>),
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A Dockerfile the builder would refuse; nothing was sent.
    #[error("{0}")]
    Dockerfile(Box<Problem>),
    /// Input that cannot build here (a missing base image, a foreign platform, a service
    /// without `build:`), one line per problem; nothing was sent.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// A build ran and failed.
    #[error("service `{service}`: {source}")]
    Failed {
        service: String,
        #[source]
        source: EngineError,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// One service to build, with its Dockerfile read.
struct Job {
    service: String,
    image: String,
    spec: BuildSpec,
    dockerfile: Dockerfile,
    /// The image id the tag had before this build, if any.
    previous: Option<String>,
}

/// Builds the requested services and returns a report for each, in service order.
pub async fn build(
    engine: &Engine,
    desired: &Desired,
    request: &BuildRequest,
    on: &(dyn Fn(BuildProgress) + Sync),
) -> Result<Vec<BuildReport>, BuildError> {
    // Choose the services: the named ones (each must have `build:`), else all that build.
    let mut invalid = Vec::new();
    let mut chosen = Vec::new();
    for svc in &desired.services {
        let named = request.services.is_empty() || request.services.contains(&svc.name);
        match (&svc.build, named) {
            (Some(spec), true) => chosen.push((svc.name.clone(), svc.image.clone(), spec.clone())),
            (None, true) if !request.services.is_empty() => invalid.push(format!(
                "service `{}` has no `build:`; it runs image {} as it is",
                svc.name, svc.image
            )),
            _ => {}
        }
    }

    // Check every input before anything is built: the Dockerfiles parse, the base images
    // are on the engine (berth never pulls), and the platform is the engine's.
    let version = engine.version().await?;
    let engine_platform = format!("{}/{}", version.os, version.arch);
    let mut jobs = Vec::new();
    for (service, image, mut spec) in chosen {
        spec.no_cache |= request.no_cache;
        if let Some(builder) = request.builder {
            spec.builder = builder;
        }
        if !spec.tags.contains(&image) {
            spec.tags.insert(0, image.clone());
        }
        let dockerfile = read_dockerfile(&spec).map_err(BuildError::Dockerfile)?;
        for base in dockerfile.base_images() {
            if engine.image_id(base).await?.is_none() {
                invalid.push(format!(
                    "service `{service}`: base image {base} ({}:{}) is not present locally and berth never pulls; build or `docker load` it first",
                    dockerfile.path.display(),
                    dockerfile
                        .stages
                        .iter()
                        .find(|s| s.base == base)
                        .map_or(1, |s| dockerfile.instructions[s.from].line)
                ));
            }
        }
        // Docker 23 built in the Dockerfile frontend 1.4 that knows `COPY --link`; older
        // engines' frontends refuse it, and `# syntax=` would pull a newer one.
        let major = engine_major(&version.version);
        if spec.builder == Builder::BuildKit && (1..23).contains(&major) {
            for ins in dockerfile.instructions.iter().filter(|i| {
                (i.keyword == "COPY" || i.keyword == "ADD")
                    && i.flags
                        .iter()
                        .any(|f| f == "--link" || f.starts_with("--link="))
            }) {
                invalid.push(format!(
                    "service `{service}`: {}:{}: {} --link needs the Dockerfile frontend 1.4, which Docker Engine {} does not have built in (and `# syntax=` would pull it from a registry); drop --link",
                    dockerfile.path.display(),
                    ins.line,
                    ins.keyword,
                    version.version
                ));
            }
        }
        if let Some(platform) = &spec.platform {
            if !platform_matches(platform, &engine_platform) {
                invalid.push(format!(
                    "service `{service}`: platform {platform} is not the engine's ({engine_platform}); berth builds for the engine's own platform only"
                ));
            }
        }
        let previous = engine.image_id(&image).await?;
        jobs.push(Job {
            service,
            image,
            spec,
            dockerfile,
            previous,
        });
    }
    if !invalid.is_empty() {
        return Err(BuildError::Invalid(invalid));
    }

    // Build, up to `parallel` at once; every build runs to its end, and the first failure
    // (in service order) is the result.
    let parallel = request.parallel.max(1);
    let mut results: Vec<(String, Result<BuildReport, EngineError>)> =
        futures_util::stream::iter(jobs.into_iter().map(|job| run(engine, job, on)))
            .buffer_unordered(parallel)
            .collect()
            .await;
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut reports = Vec::new();
    for (service, result) in results {
        match result {
            Ok(report) => reports.push(report),
            Err(source) => return Err(BuildError::Failed { service, source }),
        }
    }
    Ok(reports)
}

/// One service's build, its events forwarded with the service's name.
async fn run(
    engine: &Engine,
    job: Job,
    on: &(dyn Fn(BuildProgress) + Sync),
) -> (String, Result<BuildReport, EngineError>) {
    let started = Instant::now();
    on(BuildProgress::Started {
        service: job.service.clone(),
        image: job.image.clone(),
    });
    for text in &job.spec.not_applied {
        on(BuildProgress::Notice {
            service: job.service.clone(),
            text: text.clone(),
        });
    }
    let service = job.service.clone();
    let result = engine
        .build_image(&job.spec, |event| {
            on(match event {
                BuildEvent::Step { name, status } => BuildProgress::Step {
                    service: service.clone(),
                    name,
                    status,
                },
                BuildEvent::Output { step, line } => BuildProgress::Output {
                    service: service.clone(),
                    step,
                    line,
                },
                BuildEvent::Notice(text) => BuildProgress::Notice {
                    service: service.clone(),
                    text,
                },
            })
        })
        .await;
    let report = result.map(|built| {
        let advice = advice::advise(&job.dockerfile, &job.spec, &built, job.previous.is_some());
        BuildReport::new(&job.service, &job.image, &built, started.elapsed(), advice)
    });
    if let Ok(report) = &report {
        on(BuildProgress::Finished(Box::new(report.clone())));
    }
    (job.service, report)
}

/// The service's Dockerfile, parsed; an inline one is parsed from the compose file's text.
fn read_dockerfile(spec: &BuildSpec) -> Result<Dockerfile, Box<Problem>> {
    match &spec.dockerfile_inline {
        Some(text) => Dockerfile::parse(Path::new("dockerfile_inline"), text, &spec.args),
        None => Dockerfile::read(&spec.context.join(&spec.dockerfile), &spec.args),
    }
}

/// `linux/amd64` against the engine's `linux/amd64`; `linux/x86_64` and a missing os are
/// accepted as the same.
fn platform_matches(asked: &str, engine: &str) -> bool {
    let norm = |p: &str| {
        let p = p
            .to_ascii_lowercase()
            .replace("x86_64", "amd64")
            .replace("aarch64", "arm64");
        if p.contains('/') {
            p
        } else {
            format!("linux/{p}")
        }
    };
    norm(asked) == norm(engine) || norm(asked).starts_with(&format!("{}/", norm(engine)))
}

/// The engine's major version: `20` of `20.10.24+dfsg1`.
fn engine_major(version: &str) -> u32 {
    version
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .unwrap_or(0)
}

/// Image ids of a report set, for the images resolve step.
pub fn ids(reports: &[BuildReport]) -> BTreeMap<String, String> {
    reports
        .iter()
        .map(|r| (r.service.clone(), r.image_id.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_versions_read_their_major() {
        assert_eq!(engine_major("20.10.24+dfsg1"), 20);
        assert_eq!(engine_major("28.2.2"), 28);
        assert_eq!(engine_major("dev"), 0);
    }

    #[test]
    fn platforms_compare_as_the_engine_names_them() {
        assert!(platform_matches("linux/amd64", "linux/amd64"));
        assert!(platform_matches("linux/x86_64", "linux/amd64"));
        assert!(platform_matches("amd64", "linux/amd64"));
        assert!(!platform_matches("linux/arm64", "linux/amd64"));
    }
}
