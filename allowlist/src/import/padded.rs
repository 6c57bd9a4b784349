//! Columns padded with runs of spaces, as `pdftotext -layout` prints a PDF's table: the
//! header's cells fix where each column starts, and a line's pieces (separated by two or
//! more spaces) are placed by where they start. A wrapped cell continues on the next line
//! at its column, so, as for PDF text, continuation lines are joined. A line whose pieces
//! do not sit in the columns (prose, a centred page number) is not a row.

use super::{
    Col, Format, Header,
    account::{artifact, print_furniture},
    table::{Item, Line, Table, append, cells_by_column, starts_row},
};

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
    regroup_centred(&header, &mut items);
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The line that starts a row: its number, or every key cell.
    Anchor,
    /// Part of a cell that wrapped.
    Fragment,
    /// The header repeated at a page break.
    Header,
    Other,
}

/// Browsers centre table cells vertically unless told otherwise, and so PDFs printed from
/// web pages usually put the first lines of a tall cell *above* the row's numbered line
/// and as many below it (pdftotext keeps the symmetry: a cell of k lines has k/2 above,
/// rounded down for odd k, and as many below). Joining every fragment to the row above
/// would give one row's words to another, so when the table is laid out that way (a
/// fragment before the first row, or a numbered line whose key cell is empty while the
/// lines above it have that column) each cell takes its lines from both sides: below its
/// row, as many lines as it had above; the rest of the gap belongs to the next row.
/// Returns whether the table was regrouped.
fn regroup_centred(header: &Header, items: &mut [Line]) -> bool {
    let kinds: Vec<Kind> = items
        .iter()
        .map(|l| match &l.item {
            Item::Cells(c) => {
                let filled: Vec<&String> = c.iter().filter(|x| !x.trim().is_empty()).collect();
                if Header::of(c, 0).is_some() {
                    Kind::Header
                } else if filled.is_empty()
                    || (filled.len() == 1 && artifact(filled[0]).is_some())
                    || print_furniture(
                        &filled
                            .iter()
                            .map(|f| f.trim())
                            .collect::<Vec<_>>()
                            .join("  "),
                    )
                {
                    Kind::Other
                } else if starts_row(header, &cells_by_column(header, c)) {
                    Kind::Anchor
                } else {
                    Kind::Fragment
                }
            }
            _ => Kind::Other,
        })
        .collect();
    let anchors: Vec<usize> = (0..items.len())
        .filter(|i| kinds[*i] == Kind::Anchor)
        .collect();
    let Some(&first) = anchors.first() else {
        return false;
    };
    let width = header.columns.len();
    let cell = |i: usize, c: usize| -> &str {
        match &items[i].item {
            Item::Cells(cells) => cells.get(c).map_or("", |s| s.trim()),
            _ => "",
        }
    };
    let key_columns: Vec<usize> = header
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            matches!(
                c,
                Some(Col::Source | Col::Destination | Col::Protocol | Col::Port)
            )
        })
        .map(|(i, _)| i)
        .collect();
    let fragments = |from: usize, to: usize| (from..to).filter(|i| kinds[*i] == Kind::Fragment);
    let fragment_first = fragments(0, first).next().is_some();
    let empty_key_filled_above = anchors.iter().enumerate().any(|(r, &a)| {
        let from = if r == 0 { 0 } else { anchors[r - 1] + 1 };
        key_columns
            .iter()
            .any(|&c| cell(a, c).is_empty() && fragments(from, a).any(|f| !cell(f, c).is_empty()))
    });
    if !(fragment_first || empty_key_filled_above) {
        return false;
    }
    let mut above: Vec<Vec<Vec<String>>> = vec![vec![Vec::new(); width]; anchors.len()];
    let mut below = above.clone();
    for gap in 0..=anchors.len() {
        let from = if gap == 0 { 0 } else { anchors[gap - 1] + 1 };
        let to = anchors.get(gap).copied().unwrap_or(items.len());
        for c in 0..width {
            let content: Vec<String> = fragments(from, to)
                .map(|f| cell(f, c).to_string())
                .filter(|t| !t.is_empty())
                .collect();
            if gap == 0 {
                above[0][c] = content;
            } else if gap == anchors.len() {
                below[gap - 1][c] = content;
            } else if let Some(h) = (from..to).find(|i| kinds[*i] == Kind::Header) {
                // A page break. The row before it ends on this page, unless it was split:
                // then its cells still running at the page's foot go on at the top of the
                // next page, before the next row's upper lines. Those are as many as the
                // next row's lower lines, so what the next page has beyond that in a
                // running column is the split row's.
                let foot = (from - 1..h)
                    .rev()
                    .find(|i| matches!(kinds[*i], Kind::Anchor | Kind::Fragment))
                    .unwrap_or(from - 1);
                let mut mine: Vec<String> = fragments(from, h)
                    .map(|f| cell(f, c).to_string())
                    .filter(|t| !t.is_empty())
                    .collect();
                let after: Vec<String> = fragments(h + 1, to)
                    .map(|f| cell(f, c).to_string())
                    .filter(|t| !t.is_empty())
                    .collect();
                let next_below = (to + 1..items.len())
                    .take_while(|i| kinds[*i] == Kind::Fragment && !cell(*i, c).is_empty())
                    .count();
                let split = if cell(foot, c).is_empty() {
                    0
                } else {
                    after.len().saturating_sub(next_below)
                };
                mine.extend(after[..split].iter().cloned());
                below[gap - 1][c] = mine;
                above[gap][c] = after[split..].to_vec();
            } else {
                let take = above[gap - 1][c].len().min(content.len());
                below[gap - 1][c] = content[..take].to_vec();
                above[gap][c] = content[take..].to_vec();
            }
        }
    }
    let joined: Vec<Vec<String>> = anchors
        .iter()
        .enumerate()
        .map(|(r, &a)| {
            let own = match &items[a].item {
                Item::Cells(cells) => cells.len(),
                _ => 0,
            };
            (0..width.max(own))
                .map(|c| {
                    let middle = cell(a, c).to_string();
                    let mut text = String::new();
                    let parts = above[r]
                        .get(c)
                        .into_iter()
                        .flatten()
                        .chain([&middle])
                        .chain(below[r].get(c).into_iter().flatten());
                    for part in parts {
                        append(&mut text, part);
                    }
                    text
                })
                .collect()
        })
        .collect();
    for (&a, cells) in anchors.iter().zip(joined) {
        items[a].item = Item::Cells(cells);
    }
    for (i, kind) in kinds.iter().enumerate() {
        if *kind == Kind::Fragment {
            items[i].item = Item::Joined;
        }
    }
    true
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

    fn cells_of(items: &[Line]) -> Vec<Vec<String>> {
        items
            .iter()
            .filter_map(|l| match &l.item {
                Item::Cells(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn cells_centred_vertically_take_lines_from_both_sides() {
        let text = "No   Source          Destination   Protocol   Port\n\
                    \x20    Billing Data\n\
                    1                    Tenant        TCP        8888\n\
                    \x20    Service\n\
                    \x20    Genesys Web                              8888,\n\
                    2    Services and    Redis         TCP\n\
                    \x20    Applications                             2060\n\
                    3    ORS             Redis         TCP        6379\n";
        let lines: Vec<&str> = text.split('\n').collect();
        let header = Header::of(&split(lines[0]), 1).unwrap();
        let t = read(header, lines[0], &lines[1..], 2);
        let rows = cells_of(&t.items);
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[0][1], "Billing Data Service");
        assert_eq!(rows[1][1], "Genesys Web Services and Applications");
        assert_eq!(rows[1][4], "8888, 2060");
        assert_eq!(rows[2][1], "ORS");
    }

    #[test]
    fn top_aligned_cells_are_not_regrouped() {
        let text = "No   Source          Destination   Protocol   Port\n\
                    1    Billing Data    Tenant        TCP        8888\n\
                    \x20    Service\n\
                    2    ORS             Redis         TCP        6379\n";
        let lines: Vec<&str> = text.split('\n').collect();
        let header = Header::of(&split(lines[0]), 1).unwrap();
        let t = read(header, lines[0], &lines[1..], 2);
        assert!(
            t.items
                .iter()
                .any(|l| matches!(&l.item, Item::Cells(c) if c[1] == "Service"))
        );
    }
}
