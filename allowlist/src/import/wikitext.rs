//! MediaWiki tables: `{|` … `|}`, rows separated by `|-`, header cells after `!` (several
//! on a line with `!!`), data cells after `|` (several with `||`), cell attributes before a
//! single `|`, and a cell's text may go on over the following lines.

use super::{
    Format, Header,
    table::{Item, Line, Table},
};

pub(crate) fn starts_table(line: &str) -> bool {
    line.trim_start().starts_with("{|")
}

/// Link and emphasis markup out of a cell: `[[Target|Text]]` → Text, `'''b'''` → b.
fn unwiki(cell: &str) -> String {
    let mut c = cell.trim().to_string();
    // Attributes: `style="…" | text`.
    if let Some((attrs, text)) = c.split_once('|')
        && !attrs.contains("[[")
        && attrs.contains('=')
    {
        c = text.to_string();
    }
    let mut out = String::new();
    let mut rest = c.as_str();
    while let Some(open) = rest.find("[[") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find("]]") {
            Some(close) => {
                let link = &after[..close];
                out.push_str(link.rsplit('|').next().unwrap_or(link));
                rest = &after[close + 2..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("'''", "")
        .replace("''", "")
        .replace("<br>", " ")
        .replace("<br/>", " ")
        .replace("<br />", " ")
        .replace("&nbsp;", " ")
}

struct Row {
    line: u32,
    cells: Vec<String>,
}

/// The table starting at `lines[start]`, if it has a connections header row.
pub(crate) fn read(lines: &[&str], start: usize) -> Option<Table> {
    let mut items: Vec<(u32, Option<Row>, Item)> = Vec::new();
    let mut current: Option<Row> = None;
    let flush = |current: &mut Option<Row>, items: &mut Vec<(u32, Option<Row>, Item)>| {
        if let Some(r) = current.take() {
            items.push((r.line, Some(r), Item::Structure));
        }
    };
    for (k, raw) in lines.iter().enumerate().skip(start + 1) {
        let line = k as u32 + 1;
        let t = raw.trim_start();
        if t.starts_with("|}") {
            break;
        }
        if t.starts_with("|-") || t.starts_with("|+") {
            flush(&mut current, &mut items);
            items.push((line, None, Item::Structure));
            continue;
        }
        if t.trim().is_empty() {
            items.push((line, None, Item::Blank));
            continue;
        }
        let cells: Option<Vec<String>> = if let Some(h) = t.strip_prefix('!') {
            Some(
                h.split("!!")
                    .flat_map(|c| c.split("||"))
                    .map(unwiki)
                    .collect(),
            )
        } else {
            t.strip_prefix('|')
                .map(|d| d.split("||").map(unwiki).collect())
        };
        match (cells, current.as_mut()) {
            (Some(cells), Some(row)) => row.cells.extend(cells),
            (Some(cells), None) => current = Some(Row { line, cells }),
            // A cell's text going on over the next line.
            (None, Some(row)) => {
                if let Some(last) = row.cells.last_mut() {
                    last.push(' ');
                    last.push_str(&unwiki(t));
                }
            }
            (None, None) => items.push((line, None, Item::Loose(raw.to_string()))),
        }
    }
    flush(&mut current, &mut items);
    let at = items.iter().position(|(line, row, _)| {
        row.as_ref()
            .is_some_and(|r| Header::of(&r.cells, *line).is_some())
    })?;
    let (header_line, header_row, _) = items.remove(at);
    let header = Header::of(&header_row?.cells, header_line)?;
    let items = items
        .into_iter()
        .skip(at)
        .map(|(line, row, item)| Line {
            line,
            item: match row {
                Some(r) => Item::Cells(r.cells),
                None => item,
            },
        })
        .collect();
    let expected = format!(
        "a table row (|- then | cells for {})",
        header.describe(", ")
    );
    Some(Table {
        format: Format::Wikitext,
        header,
        items,
        joins_continuations: false,
        expected,
        title: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_removed() {
        assert_eq!(unwiki(" [[Tenant Service|Tenant]] "), "Tenant");
        assert_eq!(unwiki("[[Redis]] '''6379'''"), "Redis 6379");
        assert_eq!(unwiki("style=\"x\" | 8080"), " 8080");
    }
}
