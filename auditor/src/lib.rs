//! auditor: captures every socket connect on a node with eBPF and judges it against the
//! documented architecture. `capture` makes complete flow records; `model` (the verdict,
//! time, the one vocabulary), `dns` (the names each pod resolved), `edge` and `event` are what every output names a judged
//! connection with; `identity` and `verdict` judge; `store`, `alert`, `metrics`, `report`
//! and `networkpolicy` are the outputs; `cli` validates the command line, `daemon` runs
//! `auditor run`, and `commands/` holds every command. Imports run down that order
//! (README.md's Layout; `tests/layering.rs`). The binary in `main.rs` only wires these.

pub mod alert;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod daemon;
pub mod dns;
pub mod edge;
pub mod event;
pub mod identity;
pub mod internal_events;
mod memory;
pub mod metrics;
pub mod model;
pub mod networkpolicy;
pub mod provenance;
pub mod report;
pub mod store;
pub mod verdict;

/// Completes on Ctrl-C, SIGTERM, or after `limit`. The signal handlers are installed
/// when this is called, not when the future is first polled, so a signal that arrives
/// while the caller is still setting up is not lost (the default action would kill the
/// process before it detaches and drains). Call it inside the runtime.
pub fn shutdown_signal(limit: Option<std::time::Duration>) -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        let (mut term, mut int) = match (term, int) {
            (Ok(t), Ok(i)) => (t, i),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM/SIGINT");
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
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = timer => {}
        }
    }
}
