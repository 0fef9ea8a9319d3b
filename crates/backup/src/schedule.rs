//! `berth backup schedule`: a systemd timer and service (or a cron line) that runs the backup
//! routine unattended — create, prune by the project's keep policy, then verify the newest
//! snapshot — so that the last step of the notes' cron scripts ("and check it restores") is
//! not the one that gets skipped.
//!
//! Pure text: the CLI writes the files and asks systemd to enable the timer.

// The unit errors are deploy's `PlanError`, shared with `berth systemd`; it is made once per
// command, so its size costs nothing worth a box.
#![allow(clippy::result_large_err)]

use berth_deploy::systemd::{escape_specifiers, quote, UnitOptions};

/// How often the routine runs; only periods that divide a day or a week evenly, so each run
/// lands at the same wall-clock times and a missed run is caught up once (`Persistent=true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Every N hours, N dividing 24.
    Hours(u32),
    Day,
    Week,
}

/// The periods `--every` accepts, for the error that names them.
pub const ACCEPTED: &str = "1h, 2h, 3h, 4h, 6h, 8h, 12h, 1d (at 03:00), 1w (Mondays at 03:00)";

impl Every {
    /// `1h`…`12h`, `24h`/`1d`, `7d`/`1w`; anything else is `None`.
    pub fn parse(text: &str) -> Option<Every> {
        match text.trim() {
            "1d" | "24h" => return Some(Every::Day),
            "1w" | "7d" => return Some(Every::Week),
            _ => {}
        }
        let hours: u32 = text.trim().strip_suffix('h')?.parse().ok()?;
        (hours > 0 && 24 % hours == 0 && hours < 24).then_some(Every::Hours(hours))
    }

    /// systemd's `OnCalendar=` for the period (UTC is not forced: the host's time zone, as cron).
    pub fn on_calendar(self) -> String {
        match self {
            Every::Hours(1) => "*-*-* *:00:00".into(),
            Every::Hours(n) => format!("*-*-* 00/{n}:00:00"),
            Every::Day => "*-*-* 03:00:00".into(),
            Every::Week => "Mon *-*-* 03:00:00".into(),
        }
    }

    /// The five time fields of a crontab line.
    pub fn cron_fields(self) -> String {
        match self {
            Every::Hours(1) => "0 * * * *".into(),
            Every::Hours(n) => format!("0 */{n} * * *"),
            Every::Day => "0 3 * * *".into(),
            Every::Week => "0 3 * * 1".into(),
        }
    }
}

/// The routine, in order; each step runs only when the one before it succeeded.
const STEPS: [&[&str]; 3] = [
    &["backup", "create"],
    &["backup", "prune"],
    &["backup", "verify", "--latest"],
];

/// How long one run may take before systemd stops it (a large first backup included).
pub const RUN_TIMEOUT: &str = "6h";

/// `berth-backup-{project}`: the stem of the `.service` and `.timer` names.
pub fn unit_stem(project_name: &str) -> String {
    format!("berth-backup-{project_name}")
}

/// The `.service` unit: one oneshot with the routine as consecutive `ExecStart=` lines.
pub fn service_unit(o: &UnitOptions) -> Result<String, berth_deploy::PlanError> {
    o.check_paths()?;
    let mut s = String::new();
    s.push_str("[Unit]\n");
    s.push_str(&format!(
        "Description=berth backup of project {}\n",
        escape_specifiers(&o.project_name)
    ));
    if !o.user_mode {
        s.push_str("Requires=docker.service\nAfter=docker.service\n");
    }
    s.push_str("\n[Service]\nType=oneshot\n");
    s.push_str(&format!(
        "WorkingDirectory={}\n",
        escape_specifiers(&o.working_dir.display().to_string())
    ));
    for step in STEPS {
        s.push_str(&format!("ExecStart={}\n", o.command_line(step, quote)));
    }
    s.push_str(&format!("TimeoutStartSec={RUN_TIMEOUT}\n"));
    Ok(s)
}

/// The `.timer` unit that starts the service every period.
pub fn timer_unit(o: &UnitOptions, every: Every) -> String {
    format!(
        "[Unit]\nDescription=berth backup of project {} ({})\n\n[Timer]\nOnCalendar={}\nPersistent=true\nUnit={}.service\n\n[Install]\nWantedBy=timers.target\n",
        escape_specifiers(&o.project_name),
        every.cron_fields(),
        every.on_calendar(),
        unit_stem(&o.project_name),
    )
}

/// One crontab line running the routine; cron runs it with `sh -c`, and `%` ends a crontab
/// command unless escaped.
pub fn cron_line(o: &UnitOptions, every: Every) -> Result<String, berth_deploy::PlanError> {
    o.check_paths()?;
    let dir = shell_quote(&o.working_dir.display().to_string());
    let steps: Vec<String> = STEPS
        .iter()
        .map(|step| o.command_line(step, shell_quote))
        .collect();
    let line = format!("{} cd {dir} && {}", every.cron_fields(), steps.join(" && "));
    Ok(line.replace('%', "\\%"))
}

/// A word for `sh`: bare when it holds only safe characters, else single-quoted.
fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> UnitOptions {
        UnitOptions {
            project_name: "shop".into(),
            working_dir: "/srv/my shop".into(),
            config_files: vec!["/srv/my shop/compose.yaml".into()],
            berth_binary: "/usr/local/bin/berth".into(),
            user_mode: false,
            profiles: vec![],
            env_files: vec![],
        }
    }

    #[test]
    fn periods() {
        assert_eq!(Every::parse("1d"), Some(Every::Day));
        assert_eq!(Every::parse("6h"), Some(Every::Hours(6)));
        assert_eq!(Every::parse("1w"), Some(Every::Week));
        for bad in ["5h", "0h", "2d", "", "1", "h", "36h", "1.5h"] {
            assert_eq!(Every::parse(bad), None, "{bad}");
        }
        assert_eq!(Every::Hours(6).on_calendar(), "*-*-* 00/6:00:00");
        assert_eq!(Every::Hours(6).cron_fields(), "0 */6 * * *");
    }

    #[test]
    fn the_service_runs_create_prune_verify_in_order() {
        let unit = service_unit(&opts()).unwrap();
        let execs: Vec<&str> = unit
            .lines()
            .filter(|l| l.starts_with("ExecStart="))
            .collect();
        assert_eq!(execs.len(), 3, "{unit}");
        assert!(execs[0].ends_with(" backup create"), "{unit}");
        assert!(execs[1].ends_with(" backup prune"), "{unit}");
        assert!(execs[2].ends_with(" backup verify --latest"), "{unit}");
        assert!(
            execs[0].contains("-f \"/srv/my shop/compose.yaml\""),
            "{unit}"
        );
        assert!(unit.contains("WorkingDirectory=/srv/my shop\n"), "{unit}");
    }

    #[test]
    fn the_timer_names_its_service() {
        let t = timer_unit(&opts(), Every::Day);
        assert!(t.contains("OnCalendar=*-*-* 03:00:00\n"), "{t}");
        assert!(t.contains("Unit=berth-backup-shop.service\n"), "{t}");
        assert!(t.contains("Persistent=true\n"), "{t}");
    }

    #[test]
    fn the_cron_line_quotes_for_sh_and_escapes_percent() {
        let mut o = opts();
        o.config_files = vec!["/srv/my shop/it's 100%.yaml".into()];
        let line = cron_line(&o, Every::Day).unwrap();
        assert!(
            line.starts_with("0 3 * * * cd '/srv/my shop' && "),
            "{line}"
        );
        assert!(
            line.contains("-f '/srv/my shop/it'\\''s 100\\%.yaml'"),
            "{line}"
        );
        assert!(
            line.ends_with("backup verify --latest"),
            "the routine ends with verify: {line}"
        );
        assert_eq!(line.matches(" && ").count(), 3, "{line}");
    }

    /// The line cron would run, run by `sh` the way cron does (`\%` back to `%`), with
    /// `/bin/echo` in berth's place: every word arrives intact.
    #[test]
    fn the_cron_command_runs_under_sh_with_every_word_intact() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("my shop's");
        std::fs::create_dir(&project).unwrap();
        let mut o = opts();
        o.working_dir = project.clone();
        o.berth_binary = "/bin/echo".into();
        o.config_files = vec![project.join("it's 100% $HOME.yaml")];
        let line = cron_line(&o, Every::Day).unwrap();
        let command = line.splitn(6, ' ').nth(5).unwrap().replace("\\%", "%");
        let out = std::process::Command::new("sh")
            .args(["-c", &command])
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}");
        let printed = String::from_utf8(out.stdout).unwrap();
        let file = project.join("it's 100% $HOME.yaml").display().to_string();
        assert_eq!(
            printed,
            format!(
                "-p shop -f {file} backup create\n-p shop -f {file} backup prune\n-p shop -f {file} backup verify --latest\n"
            )
        );
    }

    #[test]
    fn relative_paths_are_refused() {
        let mut o = opts();
        o.working_dir = "srv".into();
        assert!(service_unit(&o).is_err());
        assert!(cron_line(&o, Every::Day).is_err());
    }
}
