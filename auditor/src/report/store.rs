//! A report built from a node's store: the documented rows credited with the stored
//! observations, the edges that are not allowed connections, the coverage, and the
//! inputs the observations were judged against.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::SystemTime,
};

use allowlist::Allowlist;
use anyhow::bail;

use super::{
    Capture, Coverage, Document, Evidence, Interval, ObservedEdge, Period, PlatformEntry, Replayed,
    Report, RowReport, SCHEMA,
    merge::{finish, merge_violations, platform_entries},
    model::{empty_summary, parse_time},
};
use crate::{
    model::time::{rfc3339_millis, rfc3339_seconds},
    provenance::Inputs,
    store::{CoverageInterval, RowObservation, Store, StoredEdge},
};

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
    let inputs = inputs_in_period(store.inputs()?, recorded.as_ref(), since, until);
    let list = allowlist_to_credit(allowlist, recorded.as_ref(), &inputs)?;
    let changed_rows = changed_rows(store, &inputs, &list)?;

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

    let unverified = port_unverified_rules(&list, &inputs);
    let (known_start, known_end) = known_period(&edges, &rows, &coverage);
    let mut report = Report {
        schema: SCHEMA.into(),
        auditor_version: crate::provenance::AUDITOR_VERSION.into(),
        generated_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        capture: Some(capture(store)?),
        period: Period {
            since: rfc3339_millis(since.unwrap_or(known_start)),
            until: rfc3339_millis(until.unwrap_or(known_end)),
        },
        document: Document {
            title: list.document.title.clone(),
            origin: list.document.source.clone(),
        },
        nodes: nodes.into_iter().collect(),
        inputs,
        changed_rows,
        summary: empty_summary(),
        coverage: Coverage {
            watched_seconds: 0.0,
            incomplete_seconds: 0.0,
            fraction: None,
            known: None,
            gaps: Vec::new(),
            intervals: intervals(&coverage),
            expected_nodes: Vec::new(),
            missing_nodes: Vec::new(),
        },
        rows: list
            .connections
            .iter()
            .map(|c| row_report(c, &rows, &unverified))
            .collect(),
        violations: violations(&edges),
        limits: bucket_limits(store, since, until)?,
        platform: platform(&edges),
        names: Some(super::names::from_store(
            &edges,
            &store.learned(since, until)?,
        )),
        document_findings: Vec::new(),
        accepted: Vec::new(),
        exceptions: None,
        controls: None,
        previous: None,
        digest: None,
    };
    report.summary.by_verdict = by_verdict(&edges);
    report.summary.mesh_leg_connections = edges
        .iter()
        .filter(|e| e.edge.mesh_leg.is_some())
        .map(|e| e.edge.count)
        .sum();
    super::attach_findings(&mut report, &list);
    finish(&mut report);
    Ok(report)
}

/// Where the store's observations came from, as it recorded them.
fn capture(store: &Store) -> anyhow::Result<Capture> {
    let Some(rows) = store.captures()? else {
        return Ok(Capture::new("unknown", Vec::new(), Vec::new()));
    };
    let live: Vec<String> = rows
        .iter()
        .filter(|c| c.mode == "live")
        .map(|c| c.node.clone())
        .collect();
    let replays: Vec<Replayed> = rows
        .iter()
        .filter(|c| c.mode == "replay")
        .map(|c| Replayed {
            file: c.flows_file.clone().unwrap_or_else(|| "-".into()),
            sha256: c.flows_sha256.clone().unwrap_or_default(),
            node: c.node.clone(),
            capture_nodes: c
                .capture_node
                .as_deref()
                .map_or(Vec::new(), |n| n.split(',').map(str::to_string).collect()),
            intervals_known: c.intervals_known.unwrap_or(false),
        })
        .collect();
    let mode = match (live.is_empty(), replays.is_empty()) {
        (false, true) => "live",
        (true, false) => "replay",
        (false, false) => "mixed",
        // A version 5 store nothing recorded its origin in (opened, never written).
        (true, true) => "unknown",
    };
    Ok(Capture::new(mode, live, replays))
}

/// The inputs in effect during the period: the last one before it, and those within.
fn inputs_in_period(
    mut inputs: Vec<Inputs>,
    recorded: Option<&Allowlist>,
    since: Option<i64>,
    until: Option<i64>,
) -> Vec<Inputs> {
    if inputs.is_empty()
        && let Some(r) = recorded
    {
        // A store from before inputs were recorded: only the allowlist's content is known.
        inputs.push(Inputs {
            auditor_version: "unknown (not recorded)".into(),
            allowlist_sha256: None,
            allowlist_content_sha256: crate::provenance::allowlist_content_sha256(r),
            inventory_sha256: None,
            overrides_sha256: None,
            baseline_sha256: None,
            since: rfc3339_seconds(0),
            rules_port_unverified: None,
        });
    }
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
    inputs
}

/// The allowlist whose rows the report credits: the recorded one, or the given one when
/// it is the one every observation in the period was judged against.
fn allowlist_to_credit(
    given: Option<(Allowlist, String)>,
    recorded: Option<&Allowlist>,
    inputs: &[Inputs],
) -> anyhow::Result<Allowlist> {
    let (other, name) = match (given, recorded) {
        (None, Some(r)) => return Ok(r.clone()),
        (None, None) => {
            bail!("the store does not say which allowlist it was judged against: give --allowlist")
        }
        (Some(given), _) => given,
    };
    let digest = crate::provenance::allowlist_content_sha256(&other);
    let judged: BTreeSet<&str> = inputs
        .iter()
        .map(|i| i.allowlist_content_sha256.as_str())
        .collect();
    let only_this = judged.len() == 1 && judged.contains(digest.as_str());
    if !judged.is_empty() && !only_this {
        let against = recorded.map_or(Vec::new(), |r| crate::provenance::changed_rows(&other, r));
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
    Ok(other)
}

/// Rows whose content changed between the allowlists judged against in the period.
fn changed_rows(store: &Store, inputs: &[Inputs], list: &Allowlist) -> anyhow::Result<Vec<String>> {
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
                for c in crate::provenance::changed_rows(&older, list) {
                    if !changed_rows.contains(&c) {
                        changed_rows.push(c);
                    }
                }
            }
        }
    }
    Ok(changed_rows)
}

/// The rows judged on any port under any of the inputs of the period (their
/// observations do not verify the port). Inputs that did not record them (older stores,
/// Prometheus) count every row whose document gives no port: an override may have given
/// one, but nothing says so.
pub(super) fn port_unverified_rules(list: &Allowlist, inputs: &[Inputs]) -> BTreeSet<u32> {
    let no_port: Vec<u32> = list
        .connections
        .iter()
        .filter(|c| matches!(c.ports, allowlist::Ports::Unknown { .. }))
        .filter_map(|c| c.number)
        .collect();
    if inputs.is_empty() {
        return no_port.into_iter().collect();
    }
    inputs
        .iter()
        .flat_map(|i| i.rules_port_unverified.as_ref().unwrap_or(&no_port))
        .copied()
        .collect()
}

/// One documented row and the stored observations credited to it.
fn row_report(
    c: &allowlist::Connection,
    rows: &[RowObservation],
    port_unverified: &BTreeSet<u32>,
) -> RowReport {
    // A row is credited only with traffic judged against this content (stores
    // before version 3 recorded no digest: their allowlist matched, checked above).
    let port_verified = !c.number.is_some_and(|n| port_unverified.contains(&n));
    let row = RowReport::unobserved(c, port_verified);
    let obs: Vec<_> = rows
        .iter()
        .filter(|r| Some(r.rule) == c.number && (r.digest.is_empty() || r.digest == row.digest))
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
        ..row
    }
}

/// The stored edges of the verdicts `keep` selects, each with the node that saw it.
fn seen_edges(
    edges: &[StoredEdge],
    keep: impl Fn(crate::model::Verdict) -> bool,
) -> Vec<ObservedEdge> {
    edges
        .iter()
        .filter(|e| keep(e.edge.verdict))
        .map(|e| ObservedEdge {
            edge: e.edge.clone(),
            nodes: vec![e.node.clone()],
            explained_by: Vec::new(),
            exception: None,
        })
        .collect()
}

/// Every edge that is not an allowed connection, united across nodes.
fn violations(edges: &[StoredEdge]) -> Vec<ObservedEdge> {
    let mut violations = seen_edges(edges, |v| v.is_violation());
    merge_violations(&mut violations);
    violations
}

/// The edges the platform baseline allowed, by entry.
fn platform(edges: &[StoredEdge]) -> Vec<PlatformEntry> {
    platform_entries(seen_edges(edges, |v| v == crate::model::Verdict::Platform))
}

fn intervals(coverage: &[CoverageInterval]) -> Vec<Interval> {
    coverage
        .iter()
        .map(|c| Interval {
            node: c.node.clone(),
            start: rfc3339_millis(c.start_ms),
            end: rfc3339_millis(c.end_ms),
            fully_audited: c.drops.lost() == 0,
            drops: c.drops,
        })
        .collect()
}

/// Connections per verdict.
fn by_verdict(edges: &[StoredEdge]) -> BTreeMap<String, u64> {
    edges
        .iter()
        .fold(BTreeMap::new(), |mut m: BTreeMap<String, u64>, e| {
            *m.entry(e.edge.verdict.as_str().to_string()).or_default() += e.edge.count;
            m
        })
}

/// What a period cannot know of its counts: the store keeps them per bucket, so the
/// buckets a period cuts count whole; what was stored before buckets (or is in an older
/// store) counts whole wherever it reaches.
fn bucket_limits(
    store: &Store,
    since: Option<i64>,
    until: Option<i64>,
) -> anyhow::Result<Vec<String>> {
    use crate::store::{BUCKET_MS, bucket_of};
    let mut out = Vec::new();
    let asked = since.is_some() || until.is_some();
    if asked && store.whole_in_period(since, until)? {
        out.push(
            "Some observations in this store were kept whole, per edge and row over their whole time (a store before version 8, or what it held before its upgrade): those count whole in any period they reach, including connections before or after it.".to_string(),
        );
    }
    let cut: Vec<String> = [since, until]
        .into_iter()
        .flatten()
        .filter(|&t| bucket_of(t) != t)
        .map(rfc3339_millis)
        .collect();
    if store.bucketed() && !cut.is_empty() {
        out.push(format!(
            "The store counts connections per {}-minute bucket: this period's bound{} ({}) fall{} inside one, so its edges and rows count that whole bucket, up to {} minutes outside the period. A period that starts and ends on the buckets (as `--chain` makes) counts exactly.",
            BUCKET_MS / 60_000,
            if cut.len() == 1 { "" } else { "s" },
            cut.join(", "),
            if cut.len() == 1 { "s" } else { "" },
            BUCKET_MS / 60_000
        ));
    }
    Ok(out)
}

/// The period when none was asked for: from the first to the last thing known.
/// (Coverage, when there is any, bounds what was watched; else the observations.)
fn known_period(
    edges: &[StoredEdge],
    rows: &[RowObservation],
    coverage: &[CoverageInterval],
) -> (i64, i64) {
    if coverage.is_empty() {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Batch, CaptureSource, CoverageUpdate};

    /// A store of one node's edge and an hour watched, with the bundled allowlist.
    fn store(name: &str, capture: CaptureSource) -> (Store, std::path::PathBuf) {
        let d = std::env::temp_dir().join(format!(
            "auditor-report-capture-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../allowlist/voice-microservices.yaml"
        ))
        .unwrap();
        let list = allowlist::file::parse(&text, "voice-microservices.yaml").unwrap();
        let mut s = Store::open(&d.join("s.db")).unwrap();
        s.set_allowlist(&allowlist::file::to_json(&list)).unwrap();
        let mut b = Batch::default();
        b.add_edge(crate::edge::test_edge(1, 1_000));
        b.coverage = Some(CoverageUpdate {
            session_start_ms: 0,
            start_ms: 0,
            end_ms: 3_600_000,
            drops: Default::default(),
        });
        if capture.mode == "live" {
            s.record_capture(&capture).unwrap();
        } else {
            b.capture = Some(capture.clone());
        }
        s.commit(&capture.node, &b).unwrap();
        (s, d)
    }

    #[test]
    fn a_live_store_is_live_and_merged_with_a_replay_is_mixed() {
        let (s, d1) = store("live", CaptureSource::test_live("n1", 0));
        let mut a = from_store(&s, None, None, None).unwrap();
        let c = a.capture.clone().unwrap();
        assert_eq!(c.mode, "live");
        assert_eq!(c.statement, "live capture on 1 node (n1)");
        assert!(
            !a.summary.headline.contains("live capture"),
            "{}",
            a.summary.headline
        );
        assert_eq!(a.coverage.known, Some(true));
        let replayed = CaptureSource {
            mode: "replay".into(),
            node: "n2".into(),
            kernel: None,
            flows_file: Some("flows.jsonl".into()),
            flows_sha256: Some("ab12".into()),
            capture_node: None,
            intervals_known: Some(false),
            ..CaptureSource::test_live("n2", 0)
        };
        let (s2, d2) = store("replay", replayed);
        let mut b = from_store(&s2, None, None, None).unwrap();
        assert_eq!(b.capture.as_ref().unwrap().mode, "replay");
        assert_eq!(b.coverage.fraction, None);
        super::super::seal(&mut a);
        super::super::seal(&mut b);
        let m = super::super::merge(vec![("a".into(), a), ("b".into(), b)]).unwrap();
        let c = m.capture.unwrap();
        assert_eq!(c.mode, "mixed");
        assert_eq!(
            c.statement,
            "live capture on 1 node (n1); and replayed from flows.jsonl sha256 ab12 \
             (without capture intervals: coverage unknown): not live capture"
        );
        // One part's coverage unknown: the whole one's is.
        assert_eq!(m.coverage.fraction, None);
        assert_eq!(m.coverage.known, Some(false));
        for d in [d1, d2] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
