//! What a format's reader yields: the header and every item after it (a line, or an HTML
//! or MediaWiki row), and the cell helpers the readers share.

use std::collections::BTreeMap;

use super::{Col, Format, Header};
use crate::names;

// ---- records: what readers yield ----

/// One line (or HTML/wiki row) of the table region, as its reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Blank,
    /// Table structure with no content (a Markdown separator row, a wiki `|-`).
    Structure,
    /// A row's cells, in header order.
    Cells(Vec<String>),
    /// A line that is not a row of this format (no separators).
    Loose(String),
    /// A continuation line its reader already joined to its row (centred PDF cells).
    Joined,
    /// A line its reader could not read, and why (a single-spaced row's cells or names).
    Refused(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub line: u32,
    pub item: Item,
}

/// What a reader found: the header, and every item after it.
pub(crate) struct Table {
    pub format: Format,
    pub header: Header,
    pub items: Vec<Line>,
    /// Only the PDF-text readers (tabbed, padded) join continuation lines.
    pub joins_continuations: bool,
    /// "a row of 7 tab-separated cells (Connection, Source, …)".
    pub expected: String,
    pub title: Option<String>,
}

pub(crate) fn cells_by_column(header: &Header, cells: &[String]) -> BTreeMap<Col, String> {
    let mut values = BTreeMap::new();
    for (idx, col) in header.columns.iter().enumerate() {
        if let Some(col) = col {
            values.insert(
                *col,
                names::clean(cells.get(idx).map_or("", String::as_str)),
            );
        }
    }
    values
}

/// In PDF text, whether a line starts a row or continues the one before: in a numbered
/// table a row has its number (or every key cell); otherwise it has its source.
pub(crate) fn starts_row(header: &Header, values: &BTreeMap<Col, String>) -> bool {
    let get = |c: Col| values.get(&c).map_or("", String::as_str);
    if header.has(Col::Number) {
        !get(Col::Number).is_empty()
            || ([Col::Source, Col::Destination, Col::Port]
                .iter()
                .all(|c| !get(*c).is_empty())
                && !(get(Col::Protocol).is_empty() && get(Col::Transport).is_empty()))
    } else {
        !get(Col::Source).is_empty()
    }
}

/// Joins a cell's continuation: PDF extraction breaks cells at page ends. When it does so
/// inside parentheses it closes them early ("…in customer)" then "CME)"): a continuation
/// with an unmatched `)` means the previous part's final `)` was the extractor's.
pub(crate) fn append(cell: &mut String, more: &str) {
    if more.is_empty() {
        return;
    }
    let unmatched_close = more.matches(')').count() > more.matches('(').count();
    if unmatched_close && cell.ends_with(')') {
        cell.pop();
    }
    // A word broken at "/" or a hyphen ("Intra-" + "cluster") joins without a space.
    let broken_word = cell.ends_with('/') || (cell.ends_with('-') && !cell.ends_with(" -"));
    if !cell.is_empty() && !broken_word {
        cell.push(' ');
    }
    cell.push_str(more);
}
