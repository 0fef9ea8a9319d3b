//! The `berth/postgres:15` test image: initialises from the POSTGRES_* variables, accepts a
//! password-authenticated TCP connection from the host, and keeps data in a named volume
//! across containers. Needs a running Docker Engine; fails without one.

use std::time::Duration;

use berth_test_support::{
    docker_output, ensure_test_images, run_container, wait_for, Container, Volume, POSTGRES_IMAGE,
};
use tokio_postgres::NoTls;

fn start_postgres(volume: &Volume) -> Container {
    ensure_test_images();
    let mount = format!("{}:/var/lib/postgresql/data", volume.name);
    let container = run_container(
        "berth-test-postgres",
        &[
            "-p",
            "127.0.0.1::5432",
            "-v",
            &mount,
            "-e",
            "POSTGRES_PASSWORD=secret",
            "-e",
            "POSTGRES_DB=app",
            POSTGRES_IMAGE,
        ],
    );
    wait_for(
        "pg_isready in the container",
        Duration::from_secs(60),
        || {
            docker_output(&["exec", &container.name, "pg_isready", "-q"])
                .status
                .success()
        },
    );
    container
}

async fn connect(
    container: &Container,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let addr = container.addr(5432);
    let config = format!(
        "host={} port={} user=postgres password={password} dbname=app connect_timeout=10",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            eprintln!("postgres connection error: {err}");
        }
    });
    Ok(client)
}

#[tokio::test]
async fn data_survives_a_new_container_on_the_same_volume() {
    let volume = Volume::create("berth-test-pgdata");

    {
        let first = start_postgres(&volume);
        let client = connect(&first, "secret")
            .await
            .unwrap_or_else(|err| panic!("cannot connect over TCP: {err}\n{}", first.logs()));
        client
            .batch_execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
            .await
            .unwrap();
        client
            .execute("INSERT INTO notes VALUES ($1, $2)", &[&1i32, &"kept"])
            .await
            .unwrap();
        let row = client
            .query_one("SELECT body FROM notes WHERE id = 1", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "kept");

        // A wrong password must be refused: host connections are not trusted.
        assert!(connect(&first, "wrong").await.is_err());

        // Stop cleanly before removal so the data directory is shut down, as in a deploy.
        drop(client);
        berth_test_support::docker(&["stop", "-t", "30", &first.name]);
        assert_eq!(
            first.inspect("{{.State.ExitCode}}"),
            "0",
            "{}",
            first.logs()
        );
    } // The first container is removed here; the volume stays.

    let second = start_postgres(&volume);
    let client = connect(&second, "secret").await.unwrap();
    let row = client
        .query_one("SELECT body FROM notes WHERE id = 1", &[])
        .await
        .unwrap_or_else(|err| panic!("the row did not survive: {err}\n{}", second.logs()));
    assert_eq!(row.get::<_, String>(0), "kept");
    // The second start must reuse the cluster rather than initialise a new one.
    assert!(!second.logs().contains("initialising"), "{}", second.logs());
    drop(client);
    drop(second);
    drop(volume);
}
