//! Markdown (GitHub-flavoured) pipe tables: outer pipes optional, `\|` is a pipe inside a
//! cell, the `|---|:--:|` row is structure, `<br>` breaks a cell's line.

use super::{
    Format, Header,
    table::{Item, Line, Table},
};

/// Cells of a pipe-table line, with `\|` kept as a literal pipe.
pub(crate) fn split(line: &str) -> Vec<String> {
    let t = line.trim();
    let t = t.strip_prefix('|').unwrap_or(t);
    let t = if t.ends_with('|') && !t.ends_with("\\|") {
        &t[..t.len() - 1]
    } else {
        t
    };
    let mut cells = vec![String::new()];
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cells.last_mut().expect("never empty").push('|');
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().expect("never empty").push(c),
        }
    }
    cells.into_iter().map(|c| tidy(&c)).collect()
}

/// Inline markup that is not part of the value: bold, code spans, line breaks.
fn tidy(cell: &str) -> String {
    let mut c = cell
        .replace("<br>", " ")
        .replace("<br/>", " ")
        .replace("<br />", " ");
    for mark in ["**", "__", "`"] {
        if c.trim().starts_with(mark) && c.trim().ends_with(mark) && c.trim().len() > 2 * mark.len()
        {
            c = c
                .trim()
                .trim_start_matches(mark)
                .trim_end_matches(mark)
                .to_string();
        }
    }
    c
}

fn has_pipe(line: &str) -> bool {
    line.replace("\\|", "").contains('|')
}

fn is_separator(cells: &[String]) -> bool {
    cells
        .iter()
        .all(|c| c.trim().chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
        && cells.iter().any(|c| c.contains('-'))
}

pub(crate) fn read(header: Header, rest: &[&str], first: u32) -> Table {
    let items = rest
        .iter()
        .enumerate()
        .map(|(k, l)| Line {
            line: first + k as u32,
            item: if l.trim().is_empty() {
                Item::Blank
            } else if has_pipe(l) {
                let cells = split(l);
                if is_separator(&cells) {
                    Item::Structure
                } else {
                    Item::Cells(cells)
                }
            } else {
                Item::Loose(l.to_string())
            },
        })
        .collect();
    let expected = format!("a table row | {} |", header.describe(" | "));
    Table {
        format: Format::Markdown,
        header,
        items,
        joins_continuations: false,
        expected,
        title: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_pipes_escapes_and_markup() {
        assert_eq!(split("| a | b \\| c |"), vec![" a ", " b | c "]);
        assert_eq!(split("a | b"), vec!["a ", " b"]);
        assert_eq!(split("| **Source** | `x`<br>y |")[0], "Source");
        assert!(is_separator(&split("|---|:--:|")));
        assert!(!is_separator(&split("| - | x |")));
    }
}
