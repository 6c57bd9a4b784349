//! `auditor capture`: its arguments (the probe options and how long to run) and their
//! validated form.

use std::time::Duration;

use super::{ProbeArgs, ProbeConfig};

/// Examples for `auditor capture --help`.
pub const EXAMPLES: &str = "Example:
  sudo auditor capture | jq 'select(.transport == \"udp\")'";

/// `auditor capture`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    #[command(flatten)]
    pub probes: ProbeArgs,
    /// Stop by itself after this long (e.g. 30s); runs until Ctrl-C when absent.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// This node's name in the stream's `watch` lines (default: the host name).
    #[arg(long, env = "NODE_NAME")]
    pub node: Option<String>,
}

/// Validated capture settings.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub probes: ProbeConfig,
    pub duration: Option<Duration>,
    /// The node named in the stream's `watch` lines.
    pub node: String,
}

impl TryFrom<CaptureArgs> for CaptureConfig {
    type Error = anyhow::Error;

    fn try_from(args: CaptureArgs) -> anyhow::Result<Self> {
        Ok(CaptureConfig {
            probes: args.probes.try_into()?,
            duration: args.duration,
            node: args
                .node
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| {
                    std::fs::read_to_string("/proc/sys/kernel/hostname")
                        .map(|h| h.trim().to_string())
                        .unwrap_or_else(|_| "unknown".into())
                }),
        })
    }
}
