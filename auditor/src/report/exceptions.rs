//! Accepted exceptions in a report (`auditor report --exceptions FILE`): a violation an
//! exception covers is accepted while the exception is in force, and a violation again
//! when the edge was seen after it expired. The report lists every exception, used or
//! not, and what it covered, so stale and expired entries are in front of the auditor.
//!
//! Exceptions apply where evidence is filed, to a finished report (from a store,
//! Prometheus, or merged), never in the daemon: events, metrics and alerts say what the
//! documents say; an Alertmanager silence with the same expiry quiets the alert.

use allowlist::Exceptions;

use super::{
    ExceptionUse, ExceptionsUsed, Report,
    merge::finish,
    model::{ObservedEdge, parse_time},
};
use crate::model::time::rfc3339_millis;

/// Applies `list` (read from `file`, whose bytes hash to `sha256`) to the report's
/// violations and recomputes the summary.
pub fn apply_exceptions(r: &mut Report, list: &Exceptions, file: &str, sha256: String) {
    // Applied again (a report that had some): judged afresh from the documents' verdicts.
    let accepted = std::mem::take(&mut r.accepted);
    r.violations.extend(accepted);
    let until = parse_time(&r.period.until);
    let mut uses: Vec<ExceptionUse> = list
        .entries
        .iter()
        .map(|e| ExceptionUse {
            id: e.id.clone(),
            src: e.src.clone(),
            dst: e.dst.clone(),
            transport: e.transport,
            port: e.port,
            reason: e.reason.clone(),
            owner: e.owner.clone(),
            expires: e.expires.clone(),
            expired_from: rfc3339_millis(e.expires_ms),
            status: if until.is_some_and(|u| u < e.expires_ms) {
                "in_force".into()
            } else {
                "expired".into()
            },
            accepted_edges: 0,
            accepted_connections: 0,
            expired_edges: 0,
        })
        .collect();
    let mut violations = Vec::new();
    for mut v in std::mem::take(&mut r.violations) {
        let e = &v.edge;
        // Last seen within the period: a later sighting is another report's.
        let last = until.map_or(e.last_seen, |u| e.last_seen.min(u));
        let names = |end: &crate::edge::Endpoint, domain: bool| -> Vec<String> {
            let mut n: Vec<String> = end.service.iter().cloned().collect();
            n.extend(end.addr.map(|a| a.to_string()));
            if domain {
                n.extend(
                    end.domain
                        .as_ref()
                        .map(|d| d.trim_end_matches('.').to_string()),
                );
            }
            n
        };
        let Some((i, x)) = list.covering(
            &names(&e.src, false),
            &names(&e.dst, true),
            e.transport,
            e.dst.port,
            last,
        ) else {
            violations.push(v);
            continue;
        };
        v.exception = Some(x.id.clone());
        if last < x.expires_ms {
            uses[i].accepted_edges += 1;
            uses[i].accepted_connections += e.count;
            r.accepted.push(v);
        } else {
            uses[i].expired_edges += 1;
            violations.push(v);
        }
    }
    r.violations = violations;
    r.exceptions = Some(ExceptionsUsed {
        file: file.to_string(),
        sha256,
        entries: uses,
    });
    finish(r);
}

/// "; accepted exception EXC-1 (owner …, expires 2027-03-31)" for an edge of `r.accepted`,
/// "; exception EXC-1 expired 2027-03-31: seen after it" for one of `r.violations` (`v`
/// is one of the report's own edges: which list holds it says which), "" when none.
pub(super) fn exception_text(r: &Report, v: &ObservedEdge) -> String {
    let Some(id) = &v.exception else {
        return String::new();
    };
    let entry = r
        .exceptions
        .as_ref()
        .and_then(|x| x.entries.iter().find(|e| &e.id == id));
    let accepted = r.accepted.iter().any(|a| std::ptr::eq(a, v));
    match (entry, accepted) {
        (Some(e), true) => format!(
            "; accepted exception {id} (owner {}, expires {})",
            e.owner, e.expires
        ),
        (Some(e), false) => format!("; exception {id} expired {}: seen after it", e.expires),
        (None, _) => format!("; exception {id}"),
    }
}

/// The Accepted exceptions section's lead and one line per exception, for every format.
pub(super) fn section(r: &Report) -> (String, Vec<String>) {
    let Some(x) = &r.exceptions else {
        return (
            "None given: no violation was accepted (`auditor report --exceptions FILE`).".into(),
            Vec::new(),
        );
    };
    let lead = format!(
        "From {} (sha256 {}): {} exception(s); {} edge(s), {} connection(s) accepted. A violation an exception covers is accepted while it is in force, and a violation again once seen after it expired.",
        x.file,
        x.sha256,
        x.entries.len(),
        r.summary.accepted_edges,
        r.summary.accepted_connections
    );
    let lines = x
        .entries
        .iter()
        .map(|e| {
            let edge = format!(
                "{} -> {}{}{}",
                e.src,
                e.dst,
                e.transport.map_or(String::new(), |t| format!(" {t}")),
                e.port.map_or(String::new(), |p| format!(" port {p}"))
            );
            let used = match (e.accepted_edges, e.expired_edges) {
                (0, 0) => "not used in the period".to_string(),
                (a, 0) => format!("accepted {a} edge(s), {} connection(s)", e.accepted_connections),
                (a, x) => format!(
                    "accepted {a} edge(s), {} connection(s); {x} edge(s) seen after it expired are violations",
                    e.accepted_connections
                ),
            };
            format!(
                "{}: {edge}; owner {}; expires {} ({}); reason: {}; {used}",
                e.id,
                e.owner,
                e.expires,
                if e.status == "in_force" { "in force at the period's end" } else { "expired" },
                e.reason
            )
        })
        .collect();
    (lead, lines)
}
