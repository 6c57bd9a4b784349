//! JSON Schemas for the allowlist and overrides files, generated from the raw types the
//! reader uses, so the schema cannot drift from what is accepted. The committed copies in
//! `allowlist/schema/` are checked against these by a test.

use crate::{exceptions::RawExceptions, file::RawFile, overrides::RawOverrides};

const HEADER: &str = "Generated from allowlist/src/file.rs, overrides.rs and exceptions.rs by `auditor schema allowlist|overrides|exceptions` (`cargo xtask render`); do not edit.";

fn render(mut schema: schemars::Schema) -> String {
    schema.insert("$comment".into(), HEADER.into());
    let mut s = serde_json::to_string_pretty(&schema).expect("schemas serialise");
    s.push('\n');
    s
}

pub fn allowlist_schema() -> String {
    render(schemars::schema_for!(RawFile))
}

pub fn overrides_schema() -> String {
    render(schemars::schema_for!(RawOverrides))
}

pub fn exceptions_schema() -> String {
    render(schemars::schema_for!(RawExceptions))
}
