//! Builds the kernel programs (`auditor-ebpf`) and hands the object to the crate, which
//! embeds it. The eBPF target needs Debian's rustc (it ships the `core` sources for
//! `-Z build-std`) and bpf-linker: `cargo xtask setup` installs both.
//!
//! Switches:
//! - `AUDITOR_EBPF_OBJECT=PATH`: embed this prebuilt object instead of building.
//! - `AUDITOR_SKIP_EBPF=1`: embed nothing (for `check`/`clippy`/docs on machines without
//!   the toolchain); `auditor capture` then says the binary was built without probes.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";

fn main() -> anyhow::Result<()> {
    println!("cargo::rustc-check-cfg=cfg(ebpf_skipped)");
    println!("cargo::rerun-if-env-changed=AUDITOR_EBPF_OBJECT");
    println!("cargo::rerun-if-env-changed=AUDITOR_SKIP_EBPF");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let dest = out_dir.join("auditor-ebpf.o");

    if let Ok(prebuilt) = env::var("AUDITOR_EBPF_OBJECT") {
        println!("cargo::rerun-if-changed={prebuilt}");
        let _ = std::fs::remove_file(&dest);
        std::fs::copy(&prebuilt, &dest)
            .with_context(|| format!("copying AUDITOR_EBPF_OBJECT={prebuilt}"))?;
        return Ok(());
    }
    if env::var_os("AUDITOR_SKIP_EBPF").is_some_and(|v| v != "0" && !v.is_empty()) {
        println!("cargo::rustc-cfg=ebpf_skipped");
        std::fs::write(&dest, [])?;
        return Ok(());
    }

    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.parent().context("auditor/ has no parent")?;
    let ebpf_dir = root.join("auditor-ebpf");
    for watched in [
        "auditor-ebpf/src",
        "auditor-ebpf/Cargo.toml",
        "auditor-ebpf/.cargo",
        "auditor-common/src",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(watched).display());
    }
    let object = build_ebpf(root, &ebpf_dir)?;
    // Replace, never write through: a target directory seeded with hard links shares this
    // file with other checkouts, and copying into it would change theirs too.
    let _ = std::fs::remove_file(&dest);
    std::fs::copy(&object, &dest).with_context(|| format!("copying {}", object.display()))?;
    Ok(())
}

fn build_ebpf(root: &Path, ebpf_dir: &Path) -> anyhow::Result<PathBuf> {
    for (tool, what) in [
        (DEBIAN_RUSTC, "Debian's rustc-web"),
        (DEBIAN_CARGO, "Debian's cargo-web"),
    ] {
        if !Path::new(tool).exists() {
            bail!(
                "{tool} ({what}) is missing: the eBPF programs need it. Run `cargo xtask setup` \
                 (as root), or set AUDITOR_SKIP_EBPF=1 to build without probes."
            );
        }
    }
    let target_dir = root.join("target").join("ebpf");
    let mut cmd = Command::new(DEBIAN_CARGO);
    cmd.current_dir(ebpf_dir)
        .args([
            "build",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings are for the host: none of them may leak into this one.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_")
            || key.starts_with("RUSTC")
            || key.starts_with("RUSTFLAGS")
            || key == "RUSTUP_TOOLCHAIN"
            || key == "RUSTDOC"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("RUSTC", DEBIAN_RUSTC).env("RUSTC_BOOTSTRAP", "1");
    // bpf-linker is a cargo-installed binary.
    if let Some(home) = env::var_os("HOME") {
        let path = env::var_os("PATH").unwrap_or_default();
        let mut paths: Vec<PathBuf> = env::split_paths(&path).collect();
        paths.push(PathBuf::from(home).join(".cargo/bin"));
        cmd.env("PATH", env::join_paths(paths)?);
    }
    let status = cmd
        .status()
        .with_context(|| format!("running {DEBIAN_CARGO}"))?;
    if !status.success() {
        bail!(
            "building auditor-ebpf failed ({status}); see the errors above. If bpf-linker is \
             missing, run `cargo xtask setup`."
        );
    }
    Ok(target_dir.join("bpfel-unknown-none/release/auditor-ebpf"))
}
