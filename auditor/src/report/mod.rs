//! Compliance reports: for each documented connection, the evidence that it happened or
//! that it never did; every undocumented connection with proof; how long and how
//! completely the node was watched. Built from a store, merged across nodes, rendered as
//! JSON (the versioned schema in docs/report.schema.json), Markdown or HTML.

mod diagram;
pub mod html;
pub mod markdown;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use allowlist::{Allowlist, Classification};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::{
    edge::{Drops, Edge, EdgeKey},
    store::Store,
};

pub const SCHEMA: &str = "auditor-report/2";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "auditor compliance report")]
pub struct Report {
    /// Always "auditor-report/2" for this layout.
    pub schema: String,
    pub generated_at: String,
    pub period: Period,
    pub document: Document,
    pub nodes: Vec<String>,
    pub summary: Summary,
    pub coverage: Coverage,
    /// Every documented connection, in table order.
    pub rows: Vec<RowReport>,
    /// Every edge that is not an allowed connection, most connections first.
    pub violations: Vec<Violation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Period {
    pub since: Option<String>,
    pub until: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub title: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// "clean" when nothing undocumented was seen in fully audited time, else "violations"
    /// (or "incomplete" when clean but some time was not fully audited).
    pub status: String,
    /// One sentence a reader understands in ten seconds.
    pub headline: String,
    pub documented_connections: usize,
    pub documented_observed: usize,
    pub documented_not_observed: Vec<String>,
    pub violation_edges: usize,
    pub violating_connections: u64,
    pub allowed_connections: u64,
    pub by_verdict: BTreeMap<String, u64>,
    pub watched_seconds: f64,
    pub incomplete_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    pub watched_seconds: f64,
    /// Seconds in intervals where the kernel reported drops: not fully audited.
    pub incomplete_seconds: f64,
    pub intervals: Vec<Interval>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    pub node: String,
    pub start: String,
    pub end: String,
    pub fully_audited: bool,
    /// Kernel-side losses in the interval; any makes it not fully audited.
    pub drops: Drops,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowReport {
    pub number: Option<u32>,
    pub source: String,
    pub destination: String,
    pub protocol: String,
    pub transport: String,
    pub ports: String,
    pub classification: String,
    pub description: String,
    pub observed: bool,
    pub count: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub nodes: Vec<String>,
    /// "source (process)" examples, at most a few.
    pub examples: Vec<String>,
}

/// An edge that is not an allowed connection: the event vocabulary (`crate::edge::Edge`),
/// and the nodes that saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Violation {
    #[serde(flatten)]
    pub edge: Edge,
    pub nodes: Vec<String>,
}

/// The report's JSON Schema (docs/report.schema.json is this, checked by a test).
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(Report);
    schema.insert(
        "$comment".into(),
        "Generated from auditor/src/report/mod.rs by `auditor report --schema`; do not edit."
            .into(),
    );
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

pub fn rfc3339_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn parse_time(s: &str) -> Option<i64> {
    humantime::parse_rfc3339_weak(s)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
}

/// `--since`/`--until`: an RFC 3339 time, or a duration meaning that long ago ("24h").
pub fn parse_when(text: &str) -> anyhow::Result<i64> {
    if let Some(ms) = parse_time(text) {
        return Ok(ms);
    }
    let ago = humantime::parse_duration(text)
        .with_context(|| format!("{text:?} is neither an RFC 3339 time nor a duration like 24h"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    Ok(now - ago.as_millis() as i64)
}

fn ports_text(c: &allowlist::Connection) -> String {
    match &c.ports {
        allowlist::Ports::Listed(l) => l
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        allowlist::Ports::Any { reason } | allowlist::Ports::Unknown { reason } => reason.clone(),
    }
}

/// Builds a report from a store. The allowlist is the one the store recorded, unless
/// one is given.
pub fn from_store(
    store: &Store,
    allowlist: Option<Allowlist>,
    since: Option<i64>,
    until: Option<i64>,
) -> anyhow::Result<Report> {
    let list = match allowlist {
        Some(l) => l,
        None => {
            let json = store.allowlist()?.context(
                "the store does not say which allowlist it was judged against: give --allowlist",
            )?;
            allowlist::file::parse(&json, "<allowlist recorded in the store>")?
        }
    };
    let edges = store.edges(since, until)?;
    let rows = store.rows(since, until)?;
    let coverage = store.coverage(since, until)?;
    if edges.is_empty() && rows.is_empty() && coverage.is_empty() {
        bail!(
            "the store has no observations{}",
            if since.is_some() || until.is_some() {
                " in that period"
            } else {
                ""
            }
        );
    }
    let mut nodes: BTreeSet<String> = BTreeSet::new();
    nodes.extend(coverage.iter().map(|c| c.node.clone()));
    nodes.extend(edges.iter().map(|e| e.node.clone()));

    let row_reports = list
        .connections
        .iter()
        .map(|c| {
            let obs: Vec<_> = rows.iter().filter(|r| Some(r.rule) == c.number).collect();
            let mut examples: Vec<String> = obs
                .iter()
                .filter_map(|r| {
                    Some(format!(
                        "{} ({})",
                        r.example_src.as_deref()?,
                        r.example_comm.as_deref().unwrap_or("?")
                    ))
                })
                .collect();
            examples.dedup();
            examples.truncate(3);
            RowReport {
                number: c.number,
                source: c.source.clone(),
                destination: c.destination.clone(),
                protocol: c.protocol.clone(),
                transport: c.transport.as_str().into(),
                ports: ports_text(c),
                classification: Classification::list_to_string(&c.classification),
                description: c.description.clone(),
                observed: !obs.is_empty(),
                count: obs.iter().map(|r| r.count).sum(),
                first_seen: obs.iter().map(|r| r.first_seen_ms).min().map(rfc3339_ms),
                last_seen: obs.iter().map(|r| r.last_seen_ms).max().map(rfc3339_ms),
                nodes: obs
                    .iter()
                    .map(|r| r.node.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                examples,
            }
        })
        .collect();

    let mut violations: Vec<Violation> = edges
        .iter()
        .filter(|e| e.edge.verdict.is_violation())
        .map(|e| Violation {
            edge: e.edge.clone(),
            nodes: vec![e.node.clone()],
        })
        .collect();
    merge_violations(&mut violations);

    let intervals = coverage
        .iter()
        .map(|c| Interval {
            node: c.node.clone(),
            start: rfc3339_ms(c.start_ms),
            end: rfc3339_ms(c.end_ms),
            fully_audited: c.drops.total() == 0,
            drops: c.drops,
        })
        .collect();
    let by_verdict = edges
        .iter()
        .fold(BTreeMap::new(), |mut m: BTreeMap<String, u64>, e| {
            *m.entry(e.edge.verdict.as_str().to_string()).or_default() += e.edge.count;
            m
        });
    let mut report = Report {
        schema: SCHEMA.into(),
        generated_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        period: Period {
            since: since.map(rfc3339_ms),
            until: until.map(rfc3339_ms),
        },
        document: Document {
            title: list.document.title.clone(),
            source: list.document.source.clone(),
        },
        nodes: nodes.into_iter().collect(),
        summary: empty_summary(),
        coverage: Coverage {
            watched_seconds: 0.0,
            incomplete_seconds: 0.0,
            intervals,
        },
        rows: row_reports,
        violations,
    };
    report.summary.by_verdict = by_verdict;
    finish(&mut report);
    Ok(report)
}

fn empty_summary() -> Summary {
    Summary {
        status: String::new(),
        headline: String::new(),
        documented_connections: 0,
        documented_observed: 0,
        documented_not_observed: Vec::new(),
        violation_edges: 0,
        violating_connections: 0,
        allowed_connections: 0,
        by_verdict: BTreeMap::new(),
        watched_seconds: 0.0,
        incomplete_seconds: 0.0,
    }
}

/// One violation per edge (verdict, source, destination, transport, port), nodes united.
fn merge_violations(v: &mut Vec<Violation>) {
    let mut merged: BTreeMap<EdgeKey, Violation> = BTreeMap::new();
    for x in v.drain(..) {
        match merged.get_mut(&x.edge.key()) {
            Some(m) => {
                m.edge.add(&x.edge);
                m.nodes.extend(x.nodes);
                m.nodes.sort();
                m.nodes.dedup();
            }
            None => {
                merged.insert(x.edge.key(), x);
            }
        }
    }
    *v = merged.into_values().collect();
    v.sort_by(|a, b| {
        b.edge
            .count
            .cmp(&a.edge.count)
            .then_with(|| a.edge.src.name().cmp(&b.edge.src.name()))
    });
}

fn seconds(start: &str, end: &str) -> f64 {
    match (parse_time(start), parse_time(end)) {
        (Some(s), Some(e)) if e > s => (e - s) as f64 / 1000.0,
        _ => 0.0,
    }
}

/// Recomputes the summary from the parts (after building or merging).
fn finish(r: &mut Report) {
    // fold from +0.0: an empty f64 sum is -0.0, which would print as "-0 s".
    r.coverage.watched_seconds = r
        .coverage
        .intervals
        .iter()
        .map(|i| seconds(&i.start, &i.end))
        .fold(0.0, |a, b| a + b);
    r.coverage.incomplete_seconds = r
        .coverage
        .intervals
        .iter()
        .filter(|i| !i.fully_audited)
        .map(|i| seconds(&i.start, &i.end))
        .fold(0.0, |a, b| a + b);
    let s = &mut r.summary;
    s.documented_connections = r.rows.len();
    s.documented_observed = r.rows.iter().filter(|x| x.observed).count();
    s.documented_not_observed = r
        .rows
        .iter()
        .filter(|x| !x.observed)
        .map(|x| {
            x.number.map_or_else(
                || format!("{} -> {}", x.source, x.destination),
                |n| n.to_string(),
            )
        })
        .collect();
    s.violation_edges = r.violations.len();
    s.violating_connections = r.violations.iter().map(|v| v.edge.count).sum();
    s.allowed_connections = s.by_verdict.get("allowed").copied().unwrap_or(0);
    s.watched_seconds = r.coverage.watched_seconds;
    s.incomplete_seconds = r.coverage.incomplete_seconds;
    s.status = if s.violation_edges > 0 {
        "violations".into()
    } else if s.incomplete_seconds > 0.0 {
        "incomplete".into()
    } else {
        "clean".into()
    };
    let watched = humantime::format_duration(Duration::from_secs(s.watched_seconds as u64));
    s.headline = format!(
        "{} across {} node(s), watched {watched}{}: {} of {} documented connections observed; {}.",
        match s.status.as_str() {
            "violations" => "Undocumented traffic found",
            "incomplete" => "No undocumented traffic seen, but auditing was incomplete",
            _ => "Traffic matches the documentation",
        },
        r.nodes.len(),
        if s.incomplete_seconds > 0.0 {
            format!(" ({:.0} s not fully audited)", s.incomplete_seconds)
        } else {
            String::new()
        },
        s.documented_observed,
        s.documented_connections,
        if s.violation_edges == 0 {
            "no violations".to_string()
        } else {
            format!(
                "{} violation edge(s), {} connection(s)",
                s.violation_edges, s.violating_connections
            )
        }
    );
}

/// Combines per-node reports (same allowlist) into one cluster report.
pub fn merge(reports: Vec<Report>) -> anyhow::Result<Report> {
    let mut it = reports.into_iter();
    let mut out = it.next().context("nothing to merge")?;
    for r in it {
        if r.schema != SCHEMA {
            bail!(
                "cannot merge a report of schema {:?} (expected {SCHEMA})",
                r.schema
            );
        }
        if r.rows.len() != out.rows.len()
            || r.rows.iter().zip(&out.rows).any(|(a, b)| {
                a.number != b.number || a.source != b.source || a.destination != b.destination
            })
        {
            bail!("the reports were made against different allowlists");
        }
        for (mine, theirs) in out.rows.iter_mut().zip(r.rows) {
            mine.observed |= theirs.observed;
            mine.count += theirs.count;
            mine.first_seen = [mine.first_seen.take(), theirs.first_seen]
                .into_iter()
                .flatten()
                .min();
            mine.last_seen = [mine.last_seen.take(), theirs.last_seen]
                .into_iter()
                .flatten()
                .max();
            mine.nodes.extend(theirs.nodes);
            mine.nodes.sort();
            mine.nodes.dedup();
            mine.examples.extend(theirs.examples);
            mine.examples.truncate(3);
        }
        out.violations.extend(r.violations);
        out.coverage.intervals.extend(r.coverage.intervals);
        out.nodes.extend(r.nodes);
        for (k, v) in r.summary.by_verdict {
            *out.summary.by_verdict.entry(k).or_default() += v;
        }
        out.period.since = [out.period.since.take(), r.period.since]
            .into_iter()
            .flatten()
            .min();
        out.period.until = [out.period.until.take(), r.period.until]
            .into_iter()
            .flatten()
            .max();
    }
    out.nodes.sort();
    out.nodes.dedup();
    merge_violations(&mut out.violations);
    out.generated_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    finish(&mut out);
    Ok(out)
}
