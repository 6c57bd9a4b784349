//! Command handlers, one file per command as `cli/` has one per command's arguments: each
//! takes its validated config and does one job. `run`'s engine is `daemon/`.

pub mod allowlist;
pub mod capture;
pub mod explain;
pub mod networkpolicy;
pub mod replay;
pub mod report;
pub mod run;
pub mod schema;
pub mod watch;

use crate::verdict::{InputFiles, Judge};

/// The judge of an offline command (no cluster): loads the input files and prints the
/// load warnings to stderr.
pub fn offline_judge(p: &InputFiles) -> anyhow::Result<Judge> {
    let (judge, warnings) = crate::verdict::load_judge(p, None)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok(judge)
}
