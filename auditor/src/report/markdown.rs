//! The report as Markdown: for review in a merge request or a ticket.

use std::fmt::Write;

use super::Report;
use crate::model::time::rfc3339_seconds;

/// Text from outside (names from the inventory and the cluster, process names, titles,
/// node names) as inert Markdown: no HTML (`<`, `>`, `&` become entities), no link or
/// image (`[`, `]`, `!` escaped), no code span or emphasis, and no `|` or newline that
/// would split a table row. Every such value goes through here, in cells and headings.
pub fn cell(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\\' | '|' | '[' | ']' | '(' | ')' | '`' | '*' | '_' | '~' | '!' | '#' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' => o.push(' '),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn cells(items: &[String], sep: &str) -> String {
    cell(&items.join(sep))
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    header(&mut o, r);
    controls(&mut o, r);
    violations(&mut o, r);
    accepted(&mut o, r);
    document_findings(&mut o, r);
    platform(&mut o, r);
    names(&mut o, r);
    documented(&mut o, r);
    coverage(&mut o, r);
    let _ = writeln!(
        o,
        "\n_Generated {} by auditor ({})._",
        r.generated_at, r.schema
    );
    o
}

/// The title, the headline and the header facts.
fn header(o: &mut String, r: &Report) {
    let title = r
        .document
        .title
        .as_deref()
        .unwrap_or("Documented architecture");
    let _ = writeln!(o, "# Traffic audit: {}\n", cell(title));
    if let Some(b) = super::capture_banner(r) {
        let _ = writeln!(o, "> **{}**\n", cell(&b));
    }
    let _ = writeln!(o, "**{}**\n", cell(&r.summary.headline));
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| Status | {} |", r.summary.status);
    for (k, v) in super::header_facts(r) {
        let _ = writeln!(o, "| {k} | {} |", cell(&v));
    }
    let _ = writeln!(
        o,
        "| Documented connections observed | {} of {} |",
        r.summary.documented_observed, r.summary.documented_connections
    );
    if r.summary.documented_observed_port_unverified > 0 {
        let _ = writeln!(
            o,
            "| Observed, port not verified | {} (judged on any port: the document gives no port and the overrides none) |",
            r.summary.documented_observed_port_unverified
        );
    }
    let _ = writeln!(
        o,
        "| Violation edges | {} ({} connections) |",
        r.summary.violation_edges, r.summary.violating_connections
    );
    let _ = writeln!(
        o,
        "| Document | {} |\n",
        cell(r.document.origin.as_deref().unwrap_or("-"))
    );
}

/// Every violation edge.
fn violations(o: &mut String, r: &Report) {
    let _ = writeln!(o, "## Violations\n");
    edges(o, r, &r.violations);
}

/// A table of violation edges (or accepted ones), with what each cites.
fn edges(o: &mut String, r: &Report, list: &[super::ObservedEdge]) {
    if list.is_empty() {
        let _ = writeln!(o, "None.\n");
    } else {
        let _ = writeln!(
            o,
            "| Verdict | Source (src) | Destination (dst) | Port | Connections | First seen | Last seen | Nodes | Process | Rules (closest documented rows) |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
        for v in list {
            let (e, k) = (&v.edge, v.edge.key());
            let _ = writeln!(
                o,
                "| {} | {} | {} | {}/{} | {} | {} | {} | {} | {} | {} |",
                k.verdict.as_str(),
                cell(&k.src),
                cell(&e.dst.name_and_domain()),
                k.transport,
                k.port,
                e.count,
                rfc3339_seconds(e.first_seen),
                rfc3339_seconds(e.last_seen),
                cells(&v.nodes, ", "),
                cell(&e.example_text()),
                cell(
                    &(e.cited_rows("-")
                        + &super::findings::explained_text(v)
                        + &super::exceptions::exception_text(r, v))
                )
            );
        }
        let _ = writeln!(o);
    }
}

/// Every accepted exception and what it covered, then the edges it accepted.
fn accepted(o: &mut String, r: &Report) {
    let _ = writeln!(o, "## Accepted exceptions\n");
    let (lead, items) = super::exceptions::section(r);
    let _ = writeln!(o, "{}\n", cell(&lead));
    for i in &items {
        let _ = writeln!(o, "- {}", cell(i));
    }
    if !items.is_empty() {
        let _ = writeln!(o);
    }
    if !r.accepted.is_empty() {
        edges(o, r, &r.accepted);
    }
}

/// The controls auditors test, each with its status, evidence and what is missing.
fn controls(o: &mut String, r: &Report) {
    let _ = writeln!(o, "## Controls\n");
    let _ = writeln!(o, "{}\n", cell(&super::controls::lead(r)));
    let Some(c) = &r.controls else {
        return;
    };
    let _ = writeln!(
        o,
        "| Framework | Control | Requirement | Status | Evidence | Missing |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    for x in &c.results {
        let _ = writeln!(
            o,
            "| {}{} | {} | {} | **{}** | {} | {} |",
            cell(&x.framework),
            if x.mapping.starts_with("built-in ") {
                String::new()
            } else {
                format!(" (from {})", cell(&x.mapping))
            },
            cell(&x.control),
            cell(&x.requirement),
            super::controls::status_text(&x.status),
            cells(&x.evidence, "; "),
            if x.missing.is_empty() {
                "-".to_string()
            } else {
                cells(&x.missing, "; ")
            }
        );
    }
    let _ = writeln!(o);
}

/// What the document's own lint found, which violations cite.
fn document_findings(o: &mut String, r: &Report) {
    let _ = writeln!(o, "## Document findings\n");
    let (lead, items) = super::findings::section(r);
    let _ = writeln!(o, "{}\n", cell(&lead));
    for i in &items {
        let _ = writeln!(o, "- {}", cell(i));
    }
    if !items.is_empty() {
        let _ = writeln!(o);
    }
}

/// Platform traffic by baseline entry, and the mesh legs.
fn platform(o: &mut String, r: &Report) {
    let _ = writeln!(o, "## Platform traffic (baseline)\n");
    if r.platform.is_empty() {
        let _ = writeln!(o, "None.\n");
    } else {
        let _ = writeln!(
            o,
            "Allowed by the platform baseline, not by the documents: neither violations nor observations of documented rows.\n"
        );
        let _ = writeln!(
            o,
            "| Entry | Connections | Flows | Example |\n|---|---|---|---|"
        );
        for p in &r.platform {
            let example = p.flows.first().map_or_else(String::new, |f| {
                let k = f.edge.key();
                format!(
                    "{} -> {} {}/{}",
                    k.src,
                    f.edge.dst.name_and_domain(),
                    k.transport,
                    k.port
                )
            });
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                cell(&p.entry),
                p.connections,
                p.flows.len(),
                cell(&example)
            );
        }
        let _ = writeln!(o);
    }
    if r.summary.mesh_leg_connections > 0 {
        let _ = writeln!(
            o,
            "Service mesh legs (sidecar connections carrying documented connections, judged on the service pair, not counted as observations): {}.\n",
            r.summary.mesh_leg_connections
        );
    }
}

/// The DNS names egress was reached by: per documented service, undocumented by name,
/// and by bare address; or that they are unknown.
fn names(o: &mut String, r: &Report) {
    let _ = writeln!(o, "## DNS names\n");
    let _ = writeln!(o, "{}\n", cell(&super::names_text(r)));
    let Some(n) = r.names.as_ref().filter(|n| !n.nodes.is_empty()) else {
        return;
    };
    for t in super::header::names_tables(n) {
        let _ = writeln!(o, "### {}\n", t.title);
        if t.rows.is_empty() {
            let _ = writeln!(o, "None.\n");
            continue;
        }
        if let Some(intro) = t.intro {
            let _ = writeln!(o, "{intro}\n");
        }
        let _ = writeln!(
            o,
            "| {} |\n|{}",
            t.headers.join(" | "),
            "---|".repeat(t.headers.len())
        );
        for row in &t.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| c.as_deref().map_or_else(|| "-".to_string(), cell))
                .collect();
            let _ = writeln!(o, "| {} |", cells.join(" | "));
        }
        let _ = writeln!(o);
    }
}

/// Every documented connection.
fn documented(o: &mut String, r: &Report) {
    let _ = writeln!(o, "## Documented connections\n");
    let _ = writeln!(
        o,
        "| Rule | Source (src) | Destination (dst) | Protocol | Port | Observed | Connections | First seen | Last seen | Nodes | Examples |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|");
    for x in &r.rows {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            x.rule.map_or_else(|| "-".into(), |n| n.to_string()),
            cell(&x.src),
            cell(&x.dst),
            cell(&x.protocol),
            cell(&x.ports),
            if x.observed {
                x.observed_text()
            } else {
                "**never**"
            },
            x.count,
            x.first_seen.as_deref().unwrap_or("-"),
            x.last_seen.as_deref().unwrap_or("-"),
            cells(&x.nodes, ", "),
            cells(&x.examples, "; "),
        );
    }
}

/// The coverage: the fraction, the gaps and the intervals.
fn coverage(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Coverage\n");
    let _ = match r.coverage.fraction {
        Some(f) => writeln!(o, "{:.1}% of the period fully audited.\n", f * 100.0),
        None => writeln!(o, "Coverage {}.\n", cell(&super::coverage_text(r))),
    };
    if !r.coverage.gaps.is_empty() {
        let _ = writeln!(
            o,
            "Gaps (not fully audited):\n\n| Node | From | To | Why |\n|---|---|---|---|"
        );
        for g in &r.coverage.gaps {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                cell(&g.node),
                g.start,
                g.end,
                super::gap_reason_text(&g.reason)
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "| Node | From | To | Fully audited | Connections lost | Ring buffer full | Flow map full |\n|---|---|---|---|---|---|---|"
    );
    for i in &r.coverage.intervals {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&i.node),
            i.start,
            i.end,
            if i.fully_audited { "yes" } else { "**no**" },
            i.drops.connections_lost,
            i.drops.ringbuf_full,
            i.drops.flow_insert_failed
        );
    }
    let _ = writeln!(o, "\n{}", super::header::DROPS_NOTE);
}

#[cfg(test)]
mod tests {
    use super::cell;

    /// Hostile names stay text: no tag, no link, no extra column.
    #[test]
    fn cells_are_inert() {
        let c = cell("a|b<svg/onload=1>[x](javascript:alert(1))`c`\nd&e\\");
        assert!(!c.contains('<') && !c.contains('\n'), "{c}");
        assert!(!c.contains("](") && !c.contains("[x]"), "{c}");
        // Every `|` is escaped (preceded by an odd number of backslashes).
        for (i, _) in c.match_indices('|') {
            let run = c[..i].chars().rev().take_while(|&ch| ch == '\\').count();
            assert_eq!(run % 2, 1, "{c}");
        }
        assert!(c.ends_with("\\\\"), "{c}");
    }
}
