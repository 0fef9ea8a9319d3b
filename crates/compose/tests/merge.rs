//! Merge rules of compose-spec 13-merge.md as compose-go implements them: each case is a base
//! file, an override file and the expected merged tree.

use berth_compose::merge::{merge_files, merge_service, strip_tags};
use berth_compose::node::{Entry, Kind, Map, Node, Tag};
use berth_compose::source::{SourceId, Span};
use berth_compose::yaml;
use proptest::prelude::*;

fn parse(text: &str, id: u32) -> Node {
    yaml::parse(text, SourceId(id))
        .expect("valid yaml")
        .into_iter()
        .next()
        .unwrap_or_else(|| Node::map(Map::new(), Span::NONE))
}

fn assert_untagged(node: &Node) {
    assert_eq!(node.tag, None, "tag left on {node:?}");
    match &node.kind {
        Kind::Seq(items) => items.iter().for_each(assert_untagged),
        Kind::Map(m) => m.values().for_each(|e| assert_untagged(&e.value)),
        _ => {}
    }
}

fn merged(base: &str, over: &str) -> Node {
    let result = merge_files(parse(base, 0), parse(over, 1));
    assert_untagged(&result);
    result
}

/// (name, base, override, expected)
type Case = (&'static str, &'static str, &'static str, &'static str);

fn run(cases: &[Case]) {
    let mut failures = Vec::new();
    for (name, base, over, expected) in cases {
        let got = merged(base, over).to_json();
        let want = parse(expected, 2).to_json();
        if got != want {
            failures.push(format!("{name}:\n  got:  {got}\n  want: {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn spec_examples() {
    run(&[
        (
            "mapping",
            "services:\n  foo:\n    key1: value1\n    key2: value2\n",
            "services:\n  foo:\n    key2: VALUE\n    key3: value3\n",
            "services:\n  foo:\n    key1: value1\n    key2: VALUE\n    key3: value3\n",
        ),
        (
            "sequence",
            "services:\n  foo:\n    DNS:\n      - 1.1.1.1\n",
            "services:\n  foo:\n    DNS: \n      - 8.8.8.8\n",
            "services:\n  foo:\n    DNS:\n      - 1.1.1.1\n      - 8.8.8.8\n",
        ),
        (
            "command is overridden",
            "services:\n  foo:\n    command: [\"echo\", \"foo\"]\n",
            "services:\n  foo:\n    command: [\"echo\", \"bar\"]\n",
            "services:\n  foo:\n    command: [\"echo\", \"bar\"]\n",
        ),
        (
            "volumes unique by target",
            "services:\n  foo:\n    volumes:\n      - foo:/work\n",
            "services:\n  foo:\n    volumes:\n      - bar:/work\n",
            "services:\n  foo:\n    volumes:\n      - bar:/work\n",
        ),
        (
            "reset ports and environment entry",
            "services:\n  app:\n    image: myapp\n    ports:\n      - \"8080:80\"\n    environment:\n      FOO: BAR\n",
            "services:\n  app:\n    image: myapp\n    ports: !reset []\n    environment:\n      FOO: !reset null\n",
            "services:\n  app:\n    image: myapp\n    environment: {}\n",
        ),
        (
            "override ports",
            "services:\n  app:\n    image: myapp\n    ports:\n      - \"8080:80\"\n",
            "services:\n  app:\n    ports: !override\n      - \"8443:443\"\n",
            "services:\n  app:\n    image: myapp\n    ports:\n      - \"8443:443\"\n",
        ),
    ]);
}

#[test]
fn scalars_sequences_and_nulls() {
    run(&[
        (
            "scalar replaced, type change allowed",
            "services:\n  a:\n    image: x\n    cpus: 1\n",
            "services:\n  a:\n    image: y\n    cpus: 1.5\n",
            "services:\n  a:\n    image: y\n    cpus: 1.5\n",
        ),
        (
            "null in override keeps base",
            "services:\n  a:\n    image: x\n    stop_signal: SIGINT\n",
            "services:\n  a:\n    image:\n    stop_signal: null\n",
            "services:\n  a:\n    image: x\n    stop_signal: SIGINT\n",
        ),
        (
            "unknown sequences append with duplicates",
            "services:\n  a:\n    post_start: [{command: a}]\n",
            "services:\n  a:\n    post_start: [{command: a}, {command: b}]\n",
            "services:\n  a:\n    post_start: [{command: a}, {command: a}, {command: b}]\n",
        ),
        (
            "mismatched shapes: override wins",
            "services:\n  a:\n    healthcheck: {interval: 5s}\n",
            "services:\n  a:\n    healthcheck: [x]\n",
            "services:\n  a:\n    healthcheck: [x]\n",
        ),
        (
            "nested mapping merge",
            "services:\n  a:\n    deploy:\n      resources:\n        limits: {cpus: '1', memory: 1g}\n",
            "services:\n  a:\n    deploy:\n      resources:\n        limits: {memory: 2g}\n        reservations: {cpus: '0.5'}\n",
            "services:\n  a:\n    deploy:\n      resources:\n        limits: {cpus: '1', memory: 2g}\n        reservations: {cpus: '0.5'}\n",
        ),
    ]);
}

#[test]
fn shell_commands_are_replaced() {
    run(&[
        (
            "entrypoint",
            "services:\n  a:\n    entrypoint: [sh, -c]\n",
            "services:\n  a:\n    entrypoint: [bash, -c]\n",
            "services:\n  a:\n    entrypoint: [bash, -c]\n",
        ),
        (
            "command string over list",
            "services:\n  a:\n    command: [echo, a]\n",
            "services:\n  a:\n    command: echo b\n",
            "services:\n  a:\n    command: echo b\n",
        ),
        (
            "command null replaces",
            "services:\n  a:\n    command: [echo, a]\n",
            "services:\n  a:\n    command: null\n",
            "services:\n  a:\n    command: null\n",
        ),
        (
            "healthcheck test replaced, rest merged",
            "services:\n  a:\n    healthcheck:\n      test: [CMD, curl, a]\n      interval: 5s\n",
            "services:\n  a:\n    healthcheck:\n      test: [CMD, curl, b]\n      retries: 3\n",
            "services:\n  a:\n    healthcheck:\n      test: [CMD, curl, b]\n      interval: 5s\n      retries: 3\n",
        ),
    ]);
}

#[test]
fn ports_unique_by_ip_target_published_protocol() {
    run(&[
        (
            "same short port once",
            "services:\n  a:\n    ports: [\"8080:80\"]\n",
            "services:\n  a:\n    ports: [\"8080:80\", \"9090:90\"]\n",
            "services:\n  a:\n    ports: [\"8080:80\", \"9090:90\"]\n",
        ),
        (
            "different host ip or protocol appended",
            "services:\n  a:\n    ports: [\"8080:80\"]\n",
            "services:\n  a:\n    ports: [\"127.0.0.1:8080:80\", \"8080:80/udp\"]\n",
            "services:\n  a:\n    ports: [\"8080:80\", \"127.0.0.1:8080:80\", \"8080:80/udp\"]\n",
        ),
        (
            "long replaces equivalent short in place",
            "services:\n  a:\n    ports: [\"8080:80\", \"443\"]\n",
            "services:\n  a:\n    ports:\n      - {target: 80, published: \"8080\", name: web}\n",
            "services:\n  a:\n    ports:\n      - {target: 80, published: \"8080\", name: web}\n      - \"443\"\n",
        ),
        (
            "short replaces long, defaults 0.0.0.0 and tcp",
            "services:\n  a:\n    ports:\n      - {target: 80, published: 8080, host_ip: 0.0.0.0, protocol: tcp}\n",
            "services:\n  a:\n    ports: [\"0.0.0.0:8080:80/tcp\"]\n",
            "services:\n  a:\n    ports: [\"0.0.0.0:8080:80/tcp\"]\n",
        ),
        (
            "target only and ranges",
            "services:\n  a:\n    ports: [80, \"3000-3005\"]\n",
            "services:\n  a:\n    ports: [\"80\", \"3000-3005\", \"8080:80\"]\n",
            "services:\n  a:\n    ports: [\"80\", \"3000-3005\", \"8080:80\"]\n",
        ),
        (
            "udp short and long",
            "services:\n  a:\n    ports: [\"127.0.0.1:53:53/udp\"]\n",
            "services:\n  a:\n    ports: [{target: 53, published: \"53\", host_ip: 127.0.0.1, protocol: udp, mode: host}]\n",
            "services:\n  a:\n    ports: [{target: 53, published: \"53\", host_ip: 127.0.0.1, protocol: udp, mode: host}]\n",
        ),
    ]);
}

#[test]
fn mounts_unique_by_target() {
    run(&[
        (
            "volume short forms",
            "services:\n  a:\n    volumes: [\"/cache\", \"data:/data\", \"./src:/app:ro\"]\n",
            "services:\n  a:\n    volumes: [\"other:/cache\", \"./src2:/app\", \"logs:/logs\"]\n",
            "services:\n  a:\n    volumes: [\"other:/cache\", \"data:/data\", \"./src2:/app\", \"logs:/logs\"]\n",
        ),
        (
            "volume long replaces short",
            "services:\n  a:\n    volumes: [\"data:/data\"]\n",
            "services:\n  a:\n    volumes:\n      - {type: volume, source: other, target: /data, read_only: true}\n",
            "services:\n  a:\n    volumes:\n      - {type: volume, source: other, target: /data, read_only: true}\n",
        ),
        (
            "windows drive letters",
            "services:\n  a:\n    volumes: [\"C:\\\\data:/data\"]\n",
            "services:\n  a:\n    volumes: [\"D:\\\\data:/data:ro\"]\n",
            "services:\n  a:\n    volumes: [\"D:\\\\data:/data:ro\"]\n",
        ),
        (
            "secrets short and long",
            "services:\n  a:\n    secrets: [s1, s2, s3]\n",
            "services:\n  a:\n    secrets:\n      - {source: s1, mode: 0400}\n      - {source: s2, target: /run/secrets/s2, uid: '1'}\n      - {source: s3, target: /elsewhere}\n",
            "services:\n  a:\n    secrets:\n      - {source: s1, mode: 0400}\n      - {source: s2, target: /run/secrets/s2, uid: '1'}\n      - s3\n      - {source: s3, target: /elsewhere}\n",
        ),
        (
            "configs default target is /name",
            "services:\n  a:\n    configs: [c1, c2]\n",
            "services:\n  a:\n    configs:\n      - {source: c1, target: /c1, mode: 0444}\n      - {source: c2, target: /run/secrets/c2}\n",
            "services:\n  a:\n    configs:\n      - {source: c1, target: /c1, mode: 0444}\n      - c2\n      - {source: c2, target: /run/secrets/c2}\n",
        ),
    ]);
}

#[test]
fn list_or_mapping_merged_by_key() {
    run(&[
        (
            "environment list then mapping",
            "services:\n  a:\n    environment: [A=1, B, C=x=y]\n",
            "services:\n  a:\n    environment: {A: 2, D: 3}\n",
            "services:\n  a:\n    environment: {A: 2, B: null, C: x=y, D: 3}\n",
        ),
        (
            "environment mapping then list",
            "services:\n  a:\n    environment: {A: 1, B: 2}\n",
            "services:\n  a:\n    environment: [B=3, C=]\n",
            "services:\n  a:\n    environment: {A: 1, B: \"3\", C: \"\"}\n",
        ),
        (
            "environment list then list, null value overrides",
            "services:\n  a:\n    environment: [A=1, B=2]\n",
            "services:\n  a:\n    environment: [A]\n",
            "services:\n  a:\n    environment: {A: null, B: \"2\"}\n",
        ),
        (
            "environment reset of one key",
            "services:\n  a:\n    environment: {A: 1, B: 2}\n",
            "services:\n  a:\n    environment: {A: !reset null}\n",
            "services:\n  a:\n    environment: {B: 2}\n",
        ),
        (
            "labels",
            "services:\n  a:\n    labels: [com.x=1]\n",
            "services:\n  a:\n    labels: {com.y: \"2\"}\n",
            "services:\n  a:\n    labels: {com.x: \"1\", com.y: \"2\"}\n",
        ),
        (
            "annotations and sysctls",
            "services:\n  a:\n    annotations: [a=1]\n    sysctls: {net.core.somaxconn: 1024}\n",
            "services:\n  a:\n    annotations: [a=2]\n    sysctls: [net.ipv4.tcp_syncookies=0]\n",
            "services:\n  a:\n    annotations: {a: \"2\"}\n    sysctls: {net.core.somaxconn: 1024, net.ipv4.tcp_syncookies: \"0\"}\n",
        ),
        (
            "build args and labels, deploy labels",
            "services:\n  a:\n    build:\n      context: .\n      args: [V=1]\n      labels: {l: a}\n    deploy:\n      labels: [d=1]\n",
            "services:\n  a:\n    build:\n      args: {V: 2, W: 3}\n      labels: [m=b]\n    deploy:\n      labels: {d: 2}\n",
            "services:\n  a:\n    build:\n      context: .\n      args: {V: 2, W: 3}\n      labels: {l: a, m: b}\n    deploy:\n      labels: {d: 2}\n",
        ),
        (
            "extra_hosts in all forms",
            "services:\n  a:\n    extra_hosts: [\"h1:1.1.1.1\", \"h2=2.2.2.2\", \"h6:::1\"]\n",
            "services:\n  a:\n    extra_hosts: {h1: 3.3.3.3, h4: 4.4.4.4}\n",
            "services:\n  a:\n    extra_hosts: {h1: 3.3.3.3, h2: 2.2.2.2, h6: \"::1\", h4: 4.4.4.4}\n",
        ),
        (
            "network and volume labels",
            "networks:\n  n:\n    labels: [a=1]\nvolumes:\n  v:\n    labels: {a: \"1\"}\n",
            "networks:\n  n:\n    labels: {b: \"2\"}\nvolumes:\n  v:\n    labels: [a=2]\n",
            "networks:\n  n:\n    labels: {a: \"1\", b: \"2\"}\nvolumes:\n  v:\n    labels: {a: \"2\"}\n",
        ),
        (
            "null override keeps base, converted",
            "services:\n  a:\n    environment: [A=1]\n",
            "services:\n  a:\n    environment:\n",
            "services:\n  a:\n    environment: {A: \"1\"}\n",
        ),
    ]);
}

#[test]
fn depends_on_networks_build() {
    run(&[
        (
            "depends_on list then mapping",
            "services:\n  a:\n    depends_on: [db, cache]\n",
            "services:\n  a:\n    depends_on:\n      db: {condition: service_healthy, restart: true}\n      queue: {condition: service_started}\n",
            "services:\n  a:\n    depends_on:\n      db: {condition: service_healthy, required: true, restart: true}\n      cache: {condition: service_started, required: true}\n      queue: {condition: service_started, required: true}\n",
        ),
        (
            "depends_on mapping kept, list adds",
            "services:\n  a:\n    depends_on:\n      db: {condition: service_healthy, required: false}\n",
            "services:\n  a:\n    depends_on: [cache]\n",
            "services:\n  a:\n    depends_on:\n      db: {condition: service_healthy, required: false}\n      cache: {condition: service_started, required: true}\n",
        ),
        (
            "depends_on null override",
            "services:\n  a:\n    depends_on: [db]\n",
            "services:\n  a:\n    depends_on: null\n",
            "services:\n  a:\n    depends_on:\n      db: {condition: service_started, required: true}\n",
        ),
        (
            "service networks list and mapping",
            "services:\n  a:\n    networks: [front, back]\n",
            "services:\n  a:\n    networks:\n      back: {aliases: [api]}\n      extra:\n",
            "services:\n  a:\n    networks:\n      front: null\n      back: {aliases: [api]}\n      extra: null\n",
        ),
        (
            "service network aliases merged without duplicates",
            "services:\n  a:\n    networks:\n      back: {aliases: [api, web], ipv4_address: 10.0.0.2}\n",
            "services:\n  a:\n    networks:\n      back: {aliases: [web, www], ipv4_address: 10.0.0.3}\n",
            "services:\n  a:\n    networks:\n      back: {aliases: [api, web, www], ipv4_address: 10.0.0.3}\n",
        ),
        (
            "build string then mapping",
            "services:\n  a:\n    build: ./app\n",
            "services:\n  a:\n    build: {dockerfile: Dockerfile.dev}\n",
            "services:\n  a:\n    build: {context: ./app, dockerfile: Dockerfile.dev}\n",
        ),
        (
            "build mapping then string",
            "services:\n  a:\n    build: {context: ., target: prod}\n",
            "services:\n  a:\n    build: ./other\n",
            "services:\n  a:\n    build: {context: ./other, target: prod}\n",
        ),
    ]);
}

const UNIQUE_LISTS: &[&str] = &[
    "dns",
    "dns_search",
    "dns_opt",
    "env_file",
    "tmpfs",
    "cap_add",
    "cap_drop",
    "security_opt",
    "devices",
    "group_add",
    "expose",
    "profiles",
    "external_links",
    "links",
    "volumes_from",
];

#[test]
fn string_or_list_appended_without_duplicates() {
    for field in UNIQUE_LISTS {
        let base = format!("services:\n  a:\n    {field}: [x, y]\n");
        let over = format!("services:\n  a:\n    {field}: [y, z, x]\n");
        let got = merged(&base, &over);
        let want = parse(&format!("services:\n  a:\n    {field}: [x, y, z]\n"), 2);
        assert_eq!(got.to_json(), want.to_json(), "{field}: list + list");

        let base = format!("services:\n  a:\n    {field}: x\n");
        let over = format!("services:\n  a:\n    {field}: y\n");
        let got = merged(&base, &over);
        let want = parse(&format!("services:\n  a:\n    {field}: [x, y]\n"), 2);
        assert_eq!(got.to_json(), want.to_json(), "{field}: string + string");
    }
    run(&[
        (
            "expose ints and strings are the same",
            "services:\n  a:\n    expose: [80, \"443\"]\n",
            "services:\n  a:\n    expose: [\"80\", 443, 8080]\n",
            "services:\n  a:\n    expose: [80, \"443\", 8080]\n",
        ),
        (
            "env_file with path replaces in place",
            "services:\n  a:\n    env_file: [a.env, b.env]\n",
            "services:\n  a:\n    env_file:\n      - {path: a.env, required: false}\n      - c.env\n",
            "services:\n  a:\n    env_file:\n      - {path: a.env, required: false}\n      - b.env\n      - c.env\n",
        ),
        (
            "string then list",
            "services:\n  a:\n    dns: 8.8.8.8\n",
            "services:\n  a:\n    dns: [1.1.1.1, 8.8.8.8]\n",
            "services:\n  a:\n    dns: [8.8.8.8, 1.1.1.1]\n",
        ),
    ]);
}

#[test]
fn logging_and_ulimits() {
    run(&[
        (
            "same driver: options merge",
            "services:\n  a:\n    logging:\n      driver: json-file\n      options: {max-size: 10m, max-file: '3'}\n",
            "services:\n  a:\n    logging:\n      driver: json-file\n      options: {max-size: 20m}\n",
            "services:\n  a:\n    logging:\n      driver: json-file\n      options: {max-size: 20m, max-file: '3'}\n",
        ),
        (
            "different driver: replaced",
            "services:\n  a:\n    logging:\n      driver: json-file\n      options: {max-size: 10m}\n",
            "services:\n  a:\n    logging:\n      driver: syslog\n      options: {syslog-address: udp://x}\n",
            "services:\n  a:\n    logging:\n      driver: syslog\n      options: {syslog-address: udp://x}\n",
        ),
        (
            "override without driver: merge",
            "services:\n  a:\n    logging:\n      driver: json-file\n      options: {max-size: 10m}\n",
            "services:\n  a:\n    logging:\n      options: {max-file: '2'}\n",
            "services:\n  a:\n    logging:\n      driver: json-file\n      options: {max-size: 10m, max-file: '2'}\n",
        ),
        (
            "ulimits",
            "services:\n  a:\n    ulimits:\n      nproc: 100\n      nofile: {soft: 1, hard: 2}\n      core: {soft: 1, hard: 2}\n      memlock: 5\n",
            "services:\n  a:\n    ulimits:\n      nproc: {soft: 10, hard: 20}\n      nofile: 3\n      core: {hard: 4}\n      stack: 7\n",
            "services:\n  a:\n    ulimits:\n      nproc: {soft: 10, hard: 20}\n      nofile: 3\n      core: {soft: 1, hard: 4}\n      memlock: 5\n      stack: 7\n",
        ),
    ]);
}

#[test]
fn reset_and_override_tags() {
    run(&[
        (
            "reset removes keys, services and nested values",
            "services:\n  a:\n    image: x\n    build: .\n    healthcheck: {test: [CMD, x], interval: 1s}\n  b:\n    image: y\n",
            "services:\n  a:\n    build: !reset null\n    healthcheck:\n      interval: !reset\n  b: !reset\n",
            "services:\n  a:\n    image: x\n    healthcheck: {test: [CMD, x]}\n",
        ),
        (
            "reset where base has nothing",
            "services:\n  a:\n    image: x\n",
            "services:\n  a:\n    ports: !reset []\n  b: !reset {image: z}\n",
            "services:\n  a:\n    image: x\n",
        ),
        (
            "override where base has nothing",
            "services:\n  a:\n    image: x\n",
            "services:\n  a:\n    ports: !override [\"80\"]\n",
            "services:\n  a:\n    image: x\n    ports: [\"80\"]\n",
        ),
        (
            "override a mapping and a whole service",
            "services:\n  a:\n    image: x\n    environment: {A: 1, B: 2}\n  b:\n    image: y\n    ports: [\"80\"]\n",
            "services:\n  a:\n    environment: !override [C=3]\n  b: !override\n    image: z\n",
            "services:\n  a:\n    image: x\n    environment: [C=3]\n  b:\n    image: z\n",
        ),
        (
            "reset items of an override sequence are dropped",
            "services:\n  a:\n    dns: [1.1.1.1]\n    ports: [\"80\"]\n    post_start: [{command: a}]\n",
            "services:\n  a:\n    dns: [!reset 2.2.2.2, 3.3.3.3]\n    ports: [!reset \"81\"]\n    post_start: [!reset {command: b}]\n",
            "services:\n  a:\n    dns: [1.1.1.1, 3.3.3.3]\n    ports: [\"80\"]\n    post_start: [{command: a}]\n",
        ),
        (
            "tags inside a value added as is are stripped",
            "services:\n  a:\n    image: x\n",
            "services:\n  b:\n    image: y\n    environment: {A: !reset 1, B: !override 2}\n    ports: [!reset \"80\", \"81\"]\n",
            "services:\n  a:\n    image: x\n  b:\n    image: y\n    environment: {B: 2}\n    ports: [\"81\"]\n",
        ),
        (
            "reset entries of the base are removed",
            "services:\n  a:\n    image: x\n    init: !reset true\n",
            "services:\n  a:\n    tty: true\n",
            "services:\n  a:\n    image: x\n    tty: true\n",
        ),
        (
            "reset a top-level resource",
            "volumes:\n  data: {}\n  logs: {}\n",
            "volumes:\n  logs: !reset\n",
            "volumes:\n  data: {}\n",
        ),
    ]);
}

#[test]
fn top_level() {
    run(&[
        (
            "resources merged by name, service added",
            "name: one\nversion: '3.8'\nservices:\n  a: {image: x}\nnetworks:\n  n: {driver: bridge}\nvolumes:\n  v: {driver: local}\nsecrets:\n  s: {file: ./s}\nconfigs:\n  c: {file: ./c}\n",
            "name: two\nversion: '3.9'\nservices:\n  b: {image: y}\nnetworks:\n  n: {internal: true}\n  m: {}\nvolumes:\n  v: {external: true}\nsecrets:\n  s: {file: ./s2}\nconfigs:\n  d: {content: hi}\n",
            "name: two\nversion: '3.9'\nservices:\n  a: {image: x}\n  b: {image: y}\nnetworks:\n  n: {driver: bridge, internal: true}\n  m: {}\nvolumes:\n  v: {driver: local, external: true}\nsecrets:\n  s: {file: ./s2}\nconfigs:\n  c: {file: ./c}\n  d: {content: hi}\n",
        ),
        (
            "extensions merged, include appended",
            "include: [a.yaml]\nx-common: {a: 1, list: [1]}\n",
            "include: [{path: b.yaml}]\nx-common: {b: 2, list: [2]}\nx-new: 3\n",
            "include: [a.yaml, {path: b.yaml}]\nx-common: {a: 1, b: 2, list: [1, 2]}\nx-new: 3\n",
        ),
        (
            "ipam config merged by subnet",
            "networks:\n  n:\n    ipam:\n      driver: default\n      config:\n        - {subnet: 10.0.0.0/24, gateway: 10.0.0.1}\n",
            "networks:\n  n:\n    ipam:\n      config:\n        - {subnet: 10.0.0.0/24, ip_range: 10.0.0.0/25}\n        - {subnet: 10.1.0.0/24}\n",
            "networks:\n  n:\n    ipam:\n      driver: default\n      config:\n        - {subnet: 10.0.0.0/24, gateway: 10.0.0.1, ip_range: 10.0.0.0/25}\n        - {subnet: 10.1.0.0/24}\n",
        ),
        (
            "empty override",
            "services:\n  a: {image: x, ports: [\"80\", \"80\"]}\n",
            "",
            "services:\n  a: {image: x, ports: [\"80\", \"80\"]}\n",
        ),
        (
            "empty base",
            "",
            "services:\n  a: {image: x}\n",
            "services:\n  a: {image: x}\n",
        ),
    ]);
}

#[test]
fn merge_service_for_extends() {
    let base = parse(
        "image: x\ncommand: [a]\nports: [\"8080:80\"]\nenvironment: [A=1]\nvolumes: [\"data:/d\"]\n",
        0,
    );
    let over = parse(
        "command: [b]\nports: [\"8080:80\", \"9090:90\"]\nenvironment: {B: 2}\nvolumes: [\"extra:/d\"]\nimage: !reset\n",
        1,
    );
    let got = merge_service(base, over);
    assert_untagged(&got);
    let want = parse(
        "command: [b]\nports: [\"8080:80\", \"9090:90\"]\nenvironment: {A: \"1\", B: 2}\nvolumes: [\"extra:/d\"]\n",
        2,
    );
    assert_eq!(got.to_json(), want.to_json());
}

#[test]
fn key_order_is_base_then_new() {
    let got = merged(
        "services:\n  a:\n    image: x\n    environment: [B=1, A=2]\n    tty: true\n",
        "services:\n  a:\n    init: true\n    environment: {C: 3, B: 4}\n    image: y\n",
    );
    let a = got.get("services").unwrap().get("a").unwrap();
    let keys: Vec<_> = a.as_map().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["image", "environment", "tty", "init"]);
    let env: Vec<_> = a
        .get("environment")
        .unwrap()
        .as_map()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(env, ["B", "A", "C"]);
}

#[test]
fn spans_follow_the_value() {
    let got = merged(
        "services:\n  a:\n    image: x\n    tty: true\n    ports: [\"80\"]\n    build: ./b\n",
        "services:\n  a:\n    image: y\n    ports: [\"81\"]\n    init: true\n    build: {target: t}\n",
    );
    let a = got.get("services").unwrap().get("a").unwrap();
    let src = |n: &Node| n.span.source;
    assert_eq!(
        src(got.get("services").unwrap()),
        SourceId(0),
        "merged map keeps base span"
    );
    assert_eq!(src(a), SourceId(0));
    let entries = a.as_map().unwrap();
    assert_eq!(src(&entries["image"].value), SourceId(1), "replaced scalar");
    assert_eq!(entries["image"].key_span.source, SourceId(1));
    assert_eq!(src(&entries["tty"].value), SourceId(0), "kept scalar");
    assert_eq!(src(&entries["init"].value), SourceId(1), "added value");
    let ports = entries["ports"].value.as_seq().unwrap();
    assert_eq!(src(&entries["ports"].value), SourceId(0));
    assert_eq!(src(&ports[0]), SourceId(0));
    assert_eq!(src(&ports[1]), SourceId(1));
    let build = &entries["build"].value;
    assert_eq!(src(build.get("context").unwrap()), SourceId(0));
    assert_eq!(src(build.get("target").unwrap()), SourceId(1));
    let image = &entries["image"].value;
    assert_eq!((image.span.line, image.span.col), (3, 12));
}

#[test]
fn strip_tags_removes_reset_and_clears_tags() {
    let node = parse(
        "services:\n  a:\n    image: !override x\n    ports: !reset [\"80\"]\n    dns: [!reset a, b]\n",
        0,
    );
    let got = strip_tags(node);
    assert_untagged(&got);
    let want = parse("services:\n  a:\n    image: x\n    dns: [b]\n", 1);
    assert_eq!(got.to_json(), want.to_json());
}

// ---- property tests ----

const KEYS: &[&str] = &[
    "services",
    "a",
    "b",
    "image",
    "command",
    "entrypoint",
    "healthcheck",
    "test",
    "ports",
    "volumes",
    "secrets",
    "configs",
    "environment",
    "labels",
    "build",
    "args",
    "depends_on",
    "networks",
    "aliases",
    "logging",
    "driver",
    "options",
    "ulimits",
    "nofile",
    "dns",
    "env_file",
    "path",
    "extra_hosts",
    "deploy",
    "target",
    "source",
    "published",
    "host_ip",
    "protocol",
    "subnet",
    "ipam",
    "config",
    "x-a",
    "include",
    "condition",
    "soft",
    "hard",
];

const STRINGS: &[&str] = &[
    "",
    "x",
    "8080:80",
    "127.0.0.1:80:80/udp",
    "[::1]:1:2",
    "3000-3005",
    "A=1",
    "A",
    "h:1.1.1.1",
    "/data",
    "v:/data:ro",
    "C:\\d:/d",
    ":",
    "::",
    "a:b:c:d",
    "/",
    "=",
];

fn tag() -> impl Strategy<Value = Option<Tag>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(Tag::Reset)),
        1 => Just(Some(Tag::Override)),
    ]
}

fn leaf() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Null),
        any::<bool>().prop_map(Kind::Bool),
        (-3i64..100000).prop_map(Kind::Int),
        Just(Kind::Float(1.5)),
        proptest::sample::select(STRINGS).prop_map(|s| Kind::Str(s.to_string())),
    ]
}

fn tree() -> impl Strategy<Value = Node> {
    let leaf = (leaf(), tag()).prop_map(|(k, t)| Node {
        kind: k,
        span: Span::NONE,
        tag: t,
    });
    leaf.prop_recursive(6, 64, 5, |inner| {
        prop_oneof![
            (proptest::collection::vec(inner.clone(), 0..5), tag()).prop_map(|(items, t)| Node {
                kind: Kind::Seq(items),
                span: Span::NONE,
                tag: t,
            }),
            (
                proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6),
                tag()
            )
                .prop_map(|(entries, t)| {
                    let map: Map = entries
                        .into_iter()
                        .map(|(k, v)| {
                            (
                                k.to_string(),
                                Entry {
                                    key_span: Span::NONE,
                                    value: v,
                                },
                            )
                        })
                        .collect();
                    Node {
                        kind: Kind::Map(map),
                        span: Span::NONE,
                        tag: t,
                    }
                }),
        ]
    })
}

/// A top-level file whose services have arbitrary attribute values, so the special paths are hit.
fn file() -> impl Strategy<Value = Node> {
    let service = proptest::collection::vec((proptest::sample::select(KEYS), tree()), 0..8);
    proptest::collection::vec((proptest::sample::select(&["a", "b"][..]), service), 0..3).prop_map(
        |services| {
            let mut svcs = Map::new();
            for (name, attrs) in services {
                let map: Map = attrs
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            Entry {
                                key_span: Span::NONE,
                                value: v,
                            },
                        )
                    })
                    .collect();
                svcs.insert(
                    name.to_string(),
                    Entry {
                        key_span: Span::NONE,
                        value: Node::map(map, Span::NONE),
                    },
                );
            }
            let mut root = Map::new();
            root.insert(
                "services".into(),
                Entry {
                    key_span: Span::NONE,
                    value: Node::map(svcs, Span::NONE),
                },
            );
            Node::map(root, Span::NONE)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn merge_never_panics_and_clears_tags(base in tree(), over in tree()) {
        let got = merge_files(base.clone(), over.clone());
        assert_untagged(&got);
        let got = merge_service(base, over);
        assert_untagged(&got);
    }

    #[test]
    fn merge_of_service_files_never_panics(base in file(), over in file()) {
        let got = merge_files(base, over);
        assert_untagged(&got);
    }

    #[test]
    fn empty_override_is_strip_tags(base in file()) {
        let empty = Node::map(Map::new(), Span::NONE);
        let got = merge_files(base.clone(), empty);
        prop_assert_eq!(got, strip_tags(base));
    }
}
