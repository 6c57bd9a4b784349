//! Internal events: each thing worth telling an operator is one type here that logs and
//! counts together, so logs and metrics never disagree (as vector's internal_events).
//! Success and failure are separate events. The per-record path emits them too (logged
//! at trace level there, so they cost a counter increment unless asked for).

use std::time::Duration;

use auditor_common::Counter;

use crate::{
    edge::Edge,
    metrics::{
        EdgeLabels, HolderLabels, KernelLabels, Metrics, ReasonLabels, ResultLabels, VerdictLabels,
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

pub struct AlertmanagerPosted {
    pub alerts: usize,
}

impl InternalEvent for AlertmanagerPosted {
    fn emit(self, m: &Metrics) {
        tracing::debug!(alerts = self.alerts, "alerts posted to Alertmanager");
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
        m.connections
            .get_or_create(&VerdictLabels::of(self.edge))
            .inc_by(self.edge.count);
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
        m.violation_last_seen
            .get_or_create(self.labels)
            .set(self.edge.last_seen as f64 / 1000.0);
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

pub struct EventWriteFailed<'a> {
    pub error: &'a std::io::Error,
}

impl InternalEvent for EventWriteFailed<'_> {
    fn emit(self, m: &Metrics) {
        tracing::error!(error = %self.error, "writing a violation event failed");
        m.event_write_failures.inc();
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
            "kernel-side loss: some connections may be uncounted"
        );
        m.kernel
            .get_or_create(&KernelLabels {
                counter: self.counter.into(),
            })
            .inc_by(self.delta);
    }
}
