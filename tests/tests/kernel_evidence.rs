//! Evidence that says what it knows, on the real kernel (issue #27): `auditor capture`
//! writes the spans it watched into its stream, a replay of that stream takes its
//! coverage from them, and a store the daemon wrote is live evidence.
//! Tests run one at a time (KERNEL lock): they share the kernel's hooks.

use std::{process::Command, sync::Mutex, time::Duration};

use auditor_tests::{
    kernel_tests_enabled, lab::VoiceLab, peer::client, peer::serve, services::Daemon, workspace_bin,
};
use serde_json::Value;

static KERNEL: Mutex<()> = Mutex::new(());

/// A watch line's time: RFC 3339 UTC with milliseconds, so its text sorts as its time.
fn time(v: &Value) -> &str {
    let t = v.as_str().expect("a time");
    assert!(t.len() == 24 && t.ends_with('Z'), "{t}");
    t
}

#[test]
fn capture_writes_its_watch_spans_and_a_replay_of_it_knows_its_coverage() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("capture_writes_its_watch_spans_and_a_replay_of_it_knows_its_coverage")
    {
        return;
    }
    let VoiceLab { lab, dir } = VoiceLab::new("evidence-capture");
    let out = Command::new(workspace_bin("auditor"))
        .args(["capture", "--duration", "3s", "--node", "kernel-node"])
        .output()
        .expect("auditor capture");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let watches: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON lines"))
        .filter_map(|v| v.get("watch").cloned())
        .collect();
    assert!(!watches.is_empty(), "no watch line in:\n{stdout}\n{stderr}");
    for w in &watches {
        assert!(time(&w["start"]) < time(&w["end"]), "{w}");
        assert_eq!(w["node"], "kernel-node", "{w}");
        assert!(!w["kernel"].as_str().unwrap_or("").is_empty(), "{w}");
        assert!(w["drops"]["ringbuf_full"].is_u64(), "{w}");
    }
    // Spans follow each other: no time counted twice, none left out.
    for pair in watches.windows(2) {
        assert_eq!(pair[0]["end"], pair[1]["start"], "{watches:#?}");
    }
    // The last span closes the stream.
    let last = stdout.lines().last().unwrap();
    assert!(last.contains("\"watch\""), "{last}");

    // Replayed into a store: its coverage is those spans, and it says it was replayed.
    std::fs::write(dir.join("flows.jsonl"), &stdout).unwrap();
    let bin = workspace_bin("auditor");
    let o = Command::new(&bin)
        .current_dir(&dir)
        .args([
            "replay",
            "--allowlist",
            "allowlist.yaml",
            "--inventory",
            "inventory.yaml",
            "flows.jsonl",
            "--store",
            "s.db",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(&bin)
        .current_dir(&dir)
        .args(["report", "--store", "s.db"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["capture"]["mode"], "replay");
    assert_eq!(r["coverage"]["known"], true);
    assert_eq!(r["nodes"], serde_json::json!(["kernel-node"]));
    assert_eq!(r["period"]["since"], watches[0]["start"]);
    assert_eq!(r["period"]["until"], watches.last().unwrap()["end"]);
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_store_the_daemon_wrote_is_live_evidence() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("a_store_the_daemon_wrote_is_live_evidence") {
        return;
    }
    let VoiceLab { lab, dir } = VoiceLab::new("evidence-live");
    let p = |f: &str| dir.join(f).display().to_string();
    let daemon = Daemon::start(
        &[
            "--allowlist".into(),
            p("allowlist.yaml"),
            "--inventory".into(),
            p("inventory.yaml"),
            "--node".into(),
            "live-node".into(),
            "--store-flush".into(),
            "200ms".into(),
            "--events".into(),
            p("events.jsonl"),
            "--store".into(),
            p("s.db"),
        ],
        dir.join("daemon.log"),
    )
    .expect("daemon");
    let config = lab.host("config").v4.to_string();
    let server = serve(&lab, "config", &["listen", "tcp", &config, "9100", "1"]);
    client(&lab, "tenant", &["connect", &config, "9100"]);
    let _ = auditor_tests::peer::finish(server);
    std::thread::sleep(Duration::from_secs(1));
    daemon.stop().expect("clean stop");
    let bin = workspace_bin("auditor");
    let report = |extra: &[&str]| {
        Command::new(&bin)
            .current_dir(&dir)
            .args(["report", "--store", "s.db"])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = report(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["capture"]["mode"], "live", "{:#}", r["capture"]);
    assert_eq!(r["capture"]["nodes"], serde_json::json!(["live-node"]));
    assert_eq!(
        r["capture"]["statement"],
        "live capture on 1 node (live-node)"
    );
    let o = report(&["--fail-on", "replayed", "-o", "r.json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
}
