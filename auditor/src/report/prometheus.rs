//! The cluster report computed from Prometheus: PromQL over the series every daemon
//! exports (`crate::metrics`), so the evidence outlives the node that saw it (a
//! replaced node's series stay in Prometheus, or in Thanos/Mimir behind the same API).
//! It builds the same `Report` as a store does; what Prometheus cannot know (example
//! processes, directions, per-connection detail) is said in `Report::limits`.
//!
//! Counting. `increase()` extrapolates to the window's edges and misses the first value
//! of a series born inside the window (the daemon creates a series on its first
//! connection, so a row used once would read 0). The report needs counts that add up, so
//! it sums the same step-wise increase itself, with a subquery at a fixed step S:
//!   sum_over_time(((x - x offset S) >= 0 or x * 1)[R:S])
//! Between two steps: the difference when the counter grew, the new value when the
//! series was born or reset (daemon restart). The steps telescope, so the sum is exact
//! except within one step of the period's edges. Every query is an instant query
//! (`/api/v1/query` with `time=` the period's end).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
    time::Duration,
};

use allowlist::Allowlist;
use anyhow::{Context, bail};
use serde::Deserialize;

use super::{
    Coverage, Document, Evidence, Interval, ObservedEdge, Period, Report, RowReport, SCHEMA,
    merge::{finish, merge_violations},
    model::empty_summary,
};
use crate::{
    edge::{Direction, Drops, Edge, Endpoint, Transport},
    model::Verdict,
    model::time::{rfc3339_millis, rfc3339_seconds},
};

/// The job the chart's ServiceMonitor gives every daemon's series (and the alert rules
/// match): `job="auditor"`.
pub const JOB: &str = "auditor";

/// The kernel's loss and pressure counters (`auditor_kernel_events_total{counter}`): a step
/// with connections lost is not fully audited. `lru_evictions` is what daemons before the
/// flow maps' epochs exported (flows evicted, each of which may have lost connections):
/// read as lost.
const LOSSES: [&str; 4] = [
    "ringbuf_full",
    "connections_lost",
    "flow_insert_failed",
    "lru_evictions",
];

/// What to ask and for which period.
pub struct Query<'a> {
    /// Base URL of the Prometheus HTTP API (http://prometheus:9090).
    pub url: &'a str,
    /// The allowlist the rows come from, and its name for messages.
    pub list: &'a Allowlist,
    pub list_name: &'a str,
    pub since_ms: i64,
    pub until_ms: i64,
    /// The subquery step; None: the period / 2,000, at least 1 s.
    pub step: Option<Duration>,
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum ApiData {
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
    /// Scalars and strings: never asked for here, told apart only to say so.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Sample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// The Prometheus HTTP API, instant queries only.
struct Api {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    endpoint: String,
    time: String,
}

impl Api {
    fn get(&self, promql: &str) -> anyhow::Result<ApiData> {
        let resp: ApiResponse = self
            .rt
            .block_on(async {
                let resp = self
                    .http
                    .post(&self.endpoint)
                    .form(&[("query", promql), ("time", self.time.as_str())])
                    .send()
                    .await?;
                let status = resp.status();
                let body = resp.text().await?;
                serde_json::from_str::<ApiResponse>(&body).with_context(|| {
                    format!(
                        "HTTP {status}, not a Prometheus API answer: {}",
                        body.chars().take(200).collect::<String>()
                    )
                })
            })
            .with_context(|| format!("querying {}", self.endpoint))?;
        if resp.status != "success" {
            bail!(
                "{}: {} ({}) for the query {promql}",
                self.endpoint,
                resp.error.unwrap_or_default(),
                resp.error_type.unwrap_or_default()
            );
        }
        resp.data.context("a successful answer without data")
    }

    fn vector(&self, promql: &str) -> anyhow::Result<Vec<Sample>> {
        match self.get(promql)? {
            ApiData::Vector(v) => Ok(v),
            _ => bail!("{promql}: expected an instant vector"),
        }
    }

    fn matrix(&self, promql: &str) -> anyhow::Result<Vec<Series>> {
        match self.get(promql)? {
            ApiData::Matrix(v) => Ok(v),
            _ => bail!("{promql}: expected a range vector"),
        }
    }
}

fn num(s: &str) -> f64 {
    s.parse::<f64>().unwrap_or(0.0)
}

fn label<'a>(m: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    m.get(k).map_or("", String::as_str)
}

/// The step-wise increase of counter selector `sel` (see the module comment).
fn delta(sel: &str, step: &str) -> String {
    format!("(({sel} - {sel} offset {step}) >= 0 or ({sel} * 1))")
}

/// One counter family summed per `by` over the period, with first and last seen: from
/// the timestamp gauges when the daemon exports them, else at step resolution.
struct Counted {
    count: u64,
    first_ms: i64,
    last_ms: i64,
}

/// The period every query covers: its PromQL range and step, and its bounds.
struct Window<'a> {
    range: &'a str,
    step: &'a str,
    since_ms: i64,
    until_ms: i64,
}

fn counted(
    api: &Api,
    counter: &str,
    first_gauge: &str,
    last_gauge: &str,
    by: &str,
    w: &Window<'_>,
) -> anyhow::Result<Vec<(BTreeMap<String, String>, Counted)>> {
    let Window {
        range,
        step,
        since_ms,
        until_ms,
    } = *w;
    let sel = format!("{counter}{{job=\"{JOB}\"}}");
    let d = delta(&sel, step);
    let key = |m: &BTreeMap<String, String>| {
        by.split(',')
            .map(|k| label(m, k.trim()).to_string())
            .collect::<Vec<_>>()
    };
    let counts = api.vector(&format!(
        "sum by ({by}) (sum_over_time({d}[{range}:{step}]))"
    ))?;
    let first_step: HashMap<Vec<String>, f64> = api
        .vector(&format!(
            "min by ({by}) (min_over_time(timestamp({d} > 0)[{range}:{step}]))"
        ))?
        .into_iter()
        .map(|s| (key(&s.metric), num(&s.value.1)))
        .collect();
    let last_step: HashMap<Vec<String>, f64> = api
        .vector(&format!(
            "max by ({by}) (max_over_time(timestamp({d} > 0)[{range}:{step}]))"
        ))?
        .into_iter()
        .map(|s| (key(&s.metric), num(&s.value.1)))
        .collect();
    let gauge = |name: &str, agg: &str| -> anyhow::Result<HashMap<Vec<String>, f64>> {
        Ok(api
            .vector(&format!(
                "{agg} by ({by}) ({agg}_over_time({name}{{job=\"{JOB}\"}}[{range}]))"
            ))?
            .into_iter()
            .map(|s| (key(&s.metric), num(&s.value.1)))
            .collect())
    };
    let first_gauge = gauge(first_gauge, "min")?;
    let last_gauge = gauge(last_gauge, "max")?;
    let ms = |s: f64| (s * 1000.0).round() as i64;
    let mut out = Vec::new();
    for s in counts {
        let count = num(&s.value.1).round();
        if count < 1.0 {
            continue;
        }
        let k = key(&s.metric);
        // The gauge is exact but counts from the daemon's start: before the period, the
        // first step that grew is the best Prometheus knows.
        let first = match (first_gauge.get(&k).map(|&g| ms(g)), first_step.get(&k)) {
            (Some(g), _) if g >= since_ms => g,
            (_, Some(&t)) => ms(t),
            (Some(_), None) => since_ms,
            (None, None) => since_ms,
        };
        let last = match (last_gauge.get(&k).map(|&g| ms(g)), last_step.get(&k)) {
            (Some(g), _) if g >= first && g <= until_ms => g,
            (_, Some(&t)) => ms(t).min(until_ms),
            _ => until_ms,
        };
        out.push((
            s.metric,
            Counted {
                count: count as u64,
                first_ms: first.clamp(since_ms, until_ms),
                last_ms: last.max(first).min(until_ms),
            },
        ));
    }
    Ok(out)
}

/// An end of a violation edge as its label names it: an address, else a name (a
/// documented service, or an aggregate such as an overflow or `unknown` label).
fn endpoint(name: &str, port: Option<u16>) -> Endpoint {
    let addr = name.parse::<IpAddr>().ok();
    Endpoint {
        service: if addr.is_some() || name.is_empty() {
            None
        } else {
            Some(name.to_string())
        },
        addr,
        port,
        ..Endpoint::default()
    }
}

fn transport(s: &str) -> Option<Transport> {
    match s {
        "tcp" => Some(Transport::Tcp),
        "udp" => Some(Transport::Udp),
        _ => None,
    }
}

fn rules(s: &str) -> Vec<u32> {
    s.split(',').filter_map(|r| r.trim().parse().ok()).collect()
}

/// The limit that says a Prometheus report knows no connection's direction (the
/// controls on inbound or outbound traffic then count every violation as both).
pub const NO_DIRECTION: &str = "Prometheus holds counts, not connections: there are no example processes, no connection direction, no Kubernetes pod or workload of the ends, and no per-connection detail; the daemons' events and stores have them.";

/// The report over [since, until] from the daemons' series in Prometheus.
pub fn from_prometheus(q: &Query<'_>) -> anyhow::Result<Report> {
    if q.until_ms <= q.since_ms {
        bail!(
            "the period is empty: --since {} is not before --until {}",
            rfc3339_millis(q.since_ms),
            rfc3339_millis(q.until_ms)
        );
    }
    let period_s = ((q.until_ms - q.since_ms) as f64 / 1000.0).ceil().max(1.0) as u64;
    let step_s = q
        .step
        .map_or((period_s / 2000).max(1), |s| s.as_secs().max(1));
    let (range, step) = (format!("{period_s}s"), format!("{step_s}s"));
    let base = q.url.trim_end_matches('/');
    let api = Api {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?,
        endpoint: format!("{base}/api/v1/query"),
        time: format!("{:.3}", q.until_ms as f64 / 1000.0),
    };
    let list = q.list;
    let mut limits = vec![
        format!(
            "Computed from Prometheus at {base} (job=\"{JOB}\"), at a resolution of {step_s} s: counts may be off by what happened within one step of the period's edges."
        ),
        NO_DIRECTION.to_string(),
        "Connections held open from before a daemon started (found by its walk of open sockets) open nothing, so they add no count: a row seen only that way is reported observed by a store report (evidence: active) and not here.".to_string(),
        "Prometheus series never carry DNS names (a name is never a metric label): which names egress was reached by, and which egress used a bare address, is unknown here; the stores have them.".to_string(),
        "A violation edge that had no series of its own (beyond the daemon's series budget, or an aggregated destination) is reported under the aggregate name its series carries.".to_string(),
    ];

    let want = check_policy(&api, &range, q, &mut limits)?;

    let window = Window {
        range: &range,
        step: &step,
        since_ms: q.since_ms,
        until_ms: q.until_ms,
    };
    let conns = counted(
        &api,
        "auditor_connections_total",
        "auditor_connection_first_seen_timestamp_seconds",
        "auditor_connection_last_seen_timestamp_seconds",
        "node, verdict, rules, transport, platform, mesh_leg",
        &window,
    )?;
    let edges = counted(
        &api,
        "auditor_violations_total",
        "auditor_violation_first_seen_timestamp_seconds",
        "auditor_violation_last_seen_timestamp_seconds",
        "node, verdict, src, dst, transport, port, rules",
        &window,
    )?;

    let mut nodes: BTreeSet<String> = BTreeSet::new();
    let tally = Tally::of(&conns, &mut nodes);
    // The series do not say which overrides the daemons applied.
    let unverified = super::store::port_unverified_rules(list, &[]);
    if !unverified.is_empty() {
        limits.push(format!(
            "The series do not say which overrides the daemons applied: the rows whose document gives no port ({}) are reported as port not verified, even where an override gave them one.",
            unverified.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        ));
    }
    let rows = list
        .connections
        .iter()
        .map(|c| row_report(c, &conns, &unverified))
        .collect();

    let violations = violations(&edges, &mut nodes, &mut limits);

    let intervals = intervals(&api, &range, &step, step_s, q.since_ms, &mut nodes)?;
    nodes.remove("");
    if nodes.is_empty() {
        bail!(
            "Prometheus at {base} has no auditor series (job=\"{JOB}\") between {} and {}: \
             is it scraping the daemons (the chart's ServiceMonitor sets job=\"{JOB}\" and a node label)?",
            rfc3339_millis(q.since_ms),
            rfc3339_millis(q.until_ms)
        );
    }

    let nodes: Vec<String> = nodes.into_iter().collect();
    let mut report = Report {
        schema: SCHEMA.into(),
        auditor_version: crate::provenance::AUDITOR_VERSION.into(),
        generated_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        // The series are what the daemons export as they capture: live.
        capture: Some(super::Capture::new("live", nodes.clone(), Vec::new())),
        period: Period {
            since: rfc3339_millis(q.since_ms),
            until: rfc3339_millis(q.until_ms),
        },
        document: Document {
            title: list.document.title.clone(),
            origin: list.document.source.clone(),
        },
        nodes,
        inputs: vec![crate::provenance::Inputs {
            auditor_version: "unknown (not in Prometheus)".into(),
            allowlist_sha256: None,
            allowlist_content_sha256: want,
            inventory_sha256: None,
            overrides_sha256: None,
            baseline_sha256: None,
            since: rfc3339_millis(q.since_ms),
            rules_port_unverified: None,
        }],
        changed_rows: Vec::new(),
        summary: empty_summary(),
        coverage: Coverage {
            watched_seconds: 0.0,
            incomplete_seconds: 0.0,
            fraction: None,
            known: None,
            gaps: Vec::new(),
            intervals,
            expected_nodes: Vec::new(),
            missing_nodes: Vec::new(),
        },
        rows,
        violations,
        limits,
        platform: tally
            .platform
            .into_iter()
            .map(|(entry, connections)| super::PlatformEntry {
                entry,
                connections,
                // Not in the series: per-flow detail is in the stores (see the limits).
                flows: Vec::new(),
            })
            .collect(),
        // The series never carry a name (cardinality): unknown, said in the limits too.
        names: Some(super::names::unknown()),
        document_findings: Vec::new(),
        accepted: Vec::new(),
        exceptions: None,
        controls: None,
        previous: None,
        digest: None,
    };
    report.summary.by_verdict = tally.by_verdict;
    report.summary.mesh_leg_connections = tally.mesh_leg_connections;
    super::attach_findings(&mut report, list);
    finish(&mut report);
    Ok(report)
}

/// The allowlist the daemons judged against: they export the digest of the one in force
/// (`auditor_policy_info`). Refuses another one; notes when they did not say.
fn check_policy(
    api: &Api,
    range: &str,
    q: &Query<'_>,
    limits: &mut Vec<String>,
) -> anyhow::Result<String> {
    let want = crate::provenance::allowlist_content_sha256(q.list);
    let policies: BTreeSet<String> = api
        .vector(&format!(
            "count by (allowlist_content_sha256) (last_over_time(auditor_policy_info{{job=\"{JOB}\"}}[{range}]))"
        ))?
        .into_iter()
        .map(|s| label(&s.metric, "allowlist_content_sha256").to_string())
        .collect();
    if policies.is_empty() {
        limits.push(format!(
            "The daemons did not export the allowlist they judged against (auditor_policy_info): the rows are credited by number from {}, unchecked.",
            q.list_name
        ));
    } else if policies.len() > 1 || !policies.contains(&want) {
        bail!(
            "{} (content sha256 {want}) is not the allowlist the daemons judged against in the period (theirs: {}).\n\
             The series name documented rows by number, so crediting {}'s rows would be false evidence. \
             Give the allowlist the daemons run with, or a period in which they ran with only this one.",
            q.list_name,
            policies.into_iter().collect::<Vec<_>>().join(", "),
            q.list_name
        );
    }

    Ok(want)
}

/// What the connection series add up to: connections per verdict, platform traffic by
/// baseline entry, and the mesh legs' connections.
#[derive(Default)]
struct Tally {
    by_verdict: BTreeMap<String, u64>,
    platform: BTreeMap<String, u64>,
    mesh_leg_connections: u64,
}

impl Tally {
    /// Also adds every node the series name to `nodes`.
    fn of(conns: &[(BTreeMap<String, String>, Counted)], nodes: &mut BTreeSet<String>) -> Tally {
        let mut t = Tally::default();
        for (m, c) in conns {
            nodes.insert(label(m, "node").to_string());
            if label(m, "verdict") == Verdict::Platform.as_str() {
                *t.platform
                    .entry(label(m, "platform").to_string())
                    .or_default() += c.count;
            }
            if !label(m, "mesh_leg").is_empty() {
                t.mesh_leg_connections += c.count;
            }
            *t.by_verdict
                .entry(label(m, "verdict").to_string())
                .or_default() += c.count;
        }
        t
    }
}

/// One documented row credited with the allowed connection series that name it.
fn row_report(
    c: &allowlist::Connection,
    conns: &[(BTreeMap<String, String>, Counted)],
    port_unverified: &BTreeSet<u32>,
) -> RowReport {
    let obs: Vec<_> = conns
        .iter()
        .filter(|(m, _)| {
            label(m, "verdict") == Verdict::Allowed.as_str()
                // A mesh leg carries a connection its app leg already counted.
                && label(m, "mesh_leg").is_empty()
                && c.number
                    .is_some_and(|n| rules(label(m, "rules")).contains(&n))
        })
        .collect();
    let port_verified = !c.number.is_some_and(|n| port_unverified.contains(&n));
    RowReport {
        observed: !obs.is_empty(),
        // Only series that grew in the period are read (zero counts are skipped), so
        // every observation here was opened; held-open ones: see the limits.
        evidence: (!obs.is_empty()).then_some(Evidence::Opened),
        count: obs.iter().map(|(_, c)| c.count).sum(),
        first_seen: obs
            .iter()
            .map(|(_, c)| c.first_ms)
            .min()
            .map(rfc3339_seconds),
        last_seen: obs
            .iter()
            .map(|(_, c)| c.last_ms)
            .max()
            .map(rfc3339_seconds),
        nodes: obs
            .iter()
            .map(|(m, _)| label(m, "node").to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        ..RowReport::unobserved(c, port_verified)
    }
}

/// The violation series as edges, united across nodes (their nodes added to `nodes`; a
/// series this auditor cannot read is counted in the limits).
fn violations(
    edges: &[(BTreeMap<String, String>, Counted)],
    nodes: &mut BTreeSet<String>,
    limits: &mut Vec<String>,
) -> Vec<ObservedEdge> {
    let mut unreadable = 0usize;
    let mut violations = Vec::new();
    for (m, c) in edges {
        let (Some(verdict), Some(t)) = (
            Verdict::parse(label(m, "verdict")),
            transport(label(m, "transport")),
        ) else {
            unreadable += 1;
            continue;
        };
        if !verdict.is_violation() {
            continue;
        }
        let node = label(m, "node").to_string();
        nodes.insert(node.clone());
        violations.push(ObservedEdge {
            edge: Edge {
                verdict,
                rules: rules(label(m, "rules")),
                transport: t,
                // Not in the series: see the limits.
                direction: Direction::Egress,
                documented: None,
                src: endpoint(label(m, "src"), None),
                dst: endpoint(label(m, "dst"), label(m, "port").parse().ok()),
                process: None,
                count: c.count,
                first_seen: c.first_ms,
                last_seen: c.last_ms,
                // Violations are neither platform flows nor mesh legs judged allowed;
                // a violating mesh leg is not told apart in the violation series.
                platform: None,
                mesh_leg: None,
            },
            nodes: vec![node],
            explained_by: Vec::new(),
            exception: None,
        });
    }
    if unreadable > 0 {
        limits.push(format!(
            "{unreadable} violation series had a verdict or transport label this auditor does not know (written by another version): not in the violations."
        ));
    }
    merge_violations(&mut violations);

    violations
}

/// Coverage: a step at which a daemon was up covers the step before it; a step with
/// kernel losses is watched but not fully audited. Adds the nodes seen up to `nodes`.
fn intervals(
    api: &Api,
    range: &str,
    step: &str,
    step_s: u64,
    since_ms: i64,
    nodes: &mut BTreeSet<String>,
) -> anyhow::Result<Vec<Interval>> {
    let up = api.matrix(&format!(
        "(max by (node) (up{{job=\"{JOB}\"}}) == 1)[{range}:{step}]"
    ))?;
    let losses = LOSSES.join("|");
    let dropped = api.matrix(&format!(
        "(sum by (node, counter) ({}) > 0)[{range}:{step}]",
        delta(
            &format!("auditor_kernel_events_total{{job=\"{JOB}\",counter=~\"{losses}\"}}"),
            step
        )
    ))?;
    let drops_at = drops_at(&dropped);
    let step_ms = step_s as i64 * 1000;
    let mut intervals: Vec<Interval> = Vec::new();
    for s in &up {
        let node = label(&s.metric, "node").to_string();
        nodes.insert(node.clone());
        let mut open: Option<Interval> = None;
        let mut prev_t: Option<i64> = None;
        for (t, _) in &s.values {
            let t = (t * 1000.0).round() as i64;
            let start = (t - step_ms).max(since_ms);
            let drops = drops_at
                .get(&(node.clone(), t))
                .copied()
                .unwrap_or_default();
            let full = drops.lost() == 0;
            let joins = prev_t == Some(t - step_ms);
            match &mut open {
                Some(i) if joins && i.fully_audited == full => {
                    i.end = rfc3339_millis(t);
                    i.drops.add(&drops);
                }
                _ => {
                    intervals.extend(open.take());
                    open = Some(Interval {
                        node: node.clone(),
                        start: rfc3339_millis(start),
                        end: rfc3339_millis(t),
                        fully_audited: full,
                        drops,
                    });
                }
            }
            prev_t = Some(t);
        }
        intervals.extend(open);
    }
    Ok(intervals)
}

/// Kernel losses per (node, step time in ms), from the loss series.
fn drops_at(dropped: &[Series]) -> HashMap<(String, i64), Drops> {
    let mut drops_at: HashMap<(String, i64), Drops> = HashMap::new();
    for s in dropped {
        let node = label(&s.metric, "node").to_string();
        for (t, v) in &s.values {
            let d = drops_at
                .entry((node.clone(), (t * 1000.0).round() as i64))
                .or_default();
            let n = num(v).round() as u64;
            match label(&s.metric, "counter") {
                "ringbuf_full" => d.ringbuf_full += n,
                "connections_lost" | "lru_evictions" => d.connections_lost += n,
                _ => d.flow_insert_failed += n,
            }
        }
    }
    drops_at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_end_is_an_address_or_a_name() {
        let e = endpoint("10.0.0.7", Some(443));
        assert_eq!(e.addr, Some("10.0.0.7".parse().unwrap()));
        assert_eq!(e.service, None);
        assert_eq!(e.port, Some(443));
        // Aggregates (overflow, unknown) are names, told as the series tells them.
        assert_eq!(endpoint("_other", None).name(), "_other");
        assert_eq!(endpoint("Tenant Service", None).name(), "Tenant Service");
    }

    #[test]
    fn the_increase_takes_births_and_resets() {
        assert_eq!(
            delta("x{job=\"auditor\"}", "5s"),
            "((x{job=\"auditor\"} - x{job=\"auditor\"} offset 5s) >= 0 or (x{job=\"auditor\"} * 1))"
        );
        assert_eq!(rules("26,27"), vec![26, 27]);
        assert_eq!(rules("none"), Vec::<u32>::new());
    }
}
