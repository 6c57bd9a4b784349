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
    cli::{AlertConfig, StoreConfig},
    internal_events::{
        AlertmanagerPostFailed, AlertmanagerPosted, EdgeOverflowed, InternalEvent,
        PolicyReloadFailed, PolicyReloaded, StoreCommitFailed, StoreCommitted, StoreRestarted,
    },
    model::time::{from_unix_ms, unix_ms},
    store::{Store, batch::CoverageUpdate},
    verdict::{InputFiles, Judge, load_judge},
};

const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// A committed batch of at least this many edges freed enough heap to hand back to the
/// system at once (smaller ones are reused by the next batches).
const RELEASE_AFTER_EDGES: usize = 256;

/// Takes what is pending and commits it; on failure puts it back (nothing is dropped).
/// True when the commit reached the disk.
///
/// The coverage committed ends at the capture's watermark (`Watched`), and its loss is
/// the loss up to there: the observations of that span were all added to the pending
/// batch before the watermark moved, so they are in this commit or an earlier one.
/// Observations past the watermark may ride along; coverage reaches them later.
async fn commit_once(
    shared: &Arc<Shared>,
    store: &Arc<Mutex<Store>>,
    last_end_ms: &mut Option<i64>,
) -> bool {
    // The watermark first, then the batch: the handler adds a span's observations before
    // it moves the watermark, so the batch taken after holds everything up to it.
    let watched = std::mem::take(&mut *shared.watched.lock().unwrap_or_else(|e| e.into_inner()));
    let mut batch = std::mem::take(&mut *shared.pending.lock().unwrap_or_else(|e| e.into_inner()));
    batch.coverage = watched.end_ms.map(|end_ms| {
        let start_ms = last_end_ms.or(watched.start_ms).unwrap_or(end_ms);
        CoverageUpdate {
            session_start_ms: shared.session_start_ms,
            start_ms,
            end_ms: end_ms.max(start_ms),
            drops: watched.drops,
        }
    });
    let node = shared.node.clone();
    let store2 = store.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut st = store2.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = st.commit(&node, &batch);
        (batch, outcome, st.take_restarted())
    })
    .await;
    if let Ok((_, _, Some(reason))) = &result {
        StoreRestarted { reason }.emit(&shared.metrics);
    }
    match result {
        Ok((batch, Ok(()), _)) => {
            if let Some(c) = &batch.coverage {
                *last_end_ms = Some(c.end_ms);
            }
            StoreCommitted {
                edges: batch.edges.len(),
                connections: batch.connections(),
            }
            .emit(&shared.metrics);
            if !batch.edges.is_empty() || !batch.rows.is_empty() {
                shared
                    .store_generation
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // The cached report is stale now: let its memory go.
                shared.report.clear_if_idle();
            }
            let big = batch.edges.len() >= RELEASE_AFTER_EDGES;
            drop(batch);
            if big {
                crate::memory::release_freed_memory();
            }
            true
        }
        Ok((batch, Err(e), _)) => {
            StoreCommitFailed { error: &e }.emit(&shared.metrics);
            let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
            let newer = std::mem::take(&mut *pending);
            let mut merged = batch;
            for _ in 0..merged.merge(newer, shared.max_edges) {
                EdgeOverflowed {
                    holder: "store",
                    cap: shared.max_edges,
                    first: false,
                }
                .emit(&shared.metrics);
            }
            if merged.coverage.take().is_some() {
                shared
                    .watched
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .put_back(watched);
            }
            shared.metrics.store_pending.set(merged.edges.len() as i64);
            *pending = merged;
            false
        }
        Err(join) => {
            // The batch went with the task: its span is a gap, never claimed by the next.
            *last_end_ms = watched.end_ms.or(*last_end_ms);
            let e = anyhow::anyhow!("store task panicked: {join}");
            StoreCommitFailed { error: &e }.emit(&shared.metrics);
            false
        }
    }
}

pub async fn store_loop(
    shared: Arc<Shared>,
    store: Option<Arc<Mutex<Store>>>,
    cfg: StoreConfig,
    mut stop: watch::Receiver<bool>,
) -> Option<bool> {
    let store = store?;
    let mut last_end_ms = None;
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
    Some(commit_once(&shared, &store, &mut last_end_ms).await)
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
    // After a failed post, new edges wait for the backoff (doubling, up to the resend
    // interval) instead of each trying at once; the alerts are rebuilt from the edges at
    // every post, so nothing is lost while Alertmanager is down.
    let mut backoff = Duration::from_secs(1);
    let mut retry_at: Option<tokio::time::Instant> = None;
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
            // Idle edges are forgotten once their alert resolved and they stayed quiet
            // three more --resolve-after periods (default: an hour after the last
            // sighting); the heap they used goes back to the system.
            if edges.forget_idle(resolve_after * 4) > 0 {
                crate::memory::release_freed_memory();
            }
            out
        };
        if let Some(c) = &client
            && !alerts.is_empty()
        {
            if let Some(t) = retry_at {
                tokio::select! {
                    _ = tokio::time::sleep_until(t) => {}
                    _ = stop.changed() => return,
                }
            }
            match c.post(&alerts).await {
                Ok(()) => {
                    AlertmanagerPosted {
                        alerts: alerts.len(),
                        recovered: retry_at.take().is_some(),
                    }
                    .emit(&shared.metrics);
                    backoff = Duration::from_secs(1);
                }
                Err(error) => {
                    AlertmanagerPostFailed {
                        alerts: alerts.len(),
                        error,
                    }
                    .emit(&shared.metrics);
                    retry_at = Some(tokio::time::Instant::now() + backoff);
                    backoff = (backoff * 2).min(resend.max(Duration::from_secs(1)));
                }
            }
        }
    }
}

/// What identifies a file's version cheaply: a ConfigMap update swaps a symlink, which
/// changes it. None for a file that cannot be read.
type Stat = Option<(SystemTime, u64, u64)>;

fn policy_paths(cfg: &InputFiles) -> impl Iterator<Item = &std::path::Path> {
    [
        Some(&cfg.allowlist),
        Some(&cfg.inventory),
        cfg.overrides.as_ref(),
        cfg.baseline.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| p.as_path())
}

fn stats(cfg: &InputFiles) -> Vec<Stat> {
    use std::os::unix::fs::MetadataExt;
    policy_paths(cfg)
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

/// The files' stats and content digests: a file is complete when this is the same at two
/// polls in a row (a writer that pauses for less than a poll is never caught half way).
#[derive(Clone, PartialEq, Eq)]
struct Fingerprint {
    stats: Vec<Stat>,
    digests: Vec<Option<[u8; 32]>>,
}

fn fingerprint(cfg: &InputFiles) -> Fingerprint {
    use sha2::Digest;
    Fingerprint {
        stats: stats(cfg),
        digests: policy_paths(cfg)
            .map(|p| {
                std::fs::read(p)
                    .ok()
                    .map(|b| sha2::Sha256::digest(&b).into())
            })
            .collect(),
    }
}

/// Polls the policy files; says when a change has settled. A change is loaded only when
/// the files are unchanged across two polls (size, mtime and content hash), so a file
/// still being written is never loaded as a generation.
struct ReloadWatch {
    loaded: Fingerprint,
    /// A change seen at the last poll, waiting to be seen unchanged once more.
    candidate: Option<Fingerprint>,
}

impl ReloadWatch {
    fn new(cfg: &InputFiles) -> ReloadWatch {
        ReloadWatch {
            loaded: fingerprint(cfg),
            candidate: None,
        }
    }

    /// True when a settled change is to be loaded now.
    fn poll(&mut self, cfg: &InputFiles) -> bool {
        // Reading and hashing the files only when their stats moved keeps a quiet poll
        // to a few stat calls.
        if self.candidate.is_none() && stats(cfg) == self.loaded.stats {
            return false;
        }
        let now = fingerprint(cfg);
        if now == self.loaded {
            self.candidate = None;
            return false;
        }
        if self.candidate.as_ref() == Some(&now) {
            self.candidate = None;
            self.loaded = now;
            return true;
        }
        tracing::info!(
            "policy files changed; loading them once they are unchanged at the next poll"
        );
        self.candidate = Some(now);
        false
    }

    /// After a reload by SIGHUP: what is on disk now is what was loaded.
    fn loaded_now(&mut self, cfg: &InputFiles) {
        self.loaded = fingerprint(cfg);
        self.candidate = None;
    }
}

pub async fn reload_loop(
    cfg: InputFiles,
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
    let mut watch = ReloadWatch::new(&cfg);
    let mut generation = 1i64;
    loop {
        let hup_recv = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        let reason = tokio::select! {
            _ = hup_recv => {
                watch.loaded_now(&cfg);
                "SIGHUP"
            }
            _ = tokio::time::sleep(poll) => {
                if !watch.poll(&cfg) { continue; }
                "file change (unchanged for two polls)"
            }
            _ = stop.changed() => return,
        };
        tracing::info!(reason, "reloading the policy");
        let c = cfg.clone();
        let kube = shared.kube.clone();
        let loaded = tokio::task::spawn_blocking(move || load_judge(&c, kube.as_ref())).await;
        match loaded {
            Ok(Ok((mut judge, warnings))) => {
                judge.baseline.add_auditor(&shared.auditor_self);
                for w in warnings {
                    tracing::warn!("{w}");
                }
                generation += 1;
                PolicyReloaded {
                    generation,
                    connections: judge.allowlist.connections.len(),
                    allowlist_content_sha256: crate::provenance::allowlist_content_sha256(
                        &judge.allowlist,
                    ),
                }
                .emit(&shared.metrics);
                // The store records which policy its observations were judged against.
                if let Some(st) = &store {
                    let json = allowlist::file::to_json(&judge.allowlist);
                    let inputs = crate::provenance::Inputs::of_files(&judge.allowlist, &cfg);
                    let mut st = st.lock().unwrap_or_else(|e| e.into_inner());
                    // Both are tried even when one fails, so a store started afresh later
                    // (its file gone now) records this generation, not the previous one.
                    let set = st.set_allowlist(&json);
                    let recorded = inputs.and_then(|i| st.record_inputs(&i, &json));
                    for e in [set.err(), recorded.err()].into_iter().flatten() {
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
