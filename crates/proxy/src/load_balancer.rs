//! Which target gets the next request: weighted across sets, round robin within a set.

use crate::service::Service;
use crate::target::Target;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A prime stride spreads consecutive requests across the weight range, so a 10% canary
/// gets every tenth request or so instead of ten in a row, while any `total` consecutive
/// requests still land exactly in proportion to the weights.
const STRIDE: u64 = 7919;

/// Picks a target for the next request, or `None` when no set has an available target.
/// Sets with no available target drop out and the others share their weight, so a canary
/// whose only replica died sends its share back to stable instead of failing it.
pub fn pick(service: &Service) -> Option<&Arc<Target>> {
    pick_excluding(service, None)
}

/// As `pick`, avoiding `exclude` (the target that just refused a connection) when any other
/// is available.
pub fn pick_excluding<'a>(
    service: &'a Service,
    exclude: Option<&Arc<Target>>,
) -> Option<&'a Arc<Target>> {
    let usable = |t: &Arc<Target>| t.is_available() && exclude.is_none_or(|e| !Arc::ptr_eq(e, t));
    let total: u64 = service
        .sets
        .iter()
        .filter(|s| s.weight > 0 && s.targets.iter().any(usable))
        .map(|s| u64::from(s.weight))
        .sum();
    if total == 0 {
        return None;
    }
    // One sequence for the route across threads: consecutive requests,
    // whichever thread serves them, land exactly in proportion to the weights.
    let n = service.control.counter.fetch_add(1, Ordering::Relaxed);
    let mut point = n.wrapping_mul(STRIDE) % total;
    for set in &service.sets {
        if set.weight == 0 || !set.targets.iter().any(usable) {
            continue;
        }
        let weight = u64::from(set.weight);
        if point >= weight {
            point -= weight;
            continue;
        }
        let len = set.targets.len();
        let start = set.next.fetch_add(1, Ordering::Relaxed);
        return (0..len)
            .map(|i| &set.targets[(start + i) % len])
            .find(|t| usable(t));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{RouteControl, TargetSet};
    use crate::target::Health;
    use berth_proxy_api::route::RouteSpec;
    use std::collections::HashMap;

    fn service(sets: &[(u32, usize)]) -> Service {
        let mut port = 1000;
        let sets = sets
            .iter()
            .enumerate()
            .map(|(i, &(weight, n))| {
                let targets = (0..n)
                    .map(|_| {
                        port += 1;
                        Target::with_health(
                            format!("127.0.0.1:{port}").parse().unwrap(),
                            Health::Healthy,
                        )
                    })
                    .collect();
                TargetSet::new(format!("s{i}"), weight, targets)
            })
            .collect();
        Service {
            spec: Arc::new(RouteSpec {
                name: "r".into(),
                hosts: vec![],
                path_prefix: "/".into(),
                health_path: None,
                sets: vec![],
                maintenance: None,
            }),
            sets,
            draining: vec![],
            control: Arc::new(RouteControl::default()),
            metrics: crate::metrics::RouteMetrics::detached(),
        }
    }

    fn counts(service: &Service, n: usize) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for _ in 0..n {
            let t = pick(service).expect("a target");
            *counts.entry(t.authority.clone()).or_default() += 1;
        }
        counts
    }

    #[test]
    fn weights_split_exactly_over_whole_cycles() {
        let svc = service(&[(90, 1), (10, 1)]);
        let c = counts(&svc, 10_000);
        assert_eq!(c["127.0.0.1:1001"], 9_000);
        assert_eq!(c["127.0.0.1:1002"], 1_000);
    }

    #[test]
    fn a_canary_is_spread_not_bunched() {
        let svc = service(&[(90, 1), (10, 1)]);
        let picks: Vec<String> = (0..100)
            .map(|_| pick(&svc).unwrap().authority.clone())
            .collect();
        let longest_canary_run = picks
            .split(|a| a == "127.0.0.1:1001")
            .map(|run| run.len())
            .max()
            .unwrap();
        assert!(longest_canary_run <= 2, "{picks:?}");
    }

    #[test]
    fn round_robin_within_a_set() {
        let svc = service(&[(100, 3)]);
        let c = counts(&svc, 300);
        assert!(c.values().all(|&n| n == 100), "{c:?}");
    }

    #[test]
    fn unavailable_targets_and_empty_sets_drop_out() {
        let svc = service(&[(50, 2), (50, 1)]);
        svc.sets[1].targets[0].set_health(Health::Unhealthy);
        svc.sets[0].targets[0].start_draining();
        let c = counts(&svc, 100);
        assert_eq!(c.len(), 1);
        assert_eq!(c["127.0.0.1:1002"], 100);
        svc.sets[0].targets[1].set_health(Health::Unknown);
        assert!(pick(&svc).is_none());
    }

    #[test]
    fn exclusion_avoids_the_target_that_just_failed() {
        let svc = service(&[(100, 2)]);
        let bad = svc.sets[0].targets[0].clone();
        for _ in 0..10 {
            let t = pick_excluding(&svc, Some(&bad)).unwrap();
            assert!(!Arc::ptr_eq(t, &bad));
        }
    }
}
