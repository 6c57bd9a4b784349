//! Deployment overrides: the ports one deployment actually uses where the document lets
//! it choose (`*` ports) or says nothing ("N/A", "Not known"). Kept in their own small
//! file so the documented rows are never edited.
//!
//! ```yaml
//! services:          # by destination: replaces that service's configurable ports
//!   Redis: [6380]
//! rows:              # by connection number: wins over `services`
//!   24: [443]
//!   59: [5060]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::{
    file::{FileError, PortItem},
    model::{Allowlist, PortSpec, Ports},
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub services: BTreeMap<String, Vec<PortSpec>>,
    pub rows: BTreeMap<u32, Vec<PortSpec>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "auditor deployment overrides")]
pub(crate) struct RawOverrides {
    /// Destination service name -> the ports this deployment uses instead of its
    /// configurable (*) ports.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Vec<PortItem>>")]
    services: BTreeMap<String, Spanned<Vec<PortItem>>>,
    /// Connection number -> the ports this deployment uses for that row's configurable or
    /// unknown ports.
    #[serde(default)]
    #[schemars(with = "BTreeMap<u32, Vec<PortItem>>")]
    rows: BTreeMap<u32, Spanned<Vec<PortItem>>>,
}

/// Reads an overrides file and checks it against the allowlist it is for: every service
/// and row it names must exist and have a port the deployment may choose.
pub fn parse(text: &str, origin: &str, allowlist: &Allowlist) -> Result<Overrides, FileError> {
    let raw: RawOverrides =
        serde_saphyr::from_str(text).map_err(|e| FileError::from_saphyr(origin, text, &e))?;
    let choosable = |p: &Ports| match p {
        Ports::Listed(l) => l.iter().any(|s| s.configurable),
        Ports::Unknown { .. } => true,
        Ports::Any { .. } => false,
    };
    let mut out = Overrides::default();
    for (service, ports) in &raw.services {
        let rows: Vec<_> = allowlist
            .connections
            .iter()
            .filter(|c| c.destination == *service)
            .collect();
        if rows.is_empty() {
            return Err(FileError::at(
                origin,
                ports,
                format!("service {service:?} is the destination of no documented connection"),
            ));
        }
        if !rows.iter().any(|c| choosable(&c.ports)) {
            return Err(FileError::at(
                origin,
                ports,
                format!(
                    "no connection to {service:?} has a configurable (*) or unknown port: the document fixes them"
                ),
            ));
        }
        out.services
            .insert(service.clone(), ports.value.iter().map(|p| p.0).collect());
    }
    for (number, ports) in &raw.rows {
        let Some(c) = allowlist.connection(*number) else {
            return Err(FileError::at(
                origin,
                ports,
                format!("there is no connection {number} in the allowlist"),
            ));
        };
        if !choosable(&c.ports) {
            return Err(FileError::at(
                origin,
                ports,
                format!(
                    "connection {number}'s ports are fixed by the document; only configurable (*) or unknown ports can be overridden"
                ),
            ));
        }
        out.rows
            .insert(*number, ports.value.iter().map(|p| p.0).collect());
    }
    Ok(out)
}

/// Reads an overrides file from disk and checks it against `allowlist`.
pub fn load(path: &std::path::Path, allowlist: &Allowlist) -> Result<Overrides, FileError> {
    let (text, origin) = crate::file::read_source(path)?;
    parse(&text, &origin, allowlist)
}
