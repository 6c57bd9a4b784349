//! Accounting for every non-blank line after the header: each is a row, a continuation of
//! the row before, a repeated header, a known artifact (a page number, footer or footnote),
//! a line after the table, or a problem at its line saying what was expected.

use std::collections::BTreeMap;

use super::{
    Col, Format, Header, Problem,
    table::{Item, Line, Table, append, cells_by_column, starts_row},
};
use crate::names;

/// What a browser prints at the top and foot of each page: "11/26/26, 9:56 PM  Title" and
/// "file:///…/page.html  1/7" (or an https address).
pub(crate) fn print_furniture(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    let numbers = |s: &str, seps: &[char]| -> Vec<usize> {
        let parts: Vec<&str> = s.split(seps).collect();
        if parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
        {
            parts.iter().map(|p| p.len()).collect()
        } else {
            Vec::new()
        }
    };
    let date_then_time = words
        .first()
        .is_some_and(|w| numbers(w.trim_end_matches(','), &['/', '.', '-']).len() == 3)
        && words.get(1).is_some_and(|w| numbers(w, &[':']).len() >= 2);
    let address_then_counter = words.first().is_some_and(|w| w.contains("://"))
        && words.last().is_some_and(|w| numbers(w, &['/']).len() == 2);
    date_then_time || address_then_counter
}

/// A page footer (or header) that repeats the document's title, alone or with a page
/// number after it ("Voice Microservices architecture\t3", "… Page 3 of 7").
pub(crate) fn title_footer(title: Option<&str>, text: &str) -> bool {
    let Some(title) = title
        .map(names::clean)
        .filter(|t| t.chars().any(char::is_alphabetic))
    else {
        return false;
    };
    let line = names::clean(text);
    // "Title 3", "Title — page 3", "Title | Page 3 of 7", "Title - 3", "Page 3 — Title".
    let Some(rest) = line
        .strip_prefix(title.as_str())
        .or_else(|| line.strip_suffix(title.as_str()))
    else {
        return false;
    };
    let rest = rest.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '—' | '–' | '-' | '|' | ':' | '·' | '•' | ',')
    });
    rest.is_empty() || artifact(rest) == Some("page number")
}

/// The title a browser prints at the top of each page after the date and time
/// ("12/4/26, 10:48 PM Payments Platform Architecture"): the page's `<title>`.
pub(crate) fn browser_header_title(text: &str) -> Option<String> {
    if !print_furniture(text) {
        return None;
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut rest = words.get(2..)?;
    if rest
        .first()
        .is_some_and(|w| matches!(w.to_ascii_uppercase().as_str(), "AM" | "PM"))
    {
        rest = &rest[1..];
    }
    let title = rest.join(" ");
    (title.chars().any(char::is_alphabetic) && !title.contains("://")).then_some(title)
}

/// A known non-row line inside a table: page numbers, headers and footers, footnotes.
pub(crate) fn artifact(text: &str) -> Option<&'static str> {
    if print_furniture(text) {
        return Some("page header or footer");
    }
    let t = names::clean(text);
    let lower = t.to_lowercase();
    let digits = |s: &str| !s.is_empty() && s.len() <= 4 && s.chars().all(|c| c.is_ascii_digit());
    let page_of = |s: &str| {
        s.split_once(['/', ' '])
            .or_else(|| s.split_once(" of "))
            .is_some_and(|(a, b)| {
                digits(a.trim()) && digits(b.trim().trim_start_matches("of ").trim())
            })
    };
    if digits(&lower)
        || lower
            .strip_prefix("page")
            .map(str::trim)
            .is_some_and(|r| digits(r) || page_of(r))
        || page_of(&lower)
        || lower
            .strip_prefix('-')
            .and_then(|r| r.strip_suffix('-'))
            .is_some_and(|r| digits(r.trim()))
    {
        return Some("page number");
    }
    if t.starts_with(['*', '†', '‡', '¹', '²', '³'])
        || lower.starts_with("note:")
        || lower.starts_with("notes:")
    {
        return Some("footnote");
    }
    if lower.starts_with('©')
        || lower.starts_with("copyright")
        || lower.contains("all rights reserved")
        || lower.starts_with("confidential")
    {
        return Some("page footer");
    }
    None
}

/// A row being assembled from its line and any continuation lines.
#[derive(Debug)]
pub(super) struct Pending {
    pub line: u32,
    pub lines: usize,
    pub number: Option<u32>,
    pub number_text: String,
    pub cells: BTreeMap<Col, String>,
}

/// Every item after the header, accounted for: the rows, the lines that could not be
/// placed, and how many lines each kind of non-row took.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    pub rows: Vec<Pending>,
    pub problems: Vec<Problem>,
    pub continuation_lines: usize,
    pub repeated_headers: usize,
    /// Page numbers, page footers and footnotes inside the table.
    pub artifacts: usize,
    /// Non-blank lines after the table's last row.
    pub lines_after_table: usize,
    /// Whether the previous non-blank item was part of a row (a continuation may follow).
    after_row: bool,
}

/// Places every item of the table: a row, a continuation, a repeated header, a known
/// artifact, a line after the table, or a problem saying what was expected.
pub(super) fn account(table: &Table) -> Ledger {
    let last_row_at = table
        .items
        .iter()
        .rposition(|l| matches!(&l.item, Item::Cells(c) if Header::of(c, 0).is_none() && c.iter().any(|x| !x.trim().is_empty())));
    let mut ledger = Ledger::default();
    for (idx, Line { line, item }) in table.items.iter().enumerate() {
        let past_end = last_row_at.is_none_or(|last| idx > last);
        match item {
            Item::Blank => ledger.after_row = false,
            Item::Structure => {}
            Item::Joined => ledger.continuation_lines += 1,
            Item::Cells(cells) => ledger.cells(table, *line, cells, past_end),
            Item::Loose(text) => ledger.loose(table, *line, text, past_end),
            Item::Refused(message) => {
                ledger.problems.push(Problem {
                    line: *line,
                    message: message.clone(),
                });
                ledger.after_row = false;
            }
        }
    }
    ledger
}

impl Ledger {
    /// A line split into cells.
    fn cells(&mut self, table: &Table, line: u32, cells: &[String], past_end: bool) {
        let header = &table.header;
        let nonempty: Vec<&String> = cells.iter().filter(|c| !c.trim().is_empty()).collect();
        if nonempty.is_empty() {
            self.after_row = false;
            return;
        }
        if Header::of(cells, line).is_some() {
            self.repeated_headers += 1;
            self.after_row = false;
            return;
        }
        let joined = nonempty
            .iter()
            .map(|c| c.trim())
            .collect::<Vec<_>>()
            .join("  ");
        // A lone number is a page number, unless it sits in the Port column under a row
        // whose port list breaks off ("8443," then "9443" on the next page).
        let lone_in_port = nonempty.len() == 1
            && cells
                .iter()
                .position(|c| !c.trim().is_empty())
                .is_some_and(|i| header.columns.get(i) == Some(&Some(Col::Port)))
            && self.rows.last().is_some_and(|r| {
                r.cells
                    .get(&Col::Port)
                    .is_some_and(|p| p.trim_end().ends_with([',', '-', '/']))
            });
        if (nonempty.len() == 1 && !lone_in_port && artifact(nonempty[0]).is_some())
            || print_furniture(&joined)
            || title_footer(table.title.as_deref(), &joined)
        {
            self.artifacts += 1;
            return;
        }
        if past_end {
            self.lines_after_table += 1;
            return;
        }
        if let Some(extra) = cells
            .iter()
            .skip(header.width())
            .find(|c| !c.trim().is_empty())
        {
            self.problems.push(Problem {
                line,
                message: format!(
                    "{} cells where the header (line {}) has {} columns ({}); the extra cell is {:?}: expected {}",
                    cells.len(),
                    header.line,
                    header.width(),
                    header.describe(", "),
                    names::clean(extra),
                    table.expected
                ),
            });
            self.after_row = false;
            return;
        }
        let mut values = cells_by_column(header, cells);
        if table.joins_continuations && !starts_row(header, &values) {
            self.continue_row(line, values);
            return;
        }
        let number_text = values.remove(&Col::Number).unwrap_or_default();
        let number = number_text
            .trim_end_matches('.')
            .trim_start_matches('#')
            .parse::<u32>()
            .ok();
        self.rows.push(Pending {
            line,
            lines: 1,
            number,
            number_text,
            cells: values,
        });
        self.after_row = true;
    }

    /// A line of cells whose key cells are empty: it continues the row before.
    fn continue_row(&mut self, line: u32, values: BTreeMap<Col, String>) {
        let Some(prev) = self.rows.last_mut() else {
            self.problems.push(Problem {
                line,
                message: "a continuation line (its key cells are empty) continues no row: no row came before it".into(),
            });
            return;
        };
        for (col, v) in values {
            if col != Col::Number {
                append(prev.cells.entry(col).or_default(), &v);
            }
        }
        prev.lines += 1;
        self.continuation_lines += 1;
        self.after_row = true;
    }

    /// A line that is not a row of this format.
    fn loose(&mut self, table: &Table, line: u32, text: &str, past_end: bool) {
        if artifact(text).is_some() || title_footer(table.title.as_deref(), text) {
            self.artifacts += 1;
            return;
        }
        // A cell wrapped by a browser copy: the text goes on in the row's last cell.
        // (Space-padded text places wrapped lines in their columns instead.)
        if table.format == Format::Tabbed
            && self.after_row
            && let Some(prev) = self.rows.last_mut()
        {
            let col = last_filled(&table.header, prev);
            append(prev.cells.entry(col).or_default(), &names::clean(text));
            prev.lines += 1;
            self.continuation_lines += 1;
            return;
        }
        if past_end {
            self.lines_after_table += 1;
            return;
        }
        self.problems.push(Problem {
            line,
            message: format!(
                "expected {}, or a page number, footer or footnote; found {:?}",
                table.expected,
                shorten(&names::clean(text))
            ),
        });
        self.after_row = false;
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
}

/// The column a wrapped line continues: the last filled one (the description, mostly).
fn last_filled(header: &Header, row: &Pending) -> Col {
    header
        .columns
        .iter()
        .rev()
        .flatten()
        .find(|c| row.cells.get(c).is_some_and(|v| !v.is_empty()))
        .or_else(|| header.columns.iter().rev().flatten().next())
        .copied()
        .unwrap_or(Col::Description)
}
