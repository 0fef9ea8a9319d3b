//! The state directory of releases: the state store and the project locks, side by side.

use super::error::ReleaseRunError;
use crate::lock::{Holder, ProjectLock};
use crate::store::Store;
use std::path::{Path, PathBuf};

/// Where the state store (`state.db`) and the project locks live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Whether a state store exists: without one nothing was ever deployed here.
    pub fn has_store(&self) -> bool {
        self.dir.join("state.db").exists()
    }

    fn create(&self) -> Result<(), ReleaseRunError> {
        std::fs::create_dir_all(&self.dir).map_err(|cause| ReleaseRunError::StateDir {
            path: self.dir.clone(),
            cause,
        })
    }

    /// Opens the state store, creating the directory and the store when missing.
    pub fn open_store(&self) -> Result<Store, ReleaseRunError> {
        self.create()?;
        Ok(Store::open(self.dir.join("state.db"))?)
    }

    /// Takes the project's lock for `command`: one deploy per project at a time.
    pub fn lock(&self, project: &str, command: &str) -> Result<ProjectLock, ReleaseRunError> {
        self.create()?;
        Ok(ProjectLock::acquire(
            &self.dir,
            project,
            &Holder::current(command),
        )?)
    }
}
