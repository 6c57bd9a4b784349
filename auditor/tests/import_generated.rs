//! Tables of the connections-table family that no document holds: generated here (long
//! cells that wrap, port lists and ranges, multi-word names, several pages), printed to
//! PDF by headless Chromium at two page widths, with the browser's cell centring and
//! with title-and-page footers, and copied as single-spaced text. Each must import
//! through the real CLI to exactly what its tab-separated rendering imports to, every
//! row and cell. And a single-spaced row that splits two ways fails, naming both.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

const AUDITOR: &str = env!("CARGO_BIN_EXE_auditor");
const TITLE: &str = "Voice Platform connections";
const HEAD: [&str; 7] = [
    "Connection",
    "Source",
    "Destination",
    "Protocol",
    "Port",
    "Classification",
    "Data that travels on this connection",
];
const NAMES: [&str; 14] = [
    "Customer browser",
    "Genesys Authentication",
    "Voice Agent State Service",
    "Redis",
    "Kafka",
    "Voice Call State Service",
    "Media Control Platform",
    "Session Border Controller",
    "Object storage",
    "PostgreSQL",
    "Voice Registrar Service",
    "Designer",
    "Customer API endpoint",
    "Call Thread Manager",
];
const PROTOCOLS: [&str; 8] = [
    "HTTPS",
    "HTTP",
    "TCP",
    "UDP",
    "gRPC",
    "SIP/UDP/TCP",
    "WSS",
    "TCP/UDP",
];
const PORTS: [&str; 8] = [
    "8095",
    "443",
    "6379",
    "5060, 5061",
    "20000-45000",
    "8080, 8443, 9443",
    "30000-30999",
    "9092",
];
const CLASSES: [&str; 3] = ["Intra-cluster", "Egress", "Ingress"];
const WORDS: [&str; 20] = [
    "the",
    "service",
    "sends",
    "session",
    "state",
    "tokens",
    "and",
    "media",
    "events",
    "to",
    "its",
    "peers",
    "for",
    "recovery",
    "over",
    "a",
    "long-lived",
    "connection",
    "(TLS)",
    "per-tenant",
];

/// A small deterministic generator (xorshift), so a failure names a seed to replay.
struct Rng(u64);

impl Rng {
    fn pick(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn table(seed: u64) -> Vec<[String; 7]> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let count = 20 + rng.pick(40);
    (1..=count)
        .map(|i| {
            let s = rng.pick(NAMES.len());
            let d = (s + 1 + rng.pick(NAMES.len() - 1)) % NAMES.len();
            let words = 2 + rng.pick(40);
            let mut desc: Vec<&str> = (0..words).map(|_| WORDS[rng.pick(WORDS.len())]).collect();
            desc[0] = "Data";
            [
                i.to_string(),
                NAMES[s].to_string(),
                NAMES[d].to_string(),
                PROTOCOLS[rng.pick(PROTOCOLS.len())].to_string(),
                PORTS[rng.pick(PORTS.len())].to_string(),
                CLASSES[rng.pick(CLASSES.len())].to_string(),
                desc.join(" ") + ".",
            ]
        })
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("auditor-generated-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The JSON a real import writes, each row without its document line (each rendering
/// has its own), and the summary line; or the stderr of a failed import.
fn import(path: &Path, args: &[&str]) -> Result<(Vec<Value>, String), String> {
    let out = Command::new(AUDITOR)
        .args(["allowlist", "import", "--format", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("run auditor");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(stderr);
    }
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.as_object_mut().unwrap().remove("line");
            c
        })
        .collect();
    Ok((rows, stderr))
}

/// What the table imports to from its tab-separated rendering: the reference.
fn reference(dir: &Path, rows: &[[String; 7]]) -> Vec<Value> {
    let tsv: String = std::iter::once(HEAD.join("\t"))
        .chain(rows.iter().map(|r| r.join("\t")))
        .map(|l| l + "\n")
        .collect();
    std::fs::write(dir.join("table.tsv"), tsv).unwrap();
    let (got, summary) = import(&dir.join("table.tsv"), &[]).expect("the TSV imports");
    assert_eq!(got.len(), rows.len(), "{summary}");
    // The reference itself holds the generated cells.
    for (g, r) in got.iter().zip(rows) {
        assert_eq!(g["number"], r[0].parse::<u64>().unwrap());
        assert_eq!(g["description"], r[6].as_str());
    }
    got
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The table as a page printed by headless Chromium with `style`. None (after saying
/// SKIPPED) without Chromium or pdftotext, unless CI or AUDITOR_REQUIRE_KERNEL is set.
fn print(dir: &Path, rows: &[[String; 7]], style: &str) -> Option<PathBuf> {
    let chromium = common::chromium_for_pdf()?;
    let head: String = HEAD.iter().map(|h| format!("<th>{h}</th>")).collect();
    let body: String = rows
        .iter()
        .map(|r| {
            format!(
                "<tr>{}</tr>\n",
                r.iter()
                    .map(|c| format!("<td>{}</td>", html_escape(c)))
                    .collect::<String>()
            )
        })
        .collect();
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{TITLE}</title><style>{style}</style></head><body>\n<h1>{TITLE}</h1>\n<p>The numbers on the diagram's lines refer to this table.</p>\n<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n<p>Ports in ranges are allocated per call.</p>\n</body></html>\n"
    );
    let page = dir.join("page.html");
    std::fs::write(&page, html).unwrap();
    let pdf = dir.join("table.pdf");
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        pdf.is_file(),
        "chromium printed no PDF: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(pdf)
}

const BASE: &str =
    "body { font: 9pt sans-serif; } table { border-collapse: collapse; width: 100%; }";

/// Each generated table printed four ways must import to what its TSV imports to.
#[test]
fn generated_tables_printed_by_chromium_import_exactly() {
    let layouts = [
        // The browser's own cell styles: header centred, cells centred vertically.
        (
            "a4-browser-defaults",
            "@page { size: A4 portrait; margin: 12mm; } td, th { padding: 1px 4px; }",
        ),
        // A narrower page: more wrapping, more pages, rows split across page breaks.
        (
            "a5-bordered",
            "@page { size: A5 portrait; margin: 10mm; } td, th { text-align: left; padding: 2px 6px 2px 2px; border: 1px solid #bbb; }",
        ),
        // Top-aligned cells, as documentation sites style them, landscape.
        (
            "a4-landscape-top",
            "@page { size: A4 landscape; margin: 12mm; } td, th { text-align: left; vertical-align: top; padding: 3px; border-bottom: 1px solid #999; }",
        ),
        // The document's title and the page number in every page's footer.
        (
            "a5-title-footer",
            "@page { size: A5 portrait; margin: 12mm; @bottom-center { content: \"Voice Platform connections\\9\" counter(page); } } td, th { padding: 2px 5px; }",
        ),
    ];
    for seed in [1u64, 2, 3] {
        let rows = table(seed);
        for (name, style) in layouts {
            let dir = scratch(&format!("{seed}-{name}"));
            let want = reference(&dir, &rows);
            let Some(pdf) = print(&dir, &rows, &format!("{BASE} {style}")) else {
                return;
            };
            let (got, summary) = import(&pdf, &[])
                .unwrap_or_else(|e| panic!("seed {seed}, {name}: the PDF failed to import:\n{e}"));
            assert!(
                summary.contains("PDF read by its words' positions"),
                "seed {seed}, {name}: {summary}"
            );
            assert_eq!(got.len(), want.len(), "seed {seed}, {name}: {summary}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g, w, "seed {seed}, {name}");
            }
            assert!(summary.contains("0 line(s) skipped"), "{summary}");
            // Multi-page: the header came again and the footers were counted.
            assert!(
                !summary.contains(" 0 repeated headers"),
                "seed {seed}, {name}: {summary}"
            );
            assert!(
                !summary.contains(" 0 page numbers/footers"),
                "seed {seed}, {name}: {summary}"
            );
        }
    }
}

/// A page whose CSS widens the line height opens gaps between a cell's lines as wide as
/// the gaps between rows: the import either reads the table exactly or fails naming the
/// page; it never imports rows with words moved between them.
#[test]
fn a_table_printed_with_a_tall_line_height_imports_exactly_or_fails() {
    for seed in [1u64, 2] {
        let rows = table(seed);
        let dir = scratch(&format!("{seed}-line-height"));
        let want = reference(&dir, &rows);
        let style = format!(
            "{BASE} @page {{ size: A4 portrait; margin: 12mm; }} td, th {{ line-height: 1.6; padding: 1px 4px; }}"
        );
        let Some(pdf) = print(&dir, &rows, &style) else {
            return;
        };
        match import(&pdf, &[]) {
            Ok((got, summary)) => assert_eq!(got, want, "seed {seed}: {summary}"),
            Err(e) => assert!(e.contains("table.pdf: page "), "seed {seed}: {e}"),
        }
    }
}

/// The same tables as a PDF viewer copies them: single spaces, with the names given.
#[test]
fn generated_tables_copied_single_spaced_import_exactly() {
    for seed in [1u64, 2, 3, 4, 5] {
        let rows = table(seed);
        let dir = scratch(&format!("spaced-{seed}"));
        let want = reference(&dir, &rows);
        let text: String = [TITLE.to_string(), String::new(), HEAD.join(" ")]
            .into_iter()
            .chain(rows.iter().map(|r| r.join(" ")))
            .map(|l| l + "\n")
            .collect();
        std::fs::write(dir.join("copied.txt"), text).unwrap();
        std::fs::write(dir.join("services.txt"), NAMES.join("\n")).unwrap();
        let services = dir.join("services.txt");
        let (got, summary) = import(
            &dir.join("copied.txt"),
            &["--services", services.to_str().unwrap()],
        )
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(summary.contains("single-spaced"), "{summary}");
        assert_eq!(got, want, "seed {seed}");
    }
}

/// Two documented names that are both prefixes of a third reading: the row splits two
/// ways, and the import fails at its line naming both readings, never picking one.
#[test]
fn a_single_spaced_row_that_splits_two_ways_fails_naming_both() {
    let dir = scratch("ambiguous");
    let text = format!(
        "{TITLE}\n\n{}\n1 Voice Agent State Service HTTP 8080 Intra-cluster Agent states.\n2 Voice Redis Redis 6379 Egress Cache.\n",
        HEAD.join(" ")
    );
    std::fs::write(dir.join("copied.txt"), text).unwrap();
    std::fs::write(
        dir.join("services.txt"),
        "Voice\nAgent State Service\nVoice Agent\nState Service\nRedis\n",
    )
    .unwrap();
    let services = dir.join("services.txt");
    let err = import(
        &dir.join("copied.txt"),
        &["--services", services.to_str().unwrap()],
    )
    .expect_err("an ambiguous split must not import");
    assert!(err.contains("copied.txt:4: "), "{err}");
    assert!(
        err.contains(r#""Voice" → "Agent State Service""#)
            && err.contains(r#""Voice Agent" → "State Service""#),
        "{err}"
    );
    assert!(err.contains("--services"), "{err}");
    // Row 2 splits one way and is not what failed.
    assert!(!err.contains("copied.txt:5"), "{err}");
}
