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
            services,
        } => import(
            &document,
            output.as_deref(),
            format,
            lenient,
            services.as_deref(),
        ),
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

/// Runs `pdftotext` (poppler-utils) on a PDF with `args`, to standard output.
fn pdftotext(document: &Path, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let out = match std::process::Command::new("pdftotext")
        .args(args)
        .args(["-enc", "UTF-8"])
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

/// What a PDF gives the importer: its table laid out from the words' positions
/// (`pdftotext -bbox-layout`), or, when no header is found that way, its text as
/// `pdftotext -layout` pads it into columns.
enum PdfText {
    Geometry(allowlist::import::pdf_geometry::LaidOut),
    Layout(Vec<u8>),
}

fn pdf_text(document: &Path) -> anyhow::Result<PdfText> {
    // A pdftotext too old for -bbox-layout (poppler before 0.68) still has -layout.
    let laid = pdftotext(document, &["-bbox-layout"])
        .ok()
        .and_then(|bbox| {
            let pages =
                allowlist::import::pdf_geometry::parse_bbox(&String::from_utf8_lossy(&bbox));
            allowlist::import::pdf_geometry::lay_out(&pages)
        });
    match laid {
        Some(laid) => Ok(PdfText::Geometry(laid)),
        None => pdftotext(document, &["-layout"]).map(PdfText::Layout),
    }
}

/// `--services FILE`: service names from an inventory or allowlist (by extension: YAML or
/// JSON, which must then read as one), or one name per line (`#` comments).
fn service_names(path: &Path) -> anyhow::Result<Vec<String>> {
    let structured = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
    if !structured {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read --services", path.display()))?;
        return Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect());
    }
    match crate::identity::Inventory::load(path) {
        Ok(inv) => Ok(inv.entries().map(|(name, _)| name.to_string()).collect()),
        Err(inventory_error) => match file::load(path) {
            Ok(list) => Ok(list.services.iter().map(|s| s.name.clone()).collect()),
            Err(_) => anyhow::bail!(
                "--services {}: neither an inventory nor an allowlist: {inventory_error} \
                 (or give one service name per line in a .txt file)",
                path.display()
            ),
        },
    }
}

fn import(
    document: &Path,
    output: Option<&Path>,
    format: ExportFormat,
    lenient: bool,
    services_file: Option<&Path>,
) -> anyhow::Result<std::process::ExitCode> {
    let services = services_file
        .map(service_names)
        .transpose()?
        .unwrap_or_default();
    let bytes =
        std::fs::read(document).with_context(|| format!("{}: cannot read", document.display()))?;
    let is_pdf = bytes.starts_with(b"%PDF-");
    let pdf = if is_pdf {
        Some(pdf_text(document)?)
    } else {
        None
    };
    // Page furniture the geometry found and left out of the text it hands the reader.
    let mut geometry_furniture = 0;
    let (bytes, origins, how) = match pdf {
        Some(PdfText::Geometry(laid)) => {
            let allowlist::import::pdf_geometry::LaidOut {
                text,
                origins,
                problems,
                furniture,
            } = laid;
            geometry_furniture = furniture;
            (
                text.into_bytes(),
                Some((origins, problems)),
                "PDF read by its words' positions, laid out as ",
            )
        }
        Some(PdfText::Layout(text)) => (text, None, "PDF, "),
        None => (bytes, None, ""),
    };
    // A line of a PDF's table is a place on a page; of its -layout text, a line of it.
    let at = match (is_pdf, &origins) {
        (true, None) => format!("{} (text by pdftotext -layout)", document.display()),
        _ => document.display().to_string(),
    };
    let located = |line: u32| match &origins {
        Some((o, _)) if line > 0 => match o.get(line as usize - 1) {
            Some(origin) => format!("{at}: {origin}"),
            None => at.clone(),
        },
        _ if line > 0 => format!("{at}:{line}"),
        _ => at.clone(),
    };
    // What the geometry could not place fails the import (or, lenient, is warned of and
    // left out, as a line that cannot be placed is).
    let geometry_problems = origins.as_ref().map_or(&[][..], |(_, p)| p.as_slice());
    if !geometry_problems.is_empty() && !lenient {
        for p in geometry_problems {
            eprintln!("error: {}: {}", located(p.line), p.message);
        }
        eprintln!("nothing written: fix the places above, or run with --lenient to skip them");
        return Ok(std::process::ExitCode::from(2));
    }
    let name = document
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let options = allowlist::ImportOptions {
        lenient,
        services: services.clone(),
    };
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
    for w in geometry_problems.iter().chain(&imported.warnings) {
        eprintln!("warning: {}: {}", located(w.line), w.message);
    }
    if let Some(f) = services_file
        && imported.format != allowlist::import::Format::Spaced
    {
        // Given but not needed: said, never silently ignored.
        eprintln!(
            "note: --services {} was not used: the table's cells are separated ({}), so no names were needed to split them",
            f.display(),
            imported.format.describe()
        );
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
    let source = how;
    // Where the header is: a line of the text, or a place on a PDF's page.
    let header_at = match origins
        .as_ref()
        .and_then(|(o, _)| o.get((imported.header_line as usize).wrapping_sub(1)))
    {
        Some(origin) => origin.to_string(),
        None => format!("line {}", imported.header_line),
    };
    eprintln!(
        "imported {} connections, {} services from {} ({source}{}, {encoding}, header at {}); {} continuation lines, {} repeated headers, {} page numbers/footers/footnotes, {} lines after the table; {} warning(s), {} line(s) skipped",
        list.connections.len(),
        list.services.len(),
        document.display(),
        imported.format.describe(),
        header_at,
        imported.continuation_lines,
        imported.repeated_headers,
        imported.artifacts + geometry_furniture,
        imported.lines_after_table,
        imported.warnings.len() + geometry_problems.len(),
        imported.skipped_lines + geometry_problems.len(),
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
