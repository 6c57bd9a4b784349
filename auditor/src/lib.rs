//! auditor: captures every socket connect on a node with eBPF and (in later stages) judges
//! it against the documented architecture. The binary in `main.rs` only wires these.

pub mod alert;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod daemon;
pub mod identity;
pub mod internal_events;
pub mod metrics;
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
