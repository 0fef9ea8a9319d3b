//! Property tests over the whole loader: whatever the bytes of a compose file, loading returns a
//! project or located problems, and never panics (issue #2). The case count bounds the time CI
//! spends here; `PROPTEST_CASES` raises it for a longer local run.

mod common;

use proptest::prelude::*;
use std::path::Path;

/// Compose-shaped fragments, so that random combinations reach deep into the loader's stages
/// instead of stopping at the YAML parser.
const FRAGMENTS: &[&str] = &[
    "services:\n",
    "  web:\n",
    "  db:\n",
    "    image: nginx\n",
    "    build: .\n",
    "    build:\n      context: ./x\n      args: [A=1, B]\n",
    "    ports: [\"8080:80\", \"127.0.0.1::81/udp\", \"3000-3002\"]\n",
    "    ports:\n      - target: 80\n        published: ${P:-8080}\n",
    "    volumes: [data:/data, ./src:/app:ro, /anon]\n",
    "    volumes:\n      - type: bind\n        source: ~/x\n        target: /x\n",
    "    depends_on: [db]\n",
    "    depends_on:\n      db:\n        condition: service_healthy\n",
    "    extends: db\n",
    "    extends: {file: other.yaml, service: base}\n",
    "    environment: [A=1, B, C=${C:?need C}]\n",
    "    environment:\n      X: ${Y:-${Z:-d}}\n",
    "    env_file: [.env, {path: missing.env, required: false}]\n",
    "    profiles: [dev]\n",
    "    command: sh -c 'echo $$HOME'\n",
    "    healthcheck:\n      test: curl -f localhost\n      interval: 1m30s\n      retries: 3\n",
    "    networks: [front]\n",
    "    deploy:\n      replicas: ${N:-2}\n      update_config: {order: start-first, delay: 5s}\n",
    "    secrets: [s]\n",
    "    x-berth:\n      proxy: {host: a.test, port: 80}\n      strategy: canary\n",
    "    ports: !reset []\n",
    "    command: !override [a]\n",
    "x-base: &b\n  image: base\n",
    "  app:\n    <<: *b\n",
    "networks:\n  front: {}\n",
    "volumes:\n  data:\n",
    "secrets:\n  s:\n    file: ./s.txt\n",
    "include: [other.yaml]\n",
    "name: ${NAME:-proj}\n",
    "x-berth:\n  proxy: {listen: \"0.0.0.0:80\"}\n",
    "    image: [\n",
    "  - x\n",
    ": :\n",
    "\t\n",
    "    &a *a\n",
    "'unterminated\n",
    "${\n",
    "    ports: {a: 1}\n",
    "services: 5\n",
];

fn write_and_load(dir: &Path, main: &str, other: &str, dotenv: &str) {
    std::fs::write(dir.join("compose.yaml"), main).unwrap();
    std::fs::write(dir.join("other.yaml"), other).unwrap();
    std::fs::write(dir.join(".env"), dotenv).unwrap();
    std::fs::write(dir.join("s.txt"), "secret").unwrap();
    // Either outcome is fine; a panic fails the test.
    let _ = common::load_dir(dir, &[("C", "c"), ("HOME", "/home/u")], |_| {});
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn loader_never_panics_on_compose_shaped_input(
        main in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..24),
        other in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..8),
        dotenv in "[A-Z=\"' #$\\{\\}\n]{0,40}",
    ) {
        let tmp = tempfile::tempdir().unwrap();
        write_and_load(tmp.path(), &main.concat(), &other.concat(), &dotenv);
    }

    #[test]
    fn loader_never_panics_on_arbitrary_text(main in "\\PC{0,200}", other in "\\PC{0,60}") {
        let tmp = tempfile::tempdir().unwrap();
        write_and_load(tmp.path(), &main, &other, "");
    }

    #[test]
    fn loader_never_panics_on_mutated_corpus_files(
        pick in 0usize..39,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, prop::sample::select(&[":", "-", " ", "\n", "[", "{", "\"", "$", "${X", "!reset", "&a", "*a"][..])), 1..6),
    ) {
        let root = common::corpus_dir().join("awesome-compose");
        let mut dirs: Vec<_> = std::fs::read_dir(&root).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        dirs.sort();
        let dir = &dirs[pick % dirs.len()];
        let file = ["compose.yaml", "compose.yml"].iter().map(|n| dir.join(n)).find(|p| p.is_file()).unwrap();
        let mut text = std::fs::read_to_string(file).unwrap();
        for (at, op, s) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) { i -= 1; }
            match op {
                0 => text.insert_str(i, s),
                1 => { let mut j = (i + 3).min(text.len()); while !text.is_char_boundary(j) { j += 1; } text.replace_range(i..j, ""); }
                2 => text.replace_range(i..i, &s.repeat(3)),
                _ => { let mut j = (i + 1).min(text.len()); while !text.is_char_boundary(j) { j += 1; } text.replace_range(i..j, s); }
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        write_and_load(tmp.path(), &text, "services: {}\n", "");
    }
}
