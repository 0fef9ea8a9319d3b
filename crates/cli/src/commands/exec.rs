//! `berth exec`: a command in a running service container, with the command's exit code.

use super::session::{number_of, Session};
use super::CliError;
use crate::args::{ExecArgs, ProjectArgs};
use berth_engine::{EngineError, ExecOptions};
use std::io::IsTerminal;

pub fn run(p: &ProjectArgs, a: &ExecArgs) -> Result<i32, CliError> {
    let s = Session::open(p)?;
    let list = s.containers(std::slice::from_ref(&a.service), false)?;
    let Some(c) = list.iter().find(|c| number_of(c) == a.index) else {
        return Err(CliError::Failed(format!(
            "service `{}` has no running container number {}; start it with `berth up {}`",
            a.service, a.index, a.service
        )));
    };
    // Standard input is always streamed and its end delivered, as `docker compose exec`
    // (whose -i is on by default) does, with -T or without: `berth exec -T db psql < dump.sql`
    // must load the dump. A TTY only when both ends are terminals and -T was not given, as
    // Compose decides.
    let tty = !a.no_tty && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let opts = ExecOptions {
        cmd: a.command.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        privileged: false,
        tty,
        interactive: true,
    };
    let code = s.rt.block_on(async {
        s.engine
            .exec(
                &c.id,
                &opts,
                Some(crate::stdin::stdin()),
                tokio::io::stdout(),
                tokio::io::stderr(),
            )
            .await
    });
    match code {
        Ok(code) => Ok(code.clamp(0, 255) as i32),
        // The reader of the output went away (`berth exec … | head -1`): a quiet end, as for
        // every command (see `output`).
        Err(EngineError::OutputClosed { .. }) => Ok(0),
        Err(e) => Err(e.into()),
    }
}
