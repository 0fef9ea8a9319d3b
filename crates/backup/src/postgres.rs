//! PostgreSQL: `pg_dump --format=custom` and `pg_restore`, run as the superuser the
//! official image is configured with, over the local socket, with no password.

use crate::database::DumpKind;

/// Sets the database's superuser and database from the variables the official postgres
/// image is configured with, so every command runs as that user over the local socket, with
/// no password.
const PG_ENV: &str =
    r#"export PGUSER="${POSTGRES_USER:-postgres}"; export PGDATABASE="${POSTGRES_DB:-$PGUSER}";"#;

/// The query that counts the rows of every user table, one `berth-rows<TAB>schema.table<TAB>N`
/// line each (through psql's `\gexec`).
const PG_COUNT_QUERY: &str = r#"SELECT format('SELECT %L || chr(9) || count(*) FROM %I.%I', 'berth-rows' || chr(9) || schemaname || '.' || tablename, schemaname, tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY schemaname, tablename \gexec"#;

/// Dumps the database and counts its rows in one transaction snapshot: psql opens a
/// repeatable-read transaction, exports its snapshot, writes the row counts to standard
/// error, and runs `pg_dump --snapshot` on it, whose custom-format output is standard
/// output. A failed pg_dump is marked on standard error, since psql's own exit code does
/// not carry it.
pub(crate) fn dump_script() -> String {
    let failed = DumpKind::FAILED;
    format!(
        r#"{PG_ENV}
exec psql -qAtX -v ON_ERROR_STOP=1 <<'SQL'
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT pg_export_snapshot() AS berth_snapshot \gset
\setenv BERTH_SNAPSHOT :berth_snapshot
\o | cat 1>&2
{PG_COUNT_QUERY}
\o
\! pg_dump --format=custom --snapshot="$BERTH_SNAPSHOT" || echo {failed} 1>&2
COMMIT;
SQL
"#
    )
}

/// Counts the rows of every user table, on standard output.
pub(crate) fn count_rows_script() -> String {
    format!(
        r#"{PG_ENV}
exec psql -qAtX -v ON_ERROR_STOP=1 <<'SQL'
{PG_COUNT_QUERY}
SQL
"#
    )
}

/// Loads a custom-format dump from standard input in one transaction: it either replaces
/// the database's objects (`--clean --if-exists`) or, on any error, changes nothing.
pub(crate) fn load_script() -> String {
    format!(
        r#"{PG_ENV} exec pg_restore --clean --if-exists --single-transaction --no-owner --exit-on-error --dbname="$PGDATABASE""#
    )
}

/// Counts the user tables of the service's database: zero means an empty target.
pub(crate) fn count_tables_script() -> String {
    format!(
        r#"{PG_ENV} exec psql -qAtX -c "select count(*) from pg_tables where schemaname not in ('pg_catalog','information_schema')""#
    )
}

/// Succeeds once the server accepts connections over TCP: the official image's
/// initialisation runs a temporary server on the socket only, which must not be taken for
/// the real one.
pub(crate) fn ready_script() -> String {
    format!("{PG_ENV} exec pg_isready -q -h 127.0.0.1")
}

/// The variables a throwaway server from the service's image needs besides the service's
/// own: the official image refuses to start without a password or an explicit trust.
pub(crate) fn scratch_env(env: &mut Vec<String>) {
    env.push("POSTGRES_HOST_AUTH_METHOD=trust".into());
    if !env.iter().any(|e| e.starts_with("POSTGRES_PASSWORD=")) {
        env.push("POSTGRES_PASSWORD=berth-verify".into());
    }
}
