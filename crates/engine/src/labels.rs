//! Label filters, shared by the list operations of containers, networks and volumes.

use std::collections::{BTreeMap, HashMap};

/// The API types take unordered maps; berth keeps sorted ones so that specs hash stably.
pub(crate) fn hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Docker's `label` filter: `key` matches any value, `key=value` only that value. All
/// filters must hold for an object to be listed.
pub(crate) fn label_filters(labels: &[(&str, Option<&str>)]) -> HashMap<String, Vec<String>> {
    let mut filters = HashMap::new();
    if !labels.is_empty() {
        let values = labels
            .iter()
            .map(|(key, value)| match value {
                Some(value) => format!("{key}={value}"),
                None => key.to_string(),
            })
            .collect();
        filters.insert("label".to_string(), values);
    }
    filters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_pairs_become_label_filters() {
        let filters = label_filters(&[("a", None), ("b", Some("c"))]);
        assert_eq!(filters["label"], vec!["a".to_string(), "b=c".to_string()]);
        assert!(label_filters(&[]).is_empty());
    }
}
