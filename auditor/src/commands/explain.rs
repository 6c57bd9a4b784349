//! `auditor explain`: how one connection is judged and why, for a human. Needs no root.

use crate::{cli::ExplainConfig, commands::offline_judge, verdict::explain::explain};

pub fn run(cfg: ExplainConfig) -> anyhow::Result<std::process::ExitCode> {
    let judge = offline_judge(&cfg.inputs)?;
    print!(
        "{}",
        explain(&judge, cfg.from, cfg.to.ip(), cfg.to.port(), cfg.transport)
    );
    Ok(std::process::ExitCode::SUCCESS)
}
