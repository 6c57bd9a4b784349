//! auditor: captures every socket connect on a node with eBPF and judges it against the
//! documented architecture. `capture` makes complete flow records, `identity` and
//! `verdict` judge them, `edge` and `event` are the vocabulary every output uses, and
//! `daemon`, `store`, `alert`, `metrics` and `report` are the outputs. The binary in
//! `main.rs` only wires these.

pub mod alert;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod daemon;
pub mod edge;
pub mod event;
pub mod identity;
pub mod internal_events;
pub mod metrics;
pub mod provenance;
pub mod report;
pub mod store;
pub mod verdict;

/// Completes on Ctrl-C, SIGTERM, or after `limit`.
pub async fn shutdown_signal(limit: Option<std::time::Duration>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    let timer = async {
        match limit {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = timer => {}
    }
}
