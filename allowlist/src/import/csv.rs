//! CSV, `,`- or `;`-separated (the `csv` crate): quoted cells may hold the separator,
//! quotes and line breaks; a record's line is the line it starts on.

use super::{
    Format, Header,
    table::{Item, Line, Table},
};

fn reader(text: &str, delimiter: u8) -> ::csv::Reader<&[u8]> {
    ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes())
}

/// The cells of one line (for finding the header).
pub(crate) fn split_line(line: &str, delimiter: u8) -> Vec<String> {
    match reader(line, delimiter).records().next() {
        Some(Ok(r)) => r.iter().map(str::to_string).collect(),
        _ => vec![line.to_string()],
    }
}

pub(crate) fn read(header: Header, rest: &[&str], first: u32, delimiter: u8) -> Table {
    let body = rest.join("\n");
    let mut items = Vec::new();
    let mut records = reader(&body, delimiter);
    let mut record = ::csv::StringRecord::new();
    loop {
        let pos_line = records.position().line();
        match records.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let at = record.position().map_or(pos_line, |p| p.line());
                let line = first + at.saturating_sub(1) as u32;
                let item = match record.len() {
                    0 => Item::Blank,
                    1 if record[0].trim().is_empty() => Item::Blank,
                    1 => Item::Loose(record[0].to_string()),
                    _ => Item::Cells(record.iter().map(str::to_string).collect()),
                };
                items.push(Line { line, item });
            }
            Err(e) => {
                let line = first
                    + e.position()
                        .map_or(pos_line, |p| p.line())
                        .saturating_sub(1) as u32;
                items.push(Line {
                    line,
                    item: Item::Loose(format!("(unreadable CSV: {e})")),
                });
                break;
            }
        }
    }
    let sep = if delimiter == b';' { ";" } else { "," };
    let expected = format!(
        "a CSV record of {} cells ({})",
        header.columns.len(),
        header.describe(sep)
    );
    Table {
        format: Format::Csv(delimiter),
        header,
        items,
        joins_continuations: false,
        expected,
        title: None,
    }
}
