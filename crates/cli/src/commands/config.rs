//! `berth config`: the merged, interpolated, normalized project.

use super::{load_options, CliError};
use crate::args::{ConfigArgs, Format, ProjectArgs};
use crate::report;
use std::io::Write;

pub fn run(p: &ProjectArgs, a: &ConfigArgs) -> Result<(), CliError> {
    let loaded = berth_compose::load(&load_options(p))?;
    for w in &loaded.warnings {
        report::warning(w);
    }
    if a.quiet {
        return Ok(());
    }
    let list = |items: Vec<String>| -> String {
        match a.format {
            Format::Json => format!("{}\n", serde_json::Value::from(items)),
            Format::Yaml => items.iter().map(|s| format!("{s}\n")).collect(),
        }
    };
    let text = if a.services {
        list(loaded.project.services.keys().cloned().collect())
    } else if a.volumes {
        list(loaded.project.volumes.keys().cloned().collect())
    } else if a.profiles {
        list(loaded.all_profiles.clone())
    } else {
        match a.format {
            Format::Yaml => berth_compose::output::to_yaml(&loaded.canonical),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(&loaded.canonical)
                    .map_err(|e| CliError::Io(e.to_string()))?;
                s.push('\n');
                s
            }
        }
    };
    match &a.output {
        Some(path) => berth_base::atomic::write(path, text.as_bytes())
            .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display()))),
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`berth config | head`) is not an error worth reporting.
            let _ = out.write_all(text.as_bytes());
            Ok(())
        }
    }
}
