//! Container operations on the real engine, checked through the docker CLI.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use berth_engine::{
    ContainerSpec, EngineError, ExecOptions, HealthOutcome, HealthSpec, MountSpec,
    NetworkAttachment, NetworkSpec, PortBinding, RestartPolicy,
};
use berth_test_support::{
    docker, http_get, inspect, unique_name, Container, Volume, TESTAPP_IMAGE,
};
use common::{engine, Network};
use futures_util::TryStreamExt;

fn testapp(name: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.to_string(),
        image: TESTAPP_IMAGE.to_string(),
        ..Default::default()
    }
}

fn fast_health(test: &[&str]) -> HealthSpec {
    HealthSpec {
        test: test.iter().map(|s| s.to_string()).collect(),
        interval: Some(Duration::from_secs(1)),
        timeout: Some(Duration::from_secs(2)),
        start_period: None,
        start_interval: None,
        retries: Some(1),
    }
}

#[tokio::test]
async fn a_full_spec_creates_a_working_container() {
    let engine = engine().await;
    let network = Network(unique_name("berth-net"));
    let second_network = Network(unique_name("berth-net2"));
    let volume = Volume::create("berth-vol");
    let bind_dir = tempfile::tempdir().unwrap();
    std::fs::write(bind_dir.path().join("hello.txt"), "hi").unwrap();
    let container = Container::adopt(unique_name("berth-full"));
    let marker = unique_name("marker");

    for name in [&network.0, &second_network.0] {
        engine
            .ensure_network(&NetworkSpec {
                name: name.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let spec = ContainerSpec {
        env: vec!["APP_VERSION=v-full".into()],
        labels: BTreeMap::from([
            ("berth.test".to_string(), marker.clone()),
            ("berth.role".to_string(), "web".to_string()),
        ]),
        stop_signal: Some("SIGINT".into()),
        stop_timeout: Some(Duration::from_secs(7)),
        healthcheck: Some(fast_health(&["CMD", "/testapp", "health"])),
        restart: RestartPolicy::OnFailure {
            max_retries: Some(2),
        },
        ports: vec![PortBinding {
            container_port: 8080,
            protocol: "tcp".into(),
            host_ip: Some("127.0.0.1".into()),
            host_port: None,
        }],
        mounts: vec![
            MountSpec::Volume {
                source: Some(volume.name.clone()),
                target: "/data".into(),
                read_only: false,
                nocopy: false,
                subpath: None,
            },
            MountSpec::Bind {
                source: bind_dir.path().display().to_string(),
                target: "/host".into(),
                read_only: true,
                create_host_path: false,
                propagation: None,
                selinux: None,
            },
            MountSpec::Tmpfs {
                target: "/scratch".into(),
                size_bytes: Some(1 << 20),
                mode: None,
            },
        ],
        networks: vec![
            NetworkAttachment {
                network: network.0.clone(),
                aliases: vec!["webalias".into()],
                ipv4_address: None,
            },
            NetworkAttachment {
                network: second_network.0.clone(),
                aliases: vec!["backalias".into()],
                ipv4_address: None,
            },
        ],
        ..testapp(&container.name)
    };
    let id = engine.create_container(&spec).await.unwrap();

    // Everything in the spec reached the container.
    let env = container.inspect("{{json .Config.Env}}");
    assert!(env.contains("APP_VERSION=v-full"), "{env}");
    assert_eq!(
        container.inspect("{{index .Config.Labels \"berth.test\"}}"),
        marker
    );
    assert_eq!(container.inspect("{{.Config.StopSignal}}"), "SIGINT");
    assert_eq!(container.inspect("{{.Config.StopTimeout}}"), "7");
    assert_eq!(container.inspect("{{.Config.Healthcheck.Interval}}"), "1s");
    assert_eq!(
        container.inspect(
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:2"
    );
    assert_eq!(
        container.inspect("{{(index (index .HostConfig.PortBindings \"8080/tcp\") 0).HostIp}}"),
        "127.0.0.1"
    );
    let mounts = container.inspect(
        "{{range .Mounts}}{{.Type}} {{.Name}}{{.Source}} {{.Destination}} {{.RW}};{{end}}",
    );
    assert!(
        mounts.contains(&format!("volume {}", volume.name)),
        "{mounts}"
    );
    assert!(mounts.contains("/host false"), "{mounts}");
    let tmpfs = container.inspect("{{range .HostConfig.Mounts}}{{.Type}} {{.Target}};{{end}}");
    assert!(tmpfs.contains("tmpfs /scratch"), "{tmpfs}");
    let aliases = container.inspect(&format!(
        "{{{{json (index .NetworkSettings.Networks \"{}\").Aliases}}}}",
        network.0
    ));
    assert!(aliases.contains("webalias"), "{aliases}");
    // The second network is connected before create_container returns.
    let aliases = container.inspect(&format!(
        "{{{{json (index .NetworkSettings.Networks \"{}\").Aliases}}}}",
        second_network.0
    ));
    assert!(aliases.contains("backalias"), "{aliases}");

    engine.start_container(&id).await.unwrap();
    assert_eq!(
        engine
            .wait_healthy(&id, Duration::from_secs(30))
            .await
            .unwrap(),
        HealthOutcome::Healthy
    );

    let response = http_get(container.addr(8080), "/").unwrap();
    assert_eq!(response.status, 200);
    assert!(response.body.contains("v-full"), "{response:?}");

    let listed = engine
        .list_containers(
            &[("berth.test", Some(&marker)), ("berth.role", None)],
            false,
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].name, container.name);
    assert_eq!(listed[0].state, "running");
    assert_eq!(listed[0].health.as_deref(), Some("healthy"));
    assert!(listed[0]
        .ports
        .iter()
        .any(|port| port.container_port == 8080
            && port.host_port == Some(container.addr(8080).port())));

    // The bind mount and the tmpfs are usable from inside.
    let mut out = Vec::new();
    let code = engine
        .exec(
            &id,
            &ExecOptions {
                cmd: vec!["/testapp".into(), "health".into()],
                ..Default::default()
            },
            None::<tokio::io::Empty>,
            &mut out,
            tokio::io::sink(),
        )
        .await
        .unwrap();
    assert_eq!(code, 0);
    let mut err = Vec::new();
    let code = engine
        .exec(
            &id,
            &ExecOptions {
                cmd: vec!["/does-not-exist".into()],
                ..Default::default()
            },
            None::<tokio::io::Empty>,
            tokio::io::sink(),
            &mut err,
        )
        .await
        .unwrap();
    assert_ne!(code, 0, "stderr: {}", String::from_utf8_lossy(&err));

    let logs: Vec<_> = engine
        .logs(&id, false, None, true)
        .try_collect()
        .await
        .unwrap();
    assert!(
        logs.iter().any(|line| line.text.starts_with("GET / 200")),
        "{logs:?}"
    );
    assert!(logs.iter().all(|line| line.timestamp.is_some()));

    engine
        .stop_container(&id, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let stopped = engine.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(stopped.state, "exited");
    assert!(stopped.exit_code.is_some());
    // Stopping again is fine.
    engine.stop_container(&id, None).await.unwrap();

    engine.remove_container(&id, false, true).await.unwrap();
    assert_eq!(engine.inspect_container(&id).await.unwrap(), None);
    engine.remove_container(&id, false, true).await.unwrap();
}

#[tokio::test]
async fn a_crashing_container_is_reported_as_exited_with_its_logs() {
    let engine = engine().await;
    let container = Container::adopt(unique_name("berth-crash"));
    let spec = ContainerSpec {
        env: vec!["CRASH=1".into()],
        ..testapp(&container.name)
    };
    let id = engine.create_container(&spec).await.unwrap();
    engine.start_container(&id).await.unwrap();
    assert_eq!(
        engine
            .wait_healthy(&id, Duration::from_secs(30))
            .await
            .unwrap(),
        HealthOutcome::Exited(1)
    );
    let lines = engine.last_log_lines(&id, 5).await.unwrap();
    assert!(
        lines.iter().any(|line| line.contains("CRASH=1 is set")),
        "{lines:?}"
    );
    assert_eq!(engine.wait_exit(&id, None).await.unwrap(), Some(1));
}

#[tokio::test]
async fn a_failing_healthcheck_is_unhealthy() {
    let engine = engine().await;
    let container = Container::adopt(unique_name("berth-unhealthy"));
    let spec = ContainerSpec {
        env: vec!["HEALTH=fail".into()],
        healthcheck: Some(fast_health(&["CMD", "/testapp", "health"])),
        ..testapp(&container.name)
    };
    let id = engine.create_container(&spec).await.unwrap();
    engine.start_container(&id).await.unwrap();
    // With a deadline shorter than the first check, the wait gives up while starting.
    assert_eq!(
        engine
            .wait_healthy(&id, Duration::from_millis(100))
            .await
            .unwrap(),
        HealthOutcome::TimedOut
    );
    assert_eq!(
        engine
            .wait_healthy(&id, Duration::from_secs(30))
            .await
            .unwrap(),
        HealthOutcome::Unhealthy
    );
    assert_eq!(
        engine
            .inspect_container(&id)
            .await
            .unwrap()
            .unwrap()
            .health
            .as_deref(),
        Some("unhealthy")
    );
}

#[tokio::test]
async fn a_container_without_a_healthcheck_is_running() {
    let engine = engine().await;
    let container = Container::adopt(unique_name("berth-nohealth"));
    let spec = ContainerSpec {
        healthcheck: Some(HealthSpec {
            test: vec!["NONE".into()],
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        }),
        ..testapp(&container.name)
    };
    let id = engine.create_container(&spec).await.unwrap();
    engine.start_container(&id).await.unwrap();
    assert_eq!(
        engine
            .wait_healthy(&id, Duration::from_secs(30))
            .await
            .unwrap(),
        HealthOutcome::Running
    );
    assert_eq!(
        engine
            .wait_exit(&id, Some(Duration::from_millis(300)))
            .await
            .unwrap(),
        None
    );
    engine
        .restart_container(&id, Some(Duration::from_secs(2)))
        .await
        .unwrap();
    assert_eq!(inspect(&container.name, "{{.State.Status}}"), "running");
}

#[tokio::test]
async fn a_missing_image_is_never_pulled() {
    let engine = engine().await;
    let container = Container::adopt(unique_name("berth-noimage"));
    let spec = ContainerSpec {
        image: "berth/does-not-exist:1".into(),
        ..testapp(&container.name)
    };
    let err = engine.create_container(&spec).await.unwrap_err();
    assert!(matches!(err, EngineError::ImageMissing { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("no registry is available; build it or add `build:`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_taken_host_port_is_named() {
    let engine = engine().await;
    let first = Container::adopt(unique_name("berth-port-a"));
    let second = Container::adopt(unique_name("berth-port-b"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = vec![PortBinding {
        container_port: 8080,
        protocol: "tcp".into(),
        host_ip: Some("127.0.0.1".into()),
        host_port: Some(port.to_string()),
    }];
    let a = engine
        .create_container(&ContainerSpec {
            ports: publish.clone(),
            ..testapp(&first.name)
        })
        .await
        .unwrap();
    engine.start_container(&a).await.unwrap();
    let b = engine
        .create_container(&ContainerSpec {
            ports: publish,
            ..testapp(&second.name)
        })
        .await
        .unwrap();
    let err = engine.start_container(&b).await.unwrap_err();
    match &err {
        EngineError::PortInUse {
            port: reported,
            container,
        } => {
            assert!(reported.contains(&port.to_string()), "{err}");
            assert_eq!(container, &second.name);
        }
        other => panic!("expected PortInUse, got {other:?}"),
    }
}

#[tokio::test]
async fn a_one_off_container_reports_its_exit_code() {
    let engine = engine().await;
    let container = Container::adopt(unique_name("berth-run"));
    // `testapp health` against a port where nothing listens fails.
    let spec = ContainerSpec {
        command: Some(vec!["health".into()]),
        env: vec!["PORT=9".into()],
        ..testapp(&container.name)
    };
    let id = engine.create_container(&spec).await.unwrap();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = engine
        .attach_and_start(
            &id,
            None::<tokio::io::Empty>,
            &mut stdout,
            &mut stderr,
            false,
        )
        .await
        .unwrap();
    assert_ne!(code, 0);
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(stderr.contains("testapp health"), "stderr: {stderr}");
    assert_eq!(
        docker(&[
            "inspect",
            "--format",
            "{{.State.ExitCode}}",
            &container.name
        ]),
        code.to_string()
    );
}
