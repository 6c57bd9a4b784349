//! Imports a connections table from an architecture document, in the forms people hold it:
//! text extracted from a PDF (tab-separated, headers repeated at page breaks, rows split
//! across pages), TSV, Markdown, CSV, space-padded columns (`pdftotext -layout`),
//! MediaWiki tables and saved HTML pages.
//!
//! The steps, one module each: clean the text ([`text`]); find the header line and, from
//! it, the format, once ([`header`]); let that format's reader turn the table into logical
//! records (cells plus source line; [`table`]); account for every non-blank line after the
//! header (a row, a continuation, a repeated header, a known artifact such as a page number
//! or footnote, or a problem at LINE saying what was expected; [`account`]); then
//! normalise each row (names, protocol, ports; [`row`]). What goes wrong is a [`Problem`]
//! at a line, or an [`ImportError`] ([`problem`]). This module runs the steps.
//! Nothing is dropped silently: problems fail the import unless `lenient`, where they
//! become warnings and are counted as skipped lines.

mod account;
mod csv;
mod header;
mod html;
mod markdown;
mod padded;
pub mod pdf_geometry;
mod pdf_text;
mod problem;
pub mod render;
mod row;
mod spaced;
mod table;
pub mod text;
mod wikitext;

use std::collections::HashSet;

pub use header::Format;
pub(crate) use header::{Col, Header};
pub use problem::{ImportError, Problem};
pub use row::parse_ports;

use crate::model::{Allowlist, DocumentRef};
use account::Ledger;
use table::Table;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Lines that cannot be placed, and rows that cannot be read, become warnings and are
    /// skipped (and counted) instead of failing the import.
    pub lenient: bool,
    /// Service names known beforehand (`--services`): where a single-spaced row's source
    /// ends and its destination begins.
    pub services: Vec<String>,
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
    let table = header::find_table(&text, &options.services)?;
    let ledger = account::account(&table);
    assemble(table, ledger, source_name, options)
}

/// Normalises the rows and, when every line was placed and every row read (or `lenient`),
/// makes the allowlist.
fn assemble(
    table: Table,
    ledger: Ledger,
    source_name: Option<&str>,
    options: Options,
) -> Result<Imported, ImportError> {
    let Ledger {
        rows,
        mut problems,
        continuation_lines,
        repeated_headers,
        artifacts,
        lines_after_table,
        ..
    } = ledger;
    let header_line = table.header.line;
    let mut warnings = Vec::new();
    // A header cell the importer does not read leaves its column out: said, never
    // silently (a header a page broke inside a word, "Classific ation", is one).
    for (i, col) in table.header.columns.iter().enumerate() {
        let name = table.header.names.get(i).map_or("", String::as_str);
        if col.is_none() && !name.is_empty() {
            let why = match header::column_of(name) {
                Some(repeated) => format!("repeats the {} column, read from the first", repeated.name()),
                None => "is not one the importer reads (Connection, Source, Destination, Protocol, Transport, Port, Classification, or a description such as Data or Notes)".to_string(),
            };
            warnings.push(Problem {
                line: header_line,
                message: format!(
                    "column {} of the header, {name:?}, {why}: its cells are left out",
                    i + 1
                ),
            });
        }
    }
    let mut skipped_lines = 0;
    let mut seen_numbers = HashSet::new();
    let mut connections = Vec::with_capacity(rows.len());
    for r in &rows {
        match row::convert(r, &table.header, &mut seen_numbers, &mut warnings) {
            Ok(c) => connections.push(c),
            Err(p) if options.lenient => {
                skipped_lines += r.lines;
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
    let (connections, services) = row::name_services(connections);
    Ok(Imported {
        allowlist: Allowlist {
            document: DocumentRef {
                title: table.title,
                source: source_name.map(str::to_string),
            },
            services,
            connections,
        },
        format: table.format,
        header_line,
        warnings,
        skipped_lines,
        continuation_lines,
        repeated_headers,
        artifacts,
        lines_after_table,
    })
}

#[cfg(test)]
mod tests;
