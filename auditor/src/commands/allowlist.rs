//! `auditor allowlist import|check|schema`: bring architecture documents into the
//! allowlist format, and validate and lint allowlists before they are deployed.

use std::{io::Write, path::Path};

use allowlist::{file, lint, overrides};
use anyhow::Context;

use crate::cli::{AllowlistCommand, ExportFormat, SchemaName};

pub fn run(cmd: AllowlistCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        AllowlistCommand::Import {
            document,
            output,
            format,
            lenient,
        } => import(&document, output.as_deref(), format, lenient),
        AllowlistCommand::Check { file, overrides } => check(&file, overrides.as_deref()),
        // The older spelling of `auditor schema allowlist|overrides`, which the committed
        // schemas' $comment and the README name.
        AllowlistCommand::Schema { overrides } => {
            crate::commands::schema::run(Some(if overrides {
                SchemaName::Overrides
            } else {
                SchemaName::Allowlist
            }))
        }
    }
}

/// A PDF's text, as `pdftotext -layout` (poppler-utils) lays it out: columns padded with
/// spaces, which the importer reads as a space-padded table.
fn pdf_text(document: &Path) -> anyhow::Result<Vec<u8>> {
    let out = match std::process::Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(document)
        .arg("-")
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "{}: reading a PDF needs `pdftotext`, from the poppler-utils package \
             (apt-get install poppler-utils, or `cargo xtask setup`); or give the document's \
             text or HTML instead",
            document.display()
        ),
        Err(e) => return Err(e).context("running pdftotext"),
    };
    if !out.status.success() {
        anyhow::bail!(
            "{}: pdftotext could not read the PDF: {}",
            document.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn import(
    document: &Path,
    output: Option<&Path>,
    format: ExportFormat,
    lenient: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let bytes =
        std::fs::read(document).with_context(|| format!("{}: cannot read", document.display()))?;
    let is_pdf = bytes.starts_with(b"%PDF-");
    let bytes = if is_pdf { pdf_text(document)? } else { bytes };
    // Lines of a PDF are lines of its extracted text.
    let at = if is_pdf {
        format!("{} (text by pdftotext -layout)", document.display())
    } else {
        document.display().to_string()
    };
    let located = |line: u32| {
        if line > 0 {
            format!("{at}:{line}")
        } else {
            at.clone()
        }
    };
    let name = document
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let options = allowlist::ImportOptions { lenient };
    let (imported, encoding) = match allowlist::import_bytes(&bytes, Some(&name), options) {
        Ok(i) => i,
        Err(e) => {
            for p in e.located() {
                eprintln!("error: {}: {}", located(p.line), p.message);
            }
            if matches!(e, allowlist::ImportError::Problems { .. }) {
                eprintln!(
                    "nothing written: fix the lines above, or run with --lenient to skip them"
                );
            }
            // An import that cannot be made is an error (2), like every other command's;
            // 1 is kept for a check or gate whose answer is "no".
            return Ok(std::process::ExitCode::from(2));
        }
    };
    for w in &imported.warnings {
        eprintln!("warning: {}: {}", located(w.line), w.message);
    }
    let list = &imported.allowlist;
    let rendered = match format {
        ExportFormat::Yaml => file::to_yaml(list, &file::import_header(&name)),
        ExportFormat::Json => file::to_json(list),
    };
    match output {
        Some(path) => {
            std::fs::write(path, rendered).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().write_all(rendered.as_bytes())?,
    }
    let source = if is_pdf { "PDF, " } else { "" };
    eprintln!(
        "imported {} connections, {} services from {} ({source}{}, {encoding}, header at line {}); {} continuation lines, {} repeated headers, {} page numbers/footers/footnotes, {} lines after the table; {} warning(s), {} line(s) skipped",
        list.connections.len(),
        list.services.len(),
        document.display(),
        imported.format.describe(),
        imported.header_line,
        imported.continuation_lines,
        imported.repeated_headers,
        imported.artifacts,
        imported.lines_after_table,
        imported.warnings.len(),
        imported.skipped_lines,
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// `check`'s answer for a file it could not accept: 1 when the file is invalid (the
/// check's "no"), 2 when it could not even be read (an error, as everywhere).
fn refused(e: &allowlist::FileError) -> std::process::ExitCode {
    eprintln!("error: {e}");
    if e.line == 0 && e.message.starts_with("cannot read") {
        std::process::ExitCode::from(2)
    } else {
        std::process::ExitCode::FAILURE
    }
}

fn check(path: &Path, overrides_path: Option<&Path>) -> anyhow::Result<std::process::ExitCode> {
    let list = match file::load(path) {
        Ok(l) => l,
        Err(e) => return Ok(refused(&e)),
    };
    // The overrides are part of what the auditor judges with: lint with them applied.
    let findings = match overrides_path {
        Some(o) => match overrides::load(o, &list) {
            Ok(ovr) => lint::lint_with_overrides(&list, &ovr),
            Err(e) => return Ok(refused(&e)),
        },
        None => lint::lint(&list),
    };
    for f in &findings {
        // An override's own finding belongs to the overrides file.
        let file = match overrides_path {
            Some(o) if f.code == "override-no-effect" => o,
            _ => path,
        };
        println!("{}: {f}", file.display());
    }
    println!(
        "{}: valid: {} connections, {} services; {} warning(s)",
        path.display(),
        list.connections.len(),
        list.services.len(),
        findings.len()
    );
    Ok(std::process::ExitCode::SUCCESS)
}
