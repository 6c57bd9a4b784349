//! Imports a connections table from an architecture document, in the forms people hold it:
//! text extracted from a PDF (tab-separated, headers repeated at page breaks, rows split
//! across pages), TSV, Markdown, CSV, space-padded columns (`pdftotext -layout`),
//! MediaWiki tables and saved HTML pages.
//!
//! The steps: clean the text ([`text`]); find the header line and, from it, the format,
//! once; let that format's reader turn the table into logical records (cells plus source
//! line); account for every non-blank line after the header (a row, a continuation, a
//! repeated header, a known artifact such as a page number or footnote, or a problem at
//! LINE saying what was expected); then normalise each row (names, protocol, ports).
//! Nothing is dropped silently: problems fail the import unless `lenient`, where they
//! become warnings and are counted as skipped lines.

mod csv;
mod html;
mod markdown;
mod padded;
mod pdf_text;
pub mod render;
pub mod text;
mod wikitext;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::{
    model::{Allowlist, Classification, Connection, DocumentRef, Ports, Service, parse_port_spec},
    names,
};

/// Something at a line of the document: an error, or (when lenient or harmless) a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the (decoded) document; 0 when the problem has no line.
    pub line: u32,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// No header line with the needed columns. `nearest` is the line that came closest.
    #[error("{}", no_table_message(nearest.as_ref()))]
    NoTable { nearest: Option<Problem> },
    #[error("line {header_line}: the connections table has a header but no rows")]
    Empty { header_line: u32 },
    /// Lines that could not be placed, and rows that could not be read.
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Problems { problems: Vec<Problem> },
    #[error("{0}")]
    Decode(String),
}

fn no_table_message(nearest: Option<&Problem>) -> String {
    let base = "no connections table found: expected a header line with Source, Destination, \
                Protocol and Port columns, separated by tabs, |, commas, semicolons or runs of \
                two or more spaces (or an HTML or MediaWiki table)";
    match nearest {
        Some(p) => format!(
            "{base}; the nearest header-like line, line {}, {}",
            p.line, p.message
        ),
        None => base.to_string(),
    }
}

impl ImportError {
    /// Each message with its line (0 when none), for `FILE:LINE: message` output.
    pub fn located(&self) -> Vec<Problem> {
        match self {
            ImportError::Problems { problems } => problems.clone(),
            ImportError::NoTable { nearest: Some(p) } => vec![Problem {
                line: p.line,
                message: no_table_message(None) + "; the nearest header-like line " + &p.message,
            }],
            ImportError::Empty { header_line } => vec![Problem {
                line: *header_line,
                message: "the connections table has a header but no rows".into(),
            }],
            other => vec![Problem {
                line: 0,
                message: other.to_string(),
            }],
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Lines that cannot be placed, and rows that cannot be read, become warnings and are
    /// skipped (and counted) instead of failing the import.
    pub lenient: bool,
}

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
        }
    }
}

/// An import and what it took to get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub allowlist: Allowlist,
    pub format: Format,
    pub header_line: u32,
    /// Things the user should look at; the rows concerned were kept unless counted in
    /// `skipped_lines`.
    pub warnings: Vec<Problem>,
    /// Lines left out (only with `lenient`): lines that could not be placed, and the lines
    /// of rows that could not be read.
    pub skipped_lines: usize,
    pub continuation_lines: usize,
    pub repeated_headers: usize,
    /// Page numbers, page footers and footnotes inside the table.
    pub artifacts: usize,
    /// Non-blank lines after the table's last row (prose that follows the table).
    pub lines_after_table: usize,
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
    fn name(self) -> &'static str {
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
        let h = Header { columns, line };
        h.complete().then_some(h)
    }

    fn complete(&self) -> bool {
        NEEDED.iter().all(|c| self.has(*c)) && (self.has(Col::Protocol) || self.has(Col::Transport))
    }

    pub(crate) fn has(&self, col: Col) -> bool {
        self.columns.contains(&Some(col))
    }

    fn width(&self) -> usize {
        self.columns.len()
    }

    /// "Connection, Source, …" for messages.
    fn describe(&self, sep: &str) -> String {
        self.columns
            .iter()
            .map(|c| c.map_or("(ignored)", Col::name))
            .collect::<Vec<_>>()
            .join(sep)
    }
}

/// The columns a header-like line names, and those it lacks.
fn header_likeness(cells: &[String]) -> (Vec<Col>, Vec<&'static str>) {
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

// ---- the import ----

/// Imports from text, strictly: any line that cannot be placed fails the import.
pub fn import(text: &str, source_name: Option<&str>) -> Result<Allowlist, ImportError> {
    import_text(text, source_name, Options::default()).map(|i| i.allowlist)
}

/// Imports from a file's bytes: decodes (BOM, UTF-16, cp1252) first.
pub fn import_bytes(
    bytes: &[u8],
    source_name: Option<&str>,
    options: Options,
) -> Result<(Imported, &'static str), ImportError> {
    let decoded = text::decode(bytes).map_err(ImportError::Decode)?;
    import_text(&decoded.text, source_name, options).map(|i| (i, decoded.encoding))
}

pub fn import_text(
    text: &str,
    source_name: Option<&str>,
    options: Options,
) -> Result<Imported, ImportError> {
    let text = text::clean(text);
    let table = find_table(&text)?;
    assemble(table, source_name, options)
}

/// Detects the format, once, from the header line.
fn find_table(text: &str) -> Result<Table, ImportError> {
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
                Format::Wikitext | Format::Html => unreachable!("not line formats"),
            };
            return Ok(with_title(t, &lines[..i]));
        }
        i += 1;
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
                    "names {}, but its columns cannot be split: separate them with tabs, |, commas, semicolons or at least two spaces{}",
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
        t.title = before.iter().map(|l| names::clean(l)).find(|l| {
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
        });
    }
    t
}

/// A row being assembled from its line and any continuation lines.
#[derive(Debug)]
struct Pending {
    line: u32,
    lines: usize,
    number: Option<u32>,
    number_text: String,
    cells: BTreeMap<Col, String>,
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

fn assemble(
    table: Table,
    source_name: Option<&str>,
    options: Options,
) -> Result<Imported, ImportError> {
    let Table {
        format,
        header,
        items,
        joins_continuations: joins,
        expected,
        title,
    } = table;
    let mut problems: Vec<Problem> = Vec::new();
    let mut rows: Vec<Pending> = Vec::new();
    let mut continuation_lines = 0;
    let mut repeated_headers = 0;
    let mut artifacts = 0;
    let last_row_at = items
        .iter()
        .rposition(|l| matches!(&l.item, Item::Cells(c) if Header::of(c, 0).is_none() && c.iter().any(|x| !x.trim().is_empty())));
    let mut lines_after_table = 0;
    // Whether the previous non-blank item was part of a row (a continuation may follow).
    let mut after_row = false;
    for (idx, Line { line, item }) in items.into_iter().enumerate() {
        let past_end = last_row_at.is_none_or(|last| idx > last);
        match item {
            Item::Blank => after_row = false,
            Item::Structure => {}
            Item::Joined => continuation_lines += 1,
            Item::Cells(cells) => {
                let nonempty: Vec<&String> =
                    cells.iter().filter(|c| !c.trim().is_empty()).collect();
                if nonempty.is_empty() {
                    after_row = false;
                    continue;
                }
                if Header::of(&cells, line).is_some() {
                    repeated_headers += 1;
                    after_row = false;
                    continue;
                }
                let joined = nonempty
                    .iter()
                    .map(|c| c.trim())
                    .collect::<Vec<_>>()
                    .join("  ");
                if (nonempty.len() == 1 && artifact(nonempty[0]).is_some())
                    || print_furniture(&joined)
                {
                    artifacts += 1;
                    continue;
                }
                if past_end {
                    lines_after_table += 1;
                    continue;
                }
                if let Some(extra) = cells
                    .iter()
                    .skip(header.width())
                    .find(|c| !c.trim().is_empty())
                {
                    problems.push(Problem {
                        line,
                        message: format!(
                            "{} cells where the header (line {}) has {} columns ({}); the extra cell is {:?}: expected {expected}",
                            cells.len(),
                            header.line,
                            header.width(),
                            header.describe(", "),
                            names::clean(extra)
                        ),
                    });
                    after_row = false;
                    continue;
                }
                let mut values = cells_by_column(&header, &cells);
                if joins && !starts_row(&header, &values) {
                    let Some(prev) = rows.last_mut() else {
                        problems.push(Problem {
                            line,
                            message: "a continuation line (its key cells are empty) continues no row: no row came before it".into(),
                        });
                        continue;
                    };
                    for (col, v) in values {
                        if col != Col::Number {
                            append(prev.cells.entry(col).or_default(), &v);
                        }
                    }
                    prev.lines += 1;
                    continuation_lines += 1;
                    after_row = true;
                    continue;
                }
                let number_text = values.remove(&Col::Number).unwrap_or_default();
                let number = number_text
                    .trim_end_matches('.')
                    .trim_start_matches('#')
                    .parse::<u32>()
                    .ok();
                rows.push(Pending {
                    line,
                    lines: 1,
                    number,
                    number_text,
                    cells: values,
                });
                after_row = true;
            }
            Item::Loose(text) => {
                if artifact(&text).is_some() {
                    artifacts += 1;
                    continue;
                }
                // A cell wrapped by a browser copy: the text goes on in the row's last cell.
                // (Space-padded text places wrapped lines in their columns instead.)
                if format == Format::Tabbed
                    && after_row
                    && let Some(prev) = rows.last_mut()
                {
                    let col = last_filled(&header, prev);
                    append(prev.cells.entry(col).or_default(), &names::clean(&text));
                    prev.lines += 1;
                    continuation_lines += 1;
                    continue;
                }
                if past_end {
                    lines_after_table += 1;
                    continue;
                }
                problems.push(Problem {
                    line,
                    message: format!(
                        "expected {expected}, or a page number, footer or footnote; found {:?}",
                        shorten(&names::clean(&text))
                    ),
                });
                after_row = false;
            }
        }
    }
    let header_line = header.line;
    let mut warnings = Vec::new();
    let mut skipped_lines = 0;
    let mut seen_numbers = HashSet::new();
    let mut connections = Vec::with_capacity(rows.len());
    for row in &rows {
        match convert(row, &header, &mut seen_numbers, &mut warnings) {
            Ok(c) => connections.push(c),
            Err(p) if options.lenient => {
                skipped_lines += row.lines;
                warnings.push(p);
            }
            Err(p) => problems.push(p),
        }
    }
    if options.lenient {
        skipped_lines += problems.len();
        warnings.append(&mut problems);
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(ImportError::Problems { problems });
    }
    if connections.is_empty() {
        return Err(ImportError::Empty { header_line });
    }
    warnings.sort_by_key(|p| p.line);
    let (connections, services) = name_services(connections);
    Ok(Imported {
        allowlist: Allowlist {
            document: DocumentRef {
                title,
                source: source_name.map(str::to_string),
            },
            services,
            connections,
        },
        format,
        header_line,
        warnings,
        skipped_lines,
        continuation_lines,
        repeated_headers,
        artifacts,
        lines_after_table,
    })
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

/// `1,024` and `65,535`: digits grouped by thousands, read as one number when the result
/// is a port. `80,443` (80443 is no port) stays a list.
fn join_thousands(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let starts_number =
            b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_digit() || b[i - 1] == b','));
        if !starts_number {
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let lead = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let mut end = i + lead;
        let mut groups = 0;
        while b.get(end) == Some(&b',')
            && end + 4 <= b.len()
            && b[end + 1..end + 4].iter().all(u8::is_ascii_digit)
            && b.get(end + 4).is_none_or(|c| !c.is_ascii_digit())
        {
            end += 4;
            groups += 1;
        }
        let digits: String = text[i..end].chars().filter(char::is_ascii_digit).collect();
        if lead <= 3 && groups > 0 && digits.parse::<u32>().is_ok_and(|n| n <= 65535) {
            out.push_str(&digits);
        } else {
            out.push_str(&text[i..end]);
        }
        i = end;
    }
    out
}

/// Parses the Port cell: lists ("5050, 8888", "8080 / 8443"), alternatives ("9092/9093*";
/// the `*` after a group marks every port in it configurable), ranges ("20000-45000"),
/// thousands separators ("8,443", "1,024-65,535"), "(configurable)", "Any", "N/A" and
/// "Not known (…)".
pub fn parse_ports(text: &str) -> Result<Ports, String> {
    let t = names::clean(text);
    let lower = t.to_lowercase();
    if t.is_empty() {
        return Err("the port is empty".into());
    }
    if matches!(lower.as_str(), "n/a" | "na" | "none" | "-" | "—" | "–")
        || lower.starts_with("not known")
        || lower.starts_with("unknown")
    {
        return Ok(Ports::Unknown { reason: t });
    }
    if matches!(lower.as_str(), "any" | "all" | "any port" | "all ports") {
        return Ok(Ports::Any { reason: t });
    }
    let configurable_word = lower.contains("configurable");
    let body = lower
        .replace("(configurable)", "")
        .replace("configurable", "")
        .replace("(default)", "")
        .replace("default", "");
    let mut specs = Vec::new();
    // Spaces around `/`, `-` and before `*` belong to the item ("8080 / 8443", "6379 *");
    // other spaces separate items, as commas do ("8080 8443" from an HTML list).
    let mut items = join_thousands(&body)
        .replace(" and ", ",")
        .replace(" or ", ",")
        .replace(';', ",");
    for joiner in ["/", "-", "–", "*"] {
        while items.contains(&format!(" {joiner}")) {
            items = items.replace(&format!(" {joiner}"), joiner);
        }
        if joiner != "*" {
            while items.contains(&format!("{joiner} ")) {
                items = items.replace(&format!("{joiner} "), joiner);
            }
        }
    }
    for group in items.split([',', ' ']) {
        let group = group.trim();
        if group.is_empty() {
            continue;
        }
        let group_configurable = group.ends_with('*');
        for alt in group.trim_end_matches('*').split('/') {
            let mut spec = parse_port_spec(alt)?;
            spec.configurable |= group_configurable || configurable_word;
            specs.push(spec);
        }
    }
    if specs.is_empty() {
        return Err(format!("{t:?} names no port"));
    }
    Ok(Ports::Listed(specs))
}

fn convert(
    row: &Pending,
    header: &Header,
    seen: &mut HashSet<u32>,
    warnings: &mut Vec<Problem>,
) -> Result<Connection, Problem> {
    let what = match (row.number, row.number_text.is_empty()) {
        (Some(n), _) => format!("row {n}"),
        (None, true) => "an unnumbered row".into(),
        (None, false) => format!("row {:?}", row.number_text),
    };
    let err = |message: String| Problem {
        line: row.line,
        message: format!("{what}: {message}"),
    };
    let get = |c: Col| row.cells.get(&c).map(String::as_str).unwrap_or("");
    if row.number.is_none() && !row.number_text.is_empty() {
        return Err(err("the connection number is not a whole number".into()));
    }
    if let Some(n) = row.number
        && !seen.insert(n)
    {
        return Err(err(format!("connection number {n} appears twice")));
    }
    let missing: Vec<&str> = [Col::Source, Col::Destination, Col::Port]
        .into_iter()
        .filter(|c| get(*c).is_empty())
        .map(Col::name)
        .collect();
    if !missing.is_empty() {
        return Err(err(format!(
            "the {} cell{} empty (columns: {})",
            missing.join(", "),
            if missing.len() > 1 { "s are" } else { " is" },
            header.describe(", ")
        )));
    }
    let source = get(Col::Source).to_string();
    let destination = get(Col::Destination).to_string();
    let transport_cell = get(Col::Transport);
    let protocol_text = match get(Col::Protocol) {
        "" => transport_cell,
        p => p,
    };
    let read = names::protocol(protocol_text).map_err(err)?;
    let column = if transport_cell.is_empty() {
        None
    } else {
        Some(names::transport_column(transport_cell).map_err(err)?)
    };
    let transport = match column {
        Some(t) if read.names_transport && t != read.transport => {
            return Err(err(format!(
                "the Transport column says {t} but protocol {} runs over {}",
                read.name, read.transport
            )));
        }
        Some(t) => t,
        None => {
            if let Some(w) = &read.warning {
                warnings.push(err(w.clone()));
            }
            read.transport
        }
    };
    let description = get(Col::Description).to_string();
    let mut ports =
        parse_ports(get(Col::Port)).map_err(|m| err(format!("port {:?}: {m}", get(Col::Port))))?;
    if description.to_lowercase().contains("configurable")
        && let Ports::Listed(list) = &mut ports
    {
        for p in list.iter_mut() {
            p.configurable = true;
        }
    }
    // The classification is descriptive (reports show it; no verdict depends on it), and
    // documents word it their own way: a value we do not know is a warning, not a lost row.
    let classification = if header.has(Col::Classification) {
        let text = get(Col::Classification);
        match Classification::parse_list(text) {
            Some(list) => list,
            None => {
                warnings.push(err(format!(
                    "classification {text:?} is not Intra-cluster, Egress, Ingress or a \
                     combination like Ingress/Egress; the row is kept without one"
                )));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    Ok(Connection {
        number: row.number,
        source,
        destination,
        protocol: read.name,
        transport,
        ports,
        classification,
        description,
        documented_source: None,
        documented_destination: None,
        line: Some(row.line),
    })
}

/// A name as written, split into its base name and the aliases it carries: a version
/// ("Redis 6.x": the written form is the alias) and a parenthesised alias ("Tenant Service
/// (Voice Config Service)").
fn endpoint_names(written: &str) -> (String, Vec<String>) {
    let (base, paren) = match names::split_alias(written) {
        Some((b, a)) => (b.to_string(), Some(a.to_string())),
        None => (written.to_string(), None),
    };
    let mut aliases = Vec::new();
    let base = match names::strip_version(&base) {
        Some(stripped) => {
            aliases.push(base.clone());
            stripped.to_string()
        }
        None => base,
    };
    aliases.extend(paren);
    (base, aliases)
}

/// Resolves every endpoint to one service name: aliases (versions, parenthesised names)
/// become aliases of the service, and a row that uses an alias alone points at the
/// service, with the name as written kept.
fn name_services(mut connections: Vec<Connection>) -> (Vec<Connection>, Vec<Service>) {
    let mut canonical: HashMap<String, String> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
    let mut resolve = |written: &str| -> String {
        let (base, alias_list) = endpoint_names(written);
        let name = canonical
            .get(&base)
            .or_else(|| alias_list.iter().find_map(|a| canonical.get(a)))
            .cloned()
            .unwrap_or_else(|| base.clone());
        if !order.contains(&name) {
            order.push(name.clone());
        }
        for n in std::iter::once(&base).chain(alias_list.iter()) {
            if !canonical.contains_key(n) {
                canonical.insert(n.clone(), name.clone());
                if *n != name {
                    aliases.entry(name.clone()).or_default().push(n.clone());
                }
            }
        }
        name
    };
    for c in &mut connections {
        for (field, written) in [
            (&mut c.source, &mut c.documented_source),
            (&mut c.destination, &mut c.documented_destination),
        ] {
            let name = resolve(field);
            if name != *field {
                *written = Some(std::mem::replace(field, name));
            }
        }
    }
    let services = order
        .into_iter()
        .map(|name| Service {
            kind: names::kind_of(&name),
            aliases: aliases.remove(&name).unwrap_or_default(),
            name,
        })
        .collect();
    (connections, services)
}

#[cfg(test)]
mod tests;
