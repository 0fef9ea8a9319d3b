//! `berth version`: berth's version and the engine's, negotiated.

use super::CliError;
use crate::args::{TextFormat, VersionArgs};

pub fn run(a: &VersionArgs) -> Result<(), CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Io(format!("cannot start the async runtime: {e}")))?;
    let client = env!("CARGO_PKG_VERSION");
    let engine = rt.block_on(async {
        let engine = berth_engine::Engine::connect().await?;
        engine.version().await
    })?;
    match a.format {
        TextFormat::Text => {
            println!("berth:  {client}");
            println!(
                "engine: {} (API {}, negotiated {}, {}/{})",
                engine.version,
                engine.api_version,
                engine.negotiated_api_version,
                engine.os,
                engine.arch
            );
        }
        TextFormat::Json => println!(
            "{}",
            serde_json::json!({
                "client": { "version": client },
                "engine": {
                    "version": engine.version,
                    "api_version": engine.api_version,
                    "negotiated_api_version": engine.negotiated_api_version,
                    "os": engine.os,
                    "arch": engine.arch,
                }
            })
        ),
    }
    Ok(())
}
