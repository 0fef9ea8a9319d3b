//! What every engine command needs: the loaded project, a runtime and an engine connection, in
//! that order, so that a bad compose file is reported before any socket is opened.

use super::{load_options, CliError};
use crate::args::ProjectArgs;
use crate::report;
use berth_compose::Loaded;
use berth_deploy::labels;
use berth_engine::{ContainerSummary, Engine};

pub struct Session {
    pub rt: tokio::runtime::Runtime,
    pub engine: Engine,
    pub loaded: Loaded,
}

impl Session {
    pub fn open(p: &ProjectArgs) -> Result<Session, CliError> {
        let loaded = berth_compose::load(&load_options(p))?;
        for w in &loaded.warnings {
            report::warning(w);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| CliError::Io(format!("cannot start the async runtime: {e}")))?;
        let engine = rt.block_on(Engine::connect())?;
        // A backup or restore killed while it had services stopped left a journal of them;
        // whichever berth command comes next starts them again (issue #16).
        let journal = berth_backup::stopped::StoppedJournal::new(
            &crate::env::get().deploy_state_dir(),
            &loaded.project.name,
        );
        let started = rt.block_on(berth_backup::stopped::recover(&engine, &journal))?;
        if !started.is_empty() {
            report::warning(&format!(
                "started {} again: an interrupted backup or restore had stopped them",
                started.join(", ")
            ));
        }
        Ok(Session { rt, engine, loaded })
    }

    pub fn project(&self) -> &str {
        &self.loaded.project.name
    }

    /// Checks service names given on the command line against the project.
    pub fn check_services(&self, services: &[String]) -> Result<(), CliError> {
        for s in services {
            if !self.loaded.project.services.contains_key(s) {
                let known: Vec<&str> = self
                    .loaded
                    .project
                    .services
                    .keys()
                    .map(String::as_str)
                    .collect();
                return Err(CliError::Usage(format!(
                    "no such service `{s}` in project `{}`; services: {}",
                    self.project(),
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The project's service containers (not one-offs), sorted by service and number,
    /// optionally only those of `services`.
    pub fn containers(
        &self,
        services: &[String],
        all: bool,
    ) -> Result<Vec<ContainerSummary>, CliError> {
        self.check_services(services)?;
        let project = self.project().to_string();
        let mut list = self.rt.block_on(self.engine.list_containers(
            &[
                (labels::COMPOSE_PROJECT, Some(&project)),
                (labels::COMPOSE_ONEOFF, Some("False")),
            ],
            all,
        ))?;
        list.retain(|c| {
            services.is_empty()
                || c.labels
                    .get(labels::COMPOSE_SERVICE)
                    .is_some_and(|s| services.contains(s))
        });
        list.sort_by_key(|c| (service_of(c).to_string(), number_of(c)));
        Ok(list)
    }
}

pub fn service_of(c: &ContainerSummary) -> &str {
    c.labels
        .get(labels::COMPOSE_SERVICE)
        .map(String::as_str)
        .unwrap_or("")
}

pub fn number_of(c: &ContainerSummary) -> u64 {
    c.labels
        .get(labels::COMPOSE_CONTAINER_NUMBER)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
