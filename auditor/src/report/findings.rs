//! The document's own findings in a report: what the allowlist's lint finds in the rows
//! (`auditor allowlist check`), and which violations they explain. A violation on a
//! connection a finding suspects (a reversed row's true direction, a connection a row's
//! text describes that no row lists) is still a violation: the finding says why the
//! document does not list it, for the auditor to judge.

use allowlist::{
    Allowlist,
    lint::{self, Suspected},
};

use super::{DocumentFinding, ObservedEdge, Report, model::FindingRef};
use crate::edge::Edge;

/// Sets the report's `document_findings` from `list`, and each violation's `explained_by`.
pub fn attach_findings(r: &mut Report, list: &Allowlist) {
    let found = lint::lint(list);
    r.document_findings = found
        .iter()
        .map(|f| DocumentFinding {
            code: f.code.to_string(),
            rows: f.rows.clone(),
            message: f.message.clone(),
        })
        .collect();
    for v in &mut r.violations {
        v.explained_by = found
            .iter()
            .filter(|f| f.suspected.as_ref().is_some_and(|s| suspects(s, &v.edge)))
            .map(|f| FindingRef {
                code: f.code.to_string(),
                rows: f.rows.clone(),
            })
            .collect();
    }
}

/// Whether the edge is the connection the finding suspects.
fn suspects(s: &Suspected, e: &Edge) -> bool {
    e.src.service.as_deref() == Some(s.source.as_str())
        && e.dst.service.as_deref() == Some(s.destination.as_str())
        && s.port.is_none_or(|p| e.dst.port == Some(p))
}

/// "; explained by document finding described-not-listed (row 10)", or "" when none.
pub(super) fn explained_text(v: &ObservedEdge) -> String {
    if v.explained_by.is_empty() {
        return String::new();
    }
    let refs: Vec<String> = v
        .explained_by
        .iter()
        .map(|f| {
            let rows: Vec<String> = f.rows.iter().map(u32::to_string).collect();
            match rows.len() {
                0 => f.code.clone(),
                1 => format!("{} (row {})", f.code, rows[0]),
                _ => format!("{} (rows {})", f.code, rows.join(", ")),
            }
        })
        .collect();
    format!("; explained by document finding {}", refs.join(", "))
}

/// The Document findings section's lead and items, for every format. A report before
/// `auditor-report/7` did not look: it says so rather than "none".
pub(super) fn section(r: &Report) -> (String, Vec<String>) {
    if r.schema != super::SCHEMA {
        return (
            format!(
                "Not recorded: a report of {} carries no document findings.",
                r.schema
            ),
            Vec::new(),
        );
    }
    if r.document_findings.is_empty() {
        return (
            "None: the allowlist's lint found nothing in the document.".into(),
            Vec::new(),
        );
    }
    (
        "What the allowlist's lint (`auditor allowlist check`) found in the document; a violation it explains cites it."
            .into(),
        r.document_findings
            .iter()
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect(),
    )
}
