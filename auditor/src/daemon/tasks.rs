//! The daemon's background tasks: committing observations to the store, keeping
//! Alertmanager up to date, and reloading the policy.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use tokio::sync::watch;

use super::Shared;
use crate::{
    alert::alertmanager::{Client, alert},
    cli::{AlertConfig, PolicyConfig, StoreConfig},
    edge::{from_unix_ms, unix_ms},
    internal_events::{
        AlertmanagerPostFailed, AlertmanagerPosted, InternalEvent, PolicyReloadFailed,
        PolicyReloaded, StoreCommitFailed, StoreCommitted,
    },
    store::{Store, batch::CoverageUpdate},
    verdict::{Judge, load_judge},
};

const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Takes what is pending and commits it; on failure puts it back (nothing is dropped).
async fn commit_once(shared: &Arc<Shared>, store: &Arc<Mutex<Store>>, last_end_ms: &mut i64) {
    let now_ms = unix_ms(SystemTime::now());
    let mut batch = std::mem::take(&mut *shared.pending.lock().unwrap_or_else(|e| e.into_inner()));
    let drops = std::mem::take(&mut *shared.drops.lock().unwrap_or_else(|e| e.into_inner()));
    batch.coverage = Some(CoverageUpdate {
        session_start_ms: shared.session_start_ms,
        start_ms: *last_end_ms,
        end_ms: now_ms,
        drops,
    });
    let node = shared.node.clone();
    let store2 = store.clone();
    let result = tokio::task::spawn_blocking(move || {
        let outcome = store2
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .commit(&node, &batch);
        (batch, outcome)
    })
    .await;
    match result {
        Ok((batch, Ok(()))) => {
            *last_end_ms = now_ms;
            StoreCommitted {
                edges: batch.edges.len(),
                connections: batch.connections(),
            }
            .emit(&shared.metrics);
        }
        Ok((batch, Err(e))) => {
            StoreCommitFailed { error: &e }.emit(&shared.metrics);
            let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
            let newer = std::mem::take(&mut *pending);
            let mut merged = batch;
            merged.merge(newer);
            if let Some(c) = merged.coverage.take() {
                shared
                    .drops
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .add(&c.drops);
            }
            *pending = merged;
        }
        Err(join) => {
            let e = anyhow::anyhow!("store task panicked: {join}");
            StoreCommitFailed { error: &e }.emit(&shared.metrics);
        }
    }
}

pub async fn store_loop(
    shared: Arc<Shared>,
    store: Option<Arc<Mutex<Store>>>,
    cfg: StoreConfig,
    mut stop: watch::Receiver<bool>,
) {
    let Some(store) = store else { return };
    let mut last_end_ms = shared.session_start_ms;
    let mut tick = tokio::time::interval(cfg.flush);
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        commit_once(&shared, &store, &mut last_end_ms).await;
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = tokio::time::Instant::now();
            let cutoff = unix_ms(SystemTime::now()) - cfg.retention.as_millis() as i64;
            let s = store.clone();
            if let Ok(Ok(n)) = tokio::task::spawn_blocking(move || {
                s.lock().unwrap_or_else(|e| e.into_inner()).prune(cutoff)
            })
            .await
                && n > 0
            {
                tracing::info!(deleted = n, "store retention");
            }
        }
    }
    // Shutdown: what the capture delivered last is committed before exit.
    commit_once(&shared, &store, &mut last_end_ms).await;
}

pub async fn alert_loop(shared: Arc<Shared>, cfg: AlertConfig, mut stop: watch::Receiver<bool>) {
    let (resend, resolve_after) = (cfg.resend, cfg.resolve_after);
    let client = match cfg.alertmanager.as_deref().map(Client::new) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            tracing::error!(error = %e, "Alertmanager client");
            None
        }
        None => None,
    };
    loop {
        tokio::select! {
            _ = shared.alert_kick.notified() => {
                // Let a burst of new edges go out in one post.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ = tokio::time::sleep(resend) => {}
            _ = stop.changed() => return,
        }
        let now = SystemTime::now();
        let alerts: Vec<serde_json::Value> = {
            let mut edges = shared.edges.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = Vec::new();
            for e in edges.iter_mut() {
                let quiet = e.last_seen_at.elapsed();
                if quiet < resolve_after {
                    e.alert_open = true;
                    let ends_at = from_unix_ms(e.edge.last_seen) + resolve_after;
                    out.push(alert(&shared.node, &e.edge, ends_at));
                } else if e.alert_open {
                    e.alert_open = false;
                    out.push(alert(&shared.node, &e.edge, now));
                }
            }
            edges.forget_idle(resolve_after * 4);
            out
        };
        if let Some(c) = &client
            && !alerts.is_empty()
        {
            match c.post(&alerts).await {
                Ok(()) => AlertmanagerPosted {
                    alerts: alerts.len(),
                }
                .emit(&shared.metrics),
                Err(error) => AlertmanagerPostFailed {
                    alerts: alerts.len(),
                    error,
                }
                .emit(&shared.metrics),
            }
        }
    }
}

/// What identifies a file's version: a ConfigMap update swaps a symlink, which changes it.
fn fingerprint(cfg: &PolicyConfig) -> Vec<Option<(SystemTime, u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    [
        Some(&cfg.allowlist),
        Some(&cfg.inventory),
        cfg.overrides.as_ref(),
        cfg.baseline.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| {
        std::fs::metadata(p).ok().map(|m| {
            (
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                m.len(),
                m.ino(),
            )
        })
    })
    .collect()
}

pub async fn reload_loop(
    cfg: PolicyConfig,
    poll: Duration,
    tx: watch::Sender<Arc<Judge>>,
    shared: Arc<Shared>,
    store: Option<Arc<Mutex<Store>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP; reloads follow file changes only");
            None
        }
    };
    let mut seen = fingerprint(&cfg);
    let mut generation = 1i64;
    loop {
        let hup_recv = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        let reason = tokio::select! {
            _ = hup_recv => "SIGHUP",
            _ = tokio::time::sleep(poll) => {
                let now = fingerprint(&cfg);
                if now == seen { continue; }
                seen = now;
                "file change"
            }
            _ = stop.changed() => return,
        };
        tracing::info!(reason, "reloading the policy");
        let c = cfg.clone();
        let kube = shared.kube.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            load_judge(
                &c.allowlist,
                &c.inventory,
                c.overrides.as_deref(),
                c.baseline.as_deref(),
                kube.as_ref(),
            )
        })
        .await;
        match loaded {
            Ok(Ok((judge, warnings))) => {
                for w in warnings {
                    tracing::warn!("{w}");
                }
                generation += 1;
                PolicyReloaded {
                    generation,
                    connections: judge.allowlist.connections.len(),
                }
                .emit(&shared.metrics);
                // The store records which policy its observations were judged against.
                if let Some(st) = &store {
                    let json = allowlist::file::to_json(&judge.allowlist);
                    let inputs = crate::provenance::Inputs::of_files(&judge.allowlist, &cfg);
                    let mut st = st.lock().unwrap_or_else(|e| e.into_inner());
                    if let Err(e) = st
                        .set_allowlist(&json)
                        .and_then(|()| st.record_inputs(&inputs?, &json))
                    {
                        StoreCommitFailed { error: &e }.emit(&shared.metrics);
                    }
                }
                let _ = tx.send(Arc::new(judge));
            }
            Ok(Err(e)) => PolicyReloadFailed { error: &e }.emit(&shared.metrics),
            Err(join) => PolicyReloadFailed {
                error: &anyhow::anyhow!("reload task: {join}"),
            }
            .emit(&shared.metrics),
        }
    }
}
