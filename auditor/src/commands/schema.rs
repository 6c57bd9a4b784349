//! `auditor schema [NAME]`: print one JSON Schema, or list the names.

use std::io::Write;

use clap::ValueEnum;

use crate::cli::SchemaName;

pub fn run(name: Option<SchemaName>) -> anyhow::Result<std::process::ExitCode> {
    let text = match name {
        Some(name) => schema_json(name),
        None => names(),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The schema, as the committed copy (allowlist/schema/, docs/) holds it.
pub fn schema_json(name: SchemaName) -> String {
    match name {
        SchemaName::Event => crate::event::schema_json(),
        SchemaName::Report => crate::report::schema_json(),
        SchemaName::WouldBreak => crate::networkpolicy::would_break::schema_json(),
        SchemaName::Allowlist => allowlist::schema::allowlist_schema(),
        SchemaName::Overrides => allowlist::schema::overrides_schema(),
        SchemaName::Inventory => crate::identity::inventory::schema_json(),
        SchemaName::Baseline => crate::verdict::baseline::schema_json(),
        SchemaName::Exceptions => allowlist::schema::exceptions_schema(),
        SchemaName::Controls => crate::report::controls::schema_json(),
    }
}

/// What `auditor schema` without a name prints: every name, with what it describes (the
/// same words as `--help`, from `SchemaName`'s docs).
fn names() -> String {
    let mut out = String::from("Schemas (auditor schema NAME):\n");
    for v in SchemaName::value_variants() {
        let p = v.to_possible_value().expect("no variant is skipped");
        let help = p.get_help().map(|h| h.to_string()).unwrap_or_default();
        out.push_str(&format!("  {:<12} {help}\n", p.get_name()));
    }
    out
}
