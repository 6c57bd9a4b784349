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
         src_addr, dst_addr and dst_port are required, and time when there are no watch \
         lines) from FLOWS or stdin, resolves both \
         ends through the inventory, and prints one verdict per flow: {verdicts}, with the \
         documented connection number(s) it relates to (`platform` when a --baseline \
         entry allows it). A bad line is reported with its line number and skipped. A \
         connection seen at both ends on this node is judged once. Needs no root. A \
         summary goes to stderr. Exits 2 on errors, among them a replay in which no record \
         could be read; --fail-on gives exit 1 for CI gates.\n\n\
         The `watch` lines `auditor capture` writes say what the capture watched: a record \
         timed outside them is a bad line, and one without `time` is timed at the end of \
         the watch span it came in. A recording without them has no known coverage: its \
         records must carry their times, and a report of its store says coverage unknown. \
         Times are RFC 3339 with `Z` or an offset; one with no zone, or further in the \
         future than --max-clock-skew, is a bad line. The input is read to its end before \
         the first verdict (a record is checked against the spans that follow it).",
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
    /// does, so `auditor report --store` works on recorded flows. Its coverage is the
    /// recording's `watch` spans (unknown without them), and the store records the flows
    /// file's sha256: its reports say they were replayed.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The node name the replayed flows are stored under (with --store; default: the node
    /// the recording's `watch` lines name when they name one, else `replay`).
    #[arg(long, requires = "store")]
    pub node: Option<String>,
    /// How far in the future a record's time may be (the recording host's clock may be
    /// ahead of this one); a later time is a bad line.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_clock_skew: std::time::Duration,
    #[command(flatten)]
    pub dns: super::DnsArgs,
}

/// Validated `auditor replay` settings.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub inputs: InputFiles,
    /// None: stdin.
    pub flows: Option<PathBuf>,
    /// Conditions that make the replay exit 1.
    pub fail_on: Vec<FailOn>,
    /// Where to keep the judged flows, and under which node name (None: from the
    /// recording's `watch` lines).
    pub store: Option<(PathBuf, Option<String>)>,
    pub max_clock_skew: std::time::Duration,
    /// How the recording's `dns` lines name egress.
    pub dns: super::DnsConfig,
}

impl TryFrom<ReplayArgs> for ReplayConfig {
    type Error = anyhow::Error;

    fn try_from(a: ReplayArgs) -> anyhow::Result<Self> {
        if let Some(store) = &a.store
            && store.is_dir()
        {
            anyhow::bail!(
                "--store {}: is a directory; give a file path for the store",
                store.display()
            );
        }
        if let Some(store) = &a.store {
            super::store_dir_exists(store)?;
        }
        if a.node.as_ref().is_some_and(|n| n.trim().is_empty()) {
            anyhow::bail!("--node: give a name");
        }
        if a.fail_on.contains(&FailOn::Replayed) {
            anyhow::bail!(
                "--fail-on replayed: a replay is always replayed; it is a gate for `auditor \
                 report` (on a store that should hold live evidence)"
            );
        }
        Ok(ReplayConfig {
            inputs: a.inputs.into(),
            flows: a.flows.filter(|f| f != "-").map(PathBuf::from),
            fail_on: a.fail_on,
            store: a.store.map(|s| (s, a.node)),
            max_clock_skew: a.max_clock_skew,
            dns: a.dns.try_into()?,
        })
    }
}
