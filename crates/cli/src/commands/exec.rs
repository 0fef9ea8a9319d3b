//! `berth exec`: a command in a running service container, with the command's exit code.

use super::session::{number_of, Session};
use super::CliError;
use crate::args::{ExecArgs, ProjectArgs};
use berth_engine::ExecOptions;
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
    // A TTY only when both ends are terminals and -T was not given, as Compose decides.
    let interactive = std::io::stdin().is_terminal();
    let tty = !a.no_tty && interactive && std::io::stdout().is_terminal();
    let opts = ExecOptions {
        cmd: a.command.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        privileged: false,
        tty,
        interactive,
    };
    let code = s.rt.block_on(async {
        let stdin = interactive.then(tokio::io::stdin);
        s.engine
            .exec(
                &c.id,
                &opts,
                stdin,
                tokio::io::stdout(),
                tokio::io::stderr(),
            )
            .await
    })?;
    Ok(code.clamp(0, 255) as i32)
}
