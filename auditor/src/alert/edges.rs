//! Violation edges: (verdict, source, destination, transport, port) with counts, first and
//! last seen, an example process, and when they were last notified. A connection pool
//! reconnecting 10,000 times is one edge: one event, a count of 10,000.

use std::{
    collections::HashMap,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};

use crate::store::EdgeKey;

#[derive(Debug, Clone)]
pub struct Example {
    pub pid: u32,
    pub comm: String,
    pub cgroup: Option<String>,
    pub src_addr: Option<String>,
    /// The source's pod in the cluster ("ns/pod (workload)"), with --kubernetes.
    pub src_pod: Option<String>,
    /// The destination's pod or Service in the cluster, with --kubernetes.
    pub dst_k8s: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EdgeState {
    pub rules: Vec<u32>,
    pub documented: Option<Value>,
    pub dst_addr: String,
    pub count: u64,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
    pub last_seen_at: Instant,
    pub example: Example,
    count_at_notify: u64,
    notified_at: Instant,
    /// Alertmanager has been told and not yet told it resolved.
    pub alert_open: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    New,
    Renotify,
}

pub struct Edges {
    map: HashMap<EdgeKey, EdgeState>,
    renotify: Duration,
}

pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// What was observed, for `Edges::observe`.
pub struct Sighting {
    pub count: u64,
    pub at: SystemTime,
    pub rules: Vec<u32>,
    pub documented: Option<Value>,
    pub dst_addr: String,
    pub example: Example,
}

impl Edges {
    pub fn new(renotify: Duration) -> Edges {
        Edges {
            map: HashMap::new(),
            renotify,
        }
    }

    /// Records a sighting; returns the notice to give, if any.
    pub fn observe(&mut self, key: &EdgeKey, s: Sighting) -> Option<Notice> {
        let now = Instant::now();
        match self.map.get_mut(key) {
            None => {
                self.map.insert(
                    key.clone(),
                    EdgeState {
                        rules: s.rules,
                        documented: s.documented,
                        dst_addr: s.dst_addr,
                        count: s.count,
                        first_seen: s.at,
                        last_seen: s.at,
                        last_seen_at: now,
                        example: s.example,
                        count_at_notify: s.count,
                        notified_at: now,
                        alert_open: false,
                    },
                );
                Some(Notice::New)
            }
            Some(e) => {
                e.count += s.count;
                e.last_seen = e.last_seen.max(s.at);
                e.last_seen_at = now;
                if now.duration_since(e.notified_at) >= self.renotify && e.count > e.count_at_notify
                {
                    e.notified_at = now;
                    e.count_at_notify = e.count;
                    Some(Notice::Renotify)
                } else {
                    None
                }
            }
        }
    }

    pub fn get(&self, key: &EdgeKey) -> Option<&EdgeState> {
        self.map.get(key)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&EdgeKey, &mut EdgeState)> {
        self.map.iter_mut()
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

/// The JSON event for one notice.
pub fn event(node: &str, key: &EdgeKey, e: &EdgeState, notice: Notice) -> Value {
    json!({
        "event": "violation",
        "notice": match notice { Notice::New => "new", Notice::Renotify => "renotify" },
        "node": node,
        "verdict": key.verdict,
        "src": key.src,
        "dst": key.dst,
        "dst_addr": e.dst_addr,
        "transport": key.transport,
        "port": key.port,
        "rules": e.rules,
        "documented": e.documented,
        "count": e.count,
        "first_seen": rfc3339(e.first_seen),
        "last_seen": rfc3339(e.last_seen),
        "example": {
            "pid": e.example.pid,
            "comm": e.example.comm,
            "cgroup": e.example.cgroup,
            "src_addr": e.example.src_addr,
            "src_pod": e.example.src_pod,
            "dst_k8s": e.example.dst_k8s,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EdgeKey {
        EdgeKey {
            verdict: "undocumented_egress",
            src: "A".into(),
            dst: "B".into(),
            transport: "tcp",
            port: 1,
        }
    }

    fn sighting(count: u64) -> Sighting {
        Sighting {
            count,
            at: SystemTime::now(),
            rules: vec![],
            documented: None,
            dst_addr: "10.0.0.1".into(),
            example: Example {
                pid: 1,
                comm: "x".into(),
                cgroup: None,
                src_addr: None,
                src_pod: None,
                dst_k8s: None,
            },
        }
    }

    #[test]
    fn a_thousand_repeats_are_one_notice_and_a_count() {
        let mut edges = Edges::new(Duration::from_secs(3600));
        assert_eq!(edges.observe(&key(), sighting(1)), Some(Notice::New));
        for _ in 0..999 {
            assert_eq!(edges.observe(&key(), sighting(1)), None);
        }
        assert_eq!(edges.get(&key()).unwrap().count, 1000);
    }

    #[test]
    fn renotify_after_the_interval_only_when_it_went_on() {
        let mut edges = Edges::new(Duration::ZERO);
        assert_eq!(edges.observe(&key(), sighting(1)), Some(Notice::New));
        assert_eq!(edges.observe(&key(), sighting(5)), Some(Notice::Renotify));
        assert_eq!(
            edges.observe(&key(), sighting(0)),
            None,
            "no new connections: nothing to tell"
        );
    }
}
