//! xtask: orchestration only. Installs what a fresh machine lacks (and skips what it has),
//! builds, runs the tests, the demo and the benchmarks. No product logic lives here.

mod bench;
mod render;
mod report_picture;
mod setup;

use std::{path::PathBuf, process::Command};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Set up, build, test, run and benchmark auditor"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the eBPF toolchain (Debian rustc/cargo + sources, LLVM 22, bpf-linker) and
    /// mount tracefs/bpffs. Idempotent: skips what is present. Needs root when anything is missing.
    Setup,
    /// Set up, then build the release binaries with the freshly built eBPF object embedded.
    Build,
    /// The main job (root): set up, build, and run the documented architecture live in
    /// network namespaces under `auditor run`, drive all 60 documented connections and
    /// four violations, and write the report (JSON, Markdown, HTML).
    Demo {
        /// Where the store, events and reports go.
        #[arg(long, default_value = "out/demo")]
        out: PathBuf,
        /// Use binaries from this directory instead of building them (default: the
        /// workspace's debug build, which `cargo xtask test` reuses).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
    },
    /// Regenerate the generated files: deploy/manifests/auditor.yaml and
    /// auditor-prometheus-operator.yaml (helm template of deploy/chart/auditor), the
    /// chart's copy of the bundled allowlist, the JSON Schemas, and docs/report.png (the
    /// bundled recording's HTML report, through headless Chromium). Tests fail when these
    /// are stale.
    Render,
    /// Set up, build, and run `auditor capture` (root): every flow of this machine as JSON.
    Run {
        /// Extra arguments for `auditor capture`, e.g. `-- --duration 30s`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Set up, build, and run every test. As root, the real-kernel tests are required to run.
    Test {
        /// Extra arguments for `cargo test`, e.g. `-- --nocapture`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Benchmarks that print figures. `capture`: connect and UDP storms with no tracer, with
    /// `auditor capture`, with its programs stopped before the flow maps, with them emptied
    /// (the hooks' floor), with tp_btf for TCP (and its floor) and with a bpftrace
    /// one-liner, alternated: eBPF ns per operation (bpf_stats), CPU per operation,
    /// throughput ratio with spread, lost-record counters; `--baseline-auditor OLD` adds
    /// OLD as an arm and prints before -> after.
    /// `identity`: Kubernetes identity with 10,000 pods and churn (daemon RSS, bytes from
    /// the API server, lookup time). `walk`: CPU of the periodic walk of open sockets with
    /// 10,000 open (target < 50 ms).
    /// `sweep`: `auditor run`'s CPU ticks under 300 connects/s for 40 s, fresh and after a
    /// scan of 60,000 ports, and their ratio (target <= 1.5), with RSS; `--baseline-auditor
    /// OLD` measures OLD first and prints before -> after.
    /// `soak`: `auditor run` for `--minutes N` (default 30) under `--rate` connects/s and
    /// `--new-edges-per-second`, past a small edge cap: one row a minute (RSS, CPU, open
    /// fds, store size, edges), then whether RSS stayed flat over the last half, the
    /// store's growth per day, and the exit status after SIGTERM.
    /// `all` runs neither sweep nor soak (they take minutes).
    Bench {
        #[arg(value_enum, default_value = "all")]
        which: bench::Which,
        /// Connects (or datagrams) per run.
        #[arg(long, default_value_t = 30_000)]
        ops: u64,
        /// Without/with pairs per storm kind.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Which storms: tcp, udp, or both.
        #[arg(long, value_delimiter = ',', default_value = "tcp,udp")]
        storms: Vec<String>,
        /// The `auditor` binary of the capture, walk, sweep and soak arms (default:
        /// target/release/auditor), e.g. a copy built from an earlier commit, for a
        /// before/after table in one tool.
        #[arg(long)]
        auditor: Option<std::path::PathBuf>,
        /// Capture and sweep: an older `auditor` binary measured in the same run as
        /// --auditor's, printed as before -> after.
        #[arg(long)]
        baseline_auditor: Option<std::path::PathBuf>,
        /// Soak: minutes of steady traffic (one row each).
        #[arg(long, default_value_t = 30)]
        minutes: u64,
        /// Soak: connects per second to one loopback listener (the same edge over and over).
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Soak: connects per second to a port never used before (a new edge each; ports
        /// 20000..60000, so this x 60 x --minutes must stay within 40,000).
        #[arg(long, default_value_t = 1.0)]
        new_edges_per_second: f64,
        /// Skip set-up and the release build: measure the binaries as they are.
        #[arg(long)]
        no_build: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Render => {
            setup::run()?;
            render::run()
        }
        Task::Demo { out, bin_dir } => {
            let bin_dir = match bin_dir {
                Some(d) => d,
                None => {
                    setup::run()?;
                    // The test profile's build: `cargo xtask test` after the demo then
                    // builds only the test harnesses, not the whole tree a second time
                    // (the demo drives 64 connections; it needs no optimised binary).
                    cargo(&["build", "--workspace", "--bins"])?;
                    root().join("target/debug")
                }
            };
            let out = if out.is_absolute() {
                out
            } else {
                root().join(out)
            };
            // The demo is a binary of the tests crate, built with the others above: xtask
            // itself must build before set-up has installed the eBPF toolchain.
            require_root("the demo")?;
            run(Command::new(bin_dir.join("auditor-demo"))
                .arg("--out")
                .arg(&out)
                .arg("--bin-dir")
                .arg(&bin_dir)
                .arg("--root")
                .arg(root()))
        }
        Task::Setup => setup::run(),
        Task::Build => {
            setup::run()?;
            cargo(&["build", "--release", "--workspace", "--bins"])
        }
        Task::Run { args } => {
            setup::run()?;
            cargo(&["build", "--release", "-p", "auditor"])?;
            require_root("auditor capture")?;
            let status = Command::new(root().join("target/release/auditor"))
                .arg("capture")
                .args(&args)
                .status()
                .context("running auditor capture")?;
            if !status.success() {
                bail!("auditor capture exited with {status}");
            }
            Ok(())
        }
        Task::Test { args } => {
            setup::run()?;
            cargo(&["build", "--workspace", "--bins"])?;
            let mut cmd = cargo_cmd(&["test", "--workspace"]);
            cmd.args(&args);
            if is_root() {
                // As root nothing may skip: a skipped kernel test fails the run.
                cmd.env("AUDITOR_REQUIRE_KERNEL", "1");
            } else {
                eprintln!("xtask: not root: the real-kernel tests will skip (they say so).");
            }
            run_tests(&mut cmd)
        }
        Task::Bench {
            which,
            ops,
            rounds,
            storms,
            auditor,
            baseline_auditor,
            minutes,
            rate,
            new_edges_per_second,
            no_build,
        } => {
            if !no_build {
                setup::run()?;
                cargo(&["build", "--release", "--workspace", "--bins"])?;
            }
            setup::bench_tools()?;
            bench::run(
                which,
                ops,
                rounds,
                &storms,
                auditor.as_deref(),
                baseline_auditor.as_deref(),
                bench::SoakLoad {
                    minutes,
                    rate,
                    new_edges_per_second,
                },
            )
        }
    }
}

pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

pub fn require_root(what: &str) -> anyhow::Result<()> {
    if !is_root() {
        bail!("{what} needs root (it loads eBPF programs): run `sudo -E cargo xtask ...`");
    }
    Ok(())
}

pub fn cargo_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root()).args(args);
    cmd
}

pub fn cargo(args: &[&str]) -> anyhow::Result<()> {
    run(&mut cargo_cmd(args))
}

/// Runs `cargo test`, passing its output through, and closes with one line that totals
/// every test binary (cargo's own last line is often a doc-test run of zero tests).
fn run_tests(cmd: &mut Command) -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let num = |word: &str| {
                rest.split(';')
                    .find_map(|part| {
                        part.trim().strip_suffix(word).map(|n| {
                            n.trim()
                                .trim_start_matches("ok. ")
                                .trim_start_matches("FAILED. ")
                                .to_string()
                        })
                    })
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            passed += num(" passed");
            failed += num(" failed");
            ignored += num(" ignored");
        }
    }
    let status = child.wait()?;
    println!("\ntests: {passed} passed, {failed} failed, {ignored} skipped");
    if !status.success() {
        bail!("cargo test failed: {status}");
    }
    Ok(())
}

pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
