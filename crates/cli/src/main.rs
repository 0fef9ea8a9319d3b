//! The `berth` binary. Everything lives in the library half of this crate; main stays thin.

fn main() -> std::process::ExitCode {
    berth_cli::run()
}
