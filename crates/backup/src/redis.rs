//! Redis: `BGSAVE`, then the RDB file it wrote, its keys counted by `redis-check-rdb` (which
//! also checks the file's checksum); loading writes the RDB file back beside the server's own
//! and the server is restarted to read it.

use crate::database::DumpKind;
use crate::snapshot::Keys;

/// `redis-cli` with the password the common images read (`REDIS_PASSWORD`), through the
/// variable redis-cli takes it from, so it never appears in a process list.
const REDIS_ENV: &str = r#"if [ -n "${REDIS_PASSWORD:-}" ]; then export REDISCLI_AUTH="$REDIS_PASSWORD"; fi
conf() { redis-cli CONFIG GET "$1" | tr -d '\r' | sed -n 2p; }
"#;

/// How long a `BGSAVE` may take, in seconds, before the dump gives up.
const SAVE_DEADLINE_SECS: u64 = 3600;

/// Waits until the clock has passed the last save's second (so the new save's `LASTSAVE`
/// differs), starts a `BGSAVE` and waits for it; then opens the RDB file once, so a later
/// save replacing it cannot change what is read, has `redis-check-rdb` count its keys on
/// standard error, and writes it to standard output.
pub(crate) fn dump_script() -> String {
    let failed = DumpKind::FAILED;
    format!(
        r#"{REDIS_ENV}
set -e
before="$(redis-cli LASTSAVE | tr -d '\r')"
while [ "$(date +%s)" -le "$before" ]; do sleep 0.2; done
redis-cli BGSAVE >/dev/null
deadline=$(( $(date +%s) + {SAVE_DEADLINE_SECS} ))
while :; do
  info="$(redis-cli INFO persistence | tr -d '\r')"
  now="$(redis-cli LASTSAVE | tr -d '\r')"
  case "$info" in *rdb_bgsave_in_progress:0*) [ "$now" != "$before" ] && break ;; esac
  if [ "$(date +%s)" -gt "$deadline" ]; then echo "BGSAVE did not finish in {SAVE_DEADLINE_SECS}s" 1>&2; echo {failed} 1>&2; exit 1; fi
  sleep 0.1
done
case "$info" in *rdb_last_bgsave_status:ok*) ;; *) echo "BGSAVE failed; see the server's log" 1>&2; echo {failed} 1>&2; exit 1 ;; esac
rdb="$(conf dir)/$(conf dbfilename)"
exec 3< "$rdb"
redis-check-rdb "/proc/$$/fd/3" 1>&2 || {{ echo {failed} 1>&2; exit 1; }}
exec cat <&3
"#
    )
}

/// Writes the RDB file from standard input beside the server's own, checks it, stops the
/// server from saving over it on shutdown (`save ""`, for this run of the server only) and
/// moves it into place; the caller restarts the server. An append-only file would be read
/// instead of the RDB at start, so a server with `appendonly yes` is refused before anything
/// changes.
pub(crate) fn load_script() -> String {
    format!(
        r#"{REDIS_ENV}
set -e
if [ "$(conf appendonly)" != no ]; then cat >/dev/null; echo "the server runs with appendonly yes, which would ignore a restored RDB file; set appendonly no for the restore" 1>&2; exit 3; fi
dir="$(conf dir)"; file="$(conf dbfilename)"
cat > "$dir/.berth-restore.rdb"
if ! redis-check-rdb "$dir/.berth-restore.rdb" >/dev/null; then rm -f "$dir/.berth-restore.rdb"; echo "the snapshot's RDB file does not pass redis-check-rdb" 1>&2; exit 4; fi
redis-cli CONFIG SET save "" >/dev/null
mv -f "$dir/.berth-restore.rdb" "$dir/$file"
"#
    )
}

/// The number of keys in every database: zero means an empty target.
pub(crate) fn count_keys_script() -> String {
    format!(
        r#"{REDIS_ENV}
redis-cli INFO keyspace | tr -d '\r' | sed -n 's/^db[0-9]*:keys=\([0-9]*\).*/\1/p' | awk '{{s+=$1}} END {{print s+0}}'"#
    )
}

/// Succeeds once the server answers.
pub(crate) fn ready_script() -> String {
    format!(r#"{REDIS_ENV} [ "$(redis-cli PING | tr -d '\r')" = PONG ]"#)
}

/// The port of the second server a verify starts inside the scratch container, on the dump.
const PROBE_PORT: u16 = 6399;

/// Loads the RDB from standard input into a second server inside the scratch container,
/// on its own port, with nothing saved.
pub(crate) fn probe_load_script() -> String {
    format!(
        r#"set -e
cat > /tmp/berth-verify.rdb
redis-server --port {PROBE_PORT} --dir /tmp --dbfilename berth-verify.rdb --save "" --appendonly no --daemonize yes >/dev/null"#
    )
}

/// The number of keys the probe server holds, once it has loaded; fails while it loads.
pub(crate) fn probe_count_script() -> String {
    format!(
        r#"[ "$(redis-cli -p {PROBE_PORT} PING | tr -d '\r')" = PONG ] || exit 1
redis-cli -p {PROBE_PORT} INFO keyspace | tr -d '\r' | sed -n 's/^db[0-9]*:keys=\([0-9]*\).*/\1/p' | awk '{{s+=$1}} END {{print s+0}}'"#
    )
}

/// The counts in `redis-check-rdb`'s report: `[info] N keys read`, `[info] N expires` and
/// `[info] N already expired`.
pub(crate) fn parse_check(text: &str) -> Option<Keys> {
    let value = |what: &str| {
        text.lines().find_map(|l| {
            let rest = l.trim().strip_prefix("[info] ")?;
            let (n, tail) = rest.split_once(' ')?;
            (tail == what).then(|| n.parse::<u64>().ok()).flatten()
        })
    };
    Some(Keys {
        keys: value("keys read")?,
        expires: value("expires").unwrap_or(0),
        expired: value("already expired").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_report_gives_the_counts() {
        let text = "[offset 0] Checking RDB file /proc/7/fd/3\n\
[offset 27] AUX FIELD redis-ver = '7.0.15'\n\
[offset 12345] \\o/ RDB looks OK! \\o/\n\
[info] 1002 keys read\n\
[info] 2 expires\n\
[info] 1 already expired\n";
        assert_eq!(
            parse_check(text),
            Some(Keys {
                keys: 1002,
                expires: 2,
                expired: 1
            })
        );
        assert_eq!(parse_check("garbage"), None);
    }
}
