//! Structural validation: invalid snippets with their exact errors, broad valid files, the
//! awesome-compose corpus and a never-panics property.

use berth_compose::node::{Entry, Kind, Map, Node, Tag};
use berth_compose::schema::{parse_duration, validate, SchemaError};
use berth_compose::source::{SourceId, Span};
use berth_compose::yaml;
use proptest::prelude::*;
use std::path::PathBuf;
use std::time::Duration;

fn errors(text: &str) -> Vec<SchemaError> {
    let mut docs = yaml::parse(text, SourceId(0)).expect("test YAML parses");
    assert_eq!(docs.len(), 1, "one document expected");
    validate(&docs.remove(0))
}

fn render(errs: &[SchemaError]) -> String {
    errs.iter()
        .map(|e| {
            format!(
                "  {}:{} {} | {}",
                e.span.line, e.span.col, e.path, e.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts exactly one error, at `path`, on `line`, whose message contains `msg`.
#[track_caller]
fn one(text: &str, path: &str, msg: &str, line: u32) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got:\n{}", render(&errs));
    let e = &errs[0];
    assert_eq!(e.path, path, "path; got:\n{}", render(&errs));
    assert!(
        e.message.contains(msg),
        "message {:?} does not contain {:?}",
        e.message,
        msg
    );
    assert_eq!(e.span.line, line, "line; got:\n{}", render(&errs));
    assert!(
        !e.message.ends_with('.'),
        "no trailing period: {:?}",
        e.message
    );
}

#[track_caller]
fn valid(text: &str) {
    let errs = errors(text);
    assert!(
        errs.is_empty(),
        "expected no errors, got:\n{}",
        render(&errs)
    );
}

// ---------------------------------------------------------------------------------------------
// Unknown keys
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_service_key_suggests_closest() {
    one(
        "services:\n  web:\n    image: nginx\n    pots:\n      - 80\n",
        "services.web.pots",
        "unknown key `pots` in service `web`; did you mean `ports`?",
        4,
    );
}

#[test]
fn unknown_top_level_key() {
    one(
        "services: {}\nservice:\n  web: {}\n",
        "service",
        "unknown key `service` at the top level; did you mean `services`?",
        2,
    );
    one(
        "services: {}\nfoo: 1\n",
        "foo",
        "unknown key `foo` at the top level; expected one of `services`",
        2,
    );
}

#[test]
fn unknown_key_without_close_match_lists_keys() {
    one(
        "services:\n  web:\n    image: nginx\n    logging:\n      driver: json-file\n      level: debug\n",
        "services.web.logging.level",
        "unknown key `level` in `services.web.logging`; expected one of `driver`, `options`",
        6,
    );
}

#[test]
fn misplaced_key_points_to_its_home() {
    one(
        "services:\n  web:\n    image: nginx\n    replicas: 3\n",
        "services.web.replicas",
        "did you mean `deploy.replicas`?",
        4,
    );
}

#[test]
fn unknown_build_key() {
    one(
        "services:\n  web:\n    build:\n      context: .\n      dockerfle: Dockerfile\n",
        "services.web.build.dockerfle",
        "unknown key `dockerfle` in `services.web.build`; did you mean `dockerfile`?",
        5,
    );
}

#[test]
fn unknown_deploy_resources_key() {
    one(
        "services:\n  web:\n    image: nginx\n    deploy:\n      resources:\n        limit:\n          cpus: '0.5'\n",
        "services.web.deploy.resources.limit",
        "did you mean `limits`?",
        6,
    );
}

#[test]
fn unknown_healthcheck_key() {
    one(
        "services:\n  db:\n    image: postgres\n    healthcheck:\n      test: [CMD, pg_isready]\n      intervall: 5s\n",
        "services.db.healthcheck.intervall",
        "did you mean `interval`?",
        6,
    );
}

#[test]
fn unknown_port_long_form_key() {
    one(
        "services:\n  web:\n    image: nginx\n    ports:\n      - target: 80\n        publised: 8080\n",
        "services.web.ports[0].publised",
        "did you mean `published`?",
        6,
    );
}

#[test]
fn unknown_volume_long_form_keys() {
    one(
        "services:\n  web:\n    image: nginx\n    volumes:\n      - type: bind\n        source: ./a\n        target: /a\n        bind:\n          create_host_paths: true\n",
        "services.web.volumes[0].bind.create_host_paths",
        "did you mean `create_host_path`?",
        9,
    );
}

#[test]
fn unknown_depends_on_key() {
    one(
        "services:\n  web:\n    image: nginx\n    depends_on:\n      db:\n        conditon: service_healthy\n  db:\n    image: postgres\n",
        "services.web.depends_on.db.conditon",
        "did you mean `condition`?",
        6,
    );
}

#[test]
fn unknown_top_level_network_key() {
    one(
        "services: {}\nnetworks:\n  front:\n    drivr: bridge\n",
        "networks.front.drivr",
        "unknown key `drivr` in network `front`; did you mean `driver`?",
        4,
    );
}

#[test]
fn unknown_service_network_key() {
    one(
        "services:\n  web:\n    image: nginx\n    networks:\n      front:\n        alias: [www]\nnetworks:\n  front: {}\n",
        "services.web.networks.front.alias",
        "did you mean `aliases`?",
        6,
    );
}

#[test]
fn unknown_volume_secret_config_keys() {
    one(
        "volumes:\n  data:\n    externl: true\n",
        "volumes.data.externl",
        "unknown key `externl` in volume `data`; did you mean `external`?",
        3,
    );
    one(
        "secrets:\n  token:\n    fille: ./token.txt\n",
        "secrets.token.fille",
        "unknown key `fille` in secret `token`; did you mean `file`?",
        3,
    );
    one(
        "configs:\n  conf:\n    contents: hello\n",
        "configs.conf.contents",
        "unknown key `contents` in config `conf`; did you mean `content`?",
        3,
    );
}

#[test]
fn unknown_watch_key() {
    one(
        "services:\n  web:\n    build: .\n    develop:\n      watch:\n        - path: ./src\n          action: sync\n          targt: /app\n",
        "services.web.develop.watch[0].targt",
        "did you mean `target`?",
        8,
    );
}

#[test]
fn unknown_key_in_blkio_ulimits_credential_spec_include() {
    one(
        "services:\n  web:\n    image: nginx\n    blkio_config:\n      wieght: 300\n",
        "services.web.blkio_config.wieght",
        "did you mean `weight`?",
        5,
    );
    one(
        "services:\n  web:\n    image: nginx\n    ulimits:\n      nofile:\n        soft: 1\n        hard: 2\n        max: 3\n",
        "services.web.ulimits.nofile.max",
        "unknown key `max` in `services.web.ulimits.nofile`",
        8,
    );
    one(
        "services:\n  web:\n    image: nginx\n    credential_spec:\n      files: spec.json\n",
        "services.web.credential_spec.files",
        "did you mean `file`?",
        5,
    );
    one(
        "include:\n  - path: a.yaml\n    project_dir: ./a\nservices: {}\n",
        "include[0].project_dir",
        "unknown key `project_dir` in `include[0]`",
        3,
    );
}

#[test]
fn x_keys_not_allowed_where_the_schema_is_closed_without_extensions() {
    one(
        "services:\n  web:\n    image: nginx\n    blkio_config:\n      x-note: hi\n",
        "services.web.blkio_config.x-note",
        "unknown key `x-note`",
        5,
    );
}

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

#[test]
fn ports_must_be_a_sequence() {
    one(
        "services:\n  web:\n    image: nginx\n    ports:\n      http: 80\n",
        "services.web.ports",
        "`services.web.ports` must be a sequence, not a mapping",
        5,
    );
}

#[test]
fn services_must_be_a_mapping() {
    one(
        "services:\n  - web\n",
        "services",
        "`services` must be a mapping, not a sequence",
        2,
    );
    one(
        "services:\n  web:\n",
        "services.web",
        "`services.web` must be a mapping, not null",
        2,
    );
}

#[test]
fn root_must_be_a_mapping() {
    one("- a\n- b\n", "", "must be a mapping at the top level", 1);
}

#[test]
fn string_fields_reject_numbers() {
    one(
        "services:\n  web:\n    image: nginx\n    user: 1000\n",
        "services.web.user",
        "`services.web.user` must be a string, not an integer",
        4,
    );
}

#[test]
fn command_type_error_lists_alternatives() {
    one(
        "services:\n  web:\n    image: nginx\n    command:\n      a: b\n",
        "services.web.command",
        "must be null, a string or a sequence, not a mapping",
        5,
    );
}

#[test]
fn environment_values_must_be_scalars() {
    one(
        "services:\n  web:\n    image: nginx\n    environment:\n      A: 1\n      B:\n        - x\n",
        "services.web.environment.B",
        "must be a string, number or boolean or null, not a sequence",
        7,
    );
}

#[test]
fn integers_as_strings_must_be_integers() {
    one(
        "services:\n  web:\n    image: nginx\n    deploy:\n      replicas: two\n",
        "services.web.deploy.replicas",
        "invalid integer `two`",
        5,
    );
    one(
        "services:\n  web:\n    image: nginx\n    deploy:\n      replicas: 1.5\n",
        "services.web.deploy.replicas",
        "must be an integer, not a number",
        5,
    );
}

#[test]
fn numbers_as_strings_must_be_numbers() {
    one(
        "services:\n  web:\n    image: nginx\n    cpus: half\n",
        "services.web.cpus",
        "invalid number `half`",
        4,
    );
}

#[test]
fn booleans_as_strings_must_be_booleans() {
    one(
        "services:\n  web:\n    image: nginx\n    tty: maybe\n",
        "services.web.tty",
        "invalid boolean `maybe`; use true or false",
        4,
    );
}

#[test]
fn byte_sizes() {
    one(
        "services:\n  web:\n    image: nginx\n    shm_size: lots\n",
        "services.web.shm_size",
        "invalid byte size `lots`",
        4,
    );
}

#[test]
fn integer_ranges() {
    one(
        "services:\n  web:\n    image: nginx\n    oom_score_adj: 5000\n",
        "services.web.oom_score_adj",
        "use a value from -1000 to 1000",
        4,
    );
    one(
        "services:\n  web:\n    image: nginx\n    cpu_percent: 150\n",
        "services.web.cpu_percent",
        "use a value from 0 to 100",
        4,
    );
}

#[test]
fn secrets_entries_cannot_be_null() {
    one(
        "secrets:\n  token:\n",
        "secrets.token",
        "must be a mapping, not null",
        2,
    );
}

// ---------------------------------------------------------------------------------------------
// Enums and checked strings
// ---------------------------------------------------------------------------------------------

#[test]
fn restart_policy() {
    one(
        "services:\n  web:\n    image: nginx\n    restart: sometimes\n",
        "services.web.restart",
        "invalid restart policy `sometimes`; use no, always, on-failure",
        4,
    );
    one(
        "services:\n  web:\n    image: nginx\n    restart: on-failure:x\n",
        "services.web.restart",
        "invalid restart policy `on-failure:x`",
        4,
    );
}

#[test]
fn depends_on_condition() {
    one(
        "services:\n  web:\n    image: nginx\n    depends_on:\n      db:\n        condition: service_healty\n  db:\n    image: postgres\n",
        "services.web.depends_on.db.condition",
        "invalid value `service_healty`; expected one of `service_started`, `service_healthy`, `service_completed_successfully` (did you mean `service_healthy`?)",
        6,
    );
}

#[test]
fn deploy_enums() {
    one(
        "services:\n  web:\n    image: nginx\n    deploy:\n      mode: replicate\n",
        "services.web.deploy.mode",
        "(did you mean `replicated`?)",
        5,
    );
    one(
        "services:\n  web:\n    image: nginx\n    deploy:\n      update_config:\n        order: first\n",
        "services.web.deploy.update_config.order",
        "expected one of `start-first`, `stop-first`",
        6,
    );
    one(
        "services:\n  web:\n    image: nginx\n    deploy:\n      rollback_config:\n        failure_action: stop\n",
        "services.web.deploy.rollback_config.failure_action",
        "expected one of `continue`, `rollback`, `pause`",
        6,
    );
    one(
        "services:\n  web:\n    image: nginx\n    deploy:\n      restart_policy:\n        condition: always\n",
        "services.web.deploy.restart_policy.condition",
        "expected one of `none`, `on-failure`, `any`",
        6,
    );
}

#[test]
fn pull_policy() {
    one(
        "services:\n  web:\n    image: nginx\n    pull_policy: sometimes\n",
        "services.web.pull_policy",
        "invalid pull policy `sometimes`",
        4,
    );
}

#[test]
fn volume_type_and_required_keys() {
    one(
        "services:\n  web:\n    image: nginx\n    volumes:\n      - type: mount\n        source: a\n        target: /a\n",
        "services.web.volumes[0].type",
        "expected one of `bind`, `volume`, `tmpfs`, `cluster`, `npipe`, `image`",
        5,
    );
    one(
        "services:\n  web:\n    image: nginx\n    volumes:\n      - source: a\n        target: /a\n",
        "services.web.volumes[0]",
        "`services.web.volumes[0]` is missing the required key `type`",
        5,
    );
}

#[test]
fn port_protocol_and_mode() {
    one(
        "services:\n  web:\n    image: nginx\n    ports:\n      - target: 80\n        protocol: http\n",
        "services.web.ports[0].protocol",
        "invalid port protocol `http`; use tcp, udp or sctp",
        6,
    );
    one(
        "services:\n  web:\n    image: nginx\n    ports:\n      - target: 80\n        mode: bridge\n",
        "services.web.ports[0].mode",
        "expected one of `host`, `ingress`",
        6,
    );
    one(
        "services:\n  web:\n    image: nginx\n    ports:\n      - target: eighty\n",
        "services.web.ports[0].target",
        "invalid integer `eighty`",
        5,
    );
}

#[test]
fn watch_action() {
    one(
        "services:\n  web:\n    build: .\n    develop:\n      watch:\n        - path: ./src\n          action: reload\n",
        "services.web.develop.watch[0].action",
        "expected one of `rebuild`, `sync`, `restart`, `sync+restart`, `sync+exec`",
        7,
    );
}

#[test]
fn durations() {
    one(
        "services:\n  web:\n    image: nginx\n    healthcheck:\n      interval: 10x\n",
        "services.web.healthcheck.interval",
        "`services.web.healthcheck.interval`: invalid duration `10x`; use a Go duration like 10s, 1m30s or 500ms",
        5,
    );
    one(
        "services:\n  web:\n    image: nginx\n    stop_grace_period: 10\n",
        "services.web.stop_grace_period",
        "invalid duration `10`",
        4,
    );
    one(
        "services:\n  web:\n    image: nginx\n    deploy:\n      update_config:\n        delay: 5 s\n",
        "services.web.deploy.update_config.delay",
        "invalid duration `5 s`",
        6,
    );
}

#[test]
fn invalid_names() {
    one(
        "services:\n  my web:\n    image: nginx\n",
        "services.my web",
        "invalid service name `my web`",
        2,
    );
    one(
        "volumes:\n  \"data/x\": {}\n",
        "volumes.data/x",
        "invalid volume name `data/x`",
        2,
    );
}

#[test]
fn duplicate_items() {
    one(
        "services:\n  web:\n    image: nginx\n    cap_add:\n      - NET_ADMIN\n      - SYS_TIME\n      - NET_ADMIN\n",
        "services.web.cap_add[2]",
        "duplicate item `NET_ADMIN` (same as item [0])",
        7,
    );
}

#[test]
fn missing_required_keys() {
    one(
        "services:\n  web:\n    image: nginx\n    develop:\n      watch:\n        - path: ./src\n",
        "services.web.develop.watch[0]",
        "missing the required key `action`",
        6,
    );
    one(
        "services:\n  web:\n    extends:\n      file: base.yaml\n",
        "services.web.extends",
        "missing the required key `service`",
        4,
    );
}

#[test]
fn collects_all_errors_in_file_order() {
    let errs = errors(
        "services:\n  web:\n    image: nginx\n    pots: [80]\n    restart: sometimes\n    healthcheck:\n      interval: soon\n  db:\n    imag: postgres\n    tty: perhaps\nvolumes:\n  data:\n    drivr: local\n",
    );
    let got: Vec<(&str, u32)> = errs
        .iter()
        .map(|e| (e.path.as_str(), e.span.line))
        .collect();
    assert_eq!(
        got,
        vec![
            ("services.web.pots", 4),
            ("services.web.restart", 5),
            ("services.web.healthcheck.interval", 7),
            ("services.db.imag", 9),
            ("services.db.tty", 10),
            ("volumes.data.drivr", 13),
        ],
        "{}",
        render(&errs)
    );
}

#[test]
fn error_spans_point_at_key_or_value() {
    let errs =
        errors("services:\n  web:\n    image: nginx\n    pots: [80]\n    restart: sometimes\n");
    assert_eq!(errs.len(), 2);
    // Unknown key: the key itself.
    assert_eq!((errs[0].span.line, errs[0].span.col), (4, 5));
    // Bad value: the value.
    assert_eq!((errs[1].span.line, errs[1].span.col), (5, 14));
}

// ---------------------------------------------------------------------------------------------
// Valid files
// ---------------------------------------------------------------------------------------------

const BIG_VALID: &str = r#"
name: shop
version: "3.9"
x-common: &common
  restart: unless-stopped
  logging:
    driver: json-file
    options:
      max-size: 10m
      max-file: 3
      compress: null
x-berth:
  anything: [goes, here]
include:
  - other/compose.yaml
  - path: [a.yaml, b.yaml]
    env_file: a.env
    project_directory: ./a
services:
  web:
    <<: *common
    x-berth:
      proxy: { host: example.com }
    x-note: extension
    image: example/web:1.2
    build:
      context: ./web
      dockerfile: Dockerfile
      dockerfile_inline: |
        FROM alpine
      args:
        GIT_COMMIT: abc
        EMPTY:
      ssh: [default]
      labels: [com.example.a=b]
      cache_from: [type=local,src=/tmp]
      cache_to: [type=local,dest=/tmp]
      no_cache: false
      additional_contexts:
        base: docker-image://alpine
      network: host
      provenance: mode=max
      sbom: true
      pull: "true"
      target: prod
      shm_size: 2gb
      extra_hosts: ["somehost=162.242.195.82"]
      isolation: default
      privileged: false
      secrets: [token, {source: token2, target: t, mode: 0440}]
      tags: [example/web:latest]
      ulimits:
        nofile: {soft: 1000, hard: 2000}
      platforms: [linux/amd64]
      entitlements: [network.host]
      x-build-ext: 1
    command: ["npm", "start"]
    entrypoint: /entry.sh
    annotations:
      com.example.foo: bar
    attach: false
    blkio_config:
      weight: 300
      weight_device:
        - path: /dev/sda
          weight: 400
      device_read_bps:
        - path: /dev/sdb
          rate: '12mb'
      device_write_iops:
        - path: /dev/sdb
          rate: 120
    cap_add: [ALL]
    cap_drop: [NET_ADMIN, SYS_ADMIN]
    cgroup: host
    cgroup_parent: m-executor-abcd
    configs:
      - my_config
      - source: other_config
        target: /etc/other
        uid: "103"
        gid: "103"
        mode: 0440
    container_name: my-web
    cpu_count: 2
    cpu_percent: "50"
    cpu_shares: 512
    cpu_period: "100000"
    cpu_quota: 50000
    cpu_rt_runtime: 400000
    cpu_rt_period: 1400000
    cpus: "0.5"
    cpuset: 0-3
    credential_spec:
      config: my_credential_spec
    depends_on:
      db:
        condition: service_healthy
        restart: true
        required: "false"
      cache:
        condition: service_started
    deploy:
      mode: replicated
      endpoint_mode: vip
      replicas: "2"
      labels: {com.example.description: web}
      resources:
        limits:
          cpus: '0.50'
          memory: 50M
          pids: 100
        reservations:
          cpus: 0.25
          memory: 20M
          devices:
            - capabilities: [gpu]
              driver: nvidia
              count: all
            - capabilities: [gpu]
              device_ids: ['0', '3']
          generic_resources:
            - discrete_resource_spec:
                kind: gpu
                value: 2
      restart_policy:
        condition: on-failure
        delay: 5s
        max_attempts: 3
        window: 120s
      update_config:
        parallelism: 2
        delay: 10s
        failure_action: rollback
        monitor: 1m30s
        max_failure_ratio: "0.3"
        order: start-first
      rollback_config:
        parallelism: 0
        order: stop-first
        failure_action: pause
      placement:
        constraints: [node.role == manager]
        preferences:
          - spread: node.labels.zone
        max_replicas_per_node: 1
      x-deploy-ext: {}
    develop:
      watch:
        - path: ./src
          action: sync
          target: /app/src
          ignore: [node_modules/]
          initial_sync: true
        - path: package.json
          action: rebuild
        - path: ./conf
          action: sync+exec
          target: /etc/conf
          exec:
            command: ["kill", "-HUP", "1"]
    device_cgroup_rules: ['c 1:3 mr', 'a 7:* rmw']
    devices:
      - "/dev/ttyUSB0:/dev/ttyUSB0"
      - source: /dev/sda
        target: /dev/xvda
        permissions: rwm
    dns: 8.8.8.8
    dns_opt: [use-vc, no-tld-query]
    dns_search: [dc1.example.com, dc2.example.com]
    domainname: example.com
    env_file:
      - .env
      - path: ./override.env
        required: false
        format: raw
    environment:
      RACK_ENV: development
      SHOW: "true"
      COUNT: 3
      RATIO: 0.5
      FLAG: true
      UNSET:
    expose: ["3000", 8000]
    external_links: [redis_1]
    extra_hosts:
      somehost: 162.242.195.82
      otherhost: ["50.31.209.229", "::1"]
    gpus: all
    group_add: [mail, 42]
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost"]
      interval: 1m30s
      timeout: 10s
      retries: 3
      start_period: 40s
      start_interval: 5s
      disable: false
    hostname: web
    init: true
    ipc: shareable
    isolation: default
    labels:
      - com.example.description=Accounting webapp
    label_file: ./app.labels
    links: [db:database]
    mac_address: 02:42:ac:11:65:43
    mem_limit: 1g
    mem_reservation: 512m
    mem_swappiness: 60
    memswap_limit: -1
    models: [llm]
    networks:
      front:
        aliases: [www]
        ipv4_address: 172.16.238.10
        ipv6_address: 2001:3984:3989::10
        link_local_ips: [57.123.22.11]
        mac_address: 02:42:ac:11:65:43
        driver_opts:
          com.docker.network.bridge.host_binding_ipv4: "127.0.0.1"
          mtu: 1500
        priority: 1000
        gw_priority: 1
        interface_name: eth1
      back: null
      other:
    oom_kill_disable: "false"
    oom_score_adj: -500
    pid: host
    pids_limit: 10
    platform: linux/arm64
    ports:
      - "3000"
      - "8000:8000"
      - "127.0.0.1:8001:8001/udp"
      - 9090
      - target: 80
        host_ip: 127.0.0.1
        published: "8080-8081"
        protocol: TCP
        mode: host
        name: web
        app_protocol: http
      - target: "443"
        published: 8443
    post_start:
      - command: /hook.sh
        user: root
        privileged: true
        environment: [A=b]
    pre_stop:
      - command: ["./cleanup.sh"]
        working_dir: /app
    privileged: false
    profiles: [frontend, debug]
    pull_policy: every_12h
    read_only: "yes"
    runtime: runc
    security_opt: [label=user:USER]
    shm_size: "64m"
    stdin_open: true
    stop_grace_period: 1m30s
    stop_signal: SIGUSR1
    storage_opt:
      size: 20G
    sysctls:
      net.core.somaxconn: 1024
    tmpfs: [/run, /tmp]
    tty: true
    ulimits:
      nproc: 65535
      nofile:
        soft: "20000"
        hard: 40000
    use_api_socket: true
    user: postgresql
    userns_mode: host
    uts: host
    volumes:
      - data:/var/lib/data
      - ./cache:/cache:ro
      - type: volume
        source: data
        target: /data
        read_only: true
        volume:
          nocopy: true
          subpath: sub
          labels: {a: b}
      - type: bind
        source: ./static
        target: /opt/app/static
        consistency: cached
        bind:
          propagation: rprivate
          create_host_path: true
          recursive: readonly
          selinux: z
      - type: tmpfs
        target: /tmp2
        tmpfs:
          size: 10000
          mode: 1777
      - type: image
        source: alpine
        target: /img
        image:
          subpath: etc
      - type: npipe
        source: \\.\pipe\docker_engine
        target: \\.\pipe\docker_engine
    volumes_from: [other, "container:c:ro"]
    working_dir: /code
    secrets:
      - token
      - source: server-certificate
        target: server.cert
        uid: "103"
        gid: "103"
        mode: 0o440
  db:
    image: postgres
    restart: "no"
    command:
    entrypoint: []
    deploy:
    develop:
    depends_on: [cache]
    extends:
      service: base
      file: base.yaml
    networks: [back]
    healthcheck:
      test: pg_isready
      disable: true
    gpus:
      - driver: nvidia
        count: 2
        capabilities: [gpu]
    provider:
      type: awesomecloud
      options:
        type: mysql
        size: 256
        tags: [a, 1, true]
  cache:
    image: redis
    restart: on-failure:5
    extends: base
    env_file: .env
    environment: ["A=1", "B"]
    command: redis-server --appendonly yes
    pull_policy: missing
    models:
      llm:
        endpoint_var: AI_URL
        model_var: AI_MODEL
  "w.1_x-y":
    image: alpine
    restart: always
    pid:
    dns: [1.1.1.1]
    volumes:
      - type: cluster
        source: c
        target: /c
networks:
  front:
    driver: bridge
    driver_opts:
      com.docker.network.bridge.name: br0
    attachable: true
    enable_ipv6: "true"
    enable_ipv4: true
    internal: false
    labels: {a: b}
    ipam:
      driver: default
      config:
        - subnet: 172.16.238.0/24
          ip_range: 172.16.238.0/25
          gateway: 172.16.238.1
          aux_addresses:
            host1: 172.16.238.5
      options:
        foo: bar
    x-net: 1
  back: {}
  default:
  outside:
    external: true
    name: actual-name
  legacy:
    external:
      name: old
volumes:
  data:
  db-data: null
  cache:
    driver: local
    driver_opts:
      type: nfs
      o: "addr=10.40.0.199,nolock,soft,rw"
      device: ":/docker/example"
    labels: [a=b]
    name: my-cache
  ext:
    external: "true"
    x-vol: 1
secrets:
  token:
    file: ./token.txt
  env-secret:
    environment: OAUTH_TOKEN
  server-certificate:
    external: true
    name: cert
  driven:
    driver: vault
    driver_opts: {path: /a, ttl: 60}
    template_driver: golang
    labels: {a: b}
configs:
  my_config:
    file: ./my_config.txt
  other_config:
    content: |
      debug=${DEBUG}
    template_driver: golang
  env_config:
    environment: CONF
  ext_config:
    external: true
    name: "${HTTP_CONFIG_KEY}"
models:
  llm:
    model: ai/smollm2
    context_size: 1024
    runtime_flags: ["--a"]
  other:
    model: ai/x
    name: x
"#;

#[test]
fn big_valid_file() {
    valid(BIG_VALID);
}

#[test]
fn small_valid_snippets() {
    valid("services:\n  web:\n    image: nginx\n");
    valid("services: {}\n");
    valid("name: x\nservices:\n  a:\n    build: .\n");
    valid("services:\n  web:\n    image: nginx\n    networks:\n      default: null\n");
    valid("services:\n  web:\n    image: nginx\n    healthcheck:\n      interval: 2.5s\n      timeout: 500ms\n      start_period: 1us\n      start_interval: 1h\n");
    valid("services:\n  web:\n    image: nginx\n    restart: on-failure:3\n");
    valid("services:\n  web:\n    image: nginx\n    x-anything: {deep: [1, 2]}\n");
    valid("x-anything:\n  - 1\nservices:\n  web:\n    image: nginx\n");
    valid("volumes:\n  data:\nnetworks:\n  default:\n");
    // Booleans written as strings, integers written as strings (what interpolation yields).
    valid("services:\n  web:\n    image: nginx\n    privileged: \"true\"\n    init: \"FALSE\"\n    scale: \"3\"\n    deploy:\n      replicas: \"2\"\n      resources:\n        limits:\n          cpus: \"0.5\"\n");
    valid("services:\n  web:\n    image: nginx\n    ports: [\"80\", 81]\n");
    valid("services:\n  web:\n    image: nginx\n    depends_on:\n      db:\n        required: false\n        restart: \"true\"\n");
}

#[test]
fn reset_tagged_values_are_not_checked() {
    valid(
        "services:\n  web:\n    image: nginx\n    ports: !reset {}\n    restart: !reset whatever\n",
    );
}

#[test]
fn parse_duration_is_go_compatible() {
    assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("2.5s"), Some(Duration::from_millis(2500)));
    assert_eq!(parse_duration("1us"), Some(Duration::from_micros(1)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_duration("0"), Some(Duration::ZERO));
    assert_eq!(parse_duration("10x"), None);
    assert_eq!(parse_duration("10"), None);
    assert_eq!(parse_duration(""), None);
}

// ---------------------------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------------------------

fn corpus_dir() -> PathBuf {
    match std::env::var_os("BERTH_CORPUS_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.is_dir(),
                "BERTH_CORPUS_DIR is set to {} but that directory does not exist",
                dir.display()
            );
            dir
        }
        None => {
            let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
            let dir = workspace.join("../shared/corpus");
            assert!(
                dir.is_dir(),
                "corpus not found at {}; set BERTH_CORPUS_DIR",
                dir.display()
            );
            dir
        }
    }
}

#[test]
fn awesome_compose_corpus_validates_cleanly() {
    let root = corpus_dir().join("awesome-compose");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&root).expect("read awesome-compose dir") {
        let dir = entry.expect("dir entry").path();
        for name in ["compose.yaml", "compose.yml"] {
            let f = dir.join(name);
            if f.is_file() {
                files.push(f);
            }
        }
    }
    files.sort();
    assert!(
        files.len() >= 39,
        "expected at least 39 corpus files in {}, found {}",
        root.display(),
        files.len()
    );
    let mut failures = String::new();
    for (i, f) in files.iter().enumerate() {
        let text = std::fs::read_to_string(f).expect("read corpus file");
        let docs = yaml::parse(&text, SourceId(i as u32))
            .unwrap_or_else(|e| panic!("{}: {}", f.display(), e.message));
        for doc in &docs {
            for e in validate(doc) {
                failures.push_str(&format!(
                    "{}:{}: {} | {}\n",
                    f.display(),
                    e.span.line,
                    e.path,
                    e.message
                ));
            }
        }
    }
    assert!(failures.is_empty(), "corpus errors:\n{failures}");
}

// ---------------------------------------------------------------------------------------------
// Never panics
// ---------------------------------------------------------------------------------------------

const KEYS: &[&str] = &[
    "services",
    "web",
    "networks",
    "volumes",
    "secrets",
    "configs",
    "include",
    "models",
    "build",
    "deploy",
    "resources",
    "limits",
    "cpus",
    "ports",
    "target",
    "published",
    "healthcheck",
    "interval",
    "depends_on",
    "condition",
    "restart",
    "type",
    "bind",
    "develop",
    "watch",
    "action",
    "ulimits",
    "nofile",
    "soft",
    "external",
    "environment",
    "x-ext",
    "x-berth",
    "command",
    "pull_policy",
    "gpus",
    "count",
    "extends",
    "path",
    "my key",
    "",
    "é",
];

fn leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        Just(Kind::Null),
        any::<bool>().prop_map(Kind::Bool),
        any::<i64>().prop_map(Kind::Int),
        any::<f64>().prop_map(Kind::Float),
        prop_oneof![
            Just("10s".to_string()),
            Just("on-failure:".to_string()),
            Just("-1".to_string()),
            Just("1.5.5".to_string()),
            Just("µs".to_string()),
            ".{0,8}".prop_map(|s| s),
        ]
        .prop_map(Kind::Str),
    ]
    .prop_map(|k| Node::new(k, Span::NONE))
}

fn tree() -> impl Strategy<Value = Node> {
    leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| Node::seq(v, Span::NONE)),
            prop::collection::vec((prop::sample::select(KEYS), inner, any::<bool>()), 0..6)
                .prop_map(|entries| {
                    let mut m = Map::new();
                    for (k, mut v, reset) in entries {
                        if reset && k.len() % 3 == 0 {
                            v.tag = Some(Tag::Reset);
                        }
                        m.insert(
                            k.to_string(),
                            Entry {
                                key_span: Span::NONE,
                                value: v,
                            },
                        );
                    }
                    Node::map(m, Span::NONE)
                }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn validate_never_panics(root in tree()) {
        let _ = validate(&root);
    }

    #[test]
    fn validate_never_panics_under_a_service(svc in tree()) {
        let mut services = Map::new();
        services.insert("web".into(), Entry { key_span: Span::NONE, value: svc });
        let mut top = Map::new();
        top.insert("services".into(), Entry { key_span: Span::NONE, value: Node::map(services, Span::NONE) });
        let _ = validate(&Node::map(top, Span::NONE));
    }

    #[test]
    fn parse_duration_never_panics(s in ".{0,16}") {
        let _ = parse_duration(&s);
    }

    #[test]
    fn parse_duration_accepts_generated_durations(h in 0u64..1000, m in 0u64..60, ms in 0u64..1000) {
        let s = format!("{h}h{m}m{ms}ms");
        prop_assert_eq!(parse_duration(&s), Some(Duration::from_millis(h * 3_600_000 + m * 60_000 + ms)));
    }
}
