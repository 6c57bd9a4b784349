use super::{table::append, *};
use crate::model::{Classification, PortSpec, Ports, Transports};

const HEADER: &str = "Connection\tSource\tDestination\tProtocol\tPort\tClassification\tData that travels on this connection";

fn one(rows: &str) -> Result<Allowlist, ImportError> {
    import(&format!("Title\n\n{HEADER}\n{rows}\n"), None)
}

fn lenient(text: &str) -> Imported {
    import_text(
        text,
        None,
        Options {
            lenient: true,
            ..Options::default()
        },
    )
    .unwrap()
}

fn problems(e: ImportError) -> Vec<Problem> {
    match e {
        ImportError::Problems { problems } => problems,
        other => panic!("expected line problems, got {other}"),
    }
}

#[test]
fn port_lists_alternatives_configurable_and_ranges() {
    assert_eq!(
        parse_ports("5050, 8888").unwrap(),
        Ports::Listed(vec![
            PortSpec::single(5050, false),
            PortSpec::single(8888, false)
        ])
    );
    assert_eq!(
        parse_ports("9092/9093*").unwrap(),
        Ports::Listed(vec![
            PortSpec::single(9092, true),
            PortSpec::single(9093, true)
        ])
    );
    assert_eq!(
        parse_ports("6379*").unwrap(),
        Ports::Listed(vec![PortSpec::single(6379, true)])
    );
    assert_eq!(
        parse_ports("20000-45000").unwrap(),
        Ports::Listed(vec![PortSpec {
            first: 20000,
            last: 45000,
            configurable: false
        }])
    );
    assert_eq!(
        parse_ports("N/A").unwrap(),
        Ports::Unknown {
            reason: "N/A".into()
        }
    );
    assert!(matches!(
        parse_ports("Not known (configured as trunk DN level in customer CME)").unwrap(),
        Ports::Unknown { .. }
    ));
    assert!(matches!(parse_ports("Any").unwrap(), Ports::Any { .. }));
    assert!(parse_ports("70000").unwrap_err().contains("out of range"));
    assert!(
        parse_ports("45000-20000")
            .unwrap_err()
            .contains("backwards")
    );
    assert!(parse_ports("soon").is_err());
    assert!(parse_ports("").is_err());
}

#[test]
fn thousands_separators_are_numbers_and_spaced_lists_are_lists() {
    let single = |p: u16| Ports::Listed(vec![PortSpec::single(p, false)]);
    assert_eq!(parse_ports("8,443").unwrap(), single(8443));
    assert_eq!(parse_ports("5,060").unwrap(), single(5060));
    assert_eq!(
        parse_ports("1,024-65,535").unwrap(),
        Ports::Listed(vec![PortSpec {
            first: 1024,
            last: 65535,
            configurable: false
        }])
    );
    let list = |ps: &[u16]| Ports::Listed(ps.iter().map(|p| PortSpec::single(*p, false)).collect());
    assert_eq!(parse_ports("8080, 8443").unwrap(), list(&[8080, 8443]));
    assert_eq!(parse_ports("8080 / 8443").unwrap(), list(&[8080, 8443]));
    assert_eq!(parse_ports("8080 or 8443").unwrap(), list(&[8080, 8443]));
    assert_eq!(parse_ports("8080 8443").unwrap(), list(&[8080, 8443]));
    assert_eq!(
        parse_ports("6379 *").unwrap(),
        Ports::Listed(vec![PortSpec::single(6379, true)])
    );
    assert_eq!(
        parse_ports("1,024 - 65,535").unwrap(),
        Ports::Listed(vec![PortSpec {
            first: 1024,
            last: 65535,
            configurable: false
        }])
    );
    assert_eq!(parse_ports("8, 443").unwrap(), list(&[8, 443]));
    // 80443 is no port: a list written without a space.
    assert_eq!(parse_ports("80,443").unwrap(), list(&[80, 443]));
    assert_eq!(parse_ports("443,8443").unwrap(), list(&[443, 8443]));
    assert_eq!(
        parse_ports("6379 (configurable)").unwrap(),
        Ports::Listed(vec![PortSpec::single(6379, true)])
    );
}

#[test]
fn a_row_split_across_a_page_break_is_joined() {
    let a = one(&format!("8\tGenesys Engagement\tTenant Service\tHTTP\t5080\tIntra-cluster\tRouting requests/\n\n{HEADER}\n \tService\t\t\t\t\tevents.\n9\tA\tB\tTCP\t1\tEgress\tx")).unwrap();
    let c = &a.connections[0];
    assert_eq!(
        (c.source.as_str(), c.description.as_str()),
        ("Genesys Engagement Service", "Routing requests/events.")
    );
    assert_eq!(a.connections.len(), 2);
}

#[test]
fn a_parenthesis_closed_early_at_a_page_break_is_repaired() {
    let a = one(&format!("59\tA\tB\tSIP/TCP\tNot known (configured in customer)\tIntra-cluster\tx\n\n{HEADER}\n\t\t\t\tCME)\t\t")).unwrap();
    assert_eq!(
        a.connections[0].ports,
        Ports::Unknown {
            reason: "Not known (configured in customer CME)".into()
        }
    );
    let mut cell = "f(x)".to_string();
    append(&mut cell, "and y");
    assert_eq!(cell, "f(x) and y");
}

#[test]
fn versioned_names_become_aliases() {
    let a = one("14\tRedis 6.x\tTenant Service\tRedis\t6379*\tEgress\tx\n9\tTenant Service\tRedis\tRedis\t6379*\tEgress\ty").unwrap();
    assert_eq!(a.connections[0].source, "Redis");
    assert_eq!(
        a.connections[0].documented_source.as_deref(),
        Some("Redis 6.x")
    );
    let redis = a.service("Redis").unwrap();
    assert_eq!(redis.aliases, vec!["Redis 6.x".to_string()]);
    assert_eq!(a.services.len(), 2);
}

#[test]
fn parenthesised_aliases_name_one_service() {
    let a = one("1\tTenant Service (Voice Config Service)\tRedis\tRedis\t6379\tEgress\tx\n2\tORS\tVoice Config Service\tHTTP\t9100\tIntra-cluster\ty\n3\tORS\tTenant Service\tHTTP\t9101\tIntra-cluster\tz").unwrap();
    let names: Vec<&str> = a.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["Tenant Service", "Redis", "ORS"]);
    assert_eq!(
        a.service("Tenant Service").unwrap().aliases,
        vec!["Voice Config Service".to_string()]
    );
    let c2 = a.connection(2).unwrap();
    assert_eq!(
        (
            c2.destination.as_str(),
            c2.documented_destination.as_deref()
        ),
        ("Tenant Service", Some("Voice Config Service"))
    );
    assert_eq!(
        a.connection(1).unwrap().documented_source.as_deref(),
        Some("Tenant Service (Voice Config Service)")
    );
    // It reads back from the file unchanged.
    let yaml = crate::file::to_yaml(&a, &[]);
    assert_eq!(crate::file::parse(&yaml, "t.yaml").unwrap(), a);
}

#[test]
fn a_description_saying_configurable_marks_the_port() {
    let a = one(
        "1\tA\tB\tTCP\t8080\tEgress\tConfigurable parameter.\n2\tA\tC\tTCP\t8080\tEgress\tfixed",
    )
    .unwrap();
    assert_eq!(
        a.connections[0].ports,
        Ports::Listed(vec![PortSpec::single(8080, true)])
    );
    assert_eq!(
        a.connections[1].ports,
        Ports::Listed(vec![PortSpec::single(8080, false)])
    );
}

#[test]
fn lower_case_protocols_compound_classifications_and_pipe_tables() {
    let doc = "| Source | Destination | Protocol | Port | Classification | Description |\n|---|---|---|---|---|---|\n| Media | SBC | rtp | 20000-45000 | Ingress/Egress | media |\n| Media | Config | http | 8080 | intra-cluster | cfg |\n";
    let a = import(doc, None).unwrap();
    assert_eq!(a.connections.len(), 2);
    let c = &a.connections[0];
    assert_eq!(
        (c.number, c.protocol.as_str(), c.transport),
        (None, "RTP", Transports::Udp)
    );
    assert_eq!(
        c.classification,
        vec![Classification::Ingress, Classification::Egress]
    );
    assert_eq!(a.connections[1].protocol, "HTTP");
    // A plain table's header row is not the document's title.
    assert_eq!(a.document.title, None);
}

#[test]
fn mixed_transports_are_one_row_on_both_and_a_transport_column_wins() {
    let doc = "Source\tDestination\tProtocol\tTransport\tPort\nA\tB\tTCP/UDP\t\t53\nA\tC\tSIP/UDP/TCP\t\t5060\nA\tD\tRTP/RTCP\t\t20000-45000\nA\tE\tHTTPS/WSS\t\t443\nA\tF\tSIP\tUDP\t5060\nA\tG\tHTTP\tTCP and UDP\t8080\n";
    let a = import(doc, None).unwrap();
    let t: Vec<Transports> = a.connections.iter().map(|c| c.transport).collect();
    assert_eq!(
        t,
        vec![
            Transports::Both,
            Transports::Both,
            Transports::Udp,
            Transports::Tcp,
            Transports::Udp,
            Transports::Both
        ]
    );
    let e = problems(
        import(
            "Source\tDestination\tProtocol\tTransport\tPort\nA\tB\tSIP/UDP\tTCP\t5060\n",
            None,
        )
        .unwrap_err(),
    );
    assert!(e[0].message.contains("Transport column says tcp"), "{e:?}");
}

#[test]
fn an_unknown_protocol_is_a_warning_and_the_row_is_kept() {
    let i = lenient(&format!(
        "{HEADER}\n1\tA\tB\tCarrier pigeon\t1\tEgress\tx\n"
    ));
    assert_eq!(i.allowlist.connections[0].transport, Transports::Unknown);
    assert_eq!(i.skipped_lines, 0);
    assert!(
        i.warnings[0].message.contains("unknown protocol"),
        "{:?}",
        i.warnings
    );
    // Strict too: a warning, not an error.
    assert!(
        import(
            &format!("{HEADER}\n1\tA\tB\tCarrier pigeon\t1\tEgress\tx\n"),
            None
        )
        .is_ok()
    );
}

#[test]
fn unnumbered_rows_in_a_numbered_table_are_kept() {
    let a = one("1\tA\tB\tTCP\t1\tEgress\tx\n\tC\tD\tTCP\t2\tEgress\ty").unwrap();
    assert_eq!(a.connections[1].number, None);
    assert_eq!(a.connections[1].source, "C");
}

#[test]
fn unreadable_rows_are_errors_with_row_and_line() {
    let e = problems(one("1\tA\tB\tTCP\tsoon\tEgress\tx").unwrap_err());
    assert_eq!(e[0].line, 4);
    assert!(e[0].message.starts_with("row 1: port \"soon\""), "{e:?}");
    // An unknown classification keeps the row (a warning: see the test below).
    assert_eq!(
        one("1\tA\tB\tTCP\t1\tSideways\tx")
            .unwrap()
            .connections
            .len(),
        1
    );
    let e = one("1\tA\tB\tTCP\t1\tEgress\tx\n1\tA\tC\tTCP\t1\tEgress\tx").unwrap_err();
    assert!(e.to_string().contains("appears twice"), "{e}");
    let e = one("x1\tA\tB\tTCP\t1\tEgress\tx").unwrap_err();
    assert!(e.to_string().contains("not a whole number"), "{e}");
    let e = one(" \tService\t\t\t\t\tevents.").unwrap_err();
    assert!(e.to_string().contains("continues no row"), "{e}");
    assert_eq!(
        import("no table here", None).unwrap_err(),
        ImportError::NoTable { nearest: None }
    );
    assert_eq!(
        import(&format!("{HEADER}\n"), None).unwrap_err(),
        ImportError::Empty { header_line: 1 }
    );
}

#[test]
fn a_page_number_inside_the_table_does_not_end_it() {
    // The repro: a header, one row, `Page 2`, another row.
    let a = import(
        &format!("{HEADER}\n1\tA\tB\tTCP\t1\tEgress\tx\nPage 2\n2\tA\tC\tTCP\t2\tEgress\ty\n"),
        None,
    )
    .unwrap();
    assert_eq!(a.connections.len(), 2);
    for footer in [
        "3",
        "Page 3 of 9",
        "- 4 -",
        "2/7",
        "© 2024 Example Corp",
        "* Configurable ports",
        "11/26/26, 9:56 PM\tVoice Microservices architecture",
        "26.11.2026, 21:56            Architecture",
        "file:///home/me/architecture.html                     2/7",
        "https://docs.example.com/voice/architecture 3/7",
    ] {
        let i = lenient(&format!(
            "{HEADER}\n1\tA\tB\tTCP\t1\tEgress\tx\n\n{footer}\n\n2\tA\tC\tTCP\t2\tEgress\ty\n"
        ));
        assert_eq!(
            (i.allowlist.connections.len(), i.artifacts, i.skipped_lines),
            (2, 1, 0),
            "{footer}"
        );
    }
}

#[test]
fn a_stray_line_inside_the_table_is_an_error_at_its_line_or_skipped_when_lenient() {
    let doc = format!(
        "{HEADER}\n1\tA\tB\tTCP\t1\tEgress\tx\n\nSomething else entirely\n\n2\tA\tC\tTCP\t2\tEgress\ty\n"
    );
    let e = problems(import(&doc, None).unwrap_err());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, 4);
    assert!(
        e[0].message
            .contains("expected a row of 7 tab-separated cells"),
        "{e:?}"
    );
    let i = lenient(&doc);
    assert_eq!((i.allowlist.connections.len(), i.skipped_lines), (2, 1));
}

#[test]
fn a_wrapped_description_without_tabs_continues_its_row() {
    let a = import(&format!("{HEADER}\n1\tA\tB\tTCP\t1\tEgress\tThe first half\nand the second half.\n2\tA\tC\tTCP\t2\tEgress\ty\n"), None).unwrap();
    assert_eq!(a.connections.len(), 2);
    assert_eq!(
        a.connections[0].description,
        "The first half and the second half."
    );
}

#[test]
fn prose_after_the_table_is_not_part_of_it() {
    let i = lenient(&format!(
        "{HEADER}\n1\tA\tB\tTCP\t1\tEgress\tx\n\nNext steps\n\nRead more.\n"
    ));
    assert_eq!(
        (
            i.allowlist.connections.len(),
            i.lines_after_table,
            i.skipped_lines
        ),
        (1, 2, 0)
    );
}

#[test]
fn header_synonyms() {
    let a = import(
        "Source service\tDestination service\tProtocol\tPort(s)\tData\nA\tB\tTCP\t1\tx\n",
        None,
    )
    .unwrap();
    assert_eq!(a.connections[0].description, "x");
    let a = import(
        "From\tTo\tProtocol\tDestination port\tTransport\nA\tB\tDNS\t53\tUDP\n",
        None,
    )
    .unwrap();
    assert_eq!(a.connections[0].transport, Transports::Udp);
    let a = import(
        "Source\tTarget\tProtocol/Transport\tPorts\tDirection\nA\tB\tSIP/UDP\t5060\tOutbound\n",
        None,
    )
    .unwrap();
    assert_eq!(a.connections[0].transport, Transports::Udp);
    assert_eq!(
        a.connections[0].classification,
        vec![Classification::Egress]
    );
}

/// The title with the page number before or after it, however separated, is furniture;
/// a header cell the importer does not read is a warning naming it.
#[test]
fn title_footers_are_furniture_and_an_unread_column_is_named() {
    let doc = "Voice Platform\n\nSource\tDestination\tProtocol\tPort\tOwner\n\
               A\tB\tTCP\t80\tteam-a\nVoice Platform \u{2014} page 2\n\
               C\tD\tTCP\t81\tteam-b\nVoice Platform | Page 3 of 7\n\
               E\tF\tTCP\t82\tteam-c\nPage 4 \u{2014} Voice Platform\nG\tH\tTCP\t83\tteam-d\n";
    let i = import_text(doc, None, Options::default()).unwrap();
    assert_eq!(i.allowlist.connections.len(), 4);
    assert_eq!(i.artifacts, 3);
    assert!(
        i.warnings
            .iter()
            .any(|w| w.line == 3 && w.message.contains("\"Owner\"")),
        "{:?}",
        i.warnings
    );
    assert_eq!(
        account::browser_header_title("12/4/26, 10:48 PM Payments Platform Architecture")
            .as_deref(),
        Some("Payments Platform Architecture")
    );
}

/// A viewer's copy of a row that wraps (its first line above the number, as a centred
/// cell prints): the row is refused at its line, never read with half its names.
#[test]
fn a_wrapped_single_spaced_row_is_refused_not_read_with_half_its_names() {
    for doc in [
        "Source Destination Protocol Port\nCustomer Genesys\nbrowser Authentication HTTPS 8095\n",
        "Connection Source Destination Protocol Port\nCustomer Genesys\n1 browser Authentication HTTPS 8095\n",
        "Connection Source Destination Protocol Port\n1 browser Authentication HTTPS 8095\nmore words\n",
    ] {
        let e = import(doc, None).unwrap_err();
        let ImportError::Problems { problems } = &e else {
            panic!("{doc}: {e:?}")
        };
        assert!(
            problems.iter().any(|p| p.message.contains("wrapped row")),
            "{doc}: {problems:?}"
        );
    }
}

/// A single-spaced header and a row whose two names are a word each: one split only.
#[test]
fn a_single_spaced_row_with_one_word_names_splits_one_way() {
    let a = import("Intro\nSource Destination Protocol Port\nA B TCP 1\n", None).unwrap();
    assert_eq!(a.connections.len(), 1);
    assert_eq!(
        (
            a.connections[0].source.as_str(),
            a.connections[0].destination.as_str()
        ),
        ("A", "B")
    );
}

#[test]
fn no_table_names_the_nearest_header_like_line() {
    let e = import(
        "Intro\nColumns: Source Destination Protocol Port\nA B TCP 1\n",
        None,
    )
    .unwrap_err();
    let ImportError::NoTable { nearest: Some(p) } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(p.line, 2);
    assert!(p.message.contains("cannot be split"), "{p}");
    let e = import("Source\tDestination\tPort\nA\tB\t1\n", None).unwrap_err();
    let ImportError::NoTable { nearest: Some(p) } = &e else {
        panic!("{e:?}")
    };
    assert!(p.message.contains("no Protocol column"), "{p}");
    let e = import(
        "Connections\n\nSource\nDestination\nProtocol\nPort\nA\nB\nTCP\n80\n",
        None,
    )
    .unwrap_err();
    let ImportError::NoTable { nearest: Some(p) } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(p.line, 3);
    assert!(p.message.contains("one cell per line"), "{p}");
}

#[test]
fn a_bom_and_crlf_keep_the_numbers() {
    let a = import(
        &format!("\u{FEFF}{HEADER}\r\n1\tA\tB\tTCP\t1\tEgress\tx\r\n"),
        None,
    )
    .unwrap();
    assert_eq!(a.connections[0].number, Some(1));
    let a = import("\u{FEFF}| Connection | Source | Destination | Protocol | Port |\n|--|--|--|--|--|\n| 7 | A | B | TCP | 1 |\n", None).unwrap();
    assert_eq!(a.connections[0].number, Some(7));
}

#[test]
fn a_row_on_both_transports_allows_both_and_an_unknown_one_matches_unverified() {
    use crate::{
        model::Transport,
        overrides::Overrides,
        rule_index::{Outcome, RuleIndex},
    };
    let a = import("Connection\tSource\tDestination\tProtocol\tPort\n1\tA\tB\tTCP/UDP\t53\n2\tA\tC\tCarrier pigeon\t99\n", None).unwrap();
    let p = RuleIndex::new(&a, &Overrides::default());
    for t in [Transport::Tcp, Transport::Udp] {
        let l = p.lookup_names("A", "B", t, 53).unwrap();
        assert_eq!((l.outcome, l.numbers()), (Outcome::Allowed, vec![1]));
        let l = p.lookup_names("A", "C", t, 99).unwrap();
        assert_eq!(l.outcome, Outcome::Allowed);
        assert!(l.rules().all(|r| !r.transport_verified));
    }
    let l = p.lookup_names("A", "B", Transport::Udp, 54).unwrap();
    assert_eq!((l.outcome, l.numbers()), (Outcome::OtherPorts, vec![1]));
}

#[test]
fn html_tables_are_found_among_the_page() {
    let page = "<!DOCTYPE html><html><head><title>Media architecture</title></head><body>\n<table><tr><td>nav</td></tr></table>\n<table>\n<tr><th>Source</th><th>Destination</th><th>Protocol</th><th>Port(s)</th></tr>\n<tr><td>Media<br>Server</td><td>SBC</td><td>RTP/RTCP</td><td>20,000-45,000</td></tr>\n<tr><td colspan=\"4\">Page 2</td></tr>\n<tr><td>Media Server</td><td>Config</td><td>HTTPS</td><td>8,443</td></tr>\n</table></body></html>";
    let i = import_text(page, None, Options::default()).unwrap();
    assert_eq!(i.format, Format::Html);
    let a = &i.allowlist;
    assert_eq!(a.document.title.as_deref(), Some("Media architecture"));
    assert_eq!(a.connections.len(), 2);
    assert_eq!(a.connections[0].source, "Media Server");
    assert_eq!(a.connections[0].line, Some(5));
    assert_eq!(a.connections[0].transport, Transports::Udp);
    assert_eq!(
        a.connections[1].ports,
        Ports::Listed(vec![PortSpec::single(8443, false)])
    );
    let e = import_text(
        "<html><table><tr><th>Source</th><th>Destination</th><th>Port</th></tr></table></html>",
        None,
        Options::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("has no Protocol column"), "{e}");
}

#[test]
fn wikitext_tables() {
    let doc = "Intro\n{| class=\"wikitable\"\n! Source !! Destination !! Protocol !! Port\n|-\n| [[Media Server]] || SBC || RTP/RTCP || 20000-45000\n|-\n| style=\"color:red\" | Media Server\n| Config\n| HTTPS\n| 8443\n|}\n";
    let i = import_text(doc, None, Options::default()).unwrap();
    assert_eq!(i.format, Format::Wikitext);
    assert_eq!(i.allowlist.connections.len(), 2);
    assert_eq!(i.allowlist.connections[1].line, Some(7));
    assert_eq!(i.allowlist.connections[1].source, "Media Server");
}

#[test]
fn padded_columns_with_wrapped_cells() {
    let doc = "No   Source          Destination   Protocol   Port    Data\n1    Media Server    SBC           RTP/RTCP   20000   media\n     (MS)                                             streams\n\n                              7\n\n2    Media Server    Config        HTTPS      8,443   config\n";
    let i = import_text(doc, None, Options::default()).unwrap();
    assert_eq!(i.format, Format::Padded);
    let a = &i.allowlist;
    assert_eq!(a.connections.len(), 2);
    assert_eq!(a.connections[0].description, "media streams");
    assert_eq!(
        a.service("Media Server").unwrap().aliases,
        vec!["MS".to_string()]
    );
    assert_eq!((i.artifacts, i.continuation_lines), (1, 1));
}

#[test]
fn csv_quoted_cells_with_separators_and_line_breaks() {
    let doc = "Source;Destination;Protocol;Port;Data\n\"Media; Server\";SBC;RTP;\"20000-45000\";\"two\nlines\"\nPage 2\nA;B;TCP;1;x\n";
    let i = import_text(doc, None, Options::default()).unwrap();
    assert_eq!(i.format, Format::Csv(b';'));
    let a = &i.allowlist;
    assert_eq!(a.connections.len(), 2);
    assert_eq!(a.connections[0].source, "Media; Server");
    assert_eq!(a.connections[0].description, "two lines");
    assert_eq!(a.connections[1].line, Some(5));
}

#[test]
fn a_classification_worded_otherwise_is_a_warning_and_the_row_is_kept() {
    let i = import_text(
        "Source\tDestination\tProtocol\tPort\tClassification\nWeb\tAPI\tHTTPS\t443\tSynchronous\n\
         API\tDB\tTCP\t5432\tEgress\n",
        None,
        Options {
            lenient: false,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(i.allowlist.connections.len(), 2);
    assert!(i.allowlist.connections[0].classification.is_empty());
    assert_eq!(
        i.allowlist.connections[1].classification,
        vec![Classification::Egress]
    );
    assert_eq!(i.warnings.len(), 1, "{:?}", i.warnings);
    assert!(
        i.warnings[0].to_string().contains("\"Synchronous\""),
        "{}",
        i.warnings[0]
    );
}
