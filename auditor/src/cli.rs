//! Command line, in two steps (as ripgrep does): clap parses raw arguments here, and each
//! command validates them into its own config before anything runs.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};

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
    after_help = "Environment:\n  \
RUST_LOG=LEVEL          log level and filters on stderr (default: info), e.g. RUST_LOG=debug\n  \
AUDITOR_LOG_FORMAT=json logs as one JSON object per line, for log collectors\n  \
NODE_NAME=NAME          this node's name in `auditor run` (the chart sets it from spec.nodeName)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every flow this machine makes, one JSON object per line (needs root).
    ///
    /// Attaches the kernel programs (tracepoint sock/inet_sock_set_state and cgroup v2
    /// connect/sendmsg/post_bind hooks on the cgroup v2 root) and prints a record when a
    /// flow is first seen and, while it stays active, at most once per --report-interval
    /// with the number of connections since the previous record. Audit only: nothing is
    /// ever blocked. Ctrl-C or SIGTERM detaches the programs, drains what the kernel still
    /// holds, and prints a summary (records, connections, kernel counters) on stderr.
    #[command(after_help = "Example:\n  sudo auditor capture | jq 'select(.transport == \"udp\")'")]
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
    #[command(after_help = "Example:\n  \
sudo auditor run --allowlist allowlist.yaml --inventory inventory.yaml --store /var/lib/auditor/store.db\n\n\
Environment:\n  \
NODE_NAME=NAME          this node's name (--node); RUST_LOG, AUDITOR_LOG_FORMAT as for every command")]
    Run(RunArgs),
    /// Write the compliance report from a store (or merge per-node reports).
    ///
    /// For each documented connection, by its number: observed or not, count, first/last
    /// seen, nodes and example processes; every violation edge with its verdict, counts,
    /// example process and the documented rows it was closest to; coverage (when the
    /// auditor watched, and intervals with kernel drops marked as not fully audited); and
    /// a one-line summary. JSON follows docs/report.schema.json; HTML is one
    /// self-contained file with an SVG diagram of the services; JUnit XML is for CI.
    /// The header names the auditor version, nodes, period, the digests of every input
    /// and the report's own digest; --sign adds an ed25519 signature. Exit codes: 0, 1
    /// when a --fail-on condition holds, 2 on errors.
    #[command(after_help = "Examples:\n  \
auditor report --store store.db -o report.html\n  \
auditor report --store store.db --since 24h --format markdown\n  \
auditor report --merge node-a.json node-b.json -o cluster.json\n  \
auditor report --collect http://auditor-nodes.auditor.svc:9977 -o cluster.html\n  \
auditor report --prometheus http://prometheus:9090 --allowlist allowlist.yaml --since 7d -o cluster.html\n  \
auditor report --store store.db --fail-on violations,unaudited -o junit.xml\n  \
auditor report --store store.db -o report.json --sign key.pem\n  \
auditor report verify report.json --key key.pub.pem")]
    Report(ReportArgs),
    /// Judge recorded flows against the allowlist: one JSON verdict per flow.
    ///
    /// Reads flow records (the JSON lines `auditor capture` prints; only transport,
    /// src_addr, dst_addr and dst_port are required) from FLOWS or stdin, resolves both
    /// ends through the inventory, and prints one verdict per flow: allowed, port_drift,
    /// protocol_drift, undocumented_egress, unknown_destination or unknown_source, with
    /// the documented connection number(s) it relates to. A bad line is reported with its
    /// line number and skipped. A connection seen at both ends on this node is judged once.
    /// Needs no root. A summary goes to stderr. Exits 2 on errors, among them a replay in
    /// which no record could be read; --fail-on gives exit 1 for CI gates.
    #[command(after_help = "Examples:\n  \
auditor replay --allowlist allowlist/voice-microservices.yaml --inventory examples/inventory.yaml examples/flows.jsonl\n  \
sudo auditor capture --duration 30s | auditor replay --allowlist a.yaml --inventory i.yaml")]
    Replay(ReplayArgs),
    /// Explain, for humans, how one connection is judged and why.
    ///
    /// Prints how each end resolves through the inventory (which entry, by what), the
    /// documented rows between the two services, and the verdict with its reason.
    #[command(after_help = "Example:\n  \
auditor explain --allowlist a.yaml --inventory i.yaml --from 10.0.1.5 --to 10.0.2.7:9200")]
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
    /// `kubectl describe` shows why it exists. Rows a NetworkPolicy cannot express (no
    /// port and no override, loopback mesh upstreams, services inventoried by address
    /// only) are skipped with a warning that says why; lint warnings are repeated as
    /// comments. With --store: what would break, before anything is applied — observed
    /// connections the policies would deny (with counts and last seen), violations they
    /// would not stop, and documented rows never observed. Exit codes: 0; 1 when a
    /// --fail-on condition holds; 2 on errors.
    #[command(
        name = "networkpolicy",
        after_help = "Examples:\n  \
auditor networkpolicy --allowlist allowlist.yaml --inventory inventory.yaml --overrides overrides.yaml > policies.yaml\n  \
auditor networkpolicy ... --egress -o policies/            # one file per policy\n  \
auditor networkpolicy ... --store store.db --fail-on would-break --would-break would-break.json\n\n\
The inventory gives each service's pods:\n  \
services:\n    \
Tenant Service: {kubernetes: {namespace: voice, labels: {app: tenant}}}\n  \
externals:\n    \
Object storage: {addresses: [203.0.113.0/24]}"
    )]
    NetworkPolicy(NetworkInputArgs),
    /// Import, check and describe documented connection allowlists.
    #[command(subcommand)]
    Allowlist(AllowlistCommand),
    /// Print the JSON Schema of an output (the daemon's events, the report, what
    /// `networkpolicy --would-break` writes) or of the platform baseline file.
    #[command(
        after_help = "Example:\n  auditor schema event > event.schema.json\n  auditor schema baseline > baseline.schema.json"
    )]
    Schema {
        /// Which output's schema.
        #[arg(value_enum)]
        output: SchemaOutput,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaOutput {
    /// The events `auditor run` writes (docs/event.schema.json).
    Event,
    /// The JSON report (docs/report.schema.json).
    Report,
    /// What `auditor networkpolicy --would-break` writes (docs/would-break.schema.json).
    WouldBreak,
    /// The platform baseline file, `--baseline` (docs/baseline.schema.json).
    Baseline,
}

#[derive(Debug, Subcommand)]
pub enum AllowlistCommand {
    /// Read the connections table of an architecture document and write the allowlist.
    ///
    /// Reads a document's connections table, with columns Connection, Source, Destination,
    /// Protocol (and optionally Transport), Port, Classification and a description (header
    /// synonyms such as "Source service", "Port(s)" and "Data" work). The format is told
    /// from the header line: text extracted from a PDF or TSV (tabs), Markdown, CSV (`,` or
    /// `;`), space-padded columns, MediaWiki tables, a saved HTML page, or a PDF itself
    /// (read with `pdftotext` from poppler-utils). Encodings: UTF-8 (with or without BOM),
    /// UTF-16 with BOM, and Windows-1252.
    ///
    /// Handles repeated page-break headers, rows split across pages, page numbers, footers
    /// and footnotes, port lists (8080, 8443), alternatives (9092/9093*), configurable
    /// ports (*), thousands separators (8,443), ranges, N/A and "Not known" ports,
    /// versioned (Redis 6.x) and parenthesised alias names, and compound protocols
    /// (RTP/RTCP is UDP, TCP/UDP is both). Every line after the header must be placed: one
    /// that cannot be, or a row that cannot be read, is an error FILE:LINE saying what was
    /// expected there (exit 2). Warnings (an unknown protocol) keep the row.
    #[command(
        after_help = "Examples:\n  auditor allowlist import architecture.pdf -o allowlist.yaml\n  auditor allowlist import saved-page.html --lenient -o allowlist.yaml"
    )]
    Import {
        /// The document: its text, an HTML page, or a PDF.
        document: PathBuf,
        /// Write here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The allowlist file's format: YAML (for review in Git) or the same document as JSON.
        #[arg(long, value_enum, default_value = "yaml")]
        format: ExportFormat,
        /// Skip lines that cannot be placed and rows that cannot be read, with a warning
        /// each, instead of failing; the summary says how many lines were skipped.
        #[arg(long)]
        lenient: bool,
    },
    /// Validate an allowlist (and overrides) and print lint warnings.
    ///
    /// Exits 0 when the files are valid (warnings included), 1 with FILE:LINE:COLUMN errors
    /// when they are not, 2 when one cannot be read. Lints: a datastore or broker as a
    /// source (likely a reversed row), connections a row's text describes that no row
    /// lists, rows that repeat the same connection, rows with no documented port, a port
    /// below 20 in a list (a thousands separator misread?) and rows whose transport is
    /// unknown. With --overrides it lints what the auditor will judge: the overrides
    /// applied, and an override that changes nothing is a warning (override-no-effect).
    Check {
        /// The allowlist file to check (YAML or JSON, as `allowlist import` writes it).
        file: PathBuf,
        /// Deployment overrides for configurable (*) and unknown ports.
        #[arg(long)]
        overrides: Option<PathBuf>,
    },
    /// Print the JSON Schema of the allowlist file (or, with --overrides, of the overrides file).
    Schema {
        /// Print the schema of the overrides file instead of the allowlist's.
        #[arg(long)]
        overrides: bool,
    },
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
    /// How often an active flow is reported again by the kernel programs, e.g. 500ms, 1s,
    /// 1m (10ms to 1h).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub report_interval: Duration,
    /// How often the node's open sockets (established TCP, connected UDP, TCP listeners of
    /// every network namespace) are enumerated, besides once at start: connections held
    /// open for hours then show as active (hook "existing"), e.g. 30s, 5m (1s to 1d).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub active_interval: Duration,
    /// The cgroup v2 root to attach to (default: found in /proc/self/mountinfo). In a
    /// pod, the host's, mounted by hostPath (e.g. /host/sys/fs/cgroup).
    #[arg(long)]
    pub cgroup_root: Option<PathBuf>,
    /// Which kernel hook sees TCP opens. `auto` takes tp_btf (cheaper to invoke) when the
    /// kernel accepts it, else the classic tracepoint, which every kernel with eBPF has.
    /// Naming one fails if the kernel refuses it.
    #[arg(long, value_enum, default_value = "auto")]
    pub tcp_hook: crate::capture::probes::TcpHookChoice,
    /// How those open sockets are enumerated: `iterator` is a BPF socket iterator
    /// (needs kernel BTF and `bpf_sock_from_file`, 5.11+; a few ms for 10,000 sockets), `proc`
    /// walks /proc (every process's fds and every namespace's socket tables: several
    /// times the CPU). `auto` uses the iterator and falls back to /proc, saying so.
    #[arg(long, value_enum, default_value = "auto")]
    pub existing_sockets: crate::capture::socket_iter::ExistingSockets,
}

/// Validated `ProbeArgs`.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub report_interval: Duration,
    pub active_interval: Duration,
    pub cgroup_root: Option<PathBuf>,
    pub tcp_hook: crate::capture::probes::TcpHookChoice,
    pub existing_sockets: crate::capture::socket_iter::ExistingSockets,
}

impl TryFrom<ProbeArgs> for ProbeConfig {
    type Error = anyhow::Error;

    fn try_from(a: ProbeArgs) -> anyhow::Result<Self> {
        let (min, max) = (Duration::from_millis(10), Duration::from_secs(3600));
        if a.report_interval < min || a.report_interval > max {
            anyhow::bail!(
                "--report-interval {} is out of range: give 10ms to 1h",
                humantime::format_duration(a.report_interval)
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
        Ok(ProbeConfig {
            report_interval: a.report_interval,
            active_interval: a.active_interval,
            cgroup_root: a.cgroup_root,
            tcp_hook: a.tcp_hook,
            existing_sockets: a.existing_sockets,
        })
    }
}

/// The durable store of `auditor run`.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Store")]
pub struct StoreArgs {
    /// SQLite file for durable observations (created if missing). Without it nothing is kept.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// How often observations are committed to the store.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub store_flush: Duration,
    /// Observations not seen for this long are deleted from the store.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    pub retention: Duration,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: Option<PathBuf>,
    pub flush: Duration,
    pub retention: Duration,
}

impl TryFrom<StoreArgs> for StoreConfig {
    type Error = anyhow::Error;

    fn try_from(a: StoreArgs) -> anyhow::Result<Self> {
        nonzero(&[
            ("--store-flush", a.store_flush),
            ("--retention", a.retention),
        ])?;
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
        Ok(StoreConfig {
            path: a.store,
            flush: a.store_flush,
            retention: a.retention,
        })
    }
}

/// How violations are told: events, and Alertmanager.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Events and alerts")]
pub struct AlertArgs {
    /// Where violation events go, one JSON object per line: a file (appended) or `-`.
    #[arg(long, default_value = "-")]
    pub events: String,
    /// Alertmanager to send alerts to, e.g. http://alertmanager:9093 (http only).
    #[arg(long)]
    pub alertmanager: Option<String>,
    /// A violation edge still active is announced again at most this often.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub renotify: Duration,
    /// An edge not seen for this long resolves its alert.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub resolve_after: Duration,
    /// How often active alerts are re-sent to Alertmanager.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub alert_resend: Duration,
}

#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// None: stdout.
    pub events: Option<PathBuf>,
    pub alertmanager: Option<String>,
    pub renotify: Duration,
    pub resolve_after: Duration,
    pub resend: Duration,
}

impl TryFrom<AlertArgs> for AlertConfig {
    type Error = anyhow::Error;

    fn try_from(a: AlertArgs) -> anyhow::Result<Self> {
        nonzero(&[
            ("--resolve-after", a.resolve_after),
            ("--alert-resend", a.alert_resend),
        ])?;
        if let Some(am) = &a.alertmanager
            && !am.starts_with("http://")
        {
            anyhow::bail!(
                "--alertmanager {am:?}: give an http:// URL (TLS is not supported; use an in-cluster address)"
            );
        }
        Ok(AlertConfig {
            events: (a.events != "-").then(|| PathBuf::from(a.events)),
            alertmanager: a.alertmanager,
            renotify: a.renotify,
            resolve_after: a.resolve_after,
            resend: a.alert_resend,
        })
    }
}

/// The daemon's HTTP endpoints.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpArgs {
    /// Address for /metrics, /healthz, /readyz and /report.
    #[arg(long, default_value = "127.0.0.1:9977")]
    pub listen: std::net::SocketAddr,
    /// A file holding the bearer token /report requires (read once at start; surrounding
    /// whitespace is ignored). Without it /report is open: keep --listen on loopback or
    /// behind a NetworkPolicy. /metrics, /healthz and /readyz never need it.
    #[arg(long)]
    pub report_token_file: Option<PathBuf>,
    /// A client must send a request's headers within this long, or it is disconnected.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_header_timeout: Duration,
    /// A connection that sends and receives nothing for this long is closed (a request
    /// being answered is finished first).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub http_idle_timeout: Duration,
    /// Open HTTP connections at most; further ones are closed at once and counted in
    /// auditor_http_rejected_total{reason="connection_limit"}.
    #[arg(long, default_value_t = 64)]
    pub http_max_connections: usize,
}

/// Validated HTTP settings.
#[derive(Clone)]
pub struct HttpConfig {
    pub listen: std::net::SocketAddr,
    /// The bearer token /report requires, if any.
    pub report_token: Option<String>,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl std::fmt::Debug for HttpConfig {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("report_token", &self.report_token.as_ref().map(|_| "<set>"))
            .field("header_timeout", &self.header_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl TryFrom<HttpArgs> for HttpConfig {
    type Error = anyhow::Error;

    fn try_from(a: HttpArgs) -> anyhow::Result<Self> {
        nonzero(&[
            ("--http-header-timeout", a.http_header_timeout),
            ("--http-idle-timeout", a.http_idle_timeout),
        ])?;
        if !(1..=65_536).contains(&a.http_max_connections) {
            anyhow::bail!(
                "--http-max-connections {}: give 1 to 65536",
                a.http_max_connections
            );
        }
        let report_token = a
            .report_token_file
            .map(|p| read_token(&p, "--report-token-file"))
            .transpose()?;
        Ok(HttpConfig {
            listen: a.listen,
            report_token,
            header_timeout: a.http_header_timeout,
            idle_timeout: a.http_idle_timeout,
            max_connections: a.http_max_connections,
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

fn nonzero(durations: &[(&str, Duration)]) -> anyhow::Result<()> {
    for (name, d) in durations {
        if d.is_zero() {
            anyhow::bail!("{name} must be longer than 0");
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub probes: ProbeArgs,
    /// This node's name in events, alerts and the store.
    #[arg(long, env = "NODE_NAME")]
    pub node: Option<String>,
    /// How often the policy files are checked for changes. A changed file is loaded once
    /// it is unchanged (size, mtime, content) across two checks, so a file still being
    /// written is never loaded; replacing it by an atomic rename is best.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub reload_poll: Duration,
    /// Judge only flows touching these networks (comma-separated CIDRs), e.g. the pod
    /// network; others are counted in auditor_out_of_scope_connections_total. Default: all.
    #[arg(long, value_delimiter = ',')]
    pub scope: Vec<ipnet::IpNet>,
    /// Identify pods and Services from the Kubernetes API (in-cluster config, or
    /// KUBECONFIG), matched to documented services by the inventory's `kubernetes:` entries.
    #[arg(long)]
    pub kubernetes: bool,
    /// Distinct edges kept apart in memory, and violation series per node: each of the
    /// violation series, the edges held for events and alerts, and the edges pending a
    /// store commit holds at most this many. Past it, new edges are counted in one
    /// overflow edge per verdict and transport (src and dst "_other", port 0), logged once
    /// and counted in auditor_overflow_sightings_total; totals still add up. Worst case
    /// per node: N + 10 series in each of auditor_violations_total and
    /// auditor_violation_last_seen_timestamp_seconds.
    #[arg(long, default_value_t = 1000)]
    pub max_violation_series: usize,
}

/// Validated `auditor run` settings, in the groups of its arguments.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub inputs: InputFiles,
    pub store: StoreConfig,
    pub alerts: AlertConfig,
    pub http: HttpConfig,
    pub probes: ProbeConfig,
    pub node: String,
    pub reload_poll: Duration,
    pub scope: Vec<ipnet::IpNet>,
    pub kubernetes: bool,
    pub max_violation_series: usize,
}

impl TryFrom<RunArgs> for RunConfig {
    type Error = anyhow::Error;

    fn try_from(a: RunArgs) -> anyhow::Result<Self> {
        nonzero(&[("--reload-poll", a.reload_poll)])?;
        if !(1..=100_000).contains(&a.max_violation_series) {
            anyhow::bail!(
                "--max-violation-series {}: give 1 to 100000 (each edge held costs memory on every node, and each series a time series in Prometheus)",
                a.max_violation_series
            );
        }
        let node = a.node.filter(|n| !n.is_empty()).unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "unknown".into())
        });
        Ok(RunConfig {
            inputs: a.inputs.into(),
            store: a.store.try_into()?,
            alerts: a.alerts.try_into()?,
            http: a.http.try_into()?,
            probes: a.probes.try_into()?,
            node,
            reload_poll: a.reload_poll,
            scope: a.scope,
            kubernetes: a.kubernetes,
            max_violation_series: a.max_violation_series,
        })
    }
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub action: Option<ReportCommand>,
    /// The daemon's store (`auditor run --store`, or `auditor replay --store`).
    #[arg(long, conflicts_with = "merge")]
    pub store: Option<PathBuf>,
    /// Combine these per-node JSON reports into one cluster report.
    #[arg(long, num_args = 1.., conflicts_with_all = ["since", "until", "allowlist"])]
    pub merge: Vec<PathBuf>,
    /// The allowlist to report against (default: the one the store recorded).
    #[arg(long)]
    pub allowlist: Option<PathBuf>,
    /// Only observations from this time on: RFC 3339, or a duration ago (24h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Only observations up to this time: RFC 3339, or a duration ago.
    #[arg(long)]
    pub until: Option<String>,
    /// The report's format. Default: from the extension of -o (.json, .md, .html, .xml for
    /// JUnit, .pdf), else json.
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Write here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Print the JSON Schema of the report and exit.
    #[arg(long, conflicts_with_all = ["store", "merge", "collect", "prometheus", "output", "format", "sign", "fail_on"])]
    pub schema: bool,
    /// Fetch every node's report from `auditor run`'s /report and merge them, e.g.
    /// http://auditor-nodes.auditor.svc:9977 (a name resolving to every daemon, as a
    /// headless Service does). Repeatable.
    #[arg(long, conflicts_with_all = ["store", "merge", "since", "until", "allowlist"])]
    pub collect: Vec<String>,
    /// Compute the cluster report from Prometheus (or Thanos/Mimir: anything with the
    /// Prometheus HTTP API) instead of asking the daemons: PromQL over the series every
    /// daemon exports, job="auditor" as the chart's ServiceMonitor labels them, e.g.
    /// http://prometheus.monitoring.svc:9090. Evidence of replaced nodes is kept.
    /// Needs --allowlist (the one the daemons run with; checked against the digest
    /// they export). --since defaults to 24h, --until to now. What Prometheus cannot
    /// know (example processes, directions) is listed in the report's limits.
    #[arg(long, value_name = "URL", conflicts_with_all = ["store", "merge", "collect"], requires = "allowlist")]
    pub prometheus: Option<String>,
    /// With --prometheus: the resolution of the counts (a subquery step), e.g. 1m. At
    /// least Prometheus' scrape interval is wise. Default: the period / 2000, at least 1s.
    #[arg(long, value_parser = humantime::parse_duration, requires = "prometheus")]
    pub step: Option<std::time::Duration>,
    /// With --collect: a file holding the bearer token the daemons' /report requires
    /// (their --report-token-file), sent as `Authorization: Bearer`.
    #[arg(long, env = "AUDITOR_REPORT_TOKEN_FILE", requires = "collect")]
    pub token_file: Option<PathBuf>,
    /// Exit 1 when the report shows this (comma-separated or repeated): `violations`
    /// (any violation edge), `never-observed` (a documented connection never seen),
    /// `unaudited` (part of the period not watched, or watched with kernel drops). The
    /// report is still written. Errors exit 2.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub fail_on: Vec<FailOn>,
    /// Sign the written report with this ed25519 private key (PKCS#8 PEM, as
    /// `openssl genpkey -algorithm ed25519 -out key.pem` writes it): the signature goes
    /// to OUTPUT.sig. Needs -o. Check it with `auditor report verify`.
    #[arg(long, value_name = "KEY", requires = "output")]
    pub sign: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Check that a report is unedited: its signature (REPORT.sig) against the public key,
    /// and, for a JSON report, its own digest against its content.
    ///
    /// Exits 0 when the report verifies, 1 when it does not (edited, or signed by another
    /// key), 2 on errors (a file missing or unreadable).
    #[command(after_help = "Example:\n  \
openssl genpkey -algorithm ed25519 -out key.pem && openssl pkey -in key.pem -pubout -out key.pub.pem\n  \
auditor report --store store.db -o report.json --sign key.pem\n  \
auditor report verify report.json --key key.pub.pem")]
    Verify {
        /// The report file as written (any format).
        report: PathBuf,
        /// The signer's ed25519 public key (SPKI PEM: `openssl pkey -pubout`).
        #[arg(long)]
        key: PathBuf,
        /// The signature file (default: REPORT.sig).
        #[arg(long)]
        signature: Option<PathBuf>,
    },
}

/// A condition that makes `report` or `replay` exit 1, for CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Any violation edge (replay: any flow not allowed).
    Violations,
    /// A documented connection never observed.
    NeverObserved,
    /// Part of the period not fully audited (report: not running, or kernel drops;
    /// replay: a record that could not be read).
    Unaudited,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Follows docs/report.schema.json.
    Json,
    /// For pull requests and wikis.
    Markdown,
    /// One self-contained file with an SVG diagram of the services.
    Html,
    /// JUnit XML for CI: a testcase per documented row and per violation edge.
    Junit,
    /// The HTML report printed by headless Chromium (/usr/bin/chromium, or $CHROMIUM).
    Pdf,
}

impl ReportFormat {
    /// The format a file name asks for: `.json`, `.md`/`.markdown`, `.html`/`.htm`, `.xml`
    /// (JUnit), `.pdf`.
    pub fn from_extension(path: &std::path::Path) -> Option<ReportFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(ReportFormat::Json),
            "md" | "markdown" => Some(ReportFormat::Markdown),
            "html" | "htm" => Some(ReportFormat::Html),
            "xml" => Some(ReportFormat::Junit),
            "pdf" => Some(ReportFormat::Pdf),
            _ => None,
        }
    }
}

/// Where `auditor report` reads its observations from: exactly one source.
#[derive(Debug, Clone)]
pub enum ReportInput {
    Schema,
    Verify {
        report: PathBuf,
        key: PathBuf,
        signature: Option<PathBuf>,
    },
    /// A store, over a period (unix ms; None = open).
    Store {
        path: PathBuf,
        allowlist: Option<PathBuf>,
        since: Option<i64>,
        until: Option<i64>,
    },
    Merge(Vec<PathBuf>),
    /// Daemons to ask for /report, and the bearer token to send.
    Collect {
        urls: Vec<String>,
        token: Option<String>,
    },
    /// Prometheus' HTTP API over a period (unix ms).
    Prometheus {
        url: String,
        allowlist: PathBuf,
        since: i64,
        until: i64,
        step: Option<std::time::Duration>,
    },
}

/// Validated `auditor report` settings.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    pub input: ReportInput,
    pub format: ReportFormat,
    pub output: Option<PathBuf>,
    pub fail_on: Vec<FailOn>,
    pub sign: Option<PathBuf>,
}

impl TryFrom<ReportArgs> for ReportConfig {
    type Error = anyhow::Error;

    fn try_from(a: ReportArgs) -> anyhow::Result<Self> {
        use anyhow::Context;
        let when = |flag: &str, v: Option<String>| {
            v.as_deref()
                .map(crate::report::parse_when)
                .transpose()
                .with_context(|| flag.to_string())
        };
        let input = if let Some(ReportCommand::Verify {
            report,
            key,
            signature,
        }) = a.action
        {
            ReportInput::Verify {
                report,
                key,
                signature,
            }
        } else if a.schema {
            ReportInput::Schema
        } else if !a.collect.is_empty() {
            if let Some(bad) = a.collect.iter().find(|u| !u.starts_with("http://")) {
                anyhow::bail!("--collect {bad}: give an http:// URL");
            }
            ReportInput::Collect {
                urls: a.collect,
                token: a
                    .token_file
                    .map(|p| read_token(&p, "--token-file"))
                    .transpose()?,
            }
        } else if let Some(url) = a.prometheus {
            if !url.starts_with("http://") {
                anyhow::bail!(
                    "--prometheus {url}: give the Prometheus base URL over plain http, e.g. \
                     http://prometheus:9090 (https is not built in: reach it through a local \
                     proxy or `kubectl port-forward`)"
                );
            }
            let allowlist = a
                .allowlist
                .context("--prometheus needs --allowlist: Prometheus holds no allowlist")?;
            let since =
                when("--since", Some(a.since.unwrap_or_else(|| "24h".into())))?.expect("given");
            let until = match when("--until", a.until)? {
                Some(u) => u,
                None => crate::model::time::unix_ms(std::time::SystemTime::now()),
            };
            if until <= since {
                anyhow::bail!("--since must be before --until");
            }
            ReportInput::Prometheus {
                url,
                allowlist,
                since,
                until,
                step: a.step,
            }
        } else if !a.merge.is_empty() {
            ReportInput::Merge(a.merge)
        } else if let Some(path) = a.store {
            ReportInput::Store {
                path,
                allowlist: a.allowlist,
                since: when("--since", a.since)?,
                until: when("--until", a.until)?,
            }
        } else {
            anyhow::bail!(
                "report needs its input; give one of:\n  \
                 --store FILE        a store written by `auditor run` or `auditor replay --store`\n  \
                 --merge A.json ...  per-node JSON reports to combine\n  \
                 --collect URL       live daemons to ask for their /report\n  \
                 --prometheus URL    Prometheus scraping the daemons (with --allowlist)\n  \
                 --schema            print the report's JSON Schema\n\
                 See `auditor report --help`."
            )
        };
        let inferred = a.output.as_deref().and_then(ReportFormat::from_extension);
        let format = match (a.format, inferred) {
            (Some(f), _) => f,
            (None, Some(f)) => f,
            (None, None) => {
                if let Some(o) = &a.output {
                    eprintln!(
                        "auditor: note: {} has no .json/.md/.html/.xml/.pdf extension: writing JSON (give --format)",
                        o.display()
                    );
                }
                ReportFormat::Json
            }
        };
        if format == ReportFormat::Pdf && a.output.is_none() {
            anyhow::bail!("--format pdf needs -o FILE.pdf");
        }
        Ok(ReportConfig {
            input,
            format,
            output: a.output,
            fail_on: a.fail_on,
            sign: a.sign,
        })
    }
}

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

#[derive(Debug, clap::Args)]
pub struct NetworkInputArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Isolate egress too: each service's pods may connect only to the documented
    /// destinations (and DNS).
    #[arg(long)]
    pub egress: bool,
    /// Where pods resolve names, allowed in every egress policy: NAMESPACE/KEY=VALUE[,...]
    /// (pod labels), or `none`.
    #[arg(
        long,
        default_value = "kube-system/k8s-app=kube-dns",
        value_name = "NS/LABELS|none"
    )]
    pub dns: String,
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
}

impl TryFrom<NetworkInputArgs> for NetworkPolicyConfig {
    type Error = anyhow::Error;

    fn try_from(a: NetworkInputArgs) -> anyhow::Result<Self> {
        let dns = crate::networkpolicy::DnsPeer::parse(&a.dns)
            .map_err(|e| anyhow::anyhow!("--dns {e}"))?;
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
                dns,
            },
            output,
            store: a.store,
            would_break: a.would_break,
            fail_on: a.fail_on,
        })
    }
}

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

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// YAML with a header comment: the form to review in Git.
    Yaml,
    /// The same document as JSON.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    #[command(flatten)]
    pub probes: ProbeArgs,
    /// Stop by itself after this long (e.g. 30s); runs until Ctrl-C when absent.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
}

/// Validated capture settings.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub probes: ProbeConfig,
    pub duration: Option<Duration>,
}

impl TryFrom<CaptureArgs> for CaptureConfig {
    type Error = anyhow::Error;

    fn try_from(args: CaptureArgs) -> anyhow::Result<Self> {
        Ok(CaptureConfig {
            probes: args.probes.try_into()?,
            duration: args.duration,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn run_config(extra: &[&str]) -> anyhow::Result<RunConfig> {
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
    fn a_shared_option_has_one_bound_in_every_command() {
        for bad in ["5ms", "2h"] {
            let arg = ["--report-interval", bad];
            let (r, c) = (run_config(&arg), capture_config(&arg));
            assert!(r.is_err() && c.is_err(), "{bad}: run {r:?}, capture {c:?}");
            assert_eq!(
                r.unwrap_err().to_string(),
                c.unwrap_err().to_string(),
                "the same words"
            );
        }
        let ok = run_config(&["--report-interval", "500ms"]).unwrap();
        assert_eq!(ok.probes.report_interval, Duration::from_millis(500));
    }

    fn report_config(args: &[&str]) -> anyhow::Result<ReportConfig> {
        let mut argv = vec!["auditor", "report"];
        argv.extend(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Report(a) => ReportConfig::try_from(a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_report_from_prometheus_needs_an_allowlist_and_one_source() {
        let c = report_config(&[
            "--prometheus",
            "http://prom:9090",
            "--allowlist",
            "a.yaml",
            "--since",
            "2h",
            "--step",
            "30s",
        ])
        .unwrap();
        let ReportInput::Prometheus {
            url,
            since,
            until,
            step,
            ..
        } = c.input
        else {
            panic!("{:?}", c.input)
        };
        assert_eq!(url, "http://prom:9090");
        assert!((until - since - 7_200_000).abs() < 5_000, "{since} {until}");
        assert_eq!(step, Some(Duration::from_secs(30)));
        // Prometheus holds no allowlist; it is one source among store, merge, collect.
        let err = report_config(&["--prometheus", "http://prom:9090"]).unwrap_err();
        assert!(err.to_string().contains("--allowlist"), "{err}");
        for other in [
            &["--store", "s.db"][..],
            &["--collect", "http://n:9977"],
            &["--merge", "a.json"],
        ] {
            let mut a = vec!["--prometheus", "http://prom:9090", "--allowlist", "a.yaml"];
            a.extend(other);
            assert!(
                report_config(&a).is_err(),
                "{other:?} accepted with --prometheus"
            );
        }
        let err = report_config(&["--prometheus", "https://prom", "--allowlist", "a"]).unwrap_err();
        assert!(err.to_string().contains("plain http"), "{err}");
        assert!(report_config(&["--store", "s.db", "--step", "1m"]).is_err());
    }

    #[test]
    fn run_arguments_validate_into_their_groups() {
        let c = run_config(&["--events", "-", "--node", "n1", "--store-flush", "2s"]).unwrap();
        assert_eq!(
            (c.alerts.events, c.node.as_str(), c.store.flush),
            (None, "n1", Duration::from_secs(2))
        );
        assert!(run_config(&["--alertmanager", "https://am"]).is_err());
        assert!(run_config(&["--retention", "0s"]).is_err());
        assert!(run_config(&["--store", "/nonexistent-dir/s.db"]).is_err());
    }

    #[test]
    fn the_edge_cap_and_http_limits_are_validated() {
        let c = run_config(&[]).unwrap();
        assert_eq!(c.max_violation_series, 1000);
        assert_eq!(
            (
                c.http.header_timeout,
                c.http.idle_timeout,
                c.http.max_connections
            ),
            (Duration::from_secs(10), Duration::from_secs(60), 64)
        );
        assert!(c.http.report_token.is_none());
        assert_eq!(
            run_config(&["--max-violation-series", "100"])
                .unwrap()
                .max_violation_series,
            100
        );
        for bad in [
            &["--max-violation-series", "0"][..],
            &["--max-violation-series", "100001"],
            &["--http-max-connections", "0"],
            &["--http-idle-timeout", "0s"],
            &["--report-token-file", "/nonexistent/token"],
        ] {
            assert!(run_config(bad).is_err(), "{bad:?}");
        }
        let dir = std::env::temp_dir().join(format!("auditor-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (good, empty) = (dir.join("good"), dir.join("empty"));
        std::fs::write(&good, "s3cret\n").unwrap();
        std::fs::write(&empty, " \n").unwrap();
        let c = run_config(&["--report-token-file", good.to_str().unwrap()]).unwrap();
        assert_eq!(c.http.report_token.as_deref(), Some("s3cret"));
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "the token is never printed"
        );
        let e = run_config(&["--report-token-file", empty.to_str().unwrap()]).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
