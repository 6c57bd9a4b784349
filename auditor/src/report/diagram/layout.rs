//! The diagram's layout: a small layered (Sugiyama) layout that places the service
//! boxes, the edges' labels and bend points in columns, and gives each its position.
//! The steps are in `layout`; the module doc of `diagram` says why each is there.

// The layout indexes parallel arrays (edges, vertices, columns) by id throughout.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;

use super::edges::Edge;

const NODE_W: f64 = 150.0;
pub(super) const LINE_H: f64 = 14.0;
const CHAR_W: f64 = 6.6;
const LABEL_CHAR_W: f64 = 6.4;
const GAP_Y: f64 = 12.0;
const COL_GAP: f64 = 30.0;
const LEFT: f64 = 20.0;
const TOP: f64 = 50.0;

/// A vertex of the layered graph: a service, an edge's label, or a bend point.
#[derive(Clone)]
pub(super) enum Vertex {
    Service(usize),
    Label(usize),
    Bend,
}

/// Where everything goes. Vertices `0..n` are the services, in `names` order.
pub(super) struct Layout {
    pub verts: Vec<Vertex>,
    pub col_of: Vec<usize>,
    /// Each edge's chain of vertices, in the drawn direction (from -> to).
    pub chains: Vec<Vec<usize>>,
    /// Each vertex's (width, height).
    pub sizes: Vec<(f64, f64)>,
    /// Each vertex's vertical centre.
    pub y: Vec<f64>,
    col_x: Vec<f64>,
    col_w: Vec<f64>,
    /// The layout's own extent (columns across, positions down).
    width: f64,
    height: f64,
    /// Columns run down the page instead of across it: every position above is in the
    /// layout's own frame, and `rect`, `pt`, `extent` turn it into the drawing's.
    transposed: bool,
}

impl Layout {
    /// A vertex's (width, height) in the layout's frame.
    pub fn size(&self, v: usize) -> (f64, f64) {
        self.sizes[v]
    }

    /// A point of the layout's frame in the drawing: the same, or mirrored across the
    /// diagonal with the margins kept (room for the legend at the top).
    pub fn pt(&self, (x, y): (f64, f64)) -> (f64, f64) {
        if self.transposed {
            (y - TOP + LEFT, x - LEFT + TOP)
        } else {
            (x, y)
        }
    }

    /// A vertex's box in the drawing: (left, top, width, height).
    pub fn rect(&self, v: usize) -> (f64, f64, f64, f64) {
        let (w, h) = self.size(v);
        let (a, b) = self.pt((self.x_left(v), self.y[v] - h / 2.0));
        if self.transposed {
            (a, b, h, w)
        } else {
            (a, b, w, h)
        }
    }

    /// The drawing's (width, height).
    pub fn extent(&self) -> (f64, f64) {
        if self.transposed {
            (
                self.height - TOP + 2.0 * LEFT,
                self.width - LEFT + TOP + 4.0,
            )
        } else {
            (self.width, self.height)
        }
    }

    /// The left side of a vertex's box, centred in its column.
    pub fn x_left(&self, v: usize) -> f64 {
        let c = self.col_of[v];
        self.col_x[c] + (self.col_w[c] - self.size(v).0) / 2.0
    }
}

/// Lays out `wrapped.len()` services (their names as wrapped lines) and the edges, in
/// columns left to right, or (`transposed`) in rows top to bottom.
pub(super) fn layout(edges: &[Edge], wrapped: &[Vec<String>], transposed: bool) -> Layout {
    let n = wrapped.len();
    // 1. Break cycles.
    let reversed = break_cycles(n, edges);
    let dir = |k: usize| {
        let e = &edges[k];
        if reversed[k] {
            (e.to, e.from)
        } else {
            (e.from, e.to)
        }
    };
    // 2. Layers.
    let rank = ranks(n, edges.len(), dir);
    // 3. Columns, with labels and bends.
    let (mut lay, verts, chains) = columns(&rank, edges.len(), dir, &reversed);
    // 4. Crossing reduction.
    lay.reduce_crossings();
    // Sizes and columns' places.
    let sizes: Vec<(f64, f64)> = verts
        .iter()
        .map(|v| size(v, edges, wrapped))
        .map(|(w, h)| if transposed { (h, w) } else { (w, h) })
        .collect();
    let ncols = lay.cols.len();
    let mut col_w = vec![0.0f64; ncols];
    for (v, &c) in lay.col_of.iter().enumerate() {
        col_w[c] = col_w[c].max(sizes[v].0);
    }
    let mut col_x = vec![LEFT; ncols];
    for c in 1..ncols {
        col_x[c] = col_x[c - 1] + col_w[c - 1] + COL_GAP;
    }
    let width = col_x[ncols - 1] + col_w[ncols - 1] + LEFT;
    // 5. Vertical positions.
    let (y, height) = vertical_positions(&lay, &verts, &sizes);
    Layout {
        verts,
        col_of: lay.col_of,
        chains,
        sizes,
        y,
        col_x,
        col_w,
        width,
        height,
        transposed,
    }
}

/// Step 1: breaks cycles by a DFS from services with no incoming edge first; back edges
/// are flipped (`true` for an edge drawn reversed).
fn break_cycles(n: usize, edges: &[Edge]) -> Vec<bool> {
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
    reversed
}

/// Step 2: each service's layer by longest path (the graph is a DAG now), given each
/// edge's drawn direction.
fn ranks(n: usize, nedges: usize, dir: impl Fn(usize) -> (usize, usize)) -> Vec<usize> {
    let mut rank = vec![0usize; n];
    let mut changed = true;
    let mut guard = 0;
    while changed && guard <= n + 1 {
        changed = false;
        guard += 1;
        for k in 0..nedges {
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
        let outs: Vec<usize> = (0..nedges)
            .filter(|&k| dir(k).0 == v && dir(k).1 != v)
            .map(|k| rank[dir(k).1])
            .collect();
        let has_in = (0..nedges).any(|k| dir(k).1 == v && dir(k).0 != v);
        if !has_in && let Some(&m) = outs.iter().min() {
            rank[v] = m.saturating_sub(1).max(rank[v]);
        }
    }
    rank
}

/// Step 3: service layer r is column 2r; odd columns hold labels and bends. Every edge
/// gets a vertex in each column it spans, one of them its label.
fn columns(
    rank: &[usize],
    nedges: usize,
    dir: impl Fn(usize) -> (usize, usize),
    reversed: &[bool],
) -> (Layered, Vec<Vertex>, Vec<Vec<usize>>) {
    let n = rank.len();
    let ncols = 2 * rank.iter().copied().max().unwrap_or(0) + 2;
    let mut verts: Vec<Vertex> = (0..n).map(Vertex::Service).collect();
    let mut col_of: Vec<usize> = (0..n).map(|v| 2 * rank[v]).collect();
    let mut cols: Vec<Vec<usize>> = vec![Vec::new(); ncols];
    for v in 0..n {
        cols[col_of[v]].push(v);
    }
    let mut segs: Vec<(usize, usize)> = Vec::new();
    let mut chains: Vec<Vec<usize>> = Vec::new();
    for k in 0..nedges {
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
    (Layered { cols, col_of, segs }, verts, chains)
}

/// A vertex's box: a service's wrapped name, a label's lines, or nothing for a bend.
fn size(v: &Vertex, edges: &[Edge], wrapped: &[Vec<String>]) -> (f64, f64) {
    match v {
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
}

/// Step 5: vertical centres: start stacked, then follow the neighbours; shifted so the
/// top box starts at `TOP`. Returns them and the drawing's height.
fn vertical_positions(lay: &Layered, verts: &[Vertex], sizes: &[(f64, f64)]) -> (Vec<f64>, f64) {
    let nv = verts.len();
    let ncols = lay.cols.len();
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
                sizes[w[0]].1 / 2.0 + sizes[w[1]].1 / 2.0 + gap
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
        .map(|v| y[v] - sizes[v].1 / 2.0)
        .fold(f64::INFINITY, f64::min);
    let shift = TOP - if min_top.is_finite() { min_top } else { 0.0 };
    for v in y.iter_mut() {
        *v += shift;
    }
    let height = (0..nv).map(|v| y[v] + sizes[v].1 / 2.0).fold(TOP, f64::max) + 24.0;
    (y, height)
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
