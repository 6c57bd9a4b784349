//! The diagram drawn as SVG from its layout: the legend, the edges as curves (violations
//! last, so they stay visible), the service boxes, then the edges' labels on top.

use std::fmt::Write;

use super::{
    edges::{Edge, Kind},
    layout::{LINE_H, Layout, Vertex},
    text::esc,
};

/// The legend's width: the drawing is at least this wide.
const LEGEND_W: f64 = 1090.0;

/// The SVG document: `names` are the services (vertices `0..n`), `wrapped` their lines.
pub(super) fn draw(
    edges: &[Edge],
    names: &[String],
    wrapped: &[Vec<String>],
    lay: &Layout,
) -> String {
    // Never narrower than the legend.
    let (width, height) = lay.extent();
    let width = width.max(LEGEND_W);
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
        draw_edge(&mut s, &mut labels, k, &edges[k], lay);
    }
    for i in 0..names.len() {
        draw_service(&mut s, i, edges, &names[i], &wrapped[i], lay);
    }
    s.push_str(&labels);
    s.push_str("</svg>\n");
    s
}

/// Edge `k` as a curve into `s`, and its label into `labels`.
fn draw_edge(s: &mut String, labels: &mut String, k: usize, e: &Edge, lay: &Layout) {
    let chain = &lay.chains[k];
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
    let d = path(&points(chain, lay), lay);
    let title = esc(&e.title);
    let _ = writeln!(
        s,
        r#"<path class="{class}" d="{d}" fill="none" stroke="{stroke}" stroke-width="{width}"{dash} marker-end="url(#{marker})"><title>{title}</title></path>"#
    );
    if let Some(&lv) = chain
        .iter()
        .find(|&&v| matches!(lay.verts[v], Vertex::Label(kk) if kk == k))
    {
        let (lx, ly, w, h) = lay.rect(lv);
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

/// The points an edge passes: it leaves a service at its side facing the next vertex,
/// and crosses labels and bends at their middle.
fn points(chain: &[usize], lay: &Layout) -> Vec<(f64, f64)> {
    let col_of = &lay.col_of;
    let mut pts: Vec<(f64, f64)> = Vec::new();
    for (i, &v) in chain.iter().enumerate() {
        let (w, _) = lay.size(v);
        let xl = lay.x_left(v);
        let y = lay.y[v];
        let p = if i == 0 {
            let next = chain[1];
            if col_of[next] > col_of[v] || (col_of[next] == col_of[v] + 1) {
                (xl + w, y)
            } else {
                (xl, y)
            }
        } else if i == chain.len() - 1 {
            let prev = chain[i - 1];
            if col_of[prev] < col_of[v] {
                (xl, y)
            } else {
                (xl + w, y)
            }
        } else {
            (xl + w / 2.0, y)
        };
        pts.push(p);
    }
    pts
}

/// A smooth path through the points (in the layout's frame): a cubic curve between each
/// two, level at both ends (upright in a transposed layout), in the drawing's frame.
fn path(pts: &[(f64, f64)], lay: &Layout) -> String {
    let p = |x: f64, y: f64| {
        let (a, b) = lay.pt((x, y));
        format!("{a:.1},{b:.1}")
    };
    let mut d = format!("M{}", p(pts[0].0, pts[0].1));
    for w in pts.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        let dx = (x1 - x0) / 2.0;
        let dx = if dx.abs() < 20.0 {
            20.0_f64.copysign(dx)
        } else {
            dx
        };
        let _ = write!(d, " C{} {} {}", p(x0 + dx, y0), p(x1 - dx, y1), p(x1, y1));
    }
    d
}

/// Service `i`'s box (red when a violation touches it) with its wrapped name.
fn draw_service(
    s: &mut String,
    i: usize,
    edges: &[Edge],
    name: &str,
    lines: &[String],
    lay: &Layout,
) {
    let (x, top, w, h) = lay.rect(i);
    let violated = edges
        .iter()
        .any(|e| e.kind == Kind::Violation && (e.from == i || e.to == i));
    let (fill, stroke) = if violated {
        ("#ffebee", "#c62828")
    } else {
        ("#e3f2fd", "#1565c0")
    };
    let mut text = String::new();
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
        esc(name)
    );
}
