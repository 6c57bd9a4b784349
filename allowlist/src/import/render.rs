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
        // What a PDF viewer's copy gives: one space between cells and words alike.
        Format::Spaced => format!(
            "Connections\n\n{}\n{}",
            header.join(" "),
            rows_as(&|r| r.join(" "))
        ),
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

/// Points per character, line and row padding of `render_bbox`'s made-up font.
const CHAR_PT: f32 = 5.0;
const LINE_PT: f32 = 10.0;
const PAD_PT: f32 = 2.0;

/// A cell's text wrapped to `width` characters as a browser wraps it: at spaces, and
/// after a hyphen or slash when a word does not fit ("20000-" / "45000").
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        loop {
            let fits = |l: &str, w: &str| {
                l.chars().count() + usize::from(!l.is_empty()) + w.chars().count() <= width
            };
            if fits(&line, &word) {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            // Break after a hyphen or slash inside the word, if its first part fits.
            let cut = word
                .char_indices()
                .filter(|(i, c)| matches!(c, '-' | '/') && *i > 0 && *i + 1 < word.len())
                .map(|(i, _)| i + 1)
                .rfind(|&i| fits(&line, &word[..i]));
            match cut {
                Some(i) => {
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    line.push_str(&word[..i]);
                    lines.push(std::mem::take(&mut line));
                    word = word[i..].to_string();
                }
                None if line.is_empty() => {
                    // Longer than the column: it overflows, on a line of its own.
                    lines.push(word);
                    break;
                }
                None => lines.push(std::mem::take(&mut line)),
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn xml_escape(s: &str) -> String {
    html_escape(s).replace('"', "&quot;")
}

/// `header` and `rows` as `pdftotext -bbox-layout` reads a PDF a browser printed of the
/// table: every word with its box; cells wrapped to `widths` characters (each at least
/// the column's longest word) and centred vertically in their row; `per_page` rows a
/// page, the header again on each, and the title with the page number at each page's
/// foot. What `pdf_geometry` must read back as the same table.
pub fn render_bbox(
    title: &str,
    header: &[&str],
    rows: &[Vec<String>],
    widths: &[usize],
    per_page: usize,
) -> String {
    let cols = header.len();
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            let longest = std::iter::once(header[i])
                .chain(rows.iter().map(|r| r.get(i).map_or("", String::as_str)))
                .flat_map(str::split_whitespace)
                .map(|w| w.chars().count())
                .max()
                .unwrap_or(1);
            widths.get(i).copied().unwrap_or(12).max(longest).max(1)
        })
        .collect();
    let mut x = Vec::with_capacity(cols);
    let mut at = 20.0;
    for w in &widths {
        x.push(at);
        at += *w as f32 * CHAR_PT + 4.0 * PAD_PT;
    }
    let mut out = String::from(
        "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" \"\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title></title></head><body><doc>\n",
    );
    let word = |out: &mut String, x0: f32, y0: f32, text: &str| {
        out.push_str(&format!(
            "<word xMin=\"{x0:.3}\" yMin=\"{y0:.3}\" xMax=\"{:.3}\" yMax=\"{:.3}\">{}</word>\n",
            x0 + text.chars().count() as f32 * CHAR_PT,
            y0 + LINE_PT,
            xml_escape(text)
        ));
    };
    // One row (or the header): its cells' lines centred in a band from `top`; returns
    // the band's bottom.
    let band = |out: &mut String, top: f32, cells: &[String]| -> f32 {
        let wrapped: Vec<Vec<String>> = (0..cols)
            .map(|i| wrap(cells.get(i).map_or("", String::as_str), widths[i]))
            .collect();
        let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for (i, cell) in wrapped.iter().enumerate() {
            let offset = (lines - cell.len()) as f32 * LINE_PT / 2.0;
            for (k, line) in cell.iter().enumerate() {
                let mut cx = x[i];
                for w in line.split(' ') {
                    word(out, cx, top + PAD_PT + offset + k as f32 * LINE_PT, w);
                    cx += (w.chars().count() + 1) as f32 * CHAR_PT;
                }
            }
        }
        top + 2.0 * PAD_PT + lines as f32 * LINE_PT
    };
    let header_cells: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let pages = rows.len().div_ceil(per_page.max(1)).max(1);
    for page in 0..pages {
        out.push_str("<page width=\"600\" height=\"800\">\n");
        let mut y = 20.0;
        if page == 0 {
            let mut cx = 20.0;
            for w in title.split_whitespace() {
                word(&mut out, cx, y, w);
                cx += (w.chars().count() + 1) as f32 * CHAR_PT;
            }
            y += 3.0 * LINE_PT;
        }
        y = band(&mut out, y, &header_cells);
        for r in rows.iter().skip(page * per_page).take(per_page) {
            y = band(&mut out, y, r);
        }
        // The foot: the title, a gap, the page number.
        let foot = y.max(700.0) + 3.0 * LINE_PT;
        let mut cx = 20.0;
        for w in title.split_whitespace() {
            word(&mut out, cx, foot, w);
            cx += (w.chars().count() + 1) as f32 * CHAR_PT;
        }
        word(&mut out, 560.0, foot, &(page + 1).to_string());
        out.push_str("</page>\n");
    }
    out.push_str("</doc></body></html>\n");
    out
}
