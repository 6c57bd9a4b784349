//! Single-spaced rows: text copied from a PDF viewer or a rendered page, where one space
//! separates the cells and the words of a cell alike:
//! `1 Customer browser Genesys Authentication HTTPS 8095 Intra-cluster Designer has …`.
//!
//! The cells that have a vocabulary anchor the row: the number, the protocol (every part
//! a known protocol), the port (what `parse_ports` reads) and the classification. The
//! free cells between them take the words left. Where two free cells meet (the source
//! and the destination), the known service names say where one ends: names given with
//! `--services`, and names learned from the table's other rows (a row whose two names are
//! one word each, which splits only one way). A row that splits one way into known names
//! is read; a row that splits two ways, or into no known names, is a problem at its line
//! naming the readings and `--services`. Nothing is guessed: a split with a name the list
//! lacks could be a known name's longer neighbour.

use std::collections::BTreeSet;

use super::{
    Col, Format, Header,
    row::parse_ports,
    table::{Item, Line, Table},
};
use crate::{model::Classification, names};

/// Header words that may follow a column's name inside its cell ("Source service").
const HEADER_TAILS: [&str; 9] = [
    "service", "services", "port", "ports", "#", "no.", "number", "type", "name",
];

/// A single-spaced header line: each cell starts with a word naming a new column; only
/// the last cell ("Data that travels on this connection") may run on. None when the
/// line is not such a header.
pub(crate) fn header(line: &str, line_no: u32) -> Option<(Header, Vec<String>)> {
    if line.contains('\t') || line.contains("  ") {
        return None;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut cells: Vec<Vec<&str>> = Vec::new();
    let mut seen = BTreeSet::new();
    for w in &words {
        match super::header::column_of(w) {
            Some(col) if seen.insert(col) => cells.push(vec![w]),
            _ => cells.last_mut()?.push(w),
        }
    }
    let n = cells.len();
    let ok = cells.iter().enumerate().all(|(i, c)| {
        i + 1 == n
            || c.len() == 1
            || (c.len() == 2 && HEADER_TAILS.contains(&c[1].to_lowercase().as_str()))
    });
    if !ok {
        return None;
    }
    let texts: Vec<String> = cells.iter().map(|c| c.join(" ")).collect();
    Header::of(&texts, line_no).map(|h| (h, texts))
}

/// How a column's cell is found among a row's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Protocol,
    Port,
    Classification,
    /// Any words: source, destination, description, an ignored column.
    Free,
}

fn kind(col: Option<Col>) -> Kind {
    match col {
        Some(Col::Number) => Kind::Number,
        Some(Col::Protocol | Col::Transport) => Kind::Protocol,
        Some(Col::Port) => Kind::Port,
        Some(Col::Classification) => Kind::Classification,
        _ => Kind::Free,
    }
}

/// The most words a port or classification cell takes ("Not known (configured as trunk
/// DN level in customer)").
const MAX_ANCHOR_WORDS: usize = 12;
/// Readings of one row beyond which it is refused as ambiguous anyway.
const MAX_READINGS: usize = 8;

fn matches(kind: Kind, words: &[&str]) -> bool {
    let text = words.join(" ");
    let shaped = match kind {
        Kind::Number => {
            words.len() == 1
                && text
                    .trim_end_matches('.')
                    .trim_start_matches('#')
                    .parse::<u32>()
                    .is_ok()
        }
        Kind::Protocol => words.len() == 1 && names::is_known_protocol(&text),
        Kind::Port => {
            // A bare word is never a port cell unless the port grammar names it ("Any").
            words.iter().any(|w| w.chars().any(|c| c.is_ascii_digit()))
                || matches!(
                    text.to_lowercase().as_str(),
                    "any" | "all" | "n/a" | "na" | "none"
                )
                || text.to_lowercase().starts_with("not known")
                || text.to_lowercase().starts_with("unknown")
        }
        Kind::Classification => words.len() <= 2 && Classification::parse_list(&text).is_some(),
        Kind::Free => true,
    };
    shaped && (kind != Kind::Port || parse_ports(&text).is_ok())
}

/// One way to read a row: each column's words (a run of free columns as one group, split
/// by names later).
type Reading = Vec<Vec<String>>;

/// Every reading of `words` against the columns, up to `MAX_READINGS`. Adjacent free
/// columns are one group here (index of its first column); they are split by names.
fn readings(kinds: &[Kind], words: &[&str]) -> Vec<Reading> {
    fn go(
        kinds: &[Kind],
        words: &[&str],
        col: usize,
        at: usize,
        acc: &mut Vec<Vec<String>>,
        out: &mut Vec<Reading>,
    ) {
        if out.len() >= MAX_READINGS {
            return;
        }
        if col == kinds.len() {
            if at == words.len() {
                out.push(acc.clone());
            }
            return;
        }
        let left = words.len() - at;
        let free_run = kinds[col..]
            .iter()
            .take_while(|k| **k == Kind::Free)
            .count();
        let (min, max) = match kinds[col] {
            // The last free column takes what is left, nothing included (an empty
            // description); a run of free columns one word per column at least.
            Kind::Free if col + free_run == kinds.len() => {
                if left < free_run && free_run > 1 {
                    return;
                }
                (left, left)
            }
            Kind::Free => (free_run, left),
            Kind::Number | Kind::Protocol => (1, 1),
            Kind::Classification => (1, 2),
            Kind::Port => (1, MAX_ANCHOR_WORDS),
        };
        let run = if kinds[col] == Kind::Free {
            kinds[col..]
                .iter()
                .take_while(|k| **k == Kind::Free)
                .count()
        } else {
            1
        };
        for n in min..=max.min(words.len() - at) {
            let taken = &words[at..at + n];
            if kinds[col] != Kind::Free && !matches(kinds[col], taken) {
                continue;
            }
            acc.push(vec![taken.join(" ")]);
            // A run of free columns is one group: its later columns take nothing here.
            for _ in 1..run {
                acc.push(Vec::new());
            }
            go(kinds, words, col + run, at + n, acc, out);
            for _ in 0..run {
                acc.pop();
            }
        }
    }
    let mut out = Vec::new();
    go(kinds, words, 0, 0, &mut Vec::new(), &mut out);
    out
}

/// A row read up to the split of its names: its cells, and the group of free columns to
/// split (first column, how many, the words).
struct Parsed {
    line: u32,
    cells: Vec<String>,
    split: Option<(usize, usize, Vec<String>)>,
}

fn key(name: &str) -> String {
    names::clean(name).to_lowercase()
}

/// The splits of `words` into `parts` names that `known` explains: every part a known
/// name, or the only split there is (one word per part).
fn splits(words: &[String], parts: usize, known: &BTreeSet<String>) -> Vec<Vec<String>> {
    fn cuts(n: usize, parts: usize) -> Vec<Vec<usize>> {
        if parts == 1 {
            return vec![vec![n]];
        }
        (1..n)
            .flat_map(|k| {
                cuts(n - k, parts - 1).into_iter().map(move |mut rest| {
                    rest.insert(0, k);
                    rest
                })
            })
            .collect()
    }
    let all: Vec<Vec<String>> = cuts(words.len(), parts)
        .into_iter()
        .map(|lens| {
            let mut at = 0;
            lens.iter()
                .map(|l| {
                    let s = words[at..at + l].join(" ");
                    at += l;
                    s
                })
                .collect()
        })
        .collect();
    // A name is known as written or by its base ("Redis 6.x" is Redis, "Tenant Service
    // (Voice Config Service)" is Tenant Service), as the importer names services.
    let is_known = |p: &String| {
        known.contains(&key(p)) || known.contains(&key(&super::row::endpoint_names(p).0))
    };
    if all.len() == 1 {
        // One word per name: the only split there is.
        return all;
    }
    let known_parts = |s: &Vec<String>| s.iter().filter(|p| is_known(p)).count();
    // Every part a known name: a split with an unknown part would be a guess (a known
    // name may be the start of a longer one the list lacks).
    all.into_iter()
        .filter(|s| known_parts(s) == parts)
        .collect()
}

pub(crate) fn read(
    header: Header,
    header_cells: Vec<String>,
    rest: &[&str],
    first: u32,
    services: &[String],
    title: Option<&str>,
) -> Table {
    let kinds: Vec<Kind> = header.columns.iter().map(|c| kind(*c)).collect();
    let numbered = header.has(Col::Number);
    let mut items: Vec<Line> = Vec::new();
    let mut parsed: Vec<(usize, Parsed)> = Vec::new();
    // Lines no reading fits (in an unnumbered table, a wrapped row's other line).
    let mut unreadable: BTreeSet<usize> = BTreeSet::new();
    for (k, text) in rest.iter().enumerate() {
        let line = first + k as u32;
        let words: Vec<&str> = text.split_whitespace().collect();
        let item = if words.is_empty() {
            Item::Blank
        } else if words.join(" ") == header_cells.join(" ") {
            Item::Cells(header_cells.clone())
        } else if numbered && !matches(Kind::Number, &words[..1]) {
            // Not a row: a wrapped line of the row before, furniture, or prose.
            Item::Loose(text.to_string())
        } else {
            let found = readings(&kinds, &words);
            match found.as_slice() {
                [one] => {
                    let run_at = (0..kinds.len())
                        .find(|&c| kinds[c] == Kind::Free && kinds.get(c + 1) == Some(&Kind::Free));
                    let cells: Vec<String> = one.iter().map(|c| c.join(" ")).collect();
                    let split = run_at.map(|c| {
                        let run = kinds[c..].iter().take_while(|k| **k == Kind::Free).count();
                        let words = cells[c].split(' ').map(str::to_string).collect();
                        (c, run, words)
                    });
                    parsed.push((items.len(), Parsed { line, cells, split }));
                    Item::Joined
                }
                [] => {
                    unreadable.insert(items.len());
                    Item::Refused(format!(
                        "a single-spaced row whose cells cannot be told apart: expected {} (the protocol one of the known protocols, the port a port, list or range, the classification Intra-cluster, Egress or Ingress); found {:?}",
                        header.describe(", "),
                        text.trim()
                    ))
                }
                many => Item::Refused(format!(
                    "a single-spaced row that reads {} ways ({}); separate its cells with tabs or two spaces",
                    many.len(),
                    many.iter()
                        .take(2)
                        .map(|r| r
                            .iter()
                            .map(|c| c.join(" "))
                            .collect::<Vec<_>>()
                            .join(" | "))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )),
            }
        };
        items.push(Line { line, item });
    }
    // The names: given, then learned from rows that split one way, until none is left.
    let mut known: BTreeSet<String> = services.iter().map(|s| key(s)).collect();
    let mut settled: Vec<Option<Vec<String>>> = vec![None; parsed.len()];
    loop {
        let mut learned = false;
        for (i, (_, p)) in parsed.iter().enumerate() {
            let Some((_, run, words)) = &p.split else {
                continue;
            };
            if settled[i].is_some() {
                continue;
            }
            let s = splits(words, *run, &known);
            if let [one] = s.as_slice() {
                for name in one {
                    learned |= known.insert(key(name));
                }
                settled[i] = Some(one.clone());
            }
        }
        if !learned {
            break;
        }
    }
    for (i, (at, p)) in parsed.iter().enumerate() {
        let Parsed { line, cells, split } = p;
        // A row whose line before or after is not a row, furniture or blank wrapped onto
        // it (a viewer copies a centred row's first lines above its number): its words
        // cannot be placed in their cells, so none of those lines is read.
        let wrapped = |k: Option<usize>| match k.and_then(|k| items.get(k).map(|l| (k, l))) {
            Some((
                _,
                Line {
                    item: Item::Loose(text),
                    ..
                },
            )) => {
                super::account::artifact(text).is_none()
                    && !super::account::title_footer(title, text)
            }
            Some((k, _)) => unreadable.contains(&k),
            None => false,
        };
        let neighbour = if wrapped(Some(at + 1)) {
            Some(at + 1)
        } else if wrapped(at.checked_sub(1)) {
            at.checked_sub(1)
        } else {
            None
        };
        if let Some(next) = neighbour.map(|k| rest[k].to_string()) {
            items[*at] = Line {
                line: *line,
                item: Item::Refused(format!(
                    "this row goes on on the line next to it ({:?}): in single-spaced text a wrapped row's words cannot be placed in their cells; join the row's lines, or give the table with its cells separated (tabs, or the PDF itself)",
                    next.trim()
                )),
            };
            continue;
        }
        let item = match (split, &settled[i]) {
            (None, _) => Item::Cells(cells.clone()),
            (Some((c, _, _)), Some(names)) => {
                let mut cells = cells.clone();
                for (k, name) in names.iter().enumerate() {
                    cells[c + k] = name.clone();
                }
                Item::Cells(cells)
            }
            (Some((c, run, words)), None) => {
                let cols: Vec<&str> = header.columns[*c..c + run]
                    .iter()
                    .map(|col| col.map_or("(ignored)", Col::name))
                    .collect();
                let readings = splits(words, *run, &known);
                Item::Refused(if readings.is_empty() {
                    format!(
                        "where the {} end in {:?} is not known: no service name in it is known from the table's other rows; give the services' names with --services FILE (one per line, or an inventory)",
                        cols.join(" and "),
                        words.join(" ")
                    )
                } else {
                    format!(
                        "{:?} reads {} ways as {}: {}; {}",
                        words.join(" "),
                        readings.len(),
                        cols.join(" → "),
                        readings
                            .iter()
                            .take(3)
                            .map(|r| r
                                .iter()
                                .map(|n| format!("{n:?}"))
                                .collect::<Vec<_>>()
                                .join(" → "))
                            .collect::<Vec<_>>()
                            .join(", or "),
                        if services.is_empty() {
                            "give the services' names with --services FILE (one per line, or an inventory) to tell"
                        } else {
                            "the --services names allow each: one of them is the start of another's name, so the row cannot be told; separate its cells with tabs"
                        }
                    )
                })
            }
        };
        items[*at] = Line { line: *line, item };
    }
    let expected = format!("a single-spaced row ({})", header.describe(", "));
    Table {
        format: Format::Spaced,
        header,
        items,
        joins_continuations: true,
        expected,
        title: None,
    }
}
