//! Backups of a Compose project into a restic-format repository (DESIGN.md §1, issue #16).
//!
//! A backup is a set of *items* (a database dump, a named volume, a bind-mounted directory),
//! each stored as one snapshot tagged with the project and the item, so that Debian's
//! `restic` lists, checks and restores what berth wrote. The sequences (create, restore)
//! read top to bottom in one function each and report typed [`BackupEvent`]s; only the CLI
//! prints.

// Only the CLI prints (ARCHITECTURE.md, invariants).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod catalog;
pub mod content_hashes;
pub mod create;
mod custom;
pub mod database;
pub mod dump;
pub mod error;
pub mod event;
pub mod item;
pub mod meter;
pub mod mysql;
pub mod password;
pub mod plan;
mod postgres;
pub mod prune;
mod redis;
pub mod repository;
pub mod restore;
pub mod schedule;
pub mod snapshot;
mod source;
pub mod stopped;
pub mod tree_hash;
pub mod verify;

pub use create::{create, validate, CreateRequest};
pub use database::DumpKind;
pub use error::BackupError;
pub use event::BackupEvent;
pub use item::Item;
pub use plan::plan;
pub use prune::{prune, KeepPolicy, PruneReport, PruneRequest};
pub use repository::{Repo, RepoConfig};
pub use restore::{restore, RestoreRequest};
pub use snapshot::Snapshot;
pub use verify::{verify, VerifyRequest};
