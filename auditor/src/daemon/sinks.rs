//! Where a judged record goes: each sink is one small piece that takes the record's
//! `Edge` and knows nothing of the others. The metrics, the store's pending batch, the
//! alert edges (which say when an edge is to be told), and the event writer.

use std::{collections::HashSet, io::Write, sync::Arc, time::SystemTime};

use super::Shared;
use crate::{
    edge::Edge,
    event::{Event, Notice},
    internal_events::{
        ConnectionsJudged, EdgeOverBudget, EventWriteFailed, EventWritten, InternalEvent,
        ViolationCounted,
    },
    metrics::EdgeLabels,
    store::{Batch, RowDelta},
    verdict::Verdict,
};

/// Violation edges beyond this many do not get series of their own (cardinality).
const EDGE_SERIES_BUDGET: usize = 1000;

/// Counts connections by verdict, and each violation edge in a series of its own, up to
/// a budget.
#[derive(Default)]
pub struct MetricsSink {
    series: HashSet<EdgeLabels>,
}

impl MetricsSink {
    pub fn record(&mut self, shared: &Shared, e: &Edge) {
        let m = &shared.metrics;
        ConnectionsJudged { edge: e }.emit(m);
        if !e.verdict.is_violation() {
            return;
        }
        let labels = EdgeLabels::of(e, &shared.node);
        if self.series.contains(&labels) || self.series.len() < EDGE_SERIES_BUDGET {
            ViolationCounted {
                edge: e,
                labels: &labels,
            }
            .emit(m);
            self.series.insert(labels);
        } else {
            EdgeOverBudget.emit(m);
        }
    }
}

/// Adds every edge, and the documented rows an allowed one used, to the batch the store
/// task commits next.
/// Rows are kept with the digest of the content they were judged against, so a report
/// never credits a row number with traffic judged against other content.
#[derive(Default)]
pub struct StoreSink {
    /// Row number -> content digest, for the judge (by address) they were computed from.
    digests: Option<(usize, std::collections::HashMap<u32, String>)>,
}

impl StoreSink {
    pub fn record(
        &mut self,
        shared: &Shared,
        e: &Edge,
        judge: &std::sync::Arc<crate::verdict::Judge>,
    ) {
        let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
        self.add(&mut pending, e, judge);
        shared.metrics.store_pending.set(pending.edges.len() as i64);
    }

    /// Adds `e` (and, when allowed, the rows it used) to `batch`. `auditor replay
    /// --store` fills its batch through here too, so a replayed store is the daemon's.
    pub fn add(
        &mut self,
        batch: &mut Batch,
        e: &Edge,
        judge: &std::sync::Arc<crate::verdict::Judge>,
    ) {
        let key = std::sync::Arc::as_ptr(judge) as usize;
        if self.digests.as_ref().is_none_or(|(k, _)| *k != key) {
            let map = judge
                .allowlist
                .connections
                .iter()
                .filter_map(|c| Some((c.number?, crate::provenance::row_sha256(c))))
                .collect();
            self.digests = Some((key, map));
        }
        let digests = &self.digests.as_ref().expect("just set").1;
        batch.add_edge(e.clone());
        // A mesh leg carries a connection already counted at its app leg.
        if e.verdict == Verdict::Allowed && e.mesh_leg.is_none() {
            for r in &e.rules {
                batch.add_row(
                    *r,
                    digests.get(r).map_or("", String::as_str),
                    RowDelta {
                        count: e.count,
                        first_seen_ms: e.first_seen,
                        last_seen_ms: e.last_seen,
                        example_src: Some(e.src.name()),
                        example_comm: e.process.as_ref().map(|p| p.comm.clone()),
                    },
                );
            }
        }
    }
}

/// Aggregates violations per edge; gives the event to write when an edge is new or has
/// gone on past the renotify interval, and wakes the Alertmanager task for a new one.
pub struct AlertSink;

impl AlertSink {
    pub fn record(&mut self, shared: &Shared, e: &Edge) -> Option<Event> {
        if !e.verdict.is_violation() {
            return None;
        }
        let event = {
            let mut edges = shared.edges.lock().unwrap_or_else(|e| e.into_inner());
            let notice = edges.observe(e)?;
            let state = edges.get(&e.key()).expect("just observed");
            Event::violation(&shared.node, &state.edge, notice, SystemTime::now())
        };
        if event.notice == Notice::New {
            shared.alert_kick.notify_one();
        }
        Some(event)
    }
}

/// Writes events, one JSON object per line, flushed at once.
pub struct EventWriter {
    out: Box<dyn Write + Send>,
}

impl EventWriter {
    pub fn new(out: Box<dyn Write + Send>) -> EventWriter {
        EventWriter { out }
    }

    pub fn write(&mut self, shared: &Arc<Shared>, event: &Event) -> std::io::Result<()> {
        let written = serde_json::to_writer(&mut self.out, event)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| self.out.flush());
        match &written {
            Ok(()) => EventWritten.emit(&shared.metrics),
            Err(error) => EventWriteFailed { error }.emit(&shared.metrics),
        }
        written
    }
}
