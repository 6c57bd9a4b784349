//! The importer's promise, as properties: a table, generated and rendered in any supported
//! format (with page numbers, footnotes and repeated headers among its rows), imports to
//! exactly its rows, the same in every format; and an import that succeeds never lost a
//! row, whatever stray lines sit in the table. And the allowlist file the importer writes
//! reads back as the same allowlist, whatever the document's text holds.

use allowlist::{
    Allowlist, Classification, Connection, PortSpec, Ports, Service, file,
    import::{
        Format, Options, import_text, pdf_geometry,
        render::{render, render_bbox},
    },
    names,
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

/// Strings a YAML writer can get wrong: indicators, comments, booleans, nulls and numbers
/// in plain form, quotes, edge whitespace, line breaks, controls, non-ASCII, empty.
const HOSTILE: &[&str] = &[
    "",
    " ",
    "yes",
    "no",
    "No",
    "on",
    "off",
    "y",
    "n",
    "true",
    "null",
    "Null",
    "~",
    "8080",
    "1e3",
    "0x1F",
    "0o17",
    ".inf",
    "-.5",
    "1_000",
    "12:30",
    "2026-12-04",
    "a: b",
    "a:b",
    "ends:",
    "x #y",
    "#c",
    "- x",
    "-",
    "* x",
    "*x",
    "&x",
    "!x",
    "%x",
    "@x",
    "`x",
    "|",
    ">",
    "?",
    "? x",
    "[x]",
    "{x}",
    "a, b",
    "'q'",
    "\"q\"",
    "it's",
    "back\\slash",
    " lead",
    "trail ",
    "tab\tx",
    "\tlead",
    "line\nbreak",
    "cr\rx",
    "del\u{7f}x",
    "nul\0x",
    "bell\u{7}",
    "esc\u{1b}[0m",
    "nel\u{85}x",
    "c1\u{9b}x",
    "nbsp\u{a0}x",
    "ls\u{2028}x",
    "ps\u{2029}x",
    "bom\u{feff}x",
    "Zürich",
    "東京",
    "emoji 😀",
    "---",
    "...",
    "<<",
    "=",
];

/// A hostile string: a specimen, a few glued together, or random text from an alphabet
/// of YAML's special characters.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(HOSTILE).prop_map(str::to_string),
        prop::collection::vec(prop::sample::select(HOSTILE), 1..4).prop_map(|v| v.concat()),
        "[ \t\n\r#:,'\"\\\\\\[\\]{}|>?~*&!%@`a-z0-9\u{7f}\u{85}\u{a0}\u{2028}\u{feff}é漢😀-]{0,12}",
    ]
}

/// An allowlist whose free text is hostile. The reader cleans whitespace in names and
/// descriptions (`names::clean`), so those are generated clean: the writer must keep
/// every other character.
fn hostile_allowlist() -> impl Strategy<Value = Allowlist> {
    (
        prop::collection::vec((hostile(), prop::collection::vec(hostile(), 0..3)), 1..5),
        prop::option::of(hostile()),
        prop::option::of(hostile()),
        prop::collection::vec(
            (
                0usize..5,
                0usize..5,
                prop::sample::select(PROTOCOLS),
                0u8..4,
                hostile(),
                hostile(),
                prop::option::of(hostile()),
                prop::sample::select(CLASSES),
            ),
            1..6,
        ),
    )
        .prop_map(|(names_and_aliases, title, source, rows)| {
            // Unique, non-empty names and aliases: the reader refuses others.
            let names_only: Vec<String> = names_and_aliases
                .iter()
                .enumerate()
                .map(|(i, (name, _))| names::clean(&format!("{i} {name}")))
                .collect();
            let mut taken: std::collections::HashSet<String> = names_only.iter().cloned().collect();
            let services: Vec<Service> = names_only
                .into_iter()
                .zip(names_and_aliases)
                .map(|(name, (_, aliases))| Service {
                    kind: names::kind_of(&name),
                    aliases: aliases
                        .iter()
                        .map(|a| names::clean(a))
                        .filter(|a| !a.is_empty() && taken.insert(a.clone()))
                        .collect(),
                    name,
                })
                .collect();
            let connections = rows
                .into_iter()
                .enumerate()
                .map(
                    |(i, (s, d, protocol, ports, reason, description, written, class))| {
                        let read = names::protocol(protocol).expect("a known protocol");
                        let ports = match ports {
                            0 => Ports::Listed(vec![PortSpec::single(8080, false)]),
                            1 => Ports::Unknown { reason },
                            2 => Ports::Any { reason },
                            _ => Ports::Listed(vec![
                                PortSpec::single(1, true),
                                PortSpec::single(65535, false),
                            ]),
                        };
                        Connection {
                            number: Some(i as u32 + 1),
                            source: services[s % services.len()].name.clone(),
                            destination: services[d % services.len()].name.clone(),
                            protocol: read.name,
                            transport: read.transport,
                            ports,
                            classification: Classification::parse_list(class).unwrap(),
                            description: names::clean(&description),
                            documented_source: written,
                            documented_destination: None,
                            line: Some(i as u32 + 10),
                        }
                    },
                )
                .collect();
            Allowlist {
                document: allowlist::model::DocumentRef { title, source },
                services,
                connections,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn a_written_allowlist_reads_back_the_same(a in hostile_allowlist(), document in hostile()) {
        // The header comment names the document: its name may hold line breaks too.
        let yaml = file::to_yaml(&a, &file::import_header(&document));
        let back = file::parse(&yaml, "written.yaml");
        prop_assert!(back.is_ok(), "{}\n{}", back.unwrap_err(), yaml);
        prop_assert_eq!(back.unwrap(), a, "{}", yaml);
    }
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
        let lenient = import_text(&text, None, Options { lenient: true, ..Options::default() }).expect("lenient imports");
        prop_assert_eq!(lenient.allowlist.connections.len(), rows.len());
        prop_assert!(lenient.skipped_lines <= junk.len());
    }

    /// Single-spaced text (a PDF viewer's copy) with the names known: it imports to
    /// exactly the table's rows, or fails; it never imports a wrong split, whatever the
    /// names (one a prefix of another, one also a protocol's name, versions, aliases).
    #[test]
    fn a_single_spaced_table_imports_its_rows_or_fails_never_a_wrong_split(
        rows in prop::collection::vec(row(), 1..15),
        given in prop::sample::subsequence(NAMES, 0..=NAMES.len()),
    ) {
        let rows = numbered(rows);
        let reference = import_text(&render(Format::Tabbed, &HEADER, &rows), None, Options::default())
            .expect("the tab-separated rendering imports");
        let text = render(Format::Spaced, &HEADER, &rows);
        let options = Options {
            services: given.iter().map(|n| n.to_string()).collect(),
            ..Options::default()
        };
        if let Ok(got) = import_text(&text, None, options) {
            prop_assert_eq!(got.format, Format::Spaced);
            prop_assert_eq!(rows_of(&got.allowlist), rows_of(&reference.allowlist), "{}", text);
        }
    }

    /// A table as a browser prints it to PDF, read back through the words' boxes: wrapped
    /// cells centred in their rows, port ranges broken at their hyphen, the header and a
    /// title-and-page footer on every page. It imports to exactly the table's rows.
    #[test]
    fn a_table_printed_to_pdf_imports_by_geometry_to_its_rows(
        rows in prop::collection::vec(row(), 1..25),
        widths in prop::collection::vec(4usize..24, 7),
        per_page in 2usize..12,
    ) {
        // A word that ends in a hyphen or slash cannot be told, at a line's end, from a
        // word a browser broke there: the generator writes none.
        let rows: Vec<Vec<String>> = numbered(rows)
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| c.split(' ').map(|w| w.trim_end_matches(['-', '/'])).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "))
                    .collect()
            })
            .collect();
        let reference = import_text(&render(Format::Tabbed, &HEADER, &rows), None, Options::default())
            .expect("the tab-separated rendering imports");
        let xhtml = render_bbox("Voice Platform connections", &HEADER, &rows, &widths, per_page);
        let laid = pdf_geometry::lay_out(&pdf_geometry::parse_bbox(&xhtml));
        prop_assert!(laid.is_some(), "no header found\n{}", xhtml);
        let laid = laid.unwrap();
        prop_assert!(laid.problems.is_empty(), "{:?}\n{}", laid.problems, laid.text);
        let got = import_text(&laid.text, None, Options::default());
        prop_assert!(got.is_ok(), "{}\n{}", got.unwrap_err(), laid.text);
        let got = got.unwrap();
        prop_assert_eq!(rows_of(&got.allowlist), rows_of(&reference.allowlist), "{}", laid.text);
        prop_assert_eq!(got.repeated_headers, rows.len().div_ceil(per_page) - 1);
        prop_assert_eq!(laid.furniture, rows.len().div_ceil(per_page));
    }
}
