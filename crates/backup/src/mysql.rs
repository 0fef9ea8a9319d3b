//! MariaDB and MySQL: `mysqldump --single-transaction` of every user database and the
//! client to load it back, run as root with the password the official images are
//! configured with; and the counter that reads the row counts out of the dump itself.
//!
//! MySQL has no way to share a dump's transaction with another query (PostgreSQL's
//! exported snapshots), so the rows a dump holds are counted in the dump as it streams past:
//! consistent with it by construction.

use std::collections::BTreeMap;

use crate::database::DumpKind;

/// Picks the client tools (MariaDB 11 names them `mariadb*`, MySQL and older MariaDB
/// `mysql*`) and root's password from the official images' variables, so every command runs
/// as root over the local socket.
const MY_ENV: &str = r#"if [ -n "${MARIADB_ROOT_PASSWORD_FILE:-}" ]; then MYSQL_PWD="$(cat "$MARIADB_ROOT_PASSWORD_FILE")";
elif [ -n "${MYSQL_ROOT_PASSWORD_FILE:-}" ]; then MYSQL_PWD="$(cat "$MYSQL_ROOT_PASSWORD_FILE")";
else MYSQL_PWD="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}"; fi
if [ -n "$MYSQL_PWD" ]; then export MYSQL_PWD; else unset MYSQL_PWD; fi
if command -v mariadb-dump >/dev/null 2>&1; then dump=mariadb-dump; client=mariadb; admin=mariadb-admin;
else dump=mysqldump; client=mysql; admin=mysqladmin; fi
"#;

/// The schemas that belong to the server, not to the application.
const SYSTEM: &str = "'mysql','information_schema','performance_schema','sys'";

/// Every user database in one consistent transaction (`--single-transaction`, InnoDB's
/// snapshot), with routines, triggers and events; `--add-drop-database` makes a load
/// replace each database whole, so the target ends exactly as the dump; `--hex-blob` keeps
/// binary columns out of the string syntax the row counter reads.
pub(crate) fn dump_script() -> String {
    let failed = DumpKind::FAILED;
    format!(
        r#"{MY_ENV}
dbs="$($client -NBe "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ({SYSTEM}) ORDER BY schema_name")" || {{ echo {failed} 1>&2; exit 1; }}
[ -n "$dbs" ] || exit 0
IFS='
'
exec $dump --single-transaction --routines --triggers --events --hex-blob --add-drop-database --databases $dbs
"#
    )
}

/// Loads a dump from standard input; a failed statement stops it with its error.
pub(crate) fn load_script() -> String {
    format!("{MY_ENV}\nexec $client --binary-mode")
}

/// Counts the user tables: zero means an empty target.
pub(crate) fn count_tables_script() -> String {
    format!(
        r#"{MY_ENV}
exec $client -NBe "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema NOT IN ({SYSTEM})""#
    )
}

/// Counts the rows of every user table, one `berth-rows<TAB>db.table<TAB>N` line each: the
/// first query writes one counting query per table, the second client runs them.
pub(crate) fn count_rows_script() -> String {
    format!(
        r#"{MY_ENV}
set -e
$client -NBr <<'SQL' > /tmp/berth-count.sql
SELECT CONCAT('SELECT ''berth-rows'', ', QUOTE(CONCAT(table_schema, '.', table_name)), ', COUNT(*) FROM `', REPLACE(table_schema, '`', '``'), '`.`', REPLACE(table_name, '`', '``'), '`;') FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ({SYSTEM}) ORDER BY table_schema, table_name;
SQL
$client -NBr < /tmp/berth-count.sql
rm -f /tmp/berth-count.sql
"#
    )
}

/// Succeeds once the server accepts connections over TCP (`ping` answers even when access
/// is denied): the official images' initialisation runs a temporary server without
/// networking, which must not be taken for the real one.
pub(crate) fn ready_script() -> String {
    format!("{MY_ENV}\nexec $admin --protocol=tcp -h 127.0.0.1 ping >/dev/null 2>&1")
}

/// The variables a throwaway server from the service's image needs: a root password of
/// its own, since the service's may come from a secret file the scratch server lacks.
pub(crate) fn scratch_env(env: &mut Vec<String>) {
    env.retain(|e| {
        let key = e.split('=').next().unwrap_or("");
        !(key.ends_with("ROOT_PASSWORD")
            || key.ends_with("ROOT_PASSWORD_FILE")
            || key.ends_with("ALLOW_EMPTY_ROOT_PASSWORD")
            || key.ends_with("ALLOW_EMPTY_PASSWORD")
            || key.ends_with("RANDOM_ROOT_PASSWORD"))
    });
    env.push("MARIADB_ROOT_PASSWORD=berth-verify".into());
    env.push("MYSQL_ROOT_PASSWORD=berth-verify".into());
}

/// Counts the rows of every table in a mysqldump stream: `USE` names the database,
/// `CREATE TABLE` a table (with no rows yet), and each top-level parenthesised tuple of an
/// `INSERT INTO ... VALUES` statement a row, up to the statement's `;`. Strings are single-quoted with backslash
/// escapes, as mysqldump writes them, so a parenthesis or quote inside one is not counted.
#[derive(Debug, Default)]
pub struct RowCounter {
    rows: BTreeMap<String, u64>,
    database: String,
    /// The start of the current line, until it is known what statement it begins.
    head: Vec<u8>,
    state: State,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum State {
    /// Reading the start of a line into `head`.
    #[default]
    Head,
    /// The rest of a line that holds nothing to count.
    Skip,
    /// In the VALUES of an INSERT into the table `table`.
    Values {
        table: String,
        depth: u32,
        quoted: bool,
        escaped: bool,
    },
}

/// Longer than any statement start berth reads (two quoted 64-character names and the
/// keywords, in UTF-8).
const HEAD_MAX: usize = 1024;

impl RowCounter {
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    /// The counts, keyed `database.table`.
    pub fn finish(self) -> BTreeMap<String, u64> {
        self.rows
    }

    fn byte(&mut self, b: u8) {
        match &mut self.state {
            State::Head => {
                if b == b'\n' {
                    self.line_start_done();
                    self.head.clear();
                    return;
                }
                self.head.push(b);
                if let Some(table) = insert_table(&self.head) {
                    let key = self.key(&table);
                    self.rows.entry(key.clone()).or_insert(0);
                    self.state = State::Values {
                        table: key,
                        depth: 0,
                        quoted: false,
                        escaped: false,
                    };
                    self.head.clear();
                } else if self.head.len() >= HEAD_MAX || !could_matter(&self.head) {
                    self.line_start_done();
                    self.head.clear();
                    self.state = State::Skip;
                }
            }
            State::Skip => {
                if b == b'\n' {
                    self.state = State::Head;
                }
            }
            State::Values {
                table,
                depth,
                quoted,
                escaped,
            } => {
                if *quoted {
                    if *escaped {
                        *escaped = false;
                    } else if b == b'\\' {
                        *escaped = true;
                    } else if b == b'\'' {
                        *quoted = false;
                    }
                    return;
                }
                match b {
                    b'\'' => *quoted = true,
                    b'(' => {
                        if *depth == 0 {
                            *self.rows.entry(table.clone()).or_insert(0) += 1;
                        }
                        *depth += 1;
                    }
                    b')' => *depth = depth.saturating_sub(1),
                    // The statement ends; its line may hold nothing more of interest.
                    b';' if *depth == 0 => self.state = State::Skip,
                    _ => {}
                }
            }
        }
    }

    /// A line that ended (or proved uninteresting) in the head: `USE` and `CREATE TABLE`
    /// lines are whole by then.
    fn line_start_done(&mut self) {
        if let Some(rest) = self.head.strip_prefix(b"USE `") {
            if let Some((name, _)) = quoted_name(rest) {
                self.database = name;
            }
        } else if let Some(rest) = self.head.strip_prefix(b"CREATE TABLE `") {
            if let Some((name, _)) = quoted_name(rest) {
                let key = self.key(&name);
                self.rows.entry(key).or_insert(0);
            }
        }
    }

    fn key(&self, table: &str) -> String {
        format!("{}.{table}", self.database)
    }
}

/// Whether a line that starts with `head` may still be one the counter reads.
fn could_matter(head: &[u8]) -> bool {
    const STARTS: [&[u8]; 3] = [b"USE `", b"CREATE TABLE `", b"INSERT INTO `"];
    STARTS.iter().any(|s| {
        let n = head.len().min(s.len());
        head[..n] == s[..n]
    })
}

/// The table of an `INSERT INTO `t` VALUES` head. The tuples follow on the same line
/// (MySQL's mysqldump) or one per line (MariaDB's).
fn insert_table(head: &[u8]) -> Option<String> {
    let rest = head.strip_prefix(b"INSERT INTO `")?;
    if !head.ends_with(b" VALUES") {
        return None;
    }
    let (name, after) = quoted_name(rest)?;
    let after = std::str::from_utf8(after).ok()?;
    // `INSERT INTO `t` VALUES`, or with a column list: `INSERT INTO `t` (`a`) VALUES`.
    (after == " VALUES" || after.starts_with(" (")).then_some(name)
}

/// A backtick-quoted name (`` doubled inside) and what follows its closing backtick.
fn quoted_name(bytes: &[u8]) -> Option<(String, &[u8])> {
    let mut name = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'`' {
            if bytes.get(i + 1) == Some(&b'`') {
                name.push(b'`');
                i += 2;
                continue;
            }
            return Some((String::from_utf8_lossy(&name).into_owned(), &bytes[i + 1..]));
        }
        name.push(bytes[i]);
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(text: &str, chunk: usize) -> BTreeMap<String, u64> {
        let mut c = RowCounter::default();
        for part in text.as_bytes().chunks(chunk) {
            c.feed(part);
        }
        c.finish()
    }

    const DUMP: &str = "-- MariaDB dump 10.19\n\
/*!40101 SET NAMES utf8mb4 */;\n\
CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET latin1 */;\n\
USE `shop`;\n\
DROP TABLE IF EXISTS `empty`;\n\
CREATE TABLE `empty` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB;\n\
CREATE TABLE `odd``name` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB;\n\
INSERT INTO `odd``name` VALUES (1),(2);\n\
CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `s` text\n) ENGINE=InnoDB;\n\
LOCK TABLES `t` WRITE;\n\
INSERT INTO `t` VALUES (1,'a),(b'),(2,'it\\'s (not) a row'),(3,NULL),(4,0x28292C28),(5,'back\\\\'),(6,'x');\n\
INSERT INTO `t` VALUES (7,'(((');\n\
UNLOCK TABLES;\n\
/*!50001 CREATE VIEW `v` AS SELECT 1 AS `a` */;\n\
USE `other`;\n\
CREATE TABLE `t` (\n  `id` int(11)\n);\n\
INSERT INTO `t` (`id`) VALUES (1),(2),(3);\n\
USE `maria`;\n\
CREATE TABLE `m` (\n  `id` int(11)\n);\n\
INSERT INTO `m` VALUES\n(1,'a;b'),\n(2,'x\\'),(y'),\n(3,'\\n');\n\
INSERT INTO `m` VALUES\n(4,';');\n";

    #[test]
    fn rows_are_counted_per_table_whatever_the_strings_hold() {
        for chunk in [1, 3, 7, 4096] {
            let rows = count(DUMP, chunk);
            assert_eq!(rows.len(), 5, "{rows:?}");
            assert_eq!(rows["maria.m"], 4, "chunk {chunk}");
            assert_eq!(rows["shop.empty"], 0);
            assert_eq!(rows["shop.odd`name"], 2);
            assert_eq!(rows["shop.t"], 7, "chunk {chunk}");
            assert_eq!(rows["other.t"], 3);
        }
    }

    #[test]
    fn a_scratch_server_gets_a_root_password_of_its_own() {
        let mut env = vec![
            "MARIADB_ROOT_PASSWORD_FILE=/run/secrets/root".to_string(),
            "MARIADB_DATABASE=shop".to_string(),
            "MYSQL_ALLOW_EMPTY_PASSWORD=1".to_string(),
        ];
        scratch_env(&mut env);
        assert_eq!(
            env,
            [
                "MARIADB_DATABASE=shop",
                "MARIADB_ROOT_PASSWORD=berth-verify",
                "MYSQL_ROOT_PASSWORD=berth-verify"
            ]
        );
    }
}
