//! Helpers for the real-kernel tests: a lab of network namespaces on an isolated bridge
//! (a guard that always removes what it made), the `auditor capture` process, and the
//! skip rule (off root a kernel test may skip; on CI a skip fails the run).

pub mod capture;
pub mod events;
pub mod fake_kube;
pub mod lab;
pub mod netpol;
pub mod peer;
pub mod services;
pub mod topology;

/// True when the caller may run real-kernel tests. Off root it skips with a reason; when
/// `CI` or `AUDITOR_REQUIRE_KERNEL` is set, a skip is a failure instead.
pub fn kernel_tests_enabled(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let required = ["CI", "AUDITOR_REQUIRE_KERNEL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty() && x != "0" && x != "false"));
    assert!(
        !required,
        "{test}: real-kernel tests need root, and this run requires them (CI/AUDITOR_REQUIRE_KERNEL)"
    );
    eprintln!("SKIPPED {test}: needs root (BPF, network namespaces); run `sudo cargo xtask test`");
    false
}

/// Path of a binary this workspace built, next to the running test's profile dir.
pub fn workspace_bin(name: &str) -> std::path::PathBuf {
    if let Some(p) = std::env::var_os(format!("{}_BIN", name.to_uppercase().replace('-', "_"))) {
        return p.into();
    }
    // target/<profile>/deps/<test-exe> -> target/<profile>/<name>
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join(name)
}

/// A tool `cargo xtask setup` installs in ~/.cache/auditor-tools (helm,
/// kubernetes-validate), or None with a SKIPPED note; on CI a missing tool fails the test.
pub fn setup_tool(rel: &str) -> Option<std::path::PathBuf> {
    let p = std::env::var_os("HOME")
        .map_or_else(
            || std::path::PathBuf::from("/root"),
            std::path::PathBuf::from,
        )
        .join(".cache/auditor-tools")
        .join(rel);
    if p.exists() {
        return Some(p);
    }
    let required = ["CI", "AUDITOR_REQUIRE_KERNEL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty() && x != "0"));
    assert!(
        !required,
        "{} is missing: run `cargo xtask setup`",
        p.display()
    );
    eprintln!(
        "SKIPPED: {} is missing (cargo xtask setup installs it)",
        p.display()
    );
    None
}

/// `helm template` of the chart (release `auditor`, namespace `auditor`) with extra
/// arguments; None when helm is missing (a skip, or a failure on CI).
pub fn helm_template(extra: &[&str]) -> Option<Result<String, String>> {
    let helm = setup_tool("helm")?;
    let out = std::process::Command::new(helm)
        .args([
            "template",
            "auditor",
            "deploy/chart/auditor",
            "--namespace",
            "auditor",
        ])
        .args(extra)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("helm runs");
    Some(if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("helm writes UTF-8"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into())
    })
}
