//! Writes a table in each format the importer reads: the other half of the round trip that
//! the property tests and the fuzz target check (a generated table, rendered, must import
//! to as many rows as it has). Cells must be single-line text without tabs or runs of
//! spaces, as `names::clean` leaves them.

use super::Format;

fn csv_cell(c: &str, sep: char) -> String {
    if c.contains([sep, '"', '\n']) || c.starts_with(' ') || c.ends_with(' ') {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c.to_string()
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `header` and `rows` as a document in `format`, with a title line before the table.
pub fn render(format: Format, header: &[&str], rows: &[Vec<String>]) -> String {
    let rows_as =
        |f: &dyn Fn(&[String]) -> String| -> String { rows.iter().map(|r| f(r) + "\n").collect() };
    let header_owned: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    match format {
        Format::Tabbed => {
            format!(
                "Connections\n\n{}\n{}",
                header.join("\t"),
                rows_as(&|r| r.join("\t"))
            )
        }
        Format::Markdown => {
            let line = |r: &[String]| {
                format!(
                    "| {} |",
                    r.iter()
                        .map(|c| c.replace('|', "\\|"))
                        .collect::<Vec<_>>()
                        .join(" | ")
                )
            };
            format!(
                "# Connections\n\n{}\n|{}\n{}",
                line(&header_owned),
                "---|".repeat(header.len()),
                rows_as(&line)
            )
        }
        Format::Csv(d) => {
            let sep = d as char;
            let line = |r: &[String]| {
                r.iter()
                    .map(|c| csv_cell(c, sep))
                    .collect::<Vec<_>>()
                    .join(&sep.to_string())
            };
            format!("{}\n{}", line(&header_owned), rows_as(&line))
        }
        Format::Padded => {
            let widths: Vec<usize> = (0..header.len())
                .map(|i| {
                    rows.iter()
                        .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                        .chain([header[i].chars().count()])
                        .max()
                        .unwrap_or(0)
                        + 3
                })
                .collect();
            let line = |r: &[String]| {
                r.iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            };
            format!("Connections\n\n{}\n{}", line(&header_owned), rows_as(&line))
        }
        Format::Wikitext => {
            let mut out = String::from("{| class=\"wikitable\"\n! ");
            out.push_str(&header.join(" !! "));
            out.push('\n');
            for r in rows {
                out.push_str("|-\n");
                for c in r {
                    out.push_str("| ");
                    out.push_str(c);
                    out.push('\n');
                }
            }
            out.push_str("|}\n");
            out
        }
        Format::Html => {
            let cells = |r: &[String], tag: &str| -> String {
                r.iter()
                    .map(|c| format!("<{tag}>{}</{tag}>", html_escape(c)))
                    .collect()
            };
            format!(
                "<!DOCTYPE html>\n<html><head><title>Connections</title></head><body>\n<table>\n<tr>{}</tr>\n{}</table>\n</body></html>\n",
                cells(&header_owned, "th"),
                rows_as(&|r| format!("<tr>{}</tr>", cells(r, "td")))
            )
        }
    }
}
