//! The report's diagram, measured as a reader sees it: edge crossings and label overlaps
//! in the drawn SVG, for the demo report (a report of `cargo xtask demo`'s store, kept in
//! tests/data). The figures are printed (`cargo test -p auditor --test diagram --
//! --nocapture`) for the layout before this layout (tests/data/demo-diagram-before.svg,
//! the SVG the previous three-column layout drew for the same demo) and after.

use auditor::report::{self, diagram};

const DEMO: &str = include_str!("data/demo-report.json");
const BEFORE: &str = include_str!("data/demo-diagram-before.svg");

#[test]
fn the_demo_diagram_has_fewer_crossings_no_label_overlaps_and_whole_names() {
    let r: report::Report = serde_json::from_str(DEMO).expect("the demo report parses");
    let svg = diagram::render(&r);
    let before = measure(BEFORE);
    let after = measure(&svg);
    println!(
        "demo diagram before: {} edges, {} crossings, {} label overlaps, {} cut names",
        before.edges, before.crossings, before.label_overlaps, before.cut_names
    );
    println!(
        "demo diagram after:  {} edges, {} crossings, {} label overlaps, {} cut names",
        after.edges, after.crossings, after.label_overlaps, after.cut_names
    );
    // The same graph is drawn: every documented pair and every violation.
    assert_eq!(after.edges, before.edges);
    assert_eq!(
        after.label_overlaps, 0,
        "a label overlaps a service or a label"
    );
    assert_eq!(after.cut_names, 0);
    assert!(
        after.crossings < before.crossings,
        "crossings {} not fewer than before ({})",
        after.crossings,
        before.crossings
    );
    // Whole names: the longest service name is there, word for word, in its box.
    let long = "Genesys Web Services and Applications";
    let node = svg
        .split("<g class=\"node\">")
        .find(|g| g.starts_with(&format!("<title>{long}</title>")))
        .expect("the service is drawn");
    let shown: Vec<&str> = node
        .split("\">")
        .filter_map(|t| {
            t.split("</tspan>")
                .next()
                .filter(|_| t.contains("</tspan>"))
        })
        .collect();
    assert_eq!(shown.join(" "), long);
    // Every edge has a tooltip naming its rows or its verdict, with counts.
    let edges: Vec<&str> = svg.split("<path class=\"edge").skip(1).collect();
    assert!(edges.iter().all(|e| e.contains("<title>")));
    let redis = edges
        .iter()
        .find(|e| e.contains("<title>ORS → Redis"))
        .expect("the ORS → Redis edge");
    for row in ["row 45", "row 46", "row 47", "connection(s)"] {
        assert!(redis.contains(row), "{row} missing from {redis}");
    }
    assert!(
        edges
            .iter()
            .any(|e| e.contains("port_drift tcp/9200: 1 connection(s)")),
        "the drift's tooltip"
    );
}

#[test]
fn the_measure_counts_what_it_should() {
    // Two crossing edges and two overlapping labels, one of them on a service.
    let svg = r#"<svg>
<path class="edge observed" d="M0,0 L100,100"/>
<path class="edge observed" d="M0,100 L100,0"/>
<g class="node"><title>A</title><rect x="200" y="200" width="50" height="20"/><text>A</text></g>
<g class="label"><rect x="210" y="205" width="20" height="10"/></g>
<g class="label"><rect x="400" y="400" width="20" height="10"/></g>
<g class="label"><rect x="405" y="402" width="20" height="10"/></g>
</svg>"#;
    let q = measure(svg);
    assert_eq!((q.edges, q.crossings, q.label_overlaps), (2, 1, 2));
}

// The quality meter: it reads an SVG as drawn, so it lives with the test that uses it.

/// What the diagram test measures: edge crossings and label overlaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quality {
    edges: usize,
    crossings: usize,
    /// Label boxes overlapping another label or a service box.
    label_overlaps: usize,
    /// Service names shown cut ("…").
    cut_names: usize,
}

fn attr(tag: &str, name: &str) -> Option<f64> {
    let k = format!(" {name}=\"");
    let i = tag.find(&k)? + k.len();
    tag[i..].split('"').next()?.parse().ok()
}

/// Measures an SVG diagram as drawn (this module's or any with the same classes): edge
/// paths are flattened and intersected pairwise (meetings at a shared service do not
/// count); label and service rectangles are tested for overlap.
fn measure(svg: &str) -> Quality {
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
