//! Evidence that says exactly what it knows (issue #27): a replayed store's period and
//! coverage come from the capture's own `watch` spans, a recording without them has
//! coverage "unknown", and every report format says the observations were replayed.
//! All through the real binary, as a user runs it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

const AUDITOR: &str = env!("CARGO_BIN_EXE_auditor");

mod common;
use common::root;

const INVENTORY: &str = "version: 1\nservices:\n  Tenant Service: {addresses: [10.0.1.0/24]}\n  \
                         Config Service: {addresses: [10.0.2.0/24]}\n";

fn dir(name: &str) -> PathBuf {
    let d = common::dir("evidence", name);
    std::fs::write(d.join("inventory.yaml"), INVENTORY).unwrap();
    d
}

fn auditor(d: &Path, args: &[&str]) -> Output {
    Command::new(AUDITOR)
        .current_dir(d)
        .args(args)
        .output()
        .unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into()
}

/// `auditor replay` of `flows` (written to flows.jsonl) with these extra arguments.
fn replay(d: &Path, flows: &str, extra: &[&str]) -> Output {
    std::fs::write(d.join("flows.jsonl"), flows).unwrap();
    let allowlist = root().join("allowlist/voice-microservices.yaml");
    let mut args = vec![
        "replay",
        "--allowlist",
        allowlist.to_str().unwrap(),
        "--inventory",
        "inventory.yaml",
        "flows.jsonl",
    ];
    args.extend(extra);
    auditor(d, &args)
}

/// An ed25519 key pair in `d`: key.pem and key.pub.pem.
fn signing_keys(d: &Path) {
    for args in [
        &["genpkey", "-algorithm", "ed25519", "-out", "key.pem"][..],
        &["pkey", "-in", "key.pem", "-pubout", "-out", "key.pub.pem"],
    ] {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", err(&o));
    }
}

fn report(d: &Path, format: &str) -> String {
    let out = format!("report.{format}");
    let o = auditor(d, &["report", "--store", "s.db", "-o", &out]);
    assert!(o.status.success(), "{}", err(&o));
    std::fs::read_to_string(d.join(out)).unwrap()
}

/// An allowed flow (documented row 26), with `time` when given.
fn flow(src: &str, time: Option<&str>) -> String {
    let time = time.map_or(String::new(), |t| format!(r#""time":"{t}","#));
    format!(
        r#"{{{time}"transport":"tcp","src_addr":"{src}","dst_addr":"10.0.2.7","dst_port":9100}}"#
    )
}

fn watch(start: &str, end: &str, connections_lost: u64) -> String {
    format!(
        r#"{{"watch":{{"node":"node-a","auditor_version":"0.0.0","kernel":"6.8.0","start":"{start}","end":"{end}","drops":{{"ringbuf_full":5,"connections_lost":{connections_lost},"flow_insert_failed":7}}}}}}"#
    )
}

/// A 20 s capture in two spans, one record timed, one not.
fn recording() -> String {
    [
        flow("10.0.1.7", Some("2026-11-26T21:56:51.5Z")),
        watch("2026-11-26T21:56:50.000Z", "2026-11-26T21:57:00.000Z", 0),
        flow("10.0.1.8", None),
        watch("2026-11-26T21:57:00.000Z", "2026-11-26T21:57:10.000Z", 0),
    ]
    .join("\n")
        + "\n"
}

#[test]
fn a_replayed_stores_period_and_coverage_are_the_captures_watch_spans() {
    let d = dir("spans");
    let o = replay(&d, &recording(), &["--store", "s.db"]);
    assert!(o.status.success(), "{}", err(&o));
    // The node the capture named, since no --node was given.
    assert!(err(&o).contains("as node \"node-a\""), "{}", err(&o));
    let r: Value = serde_json::from_str(&report(&d, "json")).unwrap();
    assert_eq!(r["period"]["since"], "2026-11-26T21:56:50.000Z", "{r:#}");
    assert_eq!(r["period"]["until"], "2026-11-26T21:57:10.000Z", "{r:#}");
    assert_eq!(r["coverage"]["watched_seconds"], 20.0);
    assert_eq!(r["coverage"]["fraction"], 1.0);
    assert_eq!(r["coverage"]["known"], true);
    let spans: Vec<(&str, &str)> = r["coverage"]["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["start"].as_str().unwrap(), i["end"].as_str().unwrap()))
        .collect();
    assert_eq!(
        spans,
        [
            ("2026-11-26T21:56:50.000Z", "2026-11-26T21:57:00.000Z"),
            ("2026-11-26T21:57:00.000Z", "2026-11-26T21:57:10.000Z")
        ]
    );
    // The record without time is timed at the end of the span it came in, not "now".
    let row = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule"] == 26)
        .unwrap();
    assert_eq!(row["last_seen"], "2026-11-26T21:57:10Z", "{row:#}");
    assert_eq!(r["capture"]["mode"], "replay");
    assert_eq!(r["capture"]["replays"][0]["capture_nodes"][0], "node-a");
    assert_eq!(r["capture"]["replays"][0]["intervals_known"], true);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_span_with_connections_lost_is_not_fully_audited_and_pressure_alone_is() {
    let d = dir("drops");
    let flows = [
        flow("10.0.1.7", Some("2026-11-26T21:56:51Z")),
        // A full ring buffer and flow map, with nothing lost: still fully audited.
        watch("2026-11-26T21:56:50.000Z", "2026-11-26T21:57:00.000Z", 0),
        watch("2026-11-26T21:57:00.000Z", "2026-11-26T21:57:10.000Z", 3),
        // A recording made before the flow maps had epochs: its evictions, full ring
        // buffers and refused inserts may each have lost connections: all count as lost.
        r#"{"watch":{"node":"node-a","auditor_version":"0.0.0","kernel":"6.8.0","start":"2026-11-26T21:57:10.000Z","end":"2026-11-26T21:57:20.000Z","drops":{"ringbuf_full":1,"lru_evictions":2,"flow_insert_failed":0}}}"#.into(),
    ]
    .join("\n");
    let o = replay(&d, &flows, &["--store", "s.db"]);
    assert!(o.status.success(), "{}", err(&o));
    let r: Value = serde_json::from_str(&report(&d, "json")).unwrap();
    let intervals = r["coverage"]["intervals"].as_array().unwrap();
    let lost: Vec<(bool, u64, u64)> = intervals
        .iter()
        .map(|i| {
            (
                i["fully_audited"].as_bool().unwrap(),
                i["drops"]["connections_lost"].as_u64().unwrap(),
                i["drops"]["ringbuf_full"].as_u64().unwrap(),
            )
        })
        .collect();
    // The old recording's full ring buffer could lose connections then: 2 + 1.
    assert_eq!(lost, [(true, 0, 5), (false, 3, 5), (false, 3, 1)], "{r:#}");
    assert_eq!(r["coverage"]["incomplete_seconds"], 20.0);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_recording_without_watch_lines_has_coverage_unknown_in_every_format() {
    let d = dir("unknown");
    let flows = [
        flow("10.0.1.7", Some("2026-11-26T21:56:51Z")),
        flow("10.0.1.8", Some("2026-11-26T21:56:52Z")),
    ]
    .join("\n");
    let o = replay(&d, &flows, &["--store", "s.db", "--node", "prod-node-1"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("coverage unknown"), "{}", err(&o));
    let json = report(&d, "json");
    let r: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(r["schema"], "auditor-report/8");
    assert!(r["coverage"]["fraction"].is_null(), "{:#}", r["coverage"]);
    assert_eq!(r["coverage"]["known"], false);
    assert!(
        r["summary"]["headline"]
            .as_str()
            .unwrap()
            .contains("coverage unknown: replayed without capture intervals"),
        "{}",
        r["summary"]["headline"]
    );
    assert_eq!(r["capture"]["replays"][0]["intervals_known"], false);
    // Nothing says the node was "not running": how long it was watched is unknown.
    assert_eq!(r["coverage"]["gaps"], serde_json::json!([]));
    for format in ["md", "html", "xml"] {
        let text = report(&d, format);
        assert!(
            text.to_lowercase().contains("coverage unknown")
                || text.contains("unknown: replayed without capture intervals"),
            "{format}: {text}"
        );
        // No percentage of the period, and no "0 s watched" either.
        assert!(
            !text.contains("% of the period"),
            "{format} claims a share of the period: {text}"
        );
        assert!(
            !text.contains("0 s watched") && !text.contains("watched 0s"),
            "{format}: {text}"
        );
    }
    // A CI gate on unaudited time does not pass what is not known.
    let o = auditor(&d, &["report", "--store", "s.db", "--fail-on", "unaudited"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_replayed_stores_report_says_so_in_every_format_and_fails_the_live_gate() {
    let d = dir("replayed");
    let o = replay(&d, &recording(), &["--store", "s.db"]);
    assert!(o.status.success(), "{}", err(&o));
    let out = Command::new("sha256sum")
        .arg(d.join("flows.jsonl"))
        .output()
        .unwrap();
    let sha = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let r: Value = serde_json::from_str(&report(&d, "json")).unwrap();
    assert_eq!(r["capture"]["mode"], "replay");
    assert_eq!(r["capture"]["replays"][0]["file"], "flows.jsonl");
    assert_eq!(r["capture"]["replays"][0]["sha256"], sha.as_str());
    let statement = r["capture"]["statement"].as_str().unwrap();
    assert_eq!(
        statement,
        format!("replayed from flows.jsonl sha256 {sha}: not live capture")
    );
    assert!(
        r["summary"]["headline"]
            .as_str()
            .unwrap()
            .starts_with("Replayed records, not live capture. "),
        "{}",
        r["summary"]["headline"]
    );
    for format in ["md", "html", "xml"] {
        let text = report(&d, format);
        assert!(text.contains("not live capture"), "{format}: {text}");
        assert!(text.contains(&sha), "{format}: {text}");
    }
    let xml = report(&d, "xml");
    assert!(
        xml.contains(r#"<property name="capture_mode" value="replay"/>"#),
        "{xml}"
    );
    let html = report(&d, "html");
    let banner = html.find("id=\"capture\"").expect("an HTML banner");
    assert!(
        banner < html.find("id=\"header\"").unwrap(),
        "the banner comes first"
    );
    let o = auditor(&d, &["report", "--store", "s.db", "--fail-on", "replayed"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("not live evidence"), "{}", err(&o));
    // `report verify` says it too: a signature vouches for the bytes, not for live capture.
    signing_keys(&d);
    for name in ["r.json", "r.md", "r.html"] {
        let o = auditor(
            &d,
            &["report", "--store", "s.db", "-o", name, "--sign", "key.pem"],
        );
        assert!(o.status.success(), "{}", err(&o));
        let o = auditor(&d, &["report", "verify", name, "--key", "key.pub.pem"]);
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(&format!("{name}: captured: {statement}")),
            "{name}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    // A gate that says nothing about where evidence came from still passes.
    let o = auditor(
        &d,
        &["report", "--store", "s.db", "--fail-on", "violations"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // `replay` itself refuses the gate rather than ignore it.
    let o = replay(&d, &recording(), &["--fail-on", "replayed"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn times_need_a_zone_any_offset_counts_and_the_far_future_is_refused() {
    let d = dir("times");
    let flows = [
        flow("10.0.1.7", Some("2026-11-26T23:56:55+02:00")),
        flow("10.0.1.8", Some("2026-11-26T21:56:56")),
        flow("10.0.1.9", Some("2036-11-26T21:56:56Z")),
        flow("10.0.1.10", Some("2025-01-01T00:00:00Z")),
        watch("2026-11-26T21:56:50.000Z", "2026-11-26T21:57:00.000Z", 0),
    ]
    .join("\n");
    let o = replay(&d, &flows, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let v: Vec<Value> = String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), 1, "{}", err(&o));
    assert_eq!(v[0]["last_seen"], "2026-11-26T21:56:55.000Z");
    let e = err(&o);
    assert!(
        e.contains("flows.jsonl:2:") && e.contains("ambiguous: no zone"),
        "{e}"
    );
    assert!(
        e.contains("flows.jsonl:3:") && e.contains("in the future"),
        "{e}"
    );
    assert!(
        e.contains("flows.jsonl:4:") && e.contains("outside every capture interval"),
        "{e}"
    );
    assert!(e.contains("3 bad records skipped"), "{e}");
    // A recording without spans: no time, nowhere to place it.
    let o = replay(&d, &flow("10.0.1.7", None), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains(
            "flows.jsonl:1: skipping a flow record: no time, and no capture interval to place it in"
        ),
        "{}",
        err(&o)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_ten_megabyte_comm_is_cut_to_the_kernels_15_bytes_and_counted() {
    let d = dir("comm");
    let comm = "x".repeat(10 << 20);
    let line = format!(
        r#"{{"time":"2026-11-26T21:56:51Z","transport":"tcp","src_addr":"10.0.1.7","dst_addr":"10.0.2.7","dst_port":9100,"pid":7,"comm":"{comm}"}}"#
    );
    let flows = [
        line,
        watch("2026-11-26T21:56:50.000Z", "2026-11-26T21:57:00.000Z", 0),
    ]
    .join("\n");
    let o = replay(&d, &flows, &["--store", "s.db"]);
    assert!(o.status.success(), "{}", err(&o));
    let e = err(&o);
    assert!(
        e.contains("flows.jsonl:1: truncated comm to the kernel's 15 bytes"),
        "{e}"
    );
    assert!(e.contains("1 record(s) with fields longer"), "{e}");
    let v: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    assert_eq!(v["process"]["comm"], "x".repeat(15));
    let size = std::fs::metadata(d.join("s.db")).unwrap().len()
        + std::fs::metadata(d.join("s.db-wal")).map_or(0, |m| m.len());
    assert!(size < 1 << 20, "the store is {size} bytes");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_refused_replay_leaves_no_store_and_an_empty_file_stores_nothing() {
    let d = dir("refused");
    let flows = [
        flow("10.0.1.7", Some("2026-11-26T21:56:51Z")),
        "{nope".into(),
    ]
    .join("\n");
    let o = replay(&d, &flows, &["--store", "s.db"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("nothing stored in s.db"), "{}", err(&o));
    assert!(
        !d.join("s.db").exists(),
        "a refused replay left a store behind"
    );
    // A replay refused at commit (the node is already in the store) removes the store
    // it would have created... and keeps one it did not.
    let o = replay(&d, &recording(), &["--store", "s.db"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = replay(&d, &recording(), &["--store", "s.db"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("already holds node"), "{}", err(&o));
    assert!(d.join("s.db").exists());
    std::fs::remove_file(d.join("s.db")).unwrap();
    let _ = std::fs::remove_file(d.join("s.db-wal"));
    let _ = std::fs::remove_file(d.join("s.db-shm"));
    let o = replay(&d, "", &["--store", "s.db"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("no flow records in flows.jsonl: nothing stored"),
        "{}",
        err(&o)
    );
    assert!(!d.join("s.db").exists(), "an empty replay created a store");
    // A directory is not a store.
    std::fs::create_dir(d.join("dir.db")).unwrap();
    let o = replay(&d, &recording(), &["--store", "dir.db"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("is a directory"), "{}", err(&o));
    std::fs::remove_dir_all(&d).unwrap();
}

/// Scheduled reports form a hash chain: each names the one before it (`--previous`) by
/// digest and period. `report verify --chain` checks every signature, the links and that
/// the periods meet end to start; a removed report, or a byte edited in any of them,
/// fails, naming the report.
#[test]
fn a_chain_of_three_signed_reports_verifies_and_a_removed_or_edited_one_is_named() {
    let d = dir("chain");
    let flows = [
        flow("10.0.1.7", Some("2026-11-26T21:56:51.5Z")),
        watch("2026-11-26T21:56:50.000Z", "2026-11-26T21:57:20.000Z", 0),
        flow("10.0.1.8", Some("2026-11-26T21:57:05.0Z")),
        flow("10.0.1.9", Some("2026-11-26T21:57:15.0Z")),
    ]
    .join("\n")
        + "\n";
    let o = replay(&d, &flows, &["--store", "s.db"]);
    assert!(o.status.success(), "{}", err(&o));
    signing_keys(&d);
    std::fs::create_dir_all(d.join("chain")).unwrap();
    let bounds = [
        "2026-11-26T21:56:50Z",
        "2026-11-26T21:57:00Z",
        "2026-11-26T21:57:10Z",
        "2026-11-26T21:57:20Z",
    ];
    for k in 0usize..3 {
        let out = format!("chain/r{k}.json");
        let previous = format!("chain/r{}.json", k.wrapping_sub(1));
        let mut args = vec![
            "report",
            "--store",
            "s.db",
            "--since",
            bounds[k],
            "--until",
            bounds[k + 1],
            "-o",
            &out,
            "--sign",
            "key.pem",
        ];
        if k > 0 {
            args.extend(["--previous", &previous]);
        }
        let o = auditor(&d, &args);
        assert!(o.status.success(), "{}", err(&o));
    }
    let r2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("chain/r2.json")).unwrap()).unwrap();
    let r1: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("chain/r1.json")).unwrap()).unwrap();
    assert_eq!(r2["previous"]["digest"], r1["digest"]);
    assert_eq!(r2["previous"]["period"]["until"], r2["period"]["since"]);
    let md = {
        let o = auditor(
            &d,
            &[
                "report",
                "--store",
                "s.db",
                "--since",
                bounds[2],
                "--until",
                bounds[3],
                "--previous",
                "chain/r1.json",
                "--format",
                "markdown",
            ],
        );
        assert!(o.status.success(), "{}", err(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(
        md.contains(&format!("sha256 {}", r1["digest"].as_str().unwrap())),
        "{md}"
    );

    let verify = |dir: &str| {
        auditor(
            &d,
            &["report", "verify", "--chain", dir, "--key", "key.pub.pem"],
        )
    };
    let o = verify("chain");
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("3 reports signed by the given key"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // The middle one removed: the last names a digest that is not the first's.
    let copy = |name: &str, files: &[&str]| {
        let to = d.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for f in files {
            for ext in ["", ".sig"] {
                std::fs::copy(
                    d.join("chain").join(format!("{f}{ext}")),
                    to.join(format!("{f}{ext}")),
                )
                .unwrap();
            }
        }
    };
    copy("removed", &["r0.json", "r2.json"]);
    let o = verify("removed");
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("removed/r2.json: names previous digest")
            && err(&o).contains("removed, inserted or replaced"),
        "{}",
        err(&o)
    );

    // One byte edited in any of them: that report is named.
    for victim in ["r0.json", "r1.json", "r2.json"] {
        let name = format!("edited-{}", victim.trim_end_matches(".json"));
        copy(&name, &["r0.json", "r1.json", "r2.json"]);
        let path = d.join(&name).join(victim);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.iter().position(|b| *b == b'1').unwrap();
        bytes[at] = b'2';
        std::fs::write(&path, bytes).unwrap();
        let o = verify(&name);
        assert_eq!(o.status.code(), Some(1), "{victim}: {}", err(&o));
        assert!(
            err(&o).contains(&format!("{name}/{victim}: edited")),
            "{victim}: {}",
            err(&o)
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A store in `d` (s.db) holding one Genesys Engagement Service -> Redis 6379 connection,
/// which row 10's text describes and no row lists: undocumented egress.
fn ges_to_redis_store(d: &Path) {
    std::fs::write(
        d.join("inventory.yaml"),
        "version: 1\nservices:\n  Genesys Engagement Service: {addresses: [10.0.3.0/24]}\n  Redis: {addresses: [10.0.4.0/24]}\n",
    )
    .unwrap();
    let flows = [
        r#"{"time":"2026-11-26T21:56:51.5Z","transport":"tcp","src_addr":"10.0.3.7","dst_addr":"10.0.4.9","dst_port":6379}"#.to_string(),
        watch("2026-11-26T21:56:50.000Z", "2026-11-26T21:57:00.000Z", 0),
    ]
    .join("\n")
        + "\n";
    let o = replay(d, &flows, &["--store", "s.db"]);
    assert!(o.status.success(), "{}", err(&o));
}

/// The document's own findings are in the report, and a violation one explains cites
/// it: row 10's text describes Genesys Engagement Service → Redis on 6379, which no row
/// lists, so that traffic is undocumented egress explained by the finding.
#[test]
fn a_violation_a_document_finding_explains_cites_it() {
    let d = dir("findings");
    ges_to_redis_store(&d);
    let r: serde_json::Value = serde_json::from_str(&report(&d, "json")).unwrap();
    let findings = r["document_findings"]
        .as_array()
        .expect("document findings");
    assert!(
        findings
            .iter()
            .any(|f| f["code"] == "described-not-listed" && f["rows"] == serde_json::json!([10])),
        "{findings:?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f["code"] == "reversed-datastore" && f["rows"] == serde_json::json!([14])),
        "{findings:?}"
    );
    let v = &r["violations"][0];
    assert_eq!(v["src"]["service"], "Genesys Engagement Service", "{v}");
    assert_eq!(
        v["explained_by"],
        serde_json::json!([{"code": "described-not-listed", "rows": [10]}]),
        "{v}"
    );
    let md = report(&d, "md");
    assert!(md.contains("## Document findings"), "{md}");
    // Markdown escapes the parentheses.
    assert!(
        md.contains(r"explained by document finding described-not-listed \(row 10\)"),
        "{md}"
    );
    let html = report(&d, "html");
    assert!(html.contains("<h2>Document findings</h2>"), "{html}");
    let xml = report(&d, "xml");
    assert!(
        xml.contains("explained by document finding described-not-listed (row 10)"),
        "{xml}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// An exceptions file covering GES -> Redis (row 10 describes it, no row lists it),
/// expiring at `expires`.
fn exceptions(expires: &str) -> String {
    format!(
        "exceptions:\n  - id: EXC-7\n    src: Genesys Engagement Service\n    dst: Redis\n    port: 6379\n    reason: session cache, until the document lists it\n    owner: voice-platform@example.com\n    expires: {expires}\n  - id: EXC-8\n    src: Tenant Service\n    dst: api.customer.example\n    reason: not used yet\n    owner: tenant-team@example.com\n    expires: 2027-01-01\n"
    )
}

#[test]
fn an_exception_accepts_its_edge_until_it_expires_and_the_report_lists_its_use() {
    let d = dir("exceptions");
    ges_to_redis_store(&d);
    let judged = |expires: &str, out: &str| -> (Output, Value) {
        std::fs::write(d.join("exceptions.yaml"), exceptions(expires)).unwrap();
        let o = auditor(
            &d,
            &[
                "report",
                "--store",
                "s.db",
                "--exceptions",
                "exceptions.yaml",
                "--fail-on",
                "violations",
                "-o",
                out,
            ],
        );
        let r = serde_json::from_str(&std::fs::read_to_string(d.join(out)).unwrap()).unwrap();
        (o, r)
    };

    // Before it expires: accepted, not a violation, and --fail-on violations passes.
    let (o, r) = judged("2026-11-27", "before.json");
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(
        r["violations"],
        serde_json::json!([]),
        "{}",
        r["violations"]
    );
    assert_eq!(r["accepted"][0]["exception"], "EXC-7", "{}", r["accepted"]);
    assert_eq!(r["summary"]["accepted_edges"], 1);
    assert_eq!(r["summary"]["status"], "clean", "{}", r["summary"]);
    let entries = &r["exceptions"]["entries"];
    assert_eq!(entries[0]["accepted_connections"], 1, "{entries}");
    assert_eq!(entries[0]["status"], "in_force");
    // A date is in force through that day (UTC).
    assert_eq!(entries[0]["expired_from"], "2026-11-28T00:00:00.000Z");
    // Every exception is listed, the unused one too.
    assert_eq!(entries[1]["id"], "EXC-8");
    assert_eq!(entries[1]["accepted_edges"], 0);
    let control = |r: &Value, id: &str| {
        r["controls"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["control"] == id)
            .unwrap()
            .clone()
    };
    // A replayed store evidences no control that rests on live capture.
    assert_eq!(control(&r, "1.2.5.b")["status"], "not_evidenced");

    // Expired before the edge was seen: a violation again, naming the exception.
    let (o, r) = judged("2026-11-26T21:56:00Z", "after.json");
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(r.get("accepted").is_none(), "{r}");
    let v = &r["violations"][0];
    assert_eq!(v["exception"], "EXC-7", "{v}");
    assert_eq!(r["exceptions"]["entries"][0]["expired_edges"], 1);
    assert_eq!(r["exceptions"]["entries"][0]["status"], "expired");
    assert_eq!(control(&r, "1.2.5.b")["status"], "not_met");
    assert!(
        control(&r, "1.2.5.b")["missing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains("exception EXC-7 expired")),
        "{}",
        control(&r, "1.2.5.b")
    );
    // Every format says so.
    let md = auditor(
        &d,
        &[
            "report",
            "--store",
            "s.db",
            "--exceptions",
            "exceptions.yaml",
            "--format",
            "markdown",
        ],
    );
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(
        md.contains("## Accepted exceptions") && md.contains("## Controls"),
        "{md}"
    );
    assert!(
        md.contains("exception EXC-7 expired 2026-11-26T21:56:00Z: seen after it"),
        "{md}"
    );

    // A misspelt service is an error at its line and column, not an exception that
    // never matches.
    std::fs::write(
        d.join("exceptions.yaml"),
        exceptions("2027-01-01").replace("dst: Redis", "dst: Redsi"),
    )
    .unwrap();
    let o = auditor(
        &d,
        &[
            "report",
            "--store",
            "s.db",
            "--exceptions",
            "exceptions.yaml",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("exceptions.yaml:4:10: dst \"Redsi\" is not a service of the report"),
        "{}",
        err(&o)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn report_chain_follows_the_newest_report_and_counts_each_connection_once() {
    let d = dir("chain-flag");
    // One documented connection in each of three five-minute buckets.
    let flows = [
        watch("2026-11-26T21:55:00.000Z", "2026-11-26T22:10:00.000Z", 0),
        flow("10.0.1.7", Some("2026-11-26T21:56:51.5Z")),
        flow("10.0.1.8", Some("2026-11-26T22:01:05.0Z")),
        flow("10.0.1.9", Some("2026-11-26T22:07:15.0Z")),
    ]
    .join("\n")
        + "\n";
    let o = replay(&d, &flows, &["--store", "s.db"]);
    assert!(o.status.success(), "{}", err(&o));
    signing_keys(&d);
    // As a schedule runs it: only --until moves, and not on a boundary (it is rounded
    // down to one).
    for until in [
        "2026-11-26T22:00:30Z",
        "2026-11-26T22:05:00Z",
        "2026-11-26T22:12:00Z",
    ] {
        let o = auditor(
            &d,
            &[
                "report", "--store", "s.db", "--until", until, "--chain", "chain", "--sign",
                "key.pem",
            ],
        );
        assert!(o.status.success(), "{}", err(&o));
    }
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("chain").join(name)).unwrap()).unwrap()
    };
    let reports = [
        read("report-2026-11-26T220000.000Z.json"),
        read("report-2026-11-26T220500.000Z.json"),
        read("report-2026-11-26T221000.000Z.json"),
    ];
    assert_eq!(reports[1]["period"]["since"], "2026-11-26T22:00:00.000Z");
    assert_eq!(reports[1]["previous"]["digest"], reports[0]["digest"]);
    assert_eq!(reports[2]["previous"]["digest"], reports[1]["digest"]);
    // Each report counts its own period's connection, none of the others'.
    for r in &reports {
        let row26 = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["rule"] == 26)
            .unwrap();
        assert_eq!(row26["count"], 1, "{}: {row26}", r["period"]);
        assert!(r.get("limits").is_none(), "{}", r["limits"]);
    }
    let o = auditor(
        &d,
        &[
            "report",
            "verify",
            "--chain",
            "chain",
            "--key",
            "key.pub.pem",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("verified: 3 reports"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // A chain's report rendered as it is: its digest, and its link, in the HTML.
    let o = auditor(
        &d,
        &[
            "report",
            "--render",
            "chain/report-2026-11-26T220500.000Z.json",
            "-o",
            "r.html",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let html = std::fs::read_to_string(d.join("r.html")).unwrap();
    let digest = reports[1]["digest"].as_str().unwrap();
    assert!(html.contains(digest), "{html}");
    assert!(
        html.contains(reports[0]["digest"].as_str().unwrap()),
        "the previous report: {html}"
    );
    // An edited one is refused.
    let edited = std::fs::read_to_string(d.join("chain/report-2026-11-26T220500.000Z.json"))
        .unwrap()
        .replacen("\"count\": 1", "\"count\": 2", 1);
    std::fs::write(d.join("edited.json"), edited).unwrap();
    let o = auditor(&d, &["report", "--render", "edited.json", "-o", "e.html"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("edited"), "{}", err(&o));
    // Nothing new to add yet (a schedule run again within a bucket): said, not a
    // failure, and the chain is left as it was.
    let o = auditor(
        &d,
        &[
            "report",
            "--store",
            "s.db",
            "--until",
            "2026-11-26T22:12:00Z",
            "--chain",
            "chain",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(err(&o).contains("nothing to add yet"), "{}", err(&o));
    assert_eq!(std::fs::read_dir(d.join("chain")).unwrap().count(), 6);
    // A period that cuts the buckets says what that does to its counts.
    let o = auditor(
        &d,
        &[
            "report",
            "--store",
            "s.db",
            "--since",
            "2026-11-26T22:02:00Z",
            "-o",
            "cut.json",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let cut: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("cut.json")).unwrap()).unwrap();
    assert!(
        cut["limits"][0]
            .as_str()
            .unwrap()
            .contains("5-minute bucket"),
        "{}",
        cut["limits"]
    );
    std::fs::remove_dir_all(&d).unwrap();
}
