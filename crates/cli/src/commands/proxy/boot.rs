//! `berth proxy boot`: the proxy as container `berth-proxy`, built from this binary.

use super::super::CliError;
use crate::args::ProxyBootArgs;

pub fn run(_b: &ProxyBootArgs) -> Result<(), CliError> {
    Err(CliError::Failed("berth proxy boot is being written".into()))
}
