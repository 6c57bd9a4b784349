//! Finding the table: the header line names the columns, and the way it splits names the
//! format, once, for the whole table. When no line makes a header, the nearest one says
//! what it lacks. The document's title is the short line of text before the table.

use std::collections::HashSet;

use super::{
    ImportError, Problem, csv, html, markdown, padded, pdf_text, spaced, table::Table, wikitext,
};
use crate::names;

/// The table formats the importer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tab-separated: TSV, or text extracted from a PDF (continuation lines are joined).
    Tabbed,
    Markdown,
    /// CSV with this delimiter (`,` or `;`).
    Csv(u8),
    /// Columns padded with runs of spaces (`pdftotext -layout`): continuation lines joined.
    Padded,
    Wikitext,
    Html,
    /// One space between cells and words alike (text copied from a PDF viewer): cells
    /// found by their vocabularies and the known service names.
    Spaced,
}

impl Format {
    pub fn describe(self) -> &'static str {
        match self {
            Format::Tabbed => "tab-separated text (TSV or PDF-extracted)",
            Format::Markdown => "Markdown table",
            Format::Csv(b';') => "CSV (;-separated)",
            Format::Csv(_) => "CSV",
            Format::Padded => "space-padded columns",
            Format::Wikitext => "MediaWiki table",
            Format::Html => "HTML table",
            Format::Spaced => "single-spaced text (copied from a PDF viewer or a page)",
        }
    }
}

// ---- columns and headers ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Col {
    Number,
    Source,
    Destination,
    Protocol,
    Transport,
    Port,
    Classification,
    Description,
}

impl Col {
    pub(super) fn name(self) -> &'static str {
        match self {
            Col::Number => "Connection",
            Col::Source => "Source",
            Col::Destination => "Destination",
            Col::Protocol => "Protocol",
            Col::Transport => "Transport",
            Col::Port => "Port",
            Col::Classification => "Classification",
            Col::Description => "Description",
        }
    }
}

/// The column a header cell names: "Source", "Source service", "Port(s)", "Data", ….
pub(crate) fn column_of(name: &str) -> Option<Col> {
    let n = names::clean(name).to_lowercase();
    let n = n.trim_matches(|c: char| matches!(c, '*' | ':' | '\'' | '`' | '_' | '"'));
    let words: Vec<&str> = n
        .split(|c: char| !c.is_alphanumeric() && c != '#')
        .filter(|w| !w.is_empty())
        .collect();
    let first = words.first().copied().unwrap_or("");
    let has = |w: &str| words.contains(&w);
    Some(match n {
        "connection" | "#" | "no" | "no." | "nr" | "nr." | "number" | "id"
        | "connection number" | "connection #" | "connection no." | "conn." | "row" => Col::Number,
        // "Protocol/Transport" holds "HTTP/TCP": the protocol grammar reads it.
        _ if has("transport") && !has("protocol") => Col::Transport,
        _ if has("port") || has("ports") => {
            if matches!(first, "source" | "src" | "client" | "local") {
                return None;
            }
            Col::Port
        }
        _ if has("protocol") || has("protocols") => Col::Protocol,
        _ if matches!(first, "source" | "src" | "from" | "initiator" | "caller") => Col::Source,
        _ if matches!(
            first,
            "destination" | "dest" | "dst" | "target" | "to" | "callee"
        ) =>
        {
            Col::Destination
        }
        _ if has("classification") || first == "direction" => Col::Classification,
        _ if matches!(
            first,
            "data"
                | "description"
                | "purpose"
                | "notes"
                | "note"
                | "details"
                | "comment"
                | "comments"
        ) =>
        {
            Col::Description
        }
        _ => return None,
    })
}

#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub columns: Vec<Option<Col>>,
    pub line: u32,
    /// Each column's header cell as written (for a column the importer does not read).
    pub names: Vec<String>,
}

const NEEDED: [Col; 3] = [Col::Source, Col::Destination, Col::Port];

impl Header {
    /// The header these cells make, if they name the needed columns.
    pub(crate) fn of(cells: &[String], line: u32) -> Option<Header> {
        let mut seen = HashSet::new();
        let columns: Vec<Option<Col>> = cells
            .iter()
            .map(|c| column_of(c).filter(|col| seen.insert(*col)))
            .collect();
        let h = Header {
            columns,
            line,
            names: cells.iter().map(|c| names::clean(c)).collect(),
        };
        h.complete().then_some(h)
    }

    fn complete(&self) -> bool {
        NEEDED.iter().all(|c| self.has(*c)) && (self.has(Col::Protocol) || self.has(Col::Transport))
    }

    pub(crate) fn has(&self, col: Col) -> bool {
        self.columns.contains(&Some(col))
    }

    pub(super) fn width(&self) -> usize {
        self.columns.len()
    }

    /// "Connection, Source, …" for messages.
    pub(super) fn describe(&self, sep: &str) -> String {
        self.columns
            .iter()
            .map(|c| c.map_or("(ignored)", Col::name))
            .collect::<Vec<_>>()
            .join(sep)
    }
}

/// The columns a header-like line names, and those it lacks.
pub(super) fn header_likeness(cells: &[String]) -> (Vec<Col>, Vec<&'static str>) {
    let mut found: Vec<Col> = Vec::new();
    for c in cells {
        if let Some(col) = column_of(c)
            && !found.contains(&col)
        {
            found.push(col);
        }
    }
    let mut missing: Vec<&'static str> = NEEDED
        .iter()
        .filter(|c| !found.contains(c))
        .map(|c| c.name())
        .collect();
    if !found.contains(&Col::Protocol) && !found.contains(&Col::Transport) {
        missing.push("Protocol");
    }
    (found, missing)
}

/// Detects the format, once, from the header line. A single-spaced header is looked for
/// only when no line makes a header any other way (prose names columns too).
pub(super) fn find_table(text: &str, services: &[String]) -> Result<Table, ImportError> {
    if html::looks_like_html(text) {
        return html::read(text);
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if wikitext::starts_table(line)
            && let Some(t) = wikitext::read(&lines, i)
        {
            return Ok(with_title(t, &lines[..i]));
        }
        if let Some((format, header)) = line_header(line, i as u32 + 1) {
            let rest = &lines[i + 1..];
            let first = i as u32 + 2;
            let t = match format {
                Format::Tabbed => pdf_text::read(header, rest, first),
                Format::Markdown => markdown::read(header, rest, first),
                Format::Csv(d) => csv::read(header, rest, first, d),
                Format::Padded => padded::read(header, line, rest, first),
                Format::Wikitext | Format::Html | Format::Spaced => {
                    unreachable!("not line formats")
                }
            };
            return Ok(with_title(t, &lines[..i]));
        }
        i += 1;
    }
    for (i, line) in lines.iter().enumerate() {
        if let Some((header, cells)) = spaced::header(line, i as u32 + 1) {
            let title = title_in(&lines[..i]);
            let t = spaced::read(
                header,
                cells,
                &lines[i + 1..],
                i as u32 + 2,
                services,
                title.as_deref(),
            );
            return Ok(with_title(t, &lines[..i]));
        }
    }
    Err(ImportError::NoTable {
        nearest: nearest_header(&lines),
    })
}

/// The ways a line may be split, in order of preference.
fn splits(line: &str) -> Vec<(Format, Vec<String>)> {
    let mut out = Vec::new();
    if line.contains('\t') {
        out.push((Format::Tabbed, pdf_text::split(line)));
    }
    if line.contains('|') {
        out.push((Format::Markdown, markdown::split(line)));
    }
    for d in [b';', b','] {
        if line.as_bytes().contains(&d) {
            out.push((Format::Csv(d), csv::split_line(line, d)));
        }
    }
    out.push((Format::Padded, padded::split(line)));
    out
}

fn line_header(line: &str, line_no: u32) -> Option<(Format, Header)> {
    splits(line)
        .into_iter()
        .find_map(|(f, cells)| Header::of(&cells, line_no).map(|h| (f, h)))
}

/// For "no table found": the line that names the most columns, and what it lacks.
fn nearest_header(lines: &[&str]) -> Option<Problem> {
    let mut best: Option<(usize, Problem)> = None;
    for (i, line) in lines.iter().enumerate() {
        let mut consider = |score: usize, message: String| {
            if score >= 2 && best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((
                    score,
                    Problem {
                        line: i as u32 + 1,
                        message,
                    },
                ));
            }
        };
        for (format, cells) in splits(line) {
            if cells.len() < 2 {
                continue;
            }
            let (found, missing) = header_likeness(&cells);
            consider(
                found.len() * 2,
                format!(
                    "({}: {}) has no {} column",
                    format.describe(),
                    found
                        .iter()
                        .map(|c| c.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    missing.join(" or ")
                ),
            );
        }
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let (found, missing) = header_likeness(&words);
        if found.len() >= 3 {
            consider(
                found.len() * 2 - 1,
                format!(
                    "names {}, but its columns cannot be split: separate them with tabs, |, commas, semicolons or at least two spaces, or start the line with a column's name{}",
                    found
                        .iter()
                        .map(|c| c.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!(" (and add {})", missing.join(", "))
                    }
                ),
            );
        }
    }
    // A rendering with one cell per line: the header's names on consecutive lines.
    let mut i = 0;
    while i < lines.len() {
        let run = lines[i..]
            .iter()
            .take_while(|l| !l.trim().is_empty() && column_of(l).is_some())
            .count();
        if run >= 3 {
            let cells: Vec<String> = lines[i..i + run].iter().map(|l| l.to_string()).collect();
            let (found, _) = header_likeness(&cells);
            let score = found.len() * 2 - 1;
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((
                    score,
                    Problem {
                        line: i as u32 + 1,
                        message: format!(
                            "(lines {}-{}) names one column per line ({}): a table rendered with one cell per line cannot be split into rows; save it as HTML, CSV or tab-separated text instead",
                            i + 1,
                            i + run,
                            found
                                .iter()
                                .map(|c| c.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    },
                ));
            }
        }
        i += run.max(1);
    }
    best.map(|(_, p)| p)
}

/// The document's title: its first short line of text before the table (PDF exports start
/// with it, after any boilerplate sentence); never a header-like line.
fn with_title(mut t: Table, before: &[&str]) -> Table {
    if t.title.is_none() {
        t.title = title_in(before);
    }
    t
}

/// The title among the lines before a table (see `with_title`).
pub(crate) fn title_in(before: &[&str]) -> Option<String> {
    before.iter().map(|l| names::clean(l)).find(|l| {
        !l.is_empty()
            && l.len() <= 100
            && !l.contains(['\t', '|'])
            && l.chars().any(char::is_alphabetic)
            && !l.ends_with('.')
            && !l.starts_with(['{', '<', '#', '!'])
            && header_likeness(&l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .0
                .len()
                < 2
    })
}
