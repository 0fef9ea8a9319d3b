//! The external conformance suite: every project of ../shared/corpus/awesome-compose loads, and
//! its canonical form is snapshotted (insta).

mod common;

#[test]
fn every_corpus_project_loads_and_matches_its_snapshot() {
    let root = common::corpus_dir().join("awesome-compose");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs.len(),
        39,
        "expected the 39 awesome-compose projects in {}",
        root.display()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        match common::load_dir(dir, &[], |_| {}) {
            Ok(loaded) => {
                assert!(!loaded.project.services.is_empty(), "{name}: no services");
                insta::assert_snapshot!(name.clone(), common::yaml(&loaded));
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "projects that failed to load:\n{}",
        failures.join("\n")
    );
}
