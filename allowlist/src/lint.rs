//! Lints: things a valid allowlist may still get wrong, found by reading it as a reviewer
//! would. Findings are warnings: the document is the customer's, we point, they decide.

use std::collections::BTreeMap;

use crate::{
    model::{Allowlist, Connection, Ports, ServiceKind},
    names,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable code, e.g. `reversed-datastore`.
    pub code: &'static str,
    /// The connection numbers involved (empty for unnumbered rows).
    pub rows: Vec<u32>,
    pub message: String,
    /// A connection the finding says is likely real though no row lists it (a reversed
    /// row's true direction, a connection a row's text describes): traffic on it is
    /// undocumented, and this finding explains why.
    pub suspected: Option<Suspected>,
}

/// A connection a finding suspects: source and destination services, and the port when
/// the finding names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspected {
    pub source: String,
    pub destination: String,
    pub port: Option<u16>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "warning[{}]: {}", self.code, self.message)
    }
}

pub fn lint(a: &Allowlist) -> Vec<Finding> {
    let mut out = Vec::new();
    reversed_datastores(a, &mut out);
    described_not_listed(a, &mut out);
    repeated_edges(a, &mut out);
    unknown_ports(a, &mut out);
    small_ports_in_lists(a, &mut out);
    unknown_transports(a, &mut out);
    out
}

fn kind(a: &Allowlist, name: &str) -> ServiceKind {
    a.service(name)
        .map_or_else(|| names::kind_of(name), |s| s.kind)
}

/// Datastores and brokers accept connections; a row starting at one is likely reversed.
fn reversed_datastores(a: &Allowlist, out: &mut Vec<Finding>) {
    for c in &a.connections {
        let k = kind(a, &c.source);
        if matches!(k, ServiceKind::Datastore | ServiceKind::Broker) {
            out.push(Finding {
                code: "reversed-datastore",
                rows: c.number.into_iter().collect(),
                message: format!(
                    "{}: {} → {}: {} is a {} and does not initiate connections; the row is likely reversed ({} → {})",
                    c.label(),
                    c.source_as_written(),
                    c.destination_as_written(),
                    c.source,
                    k.as_str(),
                    c.destination,
                    c.source
                ),
                suspected: Some(Suspected {
                    source: c.destination.clone(),
                    destination: c.source.clone(),
                    port: None,
                }),
            });
        }
    }
}

/// Every name a service goes by in prose: its name, aliases and initials ("GES").
fn vocabulary(a: &Allowlist) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for s in &a.services {
        v.push((s.name.clone(), s.name.clone()));
        for alias in &s.aliases {
            v.push((alias.clone(), s.name.clone()));
        }
        if let Some(abbr) = names::abbreviation(&s.name) {
            v.push((abbr, s.name.clone()));
        }
    }
    v
}

/// Finds "... <service> ... port NNNN" in a row's description: a connection the text
/// describes. If no row lists it (from the row's source), the table is incomplete.
fn described_not_listed(a: &Allowlist, out: &mut Vec<Finding>) {
    let vocab = vocabulary(a);
    for c in &a.connections {
        let text = &c.description;
        let lower = text.to_ascii_lowercase();
        let mut search = 0;
        while let Some(pos) = lower[search..].find("port ").map(|p| p + search) {
            search = pos + 5;
            let digits: String = lower[search..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let Ok(port) = digits.parse::<u16>() else {
                continue;
            };
            // The service named last before the port, within the same sentence.
            let sentence_start = text[..pos].rfind(". ").map_or(0, |i| i + 2);
            let before = &text[sentence_start..pos];
            let Some(service) = vocab
                .iter()
                .filter_map(|(word, service)| find_word(before, word).map(|at| (at, service)))
                .max_by_key(|(at, _)| *at)
                .map(|(_, s)| s.clone())
            else {
                continue;
            };
            if service == c.source {
                continue;
            }
            let listed = a.connections.iter().any(|o| {
                o.source == c.source
                    && o.destination == service
                    && matches!(&o.ports, Ports::Listed(l) if l.iter().any(|p| p.contains(port)))
            });
            if !listed {
                out.push(Finding {
                    code: "described-not-listed",
                    rows: c.number.into_iter().collect(),
                    message: format!(
                        "{}: its description says {} connects to {} on port {port}, but no row lists {} → {} on {port}",
                        c.label(),
                        c.source,
                        service,
                        c.source,
                        service
                    ),
                    suspected: Some(Suspected {
                        source: c.source.clone(),
                        destination: service.clone(),
                        port: Some(port),
                    }),
                });
            }
        }
    }
}

/// Position of `word` in `text` as a whole word, last occurrence.
fn find_word(text: &str, word: &str) -> Option<usize> {
    text.match_indices(word)
        .filter(|(i, _)| {
            let before = text[..*i].chars().next_back();
            let after = text[i + word.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
        .map(|(i, _)| i)
        .last()
}

/// Rows that repeat the same source, destination, transport and port: probably one
/// connection described several times (or rows that should differ and do not).
fn repeated_edges(a: &Allowlist, out: &mut Vec<Finding>) {
    let mut groups: BTreeMap<(String, String, &str, String), Vec<&Connection>> = BTreeMap::new();
    for c in &a.connections {
        let Ports::Listed(ports) = &c.ports else {
            continue;
        };
        let key = ports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        groups
            .entry((
                c.source.clone(),
                c.destination.clone(),
                c.transport.as_str(),
                key,
            ))
            .or_default()
            .push(c);
    }
    let mut found: Vec<(Vec<u32>, String)> = groups
        .into_iter()
        .filter(|(_, rows)| rows.len() > 1)
        .map(|((s, d, t, p), rows)| {
            let labels: Vec<String> = rows
                .iter()
                .map(|c| c.number.map_or_else(|| c.label(), |n| n.to_string()))
                .collect();
            (
                rows.iter().filter_map(|c| c.number).collect(),
                format!(
                    "rows {} repeat {s} → {d} {t}/{p}: one connection documented {} times?",
                    labels.join(", "),
                    rows.len()
                ),
            )
        })
        .collect();
    found.sort();
    out.extend(found.into_iter().map(|(rows, message)| Finding {
        code: "repeated-connection",
        suspected: None,
        rows,
        message,
    }));
}

/// Rows without a port cannot be checked until the deployment's overrides give one.
fn unknown_ports(a: &Allowlist, out: &mut Vec<Finding>) {
    for c in &a.connections {
        if let Ports::Unknown { reason } = &c.ports {
            out.push(Finding {
                code: "unknown-port",
                suspected: None,
                rows: c.number.into_iter().collect(),
                message: format!(
                    "{}: {} → {} has no documented port ({reason:?}); give this deployment's port in the overrides file (rows: {{{}: [PORT]}})",
                    c.label(),
                    c.source,
                    c.destination,
                    c.number.map_or_else(|| "N".into(), |n| n.to_string())
                ),
            });
        }
    }
}

/// A port below 20 in a list ("8, 443") is rarely a service: more likely a number with a
/// thousands separator split into two.
fn small_ports_in_lists(a: &Allowlist, out: &mut Vec<Finding>) {
    for c in &a.connections {
        let list = c.ports.listed();
        if list.len() < 2 {
            continue;
        }
        for p in list.iter().filter(|p| p.first < 20) {
            out.push(Finding {
                code: "small-port-in-list",
                suspected: None,
                rows: c.number.into_iter().collect(),
                message: format!(
                    "{}: port {p} in the list [{}] is below 20: was one number with a thousands separator (8,443) split into two?",
                    c.label(),
                    list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
}

/// Rows whose protocol does not tell the transport match either one, unverified.
fn unknown_transports(a: &Allowlist, out: &mut Vec<Finding>) {
    for c in &a.connections {
        if !c.transport.verified() {
            out.push(Finding {
                code: "unknown-transport",
                suspected: None,
                rows: c.number.into_iter().collect(),
                message: format!(
                    "{}: {} → {}: protocol {:?} does not tell TCP or UDP; the row matches either, unverified (set transport: tcp, udp or both)",
                    c.label(),
                    c.source,
                    c.destination,
                    c.protocol
                ),
            });
        }
    }
}

/// Lints with a deployment's overrides applied, as the auditor will judge: a row whose
/// port the overrides give is no longer "unknown", and an override that changes no row's
/// ports (the document fixes them, a row override wins over it, or it repeats the
/// documented port) is a warning.
pub fn lint_with_overrides(a: &Allowlist, o: &crate::overrides::Overrides) -> Vec<Finding> {
    use crate::rule_index::effective;
    let mut out: Vec<Finding> = lint(a)
        .into_iter()
        .filter(|f| {
            // An unnumbered row cannot be named by an override: its finding stays.
            f.code != "unknown-port"
                || f.rows.is_empty()
                || !f.rows.iter().all(|n| {
                    a.connection(*n).is_some_and(|c| {
                        !effective(&c.ports, o.rows.get(n), o.services.get(&c.destination))
                            .0
                            .is_empty()
                    })
                })
        })
        .collect();
    for (service, ports) in &o.services {
        let changes = a
            .connections
            .iter()
            .filter(|c| c.destination == *service)
            .any(|c| {
                let row = c.number.and_then(|n| o.rows.get(&n));
                effective(&c.ports, row, Some(ports)) != effective(&c.ports, row, None)
            });
        if !changes {
            out.push(Finding {
                code: "override-no-effect",
                suspected: None,
                rows: Vec::new(),
                message: format!(
                    "overrides services.{service:?}: changes no row's ports (the document fixes them, a row override wins, or it repeats the documented port)"
                ),
            });
        }
    }
    for (n, ports) in &o.rows {
        let Some(c) = a.connection(*n) else { continue };
        let svc = o.services.get(&c.destination);
        let with = effective(&c.ports, Some(ports), svc);
        let without = effective(&c.ports, None, svc);
        let same_as_documented = match &c.ports {
            Ports::Listed(l) => {
                let mut doc: Vec<(u16, u16)> = l.iter().map(|p| (p.first, p.last)).collect();
                let mut got: Vec<(u16, u16)> = with.0.iter().map(|p| (p.first, p.last)).collect();
                doc.sort_unstable();
                got.sort_unstable();
                doc == got
            }
            _ => false,
        };
        if with == without || same_as_documented {
            out.push(Finding {
                code: "override-no-effect",
                suspected: None,
                rows: vec![*n],
                message: format!(
                    "overrides rows.{n}: {} → {} already allows {} as documented; the override changes nothing",
                    c.source,
                    c.destination,
                    with.0
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    out
}
