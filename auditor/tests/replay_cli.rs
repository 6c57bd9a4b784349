//! `auditor replay` as a user without root runs it: the README's minimal flow record,
//! files with bad lines, and the recorded flows in examples/.

use std::{path::PathBuf, process::Command};

use serde_json::Value;

const AUDITOR: &str = env!("CARGO_BIN_EXE_auditor");

mod common;
use common::root;

fn dir(name: &str) -> PathBuf {
    common::dir("replay", name)
}

const INVENTORY: &str = "version: 1\nservices:\n  Tenant Service: {addresses: [10.0.1.0/24]}\n  \
                         Config Service: {addresses: [10.0.2.0/24]}\n";

/// Replays `flows` (bytes, so a test can hand it anything) and returns exit success,
/// the verdicts on stdout and stderr.
fn replay(d: &std::path::Path, flows: &[u8]) -> (bool, Vec<Value>, String) {
    std::fs::write(d.join("inventory.yaml"), INVENTORY).unwrap();
    std::fs::write(d.join("flows.jsonl"), flows).unwrap();
    let out = Command::new(AUDITOR)
        .arg("replay")
        .arg("--allowlist")
        .arg(root().join("allowlist/voice-microservices.yaml"))
        .arg("--inventory")
        .arg(d.join("inventory.yaml"))
        .arg(d.join("flows.jsonl"))
        .output()
        .unwrap();
    let verdicts = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.success(),
        verdicts,
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_minimal_flow_record_replays() {
    let d = dir("minimal");
    let (ok, v, err) = replay(
        &d,
        br#"{"time": "2026-11-26T21:56:51Z", "transport": "tcp", "src_addr": "10.0.1.7", "dst_addr": "10.0.2.7", "dst_port": 9100}
"#,
    );
    assert!(ok, "{err}");
    assert_eq!(v.len(), 1, "{err}");
    assert_eq!(v[0]["verdict"], "allowed");
    assert_eq!(v[0]["rules"], serde_json::json!([26]));
    assert_eq!(v[0]["last_seen"], "2026-11-26T21:56:51.000Z");
    // Without a time, and without a capture's watch lines to place it in, it is not
    // timed "now": it is refused.
    let (ok, v, err) = replay(
        &d,
        br#"{"transport": "tcp", "src_addr": "10.0.1.7", "dst_addr": "10.0.2.7", "dst_port": 9100}
"#,
    );
    assert!(!ok, "{err}");
    assert!(v.is_empty());
    assert!(
        err.contains("no time, and no capture interval to place it in"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_lines_are_reported_by_line_and_a_replay_of_nothing_fails() {
    let d = dir("bad");
    let good = br#"{"time":"2026-11-26T21:56:51Z","transport":"tcp","src_addr":"10.0.1.7","dst_addr":"10.0.2.7","dst_port":9100}"#;
    let mut flows = good.to_vec();
    flows.extend_from_slice(b"\n\xff\xfe not utf-8\n{\"transport\": \"carrier pigeon\"}\n");
    flows.extend_from_slice(good);
    flows.push(b'\n');
    let (ok, v, err) = replay(&d, &flows);
    assert!(ok, "{err}");
    assert_eq!(v.len(), 2, "lines 1 and 4 are judged; {err}");
    let file = d.join("flows.jsonl").display().to_string();
    assert!(
        err.contains(&format!("{file}:2: skipping a line that is not UTF-8")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:3: skipping a bad flow record")),
        "{err}"
    );
    assert!(err.contains("2 bad records skipped"), "{err}");
    // Kept as evidence, the store would claim the span fully audited: nothing is stored.
    let out = Command::new(AUDITOR)
        .arg("replay")
        .arg("--allowlist")
        .arg(root().join("allowlist/voice-microservices.yaml"))
        .arg("--inventory")
        .arg(d.join("inventory.yaml"))
        .arg("--store")
        .arg(d.join("store.db"))
        .arg(d.join("flows.jsonl"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("2 record(s) of"), "{err}");
    assert!(err.contains("nothing stored"), "{err}");
    assert!(
        !d.join("store.db").exists(),
        "a refused replay left a store behind"
    );

    // Every record bad: nothing was judged, and the exit code says so.
    let (ok, v, err) = replay(
        &d,
        b"not json\n{\"time\": 5}\n{\"time\": \"yesterday\", \"transport\": \"tcp\", \"src_addr\": \"10.0.1.7\", \"dst_addr\": \"10.0.2.7\", \"dst_port\": 9100}\n",
    );
    assert!(!ok, "a replay of only bad records must fail: {err}");
    assert!(v.is_empty());
    assert!(
        err.contains("time \"yesterday\" is not an RFC 3339 time"),
        "{err}"
    );
    assert!(
        err.contains("not one of its 3 records could be read"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// Runs `auditor ARGS` in `dir` as a user without root: as `nobody` when the test runs as
/// root (CI does), else as the current user. The binary and the inputs are copied into
/// `dir` first, so nothing depends on who may read the checkout.
fn run_unprivileged(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("auditor");
    if !bin.exists() {
        std::fs::copy(AUDITOR, &bin).unwrap();
    }
    for p in [dir.to_path_buf(), bin] {
        let mode = if p.is_dir() { 0o777 } else { 0o755 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let mut cmd = if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(dir.join("auditor"));
        c
    } else {
        Command::new(dir.join("auditor"))
    };
    cmd.args(args).current_dir(dir).output().unwrap()
}

#[test]
fn the_recorded_examples_replay_without_root() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir("examples");
    for f in ["inventory.yaml", "flows.jsonl", "overrides.yaml"] {
        std::fs::copy(root().join("examples").join(f), d.join(f)).unwrap();
    }
    std::fs::copy(
        root().join("allowlist/voice-microservices.yaml"),
        d.join("allowlist.yaml"),
    )
    .unwrap();
    for f in std::fs::read_dir(&d).unwrap() {
        let p = f.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let policy = [
        "--allowlist",
        "allowlist.yaml",
        "--inventory",
        "inventory.yaml",
        "--overrides",
        "overrides.yaml",
    ];
    let mut args = vec!["replay"];
    args.extend(policy);
    args.push("flows.jsonl");
    let mut stored = args.clone();
    stored.extend(["--store", "store.db"]);
    let out = run_unprivileged(&d, &stored);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let verdicts: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: std::collections::BTreeSet<&str> = verdicts
        .iter()
        .map(|v| v["verdict"].as_str().unwrap())
        .collect();
    for kind in [
        "allowed",
        "port_drift",
        "protocol_drift",
        "undocumented_egress",
        "unknown_destination",
    ] {
        assert!(
            kinds.contains(kind),
            "no {kind} verdict in {kinds:?}: {err}"
        );
    }
    // The recording is the demo: every documented row is allowed by some flow.
    let rows: std::collections::BTreeSet<u64> = verdicts
        .iter()
        .filter(|v| v["verdict"] == "allowed")
        .flat_map(|v| {
            v["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_u64().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 60, "{err}");

    // CI gates on the same recording: it has violations (exit 1) and every documented
    // row is used (never-observed passes, exit 0).
    let gate = |cond: &str| {
        let mut a = args.clone();
        a.extend(["--fail-on", cond]);
        run_unprivileged(&d, &a)
    };
    let out = gate("violations");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fail-on violations"));
    let out = gate("never-observed");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The store it wrote makes a report, still without root: the demo's evidence.
    assert!(err.contains("stored 64 connection(s)"), "{err}");
    let out = run_unprivileged(&d, &["report", "--store", "store.db", "-o", "report.json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        report["summary"]["documented_observed"], 60,
        "{}",
        report["summary"]
    );
    assert_eq!(report["violations"].as_array().unwrap().len(), 4);
    assert_eq!(report["nodes"], serde_json::json!(["replay"]));
    // Replayed again into the same store, the records would count twice: refused.
    let out = run_unprivileged(&d, &stored);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could count records twice"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // explain, also without root: the scripted port drift.
    let mut args = vec!["explain"];
    args.extend(policy);
    args.extend(["--from", "198.18.0.2", "--to", "198.18.0.15:9200"]);
    let out = run_unprivileged(&d, &args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("port_drift"), "{text}");
    std::fs::remove_dir_all(&d).unwrap();
}
