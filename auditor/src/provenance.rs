//! What a judgement was made against, so a report can prove it: the sha256 of the
//! allowlist, inventory and overrides files as loaded, the allowlist's content digest
//! (independent of YAML layout and comments), each documented row's content digest, and
//! the auditor version. The daemon records an `Inputs` in the store each time it (re)loads
//! its policy; reports carry them in their header.

use std::path::Path;

use allowlist::Allowlist;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// This build's version, as reports and the store record it.
pub const AUDITOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// sha256 of `bytes` as lower-case hex: the one hex form every digest in reports, the
/// store and signature files takes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn file_sha256(p: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
    Ok(sha256_hex(&bytes))
}

/// The digest of an allowlist's content: its canonical JSON form (`allowlist::file::to_json`),
/// so the same rows in YAML or JSON, commented or not, have one digest.
pub fn allowlist_content_sha256(list: &Allowlist) -> String {
    sha256_hex(allowlist::file::to_json(list).as_bytes())
}

/// The digest of one documented row's content: source, destination, transport, ports.
/// Two rows with the same number and different digests document different connections.
pub fn row_sha256(c: &allowlist::Connection) -> String {
    let ports = c.ports.to_string();
    let v = serde_json::json!({
        "source": c.source,
        "destination": c.destination,
        "transport": c.transport.as_str(),
        "ports": ports,
    });
    sha256_hex(v.to_string().as_bytes())
}

/// The inputs of one judging session (or one reload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// The auditor version that judged.
    pub auditor_version: String,
    /// sha256 of the allowlist file's bytes as loaded (hex).
    pub allowlist_sha256: Option<String>,
    /// sha256 of the allowlist's canonical JSON form: the same rows give the same digest.
    pub allowlist_content_sha256: String,
    /// sha256 of the inventory file's bytes (hex), when one was used.
    pub inventory_sha256: Option<String>,
    /// sha256 of the overrides file's bytes (hex), when one was used.
    pub overrides_sha256: Option<String>,
    /// sha256 of the platform baseline file's bytes (hex), when one was used.
    #[serde(default)]
    pub baseline_sha256: Option<String>,
    /// When these inputs took effect (RFC 3339).
    pub since: String,
    /// The documented rows judged on any port under these inputs, because the document
    /// gives no port and the overrides none (their observations do not verify the
    /// port). Rows the document allows "Any" port are not here: any port is what it
    /// documents. Absent when not recorded (stores and reports before it): a report
    /// then takes every row whose document gives no port as unverified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_port_unverified: Option<Vec<u32>>,
}

impl Inputs {
    /// The digests of the files a judge was loaded from (read again: a file changed in
    /// between is caught by the next reload, which records its own inputs).
    pub fn of_files(list: &Allowlist, p: &crate::verdict::InputFiles) -> anyhow::Result<Inputs> {
        Ok(Inputs {
            auditor_version: AUDITOR_VERSION.into(),
            allowlist_sha256: Some(file_sha256(&p.allowlist)?),
            allowlist_content_sha256: allowlist_content_sha256(list),
            inventory_sha256: Some(file_sha256(&p.inventory)?),
            overrides_sha256: p.overrides.as_deref().map(file_sha256).transpose()?,
            baseline_sha256: p.baseline.as_deref().map(file_sha256).transpose()?,
            since: crate::model::time::rfc3339(std::time::SystemTime::now()),
            rules_port_unverified: Some(port_unverified_rules(list, p)?),
        })
    }
}

/// The rows the judge loaded from `p` takes on any port (read again, as the digests are).
fn port_unverified_rules(
    list: &Allowlist,
    p: &crate::verdict::InputFiles,
) -> anyhow::Result<Vec<u32>> {
    let overrides = match p.overrides.as_deref() {
        Some(o) => allowlist::overrides::load(o, list)?,
        None => allowlist::Overrides::default(),
    };
    Ok(allowlist::RuleIndex::new(list, &overrides).port_unverified_rules())
}

/// Rows with the same number whose content differs between two allowlists, and rows only
/// one of them has: "row 1: Web -> API tcp/443 here, CX Contact -> ... in the store".
pub fn changed_rows(a: &Allowlist, b: &Allowlist) -> Vec<String> {
    let mut out = Vec::new();
    let text = |c: &allowlist::Connection| {
        format!(
            "{} -> {} {}/{}",
            c.source,
            c.destination,
            c.transport.as_str(),
            c.ports
        )
    };
    for c in &a.connections {
        let Some(n) = c.number else { continue };
        match b.connections.iter().find(|d| d.number == Some(n)) {
            Some(d) if row_sha256(c) != row_sha256(d) => {
                out.push(format!("row {n}: {} vs {}", text(c), text(d)))
            }
            Some(_) => {}
            None => out.push(format!("row {n}: {} vs (absent)", text(c))),
        }
    }
    for d in &b.connections {
        let Some(n) = d.number else { continue };
        if !a.connections.iter().any(|c| c.number == Some(n)) {
            out.push(format!("row {n}: (absent) vs {}", text(d)));
        }
    }
    out
}
