//! The daemon runs with exactly the capabilities the chart grants, and no more: started
//! under a bounding set read from the rendered DaemonSet, it attaches its probes and
//! judges a real connection between two network namespaces. The same with
//! `security.netnsEnrichment=false` (no SYS_ADMIN), the chart's reduced set, which the
//! daemon reports as degraded (`auditor_degraded{reason="no_netns_access"} 1`).

use std::{os::unix::fs::PermissionsExt, path::PathBuf, sync::Mutex, time::Duration};

use auditor_tests::{
    kernel_tests_enabled,
    lab::Lab,
    peer::{client, serve},
    services::{Daemon, metric, wait_for},
    workspace_bin,
};
use serde_json::Value;

static KERNEL: Mutex<()> = Mutex::new(());
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The capabilities the rendered DaemonSet adds (it drops ALL first).
fn chart_capabilities() -> Vec<String> {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/manifests/auditor.yaml")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).unwrap();
    let ds = docs
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("a DaemonSet");
    let sc = &ds["spec"]["template"]["spec"]["containers"][0]["securityContext"];
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(sc["runAsUser"], 0);
    sc["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_ascii_lowercase())
        .collect()
}

/// A wrapper that runs `auditor` as root with only `caps` in its bounding set: for uid 0
/// that is exactly its permitted and effective set, as in the container.
fn confined_auditor(dir: &std::path::Path, caps: &[String]) -> PathBuf {
    let set: Vec<String> = caps.iter().map(|c| format!("+{c}")).collect();
    let wrapper = dir.join("auditor-confined");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec setpriv --bounding-set=-all,{set} --inh-caps=-all -- {bin} \"$@\"\n",
            set = set.join(","),
            bin = workspace_bin("auditor").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

/// `degraded`: the reason `auditor_degraded` must name (and no other), or None when the
/// daemon must not call itself degraded.
fn audits_with(caps: &[String], name: &str, degraded: Option<&str>) {
    let lab = Lab::new(&["tenant", "config"]).expect("lab");
    let dir = std::env::temp_dir().join(format!("auditor-caps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (tenant, config) = (
        lab.host("tenant").v4.to_string(),
        lab.host("config").v4.to_string(),
    );
    std::fs::write(
        dir.join("inventory.yaml"),
        format!(
            "version: 1\nservices:\n  Tenant Service: {{addresses: [{tenant}]}}\n  \
             Config Service: {{addresses: [{config}]}}\n"
        ),
    )
    .unwrap();
    let args: Vec<String> = [
        "--allowlist",
        &format!("{ROOT}/allowlist/voice-microservices.yaml"),
        "--inventory",
        &dir.join("inventory.yaml").display().to_string(),
        "--store",
        &dir.join("store.db").display().to_string(),
        "--events",
        &dir.join("events.jsonl").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let daemon = Daemon::start_with(&confined_auditor(&dir, caps), &args, dir.join("log"))
        .unwrap_or_else(|e| panic!("with only {caps:?}: {e:#}"));
    // The daemon really runs confined: its effective set is the chart's.
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon_pid(&daemon))).unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(
        eff.count_ones() as usize,
        caps.len(),
        "CapEff {eff:x} for {caps:?}"
    );

    let mut server = serve(&lab, "config", &["listen", "tcp", &config, "9100", "1"]);
    client(&lab, "tenant", &["connect", &config, "9100"]);
    assert!(server.wait().unwrap().success());
    let what = format!("row 26 judged allowed with only {caps:?}");
    wait_for(&what, Duration::from_secs(15), || {
        metric(
            &daemon.metrics(),
            "auditor_connections_total",
            &[("verdict", "allowed"), ("rules", "26")],
        )
        .filter(|n| *n >= 1.0)
    });
    // A degraded mode is a metric and a warning, not silence.
    let text = daemon.metrics();
    let reasons: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("auditor_degraded{") && l.ends_with(" 1"))
        .collect();
    match degraded {
        Some(reason) => assert_eq!(
            reasons,
            vec![format!("auditor_degraded{{reason=\"{reason}\"}} 1").as_str()],
            "{text}"
        ),
        None => assert!(reasons.is_empty(), "{reasons:?}"),
    }
    // The chart's capabilities run the socket iterator too, not just the /proc fallback.
    assert!(
        text.contains("auditor_open_sockets_method{method=\"iterator\"} 1"),
        "the socket iterator did not run with {caps:?}:\n{text}"
    );
    let log = daemon.stop().expect("clean stop");
    assert!(!log.contains("ERROR"), "{log}");
    if let Some(reason) = degraded {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains("degraded") && l.contains(reason)),
            "{log}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn daemon_pid(d: &Daemon) -> u32 {
    // The wrapper execs, so the child's pid is the daemon's.
    d.pid().expect("running")
}

#[test]
fn the_daemon_audits_with_exactly_the_charts_capabilities() {
    if !kernel_tests_enabled("the_daemon_audits_with_exactly_the_charts_capabilities") {
        return;
    }
    let _k = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    let caps = chart_capabilities();
    assert!(caps.contains(&"sys_admin".to_string()), "{caps:?}");
    audits_with(&caps, "chart", None);
    // security.netnsEnrichment=false drops SYS_ADMIN: still auditing.
    let reduced: Vec<String> = caps.into_iter().filter(|c| c != "sys_admin").collect();
    audits_with(&reduced, "no-sys-admin", Some("no_netns_access"));
}
