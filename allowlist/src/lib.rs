//! The documented connection allowlist: the policy the auditor judges flows against.
//! Pure (no network, no kernel): import from architecture documents, read and write the
//! YAML/JSON file, lint, apply deployment overrides, and look flows up.

pub mod exceptions;
pub mod file;
mod file_error;
pub mod import;
pub mod lint;
pub mod model;
pub mod names;
pub mod overrides;
pub mod rule_index;
pub mod schema;
pub mod yaml;

pub use exceptions::{Exception, Exceptions};
pub use file::FileError;
pub use import::{
    ImportError, Imported, Options as ImportOptions, import, import_bytes, import_text,
};
pub use model::{
    Allowlist, Classification, Connection, PortSpec, Ports, Service, ServiceKind, Transport,
    Transports,
};
pub use overrides::Overrides;
pub use rule_index::{Lookup, Outcome, PortBasis, Rule, RuleIndex, ServiceId};
