//! `berth up`, `down`, `ps` on the real engine with the test images (issue #3).

mod harness;
use berth_test_support::{docker, docker_output, ensure_test_images, unique_name};
use harness::{Berth, ProjectGuard};

/// A seed-like stack: web x2 with a healthcheck, Postgres with a named volume, and a worker
/// that waits for the database to be healthy.
const SEED: &str = r#"
services:
  web:
    image: berth/testapp:latest
    environment:
      APP_VERSION: v1
    deploy:
      replicas: 2
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 1s
      retries: 10
  db:
    image: berth/postgres:15
    environment:
      POSTGRES_PASSWORD: secret
    volumes: [pgdata:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres"]
      interval: 1s
      retries: 30
  worker:
    image: berth/testapp:latest
    depends_on:
      db: { condition: service_healthy }
volumes:
  pgdata: {}
"#;

fn ids(project: &str, service: &str) -> Vec<String> {
    harness::service_ids(project, service, false)
}

fn started_at(id: &str) -> String {
    docker(&["inspect", "-f", "{{.State.StartedAt}}", id])
}

#[test]
fn seed_stack_converges_idempotently_and_down_removes_only_its_own() {
    ensure_test_images();
    let project = unique_name("berth-it").to_lowercase();
    let _guard = ProjectGuard(project.clone());
    let b = || Berth::project(&[("compose.yaml", SEED)]).args(&["-p", &project]);

    // Foreign resources that `down -v` must leave alone.
    let foreign = unique_name("foreign");
    docker(&["volume", "create", &foreign]);
    docker(&["network", "create", &foreign]);
    docker(&["create", "--name", &foreign, "berth/testapp:latest"]);
    struct Foreign(String);
    impl Drop for Foreign {
        fn drop(&mut self) {
            let _ = docker_output(&["rm", "-f", &self.0]);
            let _ = docker_output(&["network", "rm", &self.0]);
            let _ = docker_output(&["volume", "rm", &self.0]);
        }
    }
    let _foreign = Foreign(foreign.clone());

    b().args(&["up", "-d", "--wait"]).run().success();
    let web = ids(&project, "web");
    let db = ids(&project, "db");
    let worker = ids(&project, "worker");
    assert_eq!((web.len(), db.len(), worker.len()), (2, 1, 1));
    for id in web.iter().chain(&db) {
        assert_eq!(
            docker(&["inspect", "-f", "{{.State.Health.Status}}", id]),
            "healthy"
        );
    }
    // The worker waited for the database: it started after the database did.
    assert!(started_at(&worker[0]) > started_at(&db[0]));
    // Compose tools see the stack.
    let listed = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
    ]);
    assert_eq!(listed.split_whitespace().count(), 4);

    // A second `up` with nothing changed touches no container.
    b().args(&["up", "-d", "--wait"]).run().success();
    assert_eq!(ids(&project, "web"), web);
    assert_eq!(ids(&project, "db"), db);
    assert_eq!(ids(&project, "worker"), worker);

    // Changing one service's environment: --dry-run says so and changes nothing...
    let changed = SEED.replace("APP_VERSION: v1", "APP_VERSION: v2");
    let dry = Berth::project(&[("compose.yaml", &changed)])
        .args(&["-p", &project, "up", "-d", "--dry-run"])
        .run();
    dry.success().stdout_has("recreate");
    assert!(dry.stdout.contains("web"), "{}", dry.stdout);
    // By container name: the project's random suffix can itself hold "db".
    let (db_name, worker_name) = (format!("{project}-db-"), format!("{project}-worker-"));
    assert!(
        !dry.stdout
            .lines()
            .any(|l| l.contains("recreate") && (l.contains(&db_name) || l.contains(&worker_name))),
        "{}",
        dry.stdout
    );
    assert_eq!(ids(&project, "web"), web);
    // ...and the real run recreates only that service.
    Berth::project(&[("compose.yaml", &changed)])
        .args(&["-p", &project, "up", "-d", "--wait"])
        .run()
        .success();
    let web2 = ids(&project, "web");
    assert_eq!(web2.len(), 2);
    assert!(web2.iter().all(|id| !web.contains(id)));
    assert_eq!(ids(&project, "db"), db);
    assert_eq!(ids(&project, "worker"), worker);

    // ps --format json lists every container with its service and state.
    let ps = b().args(&["ps", "--format", "json"]).run();
    ps.success();
    let rows: Vec<serde_json::Value> = ps
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4, "{}", ps.stdout);

    // down -v removes everything berth created and nothing else.
    b().args(&["down", "-v"]).run().success();
    let label = format!("label=com.docker.compose.project={project}");
    assert!(docker(&["ps", "-aq", "--filter", &label]).is_empty());
    assert!(docker(&["volume", "ls", "-q", "--filter", &label]).is_empty());
    assert!(docker(&["network", "ls", "-q", "--filter", &label]).is_empty());
    docker(&["volume", "inspect", &foreign]);
    docker(&["network", "inspect", &foreign]);
    docker(&["inspect", &foreign]);
}
