//! `auditor explain`: the connection to explain and the policy files, and their validated
//! form.

use super::InputArgs;
use crate::verdict::InputFiles;

/// Examples for `auditor explain --help`.
pub const EXAMPLES: &str = "Example:
  auditor explain --allowlist a.yaml --inventory i.yaml \\
      --from 10.0.1.5 --to 10.0.2.7:9200";

/// `auditor explain`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// The connecting address.
    #[arg(long)]
    pub from: std::net::IpAddr,
    /// The address and port connected to: 10.0.0.7:9100 or [fd00::7]:9100.
    #[arg(long)]
    pub to: std::net::SocketAddr,
    /// Judge it as UDP (default TCP).
    #[arg(long)]
    pub udp: bool,
}

/// Validated `auditor explain` settings.
#[derive(Debug, Clone)]
pub struct ExplainConfig {
    pub inputs: InputFiles,
    pub from: std::net::IpAddr,
    pub to: std::net::SocketAddr,
    pub transport: auditor_common::Transport,
}

impl From<ExplainArgs> for ExplainConfig {
    fn from(a: ExplainArgs) -> Self {
        ExplainConfig {
            inputs: a.inputs.into(),
            from: a.from,
            to: a.to,
            transport: if a.udp {
                auditor_common::Transport::Udp
            } else {
                auditor_common::Transport::Tcp
            },
        }
    }
}
