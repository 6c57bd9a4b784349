//! The daemon's Prometheus metrics (prometheus-client), named by the conventions:
//! `auditor_` prefix, `_total` counters, seconds. Labels use the event vocabulary
//! (`verdict`, `rules`, `transport`, `src`, `dst`, `port`, `node`).
//! `deploy/chart/auditor/files/prometheus-rules.yaml` alerts from these alone. Only
//! `internal_events` and the daemon's metrics sink change them.

use std::sync::atomic::AtomicU64;

use crate::edge::Edge;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub verdict: String,
    /// The documented connection numbers ("26", "26,27"), or "none".
    pub rules: String,
    pub transport: String,
}

impl VerdictLabels {
    pub fn of(e: &Edge) -> VerdictLabels {
        VerdictLabels {
            verdict: e.verdict.as_str().into(),
            rules: e.rules_label(),
            transport: e.transport.as_str().into(),
        }
    }
}

/// One violation edge as a label set: what an alert routes on. Built from the edge only.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EdgeLabels {
    pub verdict: String,
    pub src: String,
    pub dst: String,
    pub transport: String,
    pub port: String,
    pub rules: String,
    pub node: String,
}

impl EdgeLabels {
    /// An end no service was found for is labelled `unknown`, never by its address: a
    /// scan of unknown hosts would otherwise make one series per address. The address
    /// stays in the event and the store.
    pub fn of(e: &Edge, node: &str) -> EdgeLabels {
        let k = e.key();
        let bounded = |end: &crate::edge::Endpoint, name: String| {
            if end.service.is_some() {
                name
            } else {
                UNKNOWN_END.into()
            }
        };
        EdgeLabels {
            verdict: k.verdict.as_str().into(),
            src: bounded(&e.src, k.src),
            dst: bounded(&e.dst, k.dst),
            transport: k.transport.as_str().into(),
            port: k.port.to_string(),
            rules: e.rules_label(),
            node: node.into(),
        }
    }
}

/// The `src`/`dst` label of an end that is not a documented service.
pub const UNKNOWN_END: &str = "unknown";

/// Which in-memory edge map aggregated an edge into its overflow edge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HolderLabels {
    /// `metrics` (violation series), `alerts` (edges held for events and
    /// Alertmanager), `store` (edges pending the next commit).
    pub holder: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KernelLabels {
    pub counter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub connections: Family<VerdictLabels, Counter>,
    pub violations: Family<EdgeLabels, Counter>,
    pub violation_last_seen: Family<EdgeLabels, Gauge<f64, AtomicU64>>,
    pub records: Counter,
    pub kernel: Family<KernelLabels, Counter>,
    pub lag: Histogram,
    pub reloads: Family<ResultLabels, Counter>,
    pub generation: Gauge,
    pub events: Counter,
    pub alertmanager_posts: Family<ResultLabels, Counter>,
    pub store_commits: Family<ResultLabels, Counter>,
    pub store_acknowledged: Counter,
    pub store_pending: Gauge,
    /// Edge sightings aggregated into an overflow edge, by the map that was full.
    pub overflowed: Family<HolderLabels, Counter>,
    /// The cap on distinct edges per map (`--max-violation-series`).
    pub max_violation_series: Gauge,
    /// HTTP requests and connections turned away, by reason.
    pub http_rejected: Family<ReasonLabels, Counter>,
    /// Connections outside `--scope`, not judged.
    pub out_of_scope: Counter,
    /// Violation events that could not be written.
    pub event_write_failures: Counter,
    /// Kernel records that could not be decoded (skipped).
    pub malformed_records: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("auditor");
        let m = Metrics {
            connections: Family::default(),
            violations: Family::default(),
            violation_last_seen: Family::default(),
            records: Counter::default(),
            kernel: Family::default(),
            lag: Histogram::new([0.001, 0.005, 0.02, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0]),
            reloads: Family::default(),
            generation: Gauge::default(),
            events: Counter::default(),
            alertmanager_posts: Family::default(),
            store_commits: Family::default(),
            store_acknowledged: Counter::default(),
            store_pending: Gauge::default(),
            overflowed: Family::default(),
            max_violation_series: Gauge::default(),
            http_rejected: Family::default(),
            out_of_scope: Counter::default(),
            event_write_failures: Counter::default(),
            malformed_records: Counter::default(),
            registry: Registry::default(),
        };
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        registry.register("build_info", "auditor build; always 1", build);
        registry.register(
            "connections",
            "Connections judged, by verdict and documented rule",
            m.connections.clone(),
        );
        registry.register(
            "violations",
            "Connections of each violation edge",
            m.violations.clone(),
        );
        registry.register(
            "violation_last_seen_timestamp_seconds",
            "When each violation edge was last seen (unix time)",
            m.violation_last_seen.clone(),
        );
        registry.register(
            "flow_records",
            "Flow records read from the kernel",
            m.records.clone(),
        );
        registry.register("kernel_events", "Kernel-side counts: sightings, passive_no_listener, and losses (ringbuf_full, lru_evictions, flow_insert_failed)", m.kernel.clone());
        registry.register(
            "processing_lag_seconds",
            "From the kernel's sighting to the verdict",
            m.lag.clone(),
        );
        registry.register(
            "reloads",
            "Allowlist/inventory reloads by result",
            m.reloads.clone(),
        );
        registry.register(
            "policy_generation",
            "Generation of the policy in force (1 at start, +1 per good reload)",
            m.generation.clone(),
        );
        registry.register(
            "violation_events",
            "Violation events written",
            m.events.clone(),
        );
        registry.register(
            "alertmanager_posts",
            "Posts to Alertmanager by result",
            m.alertmanager_posts.clone(),
        );
        registry.register(
            "store_commits",
            "Store transactions by result",
            m.store_commits.clone(),
        );
        registry.register(
            "store_acknowledged_connections",
            "Connections committed to the store",
            m.store_acknowledged.clone(),
        );
        registry.register(
            "store_pending_edges",
            "Edges waiting for the next store commit",
            m.store_pending.clone(),
        );
        registry.register(
            "overflow_sightings",
            "Edge sightings counted in an overflow edge (src and dst \"_other\") because the map holding edges was full, by holder (metrics, alerts, store)",
            m.overflowed.clone(),
        );
        registry.register(
            "max_violation_series",
            "Distinct edges each in-memory map holds before it aggregates (--max-violation-series)",
            m.max_violation_series.clone(),
        );
        registry.register(
            "http_rejected",
            "HTTP requests or connections turned away, by reason (unauthorized, busy, connection_limit)",
            m.http_rejected.clone(),
        );
        registry.register(
            "out_of_scope_connections",
            "Connections outside --scope, not judged",
            m.out_of_scope.clone(),
        );
        registry.register(
            "violation_event_write_failures",
            "Violation events that could not be written",
            m.event_write_failures.clone(),
        );
        registry.register(
            "malformed_records",
            "Kernel records that could not be decoded, skipped",
            m.malformed_records.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unattributed_end_is_labelled_unknown_never_by_its_address() {
        let mut e = crate::edge::test_edge(1, 0);
        e.verdict = crate::verdict::Verdict::UnknownDestination;
        e.dst.service = None;
        e.dst.addr = Some("203.0.113.9".parse().unwrap());
        assert_eq!(e.key().dst, "203.0.113.9", "the edge keeps its address");
        let l = EdgeLabels::of(&e, "n1");
        assert_eq!((l.src.as_str(), l.dst.as_str()), ("GES", UNKNOWN_END));
        let o = EdgeLabels::of(&e.overflow(), "n1");
        assert_eq!(
            (o.src.as_str(), o.dst.as_str(), o.port.as_str()),
            ("_other", "_other", "0")
        );
    }
}
