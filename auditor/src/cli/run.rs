//! `auditor run`: the daemon's arguments in their groups (store, events and alerts, HTTP,
//! probes) and their validated form, which the daemon runs on.

use std::{path::PathBuf, time::Duration};

use super::{InputArgs, ProbeArgs, ProbeConfig, read_token};
use crate::verdict::InputFiles;

/// Examples for `auditor run --help`, and the environment it reads.
pub const EXAMPLES: &str = "Example:
  sudo auditor run --allowlist allowlist.yaml --inventory inventory.yaml \\
      --store /var/lib/auditor/store.db

Environment:
  NODE_NAME=NAME          this node's name (--node); RUST_LOG, AUDITOR_LOG_FORMAT as
                          for every command";

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
        if let Some(store) = &a.store {
            super::store_dir_exists(store)?;
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
    #[command(flatten)]
    pub dns: super::DnsArgs,
    /// This node's name in events, alerts and the store.
    #[arg(long, env = "NODE_NAME", help_heading = "Daemon")]
    pub node: Option<String>,
    /// How often the policy files are checked for changes. A changed file is loaded once
    /// it is unchanged (size, mtime, content) across two checks, so a file still being
    /// written is never loaded; replacing it by an atomic rename is best.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration, help_heading = "Daemon")]
    pub reload_poll: Duration,
    /// Judge only flows touching these networks (comma-separated CIDRs), e.g. the pod
    /// network; others are counted in auditor_out_of_scope_connections_total. Default: all.
    #[arg(long, value_delimiter = ',', help_heading = "Daemon")]
    pub scope: Vec<ipnet::IpNet>,
    /// Identify pods and Services from the Kubernetes API (in-cluster config, or
    /// KUBECONFIG), matched to documented services by the inventory's `kubernetes:` entries.
    #[arg(long, help_heading = "Daemon")]
    pub kubernetes: bool,
    /// Distinct edges kept apart in memory, and violation series per node: each of the
    /// violation series, the edges held for events and alerts, and the edges pending a
    /// store commit holds at most this many. Past it, new edges are counted in one
    /// overflow edge per verdict and transport (src and dst "_other", port 0), logged once
    /// and counted in auditor_overflow_sightings_total; totals still add up. Worst case
    /// per node: N + 10 series in each of auditor_violations_total and
    /// auditor_violation_last_seen_timestamp_seconds.
    #[arg(long, default_value_t = 1000, help_heading = "Daemon")]
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
    pub dns: super::DnsConfig,
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
            dns: {
                let mut dns: super::DnsConfig = a.dns.try_into()?;
                // A held connection is re-reported by each walk of open sockets: its name
                // must stay bound across three of them, however long the interval.
                dns.limits.hold = dns.limits.hold.max(a.probes.active_interval * 3);
                dns
            },
            probes: a.probes.try_into()?,
            node,
            reload_poll: a.reload_poll,
            scope: a.scope,
            kubernetes: a.kubernetes,
            max_violation_series: a.max_violation_series,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::cli::tests::run_config;

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
