//! Running commands in containers (`berth exec`) and attaching to one-off containers
//! (`berth run`). The engine only forwards bytes: the caller supplies the streams, so the
//! CLI decides what is a terminal and what is printed.

use std::pin::Pin;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::AttachContainerOptions;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::error::is_not_found;
use crate::{Engine, EngineError};

/// What to run with [`Engine::exec`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    /// `KEY=VALUE` pairs added to the container's environment.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub privileged: bool,
    /// Allocate a pseudo-terminal: output arrives as one stream, as on a terminal.
    pub tty: bool,
    /// Keep standard input open and forward the caller's stdin to it.
    pub interactive: bool,
}

type OutputStream = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;
type InputSink = Pin<Box<dyn AsyncWrite + Send>>;

impl Engine {
    /// Runs `opts.cmd` in the running container `id`, forwarding stdin (when interactive
    /// and given) and output, and returns the command's exit code. A command that cannot
    /// be started (e.g. a missing binary) gives the runtime's exit code (126 or 127) and
    /// its message on `stderr`, as `docker exec` does.
    pub async fn exec(
        &self,
        id: &str,
        opts: &ExecOptions,
        stdin: Option<impl AsyncRead + Unpin + Send + 'static>,
        stdout: impl AsyncWrite + Unpin,
        stderr: impl AsyncWrite + Unpin,
    ) -> Result<i64, EngineError> {
        let attach_stdin = opts.interactive && stdin.is_some();
        let config = CreateExecOptions {
            cmd: Some(opts.cmd.clone()),
            env: (!opts.env.is_empty()).then(|| opts.env.clone()),
            user: opts.user.clone(),
            working_dir: opts.working_dir.clone(),
            privileged: Some(opts.privileged),
            tty: Some(opts.tty),
            attach_stdin: Some(attach_stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let created = self.docker.create_exec(id, config).await.map_err(|err| {
            match crate::error::server_error(&err) {
                Some((404, _)) => EngineError::NotFound {
                    what: "container",
                    name: id.to_string(),
                },
                _ => self.api_error("run a command in a container", err),
            }
        })?;
        let start = StartExecOptions {
            detach: false,
            tty: opts.tty,
            output_capacity: None,
        };
        let started = self
            .docker
            .start_exec(&created.id, Some(start))
            .await
            .map_err(|err| self.api_error("run a command in a container", err))?;
        let StartExecResults::Attached { output, input } = started else {
            unreachable!("a non-detached exec is always attached");
        };
        let stdin = if attach_stdin { stdin } else { None };
        forward(id, output, input, stdin, stdout, stderr).await?;
        // The output ends when the process closes it, which can be a moment before the
        // engine records the exit code.
        loop {
            let inspect = self
                .docker
                .inspect_exec(&created.id)
                .await
                .map_err(|err| self.api_error("inspect a command in a container", err))?;
            if inspect.running != Some(true) {
                return Ok(inspect.exit_code.unwrap_or(-1));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// For one-off containers (`berth run`): attaches to the created container `id`
    /// before starting it, so no output is lost, forwards stdin and output until the
    /// container exits, and returns its exit code. `tty` must match the container's own
    /// setting, because it decides whether the engine multiplexes the output.
    pub async fn attach_and_start(
        &self,
        id: &str,
        stdin: Option<impl AsyncRead + Unpin + Send + 'static>,
        stdout: impl AsyncWrite + Unpin,
        stderr: impl AsyncWrite + Unpin,
        tty: bool,
    ) -> Result<i64, EngineError> {
        // Output framing follows the container's own TTY setting; the caller's flag only
        // documents the expectation.
        let _ = tty;
        let options = AttachContainerOptions {
            stream: true,
            stdin: stdin.is_some(),
            stdout: true,
            stderr: true,
            logs: false,
            detach_keys: None,
        };
        let attached = self
            .docker
            .attach_container(id, Some(options))
            .await
            .map_err(|err| {
                if is_not_found(&err) {
                    EngineError::NotFound {
                        what: "container",
                        name: id.to_string(),
                    }
                } else {
                    self.api_error("attach to a container", err)
                }
            })?;
        self.start_container(id).await?;
        forward(id, attached.output, attached.input, stdin, stdout, stderr).await?;
        Ok(self.wait_exit(id, None).await?.unwrap_or(-1))
    }
}

/// Copies the caller's stdin into the container (closing it at end of input, so that the
/// process sees EOF) while writing the container's output to the caller's streams, until
/// the container closes its output.
async fn forward(
    container: &str,
    mut output: OutputStream,
    mut input: InputSink,
    stdin: Option<impl AsyncRead + Unpin + Send + 'static>,
    mut stdout: impl AsyncWrite + Unpin,
    mut stderr: impl AsyncWrite + Unpin,
) -> Result<(), EngineError> {
    let broken = |reason: String| EngineError::Stream {
        container: container.to_string(),
        reason,
    };
    // A write to the caller's streams that finds their reader gone ends the copying: the
    // bytes have nowhere to go, and a command writing without end (`yes | head -1`) would
    // otherwise never let the caller finish.
    let written = |err: std::io::Error| {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            EngineError::OutputClosed {
                container: container.to_string(),
            }
        } else {
            broken(err.to_string())
        }
    };
    let feeder = stdin.map(|mut stdin| {
        tokio::spawn(async move {
            // Errors end the input early; the process then sees EOF, which is the best
            // that can be done with a stdin that failed.
            let _ = tokio::io::copy(&mut stdin, &mut input).await;
            let _ = input.shutdown().await;
        })
    });
    let result = async {
        while let Some(chunk) = output.next().await {
            match chunk.map_err(|err| broken(crate::error::root_cause(&err)))? {
                LogOutput::StdErr { message } => {
                    stderr.write_all(&message).await.map_err(&written)?;
                    stderr.flush().await.map_err(&written)?;
                }
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    stdout.write_all(&message).await.map_err(&written)?;
                    stdout.flush().await.map_err(&written)?;
                }
                LogOutput::StdIn { .. } => {}
            }
        }
        Ok(())
    }
    .await;
    if let Some(feeder) = feeder {
        // The process is gone; input still waiting to be sent has nowhere to go.
        feeder.abort();
    }
    result
}
