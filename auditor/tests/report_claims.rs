//! What a report claims, checked as a user makes one: the bundled recording replayed into
//! a store with the auditor binary, then reported in every format. Rows judged on any
//! port say so, watched time reads the same everywhere, expected nodes that never
//! reported are gaps, and a path that is no store is named for what it is.

use std::{path::Path, process::Command};

use auditor::report::Report;

const AUDITOR: &str = env!("CARGO_BIN_EXE_auditor");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("auditor-claims-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn auditor(args: &[&str]) -> std::process::Output {
    Command::new(AUDITOR)
        .args(args)
        .current_dir(ROOT)
        .output()
        .unwrap()
}

fn ok(o: std::process::Output) -> std::process::Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// The bundled recording replayed into a store, with the demo's overrides or without.
fn replayed(d: &Path, overrides: bool) -> String {
    replayed_as(d, overrides, "replay")
}

/// As `replayed`, stored under `node`.
fn replayed_as(d: &Path, overrides: bool, node: &str) -> String {
    let store = d
        .join(format!(
            "{node}-{}.db",
            if overrides { "with" } else { "without" }
        ))
        .display()
        .to_string();
    // The bundled recording with the watch line `auditor capture` writes after it: the
    // span its records are complete for (issue 27: without one, coverage is unknown).
    let flows = d.join(format!("{node}-flows.jsonl"));
    let mut text = std::fs::read_to_string(Path::new(ROOT).join("examples/flows.jsonl")).unwrap();
    text.push_str(&format!(
        r#"{{"watch":{{"node":"{node}","auditor_version":"0.1.0","kernel":"6.18.0","start":"2026-11-26T21:56:51.981Z","end":"2026-11-26T21:56:52.762Z","drops":{{"ringbuf_full":0,"connections_lost":0,"flow_insert_failed":0}}}}}}"#
    ));
    text.push('\n');
    std::fs::write(&flows, text).unwrap();
    let flows = flows.display().to_string();
    let mut args = vec![
        "replay",
        "--node",
        node,
        "--allowlist",
        "allowlist/voice-microservices.yaml",
        "--inventory",
        "examples/inventory.yaml",
        &flows,
        "--store",
        &store,
    ];
    if overrides {
        args.extend(["--overrides", "examples/overrides.yaml"]);
    }
    ok(auditor(&args));
    store
}

/// The report of `store` in `format`, with `extra` arguments.
fn report(store: &str, format: &str, extra: &[&str]) -> String {
    let mut args = vec!["report", "--store", store, "--format", format];
    args.extend(extra);
    String::from_utf8(ok(auditor(&args)).stdout).unwrap()
}

/// A Markdown table row of the documented connections, by its number.
fn md_row(md: &str, n: u32) -> String {
    md.lines()
        .find(|l| l.starts_with(&format!("| {n} | ")))
        .unwrap_or_else(|| panic!("row {n} in {md}"))
        .to_string()
}

#[test]
fn rows_judged_on_any_port_are_observed_port_not_verified_in_every_format() {
    let d = dir("unverified");
    // Without the overrides, rows 24 and 59 (the document gives no port) match any port.
    let store = replayed(&d, false);
    let r: Report = serde_json::from_str(&report(&store, "json", &[])).unwrap();
    let unverified: Vec<u32> = r
        .rows
        .iter()
        .filter(|x| x.observed && !x.port_verified)
        .filter_map(|x| x.rule)
        .collect();
    assert_eq!(unverified, [24, 59]);
    assert_eq!(r.summary.documented_observed_port_unverified, 2);
    assert!(
        r.summary
            .headline
            .contains("(2 of them observed, port not verified)"),
        "{}",
        r.summary.headline
    );
    // Recorded with the inputs the observations were judged under.
    assert_eq!(r.inputs[0].rules_port_unverified, Some(vec![24, 59]));
    let md = report(&store, "markdown", &[]);
    for n in [24, 59] {
        assert!(
            md_row(&md, n).contains("| observed, port not verified |"),
            "{}",
            md_row(&md, n)
        );
    }
    assert!(md_row(&md, 26).contains("| yes |"), "{}", md_row(&md, 26));
    assert!(md.contains("| Observed, port not verified | 2 "), "{md}");
    let html = report(&store, "html", &[]);
    assert_eq!(
        html.matches("<td>observed, port not verified</td>").count(),
        2
    );
    assert!(html.contains("<b>2</b><span>observed, port not verified</span>"));
    // JUnit: a skipped case with the reason as its message, which CI lists (a pass it
    // does not); the suite counts it.
    let xml = report(&store, "junit", &[]);
    let case = |n: u32| {
        xml.lines()
            .find(|l| l.contains(&format!("name=\"row {n}: ")))
            .unwrap()
            .to_string()
    };
    for n in [24, 59] {
        assert!(
            case(n).contains("<skipped message=\"observed, port not verified"),
            "{}",
            case(n)
        );
    }
    assert!(!case(26).contains("<skipped"), "{}", case(26));
    assert!(xml.contains("<property name=\"documented_observed_port_unverified\" value=\"2\"/>"));
    assert!(xml.contains("skipped=\"2\""), "{xml}");

    // With the demo's overrides (24: 443, 59: 5060) their ports are checked: plain yes.
    let store = replayed(&d, true);
    let r: Report = serde_json::from_str(&report(&store, "json", &[])).unwrap();
    assert!(r.rows.iter().all(|x| x.port_verified));
    assert_eq!(r.summary.documented_observed_port_unverified, 0);
    assert!(!r.summary.headline.contains("not verified"));
    assert_eq!(r.inputs[0].rules_port_unverified, Some(vec![]));
    let md = report(&store, "markdown", &[]);
    for n in [24, 59] {
        assert!(md_row(&md, n).contains("| yes |"), "{}", md_row(&md, n));
    }
    assert!(!md.contains("port not verified"));
    // No row is skipped (a replayed store's controls are, in their own suite).
    let xml = report(&store, "junit", &[]);
    let before_controls = xml.split("<testsuite name=\"controls\"").next().unwrap();
    assert!(!before_controls.contains("<skipped"), "{xml}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn watched_time_reads_the_same_in_every_format() {
    let d = dir("durations");
    let store = replayed(&d, true);
    let r: Report = serde_json::from_str(&report(&store, "json", &[])).unwrap();
    let watched = auditor::model::time::duration_text(r.coverage.watched_seconds);
    assert!(r.coverage.watched_seconds > 0.0);
    // The recording is under a second: "<1 s", never "0s" or "1 s".
    assert_eq!(watched, "<1 s");
    assert!(
        r.summary.headline.contains("watched <1 s ("),
        "{}",
        r.summary.headline
    );
    let md = report(&store, "markdown", &[]);
    // Markdown escapes `<` and `(` (text from outside is made inert).
    assert!(
        md.contains("\\(&lt;1 s watched, 0 s with connections lost"),
        "{md}"
    );
    assert!(md.contains("watched &lt;1 s \\("), "{md}");
    let html = report(&store, "html", &[]);
    assert!(html.contains("(&lt;1 s watched, 0 s with connections lost"));
    assert!(html.contains("watched &lt;1 s ("));
    assert!(html.contains("<b>&lt;1 s</b><span>watched</span>"));
    for text in [&md, &html] {
        assert!(!text.contains("0s") && !text.contains(" 1 s watched"));
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn an_expected_node_that_never_reported_is_a_gap_over_the_whole_period() {
    let d = dir("expected");
    let store = replayed(&d, true);
    let plain: Report = serde_json::from_str(&report(&store, "json", &[])).unwrap();
    assert!(plain.coverage.expected_nodes.is_empty() && plain.coverage.missing_nodes.is_empty());
    assert_eq!(plain.coverage.fraction, Some(1.0));

    let args = ["--expect-nodes", "replay,node-b"];
    let r: Report = serde_json::from_str(&report(&store, "json", &args)).unwrap();
    assert_eq!(r.coverage.expected_nodes, ["node-b", "replay"]);
    assert_eq!(r.coverage.missing_nodes, ["node-b"]);
    // Two nodes expected, one watched the whole period: half of it audited.
    assert_eq!(r.coverage.fraction, Some(0.5));
    let gap = r
        .coverage
        .gaps
        .iter()
        .find(|g| g.node == "node-b")
        .expect("a gap for node-b");
    assert_eq!(
        (gap.start.as_str(), gap.end.as_str(), gap.reason.as_str()),
        (
            r.period.since.as_str(),
            r.period.until.as_str(),
            "never_reported"
        )
    );
    assert_eq!(r.summary.status, "violations");
    assert!(
        r.summary
            .headline
            .contains("across 1 node(s) (1 of 2 expected nodes never reported: node-b)"),
        "{}",
        r.summary.headline
    );
    let md = report(&store, "markdown", &args);
    assert!(
        md.contains("| Expected nodes | 1 of 2 expected nodes never reported: node-b"),
        "{md}"
    );
    assert!(md.contains("| node-b | "), "{md}");
    assert!(md.contains("expected node never reported"), "{md}");
    let xml = report(&store, "junit", &args);
    assert!(xml.contains("<property name=\"missing_nodes\" value=\"node-b\"/>"));
    // A gate on unaudited time fails on it; with every node there it does not.
    let gate = |nodes: &str| {
        auditor(&[
            "report",
            "--store",
            &store,
            "--format",
            "json",
            "--expect-nodes",
            nodes,
            "--fail-on",
            "unaudited",
        ])
        .status
        .code()
    };
    assert_eq!(gate("replay,node-b"), Some(1));
    assert_eq!(gate("replay"), Some(0));
    // Refused, not ignored: an empty name or one given twice.
    for bad in ["replay,,node-b", "replay,replay"] {
        let o = auditor(&["report", "--store", &store, "--expect-nodes", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("--expect-nodes"));
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_path_that_is_no_store_is_named_for_what_it_is() {
    let d = dir("nostore");
    let report_on = |p: &Path| {
        let o = auditor(&["report", "--store", &p.display().to_string()]);
        assert_eq!(o.status.code(), Some(2));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let e = report_on(&d);
    assert!(
        e.contains(&format!("{} is a directory, not a store file", d.display())),
        "{e}"
    );
    assert!(!e.contains("disk I/O"), "{e}");
    let empty = d.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let e = report_on(&empty);
    assert!(
        e.contains(&format!(
            "{} is empty: not a store (a store is made by auditor run or replay --store)",
            empty.display()
        )),
        "{e}"
    );
    assert!(!e.contains("not one auditor wrote"), "{e}");
    let text = d.join("notes.txt");
    std::fs::write(&text, "these are notes, not a database\n".repeat(40)).unwrap();
    let e = report_on(&text);
    assert!(
        e.contains(&format!(
            "{}: not an auditor store (it is not an SQLite database)",
            text.display()
        )),
        "{e}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// Merged across nodes, a row judged on any port on one node is unverified in the
/// cluster report, and `--expect-nodes` names the node no report came from.
#[test]
fn a_cluster_report_keeps_unverified_rows_and_missing_nodes() {
    let d = dir("merged");
    let a = replayed_as(&d, true, "node-a");
    let b = replayed_as(&d, false, "node-b");
    let (ja, jb) = (d.join("a.json"), d.join("b.json"));
    std::fs::write(&ja, report(&a, "json", &[])).unwrap();
    std::fs::write(&jb, report(&b, "json", &[])).unwrap();
    let (ja, jb) = (ja.display().to_string(), jb.display().to_string());
    let merged = String::from_utf8(
        ok(auditor(&[
            "report",
            "--merge",
            &ja,
            &jb,
            "--format",
            "json",
            "--expect-nodes",
            "node-a,node-b,node-c",
        ]))
        .stdout,
    )
    .unwrap();
    let r: Report = serde_json::from_str(&merged).unwrap();
    assert_eq!(r.nodes, ["node-a", "node-b"]);
    let unverified: Vec<u32> = r
        .rows
        .iter()
        .filter(|x| !x.port_verified)
        .filter_map(|x| x.rule)
        .collect();
    assert_eq!(unverified, [24, 59]);
    assert_eq!(r.summary.documented_observed_port_unverified, 2);
    assert_eq!(r.coverage.missing_nodes, ["node-c"]);
    assert!(
        r.summary
            .headline
            .contains("(1 of 3 expected nodes never reported: node-c)"),
        "{}",
        r.summary.headline
    );
    std::fs::remove_dir_all(&d).unwrap();
}
