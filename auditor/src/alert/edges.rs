//! The daemon's memory of violation edges for telling about them: each `Edge` with when it
//! was last notified and whether Alertmanager holds an open alert for it. Decides when an
//! edge is told (new, or gone on past the renotify interval) and forgets idle ones.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::edge::{Edge, EdgeKey};
pub use crate::event::Notice;

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
}

impl Edges {
    pub fn new(renotify: Duration) -> Edges {
        Edges {
            map: HashMap::new(),
            renotify,
        }
    }

    /// Adds a sighting of an edge; returns the notice to give, if any.
    pub fn observe(&mut self, sighting: &Edge) -> Option<Notice> {
        let now = Instant::now();
        let key = sighting.key();
        match self.map.get_mut(&key) {
            None => {
                self.map.insert(
                    key,
                    Alerting {
                        edge: sighting.clone(),
                        last_seen_at: now,
                        count_at_notify: sighting.count,
                        notified_at: now,
                        alert_open: false,
                    },
                );
                Some(Notice::New)
            }
            Some(e) => {
                e.edge.add(sighting);
                e.last_seen_at = now;
                if now.duration_since(e.notified_at) >= self.renotify
                    && e.edge.count > e.count_at_notify
                {
                    e.notified_at = now;
                    e.count_at_notify = e.edge.count;
                    Some(Notice::Renotify)
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
    /// bounded on a long-running node (the store keeps the history).
    pub fn forget_idle(&mut self, idle: Duration) {
        self.map
            .retain(|_, e| e.alert_open || e.last_seen_at.elapsed() < idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sighting(count: u64) -> Edge {
        crate::edge::test_edge(count, 0)
    }

    #[test]
    fn a_thousand_repeats_are_one_notice_and_a_count() {
        let mut edges = Edges::new(Duration::from_secs(3600));
        assert_eq!(edges.observe(&sighting(1)), Some(Notice::New));
        for _ in 0..999 {
            assert_eq!(edges.observe(&sighting(1)), None);
        }
        assert_eq!(edges.get(&sighting(1).key()).unwrap().edge.count, 1000);
    }

    #[test]
    fn renotify_after_the_interval_only_when_it_went_on() {
        let mut edges = Edges::new(Duration::ZERO);
        assert_eq!(edges.observe(&sighting(1)), Some(Notice::New));
        assert_eq!(edges.observe(&sighting(5)), Some(Notice::Renotify));
        assert_eq!(
            edges.observe(&sighting(0)),
            None,
            "no new connections: nothing to tell"
        );
    }
}
