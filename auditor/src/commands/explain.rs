//! `auditor explain`: how one connection is judged and why, for a human. Needs no root.

use std::io::BufRead;

use anyhow::Context;

use crate::{
    capture::{Direction, FlowRecord},
    cli::ExplainConfig,
    commands::{offline_judge, watch::DnsLine},
    dns::FlowNames,
    model::{Resolution, time::parse_rfc3339},
    verdict::{Judge, explain::explain},
};

pub fn run(cfg: ExplainConfig) -> anyhow::Result<std::process::ExitCode> {
    let judge = offline_judge(&cfg.inputs)?;
    let names = match &cfg.flows {
        Some(path) => names_in_recording(&cfg, &judge, path)?,
        None if !cfg.names.is_empty() => FlowNames {
            hits: Vec::new(),
            names: cfg.names.iter().map(|n| n.as_str().into()).collect(),
            resolution: Some(Resolution::Dns),
        },
        None => FlowNames::default(),
    };
    print!(
        "{}",
        explain(
            &judge,
            cfg.from,
            cfg.to.ip(),
            cfg.to.port(),
            cfg.transport,
            &names
        )
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// The names the source's pod had at its last flow record to the destination in a
/// recording, learning its DNS answers in order as replay does. No such record: an error
/// that says so, since the names belong to a pod and only a record tells which.
fn names_in_recording(
    cfg: &ExplainConfig,
    judge: &Judge,
    path: &std::path::Path,
) -> anyhow::Result<FlowNames> {
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut names = cfg.dns.names();
    names.set_baseline_servers(judge.baseline.names_dns_servers());
    let mut found = None;
    let mut skipped = 0u64;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}: cannot read", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            skipped += 1;
            continue;
        };
        if value.get("watch").is_some() {
            continue;
        }
        if value.get("dns").is_some() {
            match serde_json::from_value::<DnsLine>(value) {
                Ok(d) if d.dns.check().is_ok() => {
                    names.answer(&d.dns, &|a| judge.baseline.dns_server(a).is_some());
                }
                _ => skipped += 1,
            }
            continue;
        }
        let Ok(rec) = serde_json::from_value::<FlowRecord>(value) else {
            skipped += 1;
            continue;
        };
        if rec.direction == Direction::Egress
            && rec.src_addr.map(|a| a.to_canonical()) == Some(cfg.from.to_canonical())
            && rec.dst_addr.to_canonical() == cfg.to.ip().to_canonical()
            && rec.dst_port == cfg.to.port()
        {
            // A record without a readable time names nothing: it cannot be placed
            // against the answers' TTLs.
            let Some(at) = rec.time.as_deref().and_then(|t| parse_rfc3339(t).ok()) else {
                skipped += 1;
                continue;
            };
            found = Some(crate::dns::flow_names(Some(&mut names), &rec, at));
        }
    }
    if skipped > 0 {
        eprintln!(
            "{}: {skipped} line(s) skipped (not a flow record, dns or watch line `auditor replay` reads; `auditor replay` names each)",
            path.display()
        );
    }
    found.with_context(|| {
        format!(
            "{}: no flow record from {} to {}: the names belong to the pod that connected, and only its record says which",
            path.display(),
            cfg.from,
            cfg.to
        )
    })
}
