//! An error in a file the user gave us, at `FILE:LINE:COLUMN`, and the YAML reader's
//! errors put in our words: the line to look at (where an unclosed `[` or quote opened,
//! the second of two equal keys) and what to fix, not the parser's state or its advice
//! to programmers.

use serde_saphyr::{Error as YamlError, ExternalMessageSource, Spanned, granit_parser::ErrorKind};

/// An error in a file the user gave us, with where it is: `FILE:LINE:COLUMN: message`,
/// or `FILE: message` when it concerns the whole file (line 0: it cannot be read, say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", position(*.line, *.column))]
pub struct FileError {
    pub origin: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

fn position(line: u64, column: u64) -> String {
    match (line, column) {
        (0, _) => String::new(),
        (l, 0) => format!(":{l}"),
        (l, c) => format!(":{l}:{c}"),
    }
}

impl FileError {
    /// A YAML reading error in `text` (the file's content, to find where a fault began).
    pub fn from_saphyr(origin: &str, text: &str, e: &YamlError) -> FileError {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        let (line, column, message) = match explain(text, e.without_snippet(), line, column) {
            Some(ours) => ours,
            None => (line, column, saphyr_message(e)),
        };
        FileError {
            origin: origin.to_string(),
            line,
            column,
            message,
        }
    }

    /// An error about the file as a whole, shown at its first line (a version it does
    /// not support, say).
    pub fn at_start(origin: &str, message: String) -> FileError {
        FileError {
            origin: origin.to_string(),
            line: 1,
            column: 1,
            message,
        }
    }

    pub fn at<T>(origin: &str, spanned: &Spanned<T>, message: String) -> FileError {
        FileError {
            origin: origin.to_string(),
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
            message,
        }
    }
}

/// saphyr's own text, less the position and snippet it adds (we print our own).
fn saphyr_message(e: &YamlError) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.split_once(": ") {
        Some((pos, rest)) if pos.starts_with("line ") && pos.contains(" column ") => {
            rest.to_string()
        }
        _ => first.to_string(),
    }
}

/// Our line, column and words for the errors whose saphyr text would send the user to
/// the wrong line or speak the parser's language; `None` keeps saphyr's.
fn explain(text: &str, e: &YamlError, line: u64, column: u64) -> Option<(u64, u64, String)> {
    let here = |m: String| Some((line, column, m));
    match e {
        YamlError::DuplicateMappingKey { key, .. } => {
            let key = key.as_deref()?;
            let first = first_occurrence(text, key, line, column);
            here(match first {
                Some(n) => {
                    format!("key {key:?} appears twice in this entry (first at line {n}): keep one")
                }
                None => format!("key {key:?} appears twice in this entry: keep one"),
            })
        }
        YamlError::ExternalMessage { source, .. } => match &**source {
            ExternalMessageSource::Parser(scan) => syntax(text, scan.kind(), line, column),
            _ => None,
        },
        YamlError::Eof { .. } => unclosed(text, line, column).or_else(|| {
            here(if text.trim().is_empty() {
                "the file is empty".into()
            } else {
                "the file ends where a value was expected".into()
            })
        }),
        YamlError::InvalidScalar { ty, .. } => here(format!(
            "expected {}, found {}",
            plain_expected(ty),
            scalar_at(text, line, column).map_or("something else".into(), |s| format!("{s:?}"))
        )),
        YamlError::Unexpected { expected, .. } => here(match *expected {
            "string scalar" => "expected one value (text or a number) here, not a list or \
                                `key: value` entries"
                .into(),
            "sequence start" => "expected a list here: `[a, b]` or `- item` lines".into(),
            "mapping start" => "expected `key: value` entries here".into(),
            other => format!("expected {other}"),
        }),
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => here(format!(
            "expected {}, found {}",
            plain_expected(expected),
            plain_found(unexpected)
        )),
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => here(format!(
            "unknown field `{field}`: the fields here are {}",
            expected
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        // A plain value that begins with `*` is read as an alias: the likeliest is a
        // wildcard (an inventory's `dns: [*.example.com]`), not a reference.
        YamlError::UnknownAnchor { .. } => here(
            "a value that begins with `*` is a YAML alias (a reference to an `&anchor`): \
             quote it, as in \"*.example.com\""
                .into(),
        ),
        // saphyr places it at the entry's end: show the entry's first line.
        YamlError::SerdeMissingField { field, .. } => {
            let start = entry_start(text, line, column).unwrap_or((line, column));
            Some((
                start.0,
                start.1,
                format!("this entry has no `{field}`: add it"),
            ))
        }
        _ => None,
    }
}

/// The parser's syntax errors, in our words; unclosed brackets and quotes at their opening.
fn syntax(text: &str, kind: &ErrorKind, line: u64, column: u64) -> Option<(u64, u64, String)> {
    let here = |m: &str| Some((line, column, m.to_string()));
    match kind {
        ErrorKind::UnclosedFlowCollection { open } => Some((
            line,
            column,
            format!(
                "this {open} is never closed: close it with {}",
                closer(*open)
            ),
        )),
        ErrorKind::UnclosedQuotedScalar => Some((
            line,
            column,
            format!(
                "this {} is never closed: end the text with the same quote",
                char_at(text, line, column).unwrap_or('"')
            ),
        )),
        ErrorKind::TabInIndentation
        | ErrorKind::TabInBlockIndentation
        | ErrorKind::TabNotAllowed => {
            here("a tab in the indentation: YAML indents with spaces only")
        }
        _ => unclosed(text, line, column).or_else(|| match kind {
            ErrorKind::InvalidIndentation
            | ErrorKind::ExpectedBlockMappingKey
            | ErrorKind::ExpectedBlockSequenceEntry => here(
                "this line's indentation does not fit the lines above: indent it like the other \
                 keys of its entry, with spaces",
            ),
            ErrorKind::SimpleKeyExpected | ErrorKind::InvalidSimpleKey => here(
                "a `key: value` where none can go: quote a value that holds \": \", or start \
                 a new line for the key",
            ),
            ErrorKind::ExpectedNodeContent => here("a value is missing here"),
            ErrorKind::MappingValueNotAllowed | ErrorKind::InvalidColonPlacement => here(
                "a `: ` where no key can start: put a value that holds \": \" in quotes \
                 (description: \"a: b\"), or start the key on its own line",
            ),
            _ => None,
        }),
    }
}

fn closer(open: char) -> char {
    match open {
        '[' => ']',
        '{' => '}',
        other => other,
    }
}

fn char_at(text: &str, line: u64, column: u64) -> Option<char> {
    let l = text.lines().nth(line.checked_sub(1)? as usize)?;
    l.chars().nth(column.checked_sub(1)? as usize)
}

/// When the parser fails at `line:column` inside a `[`, `{` or quote still open there,
/// the opening's place and words: the parser stops where it gave up (often the end of
/// the file), far below the fault.
fn unclosed(text: &str, line: u64, column: u64) -> Option<(u64, u64, String)> {
    let open = open_at(text, line, column)?;
    let message = match open.ch {
        '[' | '{' => format!(
            "this {} is never closed: close it with {}",
            open.ch,
            closer(open.ch)
        ),
        q => format!("this {q} is never closed: end the text with {q}"),
    };
    Some((open.line, open.column, message))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Open {
    ch: char,
    line: u64,
    column: u64,
}

/// The innermost `[`, `{` or quote still open just before `line:column` (1-based): a
/// small YAML lexer that knows comments, quotes, flow collections and block scalars, and
/// that indicators only open a node at its start (`a[1]` and `it's` open nothing).
fn open_at(text: &str, line: u64, column: u64) -> Option<Open> {
    let mut stack: Vec<Open> = Vec::new();
    let mut quote: Option<Open> = None;
    // The indentation of the line that opened a block scalar (`|`, `>`): deeper lines
    // are its text.
    let mut block_scalar: Option<usize> = None;
    for (i, l) in text.split('\n').enumerate() {
        let n = i as u64 + 1;
        if n > line {
            break;
        }
        let indent = l.len() - l.trim_start_matches(' ').len();
        if let Some(at) = block_scalar {
            if l.trim().is_empty() || indent > at {
                continue;
            }
            block_scalar = None;
        }
        let chars: Vec<char> = l.trim_end_matches('\r').chars().collect();
        let end = if n == line {
            (column.saturating_sub(1) as usize).min(chars.len())
        } else {
            chars.len()
        };
        let mut node_start = true;
        let mut j = 0;
        while j < end {
            let c = chars[j];
            let next = chars.get(j + 1).copied();
            if let Some(q) = quote {
                match (q.ch, c) {
                    ('"', '\\') => j += 1,
                    ('\'', '\'') if next == Some('\'') => j += 1,
                    (qc, c) if qc == c => {
                        quote = None;
                        node_start = false;
                    }
                    _ => {}
                }
                j += 1;
                continue;
            }
            let blank_after = next.is_none_or(|c| c == ' ' || c == '\t');
            let spaced_before = j == 0 || matches!(chars[j - 1], ' ' | '\t');
            match c {
                ' ' | '\t' => {}
                '#' if spaced_before => break,
                '"' | '\'' if node_start => {
                    quote = Some(Open {
                        ch: c,
                        line: n,
                        column: j as u64 + 1,
                    })
                }
                '[' | '{' if node_start || !stack.is_empty() => {
                    stack.push(Open {
                        ch: c,
                        line: n,
                        column: j as u64 + 1,
                    });
                    node_start = true;
                }
                ']' | '}' if !stack.is_empty() => {
                    stack.pop();
                    node_start = false;
                }
                ',' if !stack.is_empty() => node_start = true,
                ':' if blank_after || !stack.is_empty() => node_start = true,
                '-' | '?' if node_start && blank_after => node_start = true,
                '|' | '>' if node_start && stack.is_empty() => {
                    block_scalar = Some(indent);
                    break;
                }
                _ => node_start = false,
            }
            j += 1;
        }
        // A plain scalar does not go on to the next line as a key would: a new line starts
        // a node only where the indentation says so, which is anywhere outside a scalar.
    }
    quote.or(stack.last().copied())
}

/// The line of `key`'s first occurrence in the mapping whose duplicate key sits at
/// `line:column`: earlier on the same line (a `{…}` entry), or above, at the same
/// indentation, without leaving the entry.
fn first_occurrence(text: &str, key: &str, line: u64, column: u64) -> Option<u64> {
    let lines: Vec<&str> = text.split('\n').collect();
    let key_col = column.checked_sub(1)? as usize;
    let idx = line.checked_sub(1)? as usize;
    let names_key = |s: &str| {
        let s = s.trim_start_matches(['{', ',', ' ']);
        [key.to_string(), format!("{key:?}"), format!("'{key}'")]
            .iter()
            .any(|k| {
                s.strip_prefix(k.as_str())
                    .is_some_and(|r| r.trim_start().starts_with(':'))
            })
    };
    // A flow mapping: the first key is earlier on the same line.
    let same: String = lines.get(idx)?.chars().take(key_col).collect();
    if same.contains('{') && same.split([',', '{']).skip(1).any(&names_key) {
        return Some(line);
    }
    // `- key:` starts its entry: no key of the entry comes before it.
    if same.trim_start().starts_with("- ") {
        return None;
    }
    for back in (0..idx).rev() {
        let l = lines[back];
        let trimmed = l.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = l.len() - trimmed.len();
        // `- key: …` puts the entry's first key two columns in from the dash.
        let (first_key_col, rest) = match trimmed.strip_prefix("- ") {
            Some(r) => (
                indent + 2 + (r.len() - r.trim_start().len()),
                r.trim_start(),
            ),
            None => (indent, trimmed),
        };
        if first_key_col == key_col && names_key(rest) {
            return Some(back as u64 + 1);
        }
        if first_key_col < key_col || (first_key_col == key_col && trimmed.starts_with("- ")) {
            return None;
        }
    }
    None
}

/// The `- key:` line (and the key's column) that starts the list entry holding the key
/// at `line:column`; `None` outside a block list.
fn entry_start(text: &str, line: u64, column: u64) -> Option<(u64, u64)> {
    let key_col = column.checked_sub(1)? as usize;
    let lines: Vec<&str> = text.split('\n').collect();
    let last = (line.checked_sub(1)? as usize).min(lines.len().checked_sub(1)?);
    for back in (0..=last).rev() {
        let l = lines[back];
        let trimmed = l.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = l.len() - trimmed.len();
        if trimmed.starts_with("- ") && indent + 2 == key_col {
            return Some((back as u64 + 1, column));
        }
        if indent < key_col {
            return None;
        }
    }
    None
}

/// The plain scalar at `line:column`, as written (up to a comment or a flow indicator).
fn scalar_at(text: &str, line: u64, column: u64) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)? as usize)?;
    let rest: String = l.chars().skip(column.checked_sub(1)? as usize).collect();
    let rest = rest.split(" #").next().unwrap_or("");
    let s = rest.split([',', ']', '}']).next().unwrap_or("").trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A serde type name in our words: "u32" is a whole number, "a sequence" a list.
fn plain_expected(expected: &str) -> String {
    let e = expected.trim();
    match e {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize"
        | "an integer" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "bool" => "true or false".into(),
        "a sequence" | "a sequence of ports" => "a list (`- item` lines or `[a, b]`)".into(),
        "a map" | "a mapping" => "`key: value` entries".into(),
        "a string" => "text".into(),
        "a boolean" => "true or false".into(),
        _ if e.starts_with("struct ") => "`key: value` entries".into(),
        _ => e.to_string(),
    }
}

/// What serde found, in our words: `string "x"` is the text "x".
fn plain_found(unexpected: &str) -> String {
    let u = unexpected.trim();
    if let Some(s) = u.strip_prefix("string ") {
        return format!("the text {s}");
    }
    if let Some(n) = u
        .strip_prefix("integer ")
        .or_else(|| u.strip_prefix("floating point "))
    {
        return format!("the number {}", n.trim_matches('`'));
    }
    match u {
        "sequence" => "a list".into(),
        "map" => "`key: value` entries".into(),
        "unit value" | "null" => "nothing (an empty value)".into(),
        _ => u.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lexer_finds_the_opening_still_open() {
        let at = |t: &str| open_at(t, 99, 1).map(|o| (o.ch, o.line, o.column));
        assert_eq!(at("a: [1, 2\nb: 3\n"), Some(('[', 1, 4)));
        assert_eq!(at("a: [1, 2]\nb: {c: [x]\n"), Some(('{', 2, 4)));
        assert_eq!(at("a: it's\nb: x[1]\n"), None);
        assert_eq!(at("a: 'it''s\n"), Some(('\'', 1, 4)));
        assert_eq!(at("a: \"q\\\"x\n"), Some(('"', 1, 4)));
        assert_eq!(at("a: x # [\nb: |\n  [ text\nc: 1\n"), None);
        assert_eq!(at("- [\n"), Some(('[', 1, 3)));
    }

    #[test]
    fn the_first_of_two_keys_is_found_in_its_entry() {
        let t = "connections:\n- number: 1\n  ports: [1]\n  source: a\n  ports: [2]\n- number: 2\n  ports: [3]\n";
        assert_eq!(first_occurrence(t, "ports", 5, 3), Some(3));
        assert_eq!(first_occurrence(t, "number", 6, 3), None);
        assert_eq!(
            first_occurrence("a: {port: 1, port: 2}\n", "port", 1, 14),
            Some(1)
        );
    }
}
