//! The daemon's memory of violation edges for telling about them: each `Edge` with when it
//! was last notified and whether Alertmanager holds an open alert for it. Decides when an
//! edge is told (new, or gone on past the renotify interval) and forgets idle ones.

use std::{
    collections::{HashMap, hash_map::Entry},
    time::{Duration, Instant},
};

pub use crate::event::Notice;
use crate::{
    edge::{Edge, EdgeKey},
    internal_events::{EdgeOverflowed, InternalEvent},
    metrics::Metrics,
};

/// One edge and its notification state.
#[derive(Debug, Clone)]
pub struct Alerting {
    pub edge: Edge,
    /// When it was last seen, on the monotonic clock (resolving and forgetting use it).
    pub last_seen_at: Instant,
    count_at_notify: u64,
    notified_at: Instant,
    /// Alertmanager has been told and not yet told it resolved.
    pub alert_open: bool,
}

pub struct Edges {
    map: HashMap<EdgeKey, Alerting>,
    renotify: Duration,
    /// Distinct edges held before new ones go into their overflow edge.
    cap: usize,
    /// Overflow edges in `map` (not counted against `cap`).
    overflow_edges: usize,
    announced: bool,
}

impl Edges {
    pub fn new(renotify: Duration, cap: usize) -> Edges {
        Edges {
            map: HashMap::new(),
            renotify,
            cap,
            overflow_edges: 0,
            announced: false,
        }
    }

    /// Adds a sighting of an edge; returns the notice to give, if any, and the edge as
    /// held. With `cap` distinct edges held, a new edge is added to its overflow edge
    /// (`Edge::overflow`), which is told like any edge (new, then renotified): a scan
    /// gives one event per verdict and transport, not one per port.
    pub fn observe(&mut self, sighting: &Edge, m: &Metrics) -> Option<(Notice, &Alerting)> {
        let key = sighting.key();
        if self.map.contains_key(&key) || self.map.len() - self.overflow_edges < self.cap {
            return self.observe_held(key, sighting);
        }
        EdgeOverflowed {
            holder: "alerts",
            cap: self.cap,
            first: !std::mem::replace(&mut self.announced, true),
        }
        .emit(m);
        let overflow = sighting.overflow();
        let key = overflow.key();
        if !self.map.contains_key(&key) {
            self.overflow_edges += 1;
        }
        self.observe_held(key, &overflow)
    }

    fn observe_held(&mut self, key: EdgeKey, sighting: &Edge) -> Option<(Notice, &Alerting)> {
        let now = Instant::now();
        let renotify = self.renotify;
        match self.map.entry(key) {
            Entry::Vacant(v) => {
                let e = v.insert(Alerting {
                    edge: sighting.clone(),
                    last_seen_at: now,
                    count_at_notify: sighting.count,
                    notified_at: now,
                    alert_open: false,
                });
                Some((Notice::New, e))
            }
            Entry::Occupied(o) => {
                let e = o.into_mut();
                e.edge.add(sighting);
                e.last_seen_at = now;
                if now.duration_since(e.notified_at) >= renotify && e.edge.count > e.count_at_notify
                {
                    e.notified_at = now;
                    e.count_at_notify = e.edge.count;
                    Some((Notice::Renotify, e))
                } else {
                    None
                }
            }
        }
    }

    pub fn get(&self, key: &EdgeKey) -> Option<&Alerting> {
        self.map.get(key)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Alerting> {
        self.map.values_mut()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Forgets edges idle for longer than `idle` whose alerts are closed, so memory stays
    /// bounded on a long-running node (the store keeps the history), and gives the map's
    /// spare capacity back. Returns how many were forgotten.
    pub fn forget_idle(&mut self, idle: Duration) -> usize {
        let before = self.map.len();
        self.map
            .retain(|_, e| e.alert_open || e.last_seen_at.elapsed() < idle);
        self.overflow_edges = self.map.values().filter(|e| e.edge.is_overflow()).count();
        let forgotten = before - self.map.len();
        if forgotten > 0 {
            self.map.shrink_to_fit();
        }
        forgotten
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sighting(count: u64) -> Edge {
        crate::edge::test_edge(count, 0)
    }

    fn notice(edges: &mut Edges, e: &Edge) -> Option<Notice> {
        edges.observe(e, &Metrics::new()).map(|(n, _)| n)
    }

    #[test]
    fn a_thousand_repeats_are_one_notice_and_a_count() {
        let mut edges = Edges::new(Duration::from_secs(3600), 1000);
        assert_eq!(notice(&mut edges, &sighting(1)), Some(Notice::New));
        for _ in 0..999 {
            assert_eq!(notice(&mut edges, &sighting(1)), None);
        }
        assert_eq!(edges.get(&sighting(1).key()).unwrap().edge.count, 1000);
    }

    #[test]
    fn renotify_after_the_interval_only_when_it_went_on() {
        let mut edges = Edges::new(Duration::ZERO, 1000);
        assert_eq!(notice(&mut edges, &sighting(1)), Some(Notice::New));
        assert_eq!(notice(&mut edges, &sighting(5)), Some(Notice::Renotify));
        assert_eq!(
            notice(&mut edges, &sighting(0)),
            None,
            "no new connections: nothing to tell"
        );
    }

    #[test]
    fn past_the_cap_a_scan_is_one_overflow_edge_told_once() {
        let m = Metrics::new();
        let mut edges = Edges::new(Duration::from_secs(3600), 3);
        let mut told = Vec::new();
        for port in 1..=100u16 {
            let mut e = sighting(1);
            e.dst.port = Some(port);
            if let Some((n, held)) = edges.observe(&e, &m) {
                told.push((n, held.edge.is_overflow()));
            }
        }
        assert_eq!(edges.len(), 4, "3 edges and the overflow edge");
        assert_eq!(
            told,
            vec![
                (Notice::New, false),
                (Notice::New, false),
                (Notice::New, false),
                (Notice::New, true)
            ]
        );
        let total: u64 = edges.iter_mut().map(|e| e.edge.count).sum();
        assert_eq!(total, 100, "every connection is still counted");
        assert!(
            m.encode()
                .contains("auditor_overflow_sightings_total{holder=\"alerts\"} 97")
        );
        assert_eq!(edges.forget_idle(Duration::ZERO), 4);
        assert!(edges.is_empty());
    }
}
