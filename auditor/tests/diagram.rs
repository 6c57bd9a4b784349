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
    let before = diagram::measure(BEFORE);
    let after = diagram::measure(&svg);
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
    let q = diagram::measure(svg);
    assert_eq!((q.edges, q.crossings, q.label_overlaps), (2, 1, 2));
}
