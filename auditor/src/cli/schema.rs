//! `auditor schema NAME`: which JSON Schema to print. One command serves every file the
//! auditor writes or reads, so none has its own schema flag to find.

/// `auditor schema`'s arguments.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Which schema; without it, the names are listed.
    #[arg(value_enum)]
    pub name: Option<SchemaName>,
}

/// A file with a JSON Schema: what the auditor writes, and the policy files it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaName {
    /// The events `auditor run` writes (docs/event.schema.json).
    Event,
    /// The JSON report (docs/report.schema.json).
    Report,
    /// What `auditor networkpolicy --would-break` writes (docs/would-break.schema.json).
    WouldBreak,
    /// The connection allowlist, `--allowlist` (allowlist/schema/allowlist.schema.json).
    Allowlist,
    /// The deployment overrides, `--overrides` (allowlist/schema/overrides.schema.json).
    Overrides,
    /// The inventory, `--inventory` (docs/inventory.schema.json).
    Inventory,
    /// The platform baseline file, `--baseline` (docs/baseline.schema.json).
    Baseline,
    /// Accepted exceptions, `auditor report --exceptions`
    /// (allowlist/schema/exceptions.schema.json).
    Exceptions,
    /// A controls mapping, `auditor report --controls` (docs/controls.schema.json).
    Controls,
}

/// Examples for `auditor schema --help`.
pub const EXAMPLES: &str = "Examples:
  auditor schema event > event.schema.json
  auditor schema inventory > inventory.schema.json
  auditor schema                     # lists the names";
