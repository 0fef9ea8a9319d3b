//! `berth stop`, `start` and `restart` of existing service containers.

use super::session::Session;
use super::CliError;
use crate::args::{ProjectArgs, ServicesArgs, StopArgs};
use std::time::Duration;

pub fn stop(p: &ProjectArgs, a: &StopArgs) -> Result<(), CliError> {
    let s = Session::open(p)?;
    // Dependents first, so nothing loses a dependency while it still runs.
    let mut list = s.containers(&a.services, false)?;
    list.reverse();
    for c in &list {
        s.rt.block_on(
            s.engine
                .stop_container(&c.id, a.timeout.map(Duration::from_secs)),
        )?;
        println!("stopped {}", c.name);
    }
    Ok(())
}

pub fn start(p: &ProjectArgs, a: &ServicesArgs) -> Result<(), CliError> {
    let s = Session::open(p)?;
    let list = s.containers(&a.services, true)?;
    if list.is_empty() {
        return Err(CliError::Failed(
            "no containers to start; run `berth up` first".into(),
        ));
    }
    for c in &list {
        s.rt.block_on(s.engine.start_container(&c.id))?;
        println!("started {}", c.name);
    }
    Ok(())
}

pub fn restart(p: &ProjectArgs, a: &StopArgs) -> Result<(), CliError> {
    let s = Session::open(p)?;
    for c in &s.containers(&a.services, true)? {
        s.rt.block_on(
            s.engine
                .restart_container(&c.id, a.timeout.map(Duration::from_secs)),
        )?;
        println!("restarted {}", c.name);
    }
    Ok(())
}
