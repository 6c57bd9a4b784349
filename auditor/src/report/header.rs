//! The facts every format prints first in its header (Markdown, HTML): who wrote the
//! report, about which nodes and period, how much was audited, against which inputs.

use super::Report;
use crate::model::time::{duration_text, rfc3339_seconds};

/// A coverage gap's reason as every format words it.
pub fn gap_reason_text(reason: &str) -> &'static str {
    match reason {
        "not_running" => {
            "not watched: the auditor was not running, or stopped before it had delivered what the kernel counted"
        }
        "kernel_drops" => "connections lost in the kernel",
        "never_reported" => "expected node never reported",
        _ => "unknown",
    }
}

/// What the coverage table's loss and pressure columns mean, under it in every format.
pub const DROPS_NOTE: &str = "An interval in which the kernel lost connections is not fully audited. \
A full ring buffer or flow map alone loses nothing (the kernel's flow maps deliver those \
connections); in stores written before schema 7 each could, and they are counted in \
Connections lost there, with the flows the old flow map evicted.";

/// The header an auditor reads first, in every format: who wrote the report, about
/// which nodes and period, how much of it was audited, against which inputs.
pub fn header_facts(r: &Report) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("Auditor version", r.auditor_version.clone()),
        ("Nodes", r.nodes.join(", ")),
        ("Period", format!("{} – {}", r.period.since, r.period.until)),
        ("Coverage", coverage_text(r)),
    ];
    if !r.coverage.expected_nodes.is_empty() {
        v.push((
            "Expected nodes",
            if r.coverage.missing_nodes.is_empty() {
                format!(
                    "all {} reported: {}",
                    r.coverage.expected_nodes.len(),
                    r.coverage.expected_nodes.join(", ")
                )
            } else {
                format!(
                    "{} of {} expected nodes never reported: {} (expected: {})",
                    r.coverage.missing_nodes.len(),
                    r.coverage.expected_nodes.len(),
                    r.coverage.missing_nodes.join(", "),
                    r.coverage.expected_nodes.join(", ")
                )
            },
        ));
    }
    if let Some(c) = &r.capture {
        v.insert(0, ("Captured", c.statement.clone()));
    }
    // The chain: what a reader checks with `auditor report verify --chain`.
    if let Some(p) = &r.previous {
        v.push((
            "Previous report",
            format!(
                "sha256 {} ({} – {})",
                p.digest, p.period.since, p.period.until
            ),
        ));
    }
    for (k, i) in r.inputs.iter().enumerate() {
        let mut parts = vec![format!(
            "allowlist sha256 {}",
            i.allowlist_sha256
                .as_deref()
                .unwrap_or("(file not recorded)")
        )];
        parts.push(format!("content sha256 {}", i.allowlist_content_sha256));
        if let Some(d) = &i.inventory_sha256 {
            parts.push(format!("inventory sha256 {d}"));
        }
        if let Some(d) = &i.overrides_sha256 {
            parts.push(format!("overrides sha256 {d}"));
        }
        if let Some(d) = &i.baseline_sha256 {
            parts.push(format!("platform baseline sha256 {d}"));
        }
        parts.push(format!(
            "judged by auditor {} from {}",
            i.auditor_version, i.since
        ));
        v.push((
            if k == 0 {
                "Inputs"
            } else {
                "Inputs (reloaded)"
            },
            parts.join("; "),
        ));
    }
    if !r.changed_rows.is_empty() {
        v.push(("Rows changed between allowlists", r.changed_rows.join("; ")));
    }
    if !r.limits.is_empty() {
        v.push(("Limits of this report", r.limits.join(" ")));
    }
    v.push(("Generated", r.generated_at.clone()));
    v.push((
        "Report digest",
        r.digest
            .clone()
            .map_or("(none)".to_string(), |d| format!("sha256 {d}")),
    ));
    v
}

/// How much of the period was audited, in words; "unknown" when it is.
pub fn coverage_text(r: &Report) -> String {
    match r.coverage.fraction {
        Some(f) => format!(
            "{:.1}% of the period fully audited ({} watched, {} with connections lost, {} gap(s))",
            f * 100.0,
            duration_text(r.coverage.watched_seconds),
            duration_text(r.coverage.incomplete_seconds),
            r.coverage.gaps.len()
        ),
        None => "unknown: replayed without capture intervals (the recording has no `watch` \
                 lines saying what was watched)"
            .to_string(),
    }
}

/// The banner Markdown and HTML open with when the observations are not all live capture.
pub fn capture_banner(r: &Report) -> Option<String> {
    r.capture
        .as_ref()
        .filter(|c| c.not_live())
        .map(|c| format!("Not live evidence: {}.", c.statement))
}

/// What the report knows of DNS names, in one sentence: every format prints it above the
/// names' lists, so an empty list is never read as "none found" where names are unknown.
pub fn names_text(r: &Report) -> String {
    match &r.names {
        Some(n) => n.statement.clone(),
        None => "DNS names unknown: not recorded (a report before auditor-report/5).".into(),
    }
}

/// When and from which resolver a name was learned, for humans: "from 10.96.0.10 on
/// node-a: 3 answer(s), 2026-12-04T10:00:00Z – 2026-12-04T11:00:00Z"; "not learned in
/// the period" when the store holds none (learned before it, or beyond the store's cap).
pub fn learned_text(learned: &[super::Learned]) -> String {
    if learned.is_empty() {
        return "not learned in the period".into();
    }
    learned
        .iter()
        .map(|l| {
            format!(
                "from {} on {}: {} answer(s), {} – {}",
                l.resolver,
                l.node,
                l.answers,
                rfc3339_seconds(l.first_learned),
                rfc3339_seconds(l.last_learned)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One table of the DNS names section as plain-text cells (None: no value), so the
/// Markdown and HTML reports show the same rows and only render them differently.
pub struct NamesTable {
    /// The HTML table's id.
    pub id: &'static str,
    pub title: &'static str,
    /// A sentence before the table, when it has rows.
    pub intro: Option<&'static str>,
    pub headers: &'static [&'static str],
    /// Its rows are violations (HTML marks them).
    pub violations: bool,
    pub rows: Vec<Vec<Option<String>>>,
}

/// The names section's three tables: documented services by name, undocumented egress
/// by name, egress by bare address.
pub fn names_tables(n: &super::model::Names) -> [NamesTable; 3] {
    use crate::model::time::rfc3339_seconds;
    let some = |s: &str| Some(s.to_string());
    let services = n
        .services
        .iter()
        .flat_map(|s| {
            s.domains.iter().map(move |d| {
                vec![
                    some(&s.service),
                    some(&d.domain),
                    Some(d.seen.count.to_string()),
                    Some(rfc3339_seconds(d.seen.first_seen)),
                    Some(rfc3339_seconds(d.seen.last_seen)),
                    Some(d.seen.nodes.join(", ")),
                    Some(learned_text(&d.learned)),
                ]
            })
        })
        .collect();
    let undocumented = n
        .undocumented
        .iter()
        .map(|u| {
            vec![
                some(u.verdict.as_str()),
                some(&u.src),
                some(&u.domain),
                some(&u.dst),
                Some(format!("{}/{}", u.transport, u.port)),
                Some(u.seen.count.to_string()),
                Some(rfc3339_seconds(u.seen.last_seen)),
                Some(u.seen.nodes.join(", ")),
                Some(learned_text(&u.learned)),
            ]
        })
        .collect();
    let bare = n
        .bare
        .iter()
        .map(|b| {
            vec![
                some(b.verdict.as_str()),
                some(&b.src),
                Some(b.addr.to_string()),
                b.service.clone(),
                Some(format!("{}/{}", b.transport, b.port)),
                Some(b.seen.count.to_string()),
                Some(rfc3339_seconds(b.seen.last_seen)),
                Some(b.seen.nodes.join(", ")),
            ]
        })
        .collect();
    [
        NamesTable {
            id: "names-services",
            title: "Documented services by name",
            intro: None,
            headers: &[
                "Service",
                "Name (domain)",
                "Connections",
                "First seen",
                "Last seen",
                "Nodes",
                "Learned",
            ],
            violations: false,
            rows: services,
        },
        NamesTable {
            id: "names-undocumented",
            title: "Undocumented egress by name",
            intro: None,
            headers: &[
                "Verdict",
                "Source (src)",
                "Name (domain)",
                "Destination (dst)",
                "Port",
                "Connections",
                "Last seen",
                "Nodes",
                "Learned",
            ],
            violations: true,
            rows: undocumented,
        },
        NamesTable {
            id: "names-bare",
            title: "Egress by bare address",
            intro: Some(
                "Connections to an address the source never resolved (a hard-coded address, DNS over HTTPS, an untrusted resolver's answer).",
            ),
            headers: &[
                "Verdict",
                "Source (src)",
                "Address",
                "Service",
                "Port",
                "Connections",
                "Last seen",
                "Nodes",
            ],
            violations: false,
            rows: bare,
        },
    ]
}
