//! The README's main command, end to end: `cargo xtask demo` (which runs the
//! `auditor-demo` binary of this crate after set-up and the build) builds the documented
//! architecture in network namespaces, drives it under `auditor run`, and writes the
//! report. The JSON report must show all 60 documented connections observed and allowed,
//! each scripted violation once with its verdict and row, and nothing else; the HTML
//! must render in a real browser.

use std::process::Command;

use auditor_tests::{
    events::read_valid,
    kernel_tests_enabled,
    topology::{end_name, violation_keys},
    workspace_bin,
};
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
    // The header an auditor accepts: the allowlist's sha256 as loaded, the version, a
    // real period, and the report's own digest.
    let allowlist_sha = auditor::provenance::sha256_hex(
        &std::fs::read(root.join("allowlist/voice-microservices.yaml")).unwrap(),
    );
    assert_eq!(r["inputs"][0]["allowlist_sha256"], allowlist_sha.as_str());
    assert_eq!(r["auditor_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r["inputs"][0]["auditor_version"], env!("CARGO_PKG_VERSION"));
    let (since, until) = (
        r["period"]["since"].as_str().unwrap(),
        r["period"]["until"].as_str().unwrap(),
    );
    assert!(
        since.starts_with("20") && until.starts_with("20") && since < until,
        "a real period: {since} – {until}"
    );
    assert_eq!(r["digest"].as_str().map(str::len), Some(64));
    let report_cmd = |args: &[&str]| {
        Command::new(workspace_bin("auditor"))
            .arg("report")
            .arg("--store")
            .arg(out.join("store.db"))
            .args(args)
            .current_dir(&out)
            .output()
            .unwrap()
    };
    // The CI gate: the demo's scripted violations fail it (1); errors would be 2.
    let gate = report_cmd(&["--fail-on", "violations", "-o", "gate.json"]);
    assert_eq!(
        gate.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&gate.stderr)
    );
    // JUnit: 60 row testcases, one failure per violation edge; Python's parser reads it.
    let junit = report_cmd(&["-o", "junit.xml"]);
    assert!(junit.status.success());
    let py = "import sys, xml.etree.ElementTree as ET\n\
              r = ET.parse(sys.argv[1]).getroot()\n\
              rows = r.findall(\"./testsuite[@name='documented connections']/testcase\")\n\
              v = r.findall(\"./testsuite[@name='violations']/testcase\")\n\
              print(len(rows), len(v), len([t for t in v if t.find('failure') is not None]))";
    let parsed = Command::new("python3")
        .args(["-c", py])
        .arg(out.join("junit.xml"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&parsed.stdout).trim(),
        "60 4 4",
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    for row in rows {
        assert_eq!(
            row["observed"], true,
            "row {} was not observed",
            row["rule"]
        );
        assert!(row["count"].as_u64().unwrap() >= 1);
    }
    assert_eq!(r["summary"]["documented_observed"], 60);
    let v = r["violations"].as_array().unwrap();
    let name = |end: &Value| end_name(end);
    let got = violation_keys(&r);
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
    // Screenshots for a human to look at (kept in out/screens/, git-ignored): the HTML at
    // 1400 and 900 px, and the printed PDF's pages (Letter and A4).
    let screens = root.join("out/screens");
    std::fs::create_dir_all(&screens).unwrap();
    let chrome = |args: &[String]| {
        let o = Command::new(chromium)
            .args(&flags[..flags.len() - 1])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    for w in [1400, 900] {
        let shot = screens.join(format!("report-{w}.png"));
        chrome(&[
            format!("--window-size={w},2000"),
            format!("--screenshot={}", shot.display()),
            url.clone(),
        ]);
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 50_000,
            "the screenshot is nearly empty"
        );
        // Nothing is clipped: the page is no wider than the window. (A copy with a
        // one-line script writes the page's width into the DOM; the report has none.)
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        let probe = out.join(format!("probe-{w}.html"));
        std::fs::write(
            &probe,
            html.replace(
                "</body>",
                "<script>document.body.setAttribute('data-width', document.documentElement.scrollWidth)</script></body>",
            ),
        )
        .unwrap();
        let dom = chrome(&[
            format!("--window-size={w},2000"),
            "--dump-dom".into(),
            format!("file://{}", probe.display()),
        ]);
        let dom = String::from_utf8_lossy(&dom.stdout);
        let width: u32 = dom
            .split("data-width=\"")
            .nth(1)
            .and_then(|x| x.split('"').next())
            .and_then(|x| x.parse().ok())
            .expect("the probe's width");
        assert!(width <= w, "at {w} px the page is {width} px wide: clipped");
    }
    // Printed: Letter (the auditor's --format pdf) and A4; the rows table's header
    // repeats on every page it spans.
    let pdf = report_cmd(&["-o", "report.pdf"]);
    assert!(
        pdf.status.success(),
        "{}",
        String::from_utf8_lossy(&pdf.stderr)
    );
    std::fs::copy(out.join("report.pdf"), screens.join("report-letter.pdf")).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    std::fs::write(
        out.join("a4.html"),
        html.replace("</style>", "@page{size:A4}</style>"),
    )
    .unwrap();
    chrome(&[
        "--no-pdf-header-footer".into(),
        format!("--print-to-pdf={}", screens.join("report-a4.pdf").display()),
        format!("file://{}", out.join("a4.html").display()),
    ]);
    for paper in ["letter", "a4"] {
        let pdf = screens.join(format!("report-{paper}.pdf"));
        let text = Command::new("pdftotext")
            .args(["-layout"])
            .arg(&pdf)
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils)");
        let text = String::from_utf8_lossy(&text.stdout).to_string();
        let pages: Vec<&str> = text
            .split('\u{c}')
            .filter(|p| !p.trim().is_empty())
            .collect();
        assert!(pages.len() >= 3, "{paper}: {} pages", pages.len());
        let with_rows = pages
            .iter()
            .filter(|p| p.contains("Voice SIP Proxy Service") || p.contains("Tenant Service"))
            .count();
        let with_header = pages
            .iter()
            .filter(|p| p.contains("First seen") && p.contains("Observed"))
            .count();
        assert!(
            with_header >= 2,
            "{paper}: the rows table's header is on {with_header} page(s) of {with_rows}"
        );
        let png = screens.join(format!("report-{paper}"));
        let ok = Command::new("pdftoppm")
            .args(["-png", "-r", "60"])
            .arg(&pdf)
            .arg(&png)
            .status()
            .expect("pdftoppm");
        assert!(ok.success());
    }
    std::fs::remove_dir_all(&out).unwrap();
}
