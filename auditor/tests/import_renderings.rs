//! The bundled 60-row connections table, saved the ways users hold it (CSV, Markdown, a
//! saved HTML page, TSV with BOM and CRLF, UTF-16, space-padded columns, a MediaWiki
//! table, and a PDF printed by headless Chromium), imported through the real CLI: each
//! must give the same 60 rows as the bundled allowlist.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use allowlist::{Allowlist, Classification, Ports, file};
use serde_json::Value;

const AUDITOR: &str = env!("CARGO_BIN_EXE_auditor");
const YAML: &str = include_str!("../../allowlist/voice-microservices.yaml");
const HEAD: [&str; 7] = [
    "Connection",
    "Source",
    "Destination",
    "Protocol",
    "Port",
    "Classification",
    "Data that travels on this connection",
];

fn seed() -> Allowlist {
    file::parse(YAML, "voice-microservices.yaml").expect("bundled allowlist")
}

/// The table's cells as the document writes them.
fn rows(a: &Allowlist) -> Vec<[String; 7]> {
    a.connections
        .iter()
        .map(|c| {
            let ports = match &c.ports {
                Ports::Listed(l) => l
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                Ports::Any { reason } | Ports::Unknown { reason } => reason.clone(),
            };
            let class = match c.classification.as_slice() {
                [Classification::IntraCluster] => "Intra-cluster".to_string(),
                [Classification::Egress] => "Egress".to_string(),
                other => Classification::list_to_string(other),
            };
            [
                c.number.map(|n| n.to_string()).unwrap_or_default(),
                c.source_as_written().to_string(),
                c.destination_as_written().to_string(),
                c.protocol.clone(),
                ports,
                class,
                c.description.clone(),
            ]
        })
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("auditor-renderings-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Imports `path` with the real CLI and `args`; returns the JSON and the summary line.
fn import_with(path: &Path, args: &[&str]) -> (Value, String) {
    let out = Command::new(AUDITOR)
        .args(["allowlist", "import", "--format", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("run auditor");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}: {stderr}", path.display());
    (serde_json::from_slice(&out.stdout).expect("JSON"), stderr)
}

/// The bundled rows without their document lines (each rendering has its own).
fn without_lines(v: &Value) -> Vec<Value> {
    v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.as_object_mut().unwrap().remove("line");
            c
        })
        .collect()
}

fn assert_same_sixty(path: &Path) -> String {
    assert_same_sixty_with(path, &[])
}

fn assert_same_sixty_with(path: &Path, args: &[&str]) -> String {
    let (got, summary) = import_with(path, args);
    let want = file::to_value(&seed());
    let (got_rows, want_rows) = (without_lines(&got), without_lines(&want));
    assert_eq!(got_rows.len(), 60, "{}: {summary}", path.display());
    for (g, w) in got_rows.iter().zip(&want_rows) {
        assert_eq!(g, w, "{}", path.display());
    }
    assert_eq!(got["services"], want["services"], "{}", path.display());
    assert!(summary.contains("0 line(s) skipped"), "{summary}");
    summary
}

fn csv_cell(c: &str, sep: char) -> String {
    if c.contains([sep, '"', '\n']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c.to_string()
    }
}

fn tsv() -> Vec<String> {
    std::iter::once(HEAD.join("\t"))
        .chain(rows(&seed()).iter().map(|r| r.join("\t")))
        .collect()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A saved documentation page: navigation, prose, a legend table, then the table.
fn html_page(style: &str) -> String {
    let mut body = String::new();
    for r in rows(&seed()) {
        body.push_str("<tr>");
        for c in &r {
            body.push_str(&format!("<td>{}</td>", html_escape(c)));
        }
        body.push_str("</tr>\n");
    }
    let head: String = HEAD.iter().map(|h| format!("<th>{h}</th>")).collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Voice Microservices architecture</title>\n<style>{style}</style>\n</head>\n<body>\n<nav><ul><li><a href=\"#\">Home</a></li><li><a href=\"#\">Architecture</a></li></ul></nav>\n<h1>Architecture</h1>\n<p>The numbers on the connection lines refer to the table below.</p>\n<table class=\"legend\"><tr><th>Connection type</th><th>Line</th></tr><tr><td>TCP</td><td>solid</td></tr></table>\n<h2>Connections table</h2>\n<table class=\"connections\">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n<p>* Configurable ports</p>\n<footer>Copyright example</footer>\n</body>\n</html>\n"
    )
}

#[test]
fn csv_with_commas_and_quotes() {
    let dir = scratch("csv");
    let mut text = HEAD.map(|h| csv_cell(h, ',')).join(",") + "\n";
    for r in rows(&seed()) {
        text += &(r
            .iter()
            .map(|c| csv_cell(c, ','))
            .collect::<Vec<_>>()
            .join(",")
            + "\n");
    }
    std::fs::write(dir.join("table.csv"), text).unwrap();
    let summary = assert_same_sixty(&dir.join("table.csv"));
    assert!(summary.contains("(CSV, UTF-8"), "{summary}");
}

#[test]
fn csv_with_semicolons_and_header_synonyms() {
    let dir = scratch("csv-semi");
    let head = [
        "No.",
        "Source service",
        "Destination service",
        "Protocol",
        "Port(s)",
        "Connection Classification",
        "Data",
    ];
    let mut text = String::from("Connections\n\n") + &head.join(";") + "\r\n";
    for r in rows(&seed()) {
        // Every cell quoted, as spreadsheets in some locales save them.
        text += &(r
            .iter()
            .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(";")
            + "\r\n");
    }
    std::fs::write(dir.join("table.csv"), text).unwrap();
    let summary = assert_same_sixty(&dir.join("table.csv"));
    assert!(summary.contains("CSV (;-separated)"), "{summary}");
}

#[test]
fn markdown() {
    let dir = scratch("md");
    let mut text = String::from("# Voice Microservices\n\nSome prose.\n\n| ")
        + &HEAD.join(" | ")
        + " |\n|"
        + &"---|".repeat(7)
        + "\n";
    for r in rows(&seed()) {
        text += &format!(
            "| {} |\n",
            r.iter()
                .map(|c| c.replace('|', "\\|"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    text += "\n\\* Configurable ports\n";
    std::fs::write(dir.join("table.md"), text).unwrap();
    assert_same_sixty(&dir.join("table.md"));
}

#[test]
fn saved_html_page() {
    let dir = scratch("html");
    std::fs::write(dir.join("page.html"), html_page("")).unwrap();
    let summary = assert_same_sixty(&dir.join("page.html"));
    assert!(summary.contains("HTML table"), "{summary}");
}

#[test]
fn tsv_with_bom_and_crlf() {
    let dir = scratch("tsv");
    let text = String::from("\u{FEFF}") + &tsv().join("\r\n") + "\r\n";
    std::fs::write(dir.join("table.tsv"), text).unwrap();
    assert_same_sixty(&dir.join("table.tsv"));
}

#[test]
fn utf16_with_bom() {
    let dir = scratch("utf16");
    let text = tsv().join("\r\n") + "\r\n";
    let bytes: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    std::fs::write(dir.join("table.txt"), bytes).unwrap();
    let summary = assert_same_sixty(&dir.join("table.txt"));
    assert!(summary.contains("UTF-16LE"), "{summary}");
}

#[test]
fn space_padded_columns() {
    let dir = scratch("padded");
    let rows = rows(&seed());
    let widths: Vec<usize> = (0..7)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([HEAD[i].len()])
                .max()
                .unwrap()
                + 3
        })
        .collect();
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<String>()
            .trim_end()
            .to_string()
    };
    let mut text = String::from("Voice Microservices\n\n") + &line(HEAD.to_vec()) + "\n";
    for (i, r) in rows.iter().enumerate() {
        text += &(line(r.iter().map(String::as_str).collect()) + "\n");
        if i == 29 {
            // A page break: footer, page number, the header again.
            text += &format!("\n{:>80}\n\x0c{}\n", "Page 1 of 2", line(HEAD.to_vec()));
        }
    }
    std::fs::write(dir.join("table.txt"), text).unwrap();
    let summary = assert_same_sixty(&dir.join("table.txt"));
    assert!(summary.contains("space-padded"), "{summary}");
    assert!(
        summary.contains("1 repeated headers, 1 page numbers"),
        "{summary}"
    );
}

/// The document's title with the page number after it (a tab, or spaces), and "Page N of
/// M", between rows: page furniture, counted, never a row.
#[test]
fn title_and_page_footers_between_rows_are_counted_not_read() {
    let dir = scratch("title-footers");
    let mut text = String::from("Voice Microservices architecture\n\n");
    for (i, line) in tsv().iter().enumerate() {
        text += line;
        text += "\n";
        match i {
            20 => text += "Voice Microservices architecture\t3\n",
            40 => text += "Voice Microservices architecture        4\n",
            50 => text += "Page 5 of 7\n",
            _ => {}
        }
    }
    std::fs::write(dir.join("table.txt"), text).unwrap();
    let summary = assert_same_sixty(&dir.join("table.txt"));
    assert!(summary.contains("3 page numbers/footers"), "{summary}");
}

/// Text a PDF viewer copies: one space between cells and words alike. The service names
/// (here the bundled allowlist's) say where a source ends.
#[test]
fn single_spaced_copy_with_services() {
    let dir = scratch("spaced");
    let mut text = String::from("Voice Microservices architecture\n\n") + &HEAD.join(" ") + "\n";
    for r in rows(&seed()) {
        text += &r.join(" ");
        text += "\n";
    }
    std::fs::write(dir.join("copied.txt"), &text).unwrap();
    let services =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../allowlist/voice-microservices.yaml");
    let summary = assert_same_sixty_with(
        &dir.join("copied.txt"),
        &["--services", services.to_str().unwrap()],
    );
    assert!(summary.contains("single-spaced"), "{summary}");

    // Without the names, a row whose source and destination are several words each
    // fails at its line, naming how to resolve it; nothing is written.
    let out = Command::new(AUDITOR)
        .args(["allowlist", "import", "--format", "json"])
        .arg(dir.join("copied.txt"))
        .output()
        .expect("run auditor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains("copied.txt:4: "), "{stderr}");
    assert!(stderr.contains("--services"), "{stderr}");
}

#[test]
fn mediawiki_table() {
    let dir = scratch("wiki");
    let mut text = String::from("== Connections ==\n{| class=\"wikitable\"\n|+ Connections\n! ")
        + &HEAD.join(" !! ")
        + "\n";
    for r in rows(&seed()) {
        text += "|-\n";
        // One cell per line, the description with a link.
        for (i, c) in r.iter().enumerate() {
            if i == 1 {
                text += &format!("| [[{c}]]\n");
            } else {
                text += &format!("| {c}\n");
            }
        }
    }
    text += "|}\n";
    std::fs::write(dir.join("table.wiki"), text).unwrap();
    let summary = assert_same_sixty(&dir.join("table.wiki"));
    assert!(summary.contains("MediaWiki"), "{summary}");
}

/// Prints the saved page with `style` to a PDF with headless Chromium. None (after saying
/// SKIPPED) when Chromium or pdftotext is missing, unless CI or AUDITOR_REQUIRE_KERNEL
/// is set: then the test fails rather than pass without having run.
fn print_pdf(name: &str, style: &str, header_footer: bool) -> Option<PathBuf> {
    let chromium = common::chromium_for_pdf()?;
    let dir = scratch(name);
    let html = dir.join("page.html");
    std::fs::write(&html, html_page(style)).unwrap();
    let pdf = dir.join("architecture.pdf");
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .args((!header_footer).then_some("--no-pdf-header-footer"))
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("run chromium");
    assert!(
        pdf.is_file(),
        "chromium printed no PDF: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(pdf)
}

/// Landscape A4, a narrow layout so that cells wrap, and a forced page break every 20
/// rows besides the natural ones.
const PRINT: &str = "@page { size: A4 landscape; margin: 12mm; } body { font: 9pt sans-serif; } \
                     table { border-collapse: collapse; width: 100%; } \
                     th, td { text-align: left; padding: 2px 18px 2px 2px; } \
                     table.connections tbody tr:nth-child(20n) { break-after: page; } \
                     td:nth-child(7), th:nth-child(7) { width: 38%; }";

#[test]
fn pdf_printed_by_headless_chromium_with_page_breaks_inside_the_table() {
    // Cells top-aligned, as documentation sites often style them.
    let Some(pdf) = print_pdf(
        "pdf-top",
        &format!("{PRINT} td {{ vertical-align: top; }}"),
        false,
    ) else {
        return;
    };
    let summary = assert_same_sixty(&pdf);
    assert!(
        summary.contains("(PDF read by its words' positions"),
        "{summary}"
    );
    // The table crossed pages: the header came again, and rows were continued.
    assert!(!summary.contains(" 0 repeated headers"), "{summary}");
    assert!(!summary.contains(" 0 continuation lines"), "{summary}");
}

#[test]
fn pdf_as_a_browser_prints_it_by_default() {
    // Cells centred vertically (a tall cell's first lines print above the row's numbered
    // line), and the date, title, address and page counter on every page.
    let Some(pdf) = print_pdf("pdf-middle", PRINT, true) else {
        return;
    };
    let summary = assert_same_sixty(&pdf);
    assert!(!summary.contains(" 0 repeated headers"), "{summary}");
    assert!(!summary.contains(" 2 page numbers"), "{summary}");
}
