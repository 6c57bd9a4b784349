//! Compliance reports: for each documented connection, the evidence that it happened or
//! that it never did; every undocumented connection with proof; how long and how
//! completely the node was watched. Built from a store, merged across nodes, rendered as
//! JSON (the versioned schema in docs/report.schema.json), Markdown or HTML.

pub mod diagram;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod pdf;
pub mod prometheus;
pub mod sign;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use allowlist::{Allowlist, Classification};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::{
    edge::{Drops, Edge, EdgeKey},
    model::time::{rfc3339_millis, rfc3339_seconds},
    store::Store,
};

pub const SCHEMA: &str = "auditor-report/2";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "auditor compliance report")]
pub struct Report {
    /// Always "auditor-report/2" for this layout.
    pub schema: String,
    /// The auditor version that wrote this report.
    pub auditor_version: String,
    pub generated_at: String,
    pub period: Period,
    pub document: Document,
    pub nodes: Vec<String>,
    /// What the observations were judged against, one entry per policy (re)load in the
    /// period: file digests, the allowlist's content digest and the judging auditor's
    /// version.
    pub inputs: Vec<crate::provenance::Inputs>,
    /// Documented rows whose content changed between the allowlists judged against in the
    /// period ("row 1: A -> B tcp/443 vs C -> D tcp/80"): their counts mix two meanings.
    pub changed_rows: Vec<String>,
    pub summary: Summary,
    pub coverage: Coverage,
    /// Every documented connection, in table order.
    pub rows: Vec<RowReport>,
    /// Every edge that is not an allowed connection, most connections first.
    pub violations: Vec<Violation>,
    /// What this report's source cannot know that a store-based report does (a report
    /// computed from Prometheus has no example processes, for one). Absent for a store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<String>,
    /// Platform traffic the platform baseline allows, by entry (in the baseline's
    /// words: entry names, never row numbers). Neither violations nor observations of
    /// documented rows.
    #[serde(default)]
    pub platform: Vec<PlatformEntry>,
    /// sha256 (hex) of this report's canonical JSON with `digest` set to null: recompute
    /// it to show the report was not edited (`auditor report verify`).
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// The requested --since, else the start of the first coverage (RFC 3339).
    pub since: String,
    /// The requested --until, else the end of the last coverage (RFC 3339).
    pub until: String,
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
    /// Connections the platform baseline allowed (verdict `platform`).
    #[serde(default)]
    pub platform_connections: u64,
    /// Connections made by a service mesh's sidecars (transport and delivery legs), of
    /// any verdict: carried traffic, never counted as observations of documented rows.
    #[serde(default)]
    pub mesh_leg_connections: u64,
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
    /// Watched, fully audited time as a fraction of the period (per node, averaged).
    pub fraction: f64,
    /// The parts of the period that are not fully audited, per node: when the auditor
    /// was not running, and intervals with kernel drops.
    pub gaps: Vec<Gap>,
    pub intervals: Vec<Interval>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gap {
    pub node: String,
    pub start: String,
    pub end: String,
    /// "not_running" (no coverage) or "kernel_drops" (watched, not fully audited).
    pub reason: String,
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

/// Why a documented row counts as observed.
/// Ordered so that the stronger evidence is the greater.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// Only connections held open from before (found by the walk of open sockets).
    Active,
    /// A connection of the row was opened in the period.
    Opened,
}

impl Evidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Opened => "opened",
            Evidence::Active => "active",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowReport {
    pub number: Option<u32>,
    /// sha256 of the row's content (source, destination, transport, ports).
    pub digest: String,
    pub source: String,
    pub destination: String,
    pub protocol: String,
    pub transport: String,
    pub ports: String,
    pub classification: String,
    pub description: String,
    pub observed: bool,
    /// What the observation rests on: "opened" (a connection of the row was opened in the
    /// period) or "active" (none was opened, but one was found open by the walk of the
    /// node's sockets: a long-lived connection, e.g. a pool made before the auditor
    /// started). None when not observed.
    #[serde(default)]
    pub evidence: Option<Evidence>,
    /// Connections opened in the period (held-open ones found by the walk count 0).
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

/// One platform baseline entry's traffic in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformEntry {
    /// The baseline entry's name.
    pub entry: String,
    pub connections: u64,
    /// Its edges (verdict `platform`), most connections first.
    pub flows: Vec<Violation>,
}

/// Groups platform edges by entry, most connections first.
fn platform_entries(flows: Vec<Violation>) -> Vec<PlatformEntry> {
    let mut by: BTreeMap<String, Vec<Violation>> = BTreeMap::new();
    for f in flows {
        by.entry(f.edge.platform.clone().unwrap_or_default())
            .or_default()
            .push(f);
    }
    let mut out: Vec<PlatformEntry> = by
        .into_iter()
        .map(|(entry, mut flows)| {
            merge_violations(&mut flows);
            PlatformEntry {
                connections: flows.iter().map(|f| f.edge.count).sum(),
                entry,
                flows,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.connections
            .cmp(&a.connections)
            .then(a.entry.cmp(&b.entry))
    });
    out
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

/// Builds a report from a store. The allowlist is the one the store recorded. Another
/// one (`--allowlist`) is accepted only when its rows are the ones the observations were
/// judged against: stored observations name rows by number, and a number credited
/// against other rows would be false evidence.
pub fn from_store(
    store: &Store,
    allowlist: Option<(Allowlist, String)>,
    since: Option<i64>,
    until: Option<i64>,
) -> anyhow::Result<Report> {
    let recorded_json = store.allowlist()?;
    let recorded = recorded_json
        .as_deref()
        .map(|j| allowlist::file::parse(j, "<allowlist recorded in the store>"))
        .transpose()?;
    let mut inputs = store.inputs()?;
    if inputs.is_empty()
        && let Some(r) = &recorded
    {
        // A store from before inputs were recorded: only the allowlist's content is known.
        inputs.push(crate::provenance::Inputs {
            auditor_version: "unknown (not recorded)".into(),
            allowlist_sha256: None,
            allowlist_content_sha256: crate::provenance::allowlist_content_sha256(r),
            inventory_sha256: None,
            overrides_sha256: None,
            baseline_sha256: None,
            since: rfc3339_seconds(0),
        });
    }
    // The inputs in effect during the period: the last one before it, and those within.
    if let Some(u) = until {
        inputs.retain(|i| parse_time(&i.since).is_none_or(|t| t <= u));
    }
    if let Some(s) = since {
        let before: Vec<usize> = (0..inputs.len())
            .filter(|&k| parse_time(&inputs[k].since).is_some_and(|t| t <= s))
            .collect();
        if let Some(&last) = before.last() {
            inputs.drain(..last);
        }
    }
    let list = match (allowlist, &recorded) {
        (None, Some(r)) => r.clone(),
        (None, None) => {
            bail!("the store does not say which allowlist it was judged against: give --allowlist")
        }
        (Some((other, name)), recorded) => {
            let digest = crate::provenance::allowlist_content_sha256(&other);
            let judged: BTreeSet<&str> = inputs
                .iter()
                .map(|i| i.allowlist_content_sha256.as_str())
                .collect();
            let only_this = judged.len() == 1 && judged.contains(digest.as_str());
            if !judged.is_empty() && !only_this {
                let against = recorded
                    .as_ref()
                    .map_or(Vec::new(), |r| crate::provenance::changed_rows(&other, r));
                bail!(
                    "{name} is not the allowlist this store's observations were judged against \
                     (content sha256 {digest}; the store's: {}).\n\
                     The store names documented rows by number, so crediting {name}'s rows \
                     would be false evidence. Rows that differ ({name} vs the store's):\n  {}\n\
                     Report without --allowlist (the store's own allowlist is used), or judge \
                     the flows again against {name} with `auditor run`/`auditor replay --store`.",
                    judged.into_iter().collect::<Vec<_>>().join(", "),
                    if against.is_empty() {
                        "(same rows; the service definitions differ)".to_string()
                    } else {
                        against.join("\n  ")
                    }
                );
            }
            other
        }
    };
    // Rows whose content changed between the allowlists judged against in the period.
    let mut changed_rows = Vec::new();
    let digests: Vec<&str> = inputs
        .iter()
        .map(|i| i.allowlist_content_sha256.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if digests.len() > 1 {
        for d in &digests {
            if let Some(json) = store.allowlist_by_digest(d)? {
                let older = allowlist::file::parse(&json, "<allowlist recorded in the store>")?;
                for c in crate::provenance::changed_rows(&older, &list) {
                    if !changed_rows.contains(&c) {
                        changed_rows.push(c);
                    }
                }
            }
        }
    }

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
            // A row is credited only with traffic judged against this content (stores
            // before version 3 recorded no digest: their allowlist matched, checked above).
            let digest = crate::provenance::row_sha256(c);
            let obs: Vec<_> = rows
                .iter()
                .filter(|r| Some(r.rule) == c.number && (r.digest.is_empty() || r.digest == digest))
                .collect();
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
                digest,
                source: c.source.clone(),
                destination: c.destination.clone(),
                protocol: c.protocol.clone(),
                transport: c.transport.as_str().into(),
                ports: c.ports.to_string(),
                classification: Classification::list_to_string(&c.classification),
                description: c.description.clone(),
                observed: !obs.is_empty(),
                // The walk's records add no connections (count 0), so a row seen only by
                // it has observations and a count of 0.
                evidence: match obs.iter().map(|r| r.count).sum::<u64>() {
                    _ if obs.is_empty() => None,
                    0 => Some(Evidence::Active),
                    _ => Some(Evidence::Opened),
                },
                count: obs.iter().map(|r| r.count).sum(),
                first_seen: obs
                    .iter()
                    .map(|r| r.first_seen_ms)
                    .min()
                    .map(rfc3339_seconds),
                last_seen: obs
                    .iter()
                    .map(|r| r.last_seen_ms)
                    .max()
                    .map(rfc3339_seconds),
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
    let platform = platform_entries(
        edges
            .iter()
            .filter(|e| e.edge.verdict == crate::model::Verdict::Platform)
            .map(|e| Violation {
                edge: e.edge.clone(),
                nodes: vec![e.node.clone()],
            })
            .collect(),
    );
    let mesh_leg_connections = edges
        .iter()
        .filter(|e| e.edge.mesh_leg.is_some())
        .map(|e| e.edge.count)
        .sum();

    let intervals: Vec<Interval> = coverage
        .iter()
        .map(|c| Interval {
            node: c.node.clone(),
            start: rfc3339_millis(c.start_ms),
            end: rfc3339_millis(c.end_ms),
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
    // The period: what was asked for, else from the first to the last thing known.
    // (Coverage, when there is any, bounds what was watched; else the observations.)
    let (known_start, known_end) = if coverage.is_empty() {
        (
            edges
                .iter()
                .map(|e| e.edge.first_seen)
                .chain(rows.iter().map(|r| r.first_seen_ms))
                .min()
                .unwrap_or(0),
            edges
                .iter()
                .map(|e| e.edge.last_seen)
                .chain(rows.iter().map(|r| r.last_seen_ms))
                .max()
                .unwrap_or(0),
        )
    } else {
        (
            coverage.iter().map(|c| c.start_ms).min().unwrap_or(0),
            coverage.iter().map(|c| c.end_ms).max().unwrap_or(0),
        )
    };
    let mut report = Report {
        schema: SCHEMA.into(),
        auditor_version: crate::provenance::AUDITOR_VERSION.into(),
        generated_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        period: Period {
            since: rfc3339_millis(since.unwrap_or(known_start)),
            until: rfc3339_millis(until.unwrap_or(known_end)),
        },
        document: Document {
            title: list.document.title.clone(),
            source: list.document.source.clone(),
        },
        nodes: nodes.into_iter().collect(),
        inputs,
        changed_rows,
        summary: empty_summary(),
        coverage: Coverage {
            watched_seconds: 0.0,
            incomplete_seconds: 0.0,
            fraction: 0.0,
            gaps: Vec::new(),
            intervals,
        },
        rows: row_reports,
        violations,
        limits: Vec::new(),
        platform,
        digest: None,
    };
    report.summary.by_verdict = by_verdict;
    report.summary.mesh_leg_connections = mesh_leg_connections;
    finish(&mut report);
    Ok(report)
}

/// sha256 of the report's canonical JSON (compact, `digest` null).
pub fn compute_digest(r: &Report) -> String {
    let mut copy = r.clone();
    copy.digest = None;
    crate::provenance::sha256_hex(
        serde_json::to_string(&copy)
            .expect("a report serialises")
            .as_bytes(),
    )
}

/// Sets the report's own digest (last, after everything else is final).
pub fn seal(r: &mut Report) {
    r.digest = Some(compute_digest(r));
}

/// Merges a node's intervals into disjoint spans: overlapping coverage counts once.
fn union(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.sort();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn span_seconds(spans: &[(i64, i64)]) -> f64 {
    spans
        .iter()
        .map(|(s, e)| (e - s).max(0) as f64 / 1000.0)
        .fold(0.0, |a, b| a + b)
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
        platform_connections: 0,
        mesh_leg_connections: 0,
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

/// Recomputes the summary from the parts (after building or merging).
fn finish(r: &mut Report) {
    // Coverage per node as disjoint spans (overlaps count once), clipped to the period.
    let (p0, p1) = (
        parse_time(&r.period.since).unwrap_or(0),
        parse_time(&r.period.until).unwrap_or(0),
    );
    let clip = |(s, e): (i64, i64)| (s.max(p0), e.min(p1));
    let mut watched = 0.0;
    let mut incomplete = 0.0;
    let mut gaps = Vec::new();
    for node in &r.nodes {
        let spans = |only_drops: bool| {
            union(
                r.coverage
                    .intervals
                    .iter()
                    .filter(|i| &i.node == node && (!only_drops || !i.fully_audited))
                    .filter_map(|i| Some((parse_time(&i.start)?, parse_time(&i.end)?)))
                    .map(clip)
                    .filter(|(s, e)| e > s)
                    .collect(),
            )
        };
        let all = spans(false);
        let dropped = spans(true);
        watched += span_seconds(&all);
        incomplete += span_seconds(&dropped);
        let mut at = p0;
        for &(s, e) in &all {
            if s > at {
                gaps.push((node.clone(), at, s, "not_running"));
            }
            at = at.max(e);
        }
        if p1 > at {
            gaps.push((node.clone(), at, p1, "not_running"));
        }
        for (s, e) in dropped {
            gaps.push((node.clone(), s, e, "kernel_drops"));
        }
    }
    gaps.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    r.coverage.gaps = gaps
        .into_iter()
        .map(|(node, s, e, reason)| Gap {
            node,
            start: rfc3339_millis(s),
            end: rfc3339_millis(e),
            reason: reason.into(),
        })
        .collect();
    r.coverage.watched_seconds = watched;
    r.coverage.incomplete_seconds = incomplete;
    let possible = (p1 - p0).max(0) as f64 / 1000.0 * r.nodes.len() as f64;
    r.coverage.fraction = if possible > 0.0 {
        (((watched - incomplete) / possible).clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0
    } else {
        0.0
    };
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
    s.platform_connections = r.platform.iter().map(|p| p.connections).sum();
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
    let fraction = r.coverage.fraction;
    s.headline = format!(
        "{} across {} node(s), watched {watched} ({:.0}% of the period fully audited){}: {} of {} documented connections observed; {}.",
        match s.status.as_str() {
            "violations" => "Undocumented traffic found",
            "incomplete" => "No undocumented traffic seen, but auditing was incomplete",
            _ => "Traffic matches the documentation",
        },
        r.nodes.len(),
        fraction * 100.0,
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
    if s.platform_connections > 0 {
        s.headline.pop();
        s.headline.push_str(&format!(
            "; {} platform connection(s) allowed by the baseline ({} entr{}).",
            s.platform_connections,
            r.platform.len(),
            if r.platform.len() == 1 { "y" } else { "ies" }
        ));
    }
}

/// Combines per-node reports (same allowlist) into one cluster report. The same report
/// (node, period and evidence) given twice counts once; two different reports whose
/// coverage of one node overlaps are refused, since their counts cannot be told apart.
/// A report whose digest does not match its content was edited, and is refused.
pub fn merge(reports: Vec<(String, Report)>) -> anyhow::Result<Report> {
    let mut it = reports.into_iter();
    let (first_name, mut out) = it.next().context("nothing to merge")?;
    check_digest(&first_name, &out)?;
    let mut seen: Vec<(String, String)> = vec![(first_name, evidence_key(&out))];
    for (name, r) in it {
        check_digest(&name, &r)?;
        if r.schema != SCHEMA {
            bail!(
                "{name}: cannot merge a report of schema {:?} (expected {SCHEMA})",
                r.schema
            );
        }
        if r.rows.len() != out.rows.len()
            || r.rows
                .iter()
                .zip(&out.rows)
                .any(|(a, b)| a.number != b.number || a.digest != b.digest)
        {
            bail!("{name}: the reports were made against different allowlists");
        }
        let key = evidence_key(&r);
        if let Some((earlier, _)) = seen.iter().find(|(_, k)| *k == key) {
            eprintln!(
                "auditor: note: {name} is the same evidence (nodes, period, observations) as {earlier}: counted once"
            );
            continue;
        }
        for i in &r.coverage.intervals {
            let (Some(s), Some(e)) = (parse_time(&i.start), parse_time(&i.end)) else {
                continue;
            };
            if let Some(o) = out.coverage.intervals.iter().find(|o| {
                o.node == i.node
                    && parse_time(&o.start).is_some_and(|os| os < e)
                    && parse_time(&o.end).is_some_and(|oe| s < oe)
            }) {
                bail!(
                    "{name}: its coverage of node {} ({} – {}) overlaps another report's ({} – {}): \
                     adding their counts would count the same connections twice. Merge one \
                     report per node and period (e.g. `auditor report --store` each node once).",
                    i.node,
                    i.start,
                    i.end,
                    o.start,
                    o.end
                );
            }
        }
        seen.push((name, key));
        for (mine, theirs) in out.rows.iter_mut().zip(r.rows) {
            mine.observed |= theirs.observed;
            // Opened anywhere beats active only.
            mine.evidence = mine.evidence.max(theirs.evidence);
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
        out.platform.extend(r.platform);
        out.summary.mesh_leg_connections += r.summary.mesh_leg_connections;
        out.coverage.intervals.extend(r.coverage.intervals);
        out.nodes.extend(r.nodes);
        for i in r.inputs {
            if !out.inputs.contains(&i) {
                out.inputs.push(i);
            }
        }
        for l in r.limits {
            if !out.limits.contains(&l) {
                out.limits.push(l);
            }
        }
        for c in r.changed_rows {
            if !out.changed_rows.contains(&c) {
                out.changed_rows.push(c);
            }
        }
        for (k, v) in r.summary.by_verdict {
            *out.summary.by_verdict.entry(k).or_default() += v;
        }
        out.period.since = out.period.since.clone().min(r.period.since);
        out.period.until = out.period.until.clone().max(r.period.until);
    }
    out.nodes.sort();
    out.nodes.dedup();
    merge_violations(&mut out.violations);
    out.platform = platform_entries(
        std::mem::take(&mut out.platform)
            .into_iter()
            .flat_map(|p| p.flows)
            .collect(),
    );
    out.auditor_version = crate::provenance::AUDITOR_VERSION.into();
    out.generated_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    out.digest = None;
    finish(&mut out);
    Ok(out)
}

/// A report that carries a digest must match it.
fn check_digest(name: &str, r: &Report) -> anyhow::Result<()> {
    if let Some(d) = &r.digest {
        let actual = compute_digest(r);
        if *d != actual {
            bail!(
                "{name}: its digest {d} does not match its content (sha256 {actual}): the report was edited after it was written"
            );
        }
    }
    Ok(())
}

/// What makes two reports the same evidence: everything but when they were written.
fn evidence_key(r: &Report) -> String {
    let mut c = r.clone();
    c.generated_at = String::new();
    c.digest = None;
    c.auditor_version = String::new();
    serde_json::to_string(&c).expect("a report serialises")
}

/// The header an auditor reads first, in every format: who wrote the report, about
/// which nodes and period, how much of it was audited, against which inputs.
pub fn header_facts(r: &Report) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("Auditor version", r.auditor_version.clone()),
        ("Nodes", r.nodes.join(", ")),
        ("Period", format!("{} – {}", r.period.since, r.period.until)),
        (
            "Coverage",
            format!(
                "{:.1}% of the period fully audited ({:.0} s watched, {:.0} s with kernel drops, {} gap(s))",
                r.coverage.fraction * 100.0,
                r.coverage.watched_seconds,
                r.coverage.incomplete_seconds,
                r.coverage.gaps.len()
            ),
        ),
    ];
    for (k, i) in r.inputs.iter().enumerate() {
        let mut parts = vec![format!(
            "allowlist sha256 {}",
            i.allowlist_sha256
                .as_deref()
                .unwrap_or("(file not recorded)")
        )];
        parts.push(format!("content sha256 {}", i.allowlist_content_sha256));
        if let Some(d) = &i.inventory_sha256 {
            parts.push(format!("inventory sha256 {d}"));
        }
        if let Some(d) = &i.overrides_sha256 {
            parts.push(format!("overrides sha256 {d}"));
        }
        if let Some(d) = &i.baseline_sha256 {
            parts.push(format!("platform baseline sha256 {d}"));
        }
        parts.push(format!(
            "judged by auditor {} from {}",
            i.auditor_version, i.since
        ));
        v.push((
            if k == 0 {
                "Inputs"
            } else {
                "Inputs (reloaded)"
            },
            parts.join("; "),
        ));
    }
    if !r.changed_rows.is_empty() {
        v.push(("Rows changed between allowlists", r.changed_rows.join("; ")));
    }
    if !r.limits.is_empty() {
        v.push(("Limits of this report", r.limits.join(" ")));
    }
    v.push(("Generated", r.generated_at.clone()));
    v.push((
        "Report digest",
        r.digest
            .clone()
            .map_or("(none)".to_string(), |d| format!("sha256 {d}")),
    ));
    v
}
