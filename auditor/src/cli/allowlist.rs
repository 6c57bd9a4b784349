//! `auditor allowlist import|check|schema`: the subcommands that bring architecture
//! documents into the allowlist format and check allowlists, with their arguments.

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum AllowlistCommand {
    /// Read the connections table of an architecture document and write the allowlist.
    ///
    /// Reads a document's connections table, with columns Connection, Source, Destination,
    /// Protocol (and optionally Transport), Port, Classification and a description (header
    /// synonyms such as "Source service", "Port(s)" and "Data" work). The format is told
    /// from the header line: text extracted from a PDF or TSV (tabs), Markdown, CSV (`,` or
    /// `;`), space-padded columns, MediaWiki tables, a saved HTML page, or a PDF itself
    /// (read with `pdftotext` from poppler-utils). Encodings: UTF-8 (with or without BOM),
    /// UTF-16 with BOM, and Windows-1252.
    ///
    /// A PDF's table is read from its words' positions (`pdftotext -bbox-layout`): cells
    /// that wrap and are centred in their row, port ranges broken across lines, and the
    /// header, date, title and page counter a browser prints on every page. Text with
    /// single spaces between cells is read by the protocol, port and classification
    /// vocabularies and the service names (see --services).
    ///
    /// Handles repeated page-break headers, rows split across pages, page numbers, footers
    /// (the document's title with a page number too) and footnotes, port lists (8080, 8443), alternatives (9092/9093*), configurable
    /// ports (*), thousands separators (8,443), ranges, N/A and "Not known" ports,
    /// versioned (Redis 6.x) and parenthesised alias names, and compound protocols
    /// (RTP/RTCP is UDP, TCP/UDP is both). Every line after the header must be placed: one
    /// that cannot be, or a row that cannot be read, is an error FILE:LINE saying what was
    /// expected there (exit 2). Warnings (an unknown protocol) keep the row.
    #[command(
        after_help = "Examples:\n  auditor allowlist import architecture.pdf -o allowlist.yaml\n  auditor allowlist import saved-page.html --lenient -o allowlist.yaml\n  auditor allowlist import copied.txt --services inventory.yaml"
    )]
    Import {
        /// The document: its text, an HTML page, or a PDF.
        document: PathBuf,
        /// Write here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The allowlist file's format: YAML (for review in Git) or the same document as JSON.
        #[arg(long, value_enum, default_value = "yaml")]
        format: ExportFormat,
        /// Skip lines that cannot be placed and rows that cannot be read, with a warning
        /// each, instead of failing; the summary says how many lines were skipped.
        #[arg(long)]
        lenient: bool,
        /// Service names, for text whose cells are separated by single spaces (copied from
        /// a PDF viewer): where a row's source ends and its destination begins. An
        /// inventory or allowlist (.yaml, .yml, .json: its entries' names) or one name per
        /// line. Without it only names learned from the table's other rows are known, and
        /// a row that could split two ways fails naming both readings.
        #[arg(long, value_name = "FILE")]
        services: Option<PathBuf>,
    },
    /// Validate an allowlist (and overrides) and print lint warnings.
    ///
    /// Exits 0 when the files are valid (warnings included), 1 with FILE:LINE:COLUMN errors
    /// when they are not, 2 when one cannot be read. Lints: a datastore or broker as a
    /// source (likely a reversed row), connections a row's text describes that no row
    /// lists, rows that repeat the same connection, rows with no documented port, a port
    /// below 20 in a list (a thousands separator misread?) and rows whose transport is
    /// unknown. With --overrides it lints what the auditor will judge: the overrides
    /// applied, and an override that changes nothing is a warning (override-no-effect).
    Check {
        /// The allowlist file to check (YAML or JSON, as `allowlist import` writes it).
        file: PathBuf,
        /// Deployment overrides for configurable (*) and unknown ports.
        #[arg(long)]
        overrides: Option<PathBuf>,
    },
    /// Print the JSON Schema of the allowlist file (or, with --overrides, of the overrides
    /// file): the same as `auditor schema allowlist` (`auditor schema overrides`).
    Schema {
        /// Print the schema of the overrides file instead of the allowlist's.
        #[arg(long)]
        overrides: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// YAML with a header comment: the form to review in Git.
    Yaml,
    /// The same document as JSON.
    Json,
}
