//! The report as JUnit XML, which CI systems display natively: one testcase per
//! documented row (failed when it is a violation's closest row, skipped when never
//! observed) and one failed testcase per violation edge.

use std::fmt::Write;

use super::{Report, diagram::esc};

pub fn render(r: &Report) -> String {
    let mut rows = String::new();
    let (mut row_failures, mut row_skipped) = (0, 0);
    for x in &r.rows {
        let name = format!(
            "{}: {} -> {} {}/{}",
            x.number
                .map_or_else(|| "unnumbered row".into(), |n| format!("row {n}")),
            x.source,
            x.destination,
            x.transport,
            x.ports
        );
        let drifted: Vec<&super::Violation> = r
            .violations
            .iter()
            .filter(|v| x.number.is_some_and(|n| v.edge.rules.contains(&n)))
            .collect();
        let _ = write!(
            rows,
            "    <testcase classname=\"documented\" name=\"{}\" time=\"0\">",
            esc(&name)
        );
        if !drifted.is_empty() {
            row_failures += 1;
            let text: Vec<String> = drifted
                .iter()
                .map(|v| {
                    format!(
                        "{} {} -> {} {}/{}: {} connection(s), e.g. {}",
                        v.edge.verdict.as_str(),
                        v.edge.src.name(),
                        v.edge.dst.name(),
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
                esc(drifted[0].edge.verdict.as_str()),
                esc(&format!(
                    "traffic drifted from this row: {}",
                    text.join("; ")
                )),
                esc(&text.join("\n"))
            );
        } else if !x.observed {
            row_skipped += 1;
            let _ = write!(
                rows,
                "<skipped message=\"never observed in {} – {}\"/>",
                esc(&r.period.since),
                esc(&r.period.until)
            );
        } else {
            let _ = write!(
                rows,
                "<system-out>{} connection(s) on {}</system-out>",
                x.count,
                esc(&x.nodes.join(", "))
            );
        }
        rows.push_str("</testcase>\n");
    }
    let mut viol = String::new();
    for v in &r.violations {
        let e = &v.edge;
        let name = format!(
            "{} {} -> {} {}/{}",
            e.verdict.as_str(),
            e.src.name(),
            e.dst.name(),
            e.transport.as_str(),
            e.dst.port.unwrap_or(0)
        );
        let detail = format!(
            "{} connection(s) from {} to {} on {}; example {}; closest documented rows: {}",
            e.count,
            crate::model::time::rfc3339_seconds(e.first_seen),
            crate::model::time::rfc3339_seconds(e.last_seen),
            v.nodes.join(", "),
            e.example_text(),
            e.cited_rows("none")
        );
        let _ = writeln!(
            viol,
            "    <testcase classname=\"violations\" name=\"{}\" time=\"0\"><failure type=\"{}\" message=\"{}\">{}</failure></testcase>",
            esc(&name),
            esc(e.verdict.as_str()),
            esc(&detail),
            esc(&detail)
        );
    }
    let title = r
        .document
        .title
        .as_deref()
        .unwrap_or("documented architecture");
    let mut o = String::new();
    let _ = writeln!(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        o,
        "<testsuites name=\"auditor: {}\" tests=\"{}\" failures=\"{}\" skipped=\"{row_skipped}\" time=\"0\">",
        esc(title),
        r.rows.len() + r.violations.len(),
        row_failures + r.violations.len()
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"documented connections\" tests=\"{}\" failures=\"{row_failures}\" errors=\"0\" skipped=\"{row_skipped}\" time=\"0\" timestamp=\"{}\">",
        r.rows.len(),
        esc(&r.generated_at)
    );
    let _ = writeln!(
        o,
        "    <properties><property name=\"nodes\" value=\"{}\"/><property name=\"period\" value=\"{} – {}\"/><property name=\"auditor_version\" value=\"{}\"/><property name=\"report_digest\" value=\"{}\"/></properties>",
        esc(&r.nodes.join(", ")),
        esc(&r.period.since),
        esc(&r.period.until),
        esc(&r.auditor_version),
        esc(r.digest.as_deref().unwrap_or(""))
    );
    o.push_str(&rows);
    let _ = writeln!(o, "  </testsuite>");
    let _ = writeln!(
        o,
        "  <testsuite name=\"violations\" tests=\"{0}\" failures=\"{0}\" errors=\"0\" skipped=\"0\" time=\"0\" timestamp=\"{1}\">",
        r.violations.len(),
        esc(&r.generated_at)
    );
    o.push_str(&viol);
    let _ = writeln!(o, "  </testsuite>\n</testsuites>");
    o
}
