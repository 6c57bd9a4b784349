//! The daemon's events: one JSON object per line, versioned (`auditor-event/2`), with the
//! JSON Schema in docs/event.schema.json generated from these types. An event is a
//! violation edge (`crate::edge::Edge`) told when first seen and re-told while it goes
//! on; its `id` is stable, so a consumer that receives a line twice can drop the copy.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::{edge::Edge, model::time::rfc3339};

pub const SCHEMA: &str = "auditor-event/2";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A connection the documented architecture does not allow.
    Violation,
}

/// Why the event was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// The edge was seen for the first time since the daemon started.
    New,
    /// The edge went on; told again (at most once per --renotify).
    Renotify,
}

/// One line of `auditor run --events`: a violation edge, told when first seen and again
/// while it goes on (at most once per --renotify), with its counts so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "auditor event", extend("additionalProperties" = false))]
pub struct Event {
    /// Always "auditor-event/2" for this layout.
    pub schema: String,
    /// Stable identifier: the same notice about the same edge on the same node always has
    /// the same id (32 hex digits).
    pub id: String,
    /// When the event was written (RFC 3339, UTC).
    pub time: String,
    pub event: EventKind,
    pub notice: Notice,
    /// The node that saw it.
    pub node: String,
    /// The edge, with its counts so far.
    #[serde(flatten)]
    pub edge: Edge,
}

impl Event {
    pub fn violation(node: &str, edge: &Edge, notice: Notice, now: SystemTime) -> Event {
        Event {
            schema: SCHEMA.into(),
            id: stable_id(node, edge, notice),
            time: rfc3339(now),
            event: EventKind::Violation,
            notice,
            node: node.into(),
            edge: edge.clone(),
        }
    }
}

/// What identifies one notice: the node, the edge's key, when it was first seen, and the
/// count it was told with (a renotify is only given when the count went up).
fn stable_id(node: &str, edge: &Edge, notice: Notice) -> String {
    let k = edge.key();
    let text = format!(
        "{node}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
        k.verdict.as_str(),
        k.src,
        k.dst,
        k.transport,
        k.port,
        edge.first_seen,
        match notice {
            Notice::New => 0,
            Notice::Renotify => edge.count,
        }
    );
    format!(
        "{:016x}{:016x}",
        fnv1a(text.as_bytes(), 0xcbf2_9ce4_8422_2325),
        fnv1a(text.as_bytes(), 0x6c62_272e_07bb_0142)
    )
}

/// FNV-1a, 64 bits: stable across Rust releases and platforms (std's hasher is not).
fn fnv1a(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The event's JSON Schema (docs/event.schema.json is this, checked by a test).
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(Event);
    schema.insert(
        "$comment".into(),
        "Generated from auditor/src/event.rs and auditor/src/edge.rs by `auditor schema event`; do not edit."
            .into(),
    );
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(count: u64) -> Edge {
        let mut e = crate::edge::test_edge(count, 1_000);
        e.dst.addr = Some("10.0.0.5".parse().unwrap());
        e.last_seen = 2_000;
        e
    }

    #[test]
    fn ids_are_stable_and_differ_per_notice() {
        let now = SystemTime::now();
        let a = Event::violation("n", &edge(1), Notice::New, now);
        let b = Event::violation("n", &edge(7), Notice::New, now);
        assert_eq!(a.id, b.id, "a new edge's id does not depend on its count");
        assert_eq!(a.id.len(), 32);
        let r = Event::violation("n", &edge(7), Notice::Renotify, now);
        assert_ne!(a.id, r.id);
        assert_ne!(a.id, Event::violation("m", &edge(1), Notice::New, now).id);
        // Pinned: the id must not change across builds or Rust releases.
        assert_eq!(stable_id("n", &edge(1), Notice::New), PINNED);
    }

    const PINNED: &str = "56b2332b1e6f3972821f93c0d0456c9b";

    #[test]
    fn an_event_is_flat_json_in_the_vocabulary() {
        let e = Event::violation("node-a", &edge(3), Notice::New, SystemTime::UNIX_EPOCH);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["schema"], "auditor-event/2");
        assert_eq!(v["src"]["service"], "GES");
        assert_eq!(v["dst"]["port"], 6379);
        assert_eq!(v["process"]["comm"], "ges");
        assert_eq!(v["verdict"], "undocumented_egress");
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn the_committed_event_schema_matches_the_event_type() {
        let committed = include_str!("../../docs/event.schema.json");
        assert!(
            committed == schema_json(),
            "docs/event.schema.json is stale: run `cargo xtask render` (or `auditor schema event > docs/event.schema.json`)"
        );
    }
}
