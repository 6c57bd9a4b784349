//! `auditor replay`: the flows to judge, what fails the replay, and where to keep it; and
//! their validated form.

use std::path::PathBuf;

use super::{FailOn, InputArgs};
use crate::{model::Verdict, verdict::InputFiles};

/// Examples for `auditor replay --help`: each physical line is a valid shell line.
pub const EXAMPLES: &str = "Examples:
  auditor replay --allowlist allowlist/voice-microservices.yaml \\
      --inventory examples/inventory.yaml examples/flows.jsonl
  sudo auditor capture --duration 30s \\
      | auditor replay --allowlist a.yaml --inventory i.yaml";

/// `auditor replay --help`'s description. The verdicts are listed from `Verdict::ALL`, so
/// a new one is named here the day it exists.
pub fn long_about() -> String {
    let verdicts: Vec<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
    let (last, rest) = verdicts.split_last().expect("there are verdicts");
    let verdicts = format!("{} or {last}", rest.join(", "));
    format!(
        "Judge recorded flows against the allowlist: one JSON verdict per flow.\n\n\
         Reads flow records (the JSON lines `auditor capture` prints; only transport, \
         src_addr, dst_addr and dst_port are required) from FLOWS or stdin, resolves both \
         ends through the inventory, and prints one verdict per flow: {verdicts}, with the \
         documented connection number(s) it relates to (`platform` when a --baseline \
         entry allows it). A bad line is reported with its line number and skipped. A \
         connection seen at both ends on this node is judged once. Needs no root. A \
         summary goes to stderr. Exits 2 on errors, among them a replay in which no record \
         could be read; --fail-on gives exit 1 for CI gates.",
    )
}

/// `auditor replay`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Flow records, one JSON object per line; `-` or nothing for stdin.
    pub flows: Option<String>,
    /// Exit 1 when the replay shows this (comma-separated or repeated): `violations` (a
    /// flow not allowed), `never-observed` (a documented connection no flow used),
    /// `unaudited` (a record that could not be read). Errors exit 2.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub fail_on: Vec<FailOn>,
    /// Also keep the judged flows in this store (created if missing), as `auditor run`
    /// does, so `auditor report --store` works on recorded flows. Its coverage is the span
    /// of the records' times.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The node name the replayed flows are stored under (with --store).
    #[arg(long, default_value = "replay", requires = "store")]
    pub node: String,
}

/// Validated `auditor replay` settings.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub inputs: InputFiles,
    /// None: stdin.
    pub flows: Option<PathBuf>,
    /// Conditions that make the replay exit 1.
    pub fail_on: Vec<FailOn>,
    /// Where to keep the judged flows, and under which node name.
    pub store: Option<(PathBuf, String)>,
}

impl TryFrom<ReplayArgs> for ReplayConfig {
    type Error = anyhow::Error;

    fn try_from(a: ReplayArgs) -> anyhow::Result<Self> {
        if let Some(store) = &a.store
            && let Some(dir) = store.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            anyhow::bail!(
                "--store {}: the directory {} does not exist",
                store.display(),
                dir.display()
            );
        }
        if a.node.trim().is_empty() {
            anyhow::bail!("--node: give a name");
        }
        Ok(ReplayConfig {
            inputs: a.inputs.into(),
            flows: a.flows.filter(|f| f != "-").map(PathBuf::from),
            fail_on: a.fail_on,
            store: a.store.map(|s| (s, a.node)),
        })
    }
}
