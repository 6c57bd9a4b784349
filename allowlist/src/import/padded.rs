//! Columns padded with runs of spaces, as `pdftotext -layout` prints a PDF's table: the
//! header's cells fix where each column starts, and a line's pieces (separated by two or
//! more spaces) are placed by where they start. A wrapped cell continues on the next line
//! at its column, so, as for PDF text, continuation lines are joined. A line whose pieces
//! do not sit in the columns (prose, a centred page number) is not a row.

use super::{Format, Header, Item, Line, Table};

/// How far (in characters) a piece may start from its column's start.
const SLACK: usize = 3;

/// Pieces of a line separated by two or more spaces, with the column each starts at.
fn pieces(line: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        while end < chars.len() {
            if chars[end] == ' ' && chars.get(end + 1).is_none_or(|c| *c == ' ') {
                break;
            }
            end += 1;
        }
        out.push((start, chars[start..end].iter().collect()));
        i = end;
    }
    out
}

pub(crate) fn split(line: &str) -> Vec<String> {
    pieces(line).into_iter().map(|(_, p)| p).collect()
}

/// The line's cells, placed by column; None when a piece sits outside the columns.
fn place(starts: &[usize], line: &str) -> Option<Vec<String>> {
    let mut cells = vec![String::new(); starts.len()];
    for (at, text) in pieces(line) {
        let col = starts.iter().rposition(|s| *s <= at + SLACK)?;
        let next = starts.get(col + 1).copied().unwrap_or(usize::MAX);
        let end = at + text.chars().count();
        if at > starts[col] + SLACK && col + 1 < starts.len() || end > next {
            return None;
        }
        let cell = &mut cells[col];
        if !cell.is_empty() {
            cell.push(' ');
        }
        cell.push_str(&text);
    }
    Some(cells)
}

pub(crate) fn read(header: Header, header_text: &str, rest: &[&str], first: u32) -> Table {
    let starts_of =
        |text: &str| -> Vec<usize> { pieces(text).into_iter().map(|(at, _)| at).collect() };
    let mut starts = starts_of(header_text);
    let first_starts = starts.clone();
    let mut items = Vec::with_capacity(rest.len());
    for (k, l) in rest.iter().enumerate() {
        let line = first + k as u32;
        let item = if l.trim().is_empty() {
            Item::Blank
        } else if Header::of(&split(l), line).is_some() {
            // Each page lays the table out anew: a repeated header moves the columns.
            starts = starts_of(l);
            Item::Cells(split(l))
        } else {
            match place(&starts, l) {
                Some(cells) => Item::Cells(cells),
                None => Item::Loose(l.to_string()),
            }
        };
        items.push(Line { line, item });
    }
    let starts = first_starts;
    let expected = format!(
        "a row whose cells start under the header's columns ({}, at characters {})",
        header.describe(", "),
        starts
            .iter()
            .map(|s| (s + 1).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Table {
        format: Format::Padded,
        header,
        items,
        joins_continuations: true,
        expected,
        title: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_placed_by_column() {
        let header = "No  Source        Destination  Port";
        let starts: Vec<usize> = pieces(header).into_iter().map(|(a, _)| a).collect();
        assert_eq!(starts, vec![0, 4, 18, 31]);
        assert_eq!(
            place(&starts, "1   Tenant Service              8080").unwrap(),
            vec!["1", "Tenant Service", "", "8080"]
        );
        assert_eq!(
            place(&starts, "    Service").unwrap(),
            vec!["", "Service", "", ""]
        );
        // Prose runs across the columns: not a row.
        assert!(place(&starts, "This paragraph runs on across every column").is_none());
        // A piece between columns: not a row.
        assert!(place(&starts, "          12").is_none());
    }
}
