//! `cargo xtask bench identity`: Kubernetes identity at cluster scale. The fake API
//! server (real wire format) holds 10,000 pods on 100 nodes, 2,000 Services and 2,000
//! EndpointSlices of 10 endpoints (20,000 endpoints); then pods change at 100/s for a
//! minute. Prints:
//! - the RSS of a real `auditor run --kubernetes` daemon on one node (needs root:
//!   probes; run under `flock /tmp/auditor-kernel.lock`): at the end, its peak once
//!   auditing (the caches' sync and the churn: what identity costs), and its lifetime
//!   peak (VmHWM), next to the same daemon's without --kubernetes (loading the probes,
//!   which parses the kernel's BTF, is the lifetime peak of both);
//! - the bytes that daemon received from the API server, to sync and during the churn;
//! - the identity lookup time (ClusterIPs, endpoint pods, unknown addresses), measured
//!   in this process with the same watchers and indexes.
//!
//! Figures, not a pass/fail test. Options: --churn-seconds N (60), --rate N (100),
//! --lookups-only (only the lookup time: no daemon, so no root and no kernel lock).

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use auditor::identity::{
    IdentitySource, Inventory,
    kubernetes::{KubeIdentity, KubeState, start_watchers},
};
use auditor_tests::{
    fake_kube::{FakeKube, Kind, endpoint_slice_of_pods, pod, service},
    services::Daemon,
};

const PODS: usize = 10_000;
const NODES: usize = 100;
const SERVICES: usize = 2_000;
const PER_SLICE: usize = 10;
const NODE: &str = "node-000";

fn node_of(i: usize) -> String {
    format!("node-{:03}", i % NODES)
}

fn pod_ip(i: usize) -> String {
    format!("10.{}.{}.{}", 64 + i / 65536, (i / 256) % 256, i % 256)
}

fn uid(i: usize) -> String {
    format!("{i:08x}-0000-4000-8000-000000000000")
}

fn ns(i: usize) -> String {
    format!("team-{}", i % 50)
}

/// Pod i belongs to app (i % SERVICES): each Service selects 5 pods.
fn the_pod(i: usize, generation: usize) -> serde_json::Value {
    let mut p = pod(
        &ns(i % SERVICES),
        &format!("app-{}-7d9f8b6c5-{i:05}", i % SERVICES),
        &uid(i),
        &format!("app-{}", i % SERVICES),
        &pod_ip(i),
        &node_of(i),
        "2026-11-26T00:00:00Z",
    );
    p["metadata"]["labels"]["generation"] = generation.to_string().into();
    p["metadata"]["annotations"] = serde_json::json!({"kubectl.kubernetes.io/restartedAt": format!("2026-11-26T00:{:02}:00Z", generation % 60)});
    p
}

/// (VmRSS, VmHWM, RssAnon) in KiB: RssAnon is the heap and stacks, the rest is the
/// binary's pages (large in a debug build).
fn rss_kib(pid: u32) -> (u64, u64) {
    let (rss, hwm, _) = rss3(pid);
    (rss, hwm)
}

fn rss3(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"), field("RssAnon:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() -> anyhow::Result<()> {
    let mut churn_s = 60u64;
    let mut rate = 100u64;
    let mut lookups_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--churn-seconds" => churn_s = args.next().unwrap_or_default().parse()?,
            "--rate" => rate = args.next().unwrap_or_default().parse()?,
            "--lookups-only" => lookups_only = true,
            other => anyhow::bail!(
                "unknown option {other} (give --churn-seconds N, --rate N, --lookups-only)"
            ),
        }
    }
    let fake = FakeKube::start();
    let t = Instant::now();
    for i in 0..PODS {
        fake.apply(Kind::Pod, the_pod(i, 0));
    }
    for s in 0..SERVICES {
        fake.apply(
            Kind::Service,
            service(
                &ns(s),
                &format!("app-{s}"),
                &format!("app-{s}"),
                &format!("10.96.{}.{}", s / 256, s % 256),
                8080,
            ),
        );
        // 10 endpoints: the Service's 5 pods, on two ports' worth of addresses.
        let members: Vec<(String, String, String)> = (0..PER_SLICE)
            .map(|k| {
                let i = (s + k * SERVICES) % PODS;
                let i = if k < 5 { i } else { (i + PODS / 2) % PODS };
                (
                    pod_ip(i),
                    format!("app-{}-7d9f8b6c5-{i:05}", i % SERVICES),
                    node_of(i),
                )
            })
            .collect();
        let refs: Vec<(&str, &str, &str)> = members
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
            .collect();
        fake.apply(
            Kind::EndpointSlice,
            endpoint_slice_of_pods(
                &ns(s),
                &format!("app-{s}"),
                &format!("app-{s}-x"),
                &refs,
                8080,
            ),
        );
    }
    println!(
        "fake API server: {} pods on {NODES} nodes, {} Services, {} EndpointSlices ({} endpoints), built in {:.1} s",
        fake.count(Kind::Pod),
        fake.count(Kind::Service),
        fake.count(Kind::EndpointSlice),
        SERVICES * PER_SLICE,
        t.elapsed().as_secs_f64()
    );

    let dir = std::env::temp_dir().join(format!("auditor-bench-identity-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("kubeconfig"), fake.kubeconfig())?;
    // Documented services named by Kubernetes selectors, as a real inventory does.
    std::fs::write(
        dir.join("inventory.yaml"),
        "version: 1\nservices:\n  Tenant Service: {kubernetes: {namespace: team-1, labels: {app.kubernetes.io/name: app-1}}}\n  \
         Config Service: {kubernetes: {namespace: team-2, service: app-2}}\n  \
         Genesys Engagement Service: {kubernetes: {namespace: team-3, labels: {app.kubernetes.io/name: app-3}}}\n  \
         Redis: {kubernetes: {namespace: team-4, labels: {app.kubernetes.io/name: app-4}}}\n",
    )?;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let daemon_args: Vec<String> = [
        "--allowlist",
        &format!("{root}/allowlist/voice-microservices.yaml"),
        "--inventory",
        &dir.join("inventory.yaml").display().to_string(),
        "--kubernetes",
        "--scope",
        "198.18.0.0/24",
        "--node",
        NODE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    if !lookups_only {
        daemon_figures(&fake, &dir, &daemon_args, churn_s, rate)?;
    }
    lookup_figures(&fake, &dir)
}

/// The daemon's RSS and the bytes it receives, to sync and under churn.
fn daemon_figures(
    fake: &FakeKube,
    dir: &std::path::Path,
    daemon_args: &[String],
    churn_s: u64,
    rate: u64,
) -> anyhow::Result<()> {
    // This binary sits next to `auditor` (target/<profile>/), not in deps/.
    let auditor: std::path::PathBuf = std::env::var_os("AUDITOR_BIN").map_or_else(
        || {
            std::env::current_exe()
                .expect("exe")
                .with_file_name("auditor")
        },
        Into::into,
    );
    // 0. The same daemon without --kubernetes: what identity adds is the difference.
    let without: Vec<String> = daemon_args
        .iter()
        .filter(|a| *a != "--kubernetes")
        .cloned()
        .collect();
    let plain = Daemon::start_env(&auditor, &without, dir.join("plain.log"), &[])?;
    std::thread::sleep(Duration::from_secs(2));
    let (rss_plain, hwm_plain, anon_plain) = rss3(plain.pid().expect("running"));
    plain.stop()?;
    println!(
        "daemon without --kubernetes: RSS {:.1} MiB, of which anonymous (heap) {:.1} MiB; peak (VmHWM) {:.1} MiB, while loading the probes ({} build)",
        mib(rss_plain),
        mib(anon_plain),
        mib(hwm_plain),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    // 1. The daemon: sync, then churn.
    let before = fake.bytes_sent();
    let t = Instant::now();
    // The peak once the daemon audits (probes loaded): the caches' sync comes after,
    // so this is what identity costs. Sampled every 10 ms from /proc.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let (done, log) = (done.clone(), dir.join("daemon.log"));
        move || sample_peak_once_auditing(&log, &done)
    });
    let kubeconfig = dir.join("kubeconfig").display().to_string();
    let daemon = Daemon::start_env(
        &auditor,
        daemon_args,
        dir.join("daemon.log"),
        &[("KUBECONFIG", &kubeconfig)],
    )?;
    let pid = daemon.pid().expect("running");
    let synced_in = t.elapsed();
    let sync_bytes = fake.bytes_sent() - before;
    let (rss_synced, _) = rss_kib(pid);
    println!(
        "daemon on {NODE}: ready (caches synced) in {:.1} s; {:.1} MiB received from the API server; RSS {:.1} MiB",
        synced_in.as_secs_f64(),
        sync_bytes as f64 / 1048576.0,
        mib(rss_synced)
    );
    let churn_start = fake.bytes_sent();
    let t = Instant::now();
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    let total = churn_s * rate;
    let mut peak = 0;
    for k in 0..total as usize {
        // Spread over every node, as a rollout would: 1 in 100 is this node's.
        let i = (k * 7919) % PODS;
        fake.apply(Kind::Pod, the_pod(i, k + 1));
        let due = every * (k as u32 + 1);
        if let Some(wait) = due.checked_sub(t.elapsed()) {
            std::thread::sleep(wait);
        }
        if k % rate as usize == 0 {
            peak = peak.max(rss_kib(pid).1);
        }
    }
    // Let the daemon take the last events in.
    std::thread::sleep(Duration::from_secs(2));
    let churn_bytes = fake.bytes_sent() - churn_start;
    let (rss_end, hwm, anon_end) = rss3(pid);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sampled_peak, samples) = sampler.join().unwrap_or((0, 0));
    anyhow::ensure!(
        samples > 0,
        "the daemon's RSS was never sampled once auditing"
    );
    let auditing_peak = sampled_peak.max(rss_end);
    println!(
        "churn: {total} pod changes in {:.1} s ({rate}/s); daemon received {:.1} MiB ({:.0} bytes per change)",
        t.elapsed().as_secs_f64(),
        churn_bytes as f64 / 1048576.0,
        churn_bytes as f64 / total.max(1) as f64
    );
    println!(
        "daemon RSS: {:.1} MiB at the end, {:.1} MiB peak once auditing (sync and churn; {samples} samples) (target <= 64 MiB); identity's share {:.1} MiB at the end over the daemon without --kubernetes",
        mib(rss_end),
        mib(auditing_peak),
        mib(rss_end.saturating_sub(rss_plain))
    );
    println!(
        "daemon RSS lifetime peak (VmHWM): {:.1} MiB, {:.1} MiB without --kubernetes (loading the probes: the kernel's BTF)",
        mib(hwm.max(peak)),
        mib(hwm_plain)
    );
    println!(
        "daemon anonymous memory (heap) at the end: {:.1} MiB; identity's share {:.1} MiB (the rest of the RSS is the binary's pages)",
        mib(anon_end),
        mib(anon_end.saturating_sub(anon_plain))
    );
    drop(daemon);
    Ok(())
}

/// The highest VmRSS of the `auditor` child of this process, sampled every 10 ms from
/// the moment its log says it audits (its probes are loaded) until `done`, and how many
/// samples that took.
fn sample_peak_once_auditing(
    log: &std::path::Path,
    done: &std::sync::atomic::AtomicBool,
) -> (u64, usize) {
    let me = std::process::id().to_string();
    let mut pid = None;
    let (mut peak, mut samples) = (0, 0);
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
        if pid.is_none() {
            let auditing =
                std::fs::read_to_string(log).is_ok_and(|l| l.contains("auditor::daemon: auditing"));
            if !auditing {
                continue;
            }
            // The child whose parent is this process (the one daemon running now).
            pid = std::fs::read_dir("/proc").ok().and_then(|d| {
                d.flatten().find_map(|e| {
                    let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                    let (comm, rest) = stat.split_once(") ")?;
                    let ppid = rest.split_whitespace().nth(1)?;
                    (ppid == me && comm.ends_with("(auditor"))
                        .then(|| e.file_name().to_str()?.parse::<u32>().ok())
                        .flatten()
                })
            });
        }
        if let Some(p) = pid {
            peak = peak.max(rss_kib(p).0);
            samples += 1;
        }
    }
    (peak, samples)
}

/// 2. Lookups, in this process over the same watchers and indexes as the daemon's.
fn lookup_figures(fake: &FakeKube, dir: &std::path::Path) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let state = Arc::new(KubeState::default());
    rt.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&fake.kubeconfig())?;
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await?;
        start_watchers(kube::Client::try_from(config)?, state.clone(), Some(NODE));
        anyhow::Ok(())
    })?;
    let t = Instant::now();
    while !state.synced() {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(120),
            "watchers did not sync"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let inv = Inventory::parse(
        &std::fs::read_to_string(dir.join("inventory.yaml"))?,
        "inventory.yaml",
    )?;
    let id = KubeIdentity::new(state, inv.kube_selectors());
    // A third ClusterIPs, a third endpoint pod IPs, a third unknown addresses.
    let addrs: Vec<IpAddr> = (0..3000usize)
        .map(|k| match k % 3 {
            0 => format!("10.96.{}.{}", (k % SERVICES) / 256, k % 256),
            1 => pod_ip((k * 31) % PODS),
            _ => format!("192.0.2.{}", k % 256),
        })
        .map(|s| s.parse().expect("address"))
        .collect();
    let found = addrs
        .iter()
        .filter(|a| id.remote(**a, 8080).is_some())
        .count();
    let rounds = 300;
    let t = Instant::now();
    let mut hits = 0usize;
    for _ in 0..rounds {
        for a in &addrs {
            hits += usize::from(std::hint::black_box(id.remote(*a, 8080)).is_some());
        }
    }
    let per = t.elapsed().as_nanos() as f64 / (rounds * addrs.len()) as f64;
    println!(
        "identity lookup: {per:.0} ns per remote address ({} lookups; {found} of {} addresses documented; {} build) (target <= 300 ns)",
        rounds * addrs.len(),
        addrs.len(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    std::hint::black_box(hits);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
