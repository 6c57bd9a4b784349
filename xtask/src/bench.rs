//! `cargo xtask bench capture`: what attaching the auditor costs a node. Connect (and UDP
//! send) storms on loopback run under each `Arm` in turn: no tracer, `auditor capture`
//! (and an older binary's, given one), its programs stopped before the flow maps, the
//! hooks' floor (programs that return at once), tp_btf for TCP and its floor, and a
//! bpftrace one-liner on the same hooks (A B C … A B C …, since absolute rates drift by
//! tens of percent minute to minute on these machines). For each arm: the kernel's own eBPF run
//! time per operation (bpf_stats, robust against the machine's other load), the CPU per
//! operation of the storm and tracer processes, the throughput ratio with its spread, and,
//! for the auditor, whether it lost any connection.

use std::{
    io::{BufRead, BufReader},
    path::Path,
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
    /// CPU of the periodic walk of open sockets, with 10,000 loopback TCP sockets open.
    Walk,
    /// The daemon's user-space cost per DNS answer and per named flow (criterion).
    Dns,
    /// Sweep cost: `auditor run`'s CPU under 300 connects/s, fresh and after a scan of
    /// 60,000 ports (target ratio <= 1.5); `--baseline-auditor` measures an older binary
    /// first. Not in `all`: some 2 minutes per binary.
    Sweep,
    /// Soak: `auditor run` for `--minutes` under steady connects and new edges past its
    /// edge cap; per minute RSS, CPU, open fds, store size. Not in `all`: it is long.
    Soak,
}

/// The load of the soak (`--minutes`, `--rate`, `--new-edges-per-second`).
#[derive(Clone, Copy, Debug)]
pub struct SoakLoad {
    pub minutes: u64,
    /// Steady connects per second to one loopback listener (one edge, over and over).
    pub rate: f64,
    /// Connects per second to a port never used before (a new edge each).
    pub new_edges_per_second: f64,
}

const STORM_PORTS: &str = "40101,40102,40103,40104";
const STORM_LIMIT_SECS: &str = "60";

pub fn run(
    which: Which,
    ops: u64,
    rounds: usize,
    storms: &[String],
    auditor: Option<&Path>,
    baseline: Option<&Path>,
    soak_load: SoakLoad,
) -> anyhow::Result<()> {
    let default_bin = crate::root().join("target/release/auditor");
    let auditor = auditor.unwrap_or(&default_bin);
    if baseline.is_some() && !matches!(which, Which::Sweep | Which::Capture) {
        bail!("--baseline-auditor is for `cargo xtask bench capture` and `sweep` only");
    }
    match which {
        Which::Capture => capture(ops, rounds, storms, auditor, baseline),
        Which::Verdict => verdict(),
        Which::Daemon => daemon(ops, storms),
        Which::Identity => identity(),
        Which::Walk => walk(auditor, auditor == default_bin),
        Which::Dns => dns(),
        Which::Sweep => sweep(auditor, baseline),
        Which::Soak => soak(auditor, soak_load),
        // Not sweep or soak: minutes each, and they measure one daemon over time, not a
        // cost per operation.
        Which::All => {
            verdict()?;
            dns()?;
            capture(ops, rounds, storms, auditor, None)?;
            daemon(ops, storms)
        }
    }
}

/// Holds 5,000 loopback TCP connections (10,000 sockets, both ends in one process; python3
/// because only it, not this crate, may raise RLIMIT_NOFILE without a dependency).
const HOLDER: &str = "import resource, socket, sys, time\n\
n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_NOFILE, (2*n+100, 2*n+100))\n\
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(4096)\n\
held = []\n\
for _ in range(n): c = socket.create_connection(l.getsockname()); s, _ = l.accept(); held += [c, s]\n\
print('ready', len(held), flush=True)\n\
time.sleep(float(sys.argv[2]))\n";

/// The periodic enumeration of open sockets (`--active-interval`) with 10,000 sockets open:
/// `auditor capture --active-interval 1s` logs each walk's process CPU (`cpu_ms`, all
/// threads, so an upper bound) at debug level. The walk at start is done before the
/// programs attach and logged without its scan, so it is left out. Two arms with the same
/// sockets held: the BPF socket iterator (`--existing-sockets iterator`) and the /proc
/// walk it replaces (`--existing-sockets proc`, the fallback). A binary from before the
/// option (`--auditor`) runs once, as it is.
fn walk(auditor: &Path, build: bool) -> anyhow::Result<()> {
    crate::require_root("the walk benchmark")?;
    if build {
        crate::cargo(&["build", "--release", "-p", "auditor"])?;
    }
    let mut holder = Command::new("python3")
        .args(["-c", HOLDER, "5000", "90"])
        .stdout(Stdio::piped())
        .spawn()
        .context("python3 (the socket holder)")?;
    let mut line = String::new();
    BufReader::new(holder.stdout.as_mut().context("holder stdout")?).read_line(&mut line)?;
    let result = (|| {
        if !line.starts_with("ready") {
            bail!("the socket holder did not start: {line:?}");
        }
        for method in ["iterator", "proc"] {
            let log = capture_log(auditor, &["--existing-sockets", method])?;
            if log.contains("unexpected argument '--existing-sockets'") {
                // An auditor from before the iterator: its one way is the /proc walk.
                return print_walks(
                    "proc (binary without --existing-sockets)",
                    &capture_log(auditor, &[])?,
                );
            }
            print_walks(method, &log)?;
        }
        Ok(())
    })();
    let _ = holder.kill();
    let _ = holder.wait();
    result
}

/// `auditor capture` for 8 s with a walk every second; its stderr (the debug log).
fn capture_log(auditor: &Path, extra: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(auditor)
        .args(["capture", "--active-interval", "1s", "--duration", "8s"])
        .args(extra)
        .env("RUST_LOG", "auditor::capture::stream=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {}", auditor.display()))?;
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

fn print_walks(arm: &str, log: &str) -> anyhow::Result<()> {
    let field = |l: &str, name: &str| -> Option<f64> {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    let walks: Vec<(f64, f64, f64)> = log
        .lines()
        .filter(|l| l.contains("enumerated open sockets"))
        .skip(1)
        .filter_map(|l| {
            Some((
                field(l, "sockets")?,
                field(l, "cpu_ms")?,
                field(l, "elapsed_ms")?,
            ))
        })
        .collect();
    if walks.is_empty() {
        bail!("{arm}: no periodic walk logged; auditor capture said:\n{log}");
    }
    let mut cpu: Vec<f64> = walks.iter().map(|w| w.1).collect();
    cpu.sort_by(f64::total_cmp);
    let mut wall: Vec<f64> = walks.iter().map(|w| w.2).collect();
    wall.sort_by(f64::total_cmp);
    println!(
        "walk of open sockets, {arm}: {} walks of {:.0} sockets; CPU median {:.1} ms [{:.1}..{:.1}], wall median {:.1} ms (target: CPU < 50 ms at 10,000)",
        walks.len(),
        walks[0].0,
        cpu[cpu.len() / 2],
        cpu[0],
        cpu[cpu.len() - 1],
        wall[wall.len() / 2],
    );
    Ok(())
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

/// The criterion benchmark of the DNS path in user space; prints its medians. The kernel
/// side's cost per packet is the capture benchmark's "DNS answer hook" line.
fn dns() -> anyhow::Result<()> {
    crate::cargo(&["bench", "-p", "auditor", "--bench", "dns"])?;
    println!();
    for (id, what) in [
        (
            "read_one_answer_packet",
            "read one answer packet (CNAME chain, 2 addresses)",
        ),
        (
            "learn_one_answer_(table_at_100,000_names)",
            "learn one answer into a table of 100,000 names",
        ),
        (
            "names_of_one_flow's_destination",
            "look up one flow's destination names",
        ),
    ] {
        let path = crate::root().join(format!("target/criterion/dns/{id}/new/estimates.json"));
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
        )?;
        let median = v["median"]["point_estimate"]
            .as_f64()
            .context("no median in criterion's estimates")?;
        println!("dns, user space: {what}: median {median:.0} ns");
    }
    Ok(())
}

/// The criterion benchmark of the per-flow verdict path; prints its median.
fn verdict() -> anyhow::Result<()> {
    crate::cargo(&["bench", "-p", "auditor", "--bench", "verdict"])?;
    let median = |bench: &str| -> anyhow::Result<f64> {
        let path = crate::root().join(format!(
            "target/criterion/verdict/{bench}/new/estimates.json"
        ));
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
        )?;
        v["median"]["point_estimate"]
            .as_f64()
            .context("no median in criterion's estimates")
    };
    println!(
        "\nverdict path (60-row allowlist, 10,000-entry inventory): median {:.1} ns per flow (target <= 300 ns)",
        median("judge_one_flow_60_rows_10k_inventory")?
    );
    println!(
        "one flow record in user space (ring bytes decoded, judged, its edge serialised as JSON): median {:.1} ns",
        median("flow_record_decoded_judged_and_serialised")?
    );
    Ok(())
}

/// The arms a round can run, in this order (so drift hits each alike). Which run is
/// `Arm::for_storm`: the tp_btf arms only under the TCP storm, the baseline only when
/// `--baseline-auditor` names one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Arm {
    /// Nothing attached: the reference rate.
    Bare,
    /// `auditor capture` of the older binary given with `--baseline-auditor`: before and
    /// after in one run.
    Baseline,
    /// `auditor capture`.
    Auditor,
    /// `auditor capture` whose programs build the flow key (helpers included) and return
    /// before the flow maps (`AUDITOR_KERNEL_CALIBRATE=no-flow-map`): splits our work into
    /// the key's part and the maps' part.
    NoFlowMap,
    /// `auditor capture` with every program returning at its first instruction
    /// (`AUDITOR_KERNEL_CALIBRATE=empty-programs`): what the same hooks cost with no work,
    /// bpf_stats' own accounting included. Auditor minus floor is the work our code does.
    Floor,
    /// `auditor capture --tcp-hook tp-btf`: TCP opens from tp_btf, the fallback of the
    /// default sock_ops, so the two hooks are compared in one run.
    TpBtf,
    /// The same with empty programs: tp_btf's floor, against the default hook's.
    TpBtfFloor,
    /// A bpftrace one-liner on the same hooks, the tool a user would reach for instead.
    Bpftrace,
}

impl Arm {
    const ALL: [Arm; 8] = [
        Arm::Bare,
        Arm::Baseline,
        Arm::Auditor,
        Arm::NoFlowMap,
        Arm::Floor,
        Arm::TpBtf,
        Arm::TpBtfFloor,
        Arm::Bpftrace,
    ];

    fn for_storm(proto: &str, baseline: bool) -> Vec<Arm> {
        Arm::ALL
            .into_iter()
            .filter(|a| match a {
                Arm::Baseline => baseline,
                Arm::TpBtf | Arm::TpBtfFloor => proto == "tcp",
                _ => true,
            })
            .collect()
    }

    fn name(self) -> &'static str {
        match self {
            Arm::Bare => "no tracer",
            Arm::Baseline => "baseline auditor",
            Arm::Auditor => "auditor capture",
            Arm::NoFlowMap => "no flow map",
            Arm::Floor => "hooks' floor",
            Arm::TpBtf => "auditor tp_btf",
            Arm::TpBtfFloor => "tp_btf floor",
            Arm::Bpftrace => "bpftrace",
        }
    }

    /// `AUDITOR_KERNEL_CALIBRATE` for the arm, if it runs the auditor calibrated.
    fn calibrate(self) -> Option<&'static str> {
        match self {
            Arm::Floor | Arm::TpBtfFloor => Some("empty-programs"),
            Arm::NoFlowMap => Some("no-flow-map"),
            _ => None,
        }
    }

    /// Runs `auditor capture` and captures with it: its loss is checked.
    fn captures(self) -> bool {
        matches!(self, Arm::Baseline | Arm::Auditor | Arm::TpBtf)
    }
}

/// The bpftrace one-liners. TCP: the same tracepoint the auditor reads, the same filter
/// (active and passive opens), a per-flow count. UDP: bpftrace cannot attach cgroup
/// sock_addr programs, so it counts `sendto` per process and socket, its usual way.
fn bpftrace_program(proto: &str) -> &'static str {
    if proto == "tcp" {
        "tracepoint:sock:inet_sock_set_state /args->protocol == 6 && (args->newstate == 2 || (args->oldstate == 3 && args->newstate == 1))/ { @[pid, comm, args->family, args->dport, args->sport] = count(); }"
    } else {
        "tracepoint:syscalls:sys_enter_sendto { @[pid, comm, args->fd] = count(); }"
    }
}

/// One storm under one arm.
#[derive(Default)]
struct ArmRun {
    rate: f64,
    /// Connections (or datagrams) made, wake-ups included.
    ops: u64,
    /// CPU of the storm process (client and server ends: eBPF runs in their context).
    storm_cpu_ns: u64,
    /// CPU of the tracer process while the storm ran.
    tracer_cpu_ns: u64,
    /// Per program of the tracer: (name, runs, run time ns) during the storm.
    progs: Vec<(String, u64, u64)>,
    eaddrnotavail: u64,
    records: u64,
    lost: u64,
    ringbuf_full: u64,
    /// What the capture said the kernel lost: `connections_lost`, or `lru_evictions` from
    /// a binary older than the flow maps' epochs (given with --auditor).
    kernel_lost: u64,
    /// The floor arm's binary ignored the empty-programs switch (it predates it).
    not_a_floor: bool,
}

impl ArmRun {
    fn ebpf_ns_per_op(&self) -> f64 {
        self.progs.iter().map(|p| p.2).sum::<u64>() as f64 / self.ops.max(1) as f64
    }
    fn cpu_ns_per_op(&self) -> f64 {
        (self.storm_cpu_ns + self.tracer_cpu_ns) as f64 / self.ops.max(1) as f64
    }
}

fn capture(
    ops: u64,
    rounds: usize,
    storms: &[String],
    auditor: &Path,
    baseline: Option<&Path>,
) -> anyhow::Result<()> {
    crate::require_root("the capture benchmark")?;
    which("bpftool", "bpftool")?;
    which("bpftrace", "bpftrace")?;
    // The kernel's own accounting of eBPF run time (run_time_ns / run_cnt per program).
    let stats_before = std::fs::read_to_string(BPF_STATS).unwrap_or_else(|_| "0".into());
    std::fs::write(BPF_STATS, "1").with_context(|| format!("enabling {BPF_STATS}"))?;
    let result = capture_rounds(ops, rounds, storms, auditor, baseline);
    let _ = std::fs::write(BPF_STATS, stats_before.trim());
    result
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

fn which(tool: &str, package: &str) -> anyhow::Result<()> {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        bail!(
            "{tool} is missing: the capture benchmark needs it; run `cargo xtask setup` (Debian package {package})"
        );
    }
    Ok(())
}

fn capture_rounds(
    ops: u64,
    rounds: usize,
    storms: &[String],
    auditor: &Path,
    baseline: Option<&Path>,
) -> anyhow::Result<()> {
    let mut report = Vec::new();
    println!(
        "auditor binary: {}\nNote: absolute rates and ratios drift with the machine's other load; \
         eBPF ns/run (bpf_stats) is the robust figure. Every arm's figure includes bpf_stats' \
         own accounting (a clock read before and after each program run), equally.",
        auditor.display()
    );
    if let Some(b) = baseline {
        println!("baseline binary: {}", b.display());
    }
    for proto in storms.iter().map(String::as_str) {
        if !matches!(proto, "tcp" | "udp") {
            bail!("unknown storm {proto:?}: give tcp, udp or both");
        }
        let ops = storm_ops(proto, ops);
        let arms = Arm::for_storm(proto, baseline.is_some());
        let at = |arm: Arm| arms.iter().position(|a| *a == arm);
        println!(
            "\n== {proto} storm: {ops} ops on 127.0.0.1 ports {STORM_PORTS}, {rounds} rounds of ({}) ==",
            arms.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
        );
        println!(
            "{:>5} {:>16} {:>7} {:>7} {:>10} {:>9} {:>8} {:>8}",
            "round", "arm", "ops/s", "ratio", "eBPF ns/op", "CPU us/op", "lost", "rb_full"
        );
        let mut runs: Vec<Vec<ArmRun>> = arms.iter().map(|_| Vec::new()).collect();
        // Per arm, per program: runs and run time summed over the rounds.
        let mut arm_progs: Vec<std::collections::BTreeMap<String, (u64, u64)>> =
            arms.iter().map(|_| Default::default()).collect();
        for round in 1..=rounds {
            let mut bare_rate = 0.0;
            for (i, arm) in arms.iter().copied().enumerate() {
                let binary = if arm == Arm::Baseline {
                    baseline.expect("the baseline arm runs only with a baseline")
                } else {
                    auditor
                };
                let r = storm_under(arm, proto, ops, binary)?;
                if arm == Arm::Bare {
                    bare_rate = r.rate;
                }
                let captured = |v: u64| {
                    if arm.captures() {
                        v.to_string()
                    } else {
                        "-".into()
                    }
                };
                println!(
                    "{round:>5} {:>16} {:>7.0} {:>7.3} {:>10.0} {:>9.2} {:>8} {:>8}",
                    arm.name(),
                    r.rate,
                    r.rate / bare_rate,
                    r.ebpf_ns_per_op(),
                    r.cpu_ns_per_op() / 1000.0,
                    captured(r.lost),
                    captured(r.ringbuf_full),
                );
                runs[i].push(r);
            }
        }
        println!("{proto} summary (median over rounds; [min..max]):");
        let mut arms_json = Vec::new();
        let mut ebpf_medians = vec![0.0f64; arms.len()];
        let mut cpu_medians = vec![(0.0f64, 0.0f64, 0.0f64); arms.len()];
        for (i, arm) in arms.iter().copied().enumerate() {
            let rs = &runs[i];
            let mut ratios: Vec<f64> = rs
                .iter()
                .zip(&runs[0])
                .map(|(r, b)| r.rate / b.rate)
                .collect();
            let (rmin, rmax) = spread(&ratios);
            let ratio = median(&mut ratios);
            let mut ebpf: Vec<f64> = rs.iter().map(ArmRun::ebpf_ns_per_op).collect();
            let (emin, emax) = spread(&ebpf);
            let ebpf_med = median(&mut ebpf);
            ebpf_medians[i] = ebpf_med;
            let mut cpu: Vec<f64> = rs.iter().map(|r| r.cpu_ns_per_op() / 1000.0).collect();
            let (cmin, cmax) = spread(&cpu);
            let cpu_med = median(&mut cpu);
            cpu_medians[i] = (cpu_med, cmin, cmax);
            let mut tracer_cpu: Vec<f64> = rs
                .iter()
                .map(|r| r.tracer_cpu_ns as f64 / r.ops.max(1) as f64 / 1000.0)
                .collect();
            let tracer_med = median(&mut tracer_cpu);
            let mut rates: Vec<f64> = rs.iter().map(|r| r.rate).collect();
            println!(
                "  {:<16} {:>7.0} ops/s  ratio {ratio:.3} [{rmin:.3}..{rmax:.3}]  eBPF {ebpf_med:.0} ns/op [{emin:.0}..{emax:.0}]  CPU {cpu_med:.2} us/op [{cmin:.2}..{cmax:.2}] (tracer {tracer_med:.2})",
                arm.name(),
                median(&mut rates)
            );
            // Per program: runs per op and ns per run, summed over the rounds.
            let mut progs: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
            let total_ops: u64 = rs.iter().map(|r| r.ops).sum();
            for r in rs {
                for (name, cnt, ns) in &r.progs {
                    let e = progs.entry(name.clone()).or_default();
                    e.0 += cnt;
                    e.1 += ns;
                }
            }
            arm_progs[i] = progs.clone();
            let mut progs_json = Vec::new();
            for (name, (cnt, ns)) in &progs {
                if *cnt == 0 {
                    continue;
                }
                println!(
                    "      {name:<18} {:>6.2} runs/op {:>7.1} ns/run {:>7.1} ns/op",
                    *cnt as f64 / total_ops.max(1) as f64,
                    *ns as f64 / *cnt as f64,
                    *ns as f64 / total_ops.max(1) as f64
                );
                progs_json.push(
                    json!({"program": name, "runs_per_op": *cnt as f64 / total_ops.max(1) as f64,
                    "ns_per_run": *ns as f64 / *cnt as f64}),
                );
            }
            let sum = |f: fn(&ArmRun) -> u64| rs.iter().map(f).sum::<u64>();
            arms_json.push(json!({
                "arm": arm.name(), "median_rate_per_s": median(&mut rates),
                "median_ratio": ratio, "ratio_min": rmin, "ratio_max": rmax,
                "median_ebpf_ns_per_op": ebpf_med, "median_cpu_us_per_op": cpu_med,
                "cpu_us_per_op_min": cmin, "cpu_us_per_op_max": cmax,
                "median_tracer_cpu_us_per_op": tracer_med, "programs": progs_json,
                "lost_connections": sum(|r| r.lost), "ringbuf_full": sum(|r| r.ringbuf_full),
                "kernel_lost": sum(|r| r.kernel_lost), "eaddrnotavail": sum(|r| r.eaddrnotavail),
            }));
        }
        // A floor arm whose binary ignored the switch (it predates it) has no figure.
        for arm in [Arm::Floor, Arm::TpBtfFloor, Arm::NoFlowMap] {
            if let Some(i) = at(arm)
                && runs[i].iter().any(|r| r.not_a_floor)
            {
                ebpf_medians[i] = f64::NAN;
            }
        }
        let ebpf = |arm: Arm| at(arm).map_or(f64::NAN, |i| ebpf_medians[i]);
        // Ratios survive a change of machine where nanoseconds do not: every arm against
        // the hooks' floor and against bpftrace, from the medians of this run.
        let (floor, bpftrace) = (ebpf(Arm::Floor), ebpf(Arm::Bpftrace));
        for (i, arm) in arms.iter().copied().enumerate().skip(1) {
            let of = |base: f64| ebpf_medians[i] / base.max(f64::MIN_POSITIVE);
            println!(
                "  {:<16} eBPF {:.2}x the hooks' floor, {:.2}x bpftrace",
                arm.name(),
                of(floor),
                of(bpftrace)
            );
            arms_json[i]["ebpf_to_floor"] = json!(of(floor));
            arms_json[i]["ebpf_to_bpftrace"] = json!(of(bpftrace));
        }
        let work = ebpf(Arm::Auditor) - floor;
        let floor_text = if floor.is_nan() {
            "hooks' floor n/a".to_string()
        } else {
            format!("hooks' floor {floor:.0}, our work {work:.0}")
        };
        let a = &runs[at(Arm::Auditor).expect("every storm runs the auditor")];
        let sum = |f: fn(&ArmRun) -> u64| a.iter().map(f).sum::<u64>();
        let addr: u64 = runs.iter().flatten().map(|r| r.eaddrnotavail).sum();
        let lost_everywhere: u64 = arms
            .iter()
            .zip(&runs)
            .filter(|(arm, _)| arm.captures())
            .flat_map(|(_, rs)| rs)
            .map(|r| r.lost + r.ringbuf_full + r.kernel_lost)
            .sum();
        println!(
            "{proto}: auditor eBPF {:.0} ns/op ({floor_text}) vs bpftrace {bpftrace:.0} ns/op ({:.2}x bpftrace's); lost connections {}, ring-buffer full {}, kernel-counted loss {}, EADDRNOTAVAIL {addr}; lost + ring-buffer full + kernel loss in every capturing arm: {lost_everywhere}",
            ebpf(Arm::Auditor),
            ebpf(Arm::Auditor) / bpftrace.max(f64::MIN_POSITIVE),
            sum(|r| r.lost),
            sum(|r| r.ringbuf_full),
            sum(|r| r.kernel_lost),
        );
        // Our work split: the event, helpers and key (no-flow-map arm minus floor) and
        // the epoch's flow map (auditor minus no-flow-map).
        let key_part = ebpf(Arm::NoFlowMap) - floor;
        let map_part = ebpf(Arm::Auditor) - ebpf(Arm::NoFlowMap);
        if key_part.is_finite() && map_part.is_finite() {
            println!(
                "{proto}: our work {work:.0} ns/op = event, helpers and key {key_part:.0} + flow map {map_part:.0}"
            );
        }
        if let Some(b) = at(Arm::Baseline) {
            // Totals only: the baseline may hook TCP elsewhere, against another floor.
            println!(
                "{proto}: before -> after (baseline -> auditor, this run): eBPF {:.0} -> {:.0} ns/op ({:.2}x)",
                ebpf_medians[b],
                ebpf(Arm::Auditor),
                ebpf(Arm::Auditor) / ebpf_medians[b].max(f64::MIN_POSITIVE),
            );
        }
        if proto == "tcp" {
            let alt_floor = ebpf(Arm::TpBtfFloor);
            println!(
                "tcp: the default TCP hook against tp_btf: floor {floor:.0} vs {alt_floor:.0} ns/op ({:.2}x), auditor {:.0} vs {:.0} ns/op ({:.2}x), our work {work:.0} vs {:.0}",
                floor / alt_floor.max(f64::MIN_POSITIVE),
                ebpf(Arm::Auditor),
                ebpf(Arm::TpBtf),
                ebpf(Arm::Auditor) / ebpf(Arm::TpBtf).max(f64::MIN_POSITIVE),
                ebpf(Arm::TpBtf) - alt_floor,
            );
        }
        // What a user feels, and noisy: CPU of the storm's processes (both ends, kernel
        // time included) plus the tracer's, per operation.
        if let (Some(bare), Some(aud)) = (at(Arm::Bare), at(Arm::Auditor)) {
            let (b, bmin, bmax) = cpu_medians[bare];
            let (x, xmin, xmax) = cpu_medians[aud];
            println!(
                "{proto}: whole-process CPU per op (noisy): no tracer {b:.2} us [{bmin:.2}..{bmax:.2}], auditor {x:.2} us [{xmin:.2}..{xmax:.2}]: {:+.2} us ({:+.1}%)",
                x - b,
                (x / b.max(f64::MIN_POSITIVE) - 1.0) * 100.0
            );
        }
        let dns = match (at(Arm::Auditor), at(Arm::Floor)) {
            (Some(a), Some(f)) => dns_hook_cost(&arm_progs[a], &arm_progs[f]),
            _ => None,
        };
        if let Some(d) = &dns {
            println!(
                "{proto}: DNS answer hook on packets that are not DNS: {:.2} runs/op, {:.1} ns/run vs its floor {:.1} ns/run: {:.1} ns above the floor per packet",
                d.runs as f64 / (rounds as u64 * ops).max(1) as f64,
                d.ns_per_run,
                d.floor_ns_per_run,
                d.ns_per_run - d.floor_ns_per_run
            );
        }
        report.push(
            json!({"storm": proto, "ops": ops, "rounds": rounds, "arms": arms_json,
            "eaddrnotavail": addr, "auditor_work_ns_per_op": work,
            "work_key_ns_per_op": key_part, "work_flow_map_ns_per_op": map_part,
            "dns_hook_ns_per_packet_above_floor": dns.as_ref().map(|d| d.ns_per_run - d.floor_ns_per_run)}),
        );
    }
    let dir = crate::root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("capture.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("\nwritten: {}", path.display());
    Ok(())
}

/// `auditor_common::names::PROG_DNS_INGRESS`, spelled out: xtask depends on no crate of
/// the workspace, so it builds before set-up installs anything.
const DNS_PROGRAM: &str = "auditor_dns_ingress";

/// The DNS answer program's cost per packet in the auditor arm and in the floor arm.
struct DnsHookCost {
    runs: u64,
    ns_per_run: f64,
    floor_ns_per_run: f64,
}

/// From the per-program sums of the auditor and floor arms. The storms are not DNS, so
/// every run of the program is the test for port 53 that every packet of the node takes.
fn dns_hook_cost(
    auditor: &std::collections::BTreeMap<String, (u64, u64)>,
    floor: &std::collections::BTreeMap<String, (u64, u64)>,
) -> Option<DnsHookCost> {
    // bpftool shows the first 15 bytes of a program's name.
    let find = |m: &std::collections::BTreeMap<String, (u64, u64)>| {
        m.iter()
            .find(|(name, _)| DNS_PROGRAM.starts_with(name.as_str()))
            .map(|(_, v)| *v)
            .filter(|(cnt, _)| *cnt > 0)
    };
    let (cnt, ns) = find(auditor)?;
    let (fcnt, fns) = find(floor)?;
    Some(DnsHookCost {
        runs: cnt,
        ns_per_run: ns as f64 / cnt as f64,
        floor_ns_per_run: fns as f64 / fcnt as f64,
    })
}

fn spread(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        })
}

/// A/B/C-agnostic: attaches the arm's tracer, runs one storm, reads the kernel's run
/// time of the tracer's programs over exactly the storm, and the CPU both processes used.
fn storm_under(arm: Arm, proto: &str, ops: u64, auditor: &Path) -> anyhow::Result<ArmRun> {
    let before = prog_ids()?;
    let out_path = crate::root().join("target/bench/capture-records.jsonl");
    std::fs::create_dir_all(out_path.parent().unwrap())?;
    let mut tracer = match arm {
        Arm::Bare => None,
        Arm::Baseline
        | Arm::Auditor
        | Arm::NoFlowMap
        | Arm::Floor
        | Arm::TpBtf
        | Arm::TpBtfFloor => {
            let mut cap = Command::new(auditor);
            if let Some(level) = arm.calibrate() {
                cap.env("AUDITOR_KERNEL_CALIBRATE", level);
            }
            cap.arg("capture");
            if matches!(arm, Arm::TpBtf | Arm::TpBtfFloor) {
                cap.args(["--tcp-hook", "tp-btf"]);
            }
            let mut cap = cap
                .stdout(std::fs::File::create(&out_path)?)
                .stderr(Stdio::piped())
                .spawn()
                .context("starting auditor capture")?;
            let mut err = BufReader::new(cap.stderr.take().expect("stderr"));
            let mut line = String::new();
            loop {
                line.clear();
                if err.read_line(&mut line)? == 0 {
                    bail!(
                        "auditor capture ({}) exited before it was ready",
                        arm.name()
                    );
                }
                if line.contains("capturing") {
                    break;
                }
            }
            Some((cap, Some(err)))
        }
        Arm::Bpftrace => {
            let mut bt = Command::new("bpftrace")
                .args(["-e", bpftrace_program(proto)])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .context("starting bpftrace")?;
            let mut out = BufReader::new(bt.stdout.take().expect("stdout"));
            let mut line = String::new();
            if out.read_line(&mut line)? == 0 || !line.contains("Attaching") {
                bail!("bpftrace did not start: {line:?}");
            }
            // It prints "Attaching" just before it attaches.
            std::thread::sleep(Duration::from_millis(1500));
            // Drain its map dump at exit so it never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            Some((bt, None))
        }
    };
    let tracer_pid = tracer.as_ref().map(|t| t.0.id());
    let progs0 = prog_stats(&before)?;
    let cpu0 = tracer_pid.and_then(cpu_ns_of).unwrap_or(0);
    let result = storm(proto, ops);
    let cpu1 = tracer_pid.and_then(cpu_ns_of).unwrap_or(0);
    let progs1 = prog_stats(&before)?;
    let mut run = ArmRun::default();
    if let Some((mut child, err)) = tracer.take() {
        if arm == Arm::Bpftrace {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
        } else {
            nix_kill_term(child.id());
        }
        let mut rest = String::new();
        if let Some(mut err) = err {
            std::io::Read::read_to_string(&mut err, &mut rest)?;
        }
        let status = child.wait()?;
        if arm.captures() {
            if !status.success() {
                bail!("auditor capture ({}) failed: {status}\n{rest}", arm.name());
            }
            let s = result.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
            let summary = rest
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find_map(|v| v.get("summary").cloned())
                .context("no summary from auditor capture")?;
            let mut seen = 0u64;
            for l in std::fs::read_to_string(&out_path)?.lines() {
                let r: Value = serde_json::from_str(l)?;
                if r["tgid"].as_u64() == Some(s.tgid) && r["direction"] == "egress" {
                    seen += r["count"].as_u64().unwrap_or(0);
                    run.records += 1;
                }
            }
            run.lost = s.ops.saturating_sub(seen);
            run.ringbuf_full = summary["kernel"]["ringbuf_full"].as_u64().unwrap_or(0);
            run.kernel_lost = summary["connections_lost"]
                .as_u64()
                .or_else(|| summary["lru_evictions"].as_u64())
                .unwrap_or(0);
        }
        if arm.calibrate().is_some() {
            if !status.success() {
                bail!("auditor capture ({}) failed: {status}\n{rest}", arm.name());
            }
            // Empty programs see nothing (the walk of open sockets still reports). A binary
            // older than the switch ignores it and captures: its "floor" would be the full
            // cost, so none is reported for it (n/a).
            let kernel_records = std::fs::read_to_string(&out_path)?
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                // Flow records only: the `watch` lines say what was watched, not a flow.
                .filter(|r| r.get("watch").is_none() && r["hook"] != "existing")
                .count();
            if kernel_records > 0 {
                println!(
                    "      ({} captured flows under AUDITOR_KERNEL_CALIBRATE={}: it predates the switch, so this arm has no figure: n/a)",
                    auditor.display(),
                    arm.calibrate().unwrap_or_default()
                );
                run.not_a_floor = true;
            }
        }
    }
    let s = result?;
    run.rate = s.rate;
    run.ops = s.ops;
    run.storm_cpu_ns = s.cpu_ns;
    run.tracer_cpu_ns = cpu1.saturating_sub(cpu0);
    run.eaddrnotavail = s.eaddrnotavail;
    for (id, (name, cnt1, ns1)) in &progs1 {
        let (cnt0, ns0) = progs0.get(id).map_or((0, 0), |p| (p.1, p.2));
        run.progs
            .push((name.clone(), cnt1 - cnt0.min(*cnt1), ns1 - ns0.min(*ns1)));
    }
    Ok(run)
}

/// The ids of every loaded program: the tracer's are those that appear after this.
fn prog_ids() -> anyhow::Result<std::collections::HashSet<u64>> {
    Ok(prog_show()?
        .iter()
        .filter_map(|p| p["id"].as_u64())
        .collect())
}

type ProgStats = std::collections::HashMap<u64, (String, u64, u64)>;

/// run_cnt and run_time_ns of the programs loaded since `before`.
fn prog_stats(before: &std::collections::HashSet<u64>) -> anyhow::Result<ProgStats> {
    Ok(prog_show()?
        .iter()
        .filter_map(|p| {
            let id = p["id"].as_u64()?;
            if before.contains(&id) {
                return None;
            }
            Some((
                id,
                (
                    p["name"].as_str().unwrap_or("?").to_string(),
                    p["run_cnt"].as_u64().unwrap_or(0),
                    p["run_time_ns"].as_u64().unwrap_or(0),
                ),
            ))
        })
        .collect())
}

fn prog_show() -> anyhow::Result<Vec<Value>> {
    let out = Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output()
        .context("running bpftool prog show")?;
    if !out.status.success() {
        bail!(
            "bpftool prog show: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("bpftool's JSON")?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// CPU time (user + system, all threads) of a process, from /proc/PID/stat.
fn cpu_ns_of(pid: u32) -> Option<u64> {
    let (_, ticks) = rss_kib_and_cpu_ticks(pid)?;
    // USER_HZ is 100 on Linux.
    Some(ticks * 10_000_000)
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
    cpu_ns: u64,
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
        cpu_ns: n("cpu_ns") as u64,
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

/// A benchmark's `auditor run`: the bundled allowlist, an inventory that makes all of
/// loopback one documented service (so every loopback connection is judged, as a
/// violation), a store and an events file in its own directory, and `--listen` on a free
/// loopback port (readiness, /metrics). Killed if dropped while still running, so an
/// error in a benchmark leaves no daemon behind.
struct Daemon {
    child: Option<std::process::Child>,
    pid: u32,
    port: u16,
    dir: std::path::PathBuf,
}

/// How long `auditor run` may take to answer on its port: loading the programs and
/// reading the inputs take a second or two here; ten times that means it failed.
const DAEMON_START_LIMIT: Duration = Duration::from_secs(30);

/// After readiness, before any measurement: the walk of open sockets at start and the
/// first store commit are done by then, so they are not counted as load.
const DAEMON_SETTLE: Duration = Duration::from_secs(2);

/// After SIGTERM: the daemon commits its last batch and exits within a second or two;
/// one still running after this hangs, and is killed (and the benchmark says so).
const DAEMON_STOP_LIMIT: Duration = Duration::from_secs(30);

/// USER_HZ on Linux: the unit of utime and stime in /proc/PID/stat.
const TICKS_PER_SECOND: f64 = 100.0;

impl Daemon {
    /// Starts `bin run` in `dir` (emptied first) with `extra` arguments, and waits until
    /// it answers on its port and has settled.
    fn start(bin: &Path, dir: &Path, extra: &[&str]) -> anyhow::Result<Daemon> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("inventory.yaml"),
            "version: 1\nservices:\n  Tenant Service: {addresses: [127.0.0.0/8]}\n",
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(bin)
            .args(["run", "--allowlist"])
            .arg(crate::root().join("allowlist/voice-microservices.yaml"))
            .arg("--inventory")
            .arg(dir.join("inventory.yaml"))
            .arg("--store")
            .arg(dir.join("store.db"))
            .arg("--events")
            .arg(dir.join("events.jsonl"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("daemon.log"))?)
            .spawn()
            .with_context(|| format!("starting {} run", bin.display()))?;
        let mut d = Daemon {
            pid: child.id(),
            child: Some(child),
            port,
            dir: dir.to_path_buf(),
        };
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > DAEMON_START_LIMIT || d.exited() {
                bail!(
                    "{} run did not start: see {}",
                    bin.display(),
                    d.log().display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(DAEMON_SETTLE);
        Ok(d)
    }

    fn log(&self) -> std::path::PathBuf {
        self.dir.join("daemon.log")
    }

    /// Whether the daemon has exited (on its own: a crash, a refused argument).
    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| !matches!(c.try_wait(), Ok(None)))
    }

    /// Resident memory (KiB) and CPU ticks; an error once the process is gone.
    fn sample(&self) -> anyhow::Result<(u64, u64)> {
        rss_kib_and_cpu_ticks(self.pid).with_context(|| {
            format!(
                "the daemon (pid {}) is gone: see {}",
                self.pid,
                self.log().display()
            )
        })
    }

    /// SIGTERM, then a bounded wait: its exit status, or an error when it had to be killed.
    fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self
            .child
            .take()
            .context("the daemon was stopped already")?;
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if start.elapsed() > DAEMON_STOP_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "auditor run did not exit within {DAEMON_STOP_LIMIT:?} of SIGTERM (killed): see {}",
                    self.log().display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's /metrics (plain HTTP/1.0, so the body is never chunked).
    fn metrics(&self) -> anyhow::Result<String> {
        http_get(self.port, "/metrics")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How long a GET of the daemon's own HTTP may take: /metrics answers in milliseconds;
/// a daemon this slow to answer is reported, not waited for.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest body read: /metrics of a daemon at its edge cap is well under a
/// megabyte; this bounds a runaway answer.
const HTTP_MAX_BYTES: u64 = 16 << 20;

/// GET `path` from 127.0.0.1:`port`: the body of a 200 answer.
fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        HTTP_TIMEOUT,
    )
    .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    s.set_read_timeout(Some(HTTP_TIMEOUT))?;
    s.set_write_timeout(Some(HTTP_TIMEOUT))?;
    // One write: `write!` on a socket sends each piece of the format on its own.
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())?;
    let mut answer = String::new();
    s.take(HTTP_MAX_BYTES)
        .read_to_string(&mut answer)
        .with_context(|| format!("reading GET {path}"))?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .with_context(|| format!("GET {path}: no HTTP answer"))?;
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("GET {path}: {status}");
    }
    Ok(body.to_string())
}

/// Every sample of metric `name` in a Prometheus/OpenMetrics exposition: its labels
/// (the text between the braces, empty without) and its value. `name{labels} value` or
/// `name value`; label values may hold spaces, braces and escaped quotes.
fn metric_samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = if let Some(inner) = rest.strip_prefix('{') {
                // The end of the labels: the first `}` outside a quoted value.
                let (mut quoted, mut escaped) = (false, false);
                let end = inner.char_indices().find_map(|(i, c)| {
                    match (c, quoted, escaped) {
                        (_, _, true) => escaped = false,
                        ('\\', true, false) => escaped = true,
                        ('"', _, false) => quoted = !quoted,
                        ('}', false, false) => return Some(i),
                        _ => {}
                    }
                    None
                })?;
                (&inner[..end], &inner[end + 1..])
            } else if rest.starts_with(' ') {
                ("", rest)
            } else {
                return None; // another metric whose name starts with this one
            };
            Some((labels, value.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// What the sweep and soak arms read from /metrics.
#[derive(Default, Clone, Copy, Debug, PartialEq)]
struct EdgeCounts {
    /// Distinct violation series held (`auditor_violations_total`): at most the cap + 10.
    violation_series: u64,
    /// Sightings counted in an overflow edge because the violation series were full.
    overflow_sightings: u64,
    /// Every connection judged (`auditor_connections_total`, all verdicts).
    connections: u64,
}

fn edge_counts(metrics: &str) -> EdgeCounts {
    let sum = |name: &str, labels: &str| {
        metric_samples(metrics, name)
            .iter()
            .filter(|(l, _)| l.contains(labels))
            .map(|(_, v)| v)
            .sum::<f64>() as u64
    };
    EdgeCounts {
        violation_series: metric_samples(metrics, "auditor_violations_total").len() as u64,
        overflow_sightings: sum("auditor_overflow_sightings_total", "holder=\"metrics\""),
        connections: sum("auditor_connections_total", ""),
    }
}

/// Open file descriptors of a process (entries of /proc/PID/fd).
fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Bytes of the store on disk: the SQLite file and its write-ahead log.
fn store_bytes(dir: &Path) -> u64 {
    ["store.db", "store.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Runs the peer with `args` and waits for it; its one JSON summary line.
fn peer_json(args: &[&str]) -> anyhow::Result<Value> {
    let out = Command::new(peer())
        .args(args)
        .output()
        .with_context(|| format!("running auditor-peer {}", args.join(" ")))?;
    peer_summary(args, out)
}

fn peer_summary(args: &[&str], out: std::process::Output) -> anyhow::Result<Value> {
    if !out.status.success() {
        bail!(
            "auditor-peer {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("the summary of auditor-peer {}", args.join(" ")))
}

/// `auditor run` (bundled allowlist, a loopback inventory, a store) under the storms:
/// its resident memory and CPU while judging every connection.
fn daemon(ops: u64, storms: &[String]) -> anyhow::Result<()> {
    crate::require_root("the daemon benchmark")?;
    let d = Daemon::start(
        &crate::root().join("target/release/auditor"),
        &crate::root().join("target/bench/daemon"),
        &[],
    )?;
    let pid = d.pid;
    let (rss_idle, _) = d.sample()?;
    println!("\n== auditor run under the storms (pid {pid}) ==");
    println!("idle RSS {:.1} MiB", rss_idle as f64 / 1024.0);
    let mut report = vec![];
    for proto in storms {
        let (_, cpu0) = d.sample()?;
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
        let (rss_after, cpu1) = d.sample()?;
        let cpu_s = (cpu1 - cpu0) as f64 / TICKS_PER_SECOND;
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
    let log = d.log();
    let status = d.stop()?;
    if !status.success() {
        bail!("auditor run exited with {status}: see {}", log.display());
    }
    std::fs::write(
        crate::root().join("target/bench/daemon.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    Ok(())
}

/// Sweep cost, the steady load of each window: 300 connects/s, a busy node's rate and far
/// below what the daemon judges per second, so a window measures its steady cost (judging
/// plus its periodic passes over its tables), not saturation.
const SWEEP_RATE: &str = "300";

/// Sweep cost, the length of each window: several of the daemon's periodic passes, and
/// enough CPU ticks (10 ms each) that one tick more or less is a few per cent of the figure.
const SWEEP_SECS: &str = "40";

/// Sweep cost, the scan between the windows: one refused connect to each of 60,000
/// distinct loopback ports (2000..62000), as many distinct edges as a scan of one host
/// leaves in the daemon's tables. It takes seconds; 120 s bounds it.
const SCAN_FROM: &str = "2000";
const SCAN_TO: &str = "62000";
const SCAN_LIMIT_SECS: &str = "120";

/// Sweep cost, after the scan: the daemon judges the scan's records and commits them to
/// the store within this, so the second window measures what the scan left behind, not
/// the scan.
const SWEEP_SETTLE: Duration = Duration::from_secs(10);

/// Sweep cost, the target: the steady CPU after the scan at most 1.5 times the fresh
/// daemon's (a table the scan filled may cost a little more to walk, not a multiple).
const SWEEP_TARGET_RATIO: f64 = 1.5;

/// One binary's sweep-cost run.
struct SweepRun {
    label: &'static str,
    bin: std::path::PathBuf,
    fresh_ticks: u64,
    after_ticks: u64,
    rss_idle_kib: u64,
    /// After the fresh window, before the scan.
    rss_before_kib: u64,
    /// After the second window.
    rss_after_kib: u64,
    exit: std::process::ExitStatus,
    json: Value,
}

impl SweepRun {
    fn ratio(&self) -> f64 {
        self.after_ticks as f64 / self.fresh_ticks.max(1) as f64
    }
}

/// `cargo xtask bench sweep`: what a port scan leaves behind in the daemon's steady cost.
/// For each binary (the baseline first, when given): a fresh `auditor run`, 300
/// connects/s for 40 s (its CPU ticks), a scan of 60,000 ports, 10 s, the same load again.
fn sweep(auditor: &Path, baseline: Option<&Path>) -> anyhow::Result<()> {
    crate::require_root("the sweep benchmark")?;
    let mut runs = Vec::new();
    if let Some(b) = baseline {
        runs.push(sweep_one("baseline", b)?);
    }
    runs.push(sweep_one(
        if baseline.is_some() { "new" } else { "auditor" },
        auditor,
    )?);
    println!(
        "\n== sweep cost: {SWEEP_RATE} connects/s for {SWEEP_SECS} s, fresh and after a scan of 60,000 ports (target ratio <= {SWEEP_TARGET_RATIO}) =="
    );
    println!(
        "{:<9} {:>11} {:>15} {:>6} {:>9} {:>15} {:>14}  exit",
        "binary",
        "fresh ticks",
        "after-60k ticks",
        "ratio",
        "idle MiB",
        "RSS before MiB",
        "RSS after MiB"
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    for r in &runs {
        println!(
            "{:<9} {:>11} {:>15} {:>6.2} {:>9.1} {:>15.1} {:>14.1}  {}",
            r.label,
            r.fresh_ticks,
            r.after_ticks,
            r.ratio(),
            mib(r.rss_idle_kib),
            mib(r.rss_before_kib),
            mib(r.rss_after_kib),
            r.exit
        );
    }
    for r in &runs {
        println!("  {}: {}", r.label, r.bin.display());
    }
    let met = |r: &SweepRun| {
        if r.ratio() <= SWEEP_TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        }
    };
    if let [old, new] = runs.as_slice() {
        println!(
            "before -> after: fresh {} -> {} ticks, after-60k {} -> {} ticks, ratio {:.2} -> {:.2} (target <= {SWEEP_TARGET_RATIO}: {} -> {}); RSS after the scan {:.1} -> {:.1} MiB",
            old.fresh_ticks,
            new.fresh_ticks,
            old.after_ticks,
            new.after_ticks,
            old.ratio(),
            new.ratio(),
            met(old),
            met(new),
            mib(old.rss_after_kib),
            mib(new.rss_after_kib),
        );
    } else {
        let r = &runs[0];
        println!(
            "ratio {:.2}: target <= {SWEEP_TARGET_RATIO} {}",
            r.ratio(),
            met(r)
        );
    }
    let path = crate::root().join("target/bench/sweep.json");
    let report: Vec<&Value> = runs.iter().map(|r| &r.json).collect();
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("written: {}", path.display());
    if let Some(r) = runs.iter().find(|r| !r.exit.success()) {
        bail!("{} exited with {} after SIGTERM", r.bin.display(), r.exit);
    }
    Ok(())
}

fn sweep_one(label: &'static str, bin: &Path) -> anyhow::Result<SweepRun> {
    let dir = crate::root().join("target/bench/sweep").join(label);
    let d = Daemon::start(bin, &dir, &[])?;
    println!(
        "\n== sweep cost, {label}: {} (pid {}) ==",
        bin.display(),
        d.pid
    );
    let (rss_idle, _) = d.sample()?;
    let (fresh_ticks, fresh) = sweep_window(&d, "fresh")?;
    let (rss_before, _) = d.sample()?;
    let before_scan = edge_counts(&d.metrics()?);
    let scan = peer_json(&["scan", "127.0.0.1", SCAN_FROM, SCAN_TO, SCAN_LIMIT_SECS])?;
    println!(
        "scan: {} ports in {} s ({} refused, {} connected, {} errors)",
        scan["attempts"], scan["seconds"], scan["refused"], scan["connected"], scan["errors"]
    );
    let ports: u64 = SCAN_TO.parse::<u64>()? - SCAN_FROM.parse::<u64>()?;
    if scan["attempts"].as_u64() != Some(ports) {
        println!(
            "  (the scan stopped short of {ports} ports at its {SCAN_LIMIT_SECS} s limit: the after-scan figure is for fewer)"
        );
    }
    std::thread::sleep(SWEEP_SETTLE);
    let after_scan = edge_counts(&d.metrics()?);
    println!(
        "the daemon judged {} connections during the scan and its settling; {} violation series held, {} sightings in overflow edges",
        after_scan
            .connections
            .saturating_sub(before_scan.connections),
        after_scan.violation_series,
        after_scan.overflow_sightings
    );
    let (after_ticks, after) = sweep_window(&d, "after the scan")?;
    let (rss_after, _) = d.sample()?;
    let exit = d.stop()?;
    let json = json!({
        "binary": label, "path": bin.display().to_string(),
        "rate_per_s": SWEEP_RATE.parse::<f64>()?, "window_seconds": SWEEP_SECS.parse::<f64>()?,
        "fresh_ticks": fresh_ticks, "after_scan_ticks": after_ticks,
        "ratio": after_ticks as f64 / fresh_ticks.max(1) as f64, "target_ratio": SWEEP_TARGET_RATIO,
        "rss_idle_mib": rss_idle as f64 / 1024.0, "rss_before_scan_mib": rss_before as f64 / 1024.0,
        "rss_after_mib": rss_after as f64 / 1024.0,
        "fresh_load": fresh, "after_load": after, "scan": scan,
        "judged_during_scan": after_scan.connections.saturating_sub(before_scan.connections),
        "violation_series_after_scan": after_scan.violation_series,
        "overflow_sightings_after_scan": after_scan.overflow_sightings,
        "exit_status": exit.to_string(), "exit_success": exit.success(),
    });
    Ok(SweepRun {
        label,
        bin: bin.to_path_buf(),
        fresh_ticks,
        after_ticks,
        rss_idle_kib: rss_idle,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        exit,
        json,
    })
}

/// One window of steady load: the daemon's CPU ticks over it, and the peer's summary.
fn sweep_window(d: &Daemon, what: &str) -> anyhow::Result<(u64, Value)> {
    let (_, t0) = d.sample()?;
    let start = std::time::Instant::now();
    let load = peer_json(&["pace", "127.0.0.1", "0", SWEEP_RATE, SWEEP_SECS])?;
    let secs = start.elapsed().as_secs_f64();
    let (_, t1) = d.sample()?;
    let ticks = t1.saturating_sub(t0);
    println!(
        "{what}: {} connects ({} accepted, {} errors) in {secs:.1} s; daemon {ticks} ticks ({:.1}% of one core)",
        load["attempts"],
        load["connected"],
        load["errors"],
        100.0 * ticks as f64 / TICKS_PER_SECOND / secs
    );
    Ok((ticks, load))
}

/// Soak: the daemon's cap on distinct edges (`--max-violation-series`). Small, so that
/// the new edges (1 a second by default) pass it within minutes (200 s) and most of the
/// soak runs the daemon at its cap, where memory must stay flat.
const SOAK_MAX_SERIES: &str = "200";

/// Soak: the new edges' ports, FROM..TO: 40,000 ports never used before in one run,
/// 666 minutes at 1 a second. From 20000: below Linux's default ephemeral range
/// (32768..60999) for the first 12,768 (3.5 hours at 1 a second), so these connects
/// rarely meet a port this machine's own connections (or the daemon's) hold.
const NEW_PORT_FROM: u16 = 20_000;
const NEW_PORT_TO: u16 = 60_000;

/// Soak: the longest run accepted, a week: beyond the new ports' room at any useful rate
/// of new edges, and it keeps every count and deadline far from overflow.
const SOAK_MAX_MINUTES: u64 = 7 * 24 * 60;

/// Soak: memory is flat when every RSS sample of the last half is within 10% of their
/// median (allocator noise is a few per cent; a leak of an edge's worth per new edge
/// passes 10% within hours at the default load).
const SOAK_FLAT_PERCENT: f64 = 10.0;

/// The soak's arguments are usable: at least a minute, rates that are numbers, and no
/// more new edges than there are new ports.
fn soak_check(load: SoakLoad) -> anyhow::Result<()> {
    if !(1..=SOAK_MAX_MINUTES).contains(&load.minutes) {
        bail!(
            "--minutes {}: give 1 to {SOAK_MAX_MINUTES} (a week)",
            load.minutes
        );
    }
    for (flag, v) in [
        ("--rate", load.rate),
        ("--new-edges-per-second", load.new_edges_per_second),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            bail!("{flag} {v}: give a number, 0 or more");
        }
    }
    let ports = (load.new_edges_per_second * 60.0 * load.minutes as f64).round();
    let room = f64::from(NEW_PORT_TO - NEW_PORT_FROM);
    if ports > room {
        bail!(
            "{ports} new edges do not fit the {room} new ports ({NEW_PORT_FROM}..{NEW_PORT_TO}): at {} new edges a second, give --minutes {} or fewer",
            load.new_edges_per_second,
            (room / 60.0 / load.new_edges_per_second).floor()
        );
    }
    Ok(())
}

/// min, max, median of a set of samples, and the largest distance of any of them from the
/// median as a percentage of it (±%).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spread {
    min: f64,
    max: f64,
    median: f64,
    percent: f64,
}

fn spread_of(v: &[f64]) -> Option<Spread> {
    if v.is_empty() {
        return None;
    }
    let mut sorted = v.to_vec();
    let median = median(&mut sorted);
    let (min, max) = spread(v);
    let percent = if median > 0.0 {
        100.0 * (max - median).max(median - min) / median
    } else {
        0.0
    };
    Some(Spread {
        min,
        max,
        median,
        percent,
    })
}

/// The least-squares slope of y over x; None with fewer than two distinct x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (points.len() >= 2 && sxx > 0.0).then(|| sxy / sxx)
}

/// The minutes of the last half of a soak of `minutes`: those after its middle (all of a
/// one-minute soak).
fn last_half(minute: u64, minutes: u64) -> bool {
    minute > minutes / 2
}

/// A load generator that is killed if dropped before it was waited for, so a soak that
/// fails part-way leaves no load running.
struct Generator {
    child: Option<std::process::Child>,
    args: Vec<String>,
}

impl Generator {
    fn spawn(args: Vec<String>) -> anyhow::Result<Generator> {
        let child = Command::new(peer())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting auditor-peer {}", args.join(" ")))?;
        Ok(Generator {
            child: Some(child),
            args,
        })
    }

    /// Waits for it (it ends on its own: every peer mode is bounded in time) and reads its
    /// summary.
    fn finish(mut self) -> anyhow::Result<Value> {
        let child = self.child.take().context("finished already")?;
        let out = child.wait_with_output()?;
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        peer_summary(&args, out)
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One minute of the soak.
#[derive(Debug, Clone)]
struct SoakRow {
    minute: u64,
    rss_kib: u64,
    cpu_percent: f64,
    fds: u64,
    store_bytes: u64,
    events_bytes: u64,
    /// New edges the generator was due to have made by now (it runs on a fixed schedule).
    new_edges: u64,
    edges: EdgeCounts,
}

/// `cargo xtask bench soak`: `auditor run` with a store and a small edge cap, under steady
/// connects to one listener and a steady trickle of new edges, for `minutes`. One row a
/// minute; at the end, whether memory stayed flat over the last half, the store's growth
/// extrapolated per day, and how the daemon exited on SIGTERM.
fn soak(auditor: &Path, load: SoakLoad) -> anyhow::Result<()> {
    crate::require_root("the soak benchmark")?;
    soak_check(load)?;
    let dir = crate::root().join("target/bench/soak");
    let mut d = Daemon::start(auditor, &dir, &["--max-violation-series", SOAK_MAX_SERIES])?;
    let secs = load.minutes * 60;
    let start = std::time::Instant::now();
    let (_, ticks0) = d.sample()?;
    let steady = (load.rate > 0.0)
        .then(|| {
            Generator::spawn(vec![
                "pace".into(),
                "127.0.0.1".into(),
                "0".into(),
                load.rate.to_string(),
                secs.to_string(),
            ])
        })
        .transpose()?;
    let new_edges = (load.new_edges_per_second > 0.0)
        .then(|| {
            Generator::spawn(vec![
                "newports".into(),
                "127.0.0.1".into(),
                NEW_PORT_FROM.to_string(),
                load.new_edges_per_second.to_string(),
                secs.to_string(),
            ])
        })
        .transpose()?;
    let new_edges_total = (load.new_edges_per_second * secs as f64).round() as u64;
    println!(
        "\n== soak: {} (pid {}), {} minutes, {} connects/s to one listener + {} new edges/s (ports from {NEW_PORT_FROM}), --max-violation-series {SOAK_MAX_SERIES} ==",
        auditor.display(),
        d.pid,
        load.minutes,
        load.rate,
        load.new_edges_per_second
    );
    println!(
        "{:>6} {:>8} {:>6} {:>5} {:>10} {:>9} {:>7} {:>9} {:>9}",
        "minute",
        "RSS MiB",
        "CPU %",
        "fds",
        "store KiB",
        "new edges",
        "series",
        "overflow",
        "judged"
    );
    let mut rows: Vec<SoakRow> = Vec::new();
    let (mut prev_at, mut prev_ticks) = (start, ticks0);
    for minute in 1..=load.minutes {
        let due = start + Duration::from_secs(60 * minute);
        loop {
            let now = std::time::Instant::now();
            if now >= due {
                break;
            }
            if d.exited() {
                bail!(
                    "auditor run exited during the soak: see {}",
                    d.log().display()
                );
            }
            std::thread::sleep((due - now).min(Duration::from_secs(1)));
        }
        let (rss, ticks) = d.sample()?;
        let at = std::time::Instant::now();
        let cpu_percent = 100.0 * ticks.saturating_sub(prev_ticks) as f64
            / TICKS_PER_SECOND
            / (at - prev_at).as_secs_f64();
        (prev_at, prev_ticks) = (at, ticks);
        let edges = match d.metrics() {
            Ok(m) => edge_counts(&m),
            Err(e) => {
                eprintln!("minute {minute}: /metrics: {e:#}");
                EdgeCounts::default()
            }
        };
        let row = SoakRow {
            minute,
            rss_kib: rss,
            cpu_percent,
            fds: open_fds(d.pid).unwrap_or(0),
            store_bytes: store_bytes(&dir),
            events_bytes: std::fs::metadata(dir.join("events.jsonl")).map_or(0, |m| m.len()),
            new_edges: ((load.new_edges_per_second * (at - start).as_secs_f64()) as u64)
                .min(new_edges_total),
            edges,
        };
        println!(
            "{:>6} {:>8.1} {:>6.1} {:>5} {:>10.0} {:>9} {:>7} {:>9} {:>9}",
            row.minute,
            row.rss_kib as f64 / 1024.0,
            row.cpu_percent,
            row.fds,
            row.store_bytes as f64 / 1024.0,
            row.new_edges,
            row.edges.violation_series,
            row.edges.overflow_sightings,
            row.edges.connections
        );
        rows.push(row);
    }
    let steady = steady.map(Generator::finish).transpose()?;
    let new_edges = new_edges.map(Generator::finish).transpose()?;
    let exit = d.stop()?;

    let half: Vec<&SoakRow> = rows
        .iter()
        .filter(|r| last_half(r.minute, load.minutes))
        .collect();
    let rss: Vec<f64> = half.iter().map(|r| r.rss_kib as f64 / 1024.0).collect();
    let rss = spread_of(&rss).context("no minute in the last half")?;
    let flat = rss.percent <= SOAK_FLAT_PERCENT;
    let points: Vec<(f64, f64)> = half
        .iter()
        .map(|r| (r.minute as f64, r.store_bytes as f64))
        .collect();
    let growth = slope(&points);
    let (first, last) = (half[0].minute, half[half.len() - 1].minute);
    println!(
        "RSS over the last half (minutes {first}..{last}): min {:.1}, max {:.1}, median {:.1} MiB, spread ±{:.1}%: {}",
        rss.min,
        rss.max,
        rss.median,
        rss.percent,
        if flat {
            format!("flat within ±{SOAK_FLAT_PERCENT}%")
        } else {
            format!("NOT flat within ±{SOAK_FLAT_PERCENT}%")
        }
    );
    match growth {
        Some(g) => println!(
            "store growth over the last half: {:.1} KiB/minute (least squares), {:.1} MiB/day at {} connects/s + {} new edges/s",
            g / 1024.0,
            g * 1440.0 / (1024.0 * 1024.0),
            load.rate,
            load.new_edges_per_second
        ),
        None => println!(
            "store growth over the last half: n/a (needs two minutes or more in it: --minutes 3 or more)"
        ),
    }
    let summary = |v: &Option<Value>| {
        v.as_ref().map_or("none".to_string(), |v| {
            format!(
                "{} connects ({} accepted, {} refused, {} errors) in {} s",
                v["attempts"], v["connected"], v["refused"], v["errors"], v["seconds"]
            )
        })
    };
    println!(
        "load: steady {}; new edges {}",
        summary(&steady),
        summary(&new_edges)
    );
    println!("daemon after SIGTERM: {exit}");
    let report = json!({
        "binary": auditor.display().to_string(),
        "minutes": load.minutes, "rate_per_s": load.rate,
        "new_edges_per_second": load.new_edges_per_second,
        "max_violation_series": SOAK_MAX_SERIES.parse::<u64>()?,
        "rows": rows.iter().map(|r| json!({
            "minute": r.minute, "rss_mib": r.rss_kib as f64 / 1024.0, "cpu_percent": r.cpu_percent,
            "open_fds": r.fds, "store_bytes": r.store_bytes, "events_bytes": r.events_bytes,
            "new_edges": r.new_edges, "violation_series": r.edges.violation_series,
            "overflow_sightings": r.edges.overflow_sightings,
            "connections_judged": r.edges.connections,
        })).collect::<Vec<_>>(),
        "rss_last_half": {"min_mib": rss.min, "max_mib": rss.max, "median_mib": rss.median,
            "spread_percent": rss.percent, "flat": flat, "flat_within_percent": SOAK_FLAT_PERCENT},
        "store_growth_bytes_per_minute": growth,
        "store_growth_mib_per_day": growth.map(|g| g * 1440.0 / (1024.0 * 1024.0)),
        "steady_load": steady, "new_edges_load": new_edges,
        "exit_status": exit.to_string(), "exit_success": exit.success(),
    });
    let path = crate::root().join("target/bench/soak.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("written: {}", path.display());
    if !exit.success() {
        bail!(
            "auditor run exited with {exit} after SIGTERM: see {}",
            dir.join("daemon.log").display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# HELP auditor_violations Connections of each violation edge.
# TYPE auditor_violations counter
auditor_violations_total{verdict="undocumented_egress",src="Tenant Service",dst="Tenant Service",transport="tcp",port="20001",rules="",node="n1"} 3
auditor_violations_total{verdict="undocumented_egress",src="a \"}\" b",dst="_other",transport="tcp",port="0",rules="",node="n1"} 7
auditor_violations_total_created 1.7e9
auditor_overflow_sightings_total{holder="metrics"} 5
auditor_overflow_sightings_total{holder="store"} 2
auditor_connections_total{verdict="allowed",rule="3"} 10
auditor_connections_total{verdict="undocumented_egress",rule=""} 12
auditor_records_total 22
# EOF
"#;

    #[test]
    fn reads_samples_with_awkward_labels() {
        let v = metric_samples(EXPOSITION, "auditor_violations_total");
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[1].1, 7.0);
        assert!(v[1].0.ends_with("node=\"n1\""));
        assert_eq!(
            metric_samples(EXPOSITION, "auditor_records_total"),
            vec![("", 22.0)]
        );
        assert!(metric_samples(EXPOSITION, "auditor_records").is_empty());
    }

    /// A one-shot HTTP server on loopback answering `answer`; its port.
    fn answer_once(answer: &'static str) -> u16 {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let (mut req, mut chunk) = (Vec::new(), [0u8; 1024]);
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0, "the request ended early: {req:?}");
                req.extend_from_slice(&chunk[..n]);
            }
            assert!(req.starts_with(b"GET /metrics HTTP/1.0\r\n"));
            s.write_all(answer.as_bytes()).unwrap();
        });
        port
    }

    #[test]
    fn gets_metrics_over_plain_http() {
        let port = answer_once(
            "HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nauditor_records_total 22\n",
        );
        let body = http_get(port, "/metrics").unwrap();
        assert_eq!(
            metric_samples(&body, "auditor_records_total"),
            vec![("", 22.0)]
        );
        let port = answer_once("HTTP/1.0 503 Service Unavailable\r\n\r\nbusy");
        let err = http_get(port, "/metrics").unwrap_err().to_string();
        assert!(err.contains("503"), "{err}");
    }

    #[test]
    fn counts_edges() {
        assert_eq!(
            edge_counts(EXPOSITION),
            EdgeCounts {
                violation_series: 2,
                overflow_sightings: 5,
                connections: 22
            }
        );
        assert_eq!(edge_counts(""), EdgeCounts::default());
    }

    #[test]
    fn spread_is_the_largest_distance_from_the_median() {
        let s = spread_of(&[100.0, 95.0, 104.0, 100.0, 112.0]).unwrap();
        assert_eq!((s.min, s.max, s.median), (95.0, 112.0, 100.0));
        assert!((s.percent - 12.0).abs() < 1e-9);
        assert!(spread_of(&[]).is_none());
        assert_eq!(spread_of(&[0.0]).unwrap().percent, 0.0);
    }

    #[test]
    fn slope_is_least_squares() {
        let pts: Vec<(f64, f64)> = (1..=5)
            .map(|m| (m as f64, 1000.0 + 50.0 * m as f64))
            .collect();
        assert!((slope(&pts).unwrap() - 50.0).abs() < 1e-9);
        assert!(slope(&pts[..1]).is_none());
        assert!(slope(&[(2.0, 1.0), (2.0, 5.0)]).is_none());
    }

    #[test]
    fn last_half_of_a_soak() {
        let half = |n| (1..=n).filter(|m| last_half(*m, n)).collect::<Vec<u64>>();
        assert_eq!(half(1), vec![1]);
        assert_eq!(half(4), vec![3, 4]);
        assert_eq!(half(5), vec![3, 4, 5]);
        assert_eq!(half(30).len(), 15);
    }

    #[test]
    fn soak_arguments() {
        let load = |minutes, rate, e| SoakLoad {
            minutes,
            rate,
            new_edges_per_second: e,
        };
        assert!(soak_check(load(30, 100.0, 1.0)).is_ok());
        assert!(soak_check(load(600, 100.0, 1.0)).is_ok());
        assert!(soak_check(load(60, 0.0, 0.0)).is_ok());
        let too_many = soak_check(load(700, 100.0, 1.0)).unwrap_err().to_string();
        assert!(too_many.contains("--minutes 666 or fewer"), "{too_many}");
        assert!(soak_check(load(0, 100.0, 1.0)).is_err());
        assert!(soak_check(load(SOAK_MAX_MINUTES + 1, 100.0, 0.0)).is_err());
        assert!(soak_check(load(30, f64::NAN, 1.0)).is_err());
        assert!(soak_check(load(30, 100.0, -1.0)).is_err());
    }
}
