//! The report as one self-contained HTML file: inline CSS and SVG, no script, nothing
//! fetched. It opens offline and prints.

use std::fmt::Write;

use super::{Report, diagram, diagram::esc};
use crate::model::time::{duration_text, rfc3339_seconds};

const CSS: &str = "
body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#212121;max-width:1320px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:16px 0 6px}
.headline{font-size:16px;margin:10px 0 16px;padding:12px 14px;border-radius:6px}
.violations{background:#ffebee;border-left:5px solid #c62828}.clean{background:#e8f5e9;border-left:5px solid #2e7d32}
.incomplete{background:#fff8e1;border-left:5px solid #f9a825}
.banner{font-size:15px;font-weight:bold;margin:8px 0 12px;padding:10px 14px;border-radius:6px;background:#fff3e0;border:2px solid #e65100;color:#bf360c}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #e0e0e0;border-radius:6px;padding:8px 12px;min-width:150px}
.card b{display:block;font-size:20px}.card span{color:#616161;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:12px}th,td{border:1px solid #e0e0e0;padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f5f5f5}tr.never td{background:#fafafa;color:#757575}tr.unverified td{background:#fffde7}tr.bad td{background:#fff5f5}
table.facts{width:auto;margin:8px 0 4px}table.facts th{white-space:nowrap;width:1%}table.facts td{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px}
.muted{color:#757575;font-size:12px}
.figure{border:1px solid #eee;border-radius:6px}svg.diagram{display:block;max-width:100%;height:auto}
td.num{white-space:nowrap}
table.controls{table-layout:fixed}table.controls col.c{width:9%}table.controls col.r{width:21%}table.controls col.s{width:10%}table.controls col.e{width:30%}table.controls col.m{width:30%}
table.controls ul{margin:0;padding-left:14px}
.status{display:inline-block;padding:2px 8px;border-radius:10px;font-weight:bold;white-space:nowrap}
.met{background:#e8f5e9;color:#1b5e20}.not_met{background:#ffebee;color:#b71c1c}.not_evidenced{background:#fff8e1;color:#8d6e00}
.signoff{margin-top:14px;break-inside:avoid;page-break-inside:avoid}.signoff p{font-size:12px;margin:0 0 6px}
.signoff table{width:auto}.signoff td{min-width:220px;height:26px;border:none;border-bottom:1px solid #9e9e9e}.signoff th{border:none;background:none}
table.controls td,ul#exceptions li{overflow-wrap:anywhere}
@media (max-width:1000px){body{margin:10px}table{font-size:11px}th,td{padding:3px 4px}.card{min-width:120px}}
@page{margin:12mm}
@media print{
 body{margin:0;max-width:none;font-size:10px}
 h2,h3{break-after:avoid;page-break-after:avoid}h2{font-size:14px}
 .headline,.card{break-inside:avoid}
 .figure{overflow:visible;border:none}svg.diagram{max-width:100%;width:100%}
 table{font-size:8.5px;table-layout:auto}th,td{padding:2px 3px}
 thead{display:table-header-group}
 tr{break-inside:avoid;page-break-inside:avoid}
 th{background:#eee;-webkit-print-color-adjust:exact;print-color-adjust:exact}
 tr.bad td,tr.never td,tr.unverified td,.headline,.status{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 table.controls tr{break-inside:avoid}
}
";

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    header(&mut o, r);
    cards(&mut o, r);
    controls(&mut o, r);
    let _ = writeln!(
        o,
        "<h2>Services and connections</h2>\n<div class=\"figure\">{}</div>",
        diagram::render(r)
    );
    violations(&mut o, r);
    accepted(&mut o, r);
    document_findings(&mut o, r);
    platform(&mut o, r);
    names(&mut o, r);
    documented(&mut o, r);
    coverage(&mut o, r);
    let _ = writeln!(
        o,
        "<p class=\"muted\">auditor {} · {}</p>\n</body></html>",
        esc(&r.auditor_version),
        esc(&r.schema)
    );
    o
}

/// The title, the header facts and the headline.
fn header(o: &mut String, r: &Report) {
    let title = r
        .document
        .title
        .as_deref()
        .unwrap_or("Documented architecture");
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Traffic audit: {}</title><style>{CSS}</style></head><body>\n",
        esc(title)
    );
    let _ = writeln!(o, "<h1>Traffic audit: {}</h1>", esc(title));
    if let Some(b) = super::capture_banner(r) {
        let _ = writeln!(o, "<p class=\"banner\" id=\"capture\">{}</p>", esc(&b));
    }
    let _ = writeln!(o, "<table class=\"facts\" id=\"header\">");
    for (k, v) in super::header_facts(r) {
        let _ = writeln!(o, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
    }
    let _ = writeln!(
        o,
        "<tr><th>Document</th><td>{}</td></tr></table>",
        esc(r.document.origin.as_deref().unwrap_or("-"))
    );
    let _ = writeln!(
        o,
        "<div class=\"headline {}\" id=\"headline\">{}</div>",
        esc(&r.summary.status),
        esc(&r.summary.headline)
    );
}

/// The summary figures as cards.
fn cards(o: &mut String, r: &Report) {
    let s = &r.summary;
    let _ = writeln!(o, "<div class=\"cards\">");
    for (value, label) in [
        (
            format!("{} / {}", s.documented_observed, s.documented_connections),
            "documented connections observed",
        ),
        (s.violation_edges.to_string(), "violation edges"),
        (s.violating_connections.to_string(), "violating connections"),
        (s.allowed_connections.to_string(), "allowed connections"),
        (
            match r.coverage.fraction {
                Some(_) => duration_text(s.watched_seconds),
                None => "unknown".to_string(),
            },
            "watched",
        ),
        (
            // Unknown coverage knows no drops either: "0 s" would claim a clean record.
            match r.coverage.fraction {
                Some(_) => duration_text(s.incomplete_seconds),
                None => "unknown".to_string(),
            },
            "not fully audited",
        ),
    ]
    .into_iter()
    .chain((s.documented_observed_port_unverified > 0).then(|| {
        (
            s.documented_observed_port_unverified.to_string(),
            "observed, port not verified",
        )
    }))
    .chain(
        (s.accepted_edges > 0)
            .then(|| (s.accepted_edges.to_string(), "edges accepted as exceptions")),
    )
    .chain(r.controls.as_ref().map(|c| {
        (
            format!(
                "{} / {}",
                c.results.iter().filter(|x| x.status == "met").count(),
                c.results.len()
            ),
            "controls met",
        )
    })) {
        let _ = writeln!(
            o,
            "<div class=\"card\"><b>{}</b><span>{label}</span></div>",
            esc(&value)
        );
    }
    o.push_str("</div>\n");
}

/// Every violation edge.
fn violations(o: &mut String, r: &Report) {
    let _ = writeln!(o, "<h2>Violations</h2>");
    edges(o, r, &r.violations, "violations");
}

/// A table of violation edges (or accepted ones), with what each cites.
fn edges(o: &mut String, r: &Report, list: &[super::ObservedEdge], id: &str) {
    if list.is_empty() {
        let _ = writeln!(o, "<p>None.</p>");
    } else {
        let _ = writeln!(
            o,
            "<table id=\"{id}\"><thead><tr><th>Verdict</th><th>Source (src)</th><th>Destination (dst)</th><th>Port</th><th>Connections</th><th>First seen</th><th>Last seen</th><th>Nodes</th><th>Process</th><th>Rules (closest documented rows)</th></tr></thead><tbody>"
        );
        let class = if id == "violations" {
            " class=\"bad\""
        } else {
            ""
        };
        for v in list {
            let (e, k) = (&v.edge, v.edge.key());
            let cited = e.cited_rows("–");
            let _ = writeln!(
                o,
                "<tr{class}><td>{}</td><td>{}</td><td>{}{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(k.verdict.as_str()),
                esc(&k.src),
                esc(&e.dst.name_and_domain()),
                e.dst
                    .addr
                    .map(|a| a.to_string())
                    .filter(|a| *a != k.dst)
                    .map(|a| format!(" <span class=\"muted\">{}</span>", esc(&a)))
                    .unwrap_or_default(),
                k.transport,
                k.port,
                e.count,
                esc(&rfc3339_seconds(e.first_seen)),
                esc(&rfc3339_seconds(e.last_seen)),
                esc(&v.nodes.join(", ")),
                esc(&e.example_text()),
                esc(&(cited
                    + &super::findings::explained_text(v)
                    + &super::exceptions::exception_text(r, v)))
            );
        }
        let _ = writeln!(o, "</tbody></table>");
    }
}

/// Every accepted exception and what it covered, then the edges it accepted.
fn accepted(o: &mut String, r: &Report) {
    let _ = writeln!(o, "<h2>Accepted exceptions</h2>");
    let (lead, items) = super::exceptions::section(r);
    let _ = writeln!(o, "<p>{}</p>", esc(&lead));
    if !items.is_empty() {
        let _ = writeln!(o, "<ul id=\"exceptions\">");
        for i in &items {
            let _ = writeln!(o, "<li>{}</li>", esc(i));
        }
        let _ = writeln!(o, "</ul>");
    }
    if !r.accepted.is_empty() {
        edges(o, r, &r.accepted, "accepted");
    }
}

/// The controls auditors test: status, evidence and what is missing, then a place to
/// sign.
fn controls(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "<h2>Controls</h2>\n<p>{}</p>",
        esc(&super::controls::lead(r))
    );
    let Some(c) = &r.controls else {
        return;
    };
    let list = |items: &[String]| {
        if items.is_empty() {
            return "–".to_string();
        }
        let li: String = items
            .iter()
            .map(|i| format!("<li>{}</li>", esc(i)))
            .collect();
        format!("<ul>{li}</ul>")
    };
    let _ = writeln!(
        o,
        "<table class=\"controls\" id=\"controls\"><colgroup><col class=\"c\"><col class=\"r\"><col class=\"s\"><col class=\"e\"><col class=\"m\"></colgroup><thead><tr><th>Control</th><th>Requirement</th><th>Status</th><th>Evidence</th><th>Missing</th></tr></thead><tbody>"
    );
    for x in &c.results {
        let _ = writeln!(
            o,
            "<tr><td><b>{}</b><br>{}{}</td><td>{}</td><td><span class=\"status {}\">{}</span></td><td>{}</td><td>{}</td></tr>",
            esc(&x.control),
            esc(&x.framework),
            if x.mapping.starts_with("built-in ") {
                String::new()
            } else {
                format!("<br><span class=\"muted\">from {}</span>", esc(&x.mapping))
            },
            esc(&x.requirement),
            esc(&x.status),
            super::controls::status_text(&x.status),
            list(&x.evidence),
            list(&x.missing)
        );
    }
    let _ = writeln!(o, "</tbody></table>");
    let _ = writeln!(
        o,
        "<div class=\"signoff\"><p>Reviewed: the controls above, as this report's evidence shows them, for the period {} to {} (report digest sha256 {}).</p><table><tr><th>Reviewed by</th><td></td><th>Date</th><td></td></tr><tr><th>Signature</th><td></td><th>Role</th><td></td></tr></table></div>",
        esc(&r.period.since),
        esc(&r.period.until),
        esc(r.digest.as_deref().unwrap_or("not sealed"))
    );
}

/// What the document's own lint found, which violations cite.
fn document_findings(o: &mut String, r: &Report) {
    let _ = writeln!(o, "<h2>Document findings</h2>");
    let (lead, items) = super::findings::section(r);
    let _ = writeln!(o, "<p>{}</p>", esc(&lead));
    if !items.is_empty() {
        let _ = writeln!(o, "<ul id=\"document-findings\">");
        for i in &items {
            let _ = writeln!(o, "<li>{}</li>", esc(i));
        }
        let _ = writeln!(o, "</ul>");
    }
}

/// Platform traffic by baseline entry, and the mesh legs.
fn platform(o: &mut String, r: &Report) {
    let _ = writeln!(o, "<h2>Platform traffic (baseline)</h2>");
    if r.platform.is_empty() {
        let _ = writeln!(o, "<p>None.</p>");
    } else {
        let _ = writeln!(
            o,
            "<p>Allowed by the platform baseline, not by the documents: neither violations nor observations of documented rows.</p>\n<table id=\"platform\"><thead><tr><th>Entry</th><th>Connections</th><th>Source (src)</th><th>Destination (dst)</th><th>Port</th><th>Nodes</th></tr></thead><tbody>"
        );
        for p in &r.platform {
            for f in &p.flows {
                let k = f.edge.key();
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td></tr>",
                    esc(&p.entry),
                    f.edge.count,
                    esc(&k.src),
                    esc(&f.edge.dst.name_and_domain()),
                    k.transport,
                    k.port,
                    esc(&f.nodes.join(", "))
                );
            }
        }
        let _ = writeln!(o, "</tbody></table>");
    }
    if r.summary.mesh_leg_connections > 0 {
        let _ = writeln!(
            o,
            "<p>Service mesh legs (sidecar connections carrying documented connections, judged on the service pair, not counted as observations): {}.</p>",
            r.summary.mesh_leg_connections
        );
    }
}

/// The DNS names egress was reached by: per documented service, undocumented by name,
/// and by bare address; or that they are unknown.
fn names(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "<h2>DNS names</h2>\n<p id=\"names\">{}</p>",
        esc(&super::names_text(r))
    );
    let Some(n) = r.names.as_ref().filter(|n| !n.nodes.is_empty()) else {
        return;
    };
    for t in super::header::names_tables(n) {
        let _ = writeln!(o, "<h3>{}</h3>", esc(t.title));
        if t.rows.is_empty() {
            let _ = writeln!(o, "<p>None.</p>");
            continue;
        }
        if let Some(intro) = t.intro {
            let _ = writeln!(o, "<p>{}</p>", esc(intro));
        }
        let headers: String = t
            .headers
            .iter()
            .map(|h| format!("<th>{}</th>", esc(h)))
            .collect();
        let _ = writeln!(
            o,
            "<table id=\"{}\"><thead><tr>{headers}</tr></thead><tbody>",
            t.id
        );
        for row in &t.rows {
            let cells: String = row
                .iter()
                .map(|c| format!("<td>{}</td>", esc(c.as_deref().unwrap_or("–"))))
                .collect();
            let class = if t.violations { " class=\"bad\"" } else { "" };
            let _ = writeln!(o, "<tr{class}>{cells}</tr>");
        }
        let _ = writeln!(o, "</tbody></table>");
    }
}

/// Every documented connection.
fn documented(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "<h2>Documented connections</h2>\n<table id=\"rows\"><thead><tr><th>Rule</th><th>Source (src)</th><th>Destination (dst)</th><th>Protocol</th><th>Port</th><th>Observed</th><th>Connections</th><th>First seen</th><th>Last seen</th><th>Nodes</th><th>Examples</th></tr></thead><tbody>"
    );
    for x in &r.rows {
        let _ = writeln!(
            o,
            "<tr class=\"{}\"><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            match (x.observed, x.port_verified) {
                (false, _) => "never",
                (true, false) => "unverified",
                (true, true) => "seen",
            },
            x.rule.map_or_else(|| "–".into(), |n| n.to_string()),
            esc(&x.src),
            esc(&x.dst),
            esc(&x.protocol),
            esc(&x.ports),
            x.observed_text(),
            x.count,
            esc(x.first_seen.as_deref().unwrap_or("–")),
            esc(x.last_seen.as_deref().unwrap_or("–")),
            esc(&x.nodes.join(", ")),
            esc(&x.examples.join("; "))
        );
    }
    o.push_str("</tbody></table>\n");
}

/// The coverage: the fraction, the gaps and the intervals.
fn coverage(o: &mut String, r: &Report) {
    let _ = match r.coverage.fraction {
        Some(f) => writeln!(
            o,
            "<h2>Coverage</h2>\n<p>{:.1}% of the period fully audited.</p>",
            f * 100.0
        ),
        None => writeln!(
            o,
            "<h2>Coverage</h2>\n<p>Coverage {}.</p>",
            esc(&super::coverage_text(r))
        ),
    };
    if !r.coverage.gaps.is_empty() {
        let _ = writeln!(
            o,
            "<h3>Gaps</h3>\n<table id=\"gaps\"><thead><tr><th>Node</th><th>From</th><th>To</th><th>Why</th></tr></thead><tbody>"
        );
        for g in &r.coverage.gaps {
            let _ = writeln!(
                o,
                "<tr class=\"bad\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&g.node),
                esc(&g.start),
                esc(&g.end),
                super::gap_reason_text(&g.reason)
            );
        }
        let _ = writeln!(o, "</tbody></table>");
    }
    let _ = writeln!(
        o,
        "<h3>Intervals</h3>\n<table id=\"coverage\"><thead><tr><th>Node</th><th>From</th><th>To</th><th>Fully audited</th><th>Connections lost</th><th>Ring buffer full</th><th>Flow map full</th></tr></thead><tbody>"
    );
    for i in &r.coverage.intervals {
        let _ = writeln!(
            o,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if i.fully_audited { "seen" } else { "bad" },
            esc(&i.node),
            esc(&i.start),
            esc(&i.end),
            if i.fully_audited { "yes" } else { "no" },
            i.drops.connections_lost,
            i.drops.ringbuf_full,
            i.drops.flow_insert_failed
        );
    }
    o.push_str("</tbody></table>\n");
    let _ = writeln!(o, "<p>{}</p>", esc(super::header::DROPS_NOTE));
}
