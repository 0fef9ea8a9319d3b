//! Converging a Compose project on a Docker Engine, and (issue 5) zero-downtime deploys.
//!
//! Everything in this crate is pure: it turns a loaded [`berth_compose::Project`] into the
//! engine-side specs berth wants ([`desired::desired_state`]), compares them with what the
//! engine reports ([`plan::plan`], [`plan::plan_down`]) and writes the systemd unit text
//! ([`systemd::unit`]). The executor that carries a [`plan::Plan`] out lives next to the engine
//! calls, so that every decision here can be unit-tested without Docker.
//!
//! Deploys also need memory that outlives a process: [`store::Store`] is the embedded SQLite
//! state store (releases and the deploy journal), and [`lock::ProjectLock`] keeps two deploys of
//! one project from running at once. They are the only modules here that touch the file system.

// Only the CLI prints (ARCHITECTURE.md, invariants): a library reports through return values,
// events and the writers it is given, so that output stays the CLI's to shape and to pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod actual;
pub mod adopt;
pub mod build;
mod build_spec;
pub mod clock;
pub mod container;
pub mod deadline;
pub mod desired;
pub mod error;
pub mod execute;
pub mod hash;
pub mod images;
pub mod labels;
pub mod lock;
pub mod order;
pub mod plan;
pub mod policy;
pub mod release;
pub mod rollout;
pub mod route_change;
pub mod store;
pub mod store_error;
pub mod systemd;
pub mod traffic;
pub mod units;
pub mod watch;

pub use actual::{Actual, ResourceSummary};
pub use desired::{desired_state, Context, Desired, DesiredDependency, DesiredService};
pub use error::PlanError;
pub use execute::{execute, execute_until, Event, ExecuteError, ExecuteOptions};
pub use lock::{Holder, LockError, ProjectLock};
pub use order::DependencyGraph;
pub use plan::{plan, plan_down, DownOptions, Plan, PlanOptions, Step};
pub use policy::{policy, Kind, Policy};
pub use release::{Interrupted, ReleaseError};
pub use rollout::{DeployEvent, Deployer, RolloutError, ServiceUpdate};
pub use store::{
    JournalEntry, JournalStep, NewRelease, Outcome, Release, ReleaseStatus, ServiceImage, Store,
};
pub use store_error::StoreError;
pub use traffic::Traffic;
pub use watch::{
    plan_batch, watch_rules, Change, ServiceActions, WatchAction, WatchError, WatchRule,
};
