//! Command line, in two steps (as ripgrep does): clap parses raw arguments, and each
//! command validates them into its own config before anything runs. This file holds the
//! command tree and what several commands share (the policy files, the probe options, the
//! `--fail-on` conditions, reading a token file); each subcommand's file holds its
//! arguments, its examples and its validated config, as `commands/` holds its handler.

mod allowlist;
mod capture;
mod explain;
mod networkpolicy;
mod replay;
mod report;
mod run;
mod schema;

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};

pub use self::{
    allowlist::{AllowlistCommand, ExportFormat},
    capture::{CaptureArgs, CaptureConfig},
    explain::{ExplainArgs, ExplainConfig},
    networkpolicy::{NetworkInputArgs, NetworkPolicyConfig, NetworkPolicyFailOn, PolicyOutput},
    replay::{ReplayArgs, ReplayConfig},
    report::{ReportArgs, ReportCommand, ReportConfig, ReportFormat, ReportInput},
    run::{
        AlertArgs, AlertConfig, HttpArgs, HttpConfig, RunArgs, RunConfig, StoreArgs, StoreConfig,
    },
    schema::{SchemaArgs, SchemaName},
};
use crate::verdict::InputFiles;

#[derive(Debug, Parser)]
#[command(
    name = "auditor",
    version,
    about = "Audit a node's connections against the documented architecture.",
    long_about = "auditor watches every socket connect on this machine with eBPF (TCP active \
and passive opens, UDP connect and sendmsg; IPv4 and IPv6) and, from the documented \
connection allowlist, tells which connections the architecture documents allow and which it \
does not.\n\nStart with `auditor capture` (as root) to see the raw flows, or, without root, \
`auditor replay` on the recorded flows in examples/.",
    after_help = "Environment:
  RUST_LOG=LEVEL           log level and filters on stderr (default: info),
                           e.g. RUST_LOG=debug
  AUDITOR_LOG_FORMAT=json  logs as one JSON object per line, for log collectors
  NODE_NAME=NAME           this node's name in `auditor run` (the chart sets it
                           from spec.nodeName)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every flow this machine makes, one JSON object per line (needs root).
    ///
    /// Attaches the kernel programs (tracepoint sock/inet_sock_set_state, cgroup v2
    /// connect/sendmsg/recvmsg/post_bind hooks and a cgroup skb program for DNS answers, on
    /// the cgroup v2 root) and prints a record at a flow's first connection in each epoch
    /// (--record-interval) and one at the epoch's end with the epoch's further connections,
    /// if any. Each DNS answer a socket receives is a `dns` line (its
    /// names, addresses, TTLs and who asked), in the order the kernel delivered it, so a
    /// replay judges egress by name. Between them, `watch` lines say which span the records
    /// are complete for and what the kernel dropped in it (`auditor replay` takes coverage
    /// from them; --node names the node). Audit only: nothing is ever blocked. Ctrl-C or
    /// SIGTERM detaches the programs, drains what the kernel still holds, and prints a
    /// summary (records, connections, kernel counters) on stderr.
    #[command(after_help = capture::EXAMPLES)]
    Capture(CaptureArgs),
    /// Audit this node continuously: capture, judge, alert, store (needs root).
    ///
    /// Attaches the kernel probes, judges every flow against the allowlist and inventory,
    /// and feeds the sinks: a JSON event per violation edge when first seen (then
    /// aggregated; re-notified at most once per --renotify), Prometheus metrics on
    /// --listen (/metrics, /healthz, /readyz), alerts to Alertmanager (--alertmanager),
    /// and the durable store (--store). SIGHUP, or a change of any policy file, reloads
    /// them; a bad new file is rejected and the old policy keeps running. SIGTERM/Ctrl-C
    /// flushes the store and detaches the probes.
    #[command(after_help = run::EXAMPLES)]
    Run(RunArgs),
    /// Write the compliance report from a store (or merge per-node reports).
    ///
    /// For each documented connection, by its number: observed or not, count, first/last
    /// seen, nodes and example processes; every violation edge with its verdict, counts,
    /// example process and the documented rows it was closest to; coverage (when the
    /// auditor watched, and intervals in which the kernel lost connections marked as not
    /// fully audited); and
    /// a one-line summary. JSON follows docs/report.schema.json; HTML is one
    /// self-contained file with an SVG diagram of the services; JUnit XML is for CI.
    /// The header says where the observations came from (live capture, or replayed from
    /// a recording: then every format says so, and coverage without capture intervals is
    /// unknown), the auditor version, nodes (--expect-nodes: those that never reported),
    /// period, the digests of every input and the report's own digest; --sign adds an ed25519 signature. Exit codes: 0, 1
    /// when a --fail-on condition holds, 2 on errors.
    #[command(after_help = report::EXAMPLES)]
    Report(ReportArgs),
    /// Judge recorded flows against the allowlist: one JSON verdict per flow.
    #[command(long_about = replay::long_about(), after_help = replay::EXAMPLES)]
    Replay(ReplayArgs),
    /// Explain, for humans, how one connection is judged and why.
    ///
    /// Prints how each end resolves through the inventory (which entry, by what), the
    /// documented rows between the two services, and the verdict with its reason. With
    /// --name, judged as if the source had resolved the destination by that DNS name; with
    /// --flows, by the names the source's pod had in a recording, and which answer gave
    /// each.
    #[command(after_help = explain::EXAMPLES)]
    Explain(ExplainArgs),
    /// Generate the Kubernetes NetworkPolicies the documented architecture describes.
    ///
    /// From the allowlist (not from observed traffic, which would make today's violations
    /// policy), and the inventory's `kubernetes:` namespace and labels of each service:
    /// every service with pods is isolated for ingress, and each documented connection
    /// into it becomes an ingress rule from the source's pods (namespaceSelector AND
    /// podSelector), on the documented ports and transport with the overrides applied,
    /// ranges as endPort. With --egress, egress is isolated too: connections to externals
    /// become ipBlock rules from the inventory's addresses, and DNS is allowed (--dns).
    /// Each rule's documented connection number is an annotation (auditor/ingress-N), so
    /// `kubectl describe` shows why it exists. With --baseline, the platform traffic
    /// its entries name is admitted too (Prometheus scrapes on each service's declared
    /// metrics ports, DNS), each rule annotated with its entry. Rows a NetworkPolicy cannot express (no
    /// port and no override, loopback mesh upstreams, services inventoried by address
    /// only) are skipped with a warning that says why; lint warnings are repeated as
    /// comments. With --store: what would break, before anything is applied — observed
    /// connections the policies would deny (with counts and last seen), violations they
    /// would not stop, and documented rows never observed. Exit codes: 0; 1 when a
    /// --fail-on condition holds; 2 on errors.
    #[command(
        name = "networkpolicy",
        after_help = networkpolicy::EXAMPLES
    )]
    NetworkPolicy(NetworkInputArgs),
    /// Import, check and describe documented connection allowlists.
    #[command(subcommand)]
    Allowlist(AllowlistCommand),
    /// Print the JSON Schema of a file the auditor writes or reads.
    ///
    /// Outputs: the daemon's events, the report, what `networkpolicy --would-break`
    /// writes. Inputs: the allowlist, its overrides, the inventory, the platform baseline.
    /// Without a name, lists the names.
    #[command(after_help = schema::EXAMPLES)]
    Schema(SchemaArgs),
}

/// The policy files every judging command reads.
#[derive(Debug, clap::Args)]
pub struct InputArgs {
    /// The documented connection allowlist (YAML or JSON).
    #[arg(long)]
    pub allowlist: PathBuf,
    /// Where each service runs in this deployment.
    #[arg(long)]
    pub inventory: PathBuf,
    /// This deployment's ports for configurable (*) and unknown documented ports.
    #[arg(long)]
    pub overrides: Option<PathBuf>,
    /// The platform baseline: reviewed, named entries for the traffic every cluster
    /// carries that no architecture document lists (DNS, kubelet probes, scrapes). A
    /// flow an entry matches is `platform`, citing the entry; without it, such flows are
    /// violations. An entry that could allow a connection between two documented
    /// services is refused.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
}

impl From<InputArgs> for InputFiles {
    fn from(a: InputArgs) -> Self {
        InputFiles {
            allowlist: a.allowlist,
            inventory: a.inventory,
            overrides: a.overrides,
            baseline: a.baseline,
        }
    }
}

/// How the kernel programs run: the options `capture` and `run` share, with one bound.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Capture")]
pub struct ProbeArgs {
    /// How long an epoch of the kernel's flow maps lasts, e.g. 500ms, 1s, 1m (100ms to 1h).
    /// A flow's first connection in an epoch is recorded at once; the epoch's further
    /// connections of that flow are counted in the kernel and delivered at the epoch's
    /// end. So an active flow is recorded again about this often.
    // Named --report-interval until issue #25: the hidden alias keeps deployed charts' extraArgs
    // working. It was renamed because it has nothing to do with `auditor report`.
    #[arg(
        long,
        default_value = "1s",
        value_parser = humantime::parse_duration,
        alias = "report-interval"
    )]
    pub record_interval: Duration,
    /// How often the node's open sockets (established TCP, connected UDP, TCP listeners of
    /// every network namespace) are enumerated, besides once at start: connections held
    /// open for hours then show as active (hook "existing"), e.g. 30s, 5m (1s to 1d).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub active_interval: Duration,
    /// The cgroup v2 root to attach to (default: found in /proc/self/mountinfo). In a
    /// pod, the host's, mounted by hostPath (e.g. /host/sys/fs/cgroup).
    #[arg(long)]
    pub cgroup_root: Option<PathBuf>,
    /// Which kernel hook sees TCP opens. `auto` takes sock_ops on the cgroup root (the
    /// cheapest: fewer and lighter runs per connection, see docs/benchmarks.md) when the
    /// kernel accepts it, else tp_btf, else the classic tracepoint, which every kernel with
    /// eBPF has. Naming one fails if the kernel refuses it.
    #[arg(long, value_enum, default_value = "auto")]
    pub tcp_hook: crate::capture::probes::TcpHookChoice,
    /// How those open sockets are enumerated: `iterator` is a BPF socket iterator
    /// (needs kernel BTF and `bpf_sock_from_file`, 5.11+; a few ms for 10,000 sockets), `proc`
    /// walks /proc (every process's fds and every namespace's socket tables: several
    /// times the CPU). `auto` uses the iterator and falls back to /proc, saying so.
    #[arg(long, value_enum, default_value = "auto")]
    pub existing_sockets: crate::capture::socket_iter::ExistingSockets,
    /// Do not capture DNS answers. By default a cgroup skb program copies every answer a
    /// socket of the node receives from port 53, so egress is judged by the names each
    /// pod resolved (`dns:` in the inventory) and every egress flow says whether its
    /// address was resolved (`dst.resolution` dns) or used bare. Without it, egress is
    /// judged by address only and `dst.resolution` is left out: unknown, not bare.
    #[arg(long)]
    pub no_dns: bool,
    /// Distinct flows the kernel counts per epoch (1024 to 1048576); there are three such
    /// maps. A flow beyond it is not lost: each connection of it then goes through the
    /// ring buffer on its own, and is lost (and counted, with its epoch) only when that
    /// is full too. Kernel memory: 160 bytes per entry, preallocated (the default takes
    /// 5 MiB per map, 15 MiB for the three; docs/capture.md).
    #[arg(long, default_value_t = auditor_common::FLOWS_MAX_ENTRIES)]
    pub flow_map_entries: u32,
}

/// How DNS answers name egress: the options `run` and `replay` share.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "DNS names")]
pub struct DnsArgs {
    /// A trusted resolver: the cluster DNS or a node-local cache (an address or CIDR;
    /// repeat, or separate with commas). Only names from answers these servers gave to
    /// a socket that asked them are used for verdicts; an answer from any other server
    /// is counted (auditor_dns_answers_total{use="untrusted"}) and never used, so a pod
    /// with its own resolver cannot make an attacker's address a documented service.
    /// The platform baseline's entries that list port 53 name trusted resolvers too.
    #[arg(long = "dns-resolver", value_delimiter = ',', value_name = "ADDR", value_parser = addr_or_net)]
    pub resolvers: Vec<ipnet::IpNet>,
    /// How long past its TTL a name still names its address for a new connection, e.g.
    /// 30s, 2m (0s to 1h). Clients cache answers past their TTL (the JVM for 30 s
    /// whatever the TTL). A connection made while the name was valid keeps it however
    /// long it stays open.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub dns_grace: Duration,
    /// Names held at most (one per pod, address and name), 1,000 to 10,000,000. Past
    /// it the least recently used are evicted and counted (auditor_dns_evictions_total);
    /// 100,000 take about 27 MB (docs/dns.md).
    #[arg(long, default_value_t = DNS_MAX_NAMES_DEFAULT)]
    pub dns_max_names: usize,
}

/// `--dns-grace` and `--dns-max-names` when not given (as their `default_value`s say).
pub(crate) const DNS_GRACE_DEFAULT: Duration = Duration::from_secs(30);
pub(crate) const DNS_MAX_NAMES_DEFAULT: usize = 100_000;

/// An address (10.96.0.10) or a network (10.96.0.0/24).
fn addr_or_net(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!("{text:?} is neither an address (10.96.0.10) nor a network (10.96.0.0/24)")
        })
}

/// Validated `DnsArgs`.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub resolvers: Vec<ipnet::IpNet>,
    pub limits: crate::dns::NameLimits,
}

impl TryFrom<DnsArgs> for DnsConfig {
    type Error = anyhow::Error;

    fn try_from(a: DnsArgs) -> anyhow::Result<Self> {
        if a.dns_grace > Duration::from_secs(3600) {
            anyhow::bail!(
                "--dns-grace {}: give at most 1h (a name kept longer past its TTL outlives any address change it should follow)",
                humantime::format_duration(a.dns_grace)
            );
        }
        if !(1_000..=10_000_000).contains(&a.dns_max_names) {
            anyhow::bail!("--dns-max-names {}: give 1000 to 10000000", a.dns_max_names);
        }
        Ok(DnsConfig {
            resolvers: a.resolvers.into_iter().map(|n| n.trunc()).collect(),
            limits: crate::dns::NameLimits {
                max_names: a.dns_max_names,
                grace: a.dns_grace,
                ..crate::dns::NameLimits::default()
            },
        })
    }
}

impl DnsConfig {
    pub fn names(&self) -> crate::dns::Names {
        crate::dns::Names::new(self.limits, self.resolvers.clone())
    }
}

/// Validated `ProbeArgs`.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub record_interval: Duration,
    pub active_interval: Duration,
    pub cgroup_root: Option<PathBuf>,
    pub tcp_hook: crate::capture::probes::TcpHookChoice,
    pub existing_sockets: crate::capture::socket_iter::ExistingSockets,
    /// Capture DNS answers (not `--no-dns`).
    pub dns: bool,
    pub flow_map_entries: u32,
}

impl ProbeConfig {
    /// What `capture` and `run` load the probes with; `self_tgid` is the caller, whose own
    /// connections the probes skip.
    pub fn options(&self, self_tgid: u32) -> crate::capture::ProbeOptions {
        crate::capture::ProbeOptions {
            self_tgid,
            record_interval: self.record_interval,
            active_interval: self.active_interval,
            cgroup_root: self.cgroup_root.clone(),
            tcp_hook: self.tcp_hook,
            existing_sockets: self.existing_sockets,
            dns: self.dns,
            flow_map_entries: self.flow_map_entries,
        }
    }
}

/// `--store FILE` of `run` and `replay`: its directory must exist (the file is made).
pub(crate) fn store_dir_exists(store: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = store.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        anyhow::bail!(
            "--store {}: the directory {} does not exist",
            store.display(),
            dir.display()
        );
    }
    Ok(())
}

impl TryFrom<ProbeArgs> for ProbeConfig {
    type Error = anyhow::Error;

    fn try_from(a: ProbeArgs) -> anyhow::Result<Self> {
        // Each epoch ends with a wait for running programs (an RCU grace period, a few
        // milliseconds): shorter epochs would spend their time waiting.
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(3600));
        if a.record_interval < min || a.record_interval > max {
            anyhow::bail!(
                "--record-interval {} is out of range: give 100ms to 1h",
                humantime::format_duration(a.record_interval)
            );
        }
        if a.active_interval < Duration::from_secs(1)
            || a.active_interval > Duration::from_secs(86_400)
        {
            anyhow::bail!(
                "--active-interval {} is out of range: give 1s to 1d",
                humantime::format_duration(a.active_interval)
            );
        }
        if !(1024..=1_048_576).contains(&a.flow_map_entries) {
            anyhow::bail!(
                "--flow-map-entries {}: give 1024 to 1048576",
                a.flow_map_entries
            );
        }
        Ok(ProbeConfig {
            flow_map_entries: a.flow_map_entries,
            record_interval: a.record_interval,
            active_interval: a.active_interval,
            cgroup_root: a.cgroup_root,
            tcp_hook: a.tcp_hook,
            existing_sockets: a.existing_sockets,
            dns: !a.no_dns,
        })
    }
}

/// A bearer token from a file (a mounted Secret): trimmed, and refused when empty or
/// not a valid header value, so a broken mount fails at start, not at the first request.
pub fn read_token(path: &std::path::Path, flag: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{flag} {}: cannot read: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        anyhow::bail!("{flag} {}: the file is empty", path.display());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        anyhow::bail!(
            "{flag} {}: the token must be printable ASCII without spaces",
            path.display()
        );
    }
    Ok(token.to_string())
}

/// A condition that makes `report` or `replay` exit 1, for CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Any violation edge (replay: any flow not allowed).
    Violations,
    /// A documented connection never observed.
    NeverObserved,
    /// Part of the period not fully audited (report: not running, connections lost, an
    /// expected node that never reported, or coverage unknown;
    /// replay: a record that could not be read).
    Unaudited,
    /// Report: observations that are not live capture (a store written by `auditor
    /// replay --store`, or one that does not record where its observations came from).
    Replayed,
}

#[cfg(test)]
pub(crate) mod tests {
    use clap::Parser;

    use super::*;

    pub(crate) fn run_config(extra: &[&str]) -> anyhow::Result<RunConfig> {
        let mut argv = vec!["auditor", "run", "--allowlist", "a", "--inventory", "i"];
        argv.extend(extra);
        match Cli::try_parse_from(argv)?.command {
            Command::Run(a) => RunConfig::try_from(a),
            _ => unreachable!(),
        }
    }

    fn capture_config(extra: &[&str]) -> anyhow::Result<CaptureConfig> {
        let mut argv = vec!["auditor", "capture"];
        argv.extend(extra);
        match Cli::try_parse_from(argv)?.command {
            Command::Capture(a) => CaptureConfig::try_from(a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn dns_options_take_addresses_or_networks_and_have_bounds() {
        let c = run_config(&[
            "--dns-resolver",
            "10.96.0.10,fd00::53",
            "--dns-resolver",
            "169.254.20.0/24",
        ])
        .unwrap();
        let got: Vec<String> = c.dns.resolvers.iter().map(ToString::to_string).collect();
        assert_eq!(got, ["10.96.0.10/32", "fd00::53/128", "169.254.20.0/24"]);
        assert_eq!(c.dns.limits.grace, DNS_GRACE_DEFAULT);
        assert_eq!(c.dns.limits.max_names, DNS_MAX_NAMES_DEFAULT);
        // Held connections stay named across three walks of open sockets.
        let c = run_config(&["--active-interval", "2h"]).unwrap();
        assert_eq!(c.dns.limits.hold, Duration::from_secs(6 * 3600));
        assert!(c.probes.dns, "DNS answers are captured unless --no-dns");
        assert!(!run_config(&["--no-dns"]).unwrap().probes.dns);
        let e = run_config(&["--dns-resolver", "kube-dns"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither an address"), "{e}");
        let e = run_config(&["--dns-grace", "2h"]).unwrap_err().to_string();
        assert!(e.contains("--dns-grace 2h: give at most 1h"), "{e}");
        let e = run_config(&["--dns-max-names", "10"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--dns-max-names 10"), "{e}");
    }

    #[test]
    fn a_shared_option_has_one_bound_in_every_command() {
        for bad in ["5ms", "2h"] {
            let arg = ["--record-interval", bad];
            let (r, c) = (run_config(&arg), capture_config(&arg));
            assert!(r.is_err() && c.is_err(), "{bad}: run {r:?}, capture {c:?}");
            assert_eq!(
                r.unwrap_err().to_string(),
                c.unwrap_err().to_string(),
                "the same words"
            );
        }
        let ok = run_config(&["--record-interval", "500ms"]).unwrap();
        assert_eq!(ok.probes.record_interval, Duration::from_millis(500));
    }

    #[test]
    fn the_old_report_interval_name_still_sets_the_record_interval() {
        // Deployments written before the rename pass --report-interval.
        let c = capture_config(&["--report-interval=250ms"]).unwrap();
        assert_eq!(c.probes.record_interval, Duration::from_millis(250));
    }
}
