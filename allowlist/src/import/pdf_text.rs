//! Tab-separated tables: TSV, and text extracted from a PDF. PDF extraction repeats the
//! header at every page break and splits a row across pages, leaving continuation lines
//! whose key cells are empty; browser copies wrap long cells onto lines without tabs.
//! This reader (with the space-padded one) is the only one whose lines may continue a row.

use super::{
    Format, Header,
    table::{Item, Line, Table},
};

pub(crate) fn split(line: &str) -> Vec<String> {
    line.split('\t').map(str::to_string).collect()
}

pub(crate) fn read(header: Header, rest: &[&str], first: u32) -> Table {
    let items = rest
        .iter()
        .enumerate()
        .map(|(k, l)| Line {
            line: first + k as u32,
            item: if l.trim().is_empty() {
                Item::Blank
            } else if l.contains('\t') {
                Item::Cells(split(l))
            } else {
                Item::Loose(l.to_string())
            },
        })
        .collect();
    let expected = format!(
        "a row of {} tab-separated cells ({})",
        header.columns.len(),
        header.describe(", ")
    );
    Table {
        format: Format::Tabbed,
        header,
        items,
        joins_continuations: true,
        expected,
        title: None,
    }
}
