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
//! A layout wider than the page is made again with the layers as rows, top to bottom
//! (the same steps, mirrored across the diagonal), and the narrower one is drawn: on
//! the demo, 1,227 px instead of 2,294, so every violation is in view.
//!
//! Names are wrapped on word boundaries, never cut.
//!
//! The files: `edges` (the graph read from a report), `layout` (the steps above),
//! `svg` (the drawing), `text` (escaping and word wrap).

mod edges;
mod layout;
mod svg;
mod text;

pub use text::{esc, wrap};

use super::Report;

/// The widest drawing the HTML page shows at its own size (its 1,320 px less margins).
const MAX_WIDTH: f64 = 1272.0;

/// Service names wrap at this many characters.
const WRAP: usize = 21;

/// The diagram of a report's services and edges, as an SVG document.
pub fn render(r: &Report) -> String {
    let mut names: Vec<String> = Vec::new();
    let edges = edges::edges_of(r, &mut names);
    let wrapped: Vec<Vec<String>> = names.iter().map(|s| wrap(s, WRAP)).collect();
    let across = layout::layout(&edges, &wrapped, false);
    // Too wide for the page: columns down the page instead, when that is narrower. The
    // page scales what is still too wide (html.rs), so every edge stays in view.
    let lay = if across.extent().0 > MAX_WIDTH {
        let down = layout::layout(&edges, &wrapped, true);
        if down.extent().0 < across.extent().0 {
            down
        } else {
            across
        }
    } else {
        across
    };
    svg::draw(&edges, &names, &wrapped, &lay)
}
