//! Observations waiting for the next store commit, aggregated in memory so a busy node
//! writes one row update per edge per commit, not one per connection.

use std::collections::HashMap;

use crate::edge::{Drops, Edge, EdgeKey, Millis};

/// A documented row seen allowing a connection.
#[derive(Debug, Clone, Default)]
pub struct RowDelta {
    pub count: u64,
    pub first_seen_ms: Millis,
    pub last_seen_ms: Millis,
    /// The source's name ("Tenant Service") and process name of an example.
    pub example_src: Option<String>,
    pub example_comm: Option<String>,
}

/// The coverage to record with a batch: [start_ms, end_ms] watched, and the kernel
/// drops counted in it.
#[derive(Debug, Clone, Default)]
pub struct CoverageUpdate {
    pub session_start_ms: Millis,
    pub start_ms: Millis,
    pub end_ms: Millis,
    pub drops: Drops,
}

#[derive(Debug, Default)]
pub struct Batch {
    pub edges: HashMap<EdgeKey, Edge>,
    /// By row number and the digest of the row's content judged against.
    pub rows: HashMap<(u32, String), RowDelta>,
    pub coverage: Option<CoverageUpdate>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty() && self.rows.is_empty() && self.coverage.is_none()
    }

    pub fn connections(&self) -> u64 {
        self.edges.values().map(|e| e.count).sum()
    }

    pub fn add_edge(&mut self, edge: Edge) {
        match self.edges.get_mut(&edge.key()) {
            Some(e) => e.add(&edge),
            None => {
                self.edges.insert(edge.key(), edge);
            }
        }
    }

    pub fn add_row(&mut self, rule: u32, digest: &str, delta: RowDelta) {
        let e = self
            .rows
            .entry((rule, digest.to_string()))
            .or_insert_with(|| RowDelta {
                first_seen_ms: delta.first_seen_ms,
                ..RowDelta::default()
            });
        e.count += delta.count;
        e.first_seen_ms = e.first_seen_ms.min(delta.first_seen_ms);
        e.last_seen_ms = e.last_seen_ms.max(delta.last_seen_ms);
        if e.example_src.is_none() {
            e.example_src = delta.example_src;
            e.example_comm = delta.example_comm;
        }
    }

    /// Puts a batch that failed to commit back in front of what came since.
    pub fn merge(&mut self, older: Batch) {
        for (_, e) in older.edges {
            self.add_edge(e);
        }
        for ((r, digest), d) in older.rows {
            self.add_row(r, &digest, d);
        }
        if self.coverage.is_none() {
            self.coverage = older.coverage;
        } else if let (Some(new), Some(old)) = (&mut self.coverage, older.coverage) {
            new.start_ms = new.start_ms.min(old.start_ms);
            new.drops.add(&old.drops);
        }
    }
}
