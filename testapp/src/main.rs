//! `testapp`: a small HTTP server that berth's Docker tests deploy.
//!
//! It exists so that tests can exercise health checks, graceful drain, WebSockets and
//! persistent volumes against a real container, without pulling any image from a registry.
//! The binary is built statically and shipped in a `FROM scratch` image by `cargo xtask
//! test-images`, so it must not depend on anything in the container but itself.

mod config;
mod counter;
mod health;
mod routes;
mod server;
mod ws;

use std::process::ExitCode;

use config::Config;

fn main() -> ExitCode {
    let config = Config::from_env();
    let args: Vec<String> = std::env::args().skip(1).collect();

    // The `health` subcommand is what the container's healthcheck runs; the image has no curl.
    if args.first().map(String::as_str) == Some("health") {
        return match health::check(config.port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("testapp health: {err}");
                ExitCode::FAILURE
            }
        };
    }
    // The `migrate` subcommand stands in for a release command (database migrations): it
    // prints what it did and fails when MIGRATE=fail, so deploy tests can see both outcomes.
    if args.first().map(String::as_str) == Some("migrate") {
        if std::env::var("MIGRATE").is_ok_and(|v| v == "fail") {
            eprintln!("testapp migrate: MIGRATE=fail is set, failing on purpose");
            return ExitCode::FAILURE;
        }
        println!("testapp migrate: migrations applied for {}", config.version);
        return ExitCode::SUCCESS;
    }
    if let Some(other) = args.first() {
        eprintln!(
            "testapp: unknown subcommand {other:?}; the subcommands are `health` and `migrate`"
        );
        return ExitCode::from(2);
    }

    // CRASH=1 lets tests see how a deploy reacts to a container that dies at start.
    if config.crash {
        eprintln!("testapp: CRASH=1 is set, exiting with code 1 on purpose");
        return ExitCode::FAILURE;
    }

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("testapp: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("testapp: {err}");
            ExitCode::FAILURE
        }
    }
}
