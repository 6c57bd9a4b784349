//! Internal events: each thing worth telling an operator is one type here that logs and
//! counts together, so logs and metrics never disagree (as vector's internal_events).
//! Success and failure are separate events. The per-record path emits them too (logged
//! at trace level there, so they cost a counter increment unless asked for).

use std::time::Duration;

use auditor_common::Counter;

use crate::{
    edge::Edge,
    metrics::{
        EdgeLabels, HolderLabels, KernelLabels, MethodLabels, Metrics, PolicyLabels, ReasonLabels,
        ResultLabels, VerdictLabels,
    },
};

pub trait InternalEvent {
    fn emit(self, metrics: &Metrics);
}

fn result(r: &str) -> ResultLabels {
    ResultLabels { result: r.into() }
}

pub struct PolicyReloaded {
    pub generation: i64,
    pub connections: usize,
    /// `provenance::allowlist_content_sha256` of the allowlist now in force.
    pub allowlist_content_sha256: String,
}

impl InternalEvent for PolicyReloaded {
    fn emit(self, m: &Metrics) {
        tracing::info!(
            generation = self.generation,
            connections = self.connections,
            "policy loaded"
        );
        m.reloads.get_or_create(&result("success")).inc();
        m.generation.set(self.generation);
        // One series: the policy in force now, not every policy ever loaded.
        m.policy.clear();
        m.policy
            .get_or_create(&PolicyLabels {
                allowlist_content_sha256: self.allowlist_content_sha256,
            })
            .set(1);
    }
}

pub struct PolicyReloadFailed<'a> {
    pub error: &'a anyhow::Error,
}

impl InternalEvent for PolicyReloadFailed<'_> {
    fn emit(self, m: &Metrics) {
        tracing::error!(
            error = format!("{:#}", self.error),
            "reload rejected; the previous allowlist and inventory stay in force"
        );
        m.reloads.get_or_create(&result("failure")).inc();
    }
}

pub struct StoreCommitted {
    pub edges: usize,
    pub connections: u64,
}

impl InternalEvent for StoreCommitted {
    fn emit(self, m: &Metrics) {
        tracing::debug!(
            edges = self.edges,
            connections = self.connections,
            "store commit"
        );
        m.store_commits.get_or_create(&result("success")).inc();
        m.store_acknowledged.inc_by(self.connections);
    }
}

pub struct StoreCommitFailed<'a> {
    pub error: &'a anyhow::Error,
}

impl InternalEvent for StoreCommitFailed<'_> {
    fn emit(self, m: &Metrics) {
        tracing::error!(
            error = format!("{:#}", self.error),
            "store commit failed; the observations are kept and retried"
        );
        m.store_commits.get_or_create(&result("failure")).inc();
    }
}

/// The store file was removed or replaced under the daemon; a new one was started at the
/// same path (what the old file held is wherever the operator moved it, if anywhere).
pub struct StoreRestarted<'a> {
    pub reason: &'a str,
}

impl InternalEvent for StoreRestarted<'_> {
    fn emit(self, m: &Metrics) {
        tracing::warn!(
            reason = self.reason,
            "started a new store file at the same path; commits to the lost file were not acknowledged"
        );
        m.store_restarts.inc();
    }
}

/// The store was damaged at start: moved aside (kept) and a new one started.
pub struct StoreSetAside {
    pub path: std::path::PathBuf,
    pub aside: std::path::PathBuf,
}

impl InternalEvent for StoreSetAside {
    fn emit(self, m: &Metrics) {
        tracing::error!(
            store = %self.path.display(),
            moved_to = %self.aside.display(),
            "the store was damaged: moved aside (kept, not deleted) and a new store started; auditing goes on"
        );
        m.store_set_aside.inc();
    }
}

/// How the node's open sockets are enumerated, said at start and again if a failing
/// iterator walk switches to /proc: the socket iterator, or the /proc walk (asked for, or
/// the fallback, with why), and `auditor_open_sockets_method{method}` 1 for the method in
/// use, 0 for the other.
pub struct OpenSocketsMethod<'a> {
    pub method: &'static str,
    /// Why the iterator is not used, when it is not.
    pub fallback: Option<&'a str>,
}

impl InternalEvent for OpenSocketsMethod<'_> {
    fn emit(self, m: &Metrics) {
        match self.fallback {
            None => tracing::info!(
                method = self.method,
                "open sockets are enumerated by the BPF socket iterator"
            ),
            Some(reason) => tracing::info!(
                method = self.method,
                reason,
                "open sockets are enumerated from /proc"
            ),
        }
        for method in ["iterator", "proc"] {
            m.open_sockets_method
                .get_or_create(&MethodLabels {
                    method: method.into(),
                })
                .set(i64::from(method == self.method));
        }
    }
}

/// Auditing runs with less than it should (no BTF, no access to network namespaces):
/// a warning at start and `auditor_degraded{reason} 1`, so the missing attribution is
/// never silent.
pub struct Degraded<'a> {
    pub reason: &'static str,
    pub detail: &'a str,
    pub consequence: &'static str,
}

impl InternalEvent for Degraded<'_> {
    fn emit(self, m: &Metrics) {
        tracing::warn!(
            reason = self.reason,
            detail = self.detail,
            "degraded: {}",
            self.consequence
        );
        m.degraded
            .get_or_create(&ReasonLabels {
                reason: self.reason.into(),
            })
            .set(1);
    }
}

pub struct AlertmanagerPosted {
    pub alerts: usize,
    /// The first post that worked after failures.
    pub recovered: bool,
}

impl InternalEvent for AlertmanagerPosted {
    fn emit(self, m: &Metrics) {
        if self.recovered {
            tracing::warn!(
                alerts = self.alerts,
                "Alertmanager reachable again; alerts posted"
            );
        } else {
            tracing::debug!(alerts = self.alerts, "alerts posted to Alertmanager");
        }
        m.alertmanager_posts.get_or_create(&result("success")).inc();
    }
}

pub struct AlertmanagerPostFailed {
    pub alerts: usize,
    pub error: String,
}

impl InternalEvent for AlertmanagerPostFailed {
    fn emit(self, m: &Metrics) {
        tracing::warn!(
            alerts = self.alerts,
            error = self.error,
            "posting alerts to Alertmanager failed; retrying at the next resend"
        );
        m.alertmanager_posts.get_or_create(&result("failure")).inc();
    }
}

/// A flow record reached the daemon, `lag` after the kernel's sighting.
pub struct FlowRecordReceived {
    pub lag: Duration,
}

impl InternalEvent for FlowRecordReceived {
    fn emit(self, m: &Metrics) {
        tracing::trace!(lag = ?self.lag, "flow record");
        m.records.inc();
        m.lag.observe(self.lag.as_secs_f64());
    }
}

/// A kernel record that could not be decoded: skipped, never fatal.
pub struct MalformedRecord<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for MalformedRecord<'_> {
    fn emit(self, m: &Metrics) {
        tracing::warn!(error = %self.error, "skipping a malformed record");
        m.malformed_records.inc();
    }
}

/// Connections outside --scope: counted, not judged.
pub struct OutOfScope {
    pub connections: u64,
}

impl InternalEvent for OutOfScope {
    fn emit(self, m: &Metrics) {
        tracing::trace!(connections = self.connections, "out of scope");
        m.out_of_scope.inc_by(self.connections);
    }
}

/// Connections judged: one flow record's edge.
pub struct ConnectionsJudged<'a> {
    pub edge: &'a Edge,
}

impl InternalEvent for ConnectionsJudged<'_> {
    fn emit(self, m: &Metrics) {
        tracing::trace!(
            verdict = self.edge.verdict.as_str(),
            count = self.edge.count,
            "judged"
        );
        let labels = VerdictLabels::of(self.edge);
        m.connections.get_or_create(&labels).inc_by(self.edge.count);
        seen(
            &m.connection_first_seen,
            &m.connection_last_seen,
            &labels,
            self.edge,
        );
    }
}

/// Widens a series' first/last seen gauges to the edge's (0 = never set).
fn seen<L: Clone + std::hash::Hash + Eq>(
    first: &prometheus_client::metrics::family::Family<L, crate::metrics::Timestamp>,
    last: &prometheus_client::metrics::family::Family<L, crate::metrics::Timestamp>,
    labels: &L,
    edge: &Edge,
) {
    let (f, l) = (
        edge.first_seen as f64 / 1000.0,
        edge.last_seen as f64 / 1000.0,
    );
    let g = first.get_or_create(labels);
    if g.get() == 0.0 || f < g.get() {
        g.set(f);
    }
    let g = last.get_or_create(labels);
    if l > g.get() {
        g.set(l);
    }
}

/// Connections of a violation edge, in its own series or its overflow series.
pub struct ViolationCounted<'a> {
    pub edge: &'a Edge,
    pub labels: &'a EdgeLabels,
}

impl InternalEvent for ViolationCounted<'_> {
    fn emit(self, m: &Metrics) {
        m.violations
            .get_or_create(self.labels)
            .inc_by(self.edge.count);
        seen(
            &m.violation_first_seen,
            &m.violation_last_seen,
            self.labels,
            self.edge,
        );
    }
}

/// An edge sighting counted in its overflow edge because `holder`'s map held `cap`
/// distinct edges. Logged once per holder (`first`), counted every time.
pub struct EdgeOverflowed {
    pub holder: &'static str,
    pub cap: usize,
    pub first: bool,
}

impl InternalEvent for EdgeOverflowed {
    fn emit(self, m: &Metrics) {
        if self.first {
            tracing::warn!(
                holder = self.holder,
                cap = self.cap,
                "{} distinct edges held: further new edges are counted in one overflow edge per verdict and transport (src and dst \"_other\"); raise --max-violation-series to keep more apart",
                self.cap
            );
        } else {
            tracing::trace!(holder = self.holder, "edge counted in the overflow edge");
        }
        m.overflowed
            .get_or_create(&HolderLabels {
                holder: self.holder.into(),
            })
            .inc();
    }
}

/// An HTTP request or connection turned away (bad token, a report already being built,
/// too many connections).
pub struct HttpRejected {
    pub reason: &'static str,
}

impl InternalEvent for HttpRejected {
    fn emit(self, m: &Metrics) {
        tracing::debug!(reason = self.reason, "HTTP request rejected");
        m.http_rejected
            .get_or_create(&ReasonLabels {
                reason: self.reason.into(),
            })
            .inc();
    }
}

pub struct EventWritten;

impl InternalEvent for EventWritten {
    fn emit(self, m: &Metrics) {
        m.events.inc();
    }
}

/// A violation event the output refused (full disk, closed pipe): counted as a failure
/// and as a dropped event; auditing goes on and the output is retried after `retry_in`.
pub struct EventWriteFailed<'a> {
    pub output: String,
    pub error: &'a std::io::Error,
    pub retry_in: Duration,
}

impl InternalEvent for EventWriteFailed<'_> {
    fn emit(self, m: &Metrics) {
        tracing::error!(
            output = self.output,
            error = %self.error,
            retry_in = ?self.retry_in,
            "writing a violation event failed; the event is dropped (counted) and auditing goes on"
        );
        m.event_write_failures.inc();
        m.events_dropped.inc();
    }
}

/// A violation event not written because the output is backing off after a failure.
pub struct EventDropped;

impl InternalEvent for EventDropped {
    fn emit(self, m: &Metrics) {
        tracing::debug!("events output backing off; violation event dropped (counted)");
        m.events_dropped.inc();
    }
}

/// The events output works again after failing.
pub struct EventOutputRecovered {
    pub output: String,
    pub dropped: u64,
}

impl InternalEvent for EventOutputRecovered {
    fn emit(self, m: &Metrics) {
        tracing::warn!(
            output = self.output,
            dropped = self.dropped,
            "events output recovered"
        );
        m.event_output_recoveries.inc();
    }
}

/// A kernel-side count that is not a loss (sightings, passive_no_listener).
pub struct KernelCounted {
    pub counter: Counter,
    pub delta: u64,
}

impl InternalEvent for KernelCounted {
    fn emit(self, m: &Metrics) {
        m.kernel
            .get_or_create(&KernelLabels {
                counter: self.counter.name().into(),
            })
            .inc_by(self.delta);
    }
}

pub struct KernelLoss {
    pub counter: &'static str,
    pub delta: u64,
    pub total: u64,
}

impl InternalEvent for KernelLoss {
    fn emit(self, m: &Metrics) {
        tracing::warn!(
            counter = self.counter,
            delta = self.delta,
            total = self.total,
            "the kernel lost connections (an epoch's flow map and the ring buffer were both full): they are not audited, and the store records the loss with its epoch"
        );
        m.kernel
            .get_or_create(&KernelLabels {
                counter: self.counter.into(),
            })
            .inc_by(self.delta);
    }
}

/// One DNS answer taken (or not) into the name table.
pub struct DnsAnswerTaken<'a> {
    pub answer_use: crate::dns::AnswerUse,
    pub transport: crate::capture::Transport,
    pub resolver: std::net::IpAddr,
    pub question: Option<&'a str>,
}

impl InternalEvent for DnsAnswerTaken<'_> {
    fn emit(self, m: &Metrics) {
        use crate::dns::AnswerUse;
        if self.answer_use == AnswerUse::Untrusted {
            // Debug, not warn: a pod with its own resolver answers every few seconds.
            tracing::debug!(resolver = %self.resolver, question = self.question.unwrap_or("?"), "a DNS answer from an untrusted server: recorded, not used");
        }
        m.dns_answers
            .get_or_create(&crate::metrics::AnswerUseLabels {
                r#use: self.answer_use.as_str().into(),
                transport: self.transport.as_str().into(),
            })
            .inc();
    }
}

/// A DNS packet from port 53 that gave no answer.
pub struct DnsUnreadable<'a> {
    pub error: &'a crate::dns::PacketError,
    pub resolver: std::net::IpAddr,
}

impl InternalEvent for DnsUnreadable<'_> {
    fn emit(self, m: &Metrics) {
        tracing::debug!(resolver = %self.resolver, error = %self.error, "skipping a DNS packet");
        m.dns_unreadable
            .get_or_create(&crate::metrics::ReasonLabels {
                reason: self.error.kind().into(),
            })
            .inc();
    }
}

/// The name table's size, and the evictions since the last report.
pub struct DnsTable {
    pub names: usize,
    pub evicted: u64,
}

impl InternalEvent for DnsTable {
    fn emit(self, m: &Metrics) {
        if self.evicted > 0 {
            tracing::warn!(
                evicted = self.evicted,
                held = self.names,
                "the DNS name table is full: the oldest names were evicted (raise --dns-max-names)"
            );
        }
        m.dns_names.set(self.names as i64);
        m.dns_evictions.inc_by(self.evicted);
    }
}

/// DNS over TCP that reassembly gave up on, since the last report: each stream or segment
/// is counted under its reason (`tcp_gap`, `tcp_copied_in_part`, `tcp_overflow`,
/// `tcp_evicted`, `tcp_ignored_segment`), beside the packets that gave no answer.
pub struct DnsTcpGivenUp {
    pub reason: &'static str,
    pub delta: u64,
}

impl InternalEvent for DnsTcpGivenUp {
    fn emit(self, m: &Metrics) {
        if self.delta == 0 {
            return;
        }
        tracing::debug!(
            reason = self.reason,
            delta = self.delta,
            "DNS over TCP not read"
        );
        m.dns_unreadable
            .get_or_create(&crate::metrics::ReasonLabels {
                reason: self.reason.into(),
            })
            .inc_by(self.delta);
    }
}
