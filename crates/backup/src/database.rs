//! The database engines berth dumps by their own tools, by exec in the running server: what
//! each one runs to dump and to load, what it records of a dump for `verify` to compare
//! against, how it tells an empty server from one that holds data, and how a throwaway
//! server of the same image proves that a dump loads.
//!
//! The scripts live in one file per engine (postgres.rs, mysql.rs, redis.rs, custom.rs);
//! this file only chooses between them, so that create, restore and verify read the same
//! for every engine.

use std::collections::BTreeMap;

use berth_compose::berth_ext::BackupKind;

use crate::snapshot::Recorded;
use crate::{custom, mysql, postgres, redis};

/// An engine whose data is saved by its own dump tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpKind {
    /// `pg_dump --format=custom`, with the row counts of the dump's own transaction.
    Postgres,
    /// `mysqldump --single-transaction` (MariaDB or MySQL), rows counted in the dump itself.
    Mysql,
    /// `BGSAVE`, then the RDB file, its keys counted by `redis-check-rdb`.
    Redis,
    /// The service's own commands, for engines berth does not know.
    Custom {
        command: String,
        restore: String,
        file: Option<String>,
    },
}

impl DumpKind {
    /// The kind of a service's `x-berth.backup`, when it is a dump.
    pub fn of(kind: &BackupKind) -> Option<DumpKind> {
        match kind {
            BackupKind::Postgres => Some(DumpKind::Postgres),
            BackupKind::Mysql => Some(DumpKind::Mysql),
            BackupKind::Redis => Some(DumpKind::Redis),
            BackupKind::Custom {
                command,
                restore,
                file,
            } => Some(DumpKind::Custom {
                command: command.clone(),
                restore: restore.clone(),
                file: file.clone(),
            }),
            BackupKind::Volume | BackupKind::Bind | BackupKind::None => None,
        }
    }

    /// The spelling in tags and item ids (`postgres:db`), the same as in `x-berth.backup`.
    pub fn name(&self) -> &'static str {
        match self {
            DumpKind::Postgres => "postgres",
            DumpKind::Mysql => "mysql",
            DumpKind::Redis => "redis",
            DumpKind::Custom { .. } => "custom",
        }
    }

    /// The dump file's extension inside the snapshot, so a `restic restore` says what it is.
    pub fn extension(&self) -> &'static str {
        match self {
            DumpKind::Postgres => "pgdump",
            DumpKind::Mysql => "sql",
            DumpKind::Redis => "rdb",
            DumpKind::Custom { .. } => "dump",
        }
    }

    /// The shell script, run by exec in the server's container, whose standard output is
    /// the dump. What it writes on standard error is kept for [`DumpKind::record`].
    pub(crate) fn dump_script(&self) -> String {
        match self {
            DumpKind::Postgres => postgres::dump_script(),
            DumpKind::Mysql => mysql::dump_script(),
            DumpKind::Redis => redis::dump_script(),
            DumpKind::Custom { command, file, .. } => custom::dump_script(command, file.as_deref()),
        }
    }

    /// The shell script, run by exec in the server's container, that loads the dump from
    /// its standard input.
    pub(crate) fn load_script(&self) -> String {
        match self {
            DumpKind::Postgres => postgres::load_script(),
            DumpKind::Mysql => mysql::load_script(),
            DumpKind::Redis => redis::load_script(),
            DumpKind::Custom { restore, file, .. } => custom::load_script(restore, file.as_deref()),
        }
    }

    /// The tool a dump runs, for error messages.
    pub(crate) fn dump_tool(&self) -> &'static str {
        match self {
            DumpKind::Postgres => "pg_dump",
            DumpKind::Mysql => "mysqldump",
            DumpKind::Redis => "the RDB dump (BGSAVE)",
            DumpKind::Custom { .. } => "the backup command",
        }
    }

    /// The tool a load runs, for error messages.
    pub(crate) fn load_tool(&self) -> &'static str {
        match self {
            DumpKind::Postgres => "pg_restore",
            DumpKind::Mysql => "the mysql client",
            DumpKind::Redis => "writing the RDB file",
            DumpKind::Custom { .. } => "the restore command",
        }
    }

    /// The script that succeeds once a server started from the service's image serves.
    pub(crate) fn ready_script(&self) -> String {
        match self {
            DumpKind::Postgres => postgres::ready_script(),
            DumpKind::Mysql => mysql::ready_script(),
            DumpKind::Redis => redis::ready_script(),
            // Nothing to wait for: berth does not start an engine it does not know.
            DumpKind::Custom { .. } => "true".to_string(),
        }
    }

    /// The script that prints `berth-rows<TAB>table<TAB>N` for every table of a SQL server.
    pub(crate) fn count_rows_script(&self) -> Option<String> {
        match self {
            DumpKind::Postgres => Some(postgres::count_rows_script()),
            DumpKind::Mysql => Some(mysql::count_rows_script()),
            DumpKind::Redis | DumpKind::Custom { .. } => None,
        }
    }

    /// Adds what a throwaway server from the service's image needs to the service's own
    /// variables.
    pub(crate) fn scratch_env(&self, env: &mut Vec<String>) {
        match self {
            DumpKind::Postgres => postgres::scratch_env(env),
            DumpKind::Mysql => mysql::scratch_env(env),
            DumpKind::Redis | DumpKind::Custom { .. } => {}
        }
    }

    /// Whether the server must be stopped and started again for a loaded dump to take
    /// effect (Redis reads its RDB file only when it starts).
    pub(crate) fn restarts_after_load(&self) -> bool {
        matches!(self, DumpKind::Redis)
    }

    /// A dump error output's mark that the dump failed even though the script's own exit
    /// code may not say so.
    pub(crate) const FAILED: &'static str = "berth-dump-failed";

    /// What is recorded of a finished dump, for `verify`: its content hash always, and what
    /// the engine's own means counted in it.
    pub(crate) fn record(
        &self,
        stderr: &str,
        dump_hash: String,
        mysql_rows: Option<BTreeMap<String, u64>>,
    ) -> Recorded {
        let mut recorded = Recorded {
            dump_hash: Some(dump_hash),
            ..Recorded::default()
        };
        match self {
            DumpKind::Postgres => recorded.rows = Some(parse_rows(stderr)),
            DumpKind::Mysql => recorded.rows = mysql_rows,
            DumpKind::Redis => recorded.keys = redis::parse_check(stderr),
            DumpKind::Custom { .. } => {}
        }
        recorded
    }

    /// The script that prints one line, a number: 0 when the server holds no data (an empty
    /// target), more otherwise. A custom engine cannot be asked, so it prints nothing and
    /// counts as holding data.
    pub(crate) fn count_script(&self) -> Option<String> {
        match self {
            DumpKind::Postgres => Some(postgres::count_tables_script()),
            DumpKind::Mysql => Some(mysql::count_tables_script()),
            DumpKind::Redis => Some(redis::count_keys_script()),
            DumpKind::Custom { .. } => None,
        }
    }
}

/// A snapshot item's kind name back to the dump kind, for the built-in engines; a custom
/// one needs the service's own commands (see [`crate::restore`]).
pub(crate) fn builtin(name: &str) -> Option<DumpKind> {
    match name {
        "postgres" => Some(DumpKind::Postgres),
        "mysql" => Some(DumpKind::Mysql),
        "redis" => Some(DumpKind::Redis),
        _ => None,
    }
}

/// The row counts in a count script's output: `berth-rows<TAB>table<TAB>N` lines.
pub(crate) fn parse_rows(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.trim_end_matches(['\r', '\n']).split('\t');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("berth-rows"), Some(table), Some(n)) => {
                    n.trim().parse().ok().map(|n| (table.to_string(), n))
                }
                _ => None,
            }
        })
        .collect()
}

/// `s` as one word for `sh`, whatever it holds.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dump_kind_is_named_as_in_the_compose_file() {
        for (kind, name) in [
            (BackupKind::Postgres, "postgres"),
            (BackupKind::Mysql, "mysql"),
            (BackupKind::Redis, "redis"),
        ] {
            let dump = DumpKind::of(&kind).unwrap();
            assert_eq!(dump.name(), name);
            assert_eq!(dump.name(), kind.as_str());
            assert_eq!(builtin(name), Some(dump));
        }
        let custom = DumpKind::of(&BackupKind::Custom {
            command: "a".into(),
            restore: "b".into(),
            file: None,
        })
        .unwrap();
        assert_eq!(custom.name(), "custom");
        assert_eq!(builtin("custom"), None);
        assert_eq!(DumpKind::of(&BackupKind::Volume), None);
    }

    #[test]
    fn row_counts_are_read_from_their_marked_lines_only() {
        let text = "berth-rows\tpublic.a\t12\nWARNING: something\nberth-rows\tshop.b c\t0\n";
        let rows = parse_rows(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows["public.a"], 12);
        assert_eq!(rows["shop.b c"], 0);
    }

    #[test]
    fn quoting_keeps_every_character() {
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s {}", sh_quote("a 'b' $c \\d"))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a 'b' $c \\d");
    }
}
