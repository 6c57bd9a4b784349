//! Names are data, never markup. Services named with `"`, `\`, `|`, `<svg/onload=1>`,
//! a newline and `[x](javascript:alert(1))` go through the whole path a user runs: an
//! architecture document imported by `auditor allowlist import`, an inventory, the daemon
//! on the real kernel judging real connections between network namespaces, and every
//! output, each checked by its own parser: /metrics by `promtool check metrics`, events
//! and the JSON report as JSON (the events against their schema), the Markdown report by
//! a strict check (no raw tag, no live link, every table row as wide as its header) and
//! the HTML report by an HTML parser (no injected element or attribute).

use std::{path::Path, process::Command, sync::Mutex, time::Duration};

use auditor_tests::{
    events::read_valid,
    kernel_tests_enabled,
    lab::Lab,
    peer::{client, serve},
    services::{Daemon, metric, wait_for},
    workspace_bin,
};
use serde_json::{Value, json};

static KERNEL: Mutex<()> = Mutex::new(());

const DOC: &str = "Doc \"q\" \\ svc|<svg/onload=1>";
const SRC: &str = "Src \"q\" \\ b|p <svg/onload=1>";
const LINK: &str = "Dst [x](javascript:alert(1))";
const NEWLINE: &str = "Nl <i>svc</i>\nsecond line";
/// The inventory reads a name's whitespace as one space; this is the name judged.
const NEWLINE_JUDGED: &str = "Nl <i>svc</i> second line";
/// A node name is taken as given: here the newline reaches every output.
const NODE: &str = "node \"1\" \\|<b onmouseover=1>n</b>\nline 2";

/// True when `v` holds the string `s` anywhere.
fn holds(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Array(a) => a.iter().any(|x| holds(x, s)),
        Value::Object(o) => o.values().any(|x| holds(x, s)),
        _ => false,
    }
}

fn auditor(args: &[&str]) -> String {
    let out = Command::new(workspace_bin("auditor"))
        .args(args)
        .output()
        .expect("auditor runs");
    assert!(
        out.status.success(),
        "auditor {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The number of table columns a Markdown row has: its `|` not escaped by a backslash.
fn columns(row: &str) -> usize {
    let mut n = 0;
    let mut escaped = false;
    for c in row.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => n += 1,
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    n
}

fn check_markdown(md: &str) {
    let lower = md.to_lowercase();
    // The names' text may stay (escaped); no markup may.
    for raw in ["<svg", "<i>", "<b ", "](", "[x]"] {
        assert!(
            !lower.contains(raw),
            "raw {raw:?} in the Markdown report:\n{md}"
        );
    }
    // Every row of a table has exactly the columns of its header.
    let mut header: Option<usize> = None;
    for (i, line) in md.lines().enumerate() {
        if line.starts_with('|') {
            let n = columns(line);
            match header {
                None => header = Some(n),
                Some(h) => assert_eq!(n, h, "line {}: {line}\n{md}", i + 1),
            }
        } else {
            header = None;
        }
    }
    for name in [DOC, SRC, LINK] {
        assert!(
            md.contains(&auditor::report::markdown::cell(name)),
            "{name:?} not in the Markdown report as escaped text:\n{md}"
        );
    }
}

fn check_html(html: &str) {
    let doc = scraper::Html::parse_document(html);
    let all = scraper::Selector::parse("*").unwrap();
    for el in doc.select(&all) {
        let name = el.value().name();
        // The report itself uses <b> (cards), never <i> or scripts; the injected <b>
        // carries an on* attribute, caught below.
        assert!(
            !matches!(name, "i" | "script"),
            "an injected <{name}> element in the HTML report"
        );
        for (attr, value) in el.value().attrs() {
            assert!(
                !attr.starts_with("on"),
                "an injected {attr}={value:?} on <{name}> in the HTML report"
            );
            assert!(
                !value.trim_start().to_lowercase().starts_with("javascript:"),
                "a javascript: {attr} on <{name}> in the HTML report"
            );
        }
    }
    let text: String = doc.root_element().text().collect();
    for name in [DOC, SRC, LINK] {
        assert!(
            text.contains(name),
            "{name:?} not shown as text in the HTML report"
        );
    }
}

fn promtool_check(scrape: &str, dir: &Path) {
    let file = dir.join("scrape.txt");
    std::fs::write(&file, scrape).unwrap();
    let out = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("promtool (Debian's prometheus package; `cargo xtask setup`)");
    // promtool exits 1 on a scrape it cannot parse, 3 on lint findings only.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || out.status.code() == Some(3) && !stderr.contains("error while"),
        "promtool check metrics failed ({:?}): {stderr}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn hostile_names_stay_data_in_every_output() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("hostile_names_stay_data_in_every_output") {
        return;
    }
    let lab = Lab::new(&["doc", "src", "dst", "nl"]).expect("lab");
    let dir = std::env::temp_dir().join(format!("auditor-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let addr = |h: &str| lab.host(h).v4.to_string();

    // The architecture document, as a CSV table, imported as a user would.
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    std::fs::write(
        dir.join("architecture.csv"),
        format!(
            "Source,Destination,Protocol,Port,Data\n{},{},TCP,9100,config\n{},{},TCP,7000,other\n",
            q(DOC),
            q(SRC),
            q(SRC),
            q(LINK)
        ),
    )
    .unwrap();
    let allowlist = dir.join("allowlist.yaml");
    auditor(&[
        "allowlist",
        "import",
        &dir.join("architecture.csv").display().to_string(),
        "-o",
        &allowlist.display().to_string(),
    ]);
    // The inventory as JSON (valid YAML), so every name is written exactly.
    let inventory = dir.join("inventory.yaml");
    std::fs::write(
        &inventory,
        json!({"version": 1, "services": {
            DOC: {"addresses": [addr("doc")]},
            SRC: {"addresses": [addr("src")]},
            LINK: {"addresses": [addr("dst")]},
            NEWLINE: {"addresses": [addr("nl")]},
        }})
        .to_string(),
    )
    .unwrap();
    let store = dir.join("store.db");
    let events = dir.join("events.jsonl");
    let args: Vec<String> = [
        "--allowlist",
        &allowlist.display().to_string(),
        "--inventory",
        &inventory.display().to_string(),
        "--store",
        &store.display().to_string(),
        "--events",
        &events.display().to_string(),
        "--node",
        NODE,
        "--store-flush",
        "200ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let daemon = Daemon::start(&args, dir.join("daemon.log")).expect("daemon");

    // Documented: DOC -> SRC 9100. Violations: SRC -> LINK and SRC -> NEWLINE on 6379.
    let mut server = serve(&lab, "src", &["listen", "tcp", &addr("src"), "9100", "1"]);
    client(&lab, "doc", &["connect", &addr("src"), "9100"]);
    assert!(server.wait().unwrap().success());
    for host in ["dst", "nl"] {
        let mut server = serve(&lab, host, &["listen", "tcp", &addr(host), "6379", "1"]);
        client(&lab, "src", &["connect", &addr(host), "6379"]);
        assert!(server.wait().unwrap().success());
    }
    let scrape = wait_for("both violations counted", Duration::from_secs(20), || {
        let text = daemon.metrics();
        let n = text
            .lines()
            .filter(|l| l.starts_with("auditor_violations_total{") && l.contains("port=\"6379\""))
            .count();
        (n >= 2).then_some(text)
    });
    assert!(
        metric(
            &scrape,
            "auditor_connections_total",
            &[("verdict", "allowed")]
        )
        .is_some(),
        "{scrape}"
    );
    // The series names the services exactly, escaped as the format requires.
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    for name in [SRC, LINK, NEWLINE_JUDGED, NODE] {
        assert!(
            scrape.contains(&format!("\"{}\"", esc(name))),
            "{name:?} not escaped in the scrape:\n{scrape}"
        );
    }
    promtool_check(&scrape, &dir);

    // Events: JSON that validates, with the names as they are.
    let evs = wait_for("the events", Duration::from_secs(20), || {
        let evs = read_valid(&events);
        [LINK, NEWLINE_JUDGED]
            .iter()
            .all(|n| evs.iter().any(|e| holds(e, n)))
            .then_some(evs)
    });
    assert!(evs.iter().any(|e| holds(e, SRC) && holds(e, NODE)));
    daemon.stop().expect("clean stop");

    let s = store.display().to_string();
    let report: Value =
        serde_json::from_str(&auditor(&["report", "--store", &s, "--format", "json"]))
            .expect("the JSON report is JSON");
    for name in [DOC, SRC, LINK, NEWLINE_JUDGED, NODE] {
        assert!(holds(&report, name), "{name:?} not in the JSON report");
    }
    check_markdown(&auditor(&["report", "--store", &s, "--format", "markdown"]));
    check_html(&auditor(&["report", "--store", &s, "--format", "html"]));
    let _ = std::fs::remove_dir_all(&dir);
}
