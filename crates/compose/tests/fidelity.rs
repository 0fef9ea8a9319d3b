//! Compose fidelity (issue #14 items 6, 8 and 9): what berth's loader makes of a project must
//! match what Compose's reference loader (compose-go) makes of it, and what Compose rejects must
//! be rejected with a located message, never an internal error.

mod common;

use common::{load_dir, project};
use serde_json::json;

fn load_ok(text: &str, env: &[(&str, &str)]) -> berth_compose::Loaded {
    let (_t, dir) = project("app", &[("compose.yaml", text)]);
    match load_dir(&dir, env, |_| {}) {
        Ok(l) => l,
        Err(e) => panic!("{text}\n=> {e}"),
    }
}

/// Loads `text`, expects it to fail, and returns every problem as `line: message`.
fn load_err(text: &str, env: &[(&str, &str)]) -> Vec<(u32, String)> {
    let (_t, dir) = project("app", &[("compose.yaml", text)]);
    let err = match load_dir(&dir, env, |_| {}) {
        Ok(l) => panic!("{text}\n=> loaded, expected an error:\n{}", l.canonical),
        Err(e) => e,
    };
    err.problems
        .iter()
        .map(|p| {
            let line = p.location.as_ref().map(|l| l.line).unwrap_or(0);
            (line, p.message.clone())
        })
        .collect()
}

/// Asserts the load fails with exactly one problem, on `line`, containing `needle`, and that the
/// message is not an internal error.
#[track_caller]
fn one_error(text: &str, env: &[(&str, &str)], line: u32, needle: &str) {
    let problems = load_err(text, env);
    assert_eq!(problems.len(), 1, "{text}\n=> {problems:?}");
    let (l, msg) = &problems[0];
    assert!(msg.contains(needle), "{text}\n=> {msg:?} lacks {needle:?}");
    assert_eq!(*l, line, "{text}\n=> {msg:?}");
    assert!(!msg.contains("internal error"), "{msg}");
    assert!(!msg.ends_with('.'), "{msg}");
}

fn service(ports: &str) -> String {
    format!("services:\n  web:\n    image: nginx\n    ports:\n      - \"{ports}\"\n")
}

/// issue #14 item 6: short port syntax is read as Docker reads it (`[[IP:]PUBLISHED:]TARGET
/// [/PROTOCOL]`, the IP an address, IPv6 in brackets or bare, ranges of equal size, the protocol
/// only on the container port), and everything else is an error at the port's line.
#[test]
fn short_port_syntax_follows_docker_and_rejects_the_rest() {
    let bad: &[(&str, &str)] = &[
        ("8080:80:90", "invalid host IP \"8080\""),
        ("localhost:8080:80", "invalid host IP \"localhost\""),
        ("1:2:3:4", "invalid host IP \"1:2\""),
        ("[::1:8080:80", "invalid host IP \"[::1\""),
        ("[::1]x:8080:80", "invalid host IP"),
        ("8080/udp:80", "invalid port \"8080/udp\""),
        ("8080:80/xyz", "unknown protocol \"xyz\""),
        ("80/udp/tcp", "unknown protocol \"udp/tcp\""),
        ("/udp", "no container port"),
        ("8080: 80", "invalid port \" 80\""),
        ("8000-8010:80-81", "different sizes"),
        ("8080:80-81", "different sizes"),
        ("9-8", "runs backwards"),
        ("1-2-3", "invalid port \"2-3\""),
        ("80800:80", "invalid port \"80800\""),
        ("8080:", "no container port"),
        ("0", "container port 0"),
    ];
    for (spec, needle) in bad {
        one_error(&service(spec), &[], 5, needle);
    }

    let good: &[(&str, serde_json::Value)] = &[
        (
            "[::1]:8080:80/UDP",
            json!([{"mode": "ingress", "host_ip": "::1", "target": 80, "published": "8080", "protocol": "udp"}]),
        ),
        (
            "::1:8080:80",
            json!([{"mode": "ingress", "host_ip": "::1", "target": 80, "published": "8080", "protocol": "tcp"}]),
        ),
        (
            "[::]::80",
            json!([{"mode": "ingress", "host_ip": "::", "target": 80, "protocol": "tcp"}]),
        ),
        (
            "127.0.0.1:8000-8001:80-81/tcp",
            json!([
                {"mode": "ingress", "host_ip": "127.0.0.1", "target": 80, "published": "8000", "protocol": "tcp"},
                {"mode": "ingress", "host_ip": "127.0.0.1", "target": 81, "published": "8001", "protocol": "tcp"}
            ]),
        ),
        (
            "8000-8010:80",
            json!([{"mode": "ingress", "target": 80, "published": "8000-8010", "protocol": "tcp"}]),
        ),
        (
            "80/",
            json!([{"mode": "ingress", "target": 80, "protocol": "tcp"}]),
        ),
    ];
    for (spec, want) in good {
        let l = load_ok(&service(spec), &[]);
        assert_eq!(l.canonical["services"]["web"]["ports"], *want, "{spec}");
    }
}

/// issue #14 item 6: the long syntax's `host_ip` must be an address too (the engine refuses
/// anything else at container creation, long after the plan was shown).
#[test]
fn long_port_syntax_host_ip_must_be_an_address() {
    one_error(
        "services:\n  web:\n    image: nginx\n    ports:\n      - target: 80\n        host_ip: my-host\n",
        &[],
        6,
        "invalid host IP \"my-host\"",
    );
    let l = load_ok(
        "services:\n  web:\n    image: nginx\n    ports:\n      - target: 80\n        host_ip: \"::1\"\n        published: \"8080\"\n",
        &[],
    );
    assert_eq!(
        l.canonical["services"]["web"]["ports"][0]["host_ip"],
        json!("::1")
    );
}

/// issue #14 item 8: an out-of-range `x-berth.proxy.port` says so, and only that.
#[test]
fn x_berth_proxy_port_out_of_range_says_so() {
    for port in ["99999", "0", "-1", "\"70000\""] {
        let text = format!(
            "services:\n  web:\n    image: x\n    x-berth:\n      proxy:\n        host: a.example.com\n        port: {port}\n"
        );
        let problems = load_err(&text, &[]);
        assert_eq!(problems.len(), 1, "{port}: {problems:?}");
        let (line, msg) = &problems[0];
        assert_eq!(*line, 7, "{port}: {msg}");
        assert!(
            msg.contains("out of range") && msg.contains("1-65535"),
            "{port}: {msg}"
        );
        assert!(!msg.contains("needs a `host`"), "{port}: {msg}");
    }
    let problems = load_err(
        "services:\n  web:\n    image: x\n    x-berth:\n      proxy:\n        host: a.example.com\n        port: http\n",
        &[],
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].1.contains("port number"), "{problems:?}");
}

/// issue #14 item 9: interpolated values are converted to the schema's types, every typed field
/// alike; they used to stay strings, and for fields berth's model types (healthcheck.disable,
/// max_failure_ratio, a long-syntax volume's read_only) the load ended in "internal error".
#[test]
fn interpolated_values_take_the_schema_types() {
    let text = r#"
services:
  web:
    image: nginx
    read_only: ${YES}
    init: ${ON}
    privileged: ${FALSE}
    cpus: ${HALF}
    cpu_count: ${TWO}
    oom_score_adj: ${TWO}
    healthcheck:
      disable: ${TRUE}
      retries: ${TWO}
    deploy:
      replicas: ${TWO}
      update_config:
        parallelism: ${TWO}
        max_failure_ratio: ${HALF}
      resources:
        limits:
          cpus: ${HALF}
    ports:
      - target: ${EIGHTY}
        published: "8080"
    volumes:
      - type: bind
        source: /srv
        target: /srv
        read_only: ${TRUE}
    ulimits:
      nofile: ${EIGHTY}
    depends_on:
      db:
        condition: service_started
        required: ${FALSE}
  db:
    image: postgres
    environment:
      FLAG: ${TRUE}
networks:
  n:
    internal: ${TRUE}
    external: ${FALSE}
"#;
    let env = [
        ("YES", "yes"),
        ("ON", "ON"),
        ("FALSE", "false"),
        ("TRUE", "true"),
        ("HALF", "0.5"),
        ("TWO", "2"),
        ("EIGHTY", "80"),
    ];
    let l = load_ok(text, &env);
    let web = &l.canonical["services"]["web"];
    assert_eq!(web["read_only"], json!(true));
    assert_eq!(web["init"], json!(true));
    assert_eq!(web["privileged"], json!(false));
    assert_eq!(web["cpus"], json!(0.5));
    assert_eq!(web["cpu_count"], json!(2));
    assert_eq!(web["oom_score_adj"], json!(2));
    assert_eq!(web["healthcheck"]["disable"], json!(true));
    assert_eq!(web["healthcheck"]["retries"], json!(2));
    assert_eq!(web["deploy"]["replicas"], json!(2));
    assert_eq!(web["deploy"]["update_config"]["parallelism"], json!(2));
    assert_eq!(
        web["deploy"]["update_config"]["max_failure_ratio"],
        json!(0.5)
    );
    assert_eq!(web["deploy"]["resources"]["limits"]["cpus"], json!(0.5));
    assert_eq!(web["ports"][0]["target"], json!(80));
    assert_eq!(web["volumes"][0]["read_only"], json!(true));
    assert_eq!(web["ulimits"]["nofile"], json!(80));
    assert_eq!(web["depends_on"]["db"]["required"], json!(false));
    // Environment values stay strings: the schema gives them no type.
    assert_eq!(
        l.canonical["services"]["db"]["environment"]["FLAG"],
        json!("true")
    );
    assert_eq!(l.canonical["networks"]["n"]["internal"], json!(true));

    let svc = &l.project.services["web"];
    assert!(svc.healthcheck.as_ref().unwrap().disable);
    assert!(svc.volumes[0].read_only);
    let deploy = svc.deploy.as_ref().unwrap();
    assert_eq!(
        deploy.update_config.as_ref().unwrap().max_failure_ratio,
        Some(0.5)
    );
    assert_eq!(deploy.replicas, Some(2));
}

/// issue #14 item 9: a value that does not convert is an error at its line that names the
/// field, never "internal error".
#[test]
fn interpolated_values_that_do_not_convert_are_located_errors() {
    let cases: &[(&str, u32, &str)] = &[
        (
            "services:\n  web:\n    image: x\n    healthcheck:\n      disable: ${V}\n",
            5,
            "invalid boolean `maybe`",
        ),
        (
            "services:\n  web:\n    image: x\n    read_only: ${V}\n",
            4,
            "invalid boolean `maybe`",
        ),
        (
            "services:\n  web:\n    image: x\n    deploy:\n      update_config:\n        max_failure_ratio: ${V}\n",
            6,
            "invalid number `maybe`",
        ),
        (
            "services:\n  web:\n    image: x\n    volumes:\n      - type: volume\n        source: d\n        target: /d\n        read_only: ${V}\nvolumes:\n  d: {}\n",
            8,
            "invalid boolean `maybe`",
        ),
        (
            "services:\n  web:\n    image: x\n    deploy:\n      replicas: ${V}\n",
            5,
            "invalid integer `maybe`",
        ),
        (
            "services:\n  web:\n    image: x\n    oom_score_adj: ${V}\n",
            4,
            "invalid integer `maybe`",
        ),
    ];
    for (text, line, needle) in cases {
        one_error(text, &[("V", "maybe")], *line, needle);
    }
    // Values berth's model cannot hold are refused by the schema, not by the model.
    let cases: &[(&str, u32, &str)] = &[
        (
            "services:\n  web:\n    image: x\n    deploy:\n      replicas: -1\n",
            5,
            "use at least 0",
        ),
        (
            "services:\n  web:\n    image: x\n    healthcheck:\n      retries: 2.5\n",
            5,
            "must be an integer",
        ),
        (
            "services:\n  web:\n    image: x\n    deploy:\n      update_config:\n        parallelism: \"-2\"\n",
            6,
            "use at least 0",
        ),
    ];
    for (text, line, needle) in cases {
        one_error(text, &[], *line, needle);
    }
}

/// issue #14 item 9: `COMPOSE_PROJECT_NAME` is set for interpolation to the project's name,
/// whichever way the name was chosen.
#[test]
fn compose_project_name_is_available_to_interpolation() {
    let text = "services:\n  web:\n    image: x\n    container_name: ${COMPOSE_PROJECT_NAME}-web\n    environment: [COMPOSE_PROJECT_NAME]\n";
    let (_t, dir) = project("app", &[("compose.yaml", text)]);
    let by_flag = load_dir(&dir, &[], |o| o.project_name = Some("shop".into())).unwrap();
    assert_eq!(
        by_flag.canonical["services"]["web"]["container_name"],
        json!("shop-web")
    );
    assert_eq!(
        by_flag.canonical["services"]["web"]["environment"]["COMPOSE_PROJECT_NAME"],
        json!("shop")
    );
    let by_dir = load_dir(&dir, &[], |_| {}).unwrap();
    assert_eq!(
        by_dir.canonical["services"]["web"]["container_name"],
        json!("app-web")
    );
    let named = format!("name: ${{N:-named}}\n{text}");
    let by_name = load_ok(&named, &[]);
    assert_eq!(by_name.project.name, "named");
    assert_eq!(
        by_name.canonical["services"]["web"]["container_name"],
        json!("named-web")
    );
    assert!(by_name.warnings.is_empty(), "{:?}", by_name.warnings);
}

/// issue #14 item 9: `label_file` is read (as a `.env`-style file), files in order, then
/// `labels:` over them; a missing label file is an error at its line.
#[test]
fn label_files_are_read() {
    let (_t, dir) = project(
        "app",
        &[
            (
                "compose.yaml",
                "services:\n  web:\n    image: x\n    label_file: [./a.labels, ./b.labels]\n    labels:\n      c: from-yaml\n",
            ),
            ("a.labels", "a=1\nb=from-a\nc=from-a\n"),
            ("b.labels", "# comment\nb=${a}-b\n"),
        ],
    );
    let l = load_dir(&dir, &[], |_| {}).unwrap();
    let web = &l.canonical["services"]["web"];
    assert_eq!(
        web["labels"],
        json!({"a": "1", "b": "1-b", "c": "from-yaml"})
    );
    assert!(web.get("label_file").is_none(), "{web}");
    assert_eq!(l.project.services["web"].labels["b"], "1-b");

    one_error(
        "services:\n  web:\n    image: x\n    label_file: ./missing.labels\n",
        &[],
        4,
        "missing.labels",
    );
}

/// issue #14 item 9: a file mode is octal as Compose reads it: `0440` and `0o440` (YAML octal)
/// and the string `"440"` are all 0o440; Compose prints it as `"0440"`.
#[test]
fn file_modes_are_octal() {
    let text = "services:\n  web:\n    image: x\n    secrets:\n      - source: a\n        mode: 0440\n      - source: b\n        mode: 0o440\n      - source: c\n        mode: \"440\"\n      - source: d\n        mode: 288\n    configs:\n      - source: e\n        mode: 0755\nsecrets:\n  a: {file: ./a}\n  b: {file: ./a}\n  c: {file: ./a}\n  d: {file: ./a}\nconfigs:\n  e: {file: ./a}\n";
    let l = load_ok(text, &[]);
    let web = &l.canonical["services"]["web"];
    for i in 0..4 {
        assert_eq!(
            web["secrets"][i]["mode"],
            json!("0440"),
            "secret {i}: {web}"
        );
    }
    assert_eq!(web["configs"][0]["mode"], json!("0755"));
    one_error(
        "services:\n  web:\n    image: x\n    secrets:\n      - source: a\n        mode: \"rw\"\nsecrets:\n  a: {file: ./a}\n",
        &[],
        6,
        "invalid file mode",
    );
}

/// issue #14 item 9: a list-form `environment` entry whose name ends in a space (`DEBUG = true`)
/// is an error, as in Compose; it used to become the variable `"DEBUG "`.
#[test]
fn environment_names_with_trailing_space_are_errors() {
    one_error(
        "services:\n  web:\n    image: x\n    environment:\n      - A=1\n      - DEBUG = true\n",
        &[],
        6,
        "`DEBUG ` ends in a space",
    );
    one_error(
        "services:\n  web:\n    image: x\n    build:\n      context: .\n      args:\n        - VERSION =1\n",
        &[],
        7,
        "`VERSION ` ends in a space",
    );
}

/// issue #14 item 9: `network_mode` and `networks` together are refused, as in Compose.
#[test]
fn network_mode_excludes_networks() {
    one_error(
        "services:\n  web:\n    image: x\n    network_mode: host\n    networks: [front]\nnetworks:\n  front: {}\n",
        &[],
        5,
        "`network_mode` and `networks`",
    );
}

/// issue #14 item 9: build contexts are absolute: a missing context is the project directory,
/// and local `additional_contexts` are resolved like `context`; remote ones are kept.
#[test]
fn build_contexts_are_absolute() {
    let text = "services:\n  web:\n    image: x\n    build:\n      dockerfile: web.Dockerfile\n      additional_contexts:\n        src: ./src\n        base: docker-image://alpine:3\n        git: https://github.com/a/b.git\n        other: service:api\n  api:\n    build:\n      context: ./api\n      additional_contexts: [\"lib=../lib\"]\n";
    let (_t, dir) = project("app", &[("compose.yaml", text)]);
    let l = load_dir(&dir, &[], |_| {}).unwrap();
    let d = dir.display().to_string();
    let web = &l.canonical["services"]["web"]["build"];
    assert_eq!(web["context"], json!(d));
    assert_eq!(
        web["additional_contexts"],
        json!({
            "base": "docker-image://alpine:3",
            "git": "https://github.com/a/b.git",
            "other": "service:api",
            "src": format!("{d}/src"),
        })
    );
    let api = &l.canonical["services"]["api"]["build"];
    let parent = dir.parent().unwrap().display().to_string();
    assert_eq!(
        api["additional_contexts"],
        json!({"lib": format!("{parent}/lib")})
    );
    assert_eq!(l.project.services["web"].build.as_ref().unwrap().context, d);
}

/// issue #14 item 9: a service secret without a target is mounted at `/run/secrets/NAME`, as in
/// Compose; configs keep no default target.
#[test]
fn secrets_get_their_default_target() {
    let text = "services:\n  web:\n    image: x\n    secrets:\n      - token\n      - source: other\n      - source: given\n        target: /etc/given\n    configs: [conf]\nsecrets:\n  token: {file: ./t}\n  other: {file: ./t}\n  given: {file: ./t}\nconfigs:\n  conf: {file: ./t}\n";
    let l = load_ok(text, &[]);
    let web = &l.canonical["services"]["web"];
    assert_eq!(
        web["secrets"],
        json!([
            {"source": "token", "target": "/run/secrets/token"},
            {"source": "other", "target": "/run/secrets/other"},
            {"source": "given", "target": "/etc/given"},
        ])
    );
    assert_eq!(web["configs"], json!([{"source": "conf"}]));
}
