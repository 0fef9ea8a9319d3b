//! A service's own dump and restore commands (`x-berth.backup: { command, restore, file }`),
//! for engines berth does not know. Without `file`, the command's standard output is the
//! dump and the restore command reads it on standard input; with `file`, the command writes
//! the dump there and the restore command finds it there.

use crate::database::sh_quote;

/// The command, then the file it wrote; the command's own output goes to standard error so
/// it cannot mix with the dump.
pub(crate) fn dump_script(command: &str, file: Option<&str>) -> String {
    match file {
        None => command.to_string(),
        Some(file) => format!(
            "( {command}\n) 1>&2 || exit $?\nexec cat -- {}",
            sh_quote(file)
        ),
    }
}

/// The dump put back at `file` first when there is one, then the restore command.
pub(crate) fn load_script(restore: &str, file: Option<&str>) -> String {
    match file {
        None => restore.to_string(),
        Some(file) => format!(
            "cat > {0} || exit $?\n( {restore}\n) || exit $?",
            sh_quote(file)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, stdin: &[u8]) -> (i32, Vec<u8>, Vec<u8>) {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code().unwrap(), out.stdout, out.stderr)
    }

    #[test]
    fn a_dump_to_a_file_is_read_from_the_file_and_a_failure_is_passed_on() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("it's a dump");
        let file = file.to_str().unwrap();
        let cmd = format!("echo noise; printf 'the dump' > {}", sh_quote(file));
        let (code, out, err) = sh(&dump_script(&cmd, Some(file)), b"");
        assert_eq!(
            (code, out.as_slice(), err.as_slice()),
            (0, &b"the dump"[..], &b"noise\n"[..])
        );
        let (code, out, _) = sh(&dump_script("exit 7", Some(file)), b"");
        assert_eq!((code, out.len()), (7, 0));

        let target = dir.path().join("loaded");
        let restore = format!(
            "cp {} {}",
            sh_quote(file),
            sh_quote(target.to_str().unwrap())
        );
        let (code, _, _) = sh(&load_script(&restore, Some(file)), b"restored bytes");
        assert_eq!(code, 0);
        assert_eq!(std::fs::read(&target).unwrap(), b"restored bytes");
        let (code, _, _) = sh(&load_script("exit 5", Some(file)), b"x");
        assert_eq!(code, 5);
    }

    #[test]
    fn without_a_file_the_streams_are_the_dump() {
        let (code, out, _) = sh(&dump_script("printf abc", None), b"");
        assert_eq!((code, out.as_slice()), (0, &b"abc"[..]));
        let (code, out, _) = sh(&load_script("tr a-z A-Z", None), b"abc");
        assert_eq!((code, out.as_slice()), (0, &b"ABC"[..]));
    }
}
