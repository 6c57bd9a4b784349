//! `cargo xtask bench capture`: what attaching the auditor costs a node. Connect (and UDP
//! send) storms on loopback run alternately without and with `auditor capture` (A B A B…,
//! since absolute rates drift by tens of percent minute to minute on these machines); we
//! report each run, the median ratio, and whether the capture lost any connection.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use serde_json::{Value, json};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Which {
    All,
    Capture,
    Verdict,
    Daemon,
    /// Kubernetes identity at 10,000 pods / 2,000 Services / 20,000 endpoints with churn.
    Identity,
}

const STORM_PORTS: &str = "40101,40102,40103,40104";
const STORM_LIMIT_SECS: &str = "60";

pub fn run(which: Which, ops: u64, rounds: usize, storms: &[String]) -> anyhow::Result<()> {
    match which {
        Which::Capture => capture(ops, rounds, storms),
        Which::Verdict => verdict(),
        Which::Daemon => daemon(ops, storms),
        Which::Identity => identity(),
        Which::All => {
            verdict()?;
            capture(ops, rounds, storms)?;
            daemon(ops, storms)
        }
    }
}

/// Kubernetes identity at cluster scale (tests/src/bin/bench_identity.rs, release build):
/// daemon RSS, bytes from the API server, lookup time. Needs root (the daemon's probes).
fn identity() -> anyhow::Result<()> {
    crate::require_root("the identity benchmark")?;
    crate::cargo(&[
        "build",
        "--release",
        "-p",
        "auditor",
        "-p",
        "auditor-tests",
        "--bin",
        "auditor",
        "--bin",
        "auditor-bench-identity",
    ])?;
    crate::run(&mut Command::new(
        crate::root().join("target/release/auditor-bench-identity"),
    ))
}

/// The criterion benchmark of the per-flow verdict path; prints its median.
fn verdict() -> anyhow::Result<()> {
    crate::cargo(&["bench", "-p", "auditor", "--bench", "verdict"])?;
    let path = crate::root()
        .join("target/criterion/verdict/judge_one_flow_60_rows_10k_inventory/new/estimates.json");
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    let median = v["median"]["point_estimate"]
        .as_f64()
        .context("no median in criterion's estimates")?;
    println!(
        "\nverdict path (60-row allowlist, 10,000-entry inventory): median {median:.1} ns per flow (target <= 300 ns)"
    );
    Ok(())
}

fn capture(ops: u64, rounds: usize, storms: &[String]) -> anyhow::Result<()> {
    crate::require_root("the capture benchmark")?;
    let mut report = Vec::new();
    for proto in storms.iter().map(String::as_str) {
        if !matches!(proto, "tcp" | "udp") {
            bail!("unknown storm {proto:?}: give tcp, udp or both");
        }
        let ops = storm_ops(proto, ops);
        println!(
            "\n== {proto} storm: {ops} ops on 127.0.0.1 ports {STORM_PORTS}, {rounds} without/with pairs =="
        );
        println!(
            "{:>5} {:>14} {:>14} {:>7} {:>8} {:>8} {:>8}",
            "round", "without ops/s", "with ops/s", "ratio", "records", "lost", "rb_full"
        );
        let mut ratios = Vec::new();
        let (mut lost_total, mut full_total, mut evictions_total, mut addr_total) =
            (0u64, 0u64, 0u64, 0u64);
        let (mut without_rates, mut with_rates) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let base = storm(proto, ops)?;
            let with = storm_with_capture(proto, ops)?;
            let ratio = with.rate / base.rate;
            ratios.push(ratio);
            without_rates.push(base.rate);
            with_rates.push(with.rate);
            lost_total += with.lost;
            full_total += with.ringbuf_full;
            evictions_total += with.evictions;
            addr_total += base.eaddrnotavail + with.eaddrnotavail;
            println!(
                "{round:>5} {:>14.0} {:>14.0} {:>7.3} {:>8} {:>8} {:>8}",
                base.rate, with.rate, ratio, with.records, with.lost, with.ringbuf_full
            );
        }
        let median_ratio = median(&mut ratios);
        println!(
            "{proto}: median without {:.0}/s, median with {:.0}/s, median ratio {median_ratio:.3}; \
             lost connections {lost_total}, ring-buffer full {full_total}, LRU evictions {evictions_total}, EADDRNOTAVAIL {addr_total}",
            median(&mut without_rates),
            median(&mut with_rates)
        );
        report.push(json!({
            "storm": proto, "ops": ops, "rounds": rounds,
            "median_without_per_s": median(&mut without_rates),
            "median_with_per_s": median(&mut with_rates),
            "median_ratio": median_ratio,
            "lost_connections": lost_total, "ringbuf_full": full_total,
            "lru_evictions": evictions_total, "eaddrnotavail": addr_total,
        }));
    }
    let dir = crate::root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("capture.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("\nwritten: {}", path.display());
    Ok(())
}

/// A UDP send costs a tenth of a TCP connect: the UDP storm sends ten times as many so
/// both run for seconds, and the figure is the steady state, not start-up.
fn storm_ops(proto: &str, ops: u64) -> u64 {
    if proto == "udp" { ops * 10 } else { ops }
}

struct Storm {
    rate: f64,
    ops: u64,
    tgid: u64,
    eaddrnotavail: u64,
}

struct WithCapture {
    rate: f64,
    records: u64,
    lost: u64,
    ringbuf_full: u64,
    evictions: u64,
    eaddrnotavail: u64,
}

fn peer() -> std::path::PathBuf {
    crate::root().join("target/release/auditor-peer")
}

fn storm(proto: &str, ops: u64) -> anyhow::Result<Storm> {
    let out = Command::new(peer())
        .args([
            "storm",
            proto,
            "127.0.0.1",
            STORM_PORTS,
            &ops.to_string(),
            STORM_LIMIT_SECS,
        ])
        .output()
        .context("running auditor-peer storm")?;
    if !out.status.success() {
        bail!("storm failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("storm output")?;
    let n = |k: &str| v[k].as_f64().unwrap_or(0.0);
    Ok(Storm {
        rate: n("rate"),
        ops: (n("ops") + n("extra")) as u64,
        tgid: n("tgid") as u64,
        eaddrnotavail: n("eaddrnotavail") as u64,
    })
}

fn storm_with_capture(proto: &str, ops: u64) -> anyhow::Result<WithCapture> {
    let out_path = crate::root().join("target/bench/capture-records.jsonl");
    std::fs::create_dir_all(out_path.parent().unwrap())?;
    let mut cap = Command::new(crate::root().join("target/release/auditor"))
        .arg("capture")
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(Stdio::piped())
        .spawn()
        .context("starting auditor capture")?;
    let mut err = BufReader::new(cap.stderr.take().expect("stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        if err.read_line(&mut line)? == 0 {
            bail!("auditor capture exited before it was ready");
        }
        if line.contains("capturing") {
            break;
        }
    }
    let result = storm(proto, ops);
    nix_kill_term(cap.id());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest)?;
    let status = cap.wait()?;
    let s = result?;
    if !status.success() {
        bail!("auditor capture failed: {status}\n{rest}");
    }
    let summary = rest
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v.get("summary").cloned())
        .context("no summary from auditor capture")?;
    let records = std::fs::read_to_string(&out_path)?;
    let mut seen = 0u64;
    let mut n_records = 0u64;
    for l in records.lines() {
        let r: Value = serde_json::from_str(l)?;
        if r["tgid"].as_u64() == Some(s.tgid) && r["direction"] == "egress" {
            seen += r["count"].as_u64().unwrap_or(0);
            n_records += 1;
        }
    }
    Ok(WithCapture {
        rate: s.rate,
        records: n_records,
        lost: s.ops.saturating_sub(seen),
        ringbuf_full: summary["kernel"]["ringbuf_full"].as_u64().unwrap_or(0),
        evictions: summary["lru_evictions"].as_u64().unwrap_or(0),
        eaddrnotavail: s.eaddrnotavail,
    })
}

fn nix_kill_term(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(10));
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Resident memory (KiB) and CPU time (clock ticks) of a process, from /proc.
fn rss_kib_and_cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may contain spaces): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((rss, ticks))
}

/// `auditor run` (bundled allowlist, a loopback inventory, a store) under the storms:
/// its resident memory and CPU while judging every connection.
fn daemon(ops: u64, storms: &[String]) -> anyhow::Result<()> {
    crate::require_root("the daemon benchmark")?;
    let dir = crate::root().join("target/bench/daemon");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("inventory.yaml"),
        "version: 1\nservices:\n  Tenant Service: {addresses: [127.0.0.0/8]}\n",
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut d = Command::new(crate::root().join("target/release/auditor"))
        .args(["run", "--allowlist"])
        .arg(crate::root().join("allowlist/voice-microservices.yaml"))
        .arg("--inventory")
        .arg(dir.join("inventory.yaml"))
        .arg("--store")
        .arg(dir.join("store.db"))
        .arg("--events")
        .arg(dir.join("events.jsonl"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("daemon.log"))?)
        .spawn()
        .context("starting auditor run")?;
    let pid = d.id();
    let ready = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let start = std::time::Instant::now();
    while !ready() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = d.kill();
            bail!(
                "auditor run did not start: see {}",
                dir.join("daemon.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let tick = 100.0; // USER_HZ on Linux
    let (rss_idle, _) = rss_kib_and_cpu_ticks(pid).context("reading the daemon's /proc")?;
    println!("\n== auditor run under the storms (pid {pid}) ==");
    println!("idle RSS {:.1} MiB", rss_idle as f64 / 1024.0);
    let mut report = vec![];
    for proto in storms {
        let (_, cpu0) = rss_kib_and_cpu_ticks(pid).context("daemon gone")?;
        let sampler_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = sampler_stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak = 0u64;
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some((rss, _)) = rss_kib_and_cpu_ticks(pid) {
                    peak = peak.max(rss);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        let s = storm(proto, storm_ops(proto, ops))?;
        // Let the daemon finish the last sweep and store commit.
        std::thread::sleep(Duration::from_secs(3));
        sampler_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak = sampler.join().unwrap_or(0);
        let (rss_after, cpu1) = rss_kib_and_cpu_ticks(pid).context("daemon gone")?;
        let cpu_s = (cpu1 - cpu0) as f64 / tick;
        let busy = s.ops as f64 / s.rate + 3.0;
        println!(
            "{proto}: {} ops at {:.0}/s; daemon CPU {cpu_s:.2} s over {busy:.1} s ({:.1}% of one core); RSS peak {:.1} MiB, after {:.1} MiB",
            s.ops,
            s.rate,
            100.0 * cpu_s / busy,
            peak as f64 / 1024.0,
            rss_after as f64 / 1024.0
        );
        report.push(json!({"storm": proto, "ops": s.ops, "rate": s.rate, "daemon_cpu_seconds": cpu_s,
            "daemon_cpu_percent": 100.0 * cpu_s / busy, "rss_peak_mib": peak as f64 / 1024.0, "rss_after_mib": rss_after as f64 / 1024.0}));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = d.wait()?;
    if !status.success() {
        bail!(
            "auditor run exited with {status}: see {}",
            dir.join("daemon.log").display()
        );
    }
    std::fs::write(
        crate::root().join("target/bench/daemon.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    Ok(())
}
