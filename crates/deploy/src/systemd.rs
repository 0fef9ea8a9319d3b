//! The systemd unit that brings a project up at boot (`berth systemd`).
//!
//! The unit is a oneshot that stays "active" after `berth up -d --wait` returned
//! (`RemainAfterExit=yes`), so `systemctl stop` runs `berth down`. Every path is pinned in the
//! unit, absolute, so it does not depend on the environment systemd starts it in.

use crate::error::PlanError;
use std::path::{Path, PathBuf};

/// How long `berth up --wait` may take at boot: images may need pulling and health checks
/// with long start periods must pass. Bounded, so a broken project cannot hang boot forever.
pub const START_TIMEOUT: &str = "15min";
/// How long `berth down` may take: every container's stop grace period, level by level.
pub const STOP_TIMEOUT: &str = "5min";

/// What the unit runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitOptions {
    pub project_name: String,
    /// The project directory; the unit's `WorkingDirectory`.
    pub working_dir: PathBuf,
    /// The compose files in merge order, absolute.
    pub config_files: Vec<PathBuf>,
    /// The berth binary, absolute (systemd needs an absolute `ExecStart` path).
    pub berth_binary: PathBuf,
    /// A user unit (`systemctl --user`) instead of a system unit.
    pub user_mode: bool,
    pub profiles: Vec<String>,
    pub env_files: Vec<PathBuf>,
}

impl UnitOptions {
    /// berth with the project's global flags pinned (`-p`, every `-f`, `--profile`,
    /// `--env-file`), then `args`, each word passed through `quote` and joined by spaces.
    pub fn command_line(&self, args: &[&str], quote: fn(&str) -> String) -> String {
        let mut words = vec![
            self.berth_binary.display().to_string(),
            "-p".to_string(),
            self.project_name.clone(),
        ];
        for f in &self.config_files {
            words.push("-f".into());
            words.push(f.display().to_string());
        }
        for p in &self.profiles {
            words.push("--profile".into());
            words.push(p.clone());
        }
        for e in &self.env_files {
            words.push("--env-file".into());
            words.push(e.display().to_string());
        }
        words.extend(args.iter().map(|s| s.to_string()));
        words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
    }

    /// Every path the unit pins, checked absolute and on one line.
    pub fn check_paths(&self) -> Result<(), PlanError> {
        for p in std::iter::once(&self.working_dir)
            .chain(std::iter::once(&self.berth_binary))
            .chain(&self.config_files)
            .chain(&self.env_files)
        {
            check_path(p)?;
        }
        Ok(())
    }
}

/// `berth-{project}.service`. Project names are already limited to `[a-z0-9_-]`, all of which
/// systemd accepts in unit names.
pub fn unit_name(project_name: &str) -> String {
    format!("berth-{project_name}.service")
}

/// The unit file's text.
pub fn unit(o: &UnitOptions) -> Result<String, PlanError> {
    o.check_paths()?;
    let command = |args: &[&str]| o.command_line(args, quote);

    let mut s = String::new();
    s.push_str("[Unit]\n");
    s.push_str(&format!(
        "Description=berth project {}\n",
        escape_specifiers(&o.project_name)
    ));
    if o.user_mode {
        // A user manager cannot order itself after system units; the user's session starts
        // once the system (and so Docker) is up, and `berth up` retries the connection.
    } else {
        s.push_str("Requires=docker.service\n");
        s.push_str("After=docker.service network-online.target\n");
        s.push_str("Wants=network-online.target\n");
    }
    s.push_str("\n[Service]\n");
    s.push_str("Type=oneshot\n");
    s.push_str("RemainAfterExit=yes\n");
    s.push_str(&format!(
        "WorkingDirectory={}\n",
        escape_specifiers(&o.working_dir.display().to_string())
    ));
    s.push_str(&format!("ExecStart={}\n", command(&["up", "-d", "--wait"])));
    s.push_str(&format!("ExecStop={}\n", command(&["down"])));
    s.push_str(&format!("TimeoutStartSec={START_TIMEOUT}\n"));
    s.push_str(&format!("TimeoutStopSec={STOP_TIMEOUT}\n"));
    s.push_str("\n[Install]\n");
    s.push_str(if o.user_mode {
        "WantedBy=default.target\n"
    } else {
        "WantedBy=multi-user.target\n"
    });
    Ok(s)
}

/// Paths must be absolute (systemd's working directory is `/`) and on one line (a unit file
/// has no way to continue a value across a newline inside a path).
pub fn check_path(p: &Path) -> Result<(), PlanError> {
    let text = p.display().to_string();
    if !p.is_absolute() {
        return Err(PlanError::Unit(format!(
            "the path {text:?} is relative; pass an absolute path"
        )));
    }
    if text.contains(['\n', '\r']) {
        return Err(PlanError::Unit(format!(
            "the path {text:?} contains a line break; rename it"
        )));
    }
    Ok(())
}

/// `%` starts a specifier in nearly every unit setting; `%%` is a literal percent.
pub fn escape_specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// Quotes one `ExecStart=` argument by systemd's rules: words split at whitespace unless
/// double-quoted; inside quotes `\` and `"` are escaped with a backslash; `%` is a specifier
/// and `$` an environment expansion everywhere, so both are doubled.
pub fn quote(arg: &str) -> String {
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    let needs_quotes = escaped.is_empty()
        || escaped
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'));
    if !needs_quotes {
        return escaped;
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> UnitOptions {
        UnitOptions {
            project_name: "shop".into(),
            working_dir: "/srv/my shop".into(),
            config_files: vec![
                "/srv/my shop/compose.yaml".into(),
                "/srv/my shop/compose.prod.yaml".into(),
            ],
            berth_binary: "/usr/local/bin/berth".into(),
            user_mode: false,
            profiles: vec!["web".into()],
            env_files: vec!["/srv/my shop/.env.prod".into()],
        }
    }

    #[test]
    fn system_unit() {
        assert_eq!(unit_name("shop"), "berth-shop.service");
        insta::assert_snapshot!(unit(&opts()).unwrap());
    }

    #[test]
    fn user_unit() {
        let o = UnitOptions {
            user_mode: true,
            working_dir: "/home/ann/shop".into(),
            config_files: vec!["/home/ann/shop/compose.yaml".into()],
            berth_binary: "/home/ann/.cargo/bin/berth".into(),
            profiles: vec![],
            env_files: vec![],
            ..opts()
        };
        insta::assert_snapshot!(unit(&o).unwrap());
    }

    #[test]
    fn quoting() {
        let cases = [
            ("plain", "plain"),
            ("/a b/c", "\"/a b/c\""),
            ("", "\"\""),
            ("100%", "100%%"),
            ("$HOME", "$$HOME"),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("it's", "\"it's\""),
        ];
        for (input, want) in cases {
            assert_eq!(quote(input), want, "{input}");
        }
    }

    #[test]
    fn bad_paths() {
        let o = UnitOptions {
            working_dir: "relative".into(),
            ..opts()
        };
        assert!(unit(&o).unwrap_err().to_string().contains("absolute"));
        let o = UnitOptions {
            config_files: vec!["/a\nb".into()],
            ..opts()
        };
        assert!(unit(&o).unwrap_err().to_string().contains("line break"));
    }
}
