//! The report as JUnit XML, which CI systems display natively: one testcase per
//! documented row (failed when it is a violation's closest row, skipped when never
//! observed or observed with its port not verified) and one failed testcase per
//! violation edge; one testcase per accepted exception edge (passed) and per control
//! (failed when not met, skipped when not evidenced).

use std::fmt::Write;

use super::{Report, diagram};

/// Text escaped for an XML 1.0 element or attribute. XML 1.0 forbids the C0 controls
/// other than tab, LF and CR, and U+FFFE/U+FFFF, even as character references: a name
/// carrying one (a hostile process or service name) would make the whole file unreadable
/// to a CI system, so each becomes U+FFFD, visibly not the original character.
fn xml(s: &str) -> String {
    let allowed: String = s
        .chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect();
    diagram::esc(&allowed)
}

pub fn render(r: &Report) -> String {
    let mut rows = String::new();
    let (mut row_failures, mut row_skipped) = (0, 0);
    for x in &r.rows {
        match row_case(&mut rows, r, x) {
            Outcome::Failed => row_failures += 1,
            Outcome::Skipped => row_skipped += 1,
            Outcome::Passed => {}
        }
    }
    let mut viol = String::new();
    for v in &r.violations {
        let e = &v.edge;
        let name = edge_name(e);
        let detail = format!(
            "{} connection(s) from {} to {} on {}; example {}; closest documented rows: {}",
            e.count,
            crate::model::time::rfc3339_seconds(e.first_seen),
            crate::model::time::rfc3339_seconds(e.last_seen),
            v.nodes.join(", "),
            e.example_text(),
            e.cited_rows("none")
                + &super::findings::explained_text(v)
                + &super::exceptions::exception_text(r, v)
        );
        let _ = writeln!(
            viol,
            "    <testcase classname=\"violations\" name=\"{}\" time=\"0\"><failure type=\"{}\" message=\"{}\">{}</failure></testcase>",
            xml(&name),
            xml(e.verdict.as_str()),
            xml(&detail),
            xml(&detail)
        );
    }
    let (controls, control_failures, control_skipped) = controls(r);
    let mut accepted = String::new();
    for v in &r.accepted {
        let e = &v.edge;
        let _ = writeln!(
            accepted,
            "    <testcase classname=\"accepted exceptions\" name=\"{}\" time=\"0\"><system-out>{}</system-out></testcase>",
            xml(&edge_name(e)),
            xml(&format!(
                "{} connection(s){}",
                e.count,
                super::exceptions::exception_text(r, v)
            ))
        );
    }
    let title = r
        .document
        .title
        .as_deref()
        .unwrap_or("documented architecture");
    let s = &r.summary;
    let mut more = format!(
        "<property name=\"documented_observed_port_unverified\" value=\"{}\"/>",
        s.documented_observed_port_unverified
    );
    if !r.coverage.expected_nodes.is_empty() {
        more.push_str(&format!(
            "<property name=\"expected_nodes\" value=\"{}\"/><property name=\"missing_nodes\" value=\"{}\"/>",
            xml(&r.coverage.expected_nodes.join(", ")),
            xml(&r.coverage.missing_nodes.join(", "))
        ));
    }
    names(&mut more, r);
    let mut o = String::new();
    let _ = writeln!(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        o,
        "<testsuites name=\"auditor: {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"0\">",
        xml(title),
        r.rows.len() + r.violations.len() + r.accepted.len() + control_count(r),
        row_failures + r.violations.len() + control_failures,
        row_skipped + control_skipped
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"documented connections\" tests=\"{}\" failures=\"{row_failures}\" errors=\"0\" skipped=\"{row_skipped}\" time=\"0\" timestamp=\"{}\">",
        r.rows.len(),
        xml(&r.generated_at)
    );
    let _ = writeln!(
        o,
        "    <properties><property name=\"capture\" value=\"{}\"/><property name=\"capture_mode\" value=\"{}\"/><property name=\"coverage\" value=\"{}\"/><property name=\"nodes\" value=\"{}\"/><property name=\"period\" value=\"{} – {}\"/><property name=\"auditor_version\" value=\"{}\"/><property name=\"report_digest\" value=\"{}\"/>{more}</properties>",
        xml(r
            .capture
            .as_ref()
            .map_or("not recorded (report before auditor-report/4)", |c| c
                .statement
                .as_str())),
        xml(r.capture.as_ref().map_or("unknown", |c| c.mode.as_str())),
        xml(&super::coverage_text(r)),
        xml(&r.nodes.join(", ")),
        xml(&r.period.since),
        xml(&r.period.until),
        xml(&r.auditor_version),
        xml(r.digest.as_deref().unwrap_or(""))
    );

    o.push_str(&rows);
    let _ = writeln!(o, "  </testsuite>");
    let n = r.violations.len();
    suite(&mut o, r, "violations", (n, n, 0), &viol);
    if !r.accepted.is_empty() {
        suite(
            &mut o,
            r,
            "accepted exceptions",
            (r.accepted.len(), 0, 0),
            &accepted,
        );
    }
    if r.controls.is_some() {
        let counts = (control_count(r), control_failures, control_skipped);
        suite(&mut o, r, "controls", counts, &controls);
    }
    let _ = writeln!(o, "</testsuites>");
    o
}

/// A testsuite of these testcases: (tests, failures, skipped).
fn suite(o: &mut String, r: &Report, name: &str, counts: (usize, usize, usize), cases: &str) {
    let (tests, failures, skipped) = counts;
    let _ = writeln!(
        o,
        "  <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"0\" timestamp=\"{}\">",
        xml(&r.generated_at)
    );
    o.push_str(cases);
    let _ = writeln!(o, "  </testsuite>");
}

/// A violation's (or accepted edge's) testcase name: "port_drift A -> B tcp/9200".
fn edge_name(e: &crate::edge::Edge) -> String {
    format!(
        "{} {} -> {} {}/{}",
        e.verdict.as_str(),
        e.src.name(),
        e.dst.name_and_domain(),
        e.transport.as_str(),
        e.dst.port.unwrap_or(0)
    )
}

fn control_count(r: &Report) -> usize {
    r.controls.as_ref().map_or(0, |c| c.results.len())
}

/// One testcase per control: failed when not met, skipped when not evidenced (CI shows
/// why), passed when met.
fn controls(r: &Report) -> (String, usize, usize) {
    let (mut out, mut failures, mut skipped) = (String::new(), 0, 0);
    for x in r.controls.iter().flat_map(|c| &c.results) {
        let name = xml(&format!("{} {}: {}", x.framework, x.control, x.requirement));
        let missing = xml(&x.missing.join("; "));
        let evidence = xml(&x.evidence.join("; "));
        let body = match x.status.as_str() {
            "met" => format!("<system-out>{evidence}</system-out>"),
            "not_met" => {
                failures += 1;
                format!(
                    "<failure type=\"not_met\" message=\"{missing}\">{missing}</failure><system-out>{evidence}</system-out>"
                )
            }
            _ => {
                skipped += 1;
                format!(
                    "<skipped message=\"not evidenced: {missing}\"/><system-out>{evidence}</system-out>"
                )
            }
        };
        let _ = writeln!(
            out,
            "    <testcase classname=\"controls\" name=\"{name}\" time=\"0\">{body}</testcase>"
        );
    }
    (out, failures, skipped)
}

/// The DNS names as properties, like the capture and the coverage: `names` (what is
/// known), and where names are known, one property per list.
fn names(more: &mut String, r: &Report) {
    let _ = write!(
        more,
        "<property name=\"names\" value=\"{}\"/>",
        xml(&super::names_text(r))
    );
    let Some(n) = r.names.as_ref().filter(|n| !n.nodes.is_empty()) else {
        return;
    };
    let by_service: Vec<String> = n
        .services
        .iter()
        .map(|s| {
            let names: Vec<String> = s
                .domains
                .iter()
                .map(|d| {
                    format!(
                        "{} ({} connection(s); learned {})",
                        d.domain,
                        d.seen.count,
                        super::learned_text(&d.learned)
                    )
                })
                .collect();
            format!("{}: {}", s.service, names.join(", "))
        })
        .collect();
    let undocumented: Vec<String> = n
        .undocumented
        .iter()
        .map(|u| {
            format!(
                "{} {} -> {} ({}) {}/{}: {} connection(s); learned {}",
                u.verdict.as_str(),
                u.src,
                u.domain,
                u.dst,
                u.transport.as_str(),
                u.port,
                u.seen.count,
                super::learned_text(&u.learned)
            )
        })
        .collect();
    let bare: Vec<String> = n
        .bare
        .iter()
        .map(|b| {
            format!(
                "{} {} -> {} {}/{}: {} connection(s)",
                b.verdict.as_str(),
                b.src,
                b.addr,
                b.transport.as_str(),
                b.port,
                b.seen.count
            )
        })
        .collect();
    for (name, items) in [
        ("names_by_service", by_service),
        ("undocumented_egress_by_name", undocumented),
        ("egress_by_bare_address", bare),
    ] {
        let _ = write!(
            more,
            "<property name=\"{name}\" value=\"{}\"/>",
            xml(&if items.is_empty() {
                "none".to_string()
            } else {
                items.join("; ")
            })
        );
    }
}

/// How a documented row's testcase ended.
enum Outcome {
    Passed,
    /// Failed: a violation cites the row as its closest.
    Failed,
    /// Skipped: never observed, or observed with its port not verified.
    Skipped,
}

/// The testcase of one documented row, written to `rows`.
fn row_case(rows: &mut String, r: &Report, x: &super::RowReport) -> Outcome {
    let name = format!(
        "{}: {} -> {} {}/{}",
        x.rule
            .map_or_else(|| "unnumbered row".into(), |n| format!("row {n}")),
        x.src,
        x.dst,
        x.transport,
        x.ports
    );
    let drifted: Vec<&super::ObservedEdge> = r
        .violations
        .iter()
        .filter(|v| x.rule.is_some_and(|n| v.edge.rules.contains(&n)))
        .collect();
    let _ = write!(
        rows,
        "    <testcase classname=\"documented\" name=\"{}\" time=\"0\">",
        xml(&name)
    );
    let outcome = if !drifted.is_empty() {
        let text: Vec<String> = drifted
            .iter()
            .map(|v| {
                format!(
                    "{} {} -> {} {}/{}: {} connection(s), e.g. {}",
                    v.edge.verdict.as_str(),
                    v.edge.src.name(),
                    v.edge.dst.name_and_domain(),
                    v.edge.transport.as_str(),
                    v.edge.dst.port.unwrap_or(0),
                    v.edge.count,
                    v.edge.example_text()
                )
            })
            .collect();
        let _ = write!(
            rows,
            "<failure type=\"{}\" message=\"{}\">{}</failure>",
            xml(drifted[0].edge.verdict.as_str()),
            xml(&format!(
                "traffic drifted from this row: {}",
                text.join("; ")
            )),
            xml(&text.join("\n"))
        );
        Outcome::Failed
    } else if !x.observed {
        let _ = write!(
            rows,
            "<skipped message=\"never observed in {} – {}\"/>",
            xml(&r.period.since),
            xml(&r.period.until)
        );
        Outcome::Skipped
    } else if !x.port_verified {
        // Skipped, not passed: CI systems list a skipped case with its message, where a
        // pass shows nothing, and the row's port was not checked.
        let _ = write!(
            rows,
            "<skipped message=\"observed, port not verified: judged on any port (the document gives no port and the overrides none); {} connection(s) on {}\"/>",
            x.count,
            xml(&x.nodes.join(", "))
        );
        Outcome::Skipped
    } else {
        let _ = write!(
            rows,
            "<system-out>{} connection(s) on {}</system-out>",
            x.count,
            xml(&x.nodes.join(", "))
        );
        Outcome::Passed
    };
    rows.push_str("</testcase>\n");
    outcome
}

#[cfg(test)]
mod tests {
    use super::xml;

    #[test]
    fn forbidden_characters_do_not_reach_the_xml() {
        let x = xml("a\u{1}b\u{1b}[31mc\u{fffe}\u{ffff}\td\ne<&\"");
        assert_eq!(
            x,
            "a\u{fffd}b\u{fffd}[31mc\u{fffd}\u{fffd}\td\ne&lt;&amp;&quot;"
        );
    }
}
