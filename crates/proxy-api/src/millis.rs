//! Durations on the wire: whole milliseconds as a JSON integer.
//!
//! Every duration in an admin request crosses as milliseconds (fields named `..._ms`), so an
//! older proxy keeps understanding a newer berth and the other way round. Request structs hold
//! `Duration` and use `#[serde(with = "crate::millis")]`, which makes this the one place a
//! duration is converted.

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    // A duration beyond u64 milliseconds (half a billion years) means "forever"; saturating
    // keeps it one rather than wrapping it into a short timeout.
    let millis = u64::try_from(value.as_millis()).unwrap_or(u64::MAX);
    serializer.serialize_u64(millis)
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use std::time::Duration;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Probe {
        #[serde(rename = "timeout_ms", with = "super")]
        timeout: Duration,
    }

    #[test]
    fn durations_cross_as_integer_milliseconds() {
        let probe = Probe {
            timeout: Duration::from_millis(1500),
        };
        assert_eq!(
            serde_json::to_string(&probe).unwrap(),
            r#"{"timeout_ms":1500}"#
        );
        let back: Probe = serde_json::from_str(r#"{"timeout_ms":1500}"#).unwrap();
        assert_eq!(back, probe);
    }

    #[test]
    fn sub_millisecond_parts_are_dropped_and_huge_values_saturate() {
        let probe = Probe {
            timeout: Duration::from_micros(2_999),
        };
        assert_eq!(
            serde_json::to_string(&probe).unwrap(),
            r#"{"timeout_ms":2}"#
        );
        let probe = Probe {
            timeout: Duration::MAX,
        };
        assert_eq!(
            serde_json::to_string(&probe).unwrap(),
            format!(r#"{{"timeout_ms":{}}}"#, u64::MAX)
        );
    }
}
