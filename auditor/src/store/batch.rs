//! Observations waiting for the next store commit, aggregated in memory so a busy node
//! writes one row update per edge per commit, not one per connection.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EdgeKey {
    pub verdict: &'static str,
    /// Service name, or the address when the source is unknown.
    pub src: String,
    /// Service name, or the address when the destination is unknown.
    pub dst: String,
    pub transport: &'static str,
    pub port: u16,
}

#[derive(Debug, Clone, Default)]
pub struct EdgeDelta {
    pub rules: Vec<u32>,
    pub documented: Option<serde_json::Value>,
    pub dst_addr: Option<String>,
    pub count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub example_comm: Option<String>,
    pub example_pid: Option<u32>,
    pub example_cgroup: Option<String>,
    pub example_src_addr: Option<String>,
    /// The source pod ("ns/pod (workload)"), when the cluster identified it.
    pub example_pod: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RowDelta {
    pub count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub example_src: Option<String>,
    pub example_comm: Option<String>,
}

/// The coverage to record with a batch: [start_ms, end_ms] watched, and the kernel
/// drops counted in it.
#[derive(Debug, Clone, Default)]
pub struct CoverageUpdate {
    pub session_start_ms: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub ringbuf_full: u64,
    pub lru_evictions: u64,
    pub flow_insert_failed: u64,
}

#[derive(Debug, Default)]
pub struct Batch {
    pub edges: HashMap<EdgeKey, EdgeDelta>,
    pub rows: HashMap<u32, RowDelta>,
    pub coverage: Option<CoverageUpdate>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty() && self.rows.is_empty() && self.coverage.is_none()
    }

    pub fn connections(&self) -> u64 {
        self.edges.values().map(|d| d.count).sum()
    }

    pub fn add_edge(&mut self, key: EdgeKey, delta: EdgeDelta) {
        match self.edges.get_mut(&key) {
            Some(e) => {
                e.count += delta.count;
                e.first_seen_ms = e.first_seen_ms.min(delta.first_seen_ms);
                e.last_seen_ms = e.last_seen_ms.max(delta.last_seen_ms);
                e.rules = delta.rules;
                e.documented = delta.documented;
            }
            None => {
                self.edges.insert(key, delta);
            }
        }
    }

    pub fn add_row(&mut self, rule: u32, delta: RowDelta) {
        let e = self.rows.entry(rule).or_insert_with(|| RowDelta {
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
        for (k, d) in older.edges {
            self.add_edge(k, d);
        }
        for (r, d) in older.rows {
            self.add_row(r, d);
        }
        if self.coverage.is_none() {
            self.coverage = older.coverage;
        } else if let (Some(new), Some(old)) = (&mut self.coverage, older.coverage) {
            new.start_ms = new.start_ms.min(old.start_ms);
            new.ringbuf_full += old.ringbuf_full;
            new.lru_evictions += old.lru_evictions;
            new.flow_insert_failed += old.flow_insert_failed;
        }
    }
}
