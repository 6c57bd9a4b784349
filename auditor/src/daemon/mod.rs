//! `auditor run`: the node daemon. Capture → identity → verdict → sinks (events, metrics,
//! Alertmanager, store), with safe reloads and a graceful shutdown. `handler` is the
//! per-record path, `sinks` where its edges go; the tasks run beside it on one thread.

mod handler;
mod http;
pub(crate) mod sinks;
mod tasks;

use std::{
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::SystemTime,
};

use anyhow::Context;
use tokio::sync::{Notify, watch};

use crate::{
    alert::edges::Edges,
    capture::{Probes, stream},
    cli::RunConfig,
    edge::Drops,
    internal_events::{Degraded, InternalEvent, OpenSocketsMethod, PolicyReloaded, StoreSetAside},
    metrics::Metrics,
    model::Millis,
    model::time::unix_ms,
    store::{Batch, Store},
    verdict::load_judge,
};

/// State the record path and the tasks share. Locks are held for microseconds.
pub struct Shared {
    pub node: String,
    pub metrics: Metrics,
    pub edges: Mutex<Edges>,
    pub pending: Mutex<Batch>,
    /// What the capture delivered completely since the last store commit (the next
    /// commit's coverage).
    pub watched: Mutex<Watched>,
    pub ready: AtomicBool,
    pub alert_kick: Notify,
    pub session_start_ms: i64,
    /// With --kubernetes: ready only once the cluster caches have synced.
    pub kube: Option<Arc<crate::identity::kubernetes::KubeState>>,
    /// The store file, for GET /report.
    pub store_path: Option<std::path::PathBuf>,
    /// The bearer token GET /report requires (`--report-token-file`).
    pub report_token: Option<String>,
    /// Distinct edges each in-memory edge map holds (violation series, alert edges, the
    /// pending batch) before new ones go into overflow edges (`--max-violation-series`).
    pub max_edges: usize,
    /// Bumped by each store commit that carried observations: what a cached /report is
    /// keyed by.
    pub store_generation: std::sync::atomic::AtomicU64,
    /// The last /report built, shared by the requests that waited for it.
    pub report: http::ReportCache,
    /// The daemon's own traffic, judged platform under the built-in `auditor` entry
    /// (added to every policy loaded).
    pub auditor_self: crate::verdict::baseline::AuditorSelf,
}

/// The span the capture has delivered completely since the last store commit: from its
/// start up to the watermark, with what the kernel lost in it. Coverage ends at the
/// watermark, never at the commit's wall clock: what the kernel counted after it is not
/// delivered yet, and after a kill -9 that time is a gap, not "fully audited".
#[derive(Debug, Default, Clone)]
pub struct Watched {
    pub start_ms: Option<Millis>,
    pub end_ms: Option<Millis>,
    pub drops: Drops,
}

impl Watched {
    pub fn extend(&mut self, span: &stream::WatchSpan) {
        self.start_ms.get_or_insert(unix_ms(span.start));
        self.end_ms = Some(unix_ms(span.end).max(self.end_ms.unwrap_or(i64::MIN)));
        self.drops.add(&Drops {
            ringbuf_full: span.ringbuf_full,
            connections_lost: span.connections_lost,
            flow_insert_failed: span.flow_insert_failed,
        });
    }

    /// Puts back what a failed commit took, before what was watched since.
    pub fn put_back(&mut self, older: Watched) {
        self.start_ms = older.start_ms.or(self.start_ms);
        self.end_ms = self.end_ms.or(older.end_ms);
        self.drops.add(&older.drops);
    }
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
        crate::identity::kubernetes::start_watchers(client, state.clone(), Some(&cfg.node));
        Some(state)
    } else {
        None
    };
    let auditor_self = auditor_self(&cfg).await;
    let (mut judge, warnings) =
        load_judge(&cfg.inputs, kube.as_ref()).context("loading the allowlist and inventory")?;
    judge.baseline.add_auditor(&auditor_self);
    for w in warnings {
        tracing::warn!("{w}");
    }
    let mut set_aside = None;
    let store = match &cfg.store.path {
        Some(p) => {
            let (mut st, aside) = Store::open_or_set_aside(p)?;
            if let Some(aside) = aside {
                set_aside = Some(StoreSetAside {
                    path: p.clone(),
                    aside,
                });
            }
            let json = allowlist::file::to_json(&judge.allowlist);
            st.set_allowlist(&json)?;
            let inputs = crate::provenance::Inputs::of_files(&judge.allowlist, &cfg.inputs)?;
            st.record_inputs(&inputs, &json)?;
            st.record_capture(&crate::store::CaptureSource {
                mode: "live".into(),
                node: cfg.node.clone(),
                auditor_version: crate::provenance::AUDITOR_VERSION.into(),
                kernel: Some(crate::capture::kernel_release()),
                flows_file: None,
                flows_sha256: None,
                capture_node: None,
                intervals_known: None,
                recorded_ms: unix_ms(SystemTime::now()),
            })?;
            Some(Arc::new(Mutex::new(st)))
        }
        None => {
            tracing::warn!("no --store: observations are not kept");
            None
        }
    };
    let names = names(&cfg, &judge, store.as_ref());
    let events = match &cfg.alerts.events {
        Some(p) => sinks::EventTarget::File(p.clone()),
        None => sinks::EventTarget::Stdout,
    };
    let events = sinks::EventWriter::new(events).with_context(|| {
        format!(
            "opening the events output ({})",
            cfg.alerts
                .events
                .as_ref()
                .map_or("stdout".into(), |p| p.display().to_string())
        )
    })?;
    let shared = Arc::new(Shared {
        node: cfg.node.clone(),
        metrics: Metrics::new(),
        edges: Mutex::new(Edges::new(cfg.alerts.renotify, cfg.max_violation_series)),
        pending: Mutex::new(Batch::default()),
        watched: Mutex::new(Watched::default()),
        ready: AtomicBool::new(false),
        alert_kick: Notify::new(),
        session_start_ms: unix_ms(SystemTime::now()),
        kube: kube.clone(),
        store_path: cfg.store.path.clone(),
        report_token: cfg.http.report_token.clone(),
        max_edges: cfg.max_violation_series,
        store_generation: std::sync::atomic::AtomicU64::new(0),
        report: http::ReportCache::default(),
        auditor_self,
    });
    if let Some(e) = set_aside {
        e.emit(&shared.metrics);
    }
    shared
        .metrics
        .max_violation_series
        .set(cfg.max_violation_series as i64);
    PolicyReloaded {
        generation: 1,
        connections: judge.allowlist.connections.len(),
        allowlist_content_sha256: crate::provenance::allowlist_content_sha256(&judge.allowlist),
    }
    .emit(&shared.metrics);
    let (judge_tx, judge_rx) = watch::channel(Arc::new(judge));
    let (stop_tx, stop_rx) = watch::channel(false);

    // Probes first: then the kernel records our own listener, and skips its accepts.
    let mut probes = Probes::load_and_attach(&cfg.probes.options(std::process::id()))
        .context("starting the capture")?;
    // Servers bound before we started: their passive opens get an owner from now on.
    stream::seed_listeners(&mut probes);
    OpenSocketsMethod {
        method: probes.sockets.method.name(),
        fallback: probes.sockets.fallback.as_deref(),
    }
    .emit(&shared.metrics);
    if probes.netns_offsets.is_none() {
        Degraded {
            reason: "no_btf",
            detail: "kernel BTF (/sys/kernel/btf/vmlinux) could not be read",
            consequence: "TCP flows carry no network namespace; loopback flows cannot be attributed and are judged unknown_source, and TCP egress is never named by DNS (names are kept per namespace)",
        }
        .emit(&shared.metrics);
    }
    if let Err(detail) = crate::capture::netns::access_check() {
        Degraded {
            reason: "no_netns_access",
            detail: &detail,
            consequence: "network namespaces cannot be entered; loopback and unbound UDP flows cannot be attributed to their pod and are judged unknown_source",
        }
        .emit(&shared.metrics);
    }
    // Before /readyz says ready: a SIGTERM from then on must stop us cleanly.
    let shutdown = crate::shutdown_signal(None);
    let server = http::serve(cfg.http.clone(), shared.clone(), stop_rx.clone()).await?;
    // Loading parses the kernel's BTF (megabytes, twice: aya and our offsets) and the
    // policy; hand that freed heap back so the steady state is the working set.
    crate::memory::release_freed_memory();
    shared
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(node = cfg.node, listen = %cfg.http.listen, report_auth = cfg.http.report_token.is_some(), cgroup_root = %probes.cgroup_root.display(), "auditing");

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
        cfg.inputs.clone(),
        cfg.reload_poll,
        judge_tx,
        shared.clone(),
        store.clone(),
        stop_rx.clone(),
    ));

    let mut handler =
        handler::DaemonHandler::new(shared.clone(), judge_rx, events, cfg.scope.clone(), names);
    let summary = stream::run(&mut probes, &mut handler, shutdown).await;
    // The name table goes with the final commit: held connections keep their names.
    handler.save_names(true);
    shared
        .ready
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = stop_tx.send(true);
    // The store task commits what is pending before it returns, and says whether that
    // final commit reached the disk.
    let flushed = store_task.await.unwrap_or(Some(false));
    let _ = alert_task.await;
    reload_task.abort();
    let _ = server.await;
    let summary = summary.context("capture stream")?;
    match flushed {
        Some(true) => tracing::info!(
            records = summary.records,
            connections = summary.connections,
            "stopped; store flushed, probes detached"
        ),
        Some(false) => tracing::error!(
            records = summary.records,
            connections = summary.connections,
            "stopped; the final store flush FAILED (see the error above): the last observations are not kept; probes detached"
        ),
        None => tracing::info!(
            records = summary.records,
            connections = summary.connections,
            "stopped (no store); probes detached"
        ),
    }
    Ok(())
}

/// The name table, restored from the store (names survive a restart, with their
/// expiries), or None with `--no-dns`.
fn names(
    cfg: &RunConfig,
    judge: &crate::verdict::Judge,
    store: Option<&Arc<Mutex<Store>>>,
) -> Option<crate::dns::Names> {
    if !cfg.probes.dns {
        tracing::info!(
            "--no-dns: egress is judged by address only; no flow says whether it was resolved"
        );
        return None;
    }
    let mut names = cfg.dns.names();
    names.set_baseline_servers(judge.baseline.names_dns_servers());
    tracing::info!(
        dns_resolvers = ?cfg.dns.resolvers,
        baseline_entries = ?judge.baseline.dns_entries(),
        "trusted DNS resolvers: the flag's and the platform baseline entries' for port 53"
    );
    if !names.trusts_any() {
        tracing::warn!(
            "no trusted DNS resolver (--dns-resolver, or a platform baseline entry for port 53): DNS answers are counted as untrusted and no name is used; egress is judged by address"
        );
    }
    if let Some(store) = store {
        let boot_id = crate::capture::boot_id();
        match store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .names(&cfg.node, &boot_id)
        {
            Ok(rows) => {
                let refused = names.table_mut().restore(rows);
                tracing::info!(
                    restored = names.table().len(),
                    refused,
                    "DNS names restored from the store (names saved in another boot are not: namespace cookies start again)"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "the store's DNS names could not be read: names are learned anew")
            }
        }
    }
    Some(names)
}

/// What the daemon listens on and connects to, for the built-in `auditor` baseline entry.
/// An upstream whose name does not resolve now is left out (and said so): its traffic
/// is then judged like any other.
async fn auditor_self(cfg: &RunConfig) -> crate::verdict::baseline::AuditorSelf {
    let mut upstreams: Vec<(String, String)> = Vec::new();
    if let Some(am) = &cfg.alerts.alertmanager
        && let Ok(url) = reqwest::Url::parse(am)
        && let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default())
    {
        upstreams.push(("Alertmanager".into(), host_port(host, port)));
    }
    if cfg.kubernetes
        && let Ok(k) = kube::Config::infer().await
        && let (Some(host), Some(port)) =
            (k.cluster_url.host(), k.cluster_url.port_u16().or(Some(443)))
    {
        upstreams.push(("the Kubernetes API server".into(), host_port(host, port)));
    }
    let mut resolved = Vec::new();
    for (what, at) in upstreams {
        match tokio::net::lookup_host(at.as_str()).await {
            Ok(addrs) => resolved.extend(addrs),
            Err(e) => {
                tracing::warn!(upstream = %at, error = %e, "{what}'s address is unknown now: its traffic from this node is judged like any other")
            }
        }
    }
    crate::verdict::baseline::AuditorSelf {
        listen: Some(cfg.http.listen),
        upstreams: resolved,
    }
}

/// "host:port", an IPv6 address in brackets (whether or not the URL kept them).
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
