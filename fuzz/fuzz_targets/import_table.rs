//! A generated table, rendered in any format the importer reads, with page numbers,
//! footnotes, repeated headers and stray text among its rows, must import to exactly its
//! rows, or fail: an import that succeeds never lost a row. With `lenient` it always
//! imports its rows, having skipped at most the stray lines. Two renderings take their
//! own path: single-spaced text (a PDF viewer's copy), read with the names given, which
//! imports exactly or fails and never splits a row wrongly; and a PDF's words with their
//! boxes (`render_bbox`, as `pdftotext -bbox-layout` prints a browser's PDF), read by
//! geometry, which imports exactly.
#![no_main]

use allowlist::import::{
    Format, Options, import_text, pdf_geometry,
    render::{render, render_bbox},
};
use libfuzzer_sys::fuzz_target;

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
    "Carrier pigeon",
];
const PORTS: &[&str] = &[
    "8080",
    "8,443",
    "8080, 8443",
    "5060 / 5061",
    "9092/9093*",
    "1,024-65,535",
    "N/A",
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
const EXTRAS: &[&str] = &["", "Page 2", "17", "* Configurable ports", "- 4 -"];

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.iter().copied();
    let mut pick = |n: usize| bytes.next().map_or(0, |b| b as usize % n);
    let format = FORMATS[pick(FORMATS.len())];
    let count = 1 + pick(30);
    let mut rows = Vec::new();
    for i in 0..count {
        rows.push(vec![
            (i + 1).to_string(),
            NAMES[pick(NAMES.len())].to_string(),
            NAMES[pick(NAMES.len())].to_string(),
            PROTOCOLS[pick(PROTOCOLS.len())].to_string(),
            PORTS[pick(PORTS.len())].to_string(),
            CLASSES[pick(CLASSES.len())].to_string(),
            format!("Row {i} data"),
        ]);
    }
    let reference = import_text(&render(Format::Tabbed, &HEADER, &rows), None, Options::default())
        .map(|i| i.allowlist.connections);
    if pick(4) == 0 {
        // Single-spaced, with some of the names known.
        let text = render(Format::Spaced, &HEADER, &rows);
        let services = NAMES.iter().filter(|_| pick(3) != 0).map(|n| n.to_string()).collect();
        let options = Options { services, ..Options::default() };
        if let (Ok(got), Ok(want)) = (import_text(&text, None, options), &reference) {
            let strip = |c: &[allowlist::Connection]| {
                c.iter().cloned().map(|mut c| { c.line = None; c }).collect::<Vec<_>>()
            };
            assert_eq!(strip(&got.allowlist.connections), strip(want), "{text}");
        }
        return;
    }
    if pick(4) == 0 {
        // A browser's PDF, read by geometry: wrapped cells, repeated headers, footers.
        // (A word that ends in a hyphen or slash reads as one a browser broke: none is generated.)
        let widths: Vec<usize> = (0..HEADER.len()).map(|_| 4 + pick(20)).collect();
        let xhtml = render_bbox("Connections", &HEADER, &rows, &widths, 1 + pick(10));
        let laid = pdf_geometry::lay_out(&pdf_geometry::parse_bbox(&xhtml)).expect("a header");
        assert!(laid.problems.is_empty(), "{:?}", laid.problems);
        let got = import_text(&laid.text, None, Options::default()).expect("imports");
        assert_eq!(got.allowlist.connections.len(), count, "{}", laid.text);
        return;
    }
    let mut text = render(format, &HEADER, &rows);
    let mut stray = 0;
    if !matches!(format, Format::Wikitext | Format::Html) {
        // After some rows: an artifact, or stray text after a blank line.
        let mut out = String::new();
        let mut after_header = false;
        for line in text.lines() {
            out.push_str(line);
            out.push('\n');
            if after_header && !line.starts_with("|--") && pick(4) == 0 {
                if pick(3) == 0 {
                    out.push_str("\nStray text here\n");
                    stray += 1;
                } else {
                    out.push_str(EXTRAS[pick(EXTRAS.len())]);
                    out.push('\n');
                }
            }
            after_header |= line.contains("Destination");
        }
        text = out;
    }
    if let Ok(i) = import_text(&text, None, Options::default()) {
        assert_eq!(i.allowlist.connections.len(), count, "{text}");
    }
    let i = import_text(&text, None, Options { lenient: true, ..Options::default() })
        .expect("lenient imports");
    assert_eq!(i.allowlist.connections.len(), count, "{text}");
    assert!(i.skipped_lines <= stray, "{text}");
});
