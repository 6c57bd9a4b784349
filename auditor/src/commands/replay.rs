//! `auditor replay`: judge recorded flows offline, one verdict per flow, and optionally
//! keep them in a store. Needs no root.

use std::{
    collections::BTreeMap,
    io::{BufRead, Write},
};

use anyhow::Context;

use crate::{
    capture::FlowRecord,
    cli::{FailOn, ReplayConfig},
    commands::offline_judge,
    daemon::sinks::StoreSink,
    model::FlowView,
    store::{Batch, Store, batch::CoverageUpdate},
    verdict::{InputFiles, Judge, Twins, render::replayed_edge},
};

/// `replay --store`: the judged flows go into a store through the daemon's own store sink,
/// with the policy's provenance, and coverage spanning the records' times.
struct Recorder {
    store: Store,
    node: String,
    sink: StoreSink,
    batch: Batch,
    inputs: crate::provenance::Inputs,
    allowlist_json: String,
    span: Option<(i64, i64)>,
}

impl Recorder {
    fn open(
        path: &std::path::Path,
        node: &str,
        judge: &Judge,
        p: &InputFiles,
    ) -> anyhow::Result<Recorder> {
        Ok(Recorder {
            store: Store::open(path)?,
            node: node.to_string(),
            sink: StoreSink::default(),
            batch: Batch::default(),
            inputs: crate::provenance::Inputs::of_files(&judge.allowlist, p)?,
            allowlist_json: allowlist::file::to_json(&judge.allowlist),
            span: None,
        })
    }

    fn add(&mut self, e: &crate::edge::Edge, judge: &std::sync::Arc<Judge>) {
        // Replay commits once at the end; its input is finite, so nothing is capped.
        self.sink.add(&mut self.batch, e, judge, usize::MAX);
        let (first, last) = self.span.unwrap_or((e.first_seen, e.last_seen));
        self.span = Some((first.min(e.first_seen), last.max(e.last_seen)));
    }

    /// One transaction: what it reports as stored is on disk.
    fn commit(mut self) -> anyhow::Result<u64> {
        let Some((start, end)) = self.span else {
            return Ok(0);
        };
        // One replay, one node: the same records replayed again would be counted twice,
        // and another span under the same node would join its coverage. Refused.
        if let Some(c) = self
            .store
            .coverage(None, None)?
            .into_iter()
            .find(|c| c.node == self.node)
        {
            anyhow::bail!(
                "the store already holds node {:?} (covered from {}): replaying into it again \
                 could count records twice; use another --node or --store",
                self.node,
                crate::model::time::rfc3339_seconds(c.start_ms)
            );
        }
        // The policy was in force over the whole replayed span.
        self.inputs.since = crate::model::time::rfc3339(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(start.max(0) as u64),
        );
        self.store.set_allowlist(&self.allowlist_json)?;
        self.store
            .record_inputs(&self.inputs, &self.allowlist_json)?;
        self.batch.coverage = Some(CoverageUpdate {
            session_start_ms: start,
            start_ms: start,
            end_ms: end.max(start),
            drops: Default::default(),
        });
        let connections = self.batch.connections();
        self.store.commit(&self.node, &self.batch)?;
        Ok(connections)
    }
}

pub fn run(cfg: ReplayConfig) -> anyhow::Result<std::process::ExitCode> {
    let judge = std::sync::Arc::new(offline_judge(&cfg.inputs)?);
    let mut recorder = cfg
        .store
        .as_ref()
        .map(|(path, node)| Recorder::open(path, node, &judge, &cfg.inputs))
        .transpose()?;
    let (name, input): (String, Box<dyn BufRead>) = match cfg.flows.as_deref() {
        None => ("<stdin>".into(), Box::new(std::io::stdin().lock())),
        Some(path) => (
            path.display().to_string(),
            Box::new(std::io::BufReader::new(
                std::fs::File::open(path)
                    .with_context(|| format!("{}: cannot read", path.display()))?,
            )),
        ),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut twins = Twins::default();
    let (mut flows, mut bad, mut merged) = (0u64, 0u64, 0u64);
    let mut by_verdict: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut allowed_rows: std::collections::BTreeSet<u32> = Default::default();
    // Lines are read as bytes: one line that is not UTF-8 is a bad record, not the end.
    for (i, line) in input.split(b'\n').enumerate() {
        let line = line.with_context(|| format!("{name}: cannot read"))?;
        let line = match std::str::from_utf8(&line) {
            Ok(l) => l,
            Err(e) => {
                bad += 1;
                eprintln!("{name}:{}: skipping a line that is not UTF-8: {e}", i + 1);
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let rec: FlowRecord = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(e) => {
                bad += 1;
                eprintln!("{name}:{}: skipping a bad flow record: {e}", i + 1);
                continue;
            }
        };
        if let Some(bad_time) = [&rec.time, &rec.first_seen]
            .into_iter()
            .flatten()
            .find(|t| humantime::parse_rfc3339_weak(t).is_err())
        {
            bad += 1;
            eprintln!(
                "{name}:{}: skipping a flow record whose time {bad_time:?} is not an RFC 3339 UTC time (…Z)",
                i + 1
            );
            continue;
        }
        let view = FlowView::of(&rec);
        if twins.is_twin(&view) {
            merged += 1;
            continue;
        }
        flows += 1;
        let j = judge.judge(&view);
        *by_verdict.entry(j.verdict.as_str()).or_default() += 1;
        if !j.verdict.is_violation() {
            allowed_rows.extend(j.rules());
        }
        let edge = replayed_edge(&judge, &j, &rec);
        if let Some(r) = &mut recorder {
            r.add(&edge, &judge);
        }
        serde_json::to_writer(&mut out, &edge)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    let counts: Vec<String> = by_verdict.iter().map(|(v, n)| format!("{v} {n}")).collect();
    eprintln!(
        "replayed {flows} flows ({}); {merged} seen at both ends merged; {bad} bad records skipped",
        if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(", ")
        }
    );
    if flows == 0 && merged == 0 && bad > 0 {
        anyhow::bail!("{name}: not one of its {bad} records could be read");
    }
    if let (Some(r), Some((path, node))) = (recorder, &cfg.store) {
        // Stored evidence claims its span fully audited: not with records left out.
        if bad > 0 {
            anyhow::bail!(
                "{bad} record(s) of {name} could not be read: nothing stored in {} (fix them, \
                 or replay without --store)",
                path.display()
            );
        }
        let stored = r.commit()?;
        eprintln!(
            "stored {stored} connection(s) in {} as node {node:?}: auditor report --store {}",
            path.display(),
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
