//! The steps of a deploy's journal: what a release is about to change, appended before each
//! change so that the next command can converge a release a killed process left half done.
//!
//! Each step is stored as one JSON object whose `step` field names it. The field names and
//! their order are those berth has always written, so journals already on disk are read, and
//! a step a newer berth wrote is kept as [`JournalStep::Unknown`] rather than failing the read.

use crate::route_change::RouteBefore;
use berth_engine::ContainerSpec;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// One step of a release's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum JournalStep {
    /// The release started: the services it changes, and every service's whole desired spec,
    /// so that a rollback returns to the release's configuration, not only its images.
    Begin {
        #[serde(default, deserialize_with = "strings")]
        services: Vec<String>,
        #[serde(default, deserialize_with = "specs")]
        specs: BTreeMap<String, Vec<ContainerSpec>>,
    },
    /// A routed service's route as it was before the release changed it.
    Route {
        service: String,
        #[serde(default, with = "route_before")]
        before: RouteBefore,
    },
    /// An old replica was renamed aside to make room for its replacement.
    Aside {
        service: String,
        container: String,
        name: String,
    },
    /// A new replica is about to be created under `name`.
    Create { service: String, name: String },
    /// Batch `batch` (from 0) of a service has its traffic on the new replicas.
    Switched { service: String, batch: usize },
    /// A route-settings change is about to switch the route to the staged one.
    RouteSwitch { service: String },
    /// A canary service is about to get its first share of traffic.
    Canary { service: String },
    /// `berth promote`: the running canary goes to all traffic.
    Promote,
    /// `berth abort`: the running canary is rolled back.
    Abort,
    /// The previous sets of `services` stay running until `until` (Unix milliseconds).
    Standby { services: Vec<String>, until: u64 },
    /// The release is good; only retiring old containers is left.
    Committed,
    /// Every touched service was put back.
    Reverted,
    /// A step this berth does not know (a newer berth wrote it), kept as it was read.
    #[serde(untagged)]
    Unknown(serde_json::Value),
}

impl JournalStep {
    /// The JSON object stored for this step.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl From<&JournalStep> for JournalStep {
    fn from(step: &JournalStep) -> JournalStep {
        step.clone()
    }
}

/// A step given as JSON: the known step it spells, else [`JournalStep::Unknown`].
impl From<&serde_json::Value> for JournalStep {
    fn from(v: &serde_json::Value) -> JournalStep {
        serde_json::from_value(v.clone()).unwrap_or_else(|_| JournalStep::Unknown(v.clone()))
    }
}

/// Compares with the JSON object the step is stored as.
impl PartialEq<serde_json::Value> for JournalStep {
    fn eq(&self, other: &serde_json::Value) -> bool {
        &self.to_value() == other
    }
}

static NULL: serde_json::Value = serde_json::Value::Null;

/// A field of an unknown step (known steps are read through their variants, so indexing one
/// gives `null`).
impl std::ops::Index<&str> for JournalStep {
    type Output = serde_json::Value;

    fn index(&self, key: &str) -> &serde_json::Value {
        match self {
            JournalStep::Unknown(v) => &v[key],
            _ => &NULL,
        }
    }
}

/// The begin step's services: the names among the values, as berth has always read them.
fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// The begin step's specs; specs this berth cannot read are none (a rollback to that release
/// then uses its image ids alone), as before the journal was typed.
fn specs<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Vec<ContainerSpec>>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).unwrap_or_default())
}

/// The route step's `before`: the route spec, or `null` when there was none.
mod route_before {
    use super::*;

    pub fn serialize<S: Serializer>(before: &RouteBefore, s: S) -> Result<S::Ok, S::Error> {
        before.to_json().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RouteBefore, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Ok(RouteBefore::from_json(&v))
    }
}
