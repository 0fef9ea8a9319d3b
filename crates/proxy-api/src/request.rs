//! What the admin API's change endpoints accept, and the defaults the proxy applies when a
//! request leaves a timeout out.
//!
//! The defaults live here because they are the proxy's: a request without
//! `drain_timeout_ms` drains for [`DEFAULT_DRAIN_TIMEOUT`] whichever client sent it, so berth's
//! deploy policy and CLI use the same constants rather than their own copies.

use crate::route::SetSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a new set may take to pass its health checks when a request does not say.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long in-flight requests and WebSockets on a set leaving the route may take to
/// finish when a request does not say; what is still open then is closed.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// `POST /routes/NAME/deploy`: add `set`, wait until healthy, switch all traffic to it,
/// drain the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub set: SetSpec,
    #[serde(
        rename = "health_timeout_ms",
        with = "crate::millis",
        default = "default_health_timeout"
    )]
    pub health_timeout: Duration,
    #[serde(
        rename = "drain_timeout_ms",
        with = "crate::millis",
        default = "default_drain_timeout"
    )]
    pub drain_timeout: Duration,
}

/// `POST /routes/NAME/sets`: add `set` beside the current ones once it is healthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddSetRequest {
    pub set: SetSpec,
    #[serde(
        rename = "health_timeout_ms",
        with = "crate::millis",
        default = "default_health_timeout"
    )]
    pub health_timeout: Duration,
}

/// `POST /routes/NAME/sets/ID/remove`: take the set out of rotation and drain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveSetRequest {
    #[serde(
        rename = "drain_timeout_ms",
        with = "crate::millis",
        default = "default_drain_timeout"
    )]
    pub drain_timeout: Duration,
}

/// `POST /routes/NAME/weights`: new relative weights; sets not named keep theirs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsRequest {
    pub weights: BTreeMap<String, u32>,
}

/// `POST /routes/NAME/pause`: hold new requests instead of forwarding them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// How long each request may be held before it gets a 503.
    #[serde(rename = "timeout_ms", with = "crate::millis")]
    pub timeout: Duration,
}

/// `POST /routes/NAME/maintenance`: answer every request with a 503 and this message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    pub message: String,
}

fn default_health_timeout() -> Duration {
    DEFAULT_HEALTH_TIMEOUT
}

fn default_drain_timeout() -> Duration {
    DEFAULT_DRAIN_TIMEOUT
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> SetSpec {
        SetSpec {
            id: "r2".into(),
            weight: 100,
            targets: vec!["127.0.0.1:8000".into()],
        }
    }

    /// The JSON an older proxy expects: integer milliseconds under the `_ms` names.
    #[test]
    fn timeouts_cross_as_the_same_millisecond_fields_as_before() {
        let deploy = DeployRequest {
            set: set(),
            health_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_millis(2500),
        };
        assert_eq!(
            serde_json::to_value(&deploy).unwrap(),
            json!({
                "set": { "id": "r2", "weight": 100, "targets": ["127.0.0.1:8000"] },
                "health_timeout_ms": 60000,
                "drain_timeout_ms": 2500,
            })
        );
        let remove = RemoveSetRequest {
            drain_timeout: Duration::from_secs(30),
        };
        assert_eq!(
            serde_json::to_value(&remove).unwrap(),
            json!({ "drain_timeout_ms": 30000 })
        );
        let pause = PauseRequest {
            timeout: Duration::from_secs(5),
        };
        assert_eq!(
            serde_json::to_value(&pause).unwrap(),
            json!({ "timeout_ms": 5000 })
        );
    }

    #[test]
    fn a_request_without_timeouts_gets_the_proxy_defaults() {
        let set_json = json!({ "id": "r2", "targets": ["127.0.0.1:8000"] });
        let deploy: DeployRequest = serde_json::from_value(json!({ "set": set_json })).unwrap();
        assert_eq!(deploy.health_timeout, DEFAULT_HEALTH_TIMEOUT);
        assert_eq!(deploy.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
        let add: AddSetRequest = serde_json::from_value(json!({ "set": set_json })).unwrap();
        assert_eq!(add.health_timeout, DEFAULT_HEALTH_TIMEOUT);
        let remove: RemoveSetRequest = serde_json::from_value(json!({})).unwrap();
        assert_eq!(remove.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
        assert_eq!(DEFAULT_DRAIN_TIMEOUT, Duration::from_secs(30));
        assert_eq!(DEFAULT_HEALTH_TIMEOUT, Duration::from_secs(60));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_value::<RemoveSetRequest>(json!({ "drain_timeout": 5 }))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");
    }
}
