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
    /// For `platform`: the baseline entry ("dns"); else empty.
    pub platform: String,
    /// A mesh sidecar's leg (`transport`, `delivery`); else empty.
    pub mesh_leg: String,
}

impl VerdictLabels {
    pub fn of(e: &Edge) -> VerdictLabels {
        VerdictLabels {
            verdict: e.verdict.as_str().into(),
            rules: e.rules_label(),
            transport: e.transport.as_str().into(),
            platform: e.platform.clone().unwrap_or_default(),
            mesh_leg: e
                .mesh_leg
                .map(|l| l.as_str().to_string())
                .unwrap_or_default(),
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
    pub fn of(e: &Edge, node: &str) -> EdgeLabels {
        let k = e.key();
        EdgeLabels {
            verdict: k.verdict.as_str().into(),
            src: k.src,
            dst: k.dst,
            transport: k.transport.as_str().into(),
            port: k.port.to_string(),
            rules: e.rules_label(),
            node: node.into(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
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
    /// Violation edges beyond the label budget, counted here instead of as new series.
    pub edges_over_budget: Counter,
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
            edges_over_budget: Counter::default(),
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
            "Connections judged, by verdict and documented rule (platform: by baseline entry; mesh legs apart)",
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
            "violation_edges_over_budget",
            "Violation edges not given their own series",
            m.edges_over_budget.clone(),
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
