//! The diagram's graph read from a report: one edge per pair of services with documented
//! rows (labelled with the rows' numbers), and one per violation.

use std::collections::HashMap;

use super::{super::Report, text::wrap};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Observed,
    NotObserved,
    Violation,
}

pub(super) struct Edge {
    pub from: usize,
    pub to: usize,
    /// The label's lines: row numbers (wrapped at commas), or verdict and port.
    pub label: Vec<String>,
    pub title: String,
    pub kind: Kind,
}

/// The diagram's edges; `names` gets every service they name, in order of appearance.
pub(super) fn edges_of(r: &Report, names: &mut Vec<String>) -> Vec<Edge> {
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        index.insert(n.clone(), i);
    }
    let mut id = |n: &str, names: &mut Vec<String>| -> usize {
        *index.entry(n.to_string()).or_insert_with(|| {
            names.push(n.to_string());
            names.len() - 1
        })
    };
    // Documented rows grouped by pair of services; observed if any of its rows was.
    struct Pair {
        nums: Vec<String>,
        lines: Vec<String>,
        observed: bool,
    }
    let mut order: Vec<(usize, usize)> = Vec::new();
    let mut pairs: HashMap<(usize, usize), Pair> = HashMap::new();
    for row in &r.rows {
        let key = (id(&row.src, names), id(&row.dst, names));
        let p = pairs.entry(key).or_insert_with(|| {
            order.push(key);
            Pair {
                nums: Vec::new(),
                lines: Vec::new(),
                observed: false,
            }
        });
        p.nums
            .push(row.rule.map_or_else(|| "·".into(), |n| n.to_string()));
        p.lines.push(format!(
            "row {}: {} {}/{}: {}",
            row.rule.map_or_else(|| "–".into(), |n| n.to_string()),
            row.protocol,
            row.transport,
            row.ports,
            if row.observed {
                format!("observed, {} connection(s)", row.count)
            } else {
                "never observed".into()
            }
        ));
        p.observed |= row.observed;
    }
    let mut edges: Vec<Edge> = order
        .into_iter()
        .map(|(from, to)| {
            let p = &pairs[&(from, to)];
            Edge {
                from,
                to,
                label: wrap(&p.nums.join(", "), 12)
                    .into_iter()
                    .map(|l| l.replace(", ", ","))
                    .collect(),
                title: format!("{} → {}\n{}", names[from], names[to], p.lines.join("\n")),
                kind: if p.observed {
                    Kind::Observed
                } else {
                    Kind::NotObserved
                },
            }
        })
        .collect();
    for v in &r.violations {
        let k = v.edge.key();
        let (a, b) = (id(&k.src, names), id(&k.dst, names));
        let short = match k.verdict.as_str() {
            "undocumented_egress" => "undocumented",
            "port_drift" => "port drift",
            "protocol_drift" => "protocol drift",
            "unknown_destination" => "unknown dst",
            "unknown_source" => "unknown src",
            other => other,
        };
        edges.push(Edge {
            from: a,
            to: b,
            label: vec![short.to_string(), format!("{}/{}", k.transport, k.port)],
            title: format!(
                "{} → {}\n{} {}/{}: {} connection(s) on {}\nclosest documented rows: {}\nexample: {}",
                k.src,
                k.dst,
                k.verdict.as_str(),
                k.transport,
                k.port,
                v.edge.count,
                v.nodes.join(", "),
                v.edge.cited_rows("none"),
                v.edge.example_text()
            ),
            kind: Kind::Violation,
        });
    }
    edges
}
