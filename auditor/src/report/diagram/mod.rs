//! The SVG diagram of the services: documented connections (grey dashed when never
//! observed, green when observed) and violations (red), each edge labelled with its row
//! numbers as in the original architecture diagram, with a `<title>` tooltip (rows,
//! ports, counts).
//!
//! The layout is a small layered (Sugiyama) layout of our own; no maintained Rust crate
//! did layered layout with edge labels for our toolchain. Steps:
//! 1. cycles are broken by reversing the back edges of a depth-first search;
//! 2. each service gets a layer by longest path; layers are columns, left to right;
//! 3. every edge gets a dummy vertex in each column it spans, and its label is one of
//!    them, in a label column between two service columns: labels are laid out like
//!    services, so none can overlap a service or another label;
//! 4. crossings are reduced by barycentre sweeps with adjacent swaps, keeping the best
//!    order found;
//! 5. vertical positions follow the neighbours' (least squares under the separation
//!    constraints, by isotonic regression), so edges run as straight as they can.
//!
//! Names are wrapped on word boundaries, never cut.

use std::{collections::HashMap, fmt::Write};

use super::Report;

const NODE_W: f64 = 150.0;
const LINE_H: f64 = 14.0;
const CHAR_W: f64 = 6.6;
const LABEL_CHAR_W: f64 = 6.4;
const GAP_Y: f64 = 12.0;
const COL_GAP: f64 = 30.0;
const LEFT: f64 = 20.0;
const TOP: f64 = 50.0;
const WRAP: usize = 21;

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
    /// The label's lines: row numbers (wrapped at commas), or verdict and port.
    label: Vec<String>,
    title: String,
    kind: Kind,
}

/// A vertex of the layered graph: a service, an edge's label, or a bend point.
#[derive(Clone)]
enum Vertex {
    Service(usize),
    Label(usize),
    Bend,
}

/// Whole words on lines of at most `width` characters (a longer word stays whole).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

fn edges_of(r: &Report, names: &mut Vec<String>) -> Vec<Edge> {
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
        let key = (id(&row.source, names), id(&row.destination, names));
        let p = pairs.entry(key).or_insert_with(|| {
            order.push(key);
            Pair {
                nums: Vec::new(),
                lines: Vec::new(),
                observed: false,
            }
        });
        p.nums
            .push(row.number.map_or_else(|| "·".into(), |n| n.to_string()));
        p.lines.push(format!(
            "row {}: {} {}/{}: {}",
            row.number.map_or_else(|| "–".into(), |n| n.to_string()),
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

/// Crossings between two adjacent columns, given each segment's (upper, lower) positions.
fn bilayer_crossings(segs: &[(usize, usize)]) -> usize {
    let mut n = 0;
    for i in 0..segs.len() {
        for j in i + 1..segs.len() {
            let (a, b) = (segs[i], segs[j]);
            if (a.0 < b.0 && a.1 > b.1) || (a.0 > b.0 && a.1 < b.1) {
                n += 1;
            }
        }
    }
    n
}

struct Layered {
    /// Vertices per column, in order.
    cols: Vec<Vec<usize>>,
    col_of: Vec<usize>,
    /// Segments between vertex ids, each from a column to the next.
    segs: Vec<(usize, usize)>,
}

impl Layered {
    fn crossings(&self) -> usize {
        (0..self.cols.len()).map(|c| self.crossings_after(c)).sum()
    }

    /// Crossings between column `c` and the next.
    fn crossings_after(&self, c: usize) -> usize {
        if c + 1 >= self.cols.len() {
            return 0;
        }
        let mut pos: HashMap<usize, usize> = HashMap::new();
        for cc in [c, c + 1] {
            for (k, &v) in self.cols[cc].iter().enumerate() {
                pos.insert(v, k);
            }
        }
        let segs: Vec<(usize, usize)> = self
            .segs
            .iter()
            .filter(|&&(a, _)| self.col_of[a] == c)
            .map(|&(a, b)| (pos[&a], pos[&b]))
            .collect();
        bilayer_crossings(&segs)
    }

    /// Crossings on either side of column `c`: all a swap within it can change.
    fn crossings_around(&self, c: usize) -> usize {
        self.crossings_after(c)
            + if c > 0 {
                self.crossings_after(c - 1)
            } else {
                0
            }
    }

    fn reduce_crossings(&mut self) {
        let n = self.col_of.len();
        let mut up: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut down: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &(a, b) in &self.segs {
            down[a].push(b);
            up[b].push(a);
        }
        let mut best = self.cols.clone();
        let mut best_n = self.crossings();
        for iter in 0..24 {
            let downward = iter % 2 == 0;
            let ncols = self.cols.len();
            let order: Vec<usize> = if downward {
                (1..ncols).collect()
            } else {
                (0..ncols.saturating_sub(1)).rev().collect()
            };
            for c in order {
                let mut pos = vec![0.0f64; n];
                for col in &self.cols {
                    for (k, &v) in col.iter().enumerate() {
                        pos[v] = k as f64;
                    }
                }
                let nb = if downward { &up } else { &down };
                let mut keyed: Vec<(f64, usize)> = self.cols[c]
                    .iter()
                    .map(|&v| {
                        let ns = &nb[v];
                        let b = if ns.is_empty() {
                            pos[v]
                        } else {
                            ns.iter().map(|&u| pos[u]).sum::<f64>() / ns.len() as f64
                        };
                        (b, v)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                self.cols[c] = keyed.into_iter().map(|(_, v)| v).collect();
            }
            self.transpose();
            let now = self.crossings();
            if now < best_n {
                best_n = now;
                best = self.cols.clone();
            }
        }
        self.cols = best;
    }

    /// Swaps adjacent vertices while that removes crossings.
    fn transpose(&mut self) {
        let mut improved = true;
        let mut rounds = 0;
        while improved && rounds < 6 {
            improved = false;
            rounds += 1;
            for c in 0..self.cols.len() {
                for k in 0..self.cols[c].len().saturating_sub(1) {
                    let before = self.crossings_around(c);
                    self.cols[c].swap(k, k + 1);
                    if self.crossings_around(c) < before {
                        improved = true;
                    } else {
                        self.cols[c].swap(k, k + 1);
                    }
                }
            }
        }
    }
}

/// Least-squares positions under ordering: tops `y` with y[i+1] >= y[i] + sep[i],
/// as close as possible to `want` (isotonic regression, pool adjacent violators).
fn place(want: &[f64], sep: &[f64]) -> Vec<f64> {
    let n = want.len();
    let mut offset = vec![0.0; n];
    for i in 1..n {
        offset[i] = offset[i - 1] + sep[i - 1];
    }
    // Blocks of (sum, count).
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for i in 0..n {
        blocks.push((want[i] - offset[i], 1));
        while blocks.len() > 1 {
            let (s2, c2) = blocks[blocks.len() - 1];
            let (s1, c1) = blocks[blocks.len() - 2];
            if s1 / c1 as f64 > s2 / c2 as f64 {
                blocks.pop();
                blocks.pop();
                blocks.push((s1 + s2, c1 + c2));
            } else {
                break;
            }
        }
    }
    let mut out = Vec::with_capacity(n);
    for (s, c) in blocks {
        for _ in 0..c {
            out.push(s / c as f64);
        }
    }
    for i in 0..n {
        out[i] += offset[i];
    }
    out
}

// The layout indexes parallel arrays (edges, vertices, columns) by id throughout.
#[allow(clippy::needless_range_loop)]
pub fn render(r: &Report) -> String {
    let mut names: Vec<String> = Vec::new();
    let edges = edges_of(r, &mut names);
    let n = names.len();

    // 1. Break cycles: DFS from services with no incoming edge first; back edges flip.
    let mut out_adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indeg = vec![0; n];
    for (k, e) in edges.iter().enumerate() {
        if e.from != e.to {
            out_adj[e.from].push(k);
            indeg[e.to] += 1;
        }
    }
    let mut reversed = vec![false; edges.len()];
    let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    let mut starts: Vec<usize> = (0..n).collect();
    starts.sort_by_key(|&v| (indeg[v] > 0, v));
    for s in starts {
        if state[s] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(s, 0)];
        state[s] = 1;
        while let Some(&mut (v, ref mut i)) = stack.last_mut() {
            if *i < out_adj[v].len() {
                let k = out_adj[v][*i];
                *i += 1;
                let w = edges[k].to;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => reversed[k] = true,
                    _ => {}
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    let dir = |k: usize| {
        let e = &edges[k];
        if reversed[k] {
            (e.to, e.from)
        } else {
            (e.from, e.to)
        }
    };

    // 2. Layers by longest path (a DAG now).
    let mut rank = vec![0usize; n];
    let mut changed = true;
    let mut guard = 0;
    while changed && guard <= n + 1 {
        changed = false;
        guard += 1;
        for k in 0..edges.len() {
            let (a, b) = dir(k);
            if a != b && rank[b] < rank[a] + 1 {
                rank[b] = rank[a] + 1;
                changed = true;
            }
        }
    }
    // Pull services with no incoming edge towards their targets, so a client sits next
    // to what it calls rather than at the far left.
    for v in 0..n {
        let outs: Vec<usize> = (0..edges.len())
            .filter(|&k| dir(k).0 == v && dir(k).1 != v)
            .map(|k| rank[dir(k).1])
            .collect();
        let has_in = (0..edges.len()).any(|k| dir(k).1 == v && dir(k).0 != v);
        if !has_in && let Some(&m) = outs.iter().min() {
            rank[v] = m.saturating_sub(1).max(rank[v]);
        }
    }

    // 3. Columns: service layer r is column 2r; odd columns hold labels and bends.
    let ncols = 2 * rank.iter().copied().max().unwrap_or(0) + 2;
    let mut verts: Vec<Vertex> = (0..n).map(Vertex::Service).collect();
    let mut col_of: Vec<usize> = (0..n).map(|v| 2 * rank[v]).collect();
    let mut cols: Vec<Vec<usize>> = vec![Vec::new(); ncols];
    for v in 0..n {
        cols[col_of[v]].push(v);
    }
    let mut segs: Vec<(usize, usize)> = Vec::new();
    // Each edge's chain of vertices, in the drawn direction (from -> to).
    let mut chains: Vec<Vec<usize>> = Vec::new();
    for k in 0..edges.len() {
        let (a, b) = dir(k);
        let (ca, cb) = (col_of[a], col_of[b]);
        let mut chain = vec![a];
        if a == b {
            // A self-loop: out to a label in the next column and back.
            let l = verts.len();
            verts.push(Vertex::Label(k));
            col_of.push(ca + 1);
            cols[ca + 1].push(l);
            chains.push(vec![a, l, a]);
            continue;
        }
        let label_col = ca + 2 * ((cb - ca) / 4) + 1;
        for c in ca + 1..cb {
            let v = verts.len();
            verts.push(if c == label_col {
                Vertex::Label(k)
            } else {
                Vertex::Bend
            });
            col_of.push(c);
            cols[c].push(v);
            chain.push(v);
        }
        chain.push(b);
        for w in chain.windows(2) {
            segs.push((w[0], w[1]));
        }
        if reversed[k] {
            chain.reverse();
        }
        chains.push(chain);
    }
    let mut lay = Layered {
        cols,
        col_of: col_of.clone(),
        segs,
    };
    // 4. Crossing reduction.
    lay.reduce_crossings();

    // Sizes.
    let wrapped: Vec<Vec<String>> = names.iter().map(|s| wrap(s, WRAP)).collect();
    let size = |v: usize| -> (f64, f64) {
        match &verts[v] {
            Vertex::Service(i) => {
                let lines = &wrapped[*i];
                let longest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
                (
                    NODE_W.max(longest as f64 * CHAR_W + 16.0),
                    lines.len() as f64 * LINE_H + 12.0,
                )
            }
            Vertex::Label(k) => {
                let l = &edges[*k].label;
                let longest = l.iter().map(|x| x.chars().count()).max().unwrap_or(0);
                (
                    longest as f64 * LABEL_CHAR_W + 10.0,
                    l.len() as f64 * 13.0 + 4.0,
                )
            }
            Vertex::Bend => (0.0, 0.0),
        }
    };
    let mut col_w = vec![0.0f64; ncols];
    for (v, &c) in col_of.iter().enumerate() {
        col_w[c] = col_w[c].max(size(v).0);
    }
    let mut col_x = vec![LEFT; ncols];
    for c in 1..ncols {
        col_x[c] = col_x[c - 1] + col_w[c - 1] + COL_GAP;
    }
    let width = col_x[ncols - 1] + col_w[ncols - 1] + LEFT;

    // 5. Vertical positions: start stacked, then follow the neighbours.
    let nv = verts.len();
    let mut y = vec![0.0f64; nv]; // centre
    let mut nbrs: Vec<Vec<usize>> = vec![Vec::new(); nv];
    for &(a, b) in &lay.segs {
        nbrs[a].push(b);
        nbrs[b].push(a);
    }
    let sep_of = |col: &[usize]| -> Vec<f64> {
        col.windows(2)
            .map(|w| {
                let gap = match (&verts[w[0]], &verts[w[1]]) {
                    (Vertex::Bend, Vertex::Bend) => 6.0,
                    _ => GAP_Y,
                };
                size(w[0]).1 / 2.0 + size(w[1]).1 / 2.0 + gap
            })
            .collect()
    };
    for col in &lay.cols {
        let sep = sep_of(col);
        let mut at = 0.0;
        for (i, &v) in col.iter().enumerate() {
            y[v] = at;
            if i < sep.len() {
                at += sep[i];
            }
        }
    }
    for iter in 0..16 {
        let order: Vec<usize> = if iter % 2 == 0 {
            (0..ncols).collect()
        } else {
            (0..ncols).rev().collect()
        };
        for c in order {
            let col = &lay.cols[c];
            if col.is_empty() {
                continue;
            }
            let want: Vec<f64> = col
                .iter()
                .map(|&v| {
                    if nbrs[v].is_empty() {
                        y[v]
                    } else {
                        nbrs[v].iter().map(|&u| y[u]).sum::<f64>() / nbrs[v].len() as f64
                    }
                })
                .collect();
            let placed = place(&want, &sep_of(col));
            for (i, &v) in col.iter().enumerate() {
                y[v] = placed[i];
            }
        }
    }
    let min_top = (0..nv)
        .map(|v| y[v] - size(v).1 / 2.0)
        .fold(f64::INFINITY, f64::min);
    let shift = TOP - if min_top.is_finite() { min_top } else { 0.0 };
    for v in y.iter_mut() {
        *v += shift;
    }
    let height = (0..nv).map(|v| y[v] + size(v).1 / 2.0).fold(TOP, f64::max) + 24.0;
    let x_left = |v: usize| col_x[col_of[v]] + (col_w[col_of[v]] - size(v).0) / 2.0;

    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="diagram" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="12">
<defs>
<marker id="a-ok" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#2e7d32"/></marker>
<marker id="a-no" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#9e9e9e"/></marker>
<marker id="a-bad" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#c62828"/></marker>
</defs>
<g class="legend" font-size="12">
<line x1="20" y1="22" x2="60" y2="22" stroke="#2e7d32" stroke-width="2"/><text x="68" y="26">documented, observed</text>
<line x1="230" y1="22" x2="270" y2="22" stroke="#9e9e9e" stroke-width="1.5" stroke-dasharray="5,4"/><text x="278" y="26">documented, never observed</text>
<line x1="480" y1="22" x2="520" y2="22" stroke="#c62828" stroke-width="2.5"/><text x="528" y="26">violation</text>
<text x="620" y="26" fill="#555">labels: documented connection numbers; hover an edge for its rows and counts</text>
</g>
"##
    );
    // Edges first (under boxes and labels); violations last so they stay visible.
    let mut order: Vec<usize> = (0..edges.len()).collect();
    order.sort_by_key(|&k| match edges[k].kind {
        Kind::NotObserved => 0,
        Kind::Observed => 1,
        Kind::Violation => 2,
    });
    let mut labels = String::new();
    for k in order {
        let e = &edges[k];
        let chain = &chains[k];
        let (stroke, width, dash, marker, class, color) = match e.kind {
            Kind::Observed => ("#2e7d32", 1.6, "", "a-ok", "edge observed", "#1b5e20"),
            Kind::NotObserved => (
                "#9e9e9e",
                1.2,
                r#" stroke-dasharray="5,4""#,
                "a-no",
                "edge not-observed",
                "#757575",
            ),
            Kind::Violation => ("#c62828", 2.4, "", "a-bad", "edge violation", "#c62828"),
        };
        // Points: leave a service at its side facing the next vertex.
        let mut pts: Vec<(f64, f64)> = Vec::new();
        for (i, &v) in chain.iter().enumerate() {
            let (w, _) = size(v);
            let xl = x_left(v);
            let p = if i == 0 {
                let next = chain[1];
                if col_of[next] > col_of[v] || (col_of[next] == col_of[v] + 1) {
                    (xl + w, y[v])
                } else {
                    (xl, y[v])
                }
            } else if i == chain.len() - 1 {
                let prev = chain[i - 1];
                if col_of[prev] < col_of[v] {
                    (xl, y[v])
                } else {
                    (xl + w, y[v])
                }
            } else {
                (xl + w / 2.0, y[v])
            };
            pts.push(p);
        }
        let mut d = format!("M{:.1},{:.1}", pts[0].0, pts[0].1);
        for w in pts.windows(2) {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            let dx = (x1 - x0) / 2.0;
            let dx = if dx.abs() < 20.0 {
                20.0_f64.copysign(dx)
            } else {
                dx
            };
            let _ = write!(
                d,
                " C{:.1},{y0:.1} {:.1},{y1:.1} {x1:.1},{y1:.1}",
                x0 + dx,
                x1 - dx
            );
        }
        let title = esc(&e.title);
        let _ = writeln!(
            s,
            r#"<path class="{class}" d="{d}" fill="none" stroke="{stroke}" stroke-width="{width}"{dash} marker-end="url(#{marker})"><title>{title}</title></path>"#
        );
        if let Some(&lv) = chain
            .iter()
            .find(|&&v| matches!(verts[v], Vertex::Label(kk) if kk == k))
        {
            let (w, h) = size(lv);
            let (lx, ly) = (x_left(lv), y[lv] - h / 2.0);
            let mut text = String::new();
            for (j, line) in e.label.iter().enumerate() {
                let _ = write!(
                    text,
                    r#"<tspan x="{:.1}" y="{:.1}">{}</tspan>"#,
                    lx + w / 2.0,
                    ly + 13.0 * (j as f64 + 1.0),
                    esc(line)
                );
            }
            let _ = writeln!(
                labels,
                r#"<g class="label"><title>{title}</title><rect x="{lx:.1}" y="{ly:.1}" width="{w:.1}" height="{h:.1}" rx="3" fill="white" stroke="{color}" stroke-width="0.6"/><text text-anchor="middle" fill="{color}" font-size="11">{text}</text></g>"#
            );
        }
    }
    for i in 0..n {
        let (w, h) = size(i);
        let (x, top) = (x_left(i), y[i] - h / 2.0);
        let violated = edges
            .iter()
            .any(|e| e.kind == Kind::Violation && (e.from == i || e.to == i));
        let (fill, stroke) = if violated {
            ("#ffebee", "#c62828")
        } else {
            ("#e3f2fd", "#1565c0")
        };
        let mut text = String::new();
        let lines = &wrapped[i];
        for (j, l) in lines.iter().enumerate() {
            let _ = write!(
                text,
                r#"<tspan x="{:.1}" y="{:.1}">{}</tspan>"#,
                x + w / 2.0,
                top + 6.0 + LINE_H * (j as f64 + 0.8),
                esc(l)
            );
        }
        let _ = writeln!(
            s,
            r#"<g class="node"><title>{}</title><rect x="{x:.1}" y="{top:.1}" width="{w:.1}" height="{h:.1}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.2"/><text text-anchor="middle">{text}</text></g>"#,
            esc(&names[i])
        );
    }
    s.push_str(&labels);
    s.push_str("</svg>\n");
    s
}

/// What the diagram test measures: edge crossings and label overlaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quality {
    pub edges: usize,
    pub crossings: usize,
    /// Label boxes overlapping another label or a service box.
    pub label_overlaps: usize,
    /// Service names shown cut ("…").
    pub cut_names: usize,
}

fn attr(tag: &str, name: &str) -> Option<f64> {
    let k = format!(" {name}=\"");
    let i = tag.find(&k)? + k.len();
    tag[i..].split('"').next()?.parse().ok()
}

/// Measures an SVG diagram as drawn (this module's or any with the same classes): edge
/// paths are flattened and intersected pairwise (meetings at a shared service do not
/// count); label and service rectangles are tested for overlap.
pub fn measure(svg: &str) -> Quality {
    // Paths.
    let mut paths: Vec<Vec<(f64, f64)>> = Vec::new();
    for part in svg.split("<path class=\"edge").skip(1) {
        let Some(d) = part.split(" d=\"").nth(1).and_then(|x| x.split('"').next()) else {
            continue;
        };
        paths.push(flatten(d));
    }
    let rect_of = |chunk: &str| -> Option<(f64, f64, f64, f64)> {
        let r = chunk.split("<rect").nth(1)?;
        let tag = r.split('>').next()?;
        Some((
            attr(tag, "x")?,
            attr(tag, "y")?,
            attr(tag, "width")?,
            attr(tag, "height")?,
        ))
    };
    let nodes: Vec<(f64, f64, f64, f64)> = svg
        .split("<g class=\"node\">")
        .skip(1)
        .filter_map(rect_of)
        .collect();
    let labels: Vec<(f64, f64, f64, f64)> = svg
        .split("<g class=\"label\">")
        .skip(1)
        .filter_map(rect_of)
        .collect();
    let cut_names = svg
        .split("<g class=\"node\">")
        .skip(1)
        .filter(|g| {
            g.split("</g>")
                .next()
                .is_some_and(|g| g.split("</title>").nth(1).is_some_and(|t| t.contains('…')))
        })
        .count();
    let overlap = |a: &(f64, f64, f64, f64), b: &(f64, f64, f64, f64)| {
        a.0 < b.0 + b.2 - 0.5
            && b.0 < a.0 + a.2 - 0.5
            && a.1 < b.1 + b.3 - 0.5
            && b.1 < a.1 + a.3 - 0.5
    };
    let mut label_overlaps = 0;
    for (i, l) in labels.iter().enumerate() {
        label_overlaps += labels[i + 1..].iter().filter(|m| overlap(l, m)).count();
        label_overlaps += nodes.iter().filter(|m| overlap(l, m)).count();
    }
    // Crossings: segment intersections between different paths, away from their ends
    // (paths meeting at a shared service or port are not crossing).
    let ends: Vec<[(f64, f64); 2]> = paths
        .iter()
        .map(|p| [p[0], *p.last().unwrap_or(&p[0])])
        .collect();
    let near = |p: (f64, f64), q: (f64, f64)| (p.0 - q.0).abs() < 8.0 && (p.1 - q.1).abs() < 8.0;
    let mut crossings = 0;
    for i in 0..paths.len() {
        for j in i + 1..paths.len() {
            let mut hits: Vec<(f64, f64)> = Vec::new();
            for a in paths[i].windows(2) {
                for b in paths[j].windows(2) {
                    if let Some(p) = intersect(a[0], a[1], b[0], b[1])
                        && !ends[i].iter().chain(ends[j].iter()).any(|&e| near(p, e))
                        && !hits.iter().any(|&h| near(h, p))
                    {
                        hits.push(p);
                    }
                }
            }
            crossings += hits.len();
        }
    }
    Quality {
        edges: paths.len(),
        crossings,
        label_overlaps,
        cut_names,
    }
}

fn flatten(d: &str) -> Vec<(f64, f64)> {
    let nums: Vec<f64> = d
        .replace(['M', 'C', 'L', ','], " ")
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let mut pts = Vec::new();
    if nums.len() < 2 {
        return pts;
    }
    let mut cur = (nums[0], nums[1]);
    pts.push(cur);
    let mut i = 2;
    let curves = d.contains('C');
    while i + (if curves { 6 } else { 2 }) <= nums.len() {
        if curves {
            let (c1, c2, p) = (
                (nums[i], nums[i + 1]),
                (nums[i + 2], nums[i + 3]),
                (nums[i + 4], nums[i + 5]),
            );
            for s in 1..=24 {
                let t = s as f64 / 24.0;
                let u = 1.0 - t;
                pts.push((
                    u * u * u * cur.0
                        + 3.0 * u * u * t * c1.0
                        + 3.0 * u * t * t * c2.0
                        + t * t * t * p.0,
                    u * u * u * cur.1
                        + 3.0 * u * u * t * c1.1
                        + 3.0 * u * t * t * c2.1
                        + t * t * t * p.1,
                ));
            }
            cur = p;
            i += 6;
        } else {
            cur = (nums[i], nums[i + 1]);
            pts.push(cur);
            i += 2;
        }
    }
    pts
}

fn intersect(p1: (f64, f64), p2: (f64, f64), p3: (f64, f64), p4: (f64, f64)) -> Option<(f64, f64)> {
    let d = (p2.0 - p1.0) * (p4.1 - p3.1) - (p2.1 - p1.1) * (p4.0 - p3.0);
    if d.abs() < 1e-9 {
        return None;
    }
    let t = ((p3.0 - p1.0) * (p4.1 - p3.1) - (p3.1 - p1.1) * (p4.0 - p3.0)) / d;
    let u = ((p3.0 - p1.0) * (p2.1 - p1.1) - (p3.1 - p1.1) * (p2.0 - p1.0)) / d;
    if (0.0..1.0).contains(&t) && (0.0..1.0).contains(&u) {
        Some((p1.0 + t * (p2.0 - p1.0), p1.1 + t * (p2.1 - p1.1)))
    } else {
        None
    }
}
