//! Container output, split into lines.

use std::collections::VecDeque;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures_util::{Stream, StreamExt, TryStreamExt};

use crate::error::is_not_found;
use crate::{Engine, EngineError, LogLine, LogStream};

impl Engine {
    /// The container's output as lines, following new output when `follow`. `tail` limits
    /// the history to the last N lines. With `timestamps`, each line carries the engine's
    /// RFC 3339 timestamp.
    pub fn logs(
        &self,
        id: &str,
        follow: bool,
        tail: Option<usize>,
        timestamps: bool,
    ) -> impl Stream<Item = Result<LogLine, EngineError>> + '_ {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            timestamps,
            tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()),
            ..Default::default()
        };
        let id = id.to_string();
        let chunks = self.docker.logs(&id, Some(options)).map_err(move |err| {
            if is_not_found(&err) {
                EngineError::NotFound {
                    what: "container",
                    name: id.clone(),
                }
            } else {
                self.api_error("read container logs", err)
            }
        });
        let state = (chunks.boxed(), LineSplitter::new(timestamps), false);
        futures_util::stream::unfold(state, |(mut chunks, mut splitter, mut done)| async move {
            loop {
                if let Some(line) = splitter.ready.pop_front() {
                    return Some((Ok(line), (chunks, splitter, done)));
                }
                if done {
                    return None;
                }
                match chunks.next().await {
                    Some(Ok(chunk)) => splitter.push(chunk),
                    Some(Err(err)) => {
                        done = true;
                        return Some((Err(err), (chunks, splitter, done)));
                    }
                    None => {
                        done = true;
                        splitter.finish();
                    }
                }
            }
        })
    }

    /// The last `n` lines of output (stdout and stderr interleaved), e.g. to explain why a
    /// container exited.
    pub async fn last_log_lines(&self, id: &str, n: usize) -> Result<Vec<String>, EngineError> {
        self.logs(id, false, Some(n), false)
            .map_ok(|line| line.text)
            .try_collect()
            .await
    }
}

/// Reassembles lines from the engine's chunks: a chunk can hold several lines or part of
/// one, and stdout and stderr are buffered apart so their partial lines never mix.
struct LineSplitter {
    timestamps: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    ready: VecDeque<LogLine>,
}

impl LineSplitter {
    fn new(timestamps: bool) -> LineSplitter {
        LineSplitter {
            timestamps,
            stdout: Vec::new(),
            stderr: Vec::new(),
            ready: VecDeque::new(),
        }
    }

    fn push(&mut self, chunk: LogOutput) {
        let stream = match chunk {
            LogOutput::StdErr { .. } => LogStream::Stderr,
            // A TTY container has a single `Console` stream, which is what the user sees
            // as standard output.
            _ => LogStream::Stdout,
        };
        let bytes = chunk.into_bytes();
        let buffer = match stream {
            LogStream::Stdout => &mut self.stdout,
            LogStream::Stderr => &mut self.stderr,
        };
        buffer.extend_from_slice(&bytes);
        while let Some(at) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=at).collect();
            let line = make_line(stream, &line[..line.len() - 1], self.timestamps);
            self.ready.push_back(line);
        }
    }

    /// Flushes the unterminated last lines when the stream ends.
    fn finish(&mut self) {
        for (stream, buffer) in [
            (LogStream::Stdout, &mut self.stdout),
            (LogStream::Stderr, &mut self.stderr),
        ] {
            if !buffer.is_empty() {
                let line = make_line(stream, buffer, self.timestamps);
                self.ready.push_back(line);
                buffer.clear();
            }
        }
    }
}

fn make_line(stream: LogStream, bytes: &[u8], timestamps: bool) -> LogLine {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    let (timestamp, text) = match text.split_once(' ') {
        Some((timestamp, rest)) if timestamps => (Some(timestamp.to_string()), rest),
        _ => (None, text),
    };
    LogLine {
        stream,
        timestamp,
        text: text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn out(text: &'static str) -> LogOutput {
        LogOutput::StdOut {
            message: Bytes::from_static(text.as_bytes()),
        }
    }

    fn err(text: &'static str) -> LogOutput {
        LogOutput::StdErr {
            message: Bytes::from_static(text.as_bytes()),
        }
    }

    #[test]
    fn chunks_are_reassembled_into_lines_per_stream() {
        let mut splitter = LineSplitter::new(false);
        splitter.push(out("one\ntw"));
        splitter.push(err("oops\r\n"));
        splitter.push(out("o\nthree"));
        splitter.finish();
        let lines: Vec<(LogStream, String)> = splitter
            .ready
            .into_iter()
            .map(|line| (line.stream, line.text))
            .collect();
        assert_eq!(
            lines,
            vec![
                (LogStream::Stdout, "one".to_string()),
                (LogStream::Stderr, "oops".to_string()),
                (LogStream::Stdout, "two".to_string()),
                (LogStream::Stdout, "three".to_string()),
            ]
        );
    }

    #[test]
    fn timestamps_are_split_off() {
        let mut splitter = LineSplitter::new(true);
        splitter.push(out("2024-05-01T12:00:00.000000001Z hello world\n"));
        let line = splitter.ready.pop_front().unwrap();
        assert_eq!(
            line.timestamp.as_deref(),
            Some("2024-05-01T12:00:00.000000001Z")
        );
        assert_eq!(line.text, "hello world");
    }
}
