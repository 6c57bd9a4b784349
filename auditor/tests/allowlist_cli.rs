//! `auditor allowlist …` as a user runs it: real binary, real files, exit codes and output.

use std::process::{Command, Output};

const AUDITOR: &str = env!("CARGO_BIN_EXE_auditor");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn auditor(args: &[&str]) -> Output {
    Command::new(AUDITOR)
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("run auditor")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn import_as_json_yields_sixty_numbered_connections() {
    let out = auditor(&[
        "allowlist",
        "import",
        "allowlist/sources/voice-microservices-architecture.txt",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let numbers: Vec<u64> = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=60).collect::<Vec<u64>>());
    let row57 = &v["connections"][56];
    assert_eq!(
        (&row57["protocol"], &row57["transport"], &row57["ports"][0]),
        (&"SIP/UDP".into(), &"udp".into(), &5070.into())
    );
}

#[test]
fn check_of_the_bundled_allowlist_passes_with_the_lint_warnings() {
    let out = auditor(&[
        "allowlist",
        "check",
        "allowlist/voice-microservices.yaml",
        "--overrides",
        "allowlist/overrides.example.yaml",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for expected in [
        "warning[reversed-datastore]: row 14: Redis 6.x → Tenant Service",
        "warning[reversed-datastore]: row 55: Kafka 2.x → Agent State Service",
        "warning[described-not-listed]: row 10",
        "warning[repeated-connection]: rows 45, 46, 47 repeat ORS → Redis",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // The overrides give rows 24 and 59 their ports: linted with them applied, these
    // rows are not "unknown" (the issue: it warned while the overrides gave the port).
    assert!(!stdout.contains("unknown-port"), "{stdout}");
    // Without the overrides they are.
    let out = auditor(&["allowlist", "check", "allowlist/voice-microservices.yaml"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    for expected in [
        "warning[unknown-port]: row 24",
        "warning[unknown-port]: row 59",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn check_warns_about_an_override_that_changes_nothing() {
    let dir = std::env::temp_dir().join(format!("auditor-ovr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ovr = dir.join("overrides.yaml");
    // Row 6 documents 6379*: an override of 6379 repeats it. Redis for every row is
    // shadowed by nothing here, so the service override does change rows.
    std::fs::write(
        &ovr,
        "services:\n  Redis: [6380]\nrows:\n  6: [6379]\n  24: [443]\n",
    )
    .unwrap();
    let out = auditor(&[
        "allowlist",
        "check",
        "allowlist/voice-microservices.yaml",
        "--overrides",
        ovr.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("warning[override-no-effect]: overrides rows.6: Voice RQ Service → Redis already allows 6379"),
        "{stdout}"
    );
    assert!(!stdout.contains("overrides services.\"Redis\""), "{stdout}");
    assert!(!stdout.contains("unknown-port]: row 24"), "{stdout}");
    assert!(stdout.contains("unknown-port]: row 59"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_fails_with_file_line_column_on_a_typo() {
    let dir = std::env::temp_dir().join(format!("auditor-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("typo.yaml");
    let yaml =
        std::fs::read_to_string(format!("{ROOT}/allowlist/voice-microservices.yaml")).unwrap();
    std::fs::write(&bad, yaml.replacen("  description:", "  descripton:", 1)).unwrap();
    let out = auditor(&["allowlist", "check", bad.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = yaml
        .lines()
        .position(|l| l.starts_with("  description:"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!(
            "{}:{line}:3: unknown field `descripton`",
            bad.display()
        )),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn import_of_an_unreadable_row_names_the_row_and_line() {
    let dir = std::env::temp_dir().join(format!("auditor-cli-imp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let doc = dir.join("doc.txt");
    std::fs::write(&doc, "Source\tDestination\tProtocol\tPort\tClassification\nA\tB\tTCP\t80\tEgress\nC\tD\tTCP\tlater\tEgress\n").unwrap();
    let out = auditor(&["allowlist", "import", doc.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 3: an unnumbered row: port \"later\""),
        "{stderr}"
    );
    let out = auditor(&["allowlist", "import", "/nonexistent/doc.txt"]);
    assert!(
        text(&out.stderr).contains("reading /nonexistent/doc.txt"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn explain_says_how_each_side_resolved_and_why_each_row_did_not_match() {
    let dir = std::env::temp_dir().join(format!("auditor-cli-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inv = dir.join("inventory.yaml");
    std::fs::write(&inv, "version: 1\nservices:\n  Tenant Service: {addresses: [10.0.1.0/24]}\n  Config Service: {addresses: [10.0.2.0/24]}\n").unwrap();
    let out = auditor(&[
        "explain",
        "--allowlist",
        "allowlist/voice-microservices.yaml",
        "--inventory",
        inv.to_str().unwrap(),
        "--from",
        "10.0.1.5",
        "--to",
        "10.0.2.7:9200",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("src: 10.0.1.5 is Tenant Service (matched by address/24"),
        "{stdout}"
    );
    assert!(
        stdout.contains("dst: 10.0.2.7 is Config Service (matched by address/24"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict: port_drift (rules: 26)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("row 26: HTTP tcp/9100: no: port 9200 is not 9100"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
