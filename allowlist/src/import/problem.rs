//! What an import reports: a problem at a line of the document, and the errors that fail
//! an import.

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
                two or more spaces, or by single spaces with the line starting at a column's \
                name (or an HTML or MediaWiki table)";
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
