//! The order services start in: topological levels of the `depends_on` graph.

use crate::error::PlanError;
use berth_compose::Project;
use indexmap::IndexMap;
use std::collections::BTreeSet;

/// Which services each service depends on. Only services present in the project are edges: a
/// `required: false` dependency on a service whose profile is off simply does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyGraph {
    deps: IndexMap<String, Vec<String>>,
}

impl DependencyGraph {
    /// The graph of a project: `depends_on`, plus `network_mode: service:X`, which needs X's
    /// container to exist first (Compose treats it as a dependency too).
    pub fn from_project(project: &Project) -> Self {
        let mut deps = IndexMap::new();
        for (name, svc) in &project.services {
            let mut d: Vec<String> = svc
                .depends_on
                .keys()
                .filter(|k| project.services.contains_key(*k))
                .cloned()
                .collect();
            if let Some(target) = svc
                .network_mode
                .as_deref()
                .and_then(|m| m.strip_prefix("service:"))
            {
                if project.services.contains_key(target) && !d.iter().any(|x| x == target) {
                    d.push(target.to_string());
                }
            }
            deps.insert(name.clone(), d);
        }
        DependencyGraph { deps }
    }

    /// A graph from explicit edges (service → the services it depends on).
    pub fn from_edges<I, S>(edges: I) -> Self
    where
        I: IntoIterator<Item = (S, Vec<S>)>,
        S: Into<String>,
    {
        let mut deps = IndexMap::new();
        for (k, v) in edges {
            deps.insert(k.into(), v.into_iter().map(Into::into).collect::<Vec<_>>());
        }
        let known: BTreeSet<String> = deps.keys().cloned().collect();
        for v in deps.values_mut() {
            v.retain(|d| known.contains(d));
        }
        DependencyGraph { deps }
    }

    /// The services, in the graph's own (project) order.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.deps.keys().map(String::as_str)
    }

    /// The direct dependencies of a service.
    pub fn direct_dependencies(&self, service: &str) -> &[String] {
        self.deps.get(service).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Services grouped so that each level depends only on earlier levels. Within a level the
    /// project's order is kept, so plans are deterministic. The loader rejects cycles already;
    /// a cycle here (a hand-built project) is an error rather than a panic or a silent drop.
    pub fn levels(&self) -> Result<Vec<Vec<String>>, PlanError> {
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let mut levels = Vec::new();
        while done.len() < self.deps.len() {
            let level: Vec<String> = self
                .deps
                .iter()
                .filter(|(k, _)| !done.contains(k.as_str()))
                .filter(|(_, d)| d.iter().all(|x| done.contains(x.as_str())))
                .map(|(k, _)| k.clone())
                .collect();
            if level.is_empty() {
                let stuck: Vec<&str> = self
                    .deps
                    .keys()
                    .map(String::as_str)
                    .filter(|k| !done.contains(k))
                    .collect();
                return Err(PlanError::Cycle(stuck.join(", ")));
            }
            for k in &level {
                done.insert(self.deps.get_key_value(k).unwrap().0);
            }
            levels.push(level);
        }
        Ok(levels)
    }

    /// Every service that depends on `service`, directly or through others.
    pub fn dependents_of(&self, service: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![service.to_string()];
        while let Some(s) = todo.pop() {
            for (k, d) in &self.deps {
                if d.contains(&s) && out.insert(k.clone()) {
                    todo.push(k.clone());
                }
            }
        }
        out.remove(service);
        out
    }

    /// Every service `service` depends on, directly or through others.
    pub fn dependencies_of(&self, service: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![service.to_string()];
        while let Some(s) = todo.pop() {
            for d in self.direct_dependencies(&s) {
                if out.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        out.remove(service);
        out
    }

    /// The selected services plus everything they depend on; all services when `selected` is
    /// empty. Unknown names are an error.
    pub fn closure(&self, selected: &[String]) -> Result<BTreeSet<String>, PlanError> {
        if selected.is_empty() {
            return Ok(self.deps.keys().cloned().collect());
        }
        let mut out = BTreeSet::new();
        for s in selected {
            if !self.deps.contains_key(s) {
                return Err(PlanError::UnknownService(s.clone()));
            }
            out.insert(s.clone());
            out.extend(self.dependencies_of(s));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Edges<'a> = &'a [(&'a str, &'a [&'a str])];
    type Levels<'a> = &'a [&'a [&'a str]];

    fn graph(edges: Edges<'_>) -> DependencyGraph {
        DependencyGraph::from_edges(edges.iter().map(|(k, v)| (*k, v.to_vec())))
    }

    #[test]
    fn levels_follow_dependencies_and_keep_order() {
        let cases: &[(Edges<'_>, Levels<'_>)] = &[
            (&[], &[]),
            (&[("a", &[])], &[&["a"]]),
            (
                &[("db", &[]), ("web", &["db"]), ("worker", &["db"])],
                &[&["db"], &["web", "worker"]],
            ),
            (
                &[
                    ("proxy", &["web"]),
                    ("web", &["db", "cache"]),
                    ("db", &[]),
                    ("cache", &[]),
                ],
                &[&["db", "cache"], &["web"], &["proxy"]],
            ),
            // An edge to a service that is not in the graph is ignored.
            (&[("web", &["gone"])], &[&["web"]]),
        ];
        for (edges, want) in cases {
            let got = graph(edges).levels().unwrap();
            let want: Vec<Vec<String>> = want
                .iter()
                .map(|l| l.iter().map(|s| s.to_string()).collect())
                .collect();
            assert_eq!(got, want, "{edges:?}");
        }
    }

    #[test]
    fn cycles_are_errors() {
        let g = graph(&[("a", &["b"]), ("b", &["a"]), ("c", &[])]);
        assert_eq!(g.levels(), Err(PlanError::Cycle("a, b".into())));
        let g = graph(&[("a", &["a"])]);
        assert!(g.levels().is_err());
    }

    #[test]
    fn transitive_dependents_and_dependencies() {
        let g = graph(&[
            ("db", &[]),
            ("web", &["db"]),
            ("proxy", &["web"]),
            ("other", &[]),
        ]);
        assert_eq!(
            g.dependents_of("db").into_iter().collect::<Vec<_>>(),
            ["proxy", "web"]
        );
        assert!(g.dependents_of("proxy").is_empty());
        assert_eq!(
            g.dependencies_of("proxy").into_iter().collect::<Vec<_>>(),
            ["db", "web"]
        );
        assert_eq!(
            g.closure(&["web".into()])
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["db", "web"]
        );
        assert_eq!(g.closure(&[]).unwrap().len(), 4);
        assert_eq!(
            g.closure(&["nope".into()]),
            Err(PlanError::UnknownService("nope".into()))
        );
        // A cycle does not hang the transitive walks.
        let g = graph(&[("a", &["b"]), ("b", &["a"])]);
        assert_eq!(g.dependents_of("a").into_iter().collect::<Vec<_>>(), ["b"]);
    }
}
