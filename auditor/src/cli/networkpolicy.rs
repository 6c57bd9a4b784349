//! `auditor networkpolicy`: the policy files, the generation options, the output and the
//! would-break check; and their validated form.

use std::path::PathBuf;

use super::InputArgs;
use crate::verdict::InputFiles;

/// Examples for `auditor networkpolicy --help`, and the inventory entries it reads.
pub const EXAMPLES: &str = "Examples:
  auditor networkpolicy --allowlist allowlist.yaml --inventory inventory.yaml \\
      --overrides overrides.yaml > policies.yaml
  auditor networkpolicy ... --egress -o policies/        # one file per policy
  auditor networkpolicy ... --store store.db --fail-on would-break \\
      --would-break would-break.json

The inventory gives each service's pods:
  services:
    Tenant Service: {kubernetes: {namespace: voice, labels: {app: tenant}}}
  externals:
    Object storage: {addresses: [203.0.113.0/24]}";

/// `auditor networkpolicy`'s arguments.
#[derive(Debug, clap::Args)]
pub struct NetworkInputArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Isolate egress too: each service's pods may connect only to the documented
    /// destinations (and DNS).
    #[arg(long)]
    pub egress: bool,
    /// Where pods resolve names, allowed in every egress policy: NAMESPACE/KEY=VALUE[,...]
    /// (pod labels), or `none`. Default: the --baseline's DNS entry, else
    /// kube-system/k8s-app=kube-dns. Needs --egress.
    #[arg(long, value_name = "NS/LABELS|none", requires = "egress")]
    pub dns: Option<String>,
    /// Write here instead of stdout: a file (all policies, multi-document YAML), or a
    /// directory (existing, or ending in /) for one file per policy.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// A store (`auditor run --store`, `auditor replay --store`): print what the policies
    /// would break, judged on its observed connections.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Also write what would break as JSON (edges in the vocabulary of the events, with
    /// `denied_by`). Needs --store.
    #[arg(long, value_name = "FILE", requires = "store")]
    pub would_break: Option<PathBuf>,
    /// Exit 1 when: `would-break` (an observed connection would be denied). Needs --store.
    #[arg(long, value_enum, value_delimiter = ',', requires = "store")]
    pub fail_on: Vec<NetworkPolicyFailOn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkPolicyFailOn {
    /// An observed connection the generated policies would deny.
    WouldBreak,
}

/// Where the policies go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOutput {
    Stdout,
    File(PathBuf),
    Dir(PathBuf),
}

/// Validated `auditor networkpolicy` settings.
#[derive(Debug, Clone)]
pub struct NetworkPolicyConfig {
    pub inputs: InputFiles,
    pub options: crate::networkpolicy::Options,
    pub output: PolicyOutput,
    pub store: Option<PathBuf>,
    pub would_break: Option<PathBuf>,
    pub fail_on: Vec<NetworkPolicyFailOn>,
    /// --dns as given (None: not given): the platform baseline's DNS entry may supply it,
    /// and when both are given they must agree.
    pub dns_given: Option<Option<crate::networkpolicy::DnsPeer>>,
}

impl TryFrom<NetworkInputArgs> for NetworkPolicyConfig {
    type Error = anyhow::Error;

    fn try_from(a: NetworkInputArgs) -> anyhow::Result<Self> {
        let dns_given = a
            .dns
            .as_deref()
            .map(crate::networkpolicy::DnsPeer::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--dns {e}"))?;
        if let Some(b) = &a.inputs.baseline
            && !b.is_file()
        {
            anyhow::bail!("--baseline {}: no such file", b.display());
        }
        if let Some(s) = &a.store
            && !s.is_file()
        {
            anyhow::bail!("--store {}: no such store", s.display());
        }
        let output = match a.output {
            None => PolicyOutput::Stdout,
            Some(p) if p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/') => {
                PolicyOutput::Dir(p)
            }
            Some(p) => PolicyOutput::File(p),
        };
        Ok(NetworkPolicyConfig {
            inputs: a.inputs.into(),
            options: crate::networkpolicy::Options {
                egress: a.egress,
                // Settled once the baseline is read (`commands::networkpolicy`).
                dns: dns_given
                    .clone()
                    .unwrap_or_else(|| Some(crate::networkpolicy::DnsPeer::kube_dns())),
            },
            output,
            store: a.store,
            would_break: a.would_break,
            fail_on: a.fail_on,
            dns_given,
        })
    }
}
