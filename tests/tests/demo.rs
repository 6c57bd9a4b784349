//! The README's main command, end to end: `cargo xtask demo` (which runs the
//! `auditor-demo` binary of this crate after set-up and the build) builds the documented
//! architecture in network namespaces, drives it under `auditor run`, and writes the
//! report. The JSON report must show all 60 documented connections observed and allowed,
//! each scripted violation once with its verdict and row, and nothing else; the HTML
//! must render in a real browser.

use std::process::Command;

use auditor_tests::{events::read_valid, kernel_tests_enabled, workspace_bin};
use serde_json::Value;

#[test]
fn the_demo_observes_every_documented_connection_and_exactly_the_scripted_violations() {
    if !kernel_tests_enabled(
        "the_demo_observes_every_documented_connection_and_exactly_the_scripted_violations",
    ) {
        return;
    }
    let out = std::env::temp_dir().join(format!("auditor-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let bin_dir = workspace_bin("auditor").parent().unwrap().to_path_buf();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let run = Command::new(workspace_bin("auditor-demo"))
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--root")
        .arg(root)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("auditor-demo");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("report.html") && stdout.contains("namespaces removed"),
        "{stdout}"
    );
    // It cleaned up after itself: the demo's namespaces (one is always "…-stranger") are gone.
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&netns.stdout);
    assert!(
        !left.lines().any(|l| l.contains("-stranger")),
        "namespaces left behind:\n{left}"
    );

    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 60);
    for row in rows {
        assert_eq!(
            row["observed"], true,
            "row {} was not observed",
            row["number"]
        );
        assert!(row["count"].as_u64().unwrap() >= 1);
    }
    assert_eq!(r["summary"]["documented_observed"], 60);
    let v = r["violations"].as_array().unwrap();
    // An end is named by its service, or its address when it is not attributed.
    let name = |end: &Value| {
        end["service"]
            .as_str()
            .or(end["addr"].as_str())
            .unwrap()
            .to_string()
    };
    let mut got: Vec<(String, String, String, u64, Vec<u64>)> = v
        .iter()
        .map(|x| {
            (
                x["verdict"].as_str().unwrap().to_string(),
                name(&x["src"]),
                name(&x["dst"]),
                x["dst"]["port"].as_u64().unwrap(),
                x["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_u64().unwrap())
                    .collect(),
            )
        })
        .collect();
    got.sort();
    let stranger = got
        .iter()
        .find(|g| g.0 == "unknown_destination")
        .map(|g| g.2.clone())
        .unwrap_or_default();
    let mut want = vec![
        (
            "port_drift".to_string(),
            "Tenant Service".to_string(),
            "Config Service".to_string(),
            9200,
            vec![26],
        ),
        (
            "protocol_drift".into(),
            "Voice SIP Proxy Service".into(),
            "WebRTC Media Service".into(),
            5070,
            vec![57],
        ),
        (
            "undocumented_egress".into(),
            "Genesys Engagement Service".into(),
            "Redis".into(),
            6379,
            vec![],
        ),
        (
            "unknown_destination".into(),
            "Tenant Service".into(),
            stranger.clone(),
            443,
            vec![],
        ),
    ];
    want.sort();
    assert_eq!(
        got, want,
        "exactly the scripted violations, nothing else: {v:#?}"
    );
    assert!(
        stranger.starts_with("198.18.0."),
        "the unknown destination is the stranger's address: {stranger}"
    );
    for x in v {
        assert_eq!(x["count"], 1, "each scripted violation once: {x}");
    }
    let unknown = v
        .iter()
        .find(|x| x["verdict"] == "unknown_destination")
        .unwrap();
    assert_eq!(unknown["dst"]["service"], Value::Null, "{unknown}");

    // Every event line the daemon wrote validates against docs/event.schema.json, and the
    // scripted violations are among them, in the same vocabulary as the report.
    let events = read_valid(&out.join("events.jsonl"));
    for (verdict, src, dst, port, _) in &want {
        assert!(
            events.iter().any(|e| e["verdict"] == verdict.as_str()
                && name(&e["src"]) == *src
                && name(&e["dst"]) == *dst
                && e["dst"]["port"] == *port),
            "no event for {verdict} {src} -> {dst}:{port}: {events:#?}"
        );
    }
    assert!(out.join("report.md").exists());

    // The HTML opens offline in a real browser and shows the diagram.
    let chromium = std::path::Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "chromium is missing: `cargo xtask setup` installs it"
    );
    let profile = out.join("chromium-profile");
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1400,1500",
    ];
    let url = format!("file://{}", out.join("report.html").display());
    let dom = Command::new(chromium)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("class=\"node\"").count(),
        29,
        "28 services and the unknown address in the diagram"
    );
    assert_eq!(dom.matches("class=\"edge violation\"").count(), 4);
    assert!(dom.contains("60 of 60 documented connections observed"));
    let shot = out.join("report.png");
    let s = Command::new(chromium)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 50_000,
        "the screenshot is nearly empty"
    );
    std::fs::remove_dir_all(&out).unwrap();
}
