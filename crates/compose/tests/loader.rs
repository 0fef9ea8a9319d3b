//! Table-driven tests of the loader stages that span files: discovery, project names, the
//! environment, `extends`, `include`, profiles and `--dev`.

mod common;

use common::{load_dir, project, yaml};
use serde_json::json;

fn svc(l: &berth_compose::Loaded, name: &str) -> serde_json::Value {
    l.canonical["services"][name].clone()
}

#[test]
fn discovery_prefers_compose_yaml_and_adds_its_override() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["compose.yaml", "compose.override.yaml"],
            "compose.override.yaml",
        ),
        (
            &["compose.yml", "compose.override.yml"],
            "compose.override.yml",
        ),
        (
            &["docker-compose.yml", "docker-compose.override.yml"],
            "docker-compose.override.yml",
        ),
        (
            &["docker-compose.yaml", "docker-compose.override.yaml"],
            "docker-compose.override.yaml",
        ),
    ];
    for (files, over) in cases {
        let contents: Vec<(&str, &str)> = files
            .iter()
            .map(|f| {
                (
                    *f,
                    if f.contains("override") {
                        "services:\n  web:\n    environment: [FROM=override]\n"
                    } else {
                        "services:\n  web:\n    image: nginx\n    environment: [FROM=base]\n"
                    },
                )
            })
            .collect();
        let (_t, dir) = project("app", &contents);
        let l = load_dir(&dir, &[], |_| {}).unwrap();
        assert_eq!(l.files.len(), 2, "{files:?}");
        assert!(l.files[1].ends_with(over));
        assert_eq!(
            svc(&l, "web")["environment"]["FROM"],
            "override",
            "{files:?}"
        );
    }
}

#[test]
fn discovery_walks_up_to_the_parent_directory() {
    let (_t, dir) = project(
        "app",
        &[
            ("compose.yaml", "services:\n  web:\n    image: nginx\n"),
            ("sub/deeper/.keep", ""),
        ],
    );
    let l = load_dir(&dir.join("sub/deeper"), &[], |_| {}).unwrap();
    assert_eq!(l.project.name, "app");
    assert_eq!(l.project_dir, dir);
}

#[test]
fn compose_file_variable_and_separator() {
    let (_t, dir) = project(
        "app",
        &[
            ("a.yml", "services:\n  web:\n    image: a\n"),
            ("b.yml", "services:\n  web:\n    image: b\n"),
        ],
    );
    let l = load_dir(&dir, &[("COMPOSE_FILE", "a.yml:b.yml")], |_| {}).unwrap();
    assert_eq!(svc(&l, "web")["image"], "b");
    let l = load_dir(
        &dir,
        &[
            ("COMPOSE_FILE", "b.yml;a.yml"),
            ("COMPOSE_PATH_SEPARATOR", ";"),
        ],
        |_| {},
    )
    .unwrap();
    assert_eq!(svc(&l, "web")["image"], "a");
    // -f wins over COMPOSE_FILE.
    let l = load_dir(&dir, &[("COMPOSE_FILE", "b.yml")], |o| {
        o.files = vec!["a.yml".into()]
    })
    .unwrap();
    assert_eq!(svc(&l, "web")["image"], "a");
}

#[test]
fn project_name_precedence() {
    let base = "services:\n  web:\n    image: nginx\n";
    let named = "name: from-file\nservices:\n  web:\n    image: nginx\n";
    let (_t, dir) = project("My_App.Dir", &[("compose.yaml", base)]);
    assert_eq!(
        load_dir(&dir, &[], |_| {}).unwrap().project.name,
        "my_appdir"
    );
    let (_t2, dir2) = project("x", &[("compose.yaml", named)]);
    assert_eq!(
        load_dir(&dir2, &[], |_| {}).unwrap().project.name,
        "from-file"
    );
    assert_eq!(
        load_dir(&dir2, &[("COMPOSE_PROJECT_NAME", "from-env")], |_| {})
            .unwrap()
            .project
            .name,
        "from-env"
    );
    assert_eq!(
        load_dir(&dir2, &[("COMPOSE_PROJECT_NAME", "from-env")], |o| o
            .project_name =
            Some("from-flag".into()))
        .unwrap()
        .project
        .name,
        "from-flag"
    );
    let err = load_dir(&dir2, &[], |o| o.project_name = Some("Bad Name".into())).unwrap_err();
    assert!(err.to_string().contains("invalid project name"), "{err}");
    // Resources are named after the project.
    let l = load_dir(&dir2, &[], |_| {}).unwrap();
    assert_eq!(
        l.canonical["networks"]["default"]["name"],
        "from-file_default"
    );
}

#[test]
fn environment_precedence_process_over_dotenv_and_env_file_flag() {
    let (_t, dir) = project(
        "app",
        &[
            ("compose.yaml", "services:\n  web:\n    image: \"nginx:${TAG:-latest}\"\n    environment:\n      A: ${A}\n"),
            (".env", "TAG=from-dotenv\nA=dotenv-a\n"),
            ("other.env", "TAG=from-other\n"),
        ],
    );
    let l = load_dir(&dir, &[], |_| {}).unwrap();
    assert_eq!(svc(&l, "web")["image"], "nginx:from-dotenv");
    assert_eq!(svc(&l, "web")["environment"]["A"], "dotenv-a");
    let l = load_dir(&dir, &[("TAG", "from-process")], |_| {}).unwrap();
    assert_eq!(svc(&l, "web")["image"], "nginx:from-process");
    // --env-file replaces .env: A is now unset (blank, with a warning).
    let l = load_dir(&dir, &[], |o| o.env_files = vec!["other.env".into()]).unwrap();
    assert_eq!(svc(&l, "web")["image"], "nginx:from-other");
    assert_eq!(svc(&l, "web")["environment"]["A"], "");
    assert!(
        l.warnings.iter().any(|w| w.contains("\"A\"")),
        "{:?}",
        l.warnings
    );
    // A missing --env-file is an error, not silently ignored.
    assert!(load_dir(&dir, &[], |o| o.env_files = vec!["nope.env".into()]).is_err());
}

#[test]
fn env_file_values_resolve_into_environment() {
    let (_t, dir) = project(
        "app",
        &[
            (
                "compose.yaml",
                "services:\n  web:\n    image: nginx\n    env_file: [common.env, {path: optional.env, required: false}]\n    environment:\n      OVERRIDDEN: from-compose\n      FROM_SHELL:\n",
            ),
            ("common.env", "# comment\nexport SHARED=yes\nOVERRIDDEN=from-file\nQUOTED=\"a b\"\nFROM_SHELL\n"),
        ],
    );
    let l = load_dir(&dir, &[("FROM_SHELL", "shell")], |_| {}).unwrap();
    let env = &svc(&l, "web")["environment"];
    assert_eq!(
        env,
        &json!({"FROM_SHELL": "shell", "OVERRIDDEN": "from-compose", "QUOTED": "a b", "SHARED": "yes"})
    );
    assert!(svc(&l, "web").get("env_file").is_none());
}

#[test]
fn extends_same_file_other_file_and_chains() {
    let (_t, dir) = project(
        "app",
        &[
            (
                "compose.yaml",
                r#"
services:
  base:
    image: app
    environment: [A=1, B=1]
    command: run base
    ports: ["8080:80"]
  web:
    extends: base
    environment: [B=2]
    command: run web
  worker:
    extends: { service: web }
    environment: { C: "3" }
  remote:
    extends: { file: common/services.yaml, service: shared }
"#,
            ),
            (
                "common/services.yaml",
                "services:\n  shared:\n    image: shared\n    build: ./ctx\n    volumes: [./data:/data]\n",
            ),
        ],
    );
    let l = load_dir(&dir, &[], |_| {}).unwrap();
    let web = svc(&l, "web");
    assert_eq!(web["image"], "app");
    assert_eq!(web["environment"], json!({"A": "1", "B": "2"}));
    assert_eq!(web["command"], json!(["run", "web"]));
    assert_eq!(web["ports"][0]["published"], "8080");
    assert!(web.get("extends").is_none());
    let worker = svc(&l, "worker");
    assert_eq!(worker["environment"], json!({"A": "1", "B": "2", "C": "3"}));
    // Paths of an extended file resolve against that file's directory.
    let remote = svc(&l, "remote");
    let common = dir.join("common");
    assert_eq!(
        remote["build"]["context"],
        common.join("ctx").display().to_string()
    );
    assert_eq!(
        remote["volumes"][0]["source"],
        common.join("data").display().to_string()
    );
}

#[test]
fn extends_errors_are_located() {
    let cases = [
        (
            "services:\n  a:\n    image: x\n    extends: b\n  b:\n    image: y\n    extends: a\n",
            "circular extends",
        ),
        (
            "services:\n  a:\n    image: x\n    extends: nope\n",
            "not defined",
        ),
        (
            "services:\n  a:\n    image: x\n    extends: {service: s, file: missing.yaml}\n",
            "missing.yaml",
        ),
    ];
    for (text, needle) in cases {
        let (_t, dir) = project("app", &[("compose.yaml", text)]);
        let err = load_dir(&dir, &[], |_| {}).unwrap_err();
        assert!(err.to_string().contains(needle), "{text}\n=> {err}");
    }
}

#[test]
fn include_adds_resources_with_their_own_directory_and_env() {
    let (_t, dir) = project(
        "app",
        &[
            ("compose.yaml", "include:\n  - ./db/compose.yaml\nservices:\n  web:\n    image: web\n    depends_on: [db]\n"),
            ("db/compose.yaml", "services:\n  db:\n    image: \"postgres:${PG_TAG}\"\n    volumes: [./init:/docker-entrypoint-initdb.d, data:/var/lib/postgresql/data]\nvolumes:\n  data: {}\n"),
            ("db/.env", "PG_TAG=15\n"),
        ],
    );
    let l = load_dir(&dir, &[], |_| {}).unwrap();
    let db = svc(&l, "db");
    assert_eq!(db["image"], "postgres:15");
    assert_eq!(
        db["volumes"][0]["source"],
        dir.join("db/init").display().to_string()
    );
    assert_eq!(l.canonical["volumes"]["data"]["name"], "app_data");
    assert_eq!(
        svc(&l, "web")["depends_on"]["db"]["condition"],
        "service_started"
    );
}

#[test]
fn include_conflicts_are_errors() {
    let (_t, dir) = project(
        "app",
        &[
            (
                "compose.yaml",
                "include: [other.yaml]\nservices:\n  db:\n    image: mine\n",
            ),
            ("other.yaml", "services:\n  db:\n    image: theirs\n"),
        ],
    );
    let err = load_dir(&dir, &[], |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("also by an included project"),
        "{err}"
    );
}

#[test]
fn profiles_select_services() {
    let text = r#"
services:
  web: { image: web }
  debug: { image: debug, profiles: [dev] }
  admin: { image: admin, profiles: [ops, dev] }
  seed: { image: seed, profiles: [tools] }
"#;
    let (_t, dir) = project("app", &[("compose.yaml", text)]);
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (&[], &[], &["web"]),
        (&["dev"], &[], &["admin", "debug", "web"]),
        (&["ops"], &[], &["admin", "web"]),
        (
            &[],
            &[("COMPOSE_PROFILES", "tools,ops")],
            &["admin", "seed", "web"],
        ),
        (&["*"], &[], &["admin", "debug", "seed", "web"]),
    ];
    for (profiles, env, expect) in cases {
        let l = load_dir(&dir, env, |o| {
            o.profiles = profiles.iter().map(|s| s.to_string()).collect()
        })
        .unwrap();
        let names: Vec<&String> = l.project.services.keys().collect();
        assert_eq!(names, *expect, "profiles {profiles:?} env {env:?}");
        assert_eq!(l.all_profiles, ["dev", "ops", "tools"]);
    }
}

#[test]
fn depends_on_a_disabled_service_is_an_error_unless_optional() {
    let text = "services:\n  web:\n    image: web\n    depends_on:\n      db:\n        condition: service_healthy\n  db:\n    image: db\n    profiles: [data]\n";
    let (_t, dir) = project("app", &[("compose.yaml", text)]);
    let err = load_dir(&dir, &[], |_| {}).unwrap_err();
    let p = &err.problems[0];
    assert!(p.message.contains("disabled"), "{err}");
    assert_eq!(p.location.as_ref().unwrap().line, 5);
    assert!(p.help.as_deref().unwrap().contains("--profile data"));
    let optional = text.replace(
        "service_healthy",
        "service_healthy\n        required: false",
    );
    let (_t, dir) = project("app", &[("compose.yaml", &optional)]);
    let l = load_dir(&dir, &[], |_| {}).unwrap();
    assert!(svc(&l, "web")
        .get("depends_on")
        .unwrap()
        .get("db")
        .is_none());
}

#[test]
fn dev_mode_adds_the_dev_file_and_profile() {
    for dev_name in ["compose.dev.yaml", "docker-compose.dev.yml"] {
        let (_t, dir) = project(
            "app",
            &[
                ("compose.yaml", "services:\n  web:\n    image: web\n    command: gunicorn app\n  tools:\n    image: tools\n    profiles: [dev]\n"),
                (dev_name, "services:\n  web:\n    command: python manage.py runserver 0.0.0.0:8000\n    volumes: [./src:/app]\n    ports: [\"8000:8000\", \"5678:5678\"]\n"),
            ],
        );
        let prod = load_dir(&dir, &[], |_| {}).unwrap();
        assert_eq!(prod.files.len(), 1);
        assert_eq!(svc(&prod, "web")["command"], json!(["gunicorn", "app"]));
        assert!(prod.project.services.get("tools").is_none());
        let dev = load_dir(&dir, &[], |o| o.dev = true).unwrap();
        assert!(dev.files[1].ends_with(dev_name));
        let web = svc(&dev, "web");
        assert_eq!(web["command"][1], "manage.py");
        assert_eq!(
            web["volumes"][0]["source"],
            dir.join("src").display().to_string()
        );
        assert_eq!(web["ports"].as_array().unwrap().len(), 2);
        assert!(dev.project.services.get("tools").is_some());
    }
}

#[test]
fn normalization_snapshot_of_every_short_syntax() {
    let text = r#"
name: shapes
x-common: &common
  restart: unless-stopped
services:
  web:
    <<: *common
    build: ./app
    command: sh -c 'echo "hi"; exec app'
    entrypoint: ["/tini", "--"]
    environment: [A=1, "B=two words", C]
    ports: ["80", "8080:80", "127.0.0.1:9000-9001:9000-9001/udp", {target: 443, published: 8443, host_ip: 0.0.0.0}]
    volumes: ["./src:/app:ro", "data:/var/lib/data", "/tmp/cache", {type: tmpfs, target: /run}]
    depends_on: [db]
    networks: [front]
    healthcheck:
      test: curl -f http://localhost/up
      interval: 90s
      timeout: 500ms
      retries: "3"
    labels: [com.example.a=1]
    extra_hosts: ["db.local:10.0.0.2"]
    stop_grace_period: 1m
    deploy:
      replicas: "2"
      update_config: {parallelism: 1, delay: 10s, order: start-first}
    x-berth:
      proxy: {host: shop.example.com, port: 8000}
      strategy: canary
      canary: {steps: [10, 50], interval: 30s, max_error_rate: 0.01}
  db:
    image: postgres:15
    secrets: [db_password]
    x-berth: {backup: postgres}
networks:
  front: {}
volumes:
  data:
  legacy:
    external: true
secrets:
  db_password:
    file: ./secrets/db.txt
x-berth:
  proxy: {listen: "127.0.0.1:8088"}
"#;
    let (_t, dir) = project("app", &[("compose.yaml", text)]);
    let l = load_dir(&dir, &[("C", "from-env")], |_| {}).unwrap();
    insta::assert_snapshot!("every_short_syntax", yaml(&l));
    let web = &l.project.services["web"];
    let b = web.berth.as_ref().unwrap();
    assert_eq!(b.proxy.as_ref().unwrap().port, 8000);
    assert_eq!(b.canary.as_ref().unwrap().steps, vec![10, 50]);
    assert_eq!(web.deploy.as_ref().unwrap().replicas, Some(2));
    assert_eq!(
        web.healthcheck
            .as_ref()
            .unwrap()
            .interval
            .unwrap()
            .0
            .as_secs(),
        90
    );
    assert_eq!(
        l.project.berth.proxy_listen.as_deref(),
        Some("127.0.0.1:8088")
    );
    assert_eq!(web.ports.len(), 5);
}

#[test]
fn update_config_order_and_failure_action_are_typed() {
    use berth_compose::model::{FailureAction, Order};
    let text = "services:\n  web:\n    image: nginx\n    deploy:\n      update_config: {order: \"${ORDER}\", failure_action: pause}\n      rollback_config: {order: stop-first, failure_action: continue}\n  worker:\n    image: nginx\n    deploy:\n      update_config: {parallelism: 2}\n";
    let (_t, dir) = project("app", &[("compose.yaml", text)]);
    let l = load_dir(&dir, &[("ORDER", "start-first")], |_| {}).unwrap();
    let deploy = l.project.services["web"].deploy.as_ref().unwrap();
    let update = deploy.update_config.as_ref().unwrap();
    assert_eq!(update.order, Some(Order::StartFirst));
    assert_eq!(update.failure_action, Some(FailureAction::Pause));
    let rollback = deploy.rollback_config.as_ref().unwrap();
    assert_eq!(rollback.order, Some(Order::StopFirst));
    assert_eq!(rollback.failure_action, Some(FailureAction::Continue));
    let worker = l.project.services["worker"].deploy.as_ref().unwrap();
    let update = worker.update_config.as_ref().unwrap();
    assert_eq!((update.order, update.failure_action), (None, None));
    // `berth config` prints the spellings of the file, not the enum's names.
    assert_eq!(
        svc(&l, "web")["deploy"]["update_config"]["order"],
        json!("start-first")
    );
    assert_eq!(Order::StopFirst.as_str(), "stop-first");
    assert_eq!(FailureAction::Rollback.as_str(), "rollback");

    // A value interpolated into something else is refused by the loader, with its place.
    let err = load_dir(&dir, &[("ORDER", "first")], |_| {}).unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("expected one of `start-first`, `stop-first`"),
        "{text}"
    );
}

#[test]
fn x_berth_builder_is_buildkit_or_classic() {
    use berth_compose::berth_ext::BuilderKind;
    let text = "services:\n  web:\n    build: .\n    x-berth: {builder: classic}\n";
    let (_t, dir) = project("app", &[("compose.yaml", text)]);
    let l = load_dir(&dir, &[], |_| {}).unwrap();
    let b = l.project.services["web"].berth.as_ref().unwrap();
    assert_eq!(b.builder, Some(BuilderKind::Classic));

    let (_t, dir) = project(
        "app",
        &[("compose.yaml", &text.replace("classic", "kaniko"))],
    );
    let err = load_dir(&dir, &[], |_| {}).unwrap_err();
    let p = &err.problems[0];
    assert_eq!(p.message, "unknown builder `kaniko`");
    assert_eq!(p.location.as_ref().unwrap().line, 4);
    assert!(p.help.as_deref().unwrap().contains("buildkit"));
}
