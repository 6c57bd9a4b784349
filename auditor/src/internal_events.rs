//! Internal events: each thing worth telling an operator is one type here that logs and
//! counts together, so logs and metrics never disagree (as vector's internal_events).

use crate::metrics::{Metrics, ResultLabels};

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
    pub ok: bool,
    pub detail: String,
}

impl InternalEvent for AlertmanagerPosted {
    fn emit(self, m: &Metrics) {
        if self.ok {
            tracing::debug!(alerts = self.alerts, "alerts posted to Alertmanager");
        } else {
            tracing::warn!(
                alerts = self.alerts,
                detail = self.detail,
                "posting alerts to Alertmanager failed; retrying at the next resend"
            );
        }
        m.alertmanager_posts
            .get_or_create(&result(if self.ok { "success" } else { "failure" }))
            .inc();
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
            .get_or_create(&crate::metrics::KernelLabels {
                counter: self.counter.into(),
            })
            .inc_by(self.delta);
    }
}
