//! Reports from a store as the daemon leaves it: per documented row, violations, coverage
//! with drops, merging per-node reports, the three formats, and clear errors.

use std::process::Command;

use auditor::{
    edge::{Direction, Documented, Drops, Edge, Endpoint, Process, Transport},
    report,
    store::{Batch, CoverageUpdate, RowDelta, Store},
    verdict::Verdict,
};

const AUDITOR: &str = env!("CARGO_BIN_EXE_auditor");
const ALLOWLIST: &str = include_str!("../../allowlist/voice-microservices.yaml");

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("auditor-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A store like one node's after a day: rows 26 and 9 seen, a port drift from row 26,
/// and an hour with ring-buffer drops.
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
    let drops = Batch {
        coverage: Some(CoverageUpdate {
            session_start_ms: 0,
            start_ms: 3_600_000,
            end_ms: 7_200_000,
            drops: Drops {
                ringbuf_full: 12,
                ..Drops::default()
            },
        }),
        ..Default::default()
    };
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
    assert_eq!(r.schema, "auditor-report/2");
    assert_eq!(r.rows.len(), 60);
    let row26 = r.rows.iter().find(|x| x.number == Some(26)).unwrap();
    assert!(
        row26.observed && row26.count == 40 && row26.nodes == vec!["node-a".to_string()],
        "{row26:?}"
    );
    assert_eq!(row26.examples, vec!["Tenant Service (tenant)".to_string()]);
    assert!(
        !r.rows
            .iter()
            .find(|x| x.number == Some(57))
            .unwrap()
            .observed
    );
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
    assert!(html.contains("<svg") && html.contains("port drift tcp/9200"));
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
    let row26 = r.rows.iter().find(|x| x.number == Some(26)).unwrap();
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
    assert!(!out.status.success());
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
    let out = run(&["report", "--store", "empty.db", "--format", "pdf"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid value 'pdf'"),
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
        "docs/report.schema.json is stale: run `auditor report --schema > docs/report.schema.json`"
    );
}
