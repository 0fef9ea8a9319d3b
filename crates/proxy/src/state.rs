//! The state file: routes as they were last configured, written atomically.

use berth_proxy_api::route::RouteSpec;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PersistedState {
    pub version: u32,
    pub routes: Vec<RouteSpec>,
}

pub const STATE_VERSION: u32 = 1;

pub fn load(path: &Path) -> Result<PersistedState, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PersistedState::default()),
        Err(e) => return Err(format!("cannot read state file {}: {e}", path.display())),
    };
    let state: PersistedState = serde_json::from_str(&text).map_err(|e| {
        format!(
            "state file {} is not valid ({e}); move it aside to start with no routes",
            path.display()
        )
    })?;
    if state.version > STATE_VERSION {
        return Err(format!(
            "state file {} was written by a newer berth (version {}); upgrade berth",
            path.display(),
            state.version
        ));
    }
    for route in &state.routes {
        route
            .validate()
            .map_err(|e| format!("state file {}: route `{}`: {e}", path.display(), route.name))?;
    }
    Ok(state)
}

/// Writes `state` so that a crash at any moment leaves either the old file or the new
/// one (see `berth_base::atomic`).
pub fn save(path: &Path, state: &PersistedState) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut json = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    json.push(b'\n');
    berth_base::atomic::write_mode(path, &json, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(load(&path).unwrap().routes.is_empty());
        let state = PersistedState {
            version: STATE_VERSION,
            routes: vec![serde_json::from_str(
                r#"{"name":"shop-web","hosts":["shop.test"],"sets":[{"id":"r1","targets":["127.0.0.1:9"]}]}"#,
            )
            .unwrap()],
        };
        save(&path, &state).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.routes, state.routes);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn a_corrupt_file_names_itself_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{ not json").unwrap();
        let err = load(&path).unwrap_err();
        assert!(
            err.contains("state.json") && err.contains("move it aside"),
            "{err}"
        );
    }
}
