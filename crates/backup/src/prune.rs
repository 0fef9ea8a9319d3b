//! `berth backup prune`: which snapshots a keep policy keeps, and removing the rest.
//!
//! The policy is restic's (`forget --keep-last/--keep-daily/--keep-weekly/--keep-monthly`),
//! applied to each item separately, so a week of hourly volume snapshots never pushes out the
//! only database dump. One rule is berth's own: the newest snapshot of an item that `backup
//! verify` proved restorable is never removed, whatever the policy says, because it is the one
//! backup known to work. Days, weeks (Monday to Sunday) and months are counted in UTC.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rustic_core::repofile::SnapshotId;
use rustic_core::{Id, PruneOptions};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::snapshot::Snapshot;
use crate::{BackupError, Repo};

/// How many snapshots of each item to keep; a rule at 0 keeps nothing by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KeepPolicy {
    pub last: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl KeepPolicy {
    /// Whether no rule keeps anything, which would remove every snapshot: refused.
    pub fn is_empty(&self) -> bool {
        self.last == 0 && self.daily == 0 && self.weekly == 0 && self.monthly == 0
    }
}

/// `x-berth.backups.keep`, or an empty policy when the project sets none.
pub fn project_policy(project: &berth_compose::Project) -> KeepPolicy {
    let b = project.berth.backups.clone().unwrap_or_default();
    KeepPolicy {
        last: b.keep_last.unwrap_or(0),
        daily: b.keep_daily.unwrap_or(0),
        weekly: b.keep_weekly.unwrap_or(0),
        monthly: b.keep_monthly.unwrap_or(0),
    }
}

/// Why a snapshot is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Last,
    Daily,
    Weekly,
    Monthly,
    /// The newest snapshot of its item that `backup verify` proved.
    NewestVerified,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Last => "last",
            Reason::Daily => "daily",
            Reason::Weekly => "weekly",
            Reason::Monthly => "monthly",
            Reason::NewestVerified => "newest verified",
        }
    }
}

/// What the policy decides needs of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub item: String,
    pub unix_time: i64,
    pub verified: bool,
}

/// The policy's verdict on one snapshot; `reasons` is empty for a snapshot to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub id: String,
    pub reasons: Vec<Reason>,
}

impl Verdict {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// The calendar bucket of a time for a rule: every snapshot in one bucket competes for one
/// place, and the newest of them wins it.
fn bucket(reason: Reason, unix_time: i64) -> i64 {
    let days = unix_time.div_euclid(86_400);
    match reason {
        Reason::Daily => days,
        // 1970-01-01 was a Thursday; shifting by 3 makes each week start on a Monday.
        Reason::Weekly => (days + 3).div_euclid(7),
        Reason::Monthly => {
            let (year, month, _) = berth_base::civil::civil_from_days(days);
            year * 12 + i64::from(month)
        }
        Reason::Last | Reason::NewestVerified => unix_time,
    }
}

/// Applies `policy` to each item's snapshots. Pure: the same candidates always give the same
/// verdicts, in the order given.
pub fn decide(candidates: &[Candidate], policy: &KeepPolicy) -> Vec<Verdict> {
    let mut reasons: BTreeMap<&str, Vec<Reason>> = BTreeMap::new();
    let mut by_item: BTreeMap<&str, Vec<&Candidate>> = BTreeMap::new();
    for c in candidates {
        by_item.entry(c.item.as_str()).or_default().push(c);
        reasons.entry(c.id.as_str()).or_default();
    }
    let rules = [
        (Reason::Daily, policy.daily),
        (Reason::Weekly, policy.weekly),
        (Reason::Monthly, policy.monthly),
    ];
    for snaps in by_item.values_mut() {
        // Newest first; equal times are ordered by id so the result never depends on input order.
        snaps.sort_by(|a, b| (b.unix_time, &b.id).cmp(&(a.unix_time, &a.id)));
        for (i, c) in snaps.iter().enumerate() {
            if i < policy.last as usize {
                reasons.entry(c.id.as_str()).or_default().push(Reason::Last);
            }
        }
        for (reason, count) in rules {
            // Walking newest first, the first snapshot met in a bucket is that bucket's newest.
            let mut left = count;
            let mut last_bucket = None;
            for c in snaps.iter() {
                if left == 0 {
                    break;
                }
                let b = bucket(reason, c.unix_time);
                if last_bucket != Some(b) {
                    last_bucket = Some(b);
                    left -= 1;
                    reasons.entry(c.id.as_str()).or_default().push(reason);
                }
            }
        }
        if let Some(c) = snaps.iter().find(|c| c.verified) {
            reasons
                .entry(c.id.as_str())
                .or_default()
                .push(Reason::NewestVerified);
        }
    }
    candidates
        .iter()
        .map(|c| {
            let mut r = reasons.get(c.id.as_str()).cloned().unwrap_or_default();
            r.sort();
            r.dedup();
            Verdict {
                id: c.id.clone(),
                reasons: r,
            }
        })
        .collect()
}

/// A validated `berth backup prune`.
#[derive(Debug, Clone)]
pub struct PruneRequest {
    pub policy: KeepPolicy,
    /// Decide and report only; the repository is not changed.
    pub dry_run: bool,
    /// Where the catalog of verified snapshots is kept.
    pub state_dir: PathBuf,
}

/// One snapshot and what prune did (or, with `--dry-run`, would do) with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub snapshot: Snapshot,
    pub keep: bool,
    pub reasons: Vec<Reason>,
}

/// What `berth backup prune` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub policy: KeepPolicy,
    /// Every snapshot of the project, oldest first.
    pub snapshots: Vec<Pruned>,
    /// Pack files removed from the repository (0 on a dry run).
    pub packs_removed: u64,
    /// Blobs (chunks) no snapshot needs any more, removed or marked for removal.
    pub blobs_removed: u64,
}

pub fn prune(repo: &Repo, project: &str, req: &PruneRequest) -> Result<PruneReport, BackupError> {
    // Phase 1: the project's snapshots and which of them verify proved.
    let catalog = Catalog::open(&req.state_dir);
    let snaps = crate::snapshot::list(repo, project, &catalog)?;
    let candidates: Vec<Candidate> = snaps
        .iter()
        .map(|s| Candidate {
            id: s.id.clone(),
            item: s.item.clone(),
            unix_time: s.unix_time,
            verified: s.verified_at.is_some(),
        })
        .collect();

    // Phase 2: the verdicts, from the snapshots alone.
    let verdicts = decide(&candidates, &req.policy);
    let report_of = |packs_removed, blobs_removed| PruneReport {
        dry_run: req.dry_run,
        policy: req.policy,
        snapshots: snaps
            .iter()
            .zip(&verdicts)
            .map(|(s, v)| Pruned {
                snapshot: s.clone(),
                keep: v.keep(),
                reasons: v.reasons.clone(),
            })
            .collect(),
        packs_removed,
        blobs_removed,
    };
    let remove: Vec<&str> = verdicts
        .iter()
        .filter(|v| !v.keep())
        .map(|v| v.id.as_str())
        .collect();
    if req.dry_run || remove.is_empty() {
        return Ok(report_of(0, 0));
    }

    // Phase 3: forget the snapshots, then drop the data no snapshot needs any more. The
    // snapshot files go first: a prune killed after them leaves unused packs, which the next
    // prune removes, never a snapshot whose data is gone.
    let ids = remove
        .iter()
        .map(|id| id.parse::<Id>().map(SnapshotId::from))
        .collect::<Result<Vec<_>, _>>()
        .map_err(repo.error("removing snapshots"))?;
    repo.inner
        .delete_snapshots(&ids)
        .map_err(repo.error("removing snapshots"))?;
    let options = PruneOptions::default();
    let plan = tokio::task::block_in_place(|| repo.inner.prune_plan(&options))
        .map_err(repo.error("planning the prune"))?;
    let packs_removed = plan.stats.packs_to_delete.remove;
    let blobs_removed = plan.stats.blobs_sum().remove + plan.stats.blobs_sum().repackrm;
    tokio::task::block_in_place(|| repo.inner.prune(&options, plan))
        .map_err(repo.error("pruning"))?;
    Ok(report_of(packs_removed, blobs_removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn cand(id: &str, item: &str, unix_time: i64, verified: bool) -> Candidate {
        Candidate {
            id: id.into(),
            item: item.into(),
            unix_time,
            verified,
        }
    }

    fn kept(cands: &[Candidate], policy: &KeepPolicy) -> BTreeSet<String> {
        decide(cands, policy)
            .into_iter()
            .filter(|v| v.keep())
            .map(|v| v.id)
            .collect()
    }

    const DAY: i64 = 86_400;
    // 2026-12-07, a Monday, at noon UTC.
    const MONDAY: i64 = 1_796_601_600 + 12 * 3_600;

    #[test]
    fn monday_starts_a_week() {
        assert_eq!(
            berth_base::civil::civil_from_days(MONDAY.div_euclid(DAY)),
            (2026, 12, 7)
        );
        assert_eq!(
            bucket(Reason::Weekly, MONDAY),
            bucket(Reason::Weekly, MONDAY + 6 * DAY)
        );
        assert_ne!(
            bucket(Reason::Weekly, MONDAY),
            bucket(Reason::Weekly, MONDAY - DAY)
        );
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day_per_item() {
        let cands = vec![
            cand("a1", "volume:data", MONDAY, false),
            cand("a2", "volume:data", MONDAY + 3_600, false),
            cand("a3", "volume:data", MONDAY - DAY, false),
            cand("a4", "volume:data", MONDAY - 2 * DAY, false),
            cand("d1", "postgres:db", MONDAY - 30 * DAY, false),
        ];
        let policy = KeepPolicy {
            daily: 2,
            ..KeepPolicy::default()
        };
        let got = kept(&cands, &policy);
        let want: BTreeSet<String> = ["a2", "a3", "d1"].iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "each item has its own two days");
    }

    #[test]
    fn the_newest_verified_snapshot_is_kept_whatever_the_policy() {
        let cands = vec![
            cand("old", "volume:data", MONDAY - 10 * DAY, true),
            cand("older", "volume:data", MONDAY - 20 * DAY, true),
            cand("new", "volume:data", MONDAY, false),
        ];
        let policy = KeepPolicy {
            last: 1,
            ..KeepPolicy::default()
        };
        let verdicts = decide(&cands, &policy);
        assert_eq!(verdicts[0].reasons, vec![Reason::NewestVerified]);
        assert!(!verdicts[1].keep(), "only the newest verified one is kept");
        assert_eq!(verdicts[2].reasons, vec![Reason::Last]);
    }

    /// The expected set computed another way: every distinct bucket of an item, newest
    /// first, the first `n` of them, and the newest snapshot in each.
    fn oracle(cands: &[Candidate], policy: &KeepPolicy) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let items: BTreeSet<&str> = cands.iter().map(|c| c.item.as_str()).collect();
        for item in items {
            let mine: Vec<&Candidate> = cands.iter().filter(|c| c.item == item).collect();
            let newest = |set: &mut dyn Iterator<Item = &&Candidate>| -> Option<String> {
                set.max_by(|a, b| (a.unix_time, &a.id).cmp(&(b.unix_time, &b.id)))
                    .map(|c| c.id.clone())
            };
            let mut by_age = mine.clone();
            by_age.sort_by(|a, b| (b.unix_time, &b.id).cmp(&(a.unix_time, &a.id)));
            out.extend(
                by_age
                    .iter()
                    .take(policy.last as usize)
                    .map(|c| c.id.clone()),
            );
            for (reason, n) in [
                (Reason::Daily, policy.daily),
                (Reason::Weekly, policy.weekly),
                (Reason::Monthly, policy.monthly),
            ] {
                let buckets: BTreeSet<i64> =
                    mine.iter().map(|c| bucket(reason, c.unix_time)).collect();
                for b in buckets.iter().rev().take(n as usize) {
                    out.extend(newest(
                        &mut mine.iter().filter(|c| bucket(reason, c.unix_time) == *b),
                    ));
                }
            }
            out.extend(newest(&mut mine.iter().filter(|c| c.verified)));
        }
        out
    }

    fn candidates() -> impl Strategy<Value = Vec<Candidate>> {
        // Up to 60 snapshots over about 400 days, a few per day at random hours, of 1–3 items.
        prop::collection::vec(
            (0i64..400 * DAY, 0usize..3, prop::bool::weighted(0.15)),
            0..60,
        )
        .prop_map(|raw| {
            raw.into_iter()
                .enumerate()
                .map(|(i, (offset, item, verified))| {
                    cand(
                        &format!("{i:04}"),
                        ["postgres:db", "volume:data", "bind:/srv/x"][item],
                        MONDAY - offset,
                        verified,
                    )
                })
                .collect()
        })
    }

    fn policies() -> impl Strategy<Value = KeepPolicy> {
        (0u32..5, 0u32..10, 0u32..6, 0u32..14).prop_map(|(last, daily, weekly, monthly)| {
            KeepPolicy {
                last,
                daily,
                weekly,
                monthly,
            }
        })
    }

    proptest! {
        /// Issue #16: prune keeps exactly the expected set, over random dates.
        #[test]
        fn prune_keeps_exactly_the_expected_set(cands in candidates(), policy in policies()) {
            prop_assert_eq!(kept(&cands, &policy), oracle(&cands, &policy));
        }

        /// Keeping never depends on the order the repository listed the snapshots in.
        #[test]
        fn the_order_of_the_input_does_not_matter(cands in candidates(), policy in policies()) {
            let mut reversed = cands.clone();
            reversed.reverse();
            prop_assert_eq!(kept(&cands, &policy), kept(&reversed, &policy));
        }

        /// Pruning what a prune kept removes nothing more, so a scheduled prune is stable.
        #[test]
        fn a_second_prune_removes_nothing(cands in candidates(), policy in policies()) {
            let first = kept(&cands, &policy);
            let rest: Vec<Candidate> =
                cands.iter().filter(|c| first.contains(&c.id)).cloned().collect();
            prop_assert_eq!(kept(&rest, &policy), first);
        }

        /// Every item with a verified snapshot keeps its newest verified one.
        #[test]
        fn the_newest_verified_survives(cands in candidates(), policy in policies()) {
            let got = kept(&cands, &policy);
            for item in cands.iter().map(|c| &c.item) {
                let newest = cands
                    .iter()
                    .filter(|c| &c.item == item && c.verified)
                    .max_by(|a, b| (a.unix_time, &a.id).cmp(&(b.unix_time, &b.id)));
                if let Some(c) = newest {
                    prop_assert!(got.contains(&c.id));
                }
            }
        }
    }
}
