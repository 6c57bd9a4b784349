//! Reports from a store as the daemon leaves it: per documented row, violations, coverage
//! with drops, merging per-node reports, the three formats, and clear errors.

use std::process::Command;

use auditor::{
    edge::{Direction, Documented, Drops, Edge, Endpoint, Process, Transport},
    model::Verdict,
    report,
    store::{Batch, CoverageUpdate, RowDelta, Store},
};

const AUDITOR: &str = env!("CARGO_BIN_EXE_auditor");
const ALLOWLIST: &str = include_str!("../../allowlist/voice-microservices.yaml");

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("auditor-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The content digest of the bundled allowlist's row `n`, as the daemon stores it.
fn digest(n: u32) -> String {
    let list = allowlist::file::parse(ALLOWLIST, "a.yaml").unwrap();
    auditor::provenance::row_sha256(list.connection(n).unwrap())
}

/// A store like one node's after a day: rows 26 and 9 seen, a port drift from row 26,
/// and an hour in which the kernel lost connections.
fn store_for(node: &str, path: &std::path::Path, drift_count: u64) {
    let mut s = Store::open(path).unwrap();
    let list = allowlist::file::parse(ALLOWLIST, "a.yaml").unwrap();
    s.set_allowlist(&allowlist::file::to_json(&list)).unwrap();
    let mut b = Batch::default();
    let end = |service: &str, port: Option<u16>| Endpoint {
        service: Some(service.into()),
        port,
        ..Endpoint::default()
    };
    let edge = |verdict, dst_port, count, first_seen, last_seen| Edge {
        verdict,
        rules: vec![26],
        transport: Transport::Tcp,
        direction: Direction::Egress,
        documented: None,
        platform: None,
        mesh_leg: None,
        src: end("Tenant Service", None),
        dst: end("Config Service", Some(dst_port)),
        process: None,
        count,
        first_seen,
        last_seen,
    };
    b.add_edge(edge(Verdict::Allowed, 9100, 40, 1_000, 86_000_000));
    b.add_row(
        26,
        &digest(26),
        RowDelta {
            count: 40,
            first_seen_ms: 1_000,
            last_seen_ms: 86_000_000,
            example_src: Some("Tenant Service".into()),
            example_comm: Some("tenant".into()),
        },
    );
    b.add_row(
        9,
        &digest(9),
        RowDelta {
            count: 3,
            first_seen_ms: 5_000,
            last_seen_ms: 9_000,
            example_src: Some("Tenant Service".into()),
            example_comm: Some("tenant".into()),
        },
    );
    let mut drift = edge(Verdict::PortDrift, 9200, drift_count, 7_200_000, 7_300_000);
    drift.documented = Some(Documented {
        ports: vec!["9100".into()],
        transport: "tcp".into(),
    });
    drift.dst.addr = Some("10.0.2.7".parse().unwrap());
    drift.process = Some(Process {
        pid: 42,
        comm: "tenant".into(),
        cgroup: None,
    });
    b.add_edge(drift);
    b.coverage = Some(CoverageUpdate {
        session_start_ms: 0,
        start_ms: 0,
        end_ms: 3_600_000,
        ..Default::default()
    });
    s.commit(node, &b).unwrap();
    let mut drops = Batch::default();
    drops.coverage = Some(CoverageUpdate {
        session_start_ms: 0,
        start_ms: 3_600_000,
        end_ms: 7_200_000,
        drops: Drops {
            connections_lost: 12,
            ..Drops::default()
        },
    });
    s.commit(node, &drops).unwrap();
}

#[test]
fn a_report_cites_every_documented_row_and_every_violation() {
    let d = dir("one");
    store_for("node-a", &d.join("s.db"), 5);
    let r = report::from_store(
        &Store::open_existing(&d.join("s.db")).unwrap(),
        None,
        None,
        None,
    )
    .unwrap();
    assert_eq!(r.schema, "auditor-report/8");
    assert_eq!(r.rows.len(), 60);
    let row26 = r.rows.iter().find(|x| x.rule == Some(26)).unwrap();
    assert!(
        row26.observed && row26.count == 40 && row26.nodes == vec!["node-a".to_string()],
        "{row26:?}"
    );
    assert_eq!(row26.examples, vec!["Tenant Service (tenant)".to_string()]);
    assert!(!r.rows.iter().find(|x| x.rule == Some(57)).unwrap().observed);
    assert_eq!(r.summary.documented_observed, 2);
    assert_eq!(r.summary.documented_not_observed.len(), 58);
    assert_eq!(r.violations.len(), 1);
    let v = &r.violations[0];
    assert_eq!(
        (
            v.edge.verdict.as_str(),
            v.edge.dst.port,
            v.edge.count,
            v.edge.rules.clone()
        ),
        ("port_drift", Some(9200), 5, vec![26])
    );
    assert_eq!(
        v.edge
            .documented
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("tcp/9100")
    );
    // The JSON speaks the event vocabulary: src/dst objects with service, addr and port.
    let json = serde_json::to_value(v).unwrap();
    assert_eq!(json["src"]["service"], "Tenant Service");
    assert_eq!(
        (
            &json["dst"]["service"],
            &json["dst"]["addr"],
            &json["dst"]["port"]
        ),
        (&"Config Service".into(), &"10.0.2.7".into(), &9200.into())
    );
    assert_eq!(json["process"]["pid"], 42);
    // One clean hour and one with drops: shown as not fully audited.
    assert_eq!(r.coverage.watched_seconds, 7200.0);
    assert_eq!(r.coverage.incomplete_seconds, 3600.0);
    assert!(!r.coverage.intervals[1].fully_audited);
    assert_eq!(r.summary.status, "violations");
    assert!(
        r.summary
            .headline
            .contains("2 of 60 documented connections observed"),
        "{}",
        r.summary.headline
    );

    let md = report::markdown::render(&r);
    assert!(
        md.contains("| 26 | Tenant Service | Config Service | HTTP | 9100 | yes | 40 |"),
        "{md}"
    );
    assert!(md.contains(
        "| 57 | Voice SIP Proxy Service | WebRTC Media Service | SIP/UDP | 5070 | **never** |"
    ));
    let html = report::html::render(&r);
    assert!(
        html.contains("<svg")
            && html.contains(">port drift</tspan>")
            && html.contains(">tcp/9200</tspan>")
    );
    // Self-contained: nothing to fetch, nothing to run.
    for banned in [
        "<script",
        "<link",
        "src=\"http",
        "href=\"http",
        "@import",
        "url(http",
    ] {
        assert!(!html.contains(banned), "the HTML refers to {banned}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn per_node_reports_merge_into_one_cluster_report() {
    let d = dir("merge");
    store_for("node-a", &d.join("a.db"), 5);
    store_for("node-b", &d.join("b.db"), 7);
    for (n, db) in [("a", "a.db"), ("b", "b.db")] {
        let out = Command::new(AUDITOR)
            .args(["report", "--store"])
            .arg(d.join(db))
            .args(["--format", "json", "-o"])
            .arg(d.join(format!("{n}.json")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(AUDITOR)
        .args(["report", "--merge"])
        .arg(d.join("a.json"))
        .arg(d.join("b.json"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: report::Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.nodes, vec!["node-a".to_string(), "node-b".to_string()]);
    let row26 = r.rows.iter().find(|x| x.rule == Some(26)).unwrap();
    assert_eq!((row26.count, row26.nodes.len()), (80, 2));
    assert_eq!(r.violations.len(), 1);
    assert_eq!(
        (r.violations[0].edge.count, r.violations[0].nodes.len()),
        (12, 2)
    );
    assert_eq!(r.coverage.intervals.len(), 4);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_output_file_name_picks_the_format() {
    let d = dir("infer");
    store_for("node-a", &d.join("s.db"), 5);
    let write = |name: &str, extra: &[&str]| {
        let out = Command::new(AUDITOR)
            .args(["report", "--store"])
            .arg(d.join("s.db"))
            .args(extra)
            .arg("-o")
            .arg(d.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            std::fs::read_to_string(d.join(name)).unwrap(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert!(write("r.html", &[]).0.starts_with("<!DOCTYPE html>"));
    assert!(write("r.HTM", &[]).0.starts_with("<!DOCTYPE html>"));
    assert!(write("r.md", &[]).0.starts_with("# "));
    assert!(write("r.json", &[]).0.starts_with('{'));
    // An explicit --format wins over the name.
    assert!(write("r2.html", &["--format", "json"]).0.starts_with('{'));
    // A name that says nothing: JSON, and the user is told.
    let (text, err) = write("report.out", &[]);
    assert!(text.starts_with('{'));
    assert!(err.contains("writing JSON (give --format)"), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn empty_corrupt_or_unknown_inputs_fail_clearly() {
    let d = dir("errors");
    Store::open(&d.join("empty.db")).unwrap();
    let run = |args: &[&str]| {
        Command::new(AUDITOR)
            .args(args)
            .current_dir(&d)
            .output()
            .unwrap()
    };
    let out = run(&[
        "report",
        "--store",
        "empty.db",
        "--allowlist",
        "../missing.yaml",
    ]);
    assert!(!out.status.success());
    let out = run(&["report", "--store", "empty.db"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not say which allowlist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(d.join("a.yaml"), ALLOWLIST).unwrap();
    let out = run(&["report", "--store", "empty.db", "--allowlist", "a.yaml"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the store has no observations"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        d.join("corrupt.db"),
        b"definitely not a database, just some bytes on a disk",
    )
    .unwrap();
    let out = run(&["report", "--store", "corrupt.db"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("corrupt.db: not an auditor store (it is not an SQLite database)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["report", "--store", "nowhere.db"]);
    assert_eq!(out.status.code(), Some(2), "errors exit 2");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nowhere.db: cannot read: no such file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No input at all: every way to give one is named.
    let out = run(&["report"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for way in ["--store", "--merge", "--collect", "--schema"] {
        assert!(err.contains(way), "{way} not named:\n{err}");
    }
    let out = run(&["report", "--store", "empty.db", "--format", "docx"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid value 'docx'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["report", "--store", "empty.db", "--format", "pdf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--format pdf needs -o FILE.pdf"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_committed_report_schema_matches_the_report_type() {
    let committed = include_str!("../../docs/report.schema.json");
    assert!(
        committed == report::schema_json(),
        "docs/report.schema.json is stale: run `cargo xtask render` (or `auditor schema report > docs/report.schema.json`)"
    );
}

fn auditor(d: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(AUDITOR)
        .args(args)
        .current_dir(d)
        .output()
        .unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A store that saw only documented traffic, fully audited for an hour.
fn clean_store(path: &std::path::Path) {
    let mut s = Store::open(path).unwrap();
    let list = allowlist::file::parse(ALLOWLIST, "a.yaml").unwrap();
    s.set_allowlist(&allowlist::file::to_json(&list)).unwrap();
    let mut b = Batch::default();
    b.add_row(
        26,
        &digest(26),
        RowDelta {
            count: 4,
            first_seen_ms: 1_000,
            last_seen_ms: 2_000,
            example_src: Some("Tenant Service".into()),
            example_comm: Some("tenant".into()),
        },
    );
    b.coverage = Some(CoverageUpdate {
        session_start_ms: 0,
        start_ms: 0,
        end_ms: 3_600_000,
        ..Default::default()
    });
    s.commit("node-a", &b).unwrap();
}

#[test]
fn fail_on_gives_exit_1_when_its_condition_holds_and_errors_exit_2() {
    let d = dir("fail-on");
    store_for("node-a", &d.join("s.db"), 5);
    clean_store(&d.join("clean.db"));
    let code = |args: &[&str]| auditor(&d, args).status.code();
    assert_eq!(
        code(&["report", "--store", "s.db", "-o", "r.json"]),
        Some(0)
    );
    for cond in ["violations", "never-observed", "unaudited"] {
        let out = auditor(
            &d,
            &[
                "report",
                "--store",
                "s.db",
                "--fail-on",
                cond,
                "-o",
                "r.json",
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "--fail-on {cond}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(&format!("--fail-on {cond}")),
            "{}",
            stderr(&out)
        );
        // The report is still written for the CI artefact.
        assert!(d.join("r.json").exists());
    }
    // A clean store passes every gate but never-observed (it saw 1 of 60 rows).
    assert_eq!(
        code(&[
            "report",
            "--store",
            "clean.db",
            "--fail-on",
            "violations,unaudited"
        ]),
        Some(0)
    );
    assert_eq!(
        code(&[
            "report",
            "--store",
            "clean.db",
            "--fail-on",
            "never-observed"
        ]),
        Some(1)
    );
    // Errors are 2, not 1: a CI gate can tell "violations" from "could not check".
    assert_eq!(
        code(&["report", "--store", "missing.db", "--fail-on", "violations"]),
        Some(2)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn junit_has_a_testcase_per_documented_row_and_a_failure_per_violation_edge() {
    let d = dir("junit");
    store_for("node-a", &d.join("s.db"), 5);
    let out = auditor(&d, &["report", "--store", "s.db", "-o", "junit.xml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A real JUnit consumer: Python's XML parser, reading it as CI tools do.
    let py = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
rows = root.findall("./testsuite[@name='documented connections']/testcase")
viol = root.findall("./testsuite[@name='violations']/testcase")
failed_rows = [t.get("name") for t in rows if t.find("failure") is not None]
skipped = [t for t in rows if t.find("skipped") is not None]
print(len(rows), len(skipped), len(viol), sum(1 for t in viol if t.find("failure") is not None))
print("|".join(failed_rows))
print(viol[0].get("name"))
"#;
    let parsed = Command::new("python3")
        .args(["-c", py])
        .arg(d.join("junit.xml"))
        .output()
        .expect("python3");
    assert!(parsed.status.success(), "{}", stderr(&parsed));
    let text = String::from_utf8_lossy(&parsed.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    // 60 rows; 58 never observed are skipped; one violation edge, failed.
    assert_eq!(lines[0], "60 58 1 1", "{text}");
    // Row 26 is the drift's closest row: failed.
    assert_eq!(
        lines[1], "row 26: Tenant Service -> Config Service tcp/9100",
        "{text}"
    );
    assert_eq!(
        lines[2],
        "port_drift Tenant Service -> Config Service tcp/9200"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

const OTHER: &str = "version: 1
document:
  title: Web shop
services:
- name: Web
  kind: service
- name: API
  kind: service
connections:
- number: 1
  source: Web
  destination: API
  protocol: HTTPS
  transport: tcp
  ports: [443]
  classification: intra-cluster
  description: Web calls the API.
- number: 2
  source: API
  destination: Web
  protocol: HTTP
  transport: tcp
  ports: [80]
  classification: intra-cluster
  description: Callbacks.
";

#[test]
fn another_allowlist_is_refused_never_credited_by_row_number() {
    let d = dir("other");
    store_for("node-a", &d.join("s.db"), 5);
    std::fs::write(d.join("other.yaml"), OTHER).unwrap();
    // The issue's repro: a two-row Web -> API allowlist against the store.
    let out = auditor(
        &d,
        &["report", "--store", "s.db", "--allowlist", "other.yaml"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "other.yaml is not the allowlist this store's observations were judged against"
        ),
        "{err}"
    );
    assert!(err.contains("row 1: Web -> API tcp/443 vs "), "{err}");
    assert!(out.stdout.is_empty(), "nothing is reported");
    // The same rows in another layout (the JSON form) are the same allowlist: accepted.
    let list = allowlist::file::parse(ALLOWLIST, "a.yaml").unwrap();
    std::fs::write(d.join("same.json"), allowlist::file::to_json(&list)).unwrap();
    let out = auditor(
        &d,
        &["report", "--store", "s.db", "--allowlist", "same.json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn merging_the_same_report_twice_counts_it_once() {
    let d = dir("idem");
    store_for("node-a", &d.join("s.db"), 5);
    store_for("node-a", &d.join("s2.db"), 9);
    for (db, json) in [("s.db", "a.json"), ("s2.db", "a2.json")] {
        let out = auditor(&d, &["report", "--store", db, "-o", json]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let one: report::Report =
        serde_json::from_str(&std::fs::read_to_string(d.join("a.json")).unwrap()).unwrap();
    // The issue's repro: `--merge a.json a.json`.
    let out = auditor(
        &d,
        &["report", "--merge", "a.json", "a.json", "--format", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("counted once"), "{}", stderr(&out));
    let twice: report::Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(twice.coverage.watched_seconds, one.coverage.watched_seconds);
    assert_eq!(
        twice.summary.violating_connections,
        one.summary.violating_connections
    );
    assert_eq!(twice.rows, one.rows);
    assert_eq!(twice.coverage.intervals.len(), one.coverage.intervals.len());
    // Another report of the same node over the same time: refused, not added.
    let out = auditor(&d, &["report", "--merge", "a.json", "a2.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("its coverage of node node-a") && stderr(&out).contains("overlaps"),
        "{}",
        stderr(&out)
    );
    // An edited report is refused: its digest no longer matches.
    let edited = std::fs::read_to_string(d.join("a.json")).unwrap().replacen(
        "\"count\": 5",
        "\"count\": 1",
        1,
    );
    std::fs::write(d.join("edited.json"), edited).unwrap();
    let out = auditor(&d, &["report", "--merge", "edited.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("was edited"), "{}", stderr(&out));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_period_is_explicit_with_coverage_as_a_fraction_and_its_gaps() {
    let d = dir("period");
    store_for("node-a", &d.join("s.db"), 5);
    let out = auditor(&d, &["report", "--store", "s.db", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: report::Report = serde_json::from_slice(&out.stdout).unwrap();
    // No bounds asked: the first and last coverage.
    assert_eq!(r.period.since, "1970-01-01T00:00:00.000Z");
    assert_eq!(r.period.until, "1970-01-01T02:00:00.000Z");
    // Two hours watched, one of them with drops: half fully audited.
    assert_eq!(r.coverage.fraction, Some(0.5));
    assert_eq!(r.coverage.gaps.len(), 1);
    assert_eq!(r.coverage.gaps[0].reason, "kernel_drops");
    assert!(
        r.summary
            .headline
            .contains("50% of the period fully audited"),
        "{}",
        r.summary.headline
    );
    // Asked for three hours: the third, when nothing ran, is a gap.
    let out = auditor(
        &d,
        &[
            "report",
            "--store",
            "s.db",
            "--since",
            "1970-01-01T00:00:00Z",
            "--until",
            "1970-01-01T03:00:00Z",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r: report::Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.period.until, "1970-01-01T03:00:00.000Z");
    assert_eq!(r.coverage.fraction, Some(0.3333));
    let not_running: Vec<_> = r
        .coverage
        .gaps
        .iter()
        .filter(|g| g.reason == "not_running")
        .collect();
    assert_eq!(not_running.len(), 1);
    assert_eq!(
        (not_running[0].start.as_str(), not_running[0].end.as_str()),
        ("1970-01-01T02:00:00.000Z", "1970-01-01T03:00:00.000Z")
    );
    // The header: version, digest of the report itself.
    assert_eq!(r.auditor_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(r.digest.clone().unwrap(), report::compute_digest(&r));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_signed_report_verifies_and_an_edited_one_does_not() {
    let d = dir("sign");
    store_for("node-a", &d.join("s.db"), 5);
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(&d)
            .output()
            .expect("openssl");
        assert!(o.status.success(), "{}", stderr(&o));
    };
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", "key.pem"]);
    openssl(&["pkey", "-in", "key.pem", "-pubout", "-out", "key.pub.pem"]);
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", "other.pem"]);
    openssl(&[
        "pkey",
        "-in",
        "other.pem",
        "-pubout",
        "-out",
        "other.pub.pem",
    ]);
    for name in ["r.json", "r.html"] {
        let out = auditor(
            &d,
            &["report", "--store", "s.db", "-o", name, "--sign", "key.pem"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let sig = format!("{name}.sig");
        assert!(d.join(&sig).exists());
        let out = auditor(&d, &["report", "verify", name, "--key", "key.pub.pem"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(said.contains("verified"), "{said}");
        // A signature is not a claim of live capture: verify says where the
        // observations came from (this store does not record it).
        assert!(
            said.contains(&format!("{name}: captured: "))
                && said.contains("not shown to be live capture"),
            "{said}"
        );
        // Another key: not verified (1).
        let out = auditor(&d, &["report", "verify", name, "--key", "other.pub.pem"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("signed by another key"),
            "{}",
            stderr(&out)
        );
        // One character changed: not verified (1).
        let text = std::fs::read_to_string(d.join(name)).unwrap();
        std::fs::write(d.join(name), text.replacen("Tenant", "Tenent", 1)).unwrap();
        let out = auditor(&d, &["report", "verify", name, "--key", "key.pub.pem"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("edited after it was signed"),
            "{}",
            stderr(&out)
        );
    }
    // No signature file, a private key where a public one belongs: errors (2), named.
    let out = auditor(&d, &["report", "verify", "s.db", "--key", "key.pub.pem"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("s.db.sig: cannot read"),
        "{}",
        stderr(&out)
    );
    let out = auditor(&d, &["report", "verify", "r.json", "--key", "key.pem"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("key.pem: not an ed25519 public key"),
        "{}",
        stderr(&out)
    );
    // --sign needs a file to sign.
    let out = auditor(&d, &["report", "--store", "s.db", "--sign", "key.pem"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn rows_whose_content_changed_between_allowlists_are_reported() {
    let d = dir("changed");
    store_for("node-a", &d.join("s.db"), 5);
    // The daemon reloaded a re-imported document in which row 26 documents 9200.
    let old = allowlist::file::parse(ALLOWLIST, "a.yaml").unwrap();
    let new_text = ALLOWLIST.replacen(
        "source: Tenant Service\n  destination: Config Service\n  protocol: HTTP\n  transport: tcp\n  ports: [9100]",
        "source: Tenant Service\n  destination: Config Service\n  protocol: HTTP\n  transport: tcp\n  ports: [9200]",
        1,
    );
    assert_ne!(new_text, ALLOWLIST, "row 26 edited");
    let new = allowlist::file::parse(&new_text, "b.yaml").unwrap();
    let mut s = Store::open(&d.join("s.db")).unwrap();
    for (list, since) in [
        (&old, "1970-01-01T00:00:00.000Z"),
        (&new, "1970-01-01T01:00:00.000Z"),
    ] {
        let inputs = auditor::provenance::Inputs {
            auditor_version: "test".into(),
            allowlist_sha256: None,
            allowlist_content_sha256: auditor::provenance::allowlist_content_sha256(list),
            inventory_sha256: None,
            overrides_sha256: None,
            baseline_sha256: None,
            since: since.into(),
            rules_port_unverified: None,
        };
        s.record_inputs(&inputs, &allowlist::file::to_json(list))
            .unwrap();
    }
    s.set_allowlist(&allowlist::file::to_json(&new)).unwrap();
    drop(s);
    let out = auditor(&d, &["report", "--store", "s.db", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: report::Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.inputs.len(), 2);
    assert_eq!(
        r.changed_rows,
        vec!["row 26: Tenant Service -> Config Service tcp/9100 vs Tenant Service -> Config Service tcp/9200".to_string()]
    );
    let md = report::markdown::render(&r);
    assert!(md.contains("Rows changed between allowlists"), "{md}");
    // Row 26's stored traffic was judged against "-> Config Service tcp/9100": the
    // report, against the new row 26 (9200), does not credit it by number.
    let row26 = r.rows.iter().find(|x| x.rule == Some(26)).unwrap();
    assert!(!row26.observed && row26.count == 0, "{row26:?}");
    // Row 9, unchanged, keeps its evidence.
    assert!(r.rows.iter().find(|x| x.rule == Some(9)).unwrap().observed);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn junit_output_carries_no_character_xml_forbids() {
    // A hostile service name: C0 controls (SOH, ESC) and the non-characters XML 1.0
    // forbids even as references.
    let mut r: report::Report =
        serde_json::from_str(include_str!("data/demo-report.json")).expect("the demo report");
    let hostile = "Web\u{1}\u{1b}[31m\u{fffe}\u{ffff}";
    r.rows[0].src = hostile.into();
    r.document.title = Some(hostile.into());
    let xml = report::junit::render(&r);
    let forbidden = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
    assert!(
        !xml.chars().any(forbidden),
        "a character XML 1.0 forbids reached the output"
    );
    // The name is still there, its forbidden characters visibly replaced.
    assert!(
        xml.contains("Web\u{fffd}\u{fffd}[31m\u{fffd}\u{fffd}"),
        "{xml}"
    );
}
