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
    "iproute2",
    // The daemon's tests run the real Prometheus and Alertmanager.
    "prometheus",
    "prometheus-alertmanager",
    // The HTML report is checked in a real browser.
    "chromium",
];
const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn run() -> anyhow::Result<()> {
    packages()?;
    bpf_linker()?;
    mounts()
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !crate::is_root() {
        bail!(
            "missing Debian packages {missing:?}: run `sudo cargo xtask setup` (or apt-get install them)"
        );
    }
    eprintln!("xtask setup: installing {missing:?}");
    crate::run(Command::new("apt-get").arg("update").arg("-qq"))?;
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

fn bpf_linker() -> anyhow::Result<()> {
    let bin = cargo_bin("bpf-linker");
    let current = Command::new(&bin).arg("--version").output();
    if current.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION)) {
        return Ok(());
    }
    eprintln!("xtask setup: installing bpf-linker {BPF_LINKER_VERSION} (about 2 minutes)");
    crate::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("LLVM_PREFIX", "/usr/lib/llvm-22"),
    )
    .context("installing bpf-linker")
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
