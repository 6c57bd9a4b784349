//! `auditor report` and `auditor report verify`: where the observations come from, the
//! format and the gates; and their validated form, with exactly one input.

use std::path::PathBuf;

use clap::Subcommand;

use super::{FailOn, read_token};

/// Examples for `auditor report --help`.
pub const EXAMPLES: &str = "Examples:
  auditor report --store store.db -o report.html
  auditor report --store store.db --since 24h --format markdown
  auditor report --merge node-a.json node-b.json -o cluster.json
  auditor report --collect http://auditor-nodes.auditor.svc:9977 -o cluster.html
  auditor report --prometheus http://prometheus:9090 \\
      --allowlist allowlist.yaml --since 7d -o cluster.html
  auditor report --store store.db --fail-on violations,unaudited -o junit.xml
  auditor report --merge a.json b.json --expect-nodes a,b,c -o cluster.json
  auditor report --store store.db -o report.json --sign key.pem
  auditor report --store store.db --since 2026-12-01T00:00:00Z \\
      --previous nov.json -o dec.json --sign key.pem
  auditor report --store store.db --exceptions exceptions.yaml -o report.html
  auditor report --store store.db --until 2m --chain reports/ --sign key.pem
  auditor report --render reports/report-2026-12-05T100000.000Z.json -o r.pdf
  auditor report verify report.json --key key.pub.pem";

/// Examples for `auditor report verify --help`.
pub const VERIFY_EXAMPLES: &str = "Example:
  openssl genpkey -algorithm ed25519 -out key.pem
  openssl pkey -in key.pem -pubout -out key.pub.pem
  auditor report --store store.db -o report.json --sign key.pem
  auditor report verify report.json --key key.pub.pem
  auditor report verify --chain reports/ --key key.pub.pem";

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
    /// Render this JSON report in another format as it is: unedited (its digest is
    /// checked), nothing re-judged, its digest, chain link, exceptions and controls kept
    /// (a chain's report as HTML or PDF, say). --merge of one report makes a new report
    /// instead.
    #[arg(long, value_name = "REPORT.json", conflicts_with_all = [
        "store", "merge", "collect", "prometheus", "since", "until", "allowlist",
        "exceptions", "controls", "previous", "chain", "expect_nodes", "schema"
    ])]
    pub render: Option<PathBuf>,
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
    /// Print the JSON Schema of the report and exit (the same as `auditor schema report`).
    #[arg(long, conflicts_with_all = ["store", "merge", "collect", "prometheus", "output", "format", "sign", "fail_on"])]
    pub schema: bool,
    /// Fetch every node's report from `auditor run`'s /report and merge them, e.g.
    /// http://auditor-nodes.auditor.svc:9977 (a name resolving to every daemon, as a
    /// headless Service does). Repeatable.
    /// With --since/--until, each daemon reports that period only.
    #[arg(long, conflicts_with_all = ["store", "merge", "allowlist"])]
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
    /// `unaudited` (part of the period not watched, or connections lost in the kernel, or a
    /// node of --expect-nodes that never reported, or coverage unknown: replayed without
    /// capture intervals), `replayed` (observations that are not all live capture). The
    /// report is still written. Errors exit 2.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub fail_on: Vec<FailOn>,
    /// The nodes the report should cover (comma-separated or repeated), e.g. every node
    /// of the cluster. One that never reported in the period (no coverage, no
    /// observation) is named in the report and counted as a coverage gap over the whole
    /// period: `--fail-on unaudited` then fails.
    #[arg(
        long,
        value_name = "NODES",
        value_delimiter = ',',
        conflicts_with = "schema"
    )]
    pub expect_nodes: Vec<String>,
    /// Sign the written report with this ed25519 private key (PKCS#8 PEM, as
    /// `openssl genpkey -algorithm ed25519 -out key.pem` writes it): the signature goes
    /// to OUTPUT.sig. Needs -o. Check it with `auditor report verify`.
    #[arg(long, value_name = "KEY", requires = "output")]
    pub sign: Option<PathBuf>,
    /// The report before this one (a JSON report, as `-o FILE.json` wrote it): this report
    /// names its digest and period, so that scheduled reports form a hash chain that
    /// `auditor report verify --chain DIR` checks. It must be unedited (its own digest
    /// matches its content); give this report's --since where it ends, for no gap.
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,
    /// Accepted exceptions: a reviewed YAML file (`auditor schema exceptions`), each entry
    /// an edge (src, dst, optional transport and port) with its reason, owner and
    /// expiry. A violation one covers is reported as an accepted exception while it is
    /// in force (`--fail-on violations` ignores it), and as a violation once the edge was
    /// seen after it expired. The report lists every exception and how often it was used.
    #[arg(long, value_name = "FILE")]
    pub exceptions: Option<PathBuf>,
    /// More controls for the report's Controls section: a YAML mapping in the layout of
    /// the built-in auditor/controls/pci-dss-v4-soc2.yaml (`auditor schema controls`).
    /// Its frameworks are added to the built-in PCI DSS v4.0 and SOC 2 ones; a control
    /// with the same framework and id replaces the built-in one. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub controls: Vec<PathBuf>,
    /// Leave the built-in PCI DSS and SOC 2 controls out: only the --controls files'
    /// (for a system outside their scope).
    #[arg(long, requires = "controls")]
    pub no_builtin_controls: bool,
    /// Add this report to the chain of JSON reports kept in DIR (made if missing): it
    /// follows DIR's newest report (as --previous), starts where that one ends (as
    /// --since), ends on a 5-minute boundary of the store's counts (--until, else now,
    /// rounded down: consecutive reports count every connection once), and is written
    /// to DIR/report-<UNTIL>.json (with its .sig when --sign is given). The first report
    /// of an empty DIR starts the chain. Scheduled, this keeps `auditor report verify
    /// --chain DIR` true; give an --until a little in the past (e.g. 2m) so every node
    /// has delivered the period's end.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["output", "previous", "since", "merge", "schema"])]
    pub chain: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Check that a report is unedited: its signature (REPORT.sig) against the public key,
    /// and, for a JSON report, its own digest against its content.
    ///
    /// Exits 0 when the report verifies, 1 when it does not (edited, or signed by another
    /// key), 2 on errors (a file missing or unreadable).
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify {
        /// The report file as written (any format).
        #[arg(required_unless_present = "chain", conflicts_with = "chain")]
        report: Option<PathBuf>,
        /// The signer's ed25519 public key (SPKI PEM: `openssl pkey -pubout`).
        #[arg(long)]
        key: PathBuf,
        /// The signature file (default: REPORT.sig).
        #[arg(long, conflicts_with = "chain")]
        signature: Option<PathBuf>,
        /// Check a chain instead: every JSON report in DIR (each with its .sig), its
        /// signature and digest, that each names the one before it (`--previous`) by
        /// digest, and that their periods neither overlap nor leave gaps. A removed,
        /// inserted or edited report is named.
        #[arg(long, value_name = "DIR")]
        chain: Option<PathBuf>,
    },
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
    /// `report verify --chain DIR`.
    VerifyChain {
        dir: PathBuf,
        key: PathBuf,
    },
    /// A store, over a period (unix ms; None = open).
    Store {
        path: PathBuf,
        allowlist: Option<PathBuf>,
        since: Option<i64>,
        until: Option<i64>,
    },
    Merge(Vec<PathBuf>),
    /// A JSON report rendered as it is.
    Render(PathBuf),
    /// Daemons to ask for /report, the bearer token to send, and the period (unix ms;
    /// None = open).
    Collect {
        urls: Vec<String>,
        token: Option<String>,
        since: Option<i64>,
        until: Option<i64>,
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
    /// `--expect-nodes`: distinct, non-empty names (empty: not asked).
    pub expect_nodes: Vec<String>,
    /// `--previous`: the report this one follows in its chain.
    pub previous: Option<PathBuf>,
    /// `--exceptions`: the accepted exceptions file.
    pub exceptions: Option<PathBuf>,
    /// `--controls`: mappings added to the built-in one.
    pub controls: Vec<PathBuf>,
    /// `--no-builtin-controls`: the built-in mapping left out.
    pub builtin_controls: bool,
    /// `--chain DIR`: the chain this report is added to.
    pub chain: Option<PathBuf>,
}

impl TryFrom<ReportArgs> for ReportConfig {
    type Error = anyhow::Error;

    /// The input first (its errors say what report to make), then the format.
    fn try_from(a: ReportArgs) -> anyhow::Result<Self> {
        let (format, output) = (a.format, a.output.clone());
        let (fail_on, sign) = (a.fail_on.clone(), a.sign.clone());
        let expect_nodes = expected_nodes(a.expect_nodes.clone())?;
        if !expect_nodes.is_empty() && a.action.is_some() {
            anyhow::bail!("--expect-nodes is for making a report, not for `report verify`");
        }
        let previous = a.previous.clone();
        let (exceptions, controls) = (a.exceptions.clone(), a.controls.clone());
        let builtin_controls = !a.no_builtin_controls;
        let chain = a.chain.clone();
        if chain.is_some() && a.format.is_some_and(|f| f != ReportFormat::Json) {
            anyhow::bail!(
                "--chain keeps JSON reports (what `verify --chain` checks); render one in another format with `auditor report --render DIR/report-….json -o report.html`"
            );
        }
        for (given, flag) in [
            (chain.is_some(), "--chain"),
            (previous.is_some(), "--previous"),
            (exceptions.is_some(), "--exceptions"),
            (!controls.is_empty(), "--controls"),
        ] {
            if given && (a.action.is_some() || a.schema) {
                anyhow::bail!("{flag} is for making a report, not for `report verify` or --schema");
            }
        }
        let input = ReportInput::try_from(a)?;
        let format = ReportFormat::chosen(format, output.as_deref())?;
        Ok(ReportConfig {
            input,
            format,
            output,
            fail_on,
            sign,
            expect_nodes,
            previous,
            exceptions,
            controls,
            builtin_controls,
            chain,
        })
    }
}

/// `--expect-nodes`: each name non-empty (after trimming) and given once.
fn expected_nodes(names: Vec<String>) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let n = n.trim().to_string();
        if n.is_empty() {
            anyhow::bail!("--expect-nodes: an empty node name (give names like node-a,node-b)");
        }
        if out.contains(&n) {
            anyhow::bail!("--expect-nodes: {n:?} is given twice");
        }
        out.push(n);
    }
    Ok(out)
}

impl TryFrom<ReportArgs> for ReportInput {
    type Error = anyhow::Error;

    /// The one source the arguments name (clap has refused most conflicting pairs).
    fn try_from(a: ReportArgs) -> anyhow::Result<Self> {
        if let Some(ReportCommand::Verify {
            report,
            key,
            signature,
            chain,
        }) = a.action
        {
            match (report, chain) {
                (_, Some(dir)) => Ok(ReportInput::VerifyChain { dir, key }),
                (Some(report), None) => Ok(ReportInput::Verify {
                    report,
                    key,
                    signature,
                }),
                (None, None) => anyhow::bail!("report verify needs a REPORT or --chain DIR"),
            }
        } else if a.schema {
            Ok(ReportInput::Schema)
        } else if !a.collect.is_empty() {
            collect_input(a.collect, a.token_file, a.since, a.until)
        } else if let Some(url) = a.prometheus {
            prometheus_input(url, a.allowlist, a.since, a.until, a.step)
        } else if let Some(path) = a.render {
            Ok(ReportInput::Render(path))
        } else if !a.merge.is_empty() {
            Ok(ReportInput::Merge(a.merge))
        } else if let Some(path) = a.store {
            Ok(ReportInput::Store {
                path,
                allowlist: a.allowlist,
                since: when("--since", a.since)?,
                until: when("--until", a.until)?,
            })
        } else {
            anyhow::bail!(
                "report needs its input; give one of:\n  \
                 --store FILE        a store written by `auditor run` or `auditor replay --store`\n  \
                 --merge A.json ...  per-node JSON reports to combine\n  \
                 --collect URL       live daemons to ask for their /report\n  \
                 --prometheus URL    Prometheus scraping the daemons (with --allowlist)\n  \
                 --schema            print the report's JSON Schema (also `auditor schema report`)\n\
                 See `auditor report --help`."
            )
        }
    }
}

/// `--since`/`--until`: RFC 3339 or a duration ago, as unix ms; the error names the flag.
fn when(flag: &str, v: Option<String>) -> anyhow::Result<Option<i64>> {
    use anyhow::Context;
    v.as_deref()
        .map(crate::report::parse_when)
        .transpose()
        .with_context(|| flag.to_string())
}

/// `--collect`: plain-http daemons, and the token their /report wants.
fn collect_input(
    urls: Vec<String>,
    token_file: Option<PathBuf>,
    since: Option<String>,
    until: Option<String>,
) -> anyhow::Result<ReportInput> {
    if let Some(bad) = urls.iter().find(|u| !u.starts_with("http://")) {
        anyhow::bail!("--collect {bad}: give an http:// URL");
    }
    Ok(ReportInput::Collect {
        urls,
        token: token_file
            .map(|p| read_token(&p, "--token-file"))
            .transpose()?,
        since: when("--since", since)?,
        until: when("--until", until)?,
    })
}

/// `--prometheus`: a plain-http base URL, the allowlist Prometheus does not hold, and a
/// closed period (24h ago to now unless told).
fn prometheus_input(
    url: String,
    allowlist: Option<PathBuf>,
    since: Option<String>,
    until: Option<String>,
    step: Option<std::time::Duration>,
) -> anyhow::Result<ReportInput> {
    use anyhow::Context;
    if !url.starts_with("http://") {
        anyhow::bail!(
            "--prometheus {url}: give the Prometheus base URL over plain http, e.g. \
             http://prometheus:9090 (https is not built in: reach it through a local \
             proxy or `kubectl port-forward`)"
        );
    }
    let allowlist =
        allowlist.context("--prometheus needs --allowlist: Prometheus holds no allowlist")?;
    let since = when("--since", Some(since.unwrap_or_else(|| "24h".into())))?.expect("given");
    let until = match when("--until", until)? {
        Some(u) => u,
        None => crate::model::time::unix_ms(std::time::SystemTime::now()),
    };
    if until <= since {
        anyhow::bail!("--since must be before --until");
    }
    Ok(ReportInput::Prometheus {
        url,
        allowlist,
        since,
        until,
        step,
    })
}

impl ReportFormat {
    /// `--format`, else what -o's extension asks for (with a note when it asks nothing),
    /// else JSON; PDF needs a file to print to.
    fn chosen(
        flag: Option<ReportFormat>,
        output: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let format = match (flag, output.and_then(ReportFormat::from_extension)) {
            (Some(f), _) => f,
            (None, Some(f)) => f,
            (None, None) => {
                if let Some(o) = output {
                    eprintln!(
                        "auditor: note: {} has no .json/.md/.html/.xml/.pdf extension: writing JSON (give --format)",
                        o.display()
                    );
                }
                ReportFormat::Json
            }
        };
        if format == ReportFormat::Pdf && output.is_none() {
            anyhow::bail!("--format pdf needs -o FILE.pdf");
        }
        Ok(format)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

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
    fn expected_nodes_are_named_once_each() {
        let c = report_config(&[
            "--store",
            "s.db",
            "--expect-nodes",
            "a,b",
            "--expect-nodes",
            "c",
        ])
        .unwrap();
        assert_eq!(c.expect_nodes, ["a", "b", "c"]);
        assert!(
            report_config(&["--store", "s.db"])
                .unwrap()
                .expect_nodes
                .is_empty()
        );
        let err = report_config(&["--store", "s.db", "--expect-nodes", "a,,b"]).unwrap_err();
        assert!(err.to_string().contains("empty node name"), "{err}");
        let err = report_config(&["--store", "s.db", "--expect-nodes", "a,b,a"]).unwrap_err();
        assert!(err.to_string().contains("\"a\" is given twice"), "{err}");
        assert!(report_config(&["--schema", "--expect-nodes", "a"]).is_err());
    }
}
