//! `auditor allowlist import|check|schema`: bring architecture documents into the
//! allowlist format, and validate and lint allowlists before they are deployed.

use std::{io::Write, path::Path};

use allowlist::{file, lint, overrides, schema};
use anyhow::Context;

use crate::cli::{AllowlistCommand, ExportFormat};

pub fn run(cmd: AllowlistCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        AllowlistCommand::Import {
            document,
            output,
            format,
        } => import(&document, output.as_deref(), format),
        AllowlistCommand::Check { file, overrides } => check(&file, overrides.as_deref()),
        AllowlistCommand::Schema { overrides } => {
            let text = if overrides {
                schema::overrides_schema()
            } else {
                schema::allowlist_schema()
            };
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

fn import(
    document: &Path,
    output: Option<&Path>,
    format: ExportFormat,
) -> anyhow::Result<std::process::ExitCode> {
    let text = std::fs::read_to_string(document)
        .with_context(|| format!("reading {}", document.display()))?;
    let name = document
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let list = allowlist::import(&text, Some(&name))
        .map_err(|e| anyhow::anyhow!("{}: {e}", document.display()))?;
    let rendered = match format {
        ExportFormat::Yaml => file::to_yaml(&list, &file::import_header(&name)),
        ExportFormat::Json => file::to_json(&list),
    };
    match output {
        Some(path) => {
            std::fs::write(path, rendered).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().write_all(rendered.as_bytes())?,
    }
    eprintln!(
        "imported {} connections, {} services from {}",
        list.connections.len(),
        list.services.len(),
        document.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn check(path: &Path, overrides_path: Option<&Path>) -> anyhow::Result<std::process::ExitCode> {
    let list = match file::load(path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(std::process::ExitCode::FAILURE);
        }
    };
    // The overrides are part of what the auditor judges with: lint with them applied.
    let findings = match overrides_path {
        Some(o) => match overrides::load(o, &list) {
            Ok(ovr) => lint::lint_with_overrides(&list, &ovr),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(std::process::ExitCode::FAILURE);
            }
        },
        None => lint::lint(&list),
    };
    for f in &findings {
        println!("{}: {f}", path.display());
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
