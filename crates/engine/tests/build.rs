//! Image builds with BuildKit (through the engine's session API) and with the classic
//! builder, from temporary contexts.

mod common;

use std::collections::BTreeMap;

use berth_engine::{BuildEvent, BuildSpec, Builder, EngineError, StepStatus};
use berth_test_support::{docker, docker_output, unique_name, Container, TESTAPP_IMAGE};
use common::{engine, Image};

/// The files under `/ctx` in the image, listed by exporting a container of it.
fn files_in(image: &str) -> Vec<String> {
    let container = Container::adopt(unique_name("berth-export"));
    docker(&["create", "--name", &container.name, image]);
    let output = docker_output(&["export", &container.name]);
    assert!(output.status.success());
    let mut names: Vec<String> = tar::Archive::new(output.stdout.as_slice())
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap().path().unwrap().display().to_string())
        .filter_map(|path| {
            path.strip_prefix("ctx/")
                .map(|path| path.trim_end_matches('/').to_string())
        })
        .filter(|path| !path.is_empty())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn classic_builds_honour_dockerignore_and_use_the_cache() {
    builds_honour_dockerignore_and_use_the_cache(Builder::Classic).await;
}

#[tokio::test]
async fn buildkit_builds_honour_dockerignore_and_use_the_cache() {
    builds_honour_dockerignore_and_use_the_cache(Builder::BuildKit).await;
}

async fn builds_honour_dockerignore_and_use_the_cache(builder: Builder) {
    let engine = engine().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("Dockerfile"),
        format!("FROM {TESTAPP_IMAGE}\nARG GREETING\nCOPY . /ctx/\nLABEL greeting=$GREETING\n"),
    )
    .unwrap();
    std::fs::write(root.join(".dockerignore"), "secret.txt\n*.log\n!keep.log\n").unwrap();
    for file in ["secret.txt", "debug.log", "keep.log"] {
        std::fs::write(root.join(file), file).unwrap();
    }
    // Content of this run only, so the first build cannot be answered from an earlier run's
    // cache (BuildKit's outlives the test).
    std::fs::write(root.join("app.txt"), unique_name("app")).unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/nested.log"), "nested").unwrap();

    let tag = format!("berth-test/build:{}", unique_name("t"));
    let second_tag = format!("berth-test/build:{}", unique_name("u"));
    let _image = Image(tag.clone());
    let _second = Image(second_tag.clone());
    let spec = BuildSpec {
        context: root.to_path_buf(),
        dockerfile: "Dockerfile".into(),
        args: BTreeMap::from([("GREETING".to_string(), "hello".to_string())]),
        labels: BTreeMap::from([("berth.test".to_string(), "build".to_string())]),
        tags: vec![tag.clone(), second_tag.clone()],
        builder,
        ..Default::default()
    };
    let mut events = Vec::new();
    let built = engine
        .build_image(&spec, |event| events.push(event))
        .await
        .unwrap();
    assert!(built.id.starts_with("sha256:"), "{built:?}");
    assert_eq!(built.builder, builder);
    let names: Vec<&str> = built.steps.iter().map(|s| s.name.as_str()).collect();
    match builder {
        // The classic builder adds the build labels as a last LABEL step.
        Builder::Classic => assert_eq!(names.len(), 5, "{names:?}"),
        // BuildKit's steps are the FROM and the COPY; ARG and LABEL are metadata.
        Builder::BuildKit => assert_eq!(names.len(), 2, "{names:?}"),
    }
    assert!(
        names[names.len().min(2) - 1].contains("COPY") || names.iter().any(|n| n.contains("COPY"))
    );
    assert!(built.size_bytes > 0);
    // The image's layers add up to its size, as the engine reports both.
    let layer_sum: i64 = built.layers.iter().map(|l| l.size_bytes).sum();
    assert_eq!(layer_sum, built.size_bytes, "{built:?}");
    assert!(
        built.context.bytes > 0 && built.context.entries >= 6,
        "{built:?}"
    );
    assert!(
        events.iter().any(|event| matches!(event,
        BuildEvent::Step { name, status: StepStatus::Done(_) } if name.contains("COPY"))),
        "{events:?}"
    );
    assert_eq!(engine.image_id(&tag).await.unwrap(), Some(built.id.clone()));
    assert_eq!(
        engine.image_id(&second_tag).await.unwrap(),
        Some(built.id.clone())
    );
    assert_eq!(
        docker(&[
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"greeting\"}}/{{index .Config.Labels \"berth.test\"}}",
            &tag
        ]),
        "hello/build"
    );

    // `*.log` is rooted, so the nested log is kept; `!keep.log` brings that one back.
    assert_eq!(
        files_in(&tag),
        vec![
            ".dockerignore",
            "Dockerfile",
            "app.txt",
            "keep.log",
            "sub",
            "sub/nested.log"
        ]
    );

    let mut events = Vec::new();
    let rebuilt = engine
        .build_image(&spec, |event| events.push(event))
        .await
        .unwrap();
    assert_eq!(rebuilt.id, built.id);
    assert!(
        rebuilt
            .steps
            .iter()
            .any(|s| s.cached && s.name.contains("COPY")),
        "{rebuilt:?} {events:?}"
    );
    assert!(
        events.iter().any(|event| matches!(event,
        BuildEvent::Step { name, status: StepStatus::Cached } if name.contains("COPY"))),
        "{events:?}"
    );

    // no_cache runs every step again.
    let uncached = engine
        .build_image(
            &BuildSpec {
                no_cache: true,
                ..spec.clone()
            },
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        uncached
            .steps
            .iter()
            .filter(|s| s.cached && !s.name.contains("FROM"))
            .count(),
        0,
        "{uncached:?}"
    );

    engine.remove_image(&second_tag).await.unwrap();
    assert_eq!(engine.image_id(&second_tag).await.unwrap(), None);
    engine.remove_image(&second_tag).await.unwrap();
}

#[tokio::test]
async fn inline_dockerfiles_and_targets_build() {
    let engine = engine().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let tag = format!("berth-test/inline:{}", unique_name("t"));
    let _image = Image(tag.clone());
    let spec = BuildSpec {
        context: dir.path().to_path_buf(),
        dockerfile_inline: Some(format!(
            "FROM {TESTAPP_IMAGE} AS base\nCOPY a.txt /ctx/\nFROM base AS extra\nCOPY a.txt /ctx/b.txt\n"
        )),
        target: Some("base".into()),
        tags: vec![tag.clone()],
        ..Default::default()
    };
    engine.build_image(&spec, |_| {}).await.unwrap();
    assert_eq!(files_in(&tag), vec!["a.txt"]);
}

#[tokio::test]
async fn a_failing_step_is_a_build_failure_with_the_message() {
    let engine = engine().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {TESTAPP_IMAGE}\nCOPY missing.txt /ctx/\n"),
    )
    .unwrap();
    let tag = format!("berth-test/fail:{}", unique_name("t"));
    let _image = Image(tag.clone());
    let spec = BuildSpec {
        context: dir.path().to_path_buf(),
        dockerfile: "Dockerfile".into(),
        tags: vec![tag.clone()],
        ..Default::default()
    };
    // With BuildKit the failure names the step; with the classic builder, the message.
    let err = engine.build_image(&spec, |_| {}).await.unwrap_err();
    match &err {
        EngineError::StepFailed {
            image, step, error, ..
        } => {
            assert_eq!(image, &tag);
            assert_eq!(step, "[2/2] COPY missing.txt /ctx/");
            assert!(error.contains("missing.txt"), "{error}");
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
    let classic = BuildSpec {
        builder: Builder::Classic,
        ..spec.clone()
    };
    match engine.build_image(&classic, |_| {}).await.unwrap_err() {
        EngineError::BuildFailed { image, message } => {
            assert_eq!(image, tag);
            assert!(message.contains("missing.txt"), "{message}");
        }
        other => panic!("expected BuildFailed, got {other:?}"),
    }
    // Neither left the tag behind.
    assert_eq!(engine.image_id(&tag).await.unwrap(), None);

    // A Dockerfile the builder cannot parse fails the same way.
    std::fs::write(dir.path().join("Dockerfile"), "NOT-AN-INSTRUCTION x\n").unwrap();
    let err = engine.build_image(&spec, |_| {}).await.unwrap_err();
    assert!(matches!(err, EngineError::BuildFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("unknown instruction"), "{err}");
}

/// An engine without BuildKit cannot be made on this machine (20.10 always serves
/// `/session`), so this stands one in: a TCP front for the real engine that forwards every
/// connection to its socket except the session upgrade, which it answers 404 as an engine
/// without BuildKit does. Everything else is the real engine.
async fn engine_without_sessions() -> (berth_engine::Engine, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let front = tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.expect("the front accepts");
            tokio::spawn(async move {
                let mut first = vec![0u8; 64 * 1024];
                let n = client.read(&mut first).await.unwrap_or(0);
                let request_line = String::from_utf8_lossy(&first[..n]);
                if request_line
                    .lines()
                    .next()
                    .unwrap_or("")
                    .contains("/session")
                {
                    let _ = client
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 18\r\nConnection: close\r\n\r\npage not found\r\n\r\n")
                        .await;
                    return;
                }
                let Ok(mut engine) = tokio::net::UnixStream::connect("/var/run/docker.sock").await
                else {
                    return;
                };
                if engine.write_all(&first[..n]).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                }
            });
        }
    });
    let engine = berth_engine::Engine::connect_to(&format!("tcp://127.0.0.1:{port}"))
        .await
        .unwrap();
    (engine, front)
}

#[tokio::test]
async fn an_engine_without_buildkit_builds_with_the_classic_builder_after_a_notice() {
    // Makes sure the test images exist, through the real engine.
    let _ = engine().await;
    let (engine, front) = engine_without_sessions().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let tag = format!("berth-test/nokit:{}", unique_name("t"));
    let _image = Image(tag.clone());
    let spec = BuildSpec {
        context: dir.path().to_path_buf(),
        dockerfile_inline: Some(format!("FROM {TESTAPP_IMAGE}\nCOPY a.txt /ctx/\n")),
        tags: vec![tag.clone()],
        ..Default::default()
    };
    let mut events = Vec::new();
    let built = engine.build_image(&spec, |e| events.push(e)).await.unwrap();
    assert_eq!(built.builder, Builder::Classic);
    assert!(
        events.iter().any(|e| matches!(e, BuildEvent::Notice(text)
            if text.contains("building with the classic builder") && text.contains("404"))),
        "{events:?}"
    );
    assert_eq!(files_in(&tag), vec!["a.txt"]);

    // A build that needs a session is refused there, with what to do.
    let needs = BuildSpec {
        secrets: [(
            "token".to_string(),
            berth_engine::SecretSource::Env("PATH".into()),
        )]
        .into(),
        ..spec.clone()
    };
    let err = engine.build_image(&needs, |_| {}).await.unwrap_err();
    assert!(
        err.to_string().contains("build secrets need BuildKit"),
        "{err}"
    );
    front.abort();
}
