//! Property tests: nothing a user can hand the importer or the file reader makes them
//! panic; they return a value or an error.

use proptest::prelude::*;

const HEADER: &str = "Connection\tSource\tDestination\tProtocol\tPort\tClassification\tData that travels on this connection";

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[0-9]{1,6}",
        "[0-9]{1,5}\\*?(/[0-9]{1,5}\\*?)?(, [0-9]{1,5})?",
        "[A-Za-z ./()*-]{0,20}",
        Just("N/A".to_string()),
        Just("Not known (x".to_string()),
        Just(")".to_string()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn importer_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = allowlist::import(&text, None);
    }

    #[test]
    fn importer_never_panics_on_table_like_text(rows in prop::collection::vec(prop::collection::vec(cell(), 0..9), 0..12)) {
        let mut doc = format!("{HEADER}\n");
        for r in rows {
            doc.push_str(&r.join("\t"));
            doc.push('\n');
        }
        if let Ok(a) = allowlist::import(&doc, None) {
            // Whatever imports must survive the file round trip unchanged.
            let yaml = allowlist::file::to_yaml(&a, &[]);
            prop_assert_eq!(allowlist::file::parse(&yaml, "rt.yaml").unwrap(), a);
        }
    }

    #[test]
    fn importer_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for lenient in [false, true] {
            let _ = allowlist::import_bytes(&bytes, None, allowlist::ImportOptions { lenient, ..Default::default() });
        }
    }

    #[test]
    fn importer_never_panics_on_html_wiki_csv_or_padded_like_text(
        prefix in prop::sample::select(&[
            "<!DOCTYPE html><table><tr><th>Source</th><th>Destination</th><th>Protocol</th><th>Port</th></tr>",
            "{|\n! Source !! Destination !! Protocol !! Port\n",
            "Source;Destination;Protocol;Port\n",
            "Source,Destination,Protocol,Port\n",
            "| Source | Destination | Protocol | Port |\n",
            "Source    Destination    Protocol    Port\n",
            "Connection Source Destination Protocol Port Classification Data\n",
        ][..]),
        rest in "[ -~\n\t<>|!;,\u{e9}]{0,300}",
    ) {
        for lenient in [false, true] {
            let _ = allowlist::import_text(&format!("{prefix}{rest}"), None, allowlist::ImportOptions { lenient, ..Default::default() });
        }
    }

    /// What `pdftotext -bbox-layout` could print for any PDF: the geometry never panics,
    /// whatever the boxes (negative, huge, overlapping, NaN-like text) or words.
    #[test]
    fn pdf_geometry_never_panics(
        words in prop::collection::vec(
            (0u8..3, -50.0f32..900.0, -50.0f32..900.0, 0.0f32..200.0, 0.0f32..40.0,
             prop::sample::select(&["Connection", "Source", "Destination", "Protocol", "Port", "Data", "1", "2", "TCP", "80", "a-", "&amp;", "Page", "3"][..])),
            0..80,
        ),
        junk in "[ -~<>\"=]{0,200}",
    ) {
        let mut xhtml = String::from("<doc>");
        for page in 0..3u8 {
            xhtml.push_str("<page width=\"600\" height=\"800\">");
            for (p, x, y, w, h, t) in &words {
                if *p == page {
                    xhtml.push_str(&format!(
                        "<word xMin=\"{x}\" yMin=\"{y}\" xMax=\"{}\" yMax=\"{}\">{t}</word>",
                        x + w,
                        y + h
                    ));
                }
            }
            xhtml.push_str("</page>");
        }
        xhtml.push_str(&junk);
        xhtml.push_str("</doc>");
        let pages = allowlist::import::pdf_geometry::parse_bbox(&xhtml);
        if let Some(laid) = allowlist::import::pdf_geometry::lay_out(&pages) {
            prop_assert!(laid.origins.len() >= laid.text.lines().count());
            for lenient in [false, true] {
                let _ = allowlist::import_text(&laid.text, None, allowlist::ImportOptions { lenient, ..Default::default() });
            }
        }
    }

    #[test]
    fn ports_parser_never_panics(text in any::<String>()) {
        let _ = allowlist::import::parse_ports(&text);
    }

    #[test]
    fn file_reader_never_panics(text in any::<String>()) {
        let _ = allowlist::file::parse(&text, "fuzz.yaml");
    }
}
