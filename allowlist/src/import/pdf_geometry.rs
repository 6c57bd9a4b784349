//! PDF tables read by geometry: the words of each page with their boxes
//! (`pdftotext -bbox-layout`), laid out into the table's header, rows and cells, then
//! handed to the tab-separated reader as text, one line per row, with where each line
//! came from (page and height) for messages.
//!
//! A browser prints a table with wrapped cells centred vertically in their row: a row's
//! number sits on the middle line of its band, a port range breaks across lines
//! (`20000-` / `45000`), and the header repeats on every page. Text extraction that goes
//! line by line cannot tell which lines belong to which row; the boxes can:
//! - **columns** come from the header's words, grouped into cells by their horizontal
//!   gaps (a wrapped header cell's lines stack), and the boundaries between columns are
//!   moved into the widest gap that no word of the table crosses;
//! - **rows** are the bands the words make top to bottom, separated by vertical gaps
//!   wider than the gap between two lines of one cell; in a numbered table each band
//!   has one number (a band with none at the top of a page continues the row before
//!   it, across the page break; a band with several is split at its widest gaps);
//! - **cells** are a band's words in a column, line by line, joined as wrapped cells are
//!   (`20000-` and `45000` make `20000-45000`);
//! - **page furniture** (the browser's date, title, address and page counter, a title
//!   with its page number, page numbers) above and below the table is recognised and
//!   counted, and every other word is in a cell, a repeated header, the text before or
//!   after the table, or a problem naming its page and position.

use super::{
    Col, Header, Problem,
    account::{artifact, title_footer},
};

/// A word and its box, in points from the page's top left corner.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
    pub text: String,
}

impl Word {
    fn height(&self) -> f32 {
        (self.y1 - self.y0).max(0.1)
    }
    fn cx(&self) -> f32 {
        (self.x0 + self.x1) / 2.0
    }
}

/// One page's words.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub words: Vec<Word>,
}

/// Where a line of the laid-out text came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Origin {
    /// 1-based page.
    pub page: u32,
    /// Points from the page's top to the line's top.
    pub y: f32,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "page {}, {:.0} pt from the top", self.page, self.y)
    }
}

/// The table as tab-separated text (`import_text` reads it), with the origin of each of
/// its lines (`origins[line - 1]`), and what the geometry itself could not place.
#[derive(Debug, Clone, PartialEq)]
pub struct LaidOut {
    pub text: String,
    pub origins: Vec<Origin>,
    /// Bands that belong to no row; `line` is the line of the text they stand at.
    pub problems: Vec<Problem>,
    /// Lines of page furniture (the browser's date, title, address and page counter, a
    /// title with its page number, page numbers) found and left out of `text`.
    pub furniture: usize,
}

/// Reads `pdftotext -bbox-layout` output (XHTML): every `<word>` of every `<page>`.
pub fn parse_bbox(xhtml: &str) -> Vec<Page> {
    let doc = scraper::Html::parse_document(xhtml);
    let page_sel = scraper::Selector::parse("page").expect("a valid selector");
    let word_sel = scraper::Selector::parse("word").expect("a valid selector");
    let coord = |w: &scraper::ElementRef<'_>, name: &str| {
        w.value()
            .attr(name)
            .and_then(|v| v.parse::<f32>().ok())
            .filter(|v| v.is_finite())
    };
    doc.select(&page_sel)
        .map(|page| Page {
            words: page
                .select(&word_sel)
                .filter_map(|w| {
                    let text: String = w.text().collect::<String>().trim().to_string();
                    let word = Word {
                        x0: coord(&w, "xmin")?,
                        y0: coord(&w, "ymin")?,
                        x1: coord(&w, "xmax")?,
                        y1: coord(&w, "ymax")?,
                        text,
                    };
                    (!word.text.is_empty() && word.x1 >= word.x0 && word.y1 >= word.y0)
                        .then_some(word)
                })
                .collect(),
        })
        .collect()
}

/// Words that share a text line: their vertical boxes overlap by most of the smaller one.
fn text_lines(words: &[Word]) -> Vec<Vec<Word>> {
    let mut sorted: Vec<Word> = words.to_vec();
    sorted.sort_by(|a, b| a.y0.total_cmp(&b.y0).then(a.x0.total_cmp(&b.x0)));
    let mut lines: Vec<Vec<Word>> = Vec::new();
    for w in sorted {
        let joins = lines.last().is_some_and(|l: &Vec<Word>| {
            let (top, bottom) = span(l);
            let overlap = bottom.min(w.y1) - top.max(w.y0);
            overlap > 0.6 * w.height().min(bottom - top)
        });
        if joins {
            lines.last_mut().expect("checked").push(w);
        } else {
            lines.push(vec![w]);
        }
    }
    for l in &mut lines {
        l.sort_by(|a, b| a.x0.total_cmp(&b.x0));
    }
    lines
}

fn span(words: &[Word]) -> (f32, f32) {
    words
        .iter()
        .fold((f32::MAX, f32::MIN), |(t, b), w| (t.min(w.y0), b.max(w.y1)))
}

fn line_text(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Words grouped into bands top to bottom: a new band starts where the gap below every
/// word so far exceeds `gap`.
fn bands(words: &[Word], gap: f32) -> Vec<Vec<Word>> {
    let mut sorted: Vec<Word> = words.to_vec();
    sorted.sort_by(|a, b| a.y0.total_cmp(&b.y0));
    let mut out: Vec<Vec<Word>> = Vec::new();
    let mut bottom = f32::MIN;
    for w in sorted {
        if out.is_empty() || w.y0 - bottom > gap {
            out.push(Vec::new());
        }
        bottom = bottom.max(w.y1);
        out.last_mut().expect("pushed").push(w);
    }
    out
}

/// The gaps a band's words leave top to bottom: (where, how wide).
fn inner_gaps(words: &[Word]) -> Vec<(f32, f32)> {
    let mut sorted: Vec<&Word> = words.iter().collect();
    sorted.sort_by(|a, b| a.y0.total_cmp(&b.y0));
    let mut gaps = Vec::new();
    let mut bottom = f32::MIN;
    for w in sorted {
        if bottom > f32::MIN && w.y0 > bottom {
            gaps.push(((w.y0 + bottom) / 2.0, w.y0 - bottom));
        }
        bottom = bottom.max(w.y1);
    }
    gaps
}

/// A header band's words grouped into cells: words closer than `gap` on a line, and the
/// lines of a wrapped cell (their words overlap horizontally), make one cell.
fn header_cells(words: &[Word], gap: f32) -> Vec<Vec<Word>> {
    let mut sorted: Vec<Word> = words.to_vec();
    sorted.sort_by(|a, b| a.x0.total_cmp(&b.x0));
    let mut cells: Vec<(f32, Vec<Word>)> = Vec::new();
    for w in sorted {
        match cells.last_mut() {
            Some((right, cell)) if w.x0 - *right <= gap => {
                *right = right.max(w.x1);
                cell.push(w);
            }
            _ => cells.push((w.x1, vec![w])),
        }
    }
    cells.into_iter().map(|(_, c)| c).collect()
}

/// A cell's words in reading order: line by line, with a space between lines, except
/// after a line that ends in a hyphen or a slash: a browser breaks a word there ("20000-"
/// / "45000", "Intra-" / "cluster", "requests/" / "events"). (Not the text readers' `append`: the words here are
/// exact, with no extractor's early parenthesis to undo.)
fn cell_text(words: &[Word]) -> String {
    let mut text = String::new();
    for line in text_lines(words) {
        let broken_word = text.len() > 1
            && text.ends_with(['-', '/'])
            && !text.ends_with(" -")
            && !text.ends_with(" /");
        if !text.is_empty() && !broken_word {
            text.push(' ');
        }
        text.push_str(&line_text(&line));
    }
    text
}

/// The header a band makes, if any: its cells (left to right) and the header they name.
/// Tries cell gaps from tight to loose and keeps the loosest that names the most columns
/// (a tighter one only splits a header cell's words into ignored columns).
fn header_of(words: &[Word], height: f32) -> Option<(Vec<Vec<Word>>, Header)> {
    let mut best: Option<(usize, Vec<Vec<Word>>, Header)> = None;
    for factor in [0.2f32, 0.35, 0.5, 0.7, 0.9, 1.2] {
        let cells = header_cells(words, factor * height);
        let texts: Vec<String> = cells.iter().map(|c| cell_text(c)).collect();
        // A header's cells each name a column, but for one at most (an extra column the
        // importer ignores): a sentence that mentions the columns is no header.
        let unnamed = texts
            .iter()
            .filter(|t| super::header::column_of(t).is_none())
            .count();
        if unnamed > 1 {
            continue;
        }
        if let Some(h) = Header::of(&texts, 0) {
            let named = h.columns.iter().flatten().count();
            if best.as_ref().is_none_or(|(n, _, _)| named >= *n) {
                best = Some((named, cells, h));
            }
        }
    }
    best.map(|(_, c, h)| (c, h))
}

fn median(mut v: Vec<f32>) -> f32 {
    if v.is_empty() {
        return 10.0;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// Lays out the table the pages' words make. None when no band of any page names the
/// needed columns (the caller may read the PDF another way).
pub fn lay_out(pages: &[Page]) -> Option<LaidOut> {
    let height = median(
        pages
            .iter()
            .flat_map(|p| p.words.iter().map(Word::height))
            .collect(),
    );
    // Two lines of one cell are about a line's height apart with no gap between their
    // boxes; rows are separated by padding and borders. (A CSS line-height well above
    // normal opens gaps inside cells too: their lines then read as bands of their own,
    // and a band that belongs to no row is an error, never joined to a guess.)
    let row_gap = 0.12 * height;
    // The header: the first band, on any page, that names the columns.
    let (header_page, header_idx, cells, header) =
        pages.iter().enumerate().find_map(|(p, page)| {
            bands(&page.words, row_gap)
                .iter()
                .enumerate()
                .find_map(|(i, b)| header_of(b, height).map(|(c, h)| (p, i, c, h)))
        })?;
    let mut out = Writer::default();
    let header_texts: Vec<String> = cells.iter().map(|c| cell_text(c)).collect();
    let header_band = &bands(&pages[header_page].words, row_gap)[header_idx];
    let header_top = span(header_band).0;
    let header_height = span(header_band).1 - header_top;
    // Text before the table, on the pages before it and above its header (the title
    // among it); the furniture above the header goes after the header line, where the
    // reader counts it. The pages before the table's are what precedes it, as lines
    // before a text table's header are.
    for (p, page) in pages.iter().enumerate().take(header_page) {
        for line in text_lines(&page.words) {
            let text = line_text(&line);
            if artifact(&text).is_none() {
                out.line(&text, p, &line);
            }
        }
    }
    let mut furniture_above = Vec::new();
    for line in text_lines(&pages[header_page].words) {
        if span(&line).1 <= header_top {
            let text = line_text(&line);
            if artifact(&text).is_none() {
                out.line(&text, header_page, &line);
            } else {
                furniture_above.push(line);
            }
        }
    }
    // The titles a footer may repeat: the document's, as the text before the table gives
    // it, and the page's `<title>`, as a browser prints it above every page.
    let titles: Vec<String> = out
        .title()
        .into_iter()
        .chain(
            furniture_above
                .iter()
                .find_map(|l| super::account::browser_header_title(&line_text(l))),
        )
        .collect();
    out.line(&header_texts.join("\t"), header_page, header_band);
    for line in &furniture_above {
        out.furniture(header_page, line);
    }
    let is_furniture = |l: &Vec<Word>| {
        let text = line_text(l);
        artifact(&text).is_some() || titles.iter().any(|t| title_footer(Some(t), &text))
    };
    // The table's words: below the header, and not the furniture above and below it on
    // each page (a page's leading and trailing lines that are furniture).
    let mut pages_body: Vec<(Vec<Vec<Word>>, Vec<Word>)> = Vec::new();
    for (p, page) in pages.iter().enumerate().skip(header_page) {
        let lines: Vec<Vec<Word>> = text_lines(&page.words)
            .into_iter()
            .filter(|l| {
                p != header_page
                    || span(l).0 > header_top + 0.01 && !header_band_holds(header_band, l)
            })
            .collect();
        // Furniture sits in the margins: a leading or trailing band of the page all of
        // whose lines are furniture. A line alone inside a row's band ("9443" under
        // "8443,") is never furniture, whatever it looks like.
        let words: Vec<Word> = lines.iter().flatten().cloned().collect();
        let page_bands = bands(&words, row_gap);
        let all_furniture = |b: &Vec<Word>| text_lines(b).iter().all(&is_furniture);
        // At a page's top a number alone is the end of a wrapped cell ("9443" after
        // "8443,") more often than a page number, which browsers print at the foot.
        let lone_number =
            |b: &Vec<Word>| b.len() == 1 && b[0].text.chars().all(|c| c.is_ascii_digit());
        let lead = page_bands
            .iter()
            .take_while(|b| all_furniture(b) && !lone_number(b))
            .count();
        let trail = page_bands
            .iter()
            .rev()
            .take_while(|b| all_furniture(b))
            .count()
            .min(page_bands.len() - lead);
        let furniture: Vec<Vec<Word>> = page_bands[..lead]
            .iter()
            .chain(&page_bands[page_bands.len() - trail..])
            .flat_map(|b| text_lines(b))
            .collect();
        let body: Vec<Word> = page_bands[lead..page_bands.len() - trail]
            .iter()
            .flatten()
            .cloned()
            .collect();
        pages_body.push((furniture, body));
    }
    let table_words: Vec<&Word> = header_band
        .iter()
        .chain(pages_body.iter().flat_map(|(_, b)| b))
        .collect();
    let bounds = boundaries(&cells, &table_words);
    let number_col = header.columns.iter().position(|c| *c == Some(Col::Number));

    // Every band below the header, page by page.
    let mut rows: Vec<Band> = Vec::new();
    for (k, (furniture, body)) in pages_body.iter().enumerate() {
        let p = header_page + k;
        for l in furniture {
            rows.push(Band::Furniture(p, l.clone()));
        }
        let mut first_on_page = true;
        let mut headed = false;
        for band in bands(body, row_gap) {
            let by_col = in_columns(&band, &bounds);
            let texts: Vec<String> = by_col.iter().map(|ws| cell_text(ws)).collect();
            if texts == header_texts {
                rows.push(Band::Header(p, band));
                headed = true;
                continue;
            }
            // A repeated header with no gap below it, and the first row on the page (or
            // its continuation) in the same band: the header's height cuts it off.
            let band = match cut_header(&band, header_height, &bounds, &header_texts) {
                Some((head, rest)) => {
                    rows.push(Band::Header(p, head));
                    headed = true;
                    rest
                }
                None => band,
            };
            let by_col = in_columns(&band, &bounds);
            let numbers = number_col.map_or(1, |n| count_numbers(&by_col[n]));
            let parts = if numbers > 1 {
                split_band(&band, numbers, &bounds, number_col)
            } else {
                vec![band]
            };
            for part in parts {
                rows.push(Band::Row(p, part, first_on_page, headed));
                first_on_page = false;
            }
        }
    }
    rows.sort_by(|a, b| a.page().cmp(&b.page()).then(a.top().total_cmp(&b.top())));
    let last_numbered = rows.iter().rposition(|b| match b {
        Band::Row(_, words, _, _) => {
            number_col.is_none_or(|n| count_numbers(&in_columns(words, &bounds)[n]) > 0)
        }
        _ => false,
    });
    for (i, band) in rows.iter().enumerate() {
        match band {
            Band::Furniture(p, l) => out.furniture(*p, l),
            Band::Header(p, b) => out.line(&header_texts.join("\t"), *p, b),
            Band::Row(p, words, first_on_page, headed) => {
                let by_col = in_columns(words, &bounds);
                let texts: Vec<String> = by_col
                    .iter()
                    .map(|ws| cell_text(ws).replace(['\t', '\n'], " "))
                    .collect();
                let numbered = number_col.is_none_or(|n| !texts[n].is_empty());
                if Header::of(&texts, 0).is_some() {
                    // The reader would take it for a repeated header and drop the rest.
                    out.refuse(
                        *p,
                        words,
                        format!(
                            "a band that reads like the header but is not exactly it (words of a row may be in it): {:?}",
                            texts.join(" | ")
                        ),
                    );
                    continue;
                }
                // Past the last numbered row, only a band under a repeated header is the
                // last row continued; otherwise it is the text that follows the table.
                let continues = *first_on_page
                    && !numbered
                    && (last_numbered.is_some_and(|last| i <= last) || *headed);
                // Text after the table starts at its left edge; a band past the last row
                // with nothing under the number column is a row's cells, split off.
                let remnant = number_col.is_some_and(|n| texts[n].is_empty());
                let after_table = last_numbered.is_none_or(|last| i > last);
                if after_table && !continues && !remnant {
                    // Prose after the table: a blank line first, so that no reader takes
                    // it for the last row's wrapped cell.
                    out.blank(*p, words);
                    for l in text_lines(words) {
                        out.line(&line_text(&l), *p, &l);
                    }
                } else if numbered || continues {
                    // A numberless band at the top of a page: the row before it, continued
                    // across the page break (the tab-separated reader joins it).
                    out.line(&texts.join("\t"), *p, words);
                } else {
                    // Left out of the text (no reader may join it to a row), reported here.
                    out.refuse(
                        *p,
                        words,
                        format!(
                            "text between two rows belongs to neither (it has no connection number, and it does not start a page): {:?}; if many lines say this, the page was printed with a line height wider than normal, which parts a cell's lines like rows: import the page's HTML instead, or print it with a normal line height",
                            texts.iter().filter(|t| !t.is_empty()).cloned().collect::<Vec<_>>().join(" | ")
                        ),
                    );
                }
            }
        }
    }
    Some(LaidOut {
        text: out.text,
        origins: out.origins,
        problems: out.problems,
        furniture: out.furniture,
    })
}

/// A band that starts with the header (its cells begin with the header's) split into the
/// header, as tall as the first one, and the rest; None when it is not such a band.
fn cut_header(
    band: &[Word],
    height: f32,
    bounds: &[f32],
    header: &[String],
) -> Option<(Vec<Word>, Vec<Word>)> {
    let texts: Vec<String> = in_columns(band, bounds)
        .iter()
        .map(|w| cell_text(w))
        .collect();
    if !texts
        .iter()
        .zip(header)
        .all(|(t, h)| t.starts_with(h.as_str()))
    {
        return None;
    }
    let top = span(band).0;
    let (head, rest): (Vec<Word>, Vec<Word>) = band
        .iter()
        .cloned()
        .partition(|w| w.y1 <= top + height + 0.5);
    let head_texts: Vec<String> = in_columns(&head, bounds)
        .iter()
        .map(|w| cell_text(w))
        .collect();
    (head_texts == header && !rest.is_empty()).then_some((head, rest))
}

/// Whether a text line of the header's page is part of the header band itself.
fn header_band_holds(band: &[Word], line: &[Word]) -> bool {
    line.iter().all(|w| band.contains(w))
}

enum Band {
    Furniture(usize, Vec<Word>),
    Header(usize, Vec<Word>),
    /// A row's words, whether it is the first band of its page's table, and whether a
    /// repeated header came before it on its page.
    Row(usize, Vec<Word>, bool, bool),
}

impl Band {
    fn page(&self) -> usize {
        match self {
            Band::Furniture(p, _) | Band::Header(p, _) | Band::Row(p, _, _, _) => *p,
        }
    }
    fn top(&self) -> f32 {
        match self {
            Band::Furniture(_, w) | Band::Header(_, w) | Band::Row(_, w, _, _) => span(w).0,
        }
    }
}

/// The laid-out text and its origins, line by line.
#[derive(Default)]
struct Writer {
    text: String,
    origins: Vec<Origin>,
    problems: Vec<Problem>,
    furniture: usize,
}

impl Writer {
    fn line(&mut self, text: &str, page: usize, words: &[Word]) {
        self.text.push_str(text);
        self.text.push('\n');
        self.origins.push(Origin {
            page: page as u32 + 1,
            y: span(words).0,
        });
    }
    fn blank(&mut self, page: usize, words: &[Word]) {
        self.line("", page, words);
    }
    /// A band no row may take: left out of the text (a blank line, so no reader joins
    /// it to a row) and reported at its place.
    fn refuse(&mut self, page: usize, words: &[Word], message: String) {
        self.blank(page, words);
        let line = self.origins.len() as u32;
        self.problems.push(Problem { line, message });
    }
    /// Page furniture: counted here and left out of the text (a blank line), so that no
    /// reader, which knows fewer titles than the pages show, takes it for a cell.
    fn furniture(&mut self, page: usize, words: &[Word]) {
        self.furniture += 1;
        self.blank(page, words);
    }
    /// The document's title, as the text reader will find it in the lines so far.
    fn title(&self) -> Option<String> {
        super::header::title_in(&self.text.lines().collect::<Vec<_>>())
    }
}

/// Where each column ends (x), from the header cells: between two cells, the position
/// the fewest of the table's words cross (the middle of the widest such run), so that a
/// centred header or a stray long line does not move it into a column.
fn boundaries(cells: &[Vec<Word>], table: &[&Word]) -> Vec<f32> {
    const STEP: f32 = 0.5;
    cells
        .windows(2)
        .map(|pair| {
            let left_end = pair[0].iter().map(|w| w.x1).fold(f32::MIN, f32::max);
            let right_start = pair[1].iter().map(|w| w.x0).fold(f32::MAX, f32::min);
            let steps = (((right_start - left_end) / STEP).max(0.0) as usize).min(1_000);
            let mut best = (usize::MAX, 0usize, left_end, left_end);
            let mut run: Option<(usize, f32)> = None;
            for i in 0..=steps {
                let x = left_end + i as f32 * STEP;
                let crossing = table.iter().filter(|w| w.x0 < x && x < w.x1).count();
                match run {
                    Some((c, _)) if c == crossing => {}
                    _ => run = Some((crossing, x)),
                }
                let (c, start) = run.expect("set");
                let len = ((x - start) / STEP) as usize;
                if c < best.0 || c == best.0 && len > best.1 {
                    best = (c, len, start, x);
                }
            }
            (best.2 + best.3) / 2.0
        })
        .collect()
}

/// A band's words by column (the column whose span holds the word's centre).
fn in_columns(words: &[Word], bounds: &[f32]) -> Vec<Vec<Word>> {
    let mut cols = vec![Vec::new(); bounds.len() + 1];
    for w in words {
        let c = bounds
            .iter()
            .position(|b| w.cx() < *b)
            .unwrap_or(bounds.len());
        cols[c].push(w.clone());
    }
    cols
}

/// How many connection numbers a number column's words hold.
fn count_numbers(words: &[Word]) -> usize {
    words
        .iter()
        .filter(|w| {
            w.text
                .trim_end_matches('.')
                .trim_start_matches('#')
                .parse::<u32>()
                .is_ok()
        })
        .count()
}

/// A band holding `n` rows (no visible gap between them): split at its `n - 1` widest
/// inner gaps, if that leaves one number in each part; else the band stays whole (and
/// its row reports the numbers it holds).
fn split_band(
    words: &[Word],
    n: usize,
    bounds: &[f32],
    number_col: Option<usize>,
) -> Vec<Vec<Word>> {
    let mut gaps = inner_gaps(words);
    gaps.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut cuts: Vec<f32> = gaps.iter().take(n - 1).map(|g| g.0).collect();
    cuts.sort_by(f32::total_cmp);
    let mut parts: Vec<Vec<Word>> = vec![Vec::new(); cuts.len() + 1];
    for w in words {
        let i = cuts.iter().position(|c| w.y0 < *c).unwrap_or(cuts.len());
        parts[i].push(w.clone());
    }
    let one_each = number_col.is_some_and(|c| {
        parts
            .iter()
            .all(|p| count_numbers(&in_columns(p, bounds)[c]) == 1)
    });
    if cuts.len() == n - 1 && one_each {
        parts
    } else {
        vec![words.to_vec()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{Options, import_text, render::render_bbox};

    /// A table that starts on the second page: the first page's text comes before it
    /// (the title among it), and the title-and-page footers of the table's pages are
    /// furniture, counted.
    #[test]
    fn a_table_on_a_later_page_keeps_the_first_pages_title() {
        let header = ["Connection", "Source", "Destination", "Protocol", "Port"];
        let rows: Vec<Vec<String>> = (1..=6)
            .map(|i| {
                vec![
                    i.to_string(),
                    "Voice Agent".into(),
                    "Redis".into(),
                    "TCP".into(),
                    "20000-45000".into(),
                ]
            })
            .collect();
        let table = render_bbox("Voice Platform", &header, &rows, &[4, 6, 6, 4, 6], 3);
        let cover = "<page width=\"600\" height=\"800\">\
            <word xMin=\"20\" yMin=\"20\" xMax=\"45\" yMax=\"30\">Voice</word>\
            <word xMin=\"50\" yMin=\"20\" xMax=\"90\" yMax=\"30\">Platform</word>\
            <word xMin=\"20\" yMin=\"60\" xMax=\"60\" yMax=\"70\">Overview.</word></page>";
        let xhtml = table.replacen("<page ", &format!("{cover}<page "), 1);
        let laid = lay_out(&parse_bbox(&xhtml)).expect("a header");
        assert!(laid.problems.is_empty(), "{:?}", laid.problems);
        let got = import_text(&laid.text, None, Options::default()).expect("imports");
        assert_eq!(got.allowlist.connections.len(), 6, "{}", laid.text);
        assert_eq!(
            got.allowlist.document.title.as_deref(),
            Some("Voice Platform")
        );
        // Each of the table's two pages has the title and its number at the foot (and
        // the first table page repeats the title above the header).
        assert!(laid.furniture >= 2, "{}", laid.text);
        assert_eq!(laid.origins[0].page, 1);
    }
}
