//! Observations waiting for the next store commit, aggregated in memory so a busy node
//! writes one row update per edge per commit, not one per connection. They are kept per
//! time bucket (`super::bucket_of`), as the store keeps them: a commit that spans a bucket
//! boundary (a replay of an hour's recording) writes each bucket's share to its own row.

use std::collections::HashMap;

use crate::{
    edge::{Drops, Edge, EdgeKey},
    model::Millis,
};

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

/// A name a trusted resolver gave (`dns_learned`).
#[derive(Debug, Clone, Default)]
pub struct LearnedDelta {
    pub answers: u64,
    pub first_ms: Millis,
    pub last_ms: Millis,
}

/// The name table as it stood, and the boot it belongs to: network namespace cookies
/// start again at each boot, so names restored after a reboot would land on other pods.
#[derive(Debug, Clone)]
pub struct NamesSnapshot {
    pub boot_id: String,
    pub names: Vec<crate::dns::names::StoredName>,
}

/// Distinct (name, resolver) pairs a batch holds at most: a pod resolving random names
/// cannot grow it; past it, the names are still learned, only not recorded as learned.
pub const LEARNED_CAP: usize = 10_000;

#[derive(Debug, Default)]
pub struct Batch {
    /// The name table to keep in place of the stored one (`dns_names`).
    pub names: Option<NamesSnapshot>,
    /// Names trusted resolvers gave since the last commit.
    pub learned: HashMap<(String, std::net::IpAddr), LearnedDelta>,
    /// By edge and the time bucket of its first sighting.
    pub edges: HashMap<(EdgeKey, Millis), Edge>,
    /// By row number, the digest of the row's content judged against, and time bucket.
    pub rows: HashMap<(u32, String, Millis), RowDelta>,
    pub coverage: Option<CoverageUpdate>,
    /// Intervals recorded as they are, each its own coverage row (a replayed capture's
    /// `watch` spans).
    pub intervals: Vec<CoverageUpdate>,
    /// Where these observations came from, recorded with them (a replay).
    pub capture: Option<super::CaptureSource>,
    /// How many of `edges` are overflow edges (not counted against a cap).
    overflow_edges: usize,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
            && self.rows.is_empty()
            && self.coverage.is_none()
            && self.intervals.is_empty()
            && self.capture.is_none()
            && self.names.is_none()
            && self.learned.is_empty()
    }

    /// A trusted resolver gave `name` at `at_ms` (beyond `LEARNED_CAP` pairs: dropped).
    pub fn add_learned(&mut self, name: &str, resolver: std::net::IpAddr, at_ms: Millis) {
        self.add_learned_delta(
            (name.to_string(), resolver),
            LearnedDelta {
                answers: 1,
                first_ms: at_ms,
                last_ms: at_ms,
            },
        );
    }

    fn add_learned_delta(&mut self, key: (String, std::net::IpAddr), d: LearnedDelta) {
        if self.learned.len() >= LEARNED_CAP && !self.learned.contains_key(&key) {
            return;
        }
        let e = self.learned.entry(key).or_insert(LearnedDelta {
            answers: 0,
            first_ms: d.first_ms,
            last_ms: d.last_ms,
        });
        e.answers += d.answers;
        e.first_ms = e.first_ms.min(d.first_ms);
        e.last_ms = e.last_ms.max(d.last_ms);
    }

    pub fn connections(&self) -> u64 {
        self.edges.values().map(|e| e.count).sum()
    }

    pub fn add_edge(&mut self, edge: Edge) {
        self.add_edge_within(edge, usize::MAX);
    }

    /// Adds `edge`; when `cap` edges are pending and it is not one of them, it is added to
    /// its overflow edge instead (`Edge::overflow`), so the batch holds at most `cap`
    /// entries plus one overflow edge per verdict, transport and bucket. An entry is an
    /// edge in one time bucket: an edge active across a bucket boundary within one
    /// commit takes two. Returns true when it overflowed.
    pub fn add_edge_within(&mut self, edge: Edge, cap: usize) -> bool {
        let key = (edge.key(), super::bucket_of(edge.first_seen));
        if let Some(e) = self.edges.get_mut(&key) {
            e.add(&edge);
            return false;
        }
        let held = self.edges.len() - self.overflow_edges;
        if held < cap || edge.is_overflow() {
            if edge.is_overflow() {
                self.overflow_edges += 1;
            }
            self.edges.insert(key, edge);
            return false;
        }
        self.add_edge_within(edge.overflow(), cap);
        true
    }

    pub fn add_row(&mut self, rule: u32, digest: &str, delta: RowDelta) {
        let e = self
            .rows
            .entry((
                rule,
                digest.to_string(),
                super::bucket_of(delta.first_seen_ms),
            ))
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

    /// Puts a batch that failed to commit back in front of what came since, within the
    /// same cap on distinct edges (a store that keeps failing cannot grow it).
    /// Returns how many edges went into overflow edges.
    pub fn merge(&mut self, older: Batch, cap: usize) -> usize {
        let mut overflowed = 0;
        for (_, e) in older.edges {
            overflowed += usize::from(self.add_edge_within(e, cap));
        }
        for ((r, digest, _), d) in older.rows {
            self.add_row(r, &digest, d);
        }
        if self.names.is_none() {
            self.names = older.names;
        }
        for (key, d) in older.learned {
            self.add_learned_delta(key, d);
        }
        if self.coverage.is_none() {
            self.coverage = older.coverage;
        } else if let (Some(new), Some(old)) = (&mut self.coverage, older.coverage) {
            new.start_ms = new.start_ms.min(old.start_ms);
            new.drops.add(&old.drops);
        }
        overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::test_edge;

    fn to_port(port: u16) -> Edge {
        let mut e = test_edge(1, 1_000);
        e.dst.port = Some(port);
        e
    }

    #[test]
    fn past_the_cap_edges_meet_in_one_overflow_edge_and_every_connection_stays() {
        let mut b = Batch::default();
        let over: usize = (1..=30)
            .map(|p| usize::from(b.add_edge_within(to_port(p), 10)))
            .sum();
        assert_eq!(over, 20);
        assert_eq!(b.edges.len(), 11, "10 edges and one overflow edge");
        assert_eq!(b.connections(), 30);
        let overflow = b.edges.values().find(|e| e.is_overflow()).unwrap();
        assert_eq!(overflow.count, 20);
        // A held edge still adds to itself.
        assert!(!b.add_edge_within(to_port(1), 10));
        assert_eq!(b.connections(), 31);
    }

    #[test]
    fn a_failed_batch_merged_back_stays_within_the_cap() {
        let mut failed = Batch::default();
        (1..=10).for_each(|p| {
            failed.add_edge_within(to_port(p), 10);
        });
        let mut newer = Batch::default();
        (11..=20).for_each(|p| {
            newer.add_edge_within(to_port(p), 10);
        });
        let over = failed.merge(newer, 10);
        assert_eq!(
            (over, failed.edges.len(), failed.connections()),
            (10, 11, 20)
        );
    }
}
