//! `auditor replay`: judge recorded flows offline, one verdict per flow, and optionally
//! keep them in a store. Needs no root.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read, Write},
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::{
    capture::FlowRecord,
    cli::{FailOn, ReplayConfig},
    commands::{
        offline_judge,
        watch::{DnsLine, WatchLine},
    },
    daemon::sinks::StoreSink,
    edge::Drops,
    model::{
        FlowView, Millis,
        time::{parse_rfc3339, rfc3339_millis, unix_ms},
    },
    store::{Batch, CaptureSource, Store, batch::CoverageUpdate},
    verdict::{Judge, Twins, render::replayed_edge},
};

/// The kernel's bound on a process name (TASK_COMM_LEN 16, with its NUL).
const COMM_MAX: usize = 15;
/// The kernel's bound on a path (PATH_MAX, with its NUL): a cgroup path is one.
const PATH_MAX: usize = 4095;
/// How far a capture's record time may stray past its watch span: record times are the
/// kernel's monotonic clock converted to wall-clock time once at the capture's start,
/// while the spans are read from the wall clock as they close.
const CLOCK_SLACK_MS: Millis = 1000;

/// A span the recording's capture watched.
struct Span {
    node: String,
    kernel: String,
    start: Millis,
    end: Millis,
    drops: Drops,
    /// The capture copied DNS answers in this span, and how many it lost.
    dns: bool,
    dns_lost: u64,
}

/// A flow record read, and the watch span it came in (the first one after it).
struct Read1 {
    line: usize,
    rec: FlowRecord,
    span: Option<usize>,
}

/// The input: the bytes read (for its sha256), its records and its watch spans.
struct Recording {
    name: String,
    sha256: String,
    records: Vec<Read1>,
    spans: Vec<Span>,
    /// DNS answers, each with how many flow records came before it: they are learned in
    /// stream order, so a record is judged with the names its capture had.
    answers: Vec<(usize, crate::dns::AnswerRecord)>,
    bad: u64,
    truncated: u64,
}

impl Recording {
    /// Whether the capture copied DNS answers: then a flow whose source resolved nothing
    /// is marked bare; otherwise no flow is marked.
    fn watched_dns(&self) -> bool {
        !self.answers.is_empty() || self.spans.iter().any(|s| s.dns)
    }
}

/// Truncates `s` to at most `max` bytes (on a character boundary); true if it was longer.
fn truncate(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut at = max;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
    true
}

fn read(cfg: &ReplayConfig) -> anyhow::Result<Recording> {
    let (name, mut input): (String, Box<dyn Read>) = match cfg.flows.as_deref() {
        None => ("<stdin>".into(), Box::new(std::io::stdin().lock())),
        Some(path) => (
            path.display().to_string(),
            Box::new(
                std::fs::File::open(path)
                    .with_context(|| format!("{}: cannot read", path.display()))?,
            ),
        ),
    };
    // Read whole: the store records the sha256 of exactly these bytes, and a record is
    // checked against the watch spans that come after it.
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .with_context(|| format!("{name}: cannot read"))?;
    let mut rec = Recording {
        sha256: crate::provenance::sha256_hex(&bytes),
        name,
        records: Vec::new(),
        spans: Vec::new(),
        answers: Vec::new(),
        bad: 0,
        truncated: 0,
    };
    let name = rec.name.clone();
    let bad = |line: usize, why: String| {
        eprintln!("{name}:{line}: {why}");
    };
    // Lines are read as bytes: one line that is not UTF-8 is a bad record, not the end.
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        let line = match std::str::from_utf8(line) {
            Ok(l) => l,
            Err(e) => {
                rec.bad += 1;
                bad(n, format!("skipping a line that is not UTF-8: {e}"));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                rec.bad += 1;
                bad(n, format!("skipping a bad flow record: {e}"));
                continue;
            }
        };
        if value.get("watch").is_some() {
            let w = match serde_json::from_value::<WatchLine>(value) {
                Ok(w) => w.watch,
                Err(e) => {
                    rec.bad += 1;
                    bad(n, format!("skipping a bad watch line: {e}"));
                    continue;
                }
            };
            let (start, end) = match (parse_rfc3339(&w.start), parse_rfc3339(&w.end)) {
                (Ok(s), Ok(e)) if s <= e => (s, e),
                (Ok(_), Ok(_)) => {
                    rec.bad += 1;
                    bad(n, "skipping a watch line that ends before it starts".into());
                    continue;
                }
                (Err(e), _) | (_, Err(e)) => {
                    rec.bad += 1;
                    bad(n, format!("skipping a watch line: {e}"));
                    continue;
                }
            };
            // The records before this line, not yet placed, came in this span.
            let k = rec.spans.len();
            for r in rec.records.iter_mut().rev() {
                if r.span.is_some() {
                    break;
                }
                r.span = Some(k);
            }
            rec.spans.push(Span {
                node: w.node,
                kernel: w.kernel,
                start,
                end,
                drops: w.drops,
                dns: w.dns,
                dns_lost: w.dns_lost,
            });
            continue;
        }
        if value.get("dns").is_some() {
            match serde_json::from_value::<DnsLine>(value)
                .map_err(|e| e.to_string())
                .and_then(|d| d.dns.check().map(|()| d))
            {
                Ok(d) => rec.answers.push((rec.records.len(), d.dns)),
                Err(e) => {
                    rec.bad += 1;
                    bad(n, format!("skipping a bad dns line: {e}"));
                }
            }
            continue;
        }
        let mut flow: FlowRecord = match serde_json::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                rec.bad += 1;
                bad(n, format!("skipping a bad flow record: {e}"));
                continue;
            }
        };
        // The kernel never hands us more: longer is made up, and would bloat the store
        // and every report that shows it.
        let mut cut = Vec::new();
        if truncate(&mut flow.comm, COMM_MAX) {
            cut.push(format!("comm to the kernel's {COMM_MAX} bytes"));
        }
        if let Some(c) = &mut flow.cgroup
            && truncate(c, PATH_MAX)
        {
            cut.push(format!(
                "cgroup to the kernel's {PATH_MAX} bytes (PATH_MAX)"
            ));
        }
        if !cut.is_empty() {
            rec.truncated += 1;
            bad(n, format!("truncated {}", cut.join(" and ")));
        }
        rec.records.push(Read1 {
            line: n,
            rec: flow,
            span: None,
        });
    }
    Ok(rec)
}

/// Checks and settles a record's times: RFC 3339 with a zone, not in the future beyond
/// the skew, inside the recording's watch spans; a record without `time` is timed at
/// the end of the span it came in. Err: why the record is a bad line.
fn settle_times(
    r: &mut Read1,
    spans: &[Span],
    now: Millis,
    skew: std::time::Duration,
) -> Result<(), String> {
    let latest = now + skew.as_millis() as Millis;
    let parse = |t: &Option<String>| -> Result<Option<Millis>, String> {
        let Some(t) = t else { return Ok(None) };
        let ms = parse_rfc3339(t).map_err(|e| format!("time {e}"))?;
        if ms > latest {
            return Err(format!(
                "time {t:?} is {} in the future (beyond --max-clock-skew {})",
                humantime::format_duration(std::time::Duration::from_secs(
                    ((ms - now) / 1000) as u64
                )),
                humantime::format_duration(skew)
            ));
        }
        Ok(Some(ms))
    };
    let time = parse(&r.rec.time)?;
    let first = parse(&r.rec.first_seen)?;
    let time = match (time, r.span.or(spans.len().checked_sub(1))) {
        (Some(t), _) if spans.is_empty() => t,
        (Some(t), _) => {
            let Some(s) = spans
                .iter()
                .find(|s| s.start - CLOCK_SLACK_MS <= t && t <= s.end + CLOCK_SLACK_MS)
            else {
                return Err(format!(
                    "time {:?} is outside every capture interval of the recording ({} – {})",
                    r.rec.time.as_deref().unwrap_or_default(),
                    rfc3339_millis(spans.iter().map(|s| s.start).min().unwrap_or(0)),
                    rfc3339_millis(spans.iter().map(|s| s.end).max().unwrap_or(0)),
                ));
            };
            t.max(s.start).min(s.end)
        }
        (None, Some(k)) => spans[k].end,
        (None, None) => {
            return Err("no time, and no capture interval to place it in".into());
        }
    };
    // A flow's first sighting may precede the capture (a socket found open): what was
    // watched starts with the capture.
    let earliest = spans.iter().map(|s| s.start).min().unwrap_or(i64::MIN);
    let first = first.unwrap_or(time).max(earliest).min(time);
    r.rec.time = Some(rfc3339_millis(time));
    r.rec.first_seen = Some(rfc3339_millis(first));
    Ok(())
}

/// Distinct values, comma-joined, in order of appearance.
fn joined<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    (!seen.is_empty()).then(|| seen.join(","))
}

/// `replay --store`: the judged flows go into a store through the daemon's own store
/// sink, with the policy's provenance, the recording's watch spans as coverage, and where
/// they came from. The store file is created only to store them: a refused replay leaves
/// none behind.
struct Recorder {
    sink: StoreSink,
    batch: Batch,
}

impl Recorder {
    fn add(&mut self, e: &crate::edge::Edge, judge: &std::sync::Arc<Judge>) {
        // Replay commits once at the end; its input is finite, so nothing is capped.
        self.sink.add(&mut self.batch, e, judge, usize::MAX);
    }

    /// One transaction: what it reports as stored is on disk. A store this created is
    /// removed again when the commit fails.
    fn commit(
        self,
        path: &Path,
        node: &str,
        judge: &Judge,
        cfg: &ReplayConfig,
        rec: &Recording,
        span: Option<(Millis, Millis)>,
    ) -> anyhow::Result<u64> {
        let created = !path.exists();
        let result = self.commit_into(path, node, judge, cfg, rec, span);
        if result.is_err() && created {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(p));
            }
        }
        result
    }

    fn commit_into(
        mut self,
        path: &Path,
        node: &str,
        judge: &Judge,
        cfg: &ReplayConfig,
        rec: &Recording,
        records: Option<(Millis, Millis)>,
    ) -> anyhow::Result<u64> {
        // What was watched starts with the first span; without spans, with the records.
        let start = rec
            .spans
            .iter()
            .map(|s| s.start)
            .min()
            .or(records.map(|r| r.0))
            .unwrap_or(0);
        let mut store = Store::open(path)?;
        // One replay, one node: the same records replayed again would be counted twice,
        // and another span under the same node would join its coverage. Refused.
        let held = store
            .coverage(None, None)?
            .into_iter()
            .find(|c| c.node == node);
        let held_edges = store.edges(None, None)?.into_iter().any(|e| e.node == node);
        if held.is_some() || held_edges {
            anyhow::bail!(
                "the store already holds node {node:?}{}: replaying into it again could \
                 count records twice; use another --node or --store",
                held.map_or(String::new(), |c| format!(
                    " (covered from {})",
                    crate::model::time::rfc3339_seconds(c.start_ms)
                ))
            );
        }
        let mut inputs = crate::provenance::Inputs::of_files(&judge.allowlist, &cfg.inputs)?;
        let allowlist_json = allowlist::file::to_json(&judge.allowlist);
        // The policy was in force over the whole replayed span.
        inputs.since = rfc3339_millis(start.max(0));
        store.set_allowlist(&allowlist_json)?;
        store.record_inputs(&inputs, &allowlist_json)?;
        self.batch.intervals = rec
            .spans
            .iter()
            .map(|s| CoverageUpdate {
                session_start_ms: s.start,
                start_ms: s.start,
                end_ms: s.end,
                drops: s.drops,
            })
            .collect();
        self.batch.capture = Some(CaptureSource {
            mode: "replay".into(),
            node: node.to_string(),
            auditor_version: crate::provenance::AUDITOR_VERSION.into(),
            kernel: joined(rec.spans.iter().map(|s| s.kernel.as_str())),
            flows_file: Some(
                cfg.flows
                    .as_ref()
                    .map_or("-".to_string(), |p| p.display().to_string()),
            ),
            flows_sha256: Some(rec.sha256.clone()),
            capture_node: joined(rec.spans.iter().map(|s| s.node.as_str())),
            intervals_known: Some(!rec.spans.is_empty()),
            recorded_ms: unix_ms(std::time::SystemTime::now()),
        });
        let connections = self.batch.connections();
        store.commit(node, &self.batch)?;
        Ok(connections)
    }
}

pub fn run(cfg: ReplayConfig) -> anyhow::Result<std::process::ExitCode> {
    let judge = std::sync::Arc::new(offline_judge(&cfg.inputs)?);
    if let Some((path, _)) = &cfg.store
        && std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
    {
        // Refused before reading anything: a file that is not a store, or a newer one.
        // (An empty file, e.g. from mktemp, becomes a new store.)
        Store::open_existing(path)?;
    }
    let mut recording = read(&cfg)?;
    let name = recording.name.clone();
    let now = unix_ms(std::time::SystemTime::now());
    let mut bad = recording.bad;
    let records = std::mem::take(&mut recording.records);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut twins = Twins::default();
    let (mut flows, mut merged) = (0u64, 0u64);
    let mut by_verdict: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut allowed_rows: BTreeSet<u32> = Default::default();
    let mut recorder = cfg.store.as_ref().map(|_| Recorder {
        sink: StoreSink::default(),
        batch: Batch::default(),
    });
    let mut span: Option<(Millis, Millis)> = None;
    let mut names = recording.watched_dns().then(|| {
        let mut names = cfg.dns.names();
        names.set_baseline_servers(judge.baseline.names_dns_servers());
        names
    });
    if names.as_ref().is_some_and(|n| !n.trusts_any()) {
        eprintln!(
            "{name}: no trusted DNS resolver (--dns-resolver, or a --baseline entry for port 53): its DNS answers name nothing, and no flow is said to be resolved or bare"
        );
    }
    let mut answers = std::mem::take(&mut recording.answers)
        .into_iter()
        .peekable();
    for (i, mut r) in records.into_iter().enumerate() {
        // The answers that came before this record in the stream.
        while let Some((_, answer)) = answers.next_if(|(before, _)| *before <= i) {
            if let Some(names) = names.as_mut() {
                let used = names.answer(&answer, &|a| judge.baseline.dns_server(a).is_some());
                if used == crate::dns::AnswerUse::Learned
                    && let Some(r) = &mut recorder
                {
                    for n in answer.answers.iter().flat_map(|a| &a.names) {
                        r.batch.add_learned(n, answer.resolver, answer.time);
                    }
                }
            }
        }
        if let Err(why) = settle_times(&mut r, &recording.spans, now, cfg.max_clock_skew) {
            bad += 1;
            eprintln!("{name}:{}: skipping a flow record: {why}", r.line);
            continue;
        }
        let rec = r.rec;
        if rec.is_listener() {
            // Not a connection: a listener found open, as the daemon skips it too.
            continue;
        }
        if twins.is_twin(&FlowView::of(&rec)) {
            merged += 1;
            continue;
        }
        flows += 1;
        let at = rec
            .time
            .as_deref()
            .and_then(|t| parse_rfc3339(t).ok())
            .unwrap_or(now);
        let mut flow_names = crate::dns::flow_names(names.as_mut(), &rec, at);
        // An answer lost by the kernel in this span or before may have named it: not bare,
        // then, but unknown.
        let span_now = r.span.unwrap_or(recording.spans.len().saturating_sub(1));
        if flow_names.resolution == Some(crate::model::Resolution::Bare)
            && recording
                .spans
                .iter()
                .take(span_now + 1)
                .any(|s| s.dns_lost > 0)
        {
            flow_names.resolution = None;
        }
        let view = FlowView {
            dst_names: &flow_names.names,
            resolution: flow_names.resolution,
            ..FlowView::of(&rec)
        };
        let j = judge.judge(&view);
        *by_verdict.entry(j.verdict.as_str()).or_default() += 1;
        if !j.verdict.is_violation() {
            allowed_rows.extend(j.rules());
        }
        let edge = replayed_edge(&judge, &j, &rec);
        let (first, last) = span.unwrap_or((edge.first_seen, edge.last_seen));
        span = Some((first.min(edge.first_seen), last.max(edge.last_seen)));
        if let Some(r) = &mut recorder {
            r.add(&edge, &judge);
        }
        serde_json::to_writer(&mut out, &edge)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    let counts: Vec<String> = by_verdict.iter().map(|(v, n)| format!("{v} {n}")).collect();
    eprintln!(
        "replayed {flows} flows ({}); {merged} seen at both ends merged; {bad} bad records skipped{}; {}",
        if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(", ")
        },
        if recording.truncated > 0 {
            format!(
                "; {} record(s) with fields longer than the kernel's bounds truncated",
                recording.truncated
            )
        } else {
            String::new()
        },
        match recording.spans.len() {
            0 => "no capture intervals (no `watch` lines): coverage unknown".to_string(),
            n => format!("{n} capture interval(s)"),
        }
    );
    if flows == 0 && merged == 0 && bad > 0 {
        anyhow::bail!("{name}: not one of its {bad} records could be read");
    }
    if let (Some(r), Some((path, node))) = (recorder, &cfg.store) {
        // Stored evidence claims its span audited: not with records left out.
        if bad > 0 {
            anyhow::bail!(
                "{bad} record(s) of {name} could not be read: nothing stored in {} (fix them, \
                 or replay without --store)",
                path.display()
            );
        }
        // A capture's spans with no flow in them are evidence too (a quiet node).
        if span.is_none() && recording.spans.is_empty() {
            anyhow::bail!("no flow records in {name}: nothing stored");
        }
        let capture_nodes: BTreeSet<&str> =
            recording.spans.iter().map(|s| s.node.as_str()).collect();
        let node = match (node, capture_nodes.len()) {
            (Some(n), _) => n.clone(),
            (None, 1) => capture_nodes
                .first()
                .copied()
                .unwrap_or("replay")
                .to_string(),
            (None, _) => "replay".to_string(),
        };
        let stored = r.commit(path, &node, &judge, &cfg, &recording, span)?;
        eprintln!(
            "stored {stored} connection(s) in {} as node {node:?} (replayed from {name} sha256 {}{}): auditor report --store {}",
            path.display(),
            recording.sha256,
            if recording.spans.is_empty() {
                "; coverage unknown: no capture intervals"
            } else {
                ""
            },
            path.display()
        );
    }
    let violating: u64 = by_verdict
        .iter()
        .filter(|(v, _)| **v != "allowed")
        .map(|(_, n)| n)
        .sum();
    let never: Vec<String> = judge
        .allowlist
        .connections
        .iter()
        .filter_map(|c| c.number)
        .filter(|n| !allowed_rows.contains(n))
        .map(|n| n.to_string())
        .collect();
    let mut failed = Vec::new();
    for f in &cfg.fail_on {
        match f {
            FailOn::Violations if violating > 0 => {
                failed.push(format!("violations: {violating} flow(s) not allowed"))
            }
            FailOn::NeverObserved if !never.is_empty() => failed.push(format!(
                "never-observed: {} documented connection(s) no flow used ({})",
                never.len(),
                never.join(", ")
            )),
            FailOn::Unaudited if bad > 0 => {
                failed.push(format!("unaudited: {bad} record(s) could not be read"))
            }
            _ => {}
        }
    }
    if !failed.is_empty() {
        eprintln!("auditor: --fail-on {}", failed.join("; "));
        return Ok(std::process::ExitCode::from(1));
    }
    Ok(std::process::ExitCode::SUCCESS)
}
