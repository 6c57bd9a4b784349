//! `auditor run`: the node daemon. Capture → identity → verdict → sinks (events, metrics,
//! Alertmanager, store), with safe reloads and a graceful shutdown. `handler` is the
//! per-record path, `sinks` where its edges go; the tasks run beside it on one thread.

mod handler;
mod http;
pub(crate) mod sinks;
mod tasks;

use std::{
    io::Write,
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::SystemTime,
};

use anyhow::Context;
use tokio::sync::{Notify, watch};

use crate::{
    alert::edges::Edges,
    capture::{ProbeOptions, Probes, stream},
    cli::RunConfig,
    edge::{Drops, unix_ms},
    internal_events::{InternalEvent, PolicyReloaded},
    metrics::Metrics,
    store::{Batch, Store},
    verdict::load_judge,
};

/// State the record path and the tasks share. Locks are held for microseconds.
pub struct Shared {
    pub node: String,
    pub metrics: Metrics,
    pub edges: Mutex<Edges>,
    pub pending: Mutex<Batch>,
    /// Kernel drops counted since the last store commit (for coverage).
    pub drops: Mutex<Drops>,
    pub ready: AtomicBool,
    pub alert_kick: Notify,
    pub session_start_ms: i64,
    /// With --kubernetes: ready only once the cluster caches have synced.
    pub kube: Option<Arc<crate::identity::kubernetes::KubeState>>,
    /// The store file, for GET /report.
    pub store_path: Option<std::path::PathBuf>,
}

pub fn run(cfg: RunConfig) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(cfg))
}

async fn run_async(cfg: RunConfig) -> anyhow::Result<()> {
    let kube = if cfg.kubernetes {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
        let state = Arc::new(crate::identity::kubernetes::KubeState::default());
        crate::identity::kubernetes::start_watchers(client, state.clone());
        Some(state)
    } else {
        None
    };
    let (judge, warnings) = load_judge(
        &cfg.policy.allowlist,
        &cfg.policy.inventory,
        cfg.policy.overrides.as_deref(),
        cfg.policy.baseline.as_deref(),
        kube.as_ref(),
    )
    .context("loading the policy")?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let store = match &cfg.store.path {
        Some(p) => {
            let mut st = Store::open(p)?;
            let json = allowlist::file::to_json(&judge.allowlist);
            st.set_allowlist(&json)?;
            let inputs = crate::provenance::Inputs::of_files(&judge.allowlist, &cfg.policy)?;
            st.record_inputs(&inputs, &json)?;
            Some(Arc::new(Mutex::new(st)))
        }
        None => {
            tracing::warn!("no --store: observations are not kept");
            None
        }
    };
    let events: Box<dyn Write + Send> = match &cfg.alerts.events {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening --events {}", p.display()))?,
        ),
        None => Box::new(std::io::LineWriter::new(std::io::stdout())),
    };
    let shared = Arc::new(Shared {
        node: cfg.node.clone(),
        metrics: Metrics::new(),
        edges: Mutex::new(Edges::new(cfg.alerts.renotify)),
        pending: Mutex::new(Batch::default()),
        drops: Mutex::new(Drops::default()),
        ready: AtomicBool::new(false),
        alert_kick: Notify::new(),
        session_start_ms: unix_ms(SystemTime::now()),
        kube: kube.clone(),
        store_path: cfg.store.path.clone(),
    });
    PolicyReloaded {
        generation: 1,
        connections: judge.allowlist.connections.len(),
    }
    .emit(&shared.metrics);
    let (judge_tx, judge_rx) = watch::channel(Arc::new(judge));
    let (stop_tx, stop_rx) = watch::channel(false);

    // Probes first: then the kernel records our own listener, and skips its accepts.
    let mut probes = Probes::load_and_attach(&ProbeOptions {
        self_tgid: std::process::id(),
        report_interval: cfg.probes.report_interval,
        cgroup_root: cfg.probes.cgroup_root.clone(),
    })
    .context("starting the capture")?;
    // Before /readyz says ready: a SIGTERM from then on must stop us cleanly.
    let shutdown = crate::shutdown_signal(None);
    let server = http::serve(cfg.listen, shared.clone(), stop_rx.clone()).await?;
    release_load_time_memory();
    shared
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(node = cfg.node, listen = %cfg.listen, cgroup_root = %probes.cgroup_root.display(), "auditing");

    let store_task = tokio::spawn(tasks::store_loop(
        shared.clone(),
        store.clone(),
        cfg.store.clone(),
        stop_rx.clone(),
    ));
    let alert_task = tokio::spawn(tasks::alert_loop(
        shared.clone(),
        cfg.alerts.clone(),
        stop_rx.clone(),
    ));
    let reload_task = tokio::spawn(tasks::reload_loop(
        cfg.policy.clone(),
        cfg.reload_poll,
        judge_tx,
        shared.clone(),
        store.clone(),
        stop_rx.clone(),
    ));

    let mut handler = handler::DaemonHandler::new(
        shared.clone(),
        judge_rx,
        sinks::EventWriter::new(events),
        cfg.scope.clone(),
    );
    let summary = stream::run(&mut probes, &mut handler, shutdown).await;
    shared
        .ready
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = stop_tx.send(true);
    // The store task commits what is pending before it returns.
    let _ = store_task.await;
    let _ = alert_task.await;
    reload_task.abort();
    let _ = server.await;
    let summary = summary.context("capture stream")?;
    tracing::info!(
        records = summary.records,
        connections = summary.connections,
        "stopped; store flushed, probes detached"
    );
    Ok(())
}

/// Loading parses the kernel's BTF (megabytes, twice: aya and our offsets) and the policy;
/// glibc keeps that freed heap mapped. Hand it back so the steady-state footprint is the
/// daemon's working set, not its start-up peak.
fn release_load_time_memory() {
    // SAFETY: malloc_trim only releases free heap pages; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
