//! The daemon's Prometheus metrics (prometheus-client), named by the conventions:
//! `auditor_` prefix, `_total` counters, seconds. Labels use the event vocabulary
//! (`verdict`, `rules`, `transport`, `src`, `dst`, `port`, `node`).
//! `deploy/chart/auditor/files/prometheus-rules.yaml` alerts from these alone. Only
//! `internal_events` and the daemon's metrics sink change them.

use std::sync::atomic::AtomicU64;

use crate::edge::Edge;
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// A label value, escaped as the exposition formats require (`\` -> `\\`, `"` -> `\"`,
/// newline -> `\n`) when encoded. prometheus-client 0.24 writes label values raw
/// (client_rust#151), so one service named with a quote would break every scrape; every
/// label set here holds its values in this type so none can be left unescaped.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct LabelValue(pub String);

impl LabelValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for LabelValue {
    fn from(s: String) -> LabelValue {
        LabelValue(s)
    }
}

impl From<&str> for LabelValue {
    fn from(s: &str) -> LabelValue {
        LabelValue(s.to_string())
    }
}

impl EncodeLabelValue for LabelValue {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        let s = self.0.as_str();
        let mut rest = s;
        while let Some(i) = rest.find(['\\', '"', '\n']) {
            encoder.write_str(&rest[..i])?;
            encoder.write_str(match rest.as_bytes()[i] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[i + 1..];
        }
        encoder.write_str(rest)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub verdict: LabelValue,
    /// The documented connection numbers ("26", "26,27"), or "none".
    pub rules: LabelValue,
    pub transport: LabelValue,
    /// For `platform`: the baseline entry ("dns"); else empty.
    pub platform: LabelValue,
    /// A mesh sidecar's leg (`transport`, `delivery`); else empty.
    pub mesh_leg: LabelValue,
}

impl VerdictLabels {
    pub fn of(e: &Edge) -> VerdictLabels {
        VerdictLabels {
            verdict: e.verdict.as_str().into(),
            rules: e.rules_label().into(),
            transport: e.transport.as_str().into(),
            platform: e.platform.clone().unwrap_or_default().into(),
            mesh_leg: e
                .mesh_leg
                .map(|l| l.as_str().to_string())
                .unwrap_or_default()
                .into(),
        }
    }
}

/// One violation edge as a label set: what an alert routes on. Built from the edge only.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EdgeLabels {
    pub verdict: LabelValue,
    pub src: LabelValue,
    pub dst: LabelValue,
    pub transport: LabelValue,
    pub port: LabelValue,
    pub rules: LabelValue,
    pub node: LabelValue,
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
            src: bounded(&e.src, k.src).into(),
            dst: bounded(&e.dst, k.dst).into(),
            transport: k.transport.as_str().into(),
            port: k.port.to_string().into(),
            rules: e.rules_label().into(),
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
    pub result: LabelValue,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: LabelValue,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: LabelValue,
}

/// What became of a DNS answer (`dns::AnswerUse`: learned, untrusted, unsolicited, empty).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnswerUseLabels {
    pub r#use: LabelValue,
    /// udp, or tcp (a long answer, reassembled).
    pub transport: LabelValue,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KernelLabels {
    pub counter: LabelValue,
}

/// The policy in force: `auditor report --prometheus` checks it is the allowlist it
/// reports against, as a store report checks the store's recorded inputs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub allowlist_content_sha256: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: LabelValue,
}

/// A unix time in seconds, as a gauge.
pub type Timestamp = Gauge<f64, AtomicU64>;

pub struct Metrics {
    pub registry: Registry,
    pub connections: Family<VerdictLabels, Counter>,
    pub violations: Family<EdgeLabels, Counter>,
    pub violation_last_seen: Family<EdgeLabels, Timestamp>,
    pub violation_first_seen: Family<EdgeLabels, Timestamp>,
    /// First/last seen of each `connections` series: a documented row's first and last
    /// use, for `auditor report --prometheus`.
    pub connection_first_seen: Family<VerdictLabels, Timestamp>,
    pub connection_last_seen: Family<VerdictLabels, Timestamp>,
    /// 1 for the allowlist in force (one series; replaced on reload).
    pub policy: Family<PolicyLabels, Gauge>,
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
    /// 1 per reason the daemon runs degraded (no_btf, no_netns_access).
    pub degraded: Family<ReasonLabels, Gauge>,
    /// 1 for how open sockets are enumerated (method "iterator" or "proc").
    pub open_sockets_method: Family<MethodLabels, Gauge>,
    /// New store files started because the open one was removed or replaced.
    pub store_restarts: Counter,
    /// Damaged stores moved aside at start.
    pub store_set_aside: Counter,
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
    /// Violation events not written (a failed write, or the output backing off after one).
    pub events_dropped: Counter,
    /// Times the events output worked again after failing.
    pub event_output_recoveries: Counter,
    /// Kernel records that could not be decoded (skipped).
    pub malformed_records: Counter,
    /// DNS answers by what became of them. Names never become labels: their number is
    /// unbounded; they are in the events and the store.
    pub dns_answers: Family<AnswerUseLabels, Counter>,
    /// DNS packets that gave no answer, by reason (`dns::PacketError::kind`).
    pub dns_unreadable: Family<ReasonLabels, Counter>,
    /// Names held in the name table (per namespace and address), and those it evicted.
    pub dns_names: Gauge,
    pub dns_evictions: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("auditor");
        let m = Metrics {
            connections: Family::default(),
            violations: Family::default(),
            violation_last_seen: Family::default(),
            violation_first_seen: Family::default(),
            connection_first_seen: Family::default(),
            connection_last_seen: Family::default(),
            policy: Family::default(),
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
            degraded: Family::default(),
            open_sockets_method: Family::default(),
            store_restarts: Counter::default(),
            store_set_aside: Counter::default(),
            overflowed: Family::default(),
            max_violation_series: Gauge::default(),
            http_rejected: Family::default(),
            out_of_scope: Counter::default(),
            event_write_failures: Counter::default(),
            events_dropped: Counter::default(),
            event_output_recoveries: Counter::default(),
            malformed_records: Counter::default(),
            dns_answers: Family::default(),
            dns_unreadable: Family::default(),
            dns_names: Gauge::default(),
            dns_evictions: Counter::default(),
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
            "violation_first_seen_timestamp_seconds",
            "When each violation edge was first seen since the daemon started (unix time)",
            m.violation_first_seen.clone(),
        );
        registry.register(
            "connection_first_seen_timestamp_seconds",
            "When connections of this verdict and documented rule were first seen since the daemon started (unix time)",
            m.connection_first_seen.clone(),
        );
        registry.register(
            "connection_last_seen_timestamp_seconds",
            "When connections of this verdict and documented rule were last seen (unix time)",
            m.connection_last_seen.clone(),
        );
        registry.register(
            "policy_info",
            "The allowlist in force, by the sha256 of its content; always 1",
            m.policy.clone(),
        );
        registry.register(
            "flow_records",
            "Flow records read from the kernel",
            m.records.clone(),
        );
        registry.register("kernel_events", "Kernel-side counts: sightings, passive_no_listener, DNS packets (dns_packets, dns_ringbuf_full, dns_truncated, dns_unsolicited), connections lost (connections_lost), and pressure that lost nothing (ringbuf_full, flow_insert_failed, flows_inserted)", m.kernel.clone());
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
            "degraded",
            "1 for each reason the daemon audits with less than it should: no_btf (TCP flows carry no network namespace), no_netns_access (loopback and unbound UDP flows cannot be attributed to their pod)",
            m.degraded.clone(),
        );
        registry.register(
            "open_sockets_method",
            "1 for how the node's open sockets are enumerated at start and every --active-interval: iterator (a BPF socket iterator) or proc (the /proc walk, the fallback where the kernel cannot run the iterator)",
            m.open_sockets_method.clone(),
        );
        registry.register(
            "store_restarts",
            "New store files started at the store path because the open one was removed or replaced",
            m.store_restarts.clone(),
        );
        registry.register(
            "store_set_aside",
            "Damaged stores moved aside (kept) at start, a new store started in their place",
            m.store_set_aside.clone(),
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
            "events_dropped",
            "Violation events not written: the write failed, or the output was backing off after a failure",
            m.events_dropped.clone(),
        );
        registry.register(
            "event_output_recoveries",
            "Times the events output worked again after failing",
            m.event_output_recoveries.clone(),
        );
        registry.register(
            "malformed_records",
            "Kernel records that could not be decoded, skipped",
            m.malformed_records.clone(),
        );
        registry.register(
            "dns_answers",
            "DNS answers received by sockets of the node, by transport and use: learned (a trusted resolver's, to a socket that asked), untrusted (another server's: recorded, never used), unsolicited (to a socket that did not ask that server), empty (no address)",
            m.dns_answers.clone(),
        );
        registry.register(
            "dns_unreadable",
            "DNS packets from port 53 that gave no answer, by reason",
            m.dns_unreadable.clone(),
        );
        registry.register(
            "dns_names",
            "Names held in the name table: one per network namespace, address and name",
            m.dns_names.clone(),
        );
        registry.register(
            "dns_evictions",
            "Names the full name table evicted (--dns-max-names): flows to their addresses are then judged by address",
            m.dns_evictions.clone(),
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

    /// A service named with a quote, a backslash and a newline still gives a scrape a
    /// parser reads: each is escaped, and the value reads back as it was.
    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.violations
            .get_or_create(&EdgeLabels {
                verdict: "undocumented".into(),
                src: "a\"b".into(),
                dst: "c\\d\ne".into(),
                transport: "tcp".into(),
                port: "80".into(),
                rules: "none".into(),
                node: "n".into(),
            })
            .inc();
        let text = m.encode();
        let line = text
            .lines()
            .find(|l| l.starts_with("auditor_violations_total{"))
            .expect("the series");
        assert!(
            line.contains(r#"src="a\"b""#) && line.contains(r#"dst="c\\d\ne""#),
            "{line}"
        );
    }

    #[test]
    fn an_unattributed_end_is_labelled_unknown_never_by_its_address() {
        let mut e = crate::edge::test_edge(1, 0);
        e.verdict = crate::model::Verdict::UnknownDestination;
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
