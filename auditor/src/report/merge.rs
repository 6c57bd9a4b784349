//! Reports combined and completed: per-node reports merged into one cluster report,
//! edges united across nodes, and the summary and coverage recomputed from the parts.

use std::{collections::BTreeMap, time::SystemTime};

use anyhow::{Context, bail};

use super::{
    Gap, ObservedEdge, PlatformEntry, Report, SCHEMA,
    model::{Capture, SCHEMA_2, SCHEMA_3, SCHEMA_4, SCHEMA_5, SCHEMA_6, SCHEMA_7, parse_time},
    seal::check_digest,
};
use crate::{
    edge::EdgeKey,
    model::time::{duration_text, rfc3339_millis},
};

/// Combines per-node reports (same allowlist) into one cluster report. The same report
/// (node, period and evidence) given twice counts once; two different reports whose
/// coverage of one node overlaps are refused, since their counts cannot be told apart.
/// A report whose digest does not match its content was edited, and is refused.
pub fn merge(reports: Vec<(String, Report)>) -> anyhow::Result<Report> {
    let mut it = reports.into_iter();
    let (first_name, mut out) = it.next().context("nothing to merge")?;
    check_digest(&first_name, &out)?;
    as_documents_judge(&first_name, &mut out);
    let mut seen: Vec<(String, String)> = vec![(first_name, evidence_key(&out))];
    for (name, mut r) in it {
        check_digest(&name, &r)?;
        as_documents_judge(&name, &mut r);
        check_mergeable(&name, &r, &out)?;
        let key = evidence_key(&r);
        if let Some((earlier, _)) = seen.iter().find(|(_, k)| *k == key) {
            eprintln!(
                "auditor: note: {name} is the same evidence (nodes, period, observations) as {earlier}: counted once"
            );
            continue;
        }
        check_no_overlap(&name, &r, &out)?;
        seen.push((name, key));
        add(&mut out, r);
    }
    // A report from before /4 does not say where its observations came from.
    if out.capture.is_none() {
        out.capture = Some(Capture::combine(None, None));
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
    // Written in this layout whatever the inputs' (a /2 report reads into the same model).
    out.schema = SCHEMA.into();
    out.auditor_version = crate::provenance::AUDITOR_VERSION.into();
    out.generated_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    out.digest = None;
    // A merge is a new report: it follows what `--previous` names, not its inputs' chains.
    out.previous = None;
    finish(&mut out);
    Ok(out)
}

/// An input judged by the documents alone: its accepted exceptions are violations
/// again and its controls are dropped, since both are re-evaluated on the merged report
/// (with the merge's own `--exceptions` and mappings).
fn as_documents_judge(name: &str, r: &mut Report) {
    if let Some(x) = &r.exceptions {
        eprintln!(
            "auditor: note: {name} had the exceptions of {} applied: the merged report applies only those --exceptions gives",
            x.file
        );
    }
    let accepted = std::mem::take(&mut r.accepted);
    r.violations.extend(accepted);
    for v in &mut r.violations {
        v.exception = None;
    }
    r.exceptions = None;
    merge_violations(&mut r.violations);
    r.controls = None;
}

/// A report merges only with one of this layout, made against the same allowlist.
fn check_mergeable(name: &str, r: &Report, out: &Report) -> anyhow::Result<()> {
    if ![
        SCHEMA, SCHEMA_7, SCHEMA_6, SCHEMA_5, SCHEMA_4, SCHEMA_3, SCHEMA_2,
    ]
    .contains(&r.schema.as_str())
    {
        bail!(
            "{name}: cannot merge a report of schema {:?} (expected {SCHEMA}, {SCHEMA_7}, {SCHEMA_6}, {SCHEMA_5}, {SCHEMA_4}, {SCHEMA_3} or {SCHEMA_2})",
            r.schema
        );
    }
    if r.rows.len() != out.rows.len()
        || r.rows
            .iter()
            .zip(&out.rows)
            .any(|(a, b)| a.rule != b.rule || a.digest != b.digest)
    {
        bail!("{name}: the reports were made against different allowlists");
    }
    Ok(())
}

/// Two reports covering the same node at the same time would count its connections twice.
fn check_no_overlap(name: &str, r: &Report, out: &Report) -> anyhow::Result<()> {
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
    Ok(())
}

/// Adds one report's evidence to `out` (edges, nodes and the summary are tidied after).
fn add(out: &mut Report, r: Report) {
    for (mine, theirs) in out.rows.iter_mut().zip(r.rows) {
        mine.observed |= theirs.observed;
        // Judged on any port on one node is unverified in the cluster.
        mine.port_verified &= theirs.port_verified;
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
    out.capture = Some(Capture::combine(out.capture.take(), r.capture));
    out.names = super::names::combine(out.names.take(), r.names);
    // A part whose coverage was unknown leaves the whole unknown.
    if r.coverage.known == Some(false) {
        out.coverage.known = Some(false);
    }
    out.violations.extend(r.violations);
    out.platform.extend(r.platform);
    out.summary.mesh_leg_connections += r.summary.mesh_leg_connections;
    out.coverage.intervals.extend(r.coverage.intervals);
    out.nodes.extend(r.nodes);
    add_new(&mut out.coverage.expected_nodes, r.coverage.expected_nodes);
    add_new(&mut out.inputs, r.inputs);
    add_new(&mut out.limits, r.limits);
    add_new(&mut out.changed_rows, r.changed_rows);
    for (k, v) in r.summary.by_verdict {
        *out.summary.by_verdict.entry(k).or_default() += v;
    }
    out.period.since = out.period.since.clone().min(r.period.since);
    out.period.until = out.period.until.clone().max(r.period.until);
}

/// Appends the items `to` does not have yet, in order.
fn add_new<T: PartialEq>(to: &mut Vec<T>, items: Vec<T>) {
    for i in items {
        if !to.contains(&i) {
            to.push(i);
        }
    }
}

/// What makes two reports the same evidence: everything but when they were written.
fn evidence_key(r: &Report) -> String {
    let mut c = r.clone();
    c.generated_at = String::new();
    c.digest = None;
    c.auditor_version = String::new();
    serde_json::to_string(&c).expect("a report serialises")
}

/// One violation per edge (verdict, source, destination, transport, port), nodes united.
pub(super) fn merge_violations(v: &mut Vec<ObservedEdge>) {
    let mut merged: BTreeMap<EdgeKey, ObservedEdge> = BTreeMap::new();
    for x in v.drain(..) {
        match merged.get_mut(&x.edge.key()) {
            Some(m) => {
                m.edge.add(&x.edge);
                m.nodes.extend(x.nodes);
                m.nodes.sort();
                m.nodes.dedup();
                m.explained_by.extend(x.explained_by);
                m.explained_by.sort();
                m.explained_by.dedup();
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

/// Groups platform edges by entry, most connections first.
pub(super) fn platform_entries(flows: Vec<ObservedEdge>) -> Vec<PlatformEntry> {
    let mut by: BTreeMap<String, Vec<ObservedEdge>> = BTreeMap::new();
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

/// Sets the nodes the report should cover (`--expect-nodes`, replacing any the parts
/// carried) and recomputes coverage and summary: one that never reported is a gap.
pub fn expect_nodes(r: &mut Report, nodes: Vec<String>) {
    r.coverage.expected_nodes = nodes;
    finish(r);
}

/// Recomputes the summary from the parts (after building or merging).
pub(super) fn finish(r: &mut Report) {
    compute_coverage(r);
    if let Some(n) = &mut r.names {
        super::names::finish(n, &r.nodes);
    }
    let s = &mut r.summary;
    s.documented_connections = r.rows.len();
    s.documented_observed = r.rows.iter().filter(|x| x.observed).count();
    s.documented_observed_port_unverified = r
        .rows
        .iter()
        .filter(|x| x.observed && !x.port_verified)
        .count();
    s.documented_not_observed = r
        .rows
        .iter()
        .filter(|x| !x.observed)
        .map(|x| {
            x.rule
                .map_or_else(|| format!("{} -> {}", x.src, x.dst), |n| n.to_string())
        })
        .collect();
    s.violation_edges = r.violations.len();
    s.violating_connections = r.violations.iter().map(|v| v.edge.count).sum();
    s.accepted_edges = r.accepted.len();
    s.accepted_connections = r.accepted.iter().map(|v| v.edge.count).sum();
    s.allowed_connections = s.by_verdict.get("allowed").copied().unwrap_or(0);
    s.platform_connections = r.platform.iter().map(|p| p.connections).sum();
    s.watched_seconds = r.coverage.watched_seconds;
    s.incomplete_seconds = r.coverage.incomplete_seconds;
    s.status = if s.violation_edges > 0 {
        "violations".into()
    } else if s.incomplete_seconds > 0.0
        || !r.coverage.missing_nodes.is_empty()
        // Part of the period not watched: nothing is known of it.
        || r.coverage.fraction.is_some_and(|f| f < 1.0)
        // Unknown coverage: no time is known to be fully audited, so nothing is "clean".
        || r.coverage.fraction.is_none()
    {
        "incomplete".into()
    } else {
        "clean".into()
    };
    r.summary.headline = headline(r);
}

/// Coverage per node as disjoint spans (overlaps count once), clipped to the period:
/// watched and incomplete seconds, the gaps, and the fraction fully audited.
fn compute_coverage(r: &mut Report) {
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
    // An expected node that never reported was not watched at all: a gap over the
    // whole period, and a node's share of the fraction at 0.
    r.coverage.expected_nodes.sort();
    r.coverage.expected_nodes.dedup();
    r.coverage.missing_nodes = r
        .coverage
        .expected_nodes
        .iter()
        .filter(|n| !r.nodes.contains(n))
        .cloned()
        .collect();
    for node in &r.coverage.missing_nodes {
        gaps.push((node.clone(), p0, p1, "never_reported"));
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
    let node_count = r.nodes.len() + r.coverage.missing_nodes.len();
    let possible = (p1 - p0).max(0) as f64 / 1000.0 * node_count as f64;
    // Unknown when a recording replayed without saying what it watched: its node's
    // watched time is not zero, it is not known, and no fraction may claim otherwise.
    let known = coverage_known(r);
    r.coverage.known = Some(known);
    r.coverage.fraction = match known {
        false => None,
        true if possible > 0.0 => Some(
            (((watched - incomplete) / possible).clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0,
        ),
        true => Some(0.0),
    };
    if !known {
        // "Not running" is a claim too: of a node whose watching is unknown, none.
        let unknown: Vec<String> = unknown_nodes(r);
        r.coverage
            .gaps
            .retain(|g| !(g.reason == "not_running" && unknown.contains(&g.node)));
    }
}

/// Whether the report knows how long its nodes were watched: not when a replay without
/// capture intervals (or one merged in) put observations in it.
fn coverage_known(r: &Report) -> bool {
    r.coverage.known != Some(false) && unknown_nodes(r).is_empty()
}

/// The store nodes whose observations were replayed without capture intervals.
fn unknown_nodes(r: &Report) -> Vec<String> {
    r.capture.as_ref().map_or(Vec::new(), |c| {
        c.replays
            .iter()
            .filter(|p| !p.intervals_known)
            .map(|p| p.node.clone())
            .collect()
    })
}

/// The summary's one sentence, from the summary's figures.
fn headline(r: &Report) -> String {
    let s = &r.summary;
    let watched = duration_text(s.watched_seconds);
    let missing = &r.coverage.missing_nodes;
    let audited = match r.coverage.fraction {
        Some(f) => format!(
            "watched {watched} ({:.0}% of the period fully audited)",
            f * 100.0
        ),
        None => "coverage unknown: replayed without capture intervals".to_string(),
    };
    let mut headline = format!(
        "{}{} across {} node(s){}, {audited}{}: {} of {} documented connections observed{}; {}.",
        // Short here: the banner and the header carry the whole statement.
        match r.capture.as_ref().map(|c| c.mode.as_str()) {
            Some("live") => "",
            Some("replay") => "Replayed records, not live capture. ",
            Some("mixed") => "Partly replayed records, not all live capture. ",
            _ => "Not shown to be live capture. ",
        },
        match s.status.as_str() {
            "violations" => "Undocumented traffic found",
            "incomplete" => "No undocumented traffic seen, but auditing was incomplete",
            _ => "Traffic matches the documentation",
        },
        r.nodes.len(),
        if missing.is_empty() {
            String::new()
        } else {
            format!(
                " ({} of {} expected nodes never reported: {})",
                missing.len(),
                r.coverage.expected_nodes.len(),
                missing.join(", ")
            )
        },
        if s.incomplete_seconds > 0.0 {
            format!(
                " ({} not fully audited)",
                duration_text(s.incomplete_seconds)
            )
        } else {
            String::new()
        },
        s.documented_observed,
        s.documented_connections,
        if s.documented_observed_port_unverified > 0 {
            format!(
                " ({} of them observed, port not verified)",
                s.documented_observed_port_unverified
            )
        } else {
            String::new()
        },
        if s.violation_edges == 0 {
            "no violations".to_string()
        } else {
            format!(
                "{} violation edge(s), {} connection(s)",
                s.violation_edges, s.violating_connections
            )
        }
    );
    if s.accepted_edges > 0 {
        headline.pop();
        headline.push_str(&format!(
            "; {} edge(s), {} connection(s) accepted as exceptions.",
            s.accepted_edges, s.accepted_connections
        ));
    }
    if s.platform_connections > 0 {
        headline.pop();
        headline.push_str(&format!(
            "; {} platform connection(s) allowed by the baseline ({} entr{}).",
            s.platform_connections,
            r.platform.len(),
            if r.platform.len() == 1 { "y" } else { "ies" }
        ));
    }
    headline
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
