//! HTML: a saved web page, where the connections table sits among navigation, prose and
//! other tables. Parsed with a real HTML parser (`scraper`, html5ever underneath); the
//! table is the first whose row names the needed columns. Rows keep their source line
//! (the line of their `<tr>`).

use scraper::{ElementRef, Html, Selector};

use super::{
    Format, Header, ImportError, Problem,
    header::header_likeness,
    table::{Item, Line, Table},
};
use crate::names;

pub(crate) fn looks_like_html(text: &str) -> bool {
    let start: String = text
        .trim_start()
        .chars()
        .take(512)
        .collect::<String>()
        .to_lowercase();
    start.starts_with("<!doctype html")
        || start.starts_with("<html")
        || start.starts_with("<?xml") && start.contains("<html")
        || (start.starts_with('<') && text.to_lowercase().contains("<table"))
}

fn selector(s: &str) -> Selector {
    Selector::parse(s).expect("a valid selector")
}

/// The text of a cell: every text node, separated, so `<br>` and blocks break words.
fn text_of(e: ElementRef<'_>) -> String {
    names::clean(&e.text().collect::<Vec<_>>().join(" "))
}

/// The line of every `<tr` in the source, in document order.
fn tr_lines(text: &str) -> Vec<u32> {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut out = Vec::new();
    let mut line = 1u32;
    let mut last = 0;
    for (at, _) in lower.match_indices("<tr") {
        if bytes
            .get(at + 3)
            .is_some_and(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/')
        {
            line += lower[last..at].matches('\n').count() as u32;
            last = at;
            out.push(line);
        }
    }
    out
}

/// A cell's `colspan` or `rowspan`, within reason.
fn span(cell: ElementRef<'_>, attr: &str) -> usize {
    cell.value()
        .attr(attr)
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, 64)
}

/// Fills the columns a cell above still covers.
fn take_carried(carried: &mut [(usize, String)], cells: &mut Vec<String>) {
    while let Some((left, text)) = carried.get_mut(cells.len())
        && *left > 0
    {
        *left -= 1;
        cells.push(text.clone());
    }
}

/// The rows of `table` itself (not of tables nested in it), as cells. A cell spanning
/// rows (`rowspan`, "Redis" for three rows) is repeated in each; one spanning columns
/// leaves the columns after it empty.
fn rows<'a>(table: ElementRef<'a>, tr: &Selector) -> Vec<(ElementRef<'a>, Vec<String>)> {
    // Per column: rows still covered by a cell above, and its text.
    let mut carried: Vec<(usize, String)> = Vec::new();
    table
        .select(tr)
        .filter(|row| {
            row.ancestors()
                .filter_map(ElementRef::wrap)
                .find(|a| a.value().name() == "table")
                .is_some_and(|t| t.id() == table.id())
        })
        .map(|row| {
            let mut cells: Vec<String> = Vec::new();
            for cell in row.children().filter_map(ElementRef::wrap) {
                if !matches!(cell.value().name(), "td" | "th") {
                    continue;
                }
                take_carried(&mut carried, &mut cells);
                let text = text_of(cell);
                let down = span(cell, "rowspan");
                for k in 0..span(cell, "colspan") {
                    let at = cells.len();
                    if carried.len() <= at {
                        carried.resize(at + 1, (0, String::new()));
                    }
                    let t = if k == 0 { text.clone() } else { String::new() };
                    carried[at] = (down - 1, t.clone());
                    cells.push(t);
                }
            }
            take_carried(&mut carried, &mut cells);
            (row, cells)
        })
        .collect()
}

pub(crate) fn read(text: &str) -> Result<Table, ImportError> {
    let doc = Html::parse_document(text);
    let tr = selector("tr");
    let lines = tr_lines(text);
    let all: Vec<_> = doc.select(&tr).map(|r| r.id()).collect();
    let line_of = |row: ElementRef<'_>| -> u32 {
        if all.len() != lines.len() {
            return 0;
        }
        all.iter()
            .position(|id| *id == row.id())
            .and_then(|k| lines.get(k).copied())
            .unwrap_or(0)
    };
    let title = doc
        .select(&selector("title"))
        .chain(doc.select(&selector("h1")))
        .map(text_of)
        .find(|t| !t.is_empty());
    let mut nearest: Option<(usize, Problem)> = None;
    for table in doc.select(&selector("table")) {
        let rows = rows(table, &tr);
        let Some(at) = rows
            .iter()
            .position(|(row, cells)| Header::of(cells, line_of(*row)).is_some())
        else {
            if let Some((row, cells)) = rows.first() {
                let (found, missing) = header_likeness(cells);
                if found.len() >= 2 && nearest.as_ref().is_none_or(|(n, _)| found.len() > *n) {
                    nearest = Some((
                        found.len(),
                        Problem {
                            line: line_of(*row),
                            message: format!(
                                "(an HTML table: {}) has no {} column",
                                found
                                    .iter()
                                    .map(|c| c.name())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                missing.join(" or ")
                            ),
                        },
                    ));
                }
            }
            continue;
        };
        let header = Header::of(&rows[at].1, line_of(rows[at].0)).expect("checked above");
        let items = rows
            .into_iter()
            .skip(at + 1)
            .map(|(row, cells)| Line {
                line: line_of(row),
                item: if cells.is_empty() {
                    Item::Structure
                } else {
                    Item::Cells(cells)
                },
            })
            .collect();
        let expected = format!(
            "a table row (<tr>) with cells for {}",
            header.describe(", ")
        );
        return Ok(Table {
            format: Format::Html,
            header,
            items,
            joins_continuations: false,
            expected,
            title,
        });
    }
    Err(ImportError::NoTable {
        nearest: nearest.map(|(_, p)| p),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_spanning_rows_are_repeated() {
        let doc = Html::parse_document(
            "<table><tr><td rowspan=\"2\">A</td><td>1</td><td rowspan=\"3\">x</td></tr><tr><td>2</td></tr><tr><td>B</td><td>3</td></tr></table>",
        );
        let table = doc.select(&selector("table")).next().unwrap();
        let got: Vec<Vec<String>> = rows(table, &selector("tr"))
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(
            got,
            vec![
                vec!["A", "1", "x"],
                vec!["A", "2", "x"],
                vec!["B", "3", "x"]
            ]
        );
    }

    #[test]
    fn rows_know_their_lines() {
        assert_eq!(
            tr_lines("<table>\n<tr><td>a</td></tr>\n\n<TR class=x>"),
            vec![2, 4]
        );
        assert!(looks_like_html("  <!DOCTYPE html><p>"));
        assert!(!looks_like_html("Source\tDestination"));
    }
}
