//! The SVG diagram of the services: documented connections (grey dashed when never
//! observed, green when observed) and violations (red), each edge labelled with its row
//! numbers as in the original architecture diagram. Columns: clients, services, then
//! datastores/brokers/externals; order within a column by barycentre to cut crossings.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write,
};

use super::Report;

const BOX_W: f64 = 210.0;
const BOX_H: f64 = 30.0;
const ROW_GAP: f64 = 44.0;
const COL_X: [f64; 3] = [30.0, 520.0, 1010.0];
const WIDTH: f64 = 1260.0;
const TOP: f64 = 70.0;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Observed,
    NotObserved,
    Violation,
}

struct Edge {
    from: usize,
    to: usize,
    label: String,
    kind: Kind,
}

pub fn render(r: &Report) -> String {
    // Nodes, in first-appearance order.
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut id = |n: &str, names: &mut Vec<String>| -> usize {
        *index.entry(n.to_string()).or_insert_with(|| {
            names.push(n.to_string());
            names.len() - 1
        })
    };
    // Documented edges grouped by pair; each pair is observed if any of its rows was.
    let mut pairs: BTreeMap<(usize, usize), (Vec<String>, bool)> = BTreeMap::new();
    for row in &r.rows {
        let (a, b) = (
            id(&row.source, &mut names),
            id(&row.destination, &mut names),
        );
        let e = pairs.entry((a, b)).or_default();
        e.0.push(row.number.map_or_else(|| "·".into(), |n| n.to_string()));
        e.1 |= row.observed;
    }
    let mut edges: Vec<Edge> = pairs
        .into_iter()
        .map(|((from, to), (nums, observed))| Edge {
            from,
            to,
            label: nums.join(","),
            kind: if observed {
                Kind::Observed
            } else {
                Kind::NotObserved
            },
        })
        .collect();
    for v in &r.violations {
        let k = v.edge.key();
        let (a, b) = (id(&k.src, &mut names), id(&k.dst, &mut names));
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
            label: format!("{short} {}/{}", k.transport, k.port),
            kind: Kind::Violation,
        });
    }

    // Columns: no incoming edge -> clients; no outgoing -> stores/externals; else middle.
    let n = names.len();
    let (mut ins, mut outs) = (vec![0; n], vec![0; n]);
    for e in &edges {
        outs[e.from] += 1;
        ins[e.to] += 1;
    }
    let col: Vec<usize> = (0..n)
        .map(|i| {
            if ins[i] == 0 {
                0
            } else if outs[i] == 0 {
                2
            } else {
                1
            }
        })
        .collect();
    let mut columns: [Vec<usize>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..n {
        columns[col[i]].push(i);
    }
    let mut pos = vec![0.0f64; n];
    let place = |columns: &[Vec<usize>; 3], pos: &mut Vec<f64>| {
        for c in columns {
            for (k, &i) in c.iter().enumerate() {
                pos[i] = k as f64;
            }
        }
    };
    place(&columns, &mut pos);
    for _ in 0..4 {
        for c in columns.iter_mut() {
            let bary: HashMap<usize, f64> = c
                .iter()
                .map(|&i| {
                    let nb: Vec<f64> = edges
                        .iter()
                        .filter_map(|e| {
                            if e.from == i {
                                Some(pos[e.to])
                            } else if e.to == i {
                                Some(pos[e.from])
                            } else {
                                None
                            }
                        })
                        .collect();
                    (
                        i,
                        if nb.is_empty() {
                            pos[i]
                        } else {
                            nb.iter().sum::<f64>() / nb.len() as f64
                        },
                    )
                })
                .collect();
            c.sort_by(|a, b| bary[a].total_cmp(&bary[b]));
        }
        place(&columns, &mut pos);
    }
    let rows = columns.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let height = TOP + rows as f64 * ROW_GAP + 40.0;
    let mut xy = vec![(0.0, 0.0); n];
    for (c, members) in columns.iter().enumerate() {
        // Centre shorter columns vertically.
        let offset = (rows - members.len()) as f64 * ROW_GAP / 2.0;
        for (k, &i) in members.iter().enumerate() {
            xy[i] = (COL_X[c], TOP + offset + k as f64 * ROW_GAP);
        }
    }

    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="diagram" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="Helvetica, Arial, sans-serif" font-size="12">
<defs>
<marker id="a-ok" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#2e7d32"/></marker>
<marker id="a-no" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#9e9e9e"/></marker>
<marker id="a-bad" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#c62828"/></marker>
</defs>
<g class="legend" font-size="12">
<line x1="30" y1="22" x2="70" y2="22" stroke="#2e7d32" stroke-width="2"/><text x="78" y="26">documented, observed</text>
<line x1="240" y1="22" x2="280" y2="22" stroke="#9e9e9e" stroke-width="1.5" stroke-dasharray="5,4"/><text x="288" y="26">documented, never observed</text>
<line x1="490" y1="22" x2="530" y2="22" stroke="#c62828" stroke-width="2.5"/><text x="538" y="26">violation</text>
<text x="700" y="26" fill="#555">labels: documented connection numbers</text>
</g>
"##
    );
    // Edges under the boxes; violations last so they stay visible.
    let mut order: Vec<&Edge> = edges.iter().collect();
    order.sort_by_key(|e| match e.kind {
        Kind::NotObserved => 0,
        Kind::Observed => 1,
        Kind::Violation => 2,
    });
    let mut labels = String::new();
    for e in order {
        let (ax, ay) = xy[e.from];
        let (bx, by) = xy[e.to];
        let (x1, y1) = (ax + BOX_W, ay + BOX_H / 2.0);
        let (x2, y2, d) = if bx > ax {
            let (x2, y2) = (bx, by + BOX_H / 2.0);
            let dx = (x2 - x1) / 2.0;
            (
                x2,
                y2,
                format!(
                    "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
                    x1 + dx,
                    x2 - dx
                ),
            )
        } else {
            // Same column or backwards: loop out to the right.
            let (x2, y2) = (bx + BOX_W, by + BOX_H / 2.0);
            let bulge = 60.0 + (y2 - y1).abs() * 0.15;
            (
                x2,
                y2,
                format!(
                    "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
                    x1 + bulge,
                    x2 + bulge
                ),
            )
        };
        let (stroke, width, dash, marker, class) = match e.kind {
            Kind::Observed => ("#2e7d32", 1.8, "", "a-ok", "edge observed"),
            Kind::NotObserved => (
                "#9e9e9e",
                1.2,
                r#" stroke-dasharray="5,4""#,
                "a-no",
                "edge not-observed",
            ),
            Kind::Violation => ("#c62828", 2.6, "", "a-bad", "edge violation"),
        };
        let _ = writeln!(
            s,
            r#"<path class="{class}" d="{d}" fill="none" stroke="{stroke}" stroke-width="{width}"{dash} marker-end="url(#{marker})"/>"#
        );
        // Label near the middle, nudged along the curve so labels of parallel edges part.
        // Label at the curve's middle; loops (same column) bulge right, so shift with them.
        let t = 0.5;
        let (mx, my) = (
            (x1 + x2) / 2.0 + if bx > ax { 0.0 } else { 40.0 },
            y1 + (y2 - y1) * t,
        );
        let w = 7.0 * e.label.len() as f64 + 8.0;
        let color = match e.kind {
            Kind::Violation => "#c62828",
            Kind::Observed => "#1b5e20",
            Kind::NotObserved => "#757575",
        };
        let _ = writeln!(
            labels,
            r#"<g class="label"><rect x="{:.1}" y="{:.1}" width="{w:.1}" height="15" rx="3" fill="white" fill-opacity="0.9" stroke="{color}" stroke-width="0.6"/><text x="{mx:.1}" y="{:.1}" text-anchor="middle" fill="{color}" font-size="11">{}</text></g>"#,
            mx - w / 2.0,
            my - 8.0,
            my + 3.5,
            esc(&e.label)
        );
    }
    for (i, name) in names.iter().enumerate() {
        let (x, y) = xy[i];
        let violated = edges
            .iter()
            .any(|e| e.kind == Kind::Violation && (e.from == i || e.to == i));
        let (fill, stroke) = if violated {
            ("#ffebee", "#c62828")
        } else {
            ("#e3f2fd", "#1565c0")
        };
        let shown: String = if name.chars().count() > 30 {
            format!("{}…", name.chars().take(29).collect::<String>())
        } else {
            name.clone()
        };
        let _ = writeln!(
            s,
            r#"<g class="node"><title>{}</title><rect x="{x:.1}" y="{y:.1}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.2"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
            esc(name),
            x + BOX_W / 2.0,
            y + BOX_H / 2.0 + 4.0,
            esc(&shown)
        );
    }
    s.push_str(&labels);
    s.push_str("</svg>\n");
    s
}
