//! The importer's promise, as properties: a table, generated and rendered in any supported
//! format (with page numbers, footnotes and repeated headers among its rows), imports to
//! exactly its rows, the same in every format; and an import that succeeds never lost a
//! row, whatever stray lines sit in the table.

use allowlist::{
    Allowlist,
    import::{Format, Options, import_text, render::render},
};
use proptest::prelude::*;

const HEADER: [&str; 7] = [
    "Connection",
    "Source",
    "Destination",
    "Protocol",
    "Port",
    "Classification",
    "Data",
];
const NAMES: &[&str] = &[
    "Tenant Service",
    "Redis 6.x",
    "Redis",
    "ORS",
    "Config Service (Cfg)",
    "Cfg",
    "Voice SIP Proxy Service",
    "Media Server",
];
const PROTOCOLS: &[&str] = &[
    "TCP",
    "UDP",
    "HTTP",
    "RTP/RTCP",
    "TCP/UDP",
    "SIP/UDP/TCP",
    "HTTPS/WSS",
    "Redis",
    "SIP/TCP",
    "Carrier pigeon",
];
const PORTS: &[&str] = &[
    "8080",
    "8,443",
    "8080, 8443",
    "5060 / 5061",
    "9092/9093*",
    "1,024-65,535",
    "6379*",
    "N/A",
    "Not known (ask)",
    "Any",
];
const CLASSES: &[&str] = &["Intra-cluster", "Egress", "Ingress/Egress"];
const FORMATS: &[Format] = &[
    Format::Tabbed,
    Format::Markdown,
    Format::Csv(b','),
    Format::Csv(b';'),
    Format::Padded,
    Format::Wikitext,
    Format::Html,
];

fn row() -> impl Strategy<Value = Vec<String>> {
    (
        prop::sample::select(NAMES),
        prop::sample::select(NAMES),
        prop::sample::select(PROTOCOLS),
        prop::sample::select(PORTS),
        prop::sample::select(CLASSES),
        "[A-Za-z][A-Za-z0-9 .,()/-]{0,40}",
    )
        .prop_map(|(s, d, p, port, c, desc)| {
            vec![
                String::new(),
                s.into(),
                d.into(),
                p.into(),
                port.into(),
                c.into(),
                desc.split_whitespace().collect::<Vec<_>>().join(" "),
            ]
        })
}

fn numbered(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    for (i, r) in rows.iter_mut().enumerate() {
        r[0] = (i + 1).to_string();
    }
    rows
}

/// The rows, without where they were in the document.
fn rows_of(a: &Allowlist) -> Vec<allowlist::Connection> {
    a.connections
        .iter()
        .cloned()
        .map(|mut c| {
            c.line = None;
            c
        })
        .collect()
}

/// Inserts `extra` lines after the lines at `at` (indices into the table's rows).
fn insert_after_rows(text: &str, header_line: &str, at: &[(usize, String)]) -> String {
    let mut out = String::new();
    let mut in_table = false;
    let mut row = 0;
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if in_table && !line.trim().is_empty() && !line.starts_with("|--") {
            for (_, extra) in at.iter().filter(|(i, _)| *i == row) {
                out.push_str(extra);
                out.push('\n');
            }
            row += 1;
        }
        if line == header_line {
            in_table = true;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn a_rendered_table_imports_to_its_rows_in_every_format(
        rows in prop::collection::vec(row(), 1..20),
        format in prop::sample::select(FORMATS),
        extras in prop::collection::vec((0usize..20, prop::sample::select(&["", "Page 2", "3", "* Configurable ports", "- 4 -", "HEADER"][..])), 0..4),
    ) {
        let rows = numbered(rows);
        let reference = import_text(&render(Format::Tabbed, &HEADER, &rows), None, Options::default())
            .expect("the tab-separated rendering imports");
        prop_assert_eq!(reference.allowlist.connections.len(), rows.len());
        let mut text = render(format, &HEADER, &rows);
        if !matches!(format, Format::Wikitext | Format::Html) {
            // Page numbers, footnotes and repeated headers among the rows.
            let header_line = text.lines().find(|l| l.contains("Destination")).unwrap().to_string();
            let extras: Vec<(usize, String)> = extras
                .into_iter()
                .map(|(i, e)| (i, if e == "HEADER" { header_line.clone() } else { e.to_string() }))
                .collect();
            text = insert_after_rows(&text, &header_line, &extras);
        }
        let got = import_text(&text, None, Options::default());
        prop_assert!(got.is_ok(), "{:?}: {}\n{}", format, got.unwrap_err(), text);
        let got = got.unwrap();
        prop_assert_eq!(got.format, format);
        prop_assert_eq!(got.skipped_lines, 0);
        prop_assert_eq!(rows_of(&got.allowlist), rows_of(&reference.allowlist), "{}", text);
    }

    #[test]
    fn an_import_that_succeeds_lost_no_row(
        rows in prop::collection::vec(row(), 1..12),
        junk in prop::collection::vec((0usize..12, "[A-Za-z][A-Za-z ]{0,20}"), 1..4),
    ) {
        let rows = numbered(rows);
        let text = render(Format::Tabbed, &HEADER, &rows);
        // Stray lines, each after a blank line (so not a wrapped cell).
        let header_line = HEADER.join("\t");
        let junk: Vec<(usize, String)> = junk.into_iter().map(|(i, j)| (i, format!("\n{j}"))).collect();
        let text = insert_after_rows(&text, &header_line, &junk);
        if let Ok(a) = allowlist::import(&text, None) {
            prop_assert_eq!(a.connections.len(), rows.len(), "{}", text);
        }
        let lenient = import_text(&text, None, Options { lenient: true }).expect("lenient imports");
        prop_assert_eq!(lenient.allowlist.connections.len(), rows.len());
        prop_assert!(lenient.skipped_lines <= junk.len());
    }
}
