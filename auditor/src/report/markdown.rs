//! The report as Markdown: for review in a merge request or a ticket.

use std::fmt::Write;

use super::{Report, rfc3339_ms};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let title = r
        .document
        .title
        .as_deref()
        .unwrap_or("Documented architecture");
    let _ = writeln!(o, "# Traffic audit: {}\n", cell(title));
    let _ = writeln!(o, "**{}**\n", r.summary.headline);
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
    let _ = writeln!(
        o,
        "| Violation edges | {} ({} connections) |",
        r.summary.violation_edges, r.summary.violating_connections
    );
    let _ = writeln!(
        o,
        "| Source | {} |\n",
        r.document.source.as_deref().unwrap_or("-")
    );

    let _ = writeln!(o, "## Violations\n");
    if r.violations.is_empty() {
        let _ = writeln!(o, "None.\n");
    } else {
        let _ = writeln!(
            o,
            "| Verdict | Source (src) | Destination (dst) | Port | Connections | First seen | Last seen | Nodes | Process | Rules (closest documented rows) |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
        for v in &r.violations {
            let (e, k) = (&v.edge, v.edge.key());
            let _ = writeln!(
                o,
                "| {} | {} | {} | {}/{} | {} | {} | {} | {} | {} | {} |",
                k.verdict.as_str(),
                cell(&k.src),
                cell(&k.dst),
                k.transport,
                k.port,
                e.count,
                rfc3339_ms(e.first_seen),
                rfc3339_ms(e.last_seen),
                v.nodes.join(", "),
                cell(&e.example_text()),
                e.cited_rows("-")
            );
        }
        let _ = writeln!(o);
    }

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
                format!("{} -> {} {}/{}", k.src, k.dst, k.transport, k.port)
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

    let _ = writeln!(o, "## Documented connections\n");
    let _ = writeln!(
        o,
        "| # | Source | Destination | Protocol | Port | Observed | Connections | First seen | Last seen | Nodes | Examples |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|");
    for x in &r.rows {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            x.number.map_or_else(|| "-".into(), |n| n.to_string()),
            cell(&x.source),
            cell(&x.destination),
            cell(&x.protocol),
            cell(&x.ports),
            if x.observed { "yes" } else { "**never**" },
            x.count,
            x.first_seen.as_deref().unwrap_or("-"),
            x.last_seen.as_deref().unwrap_or("-"),
            x.nodes.join(", "),
            cell(&x.examples.join("; ")),
        );
    }
    let _ = writeln!(o, "\n## Coverage\n");
    let _ = writeln!(
        o,
        "{:.1}% of the period fully audited.\n",
        r.coverage.fraction * 100.0
    );
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
                if g.reason == "not_running" {
                    "auditor not running"
                } else {
                    "kernel drops"
                }
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "| Node | From | To | Fully audited | Ring buffer full | LRU evictions | Insert failures |\n|---|---|---|---|---|---|---|"
    );
    for i in &r.coverage.intervals {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            i.node,
            i.start,
            i.end,
            if i.fully_audited { "yes" } else { "**no**" },
            i.drops.ringbuf_full,
            i.drops.lru_evictions,
            i.drops.flow_insert_failed
        );
    }
    let _ = writeln!(
        o,
        "\n_Generated {} by auditor ({})._",
        r.generated_at, r.schema
    );
    o
}
