//! Converging a Compose project on a Docker Engine, and (issue 5) zero-downtime deploys.
//!
//! Everything in this crate is pure: it turns a loaded [`berth_compose::Project`] into the
//! engine-side specs berth wants ([`desired::desired_state`]), compares them with what the
//! engine reports ([`plan::plan`], [`plan::plan_down`]) and writes the systemd unit text
//! ([`systemd::unit`]). The executor that carries a [`plan::Plan`] out lives next to the engine
//! calls, so that every decision here can be unit-tested without Docker.

pub mod actual;
pub mod adopt;
pub mod container;
pub mod deadline;
pub mod desired;
pub mod error;
pub mod execute;
pub mod hash;
pub mod labels;
pub mod order;
pub mod plan;
pub mod systemd;
pub mod units;
pub mod watch;

pub use actual::{Actual, ResourceSummary};
pub use desired::{desired_state, Context, Desired, DesiredDependency, DesiredService};
pub use error::PlanError;
pub use execute::{execute, execute_until, Event, ExecuteError, ExecuteOptions};
pub use order::DependencyGraph;
pub use plan::{plan, plan_down, DownOptions, Plan, PlanOptions, Step};
pub use watch::{
    plan_batch, watch_rules, Change, ServiceActions, WatchAction, WatchError, WatchRule,
};
