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
    // Said of the overrides file, where the fix is.
    assert!(
        stdout.contains(&format!(
            "{}: warning[override-no-effect]: overrides rows.6: Voice RQ Service → Redis already allows 6379",
            ovr.display()
        )),
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
        stderr.contains(&format!(
            "error: {}:3: an unnumbered row (\"C\"): port \"later\"",
            doc.display()
        )),
        "{stderr}"
    );
    let out = auditor(&["allowlist", "import", "/nonexistent/doc.txt"]);
    assert!(
        text(&out.stderr).contains("/nonexistent/doc.txt: cannot read: No such file"),
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

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("auditor-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_page_number_between_rows_does_not_end_the_table() {
    // The repro: a header line, one row, `Page 2`, then another row.
    let dir = scratch("page2");
    let doc = dir.join("doc.txt");
    std::fs::write(
        &doc,
        "Source\tDestination\tProtocol\tPort\nA\tB\tTCP\t80\nPage 2\nC\tD\tTCP\t81\n",
    )
    .unwrap();
    let out = auditor(&[
        "allowlist",
        "import",
        doc.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["connections"].as_array().unwrap().len(), 2);
    assert!(
        stderr.contains("imported 2 connections") && stderr.contains("1 page numbers"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_line_that_cannot_be_placed_fails_with_file_line_or_is_skipped_with_lenient() {
    let dir = scratch("stray");
    let doc = dir.join("doc.txt");
    std::fs::write(
        &doc,
        "Source\tDestination\tProtocol\tPort\nA\tB\tTCP\t80\n\nSee the appendix for more\n\nC\tD\tTCP\t81\n",
    )
    .unwrap();
    let out = auditor(&["allowlist", "import", doc.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: {}:4: expected a row of 4 tab-separated cells (Source, Destination, Protocol, Port)",
            doc.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--lenient"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing is written on error");

    let out = auditor(&["allowlist", "import", "--lenient", doc.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("warning: {}:4: expected a row", doc.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("imported 2 connections") && stderr.contains("1 line(s) skipped"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A media and web-channel table of our own, saved from Excel as cp1252 CSV: every rule
/// of the importer in one document.
#[test]
fn an_own_table_covers_protocols_ports_transports_aliases_and_footers() {
    let dir = scratch("own");
    let doc = dir.join("media.csv");
    let csv = "Media services \u{2013} connections\r\n\
\r\n\
No.;Source service;Destination service;Protocol;Transport;Port(s);Classification;Data\r\n\
1;Media Server (MCP);Session Border Controller;RTP/RTCP;;20,000-45,000;Ingress/Egress;Caf\u{e9} media\r\n\
2;Web Gateway;Chat Service;HTTPS/WSS;;8,443;Intra-cluster;Chat messages\r\n\
3;SIP Proxy;MCP;SIP/UDP/TCP;;5060;Intra-cluster;Signalling to the media server\r\n\
4;Resolver;DNS Server;DNS;;53;Egress;Name lookups\r\n\
Page 1 of 2\r\n\
5;SIP Proxy;Registrar;SIP;UDP;5070;Intra-cluster;\"Registrations; keep-alives\"\r\n\
6;Web Gateway;Config Service;HTTP;;8080;Intra-cluster;Configurable parameter\r\n\
7;Web Gateway;Legacy Box;TCP/UDP;;8, 443;Egress;Old protocol\r\n\
8;Web Gateway;Pager;Carrier pigeon;;1234;Egress;Unknown protocol\r\n\
* Configurable ports\r\n";
    // Windows-1252: é is 0xE9, the en dash 0x96; the rest is ASCII.
    let bytes: Vec<u8> = csv
        .chars()
        .map(|c| match c {
            '\u{e9}' => 0xE9,
            '\u{2013}' => 0x96,
            c => u8::try_from(c).expect("ASCII"),
        })
        .collect();
    std::fs::write(&doc, &bytes).unwrap();
    let out = auditor(&[
        "allowlist",
        "import",
        doc.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("windows-1252"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: {}:12: row 8: unknown protocol \"Carrier pigeon\"",
            doc.display()
        )),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["connections"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    let field = |n: usize, k: &str| rows[n - 1][k].clone();
    // Protocol grammar and the Transport column.
    assert_eq!(field(1, "transport"), "udp");
    assert_eq!(field(2, "transport"), "tcp");
    assert_eq!(field(3, "transport"), "both");
    assert_eq!(field(4, "transport"), "udp");
    assert_eq!(field(5, "transport"), "udp");
    assert_eq!(field(7, "transport"), "both");
    assert_eq!(field(8, "transport"), "unknown");
    // Ports: thousands separators, lists, configurable by description.
    assert_eq!(field(1, "ports"), serde_json::json!(["20000-45000"]));
    assert_eq!(field(2, "ports"), serde_json::json!([8443]));
    assert_eq!(field(6, "ports"), serde_json::json!(["8080*"]));
    assert_eq!(field(7, "ports"), serde_json::json!([8, 443]));
    // The alias: "MCP" alone is the Media Server.
    assert_eq!(field(3, "destination"), "Media Server");
    assert_eq!(field(3, "documented_destination"), "MCP");
    let media = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Media Server")
        .unwrap();
    assert_eq!(media["aliases"], serde_json::json!(["MCP"]));
    assert_eq!(field(1, "description"), "Caf\u{e9} media");
    assert_eq!(
        v["document"]["title"],
        "Media services \u{2013} connections"
    );

    // The YAML it writes is valid, and `check` lints what a reviewer must look at.
    let yaml = dir.join("media.yaml");
    let out = auditor(&[
        "allowlist",
        "import",
        doc.to_str().unwrap(),
        "-o",
        yaml.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = auditor(&["allowlist", "check", yaml.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("warning[small-port-in-list]: row 7: port 8"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning[unknown-transport]: row 8"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_table_names_the_nearest_header_like_line() {
    let dir = scratch("notable");
    let doc = dir.join("doc.txt");
    std::fs::write(
        &doc,
        // Names the columns, but a word before them makes it no header at all.
        "Connections\nColumns: Source Destination Protocol Port\nA B TCP 80\n",
    )
    .unwrap();
    let out = auditor(&["allowlist", "import", doc.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: {}:2: no connections table found",
            doc.display()
        )) && stderr.contains("cannot be split"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_pdf_without_pdftotext_names_the_package() {
    let dir = scratch("nopdftotext");
    let doc = dir.join("doc.pdf");
    std::fs::write(&doc, "%PDF-1.4\n").unwrap();
    let out = Command::new(AUDITOR)
        .args(["allowlist", "import", doc.to_str().unwrap()])
        .env("PATH", "")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pdftotext") && stderr.contains("poppler-utils"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
