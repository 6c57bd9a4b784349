//! `auditor run`: the daemon. Its engine is `daemon/`; this is the command's door, as every
//! other command has one here.

use crate::cli::RunConfig;

pub fn run(cfg: RunConfig) -> anyhow::Result<std::process::ExitCode> {
    crate::daemon::run(cfg)?;
    Ok(std::process::ExitCode::SUCCESS)
}
