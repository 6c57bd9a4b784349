//! `auditor explain`: the connection to explain and the policy files, and their validated
//! form.

use super::InputArgs;
use crate::verdict::InputFiles;

/// Examples for `auditor explain --help`.
pub const EXAMPLES: &str = "Examples:
  auditor explain --allowlist a.yaml --inventory i.yaml \\
      --from 10.0.1.5 --to 10.0.2.7:9200
  auditor explain --allowlist a.yaml --inventory i.yaml \\
      --from 10.0.1.5 --to 203.0.113.7:6379 --name x.redis.example
  auditor explain --allowlist a.yaml --inventory i.yaml --flows flows.jsonl \\
      --dns-resolver 10.96.0.10 --from 10.0.1.5 --to 203.0.113.7:6379";

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
    /// Judge it as if the source had resolved the destination by this DNS name from a
    /// trusted resolver (repeat for a CNAME chain, the name asked for first).
    #[arg(long, conflicts_with = "flows")]
    pub name: Vec<String>,
    /// A recording (`auditor capture` output): its DNS answers are learned as `auditor
    /// replay` learns them, and the connection is judged with the names the source's pod
    /// had at its last flow record from --from to --to, showing which answer named it.
    #[arg(long)]
    pub flows: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub dns: super::DnsArgs,
}

/// Validated `auditor explain` settings.
#[derive(Debug, Clone)]
pub struct ExplainConfig {
    pub inputs: InputFiles,
    pub from: std::net::IpAddr,
    pub to: std::net::SocketAddr,
    pub transport: auditor_common::Transport,
    /// `--name`: names given by hand, lower-case, without a trailing dot.
    pub names: Vec<String>,
    pub flows: Option<std::path::PathBuf>,
    pub dns: super::DnsConfig,
}

impl TryFrom<ExplainArgs> for ExplainConfig {
    type Error = anyhow::Error;

    fn try_from(a: ExplainArgs) -> anyhow::Result<Self> {
        // The DNS options say how a recording's answers name addresses: without one, they
        // would be accepted and never read.
        if a.flows.is_none()
            && (!a.dns.resolvers.is_empty()
                || a.dns.dns_grace != super::DNS_GRACE_DEFAULT
                || a.dns.dns_max_names != super::DNS_MAX_NAMES_DEFAULT)
        {
            anyhow::bail!(
                "--dns-resolver, --dns-grace and --dns-max-names say how a recording's answers name addresses: give them with --flows"
            );
        }
        for n in &a.name {
            let ok = !n.is_empty()
                && n.len() <= 253
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                anyhow::bail!(
                    "--name {n:?}: give a DNS name as an answer has it (letters, digits, '-', '_' and dots; no wildcards), e.g. x.redis.example"
                );
            }
        }
        Ok(ExplainConfig {
            inputs: a.inputs.into(),
            from: a.from,
            to: a.to,
            transport: if a.udp {
                auditor_common::Transport::Udp
            } else {
                auditor_common::Transport::Tcp
            },
            names: a
                .name
                .iter()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            flows: a.flows,
            dns: a.dns.try_into()?,
        })
    }
}
