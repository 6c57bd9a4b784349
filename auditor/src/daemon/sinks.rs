//! Where a judged record goes: each sink is one small piece that takes the record's
//! `Edge` and knows nothing of the others. The metrics, the store's pending batch, the
//! alert edges (which say when an edge is to be told), and the event writer.

use std::{
    collections::HashSet,
    io::Write,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use super::Shared;
use crate::{
    edge::Edge,
    event::{Event, Notice},
    internal_events::{
        ConnectionsJudged, EdgeOverflowed, EventDropped, EventOutputRecovered, EventWriteFailed,
        EventWritten, InternalEvent, ViolationCounted,
    },
    metrics::EdgeLabels,
    model::Verdict,
    store::{Batch, RowDelta},
};

/// Counts connections by verdict, and each violation edge in a series of its own, up to
/// `Shared::max_edges` series; past that, a new edge is counted in the overflow series of
/// its verdict and transport (`Edge::overflow`), so the violation series always sum to
/// the connections of the violation verdicts. Series are never dropped (a counter that
/// vanished would read as a reset), so the cap is for the process's lifetime.
#[derive(Default)]
pub struct MetricsSink {
    series: HashSet<EdgeLabels>,
    announced: bool,
}

impl MetricsSink {
    pub fn record(&mut self, shared: &Shared, e: &Edge) {
        let m = &shared.metrics;
        ConnectionsJudged { edge: e }.emit(m);
        if !e.verdict.is_violation() {
            return;
        }
        let labels = EdgeLabels::of(e, &shared.node);
        let labels = if self.series.contains(&labels) || self.series.len() < shared.max_edges {
            self.series.insert(labels.clone());
            labels
        } else {
            EdgeOverflowed {
                holder: "metrics",
                cap: shared.max_edges,
                first: !std::mem::replace(&mut self.announced, true),
            }
            .emit(m);
            EdgeLabels::of(&e.overflow(), &shared.node)
        };
        ViolationCounted {
            edge: e,
            labels: &labels,
        }
        .emit(m);
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
    /// The pending batch overflowed before (its warning was logged).
    announced: bool,
}

impl StoreSink {
    pub fn record(
        &mut self,
        shared: &Shared,
        e: &Edge,
        judge: &std::sync::Arc<crate::verdict::Judge>,
    ) {
        let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
        if self.add(&mut pending, e, judge, shared.max_edges) {
            EdgeOverflowed {
                holder: "store",
                cap: shared.max_edges,
                first: !std::mem::replace(&mut self.announced, true),
            }
            .emit(&shared.metrics);
        }
        shared.metrics.store_pending.set(pending.edges.len() as i64);
    }

    /// Adds `e` (and, when allowed, the rows it used) to `batch`, which holds at most
    /// `cap` distinct edges (then `e` goes into its overflow edge; the rows are counted
    /// either way). Returns true when it overflowed. `auditor replay --store` fills its
    /// batch through here too, so a replayed store is the daemon's.
    pub fn add(
        &mut self,
        batch: &mut Batch,
        e: &Edge,
        judge: &std::sync::Arc<crate::verdict::Judge>,
        cap: usize,
    ) -> bool {
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
        let overflowed = batch.add_edge_within(e.clone(), cap);
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
        overflowed
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
            let (notice, state) = edges.observe(e, &shared.metrics)?;
            Event::violation(&shared.node, &state.edge, notice, SystemTime::now())
        };
        if event.notice == Notice::New {
            shared.alert_kick.notify_one();
        }
        Some(event)
    }
}

/// Where violation events go: a file (`--events`, appended) or standard output.
pub enum EventTarget {
    File(std::path::PathBuf),
    Stdout,
}

impl EventTarget {
    /// An unbuffered handle: a failed write leaves nothing behind in a buffer to be
    /// written later out of order. Standard output is a duplicate of fd 1, so a closed
    /// pipe is an error on our handle (Rust ignores SIGPIPE), never a signal that exits.
    fn open(&self) -> std::io::Result<std::fs::File> {
        match self {
            EventTarget::File(p) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p),
            EventTarget::Stdout => {
                use std::os::fd::AsFd;
                Ok(std::fs::File::from(
                    std::io::stdout().as_fd().try_clone_to_owned()?,
                ))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            EventTarget::File(p) => p.display().to_string(),
            EventTarget::Stdout => "stdout".into(),
        }
    }
}

/// The first retry after a failure, doubled per failure up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Writes events, one JSON object per line, each in one write. A failing output (full
/// disk, closed pipe, removed file) never stops auditing: the failure is counted, the
/// event is counted as dropped, and the output is retried (reopened) after a backoff;
/// events that arrive while it backs off are counted as dropped too.
pub struct EventWriter {
    target: EventTarget,
    out: Option<std::fs::File>,
    /// No write is tried before this (after a failure).
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Events dropped since the output last worked (for the recovery log).
    dropped: u64,
}

impl EventWriter {
    /// Opens the target now, so a wrong path is a start-up error the operator sees.
    pub fn new(target: EventTarget) -> std::io::Result<EventWriter> {
        let out = Some(target.open()?);
        Ok(EventWriter {
            target,
            out,
            retry_at: None,
            backoff: BACKOFF_MIN,
            dropped: 0,
        })
    }

    /// One line, all or nothing: on a file, a failed write is cut back to where the line
    /// began, so a reader never meets half a line.
    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.out.is_none() {
            self.out = Some(self.target.open()?);
        }
        let out = self.out.as_mut().expect("just opened");
        let start = match self.target {
            EventTarget::File(_) => Some(out.metadata()?.len()),
            EventTarget::Stdout => None,
        };
        let written = out.write_all(line);
        if written.is_err() {
            if let Some(len) = start {
                let _ = out.set_len(len);
            }
            // Reopened at the next try: the file may have been removed or replaced.
            self.out = None;
        }
        written
    }

    pub fn write(&mut self, shared: &Arc<Shared>, event: &Event) {
        let m = &shared.metrics;
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            self.dropped += 1;
            EventDropped.emit(m);
            return;
        }
        let mut line = serde_json::to_vec(event).expect("events serialise");
        line.push(b'\n');
        match self.write_line(&line) {
            Ok(()) => {
                if self.retry_at.take().is_some() {
                    EventOutputRecovered {
                        output: self.target.describe(),
                        dropped: std::mem::take(&mut self.dropped),
                    }
                    .emit(m);
                }
                self.backoff = BACKOFF_MIN;
                EventWritten.emit(m);
            }
            Err(error) => {
                self.dropped += 1;
                EventWriteFailed {
                    output: self.target.describe(),
                    error: &error,
                    retry_in: self.backoff,
                }
                .emit(m);
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}
