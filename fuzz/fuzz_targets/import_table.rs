//! A generated table, rendered in any format the importer reads, with page numbers,
//! footnotes, repeated headers and stray text among its rows, must import to exactly its
//! rows, or fail: an import that succeeds never lost a row. With `lenient` it always
//! imports its rows, having skipped at most the stray lines.
#![no_main]

use allowlist::import::{Format, Options, import_text, render::render};
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
    let i = import_text(&text, None, Options { lenient: true }).expect("lenient imports");
    assert_eq!(i.allowlist.connections.len(), count, "{text}");
    assert!(i.skipped_lines <= stray, "{text}");
});
