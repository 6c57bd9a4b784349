//! `auditor networkpolicy`: the NetworkPolicies the documented architecture describes,
//! and, from a store, what they would break.

use anyhow::Context;

use crate::{
    cli::{NetworkPolicyConfig, NetworkPolicyFailOn, PolicyOutput},
    networkpolicy::DnsPeer,
    networkpolicy::{generate, render, would_break},
    store::Store,
    verdict::baseline::{Baseline, EntryPorts},
};

/// The DNS rule with a baseline: the baseline's entries to port 53 supply it; --dns given
/// too must name the same pods (or the baseline have none), else the two disagree and
/// neither is silently dropped.
fn reconcile_dns(
    b: &Baseline,
    given: Option<&Option<DnsPeer>>,
    egress: bool,
) -> anyhow::Result<Option<DnsPeer>> {
    let dns_entries: Vec<(&str, Vec<DnsPeer>)> = b
        .entries()
        .iter()
        .filter(|e| matches!(e.ports(), EntryPorts::Listed(l) if l.iter().any(|p| p.contains(53))))
        .map(|e| {
            let peers = e
                .to_end()
                .kubernetes
                .iter()
                .filter(|k| !k.labels.is_empty())
                .map(|k| DnsPeer {
                    namespace: k.namespace.clone(),
                    labels: k.labels.clone(),
                })
                .collect();
            (&*e.name, peers)
        })
        .collect();
    let describe = || {
        dns_entries
            .iter()
            .map(|(n, peers)| {
                let p: Vec<String> = peers
                    .iter()
                    .map(|d| {
                        format!(
                            "{}/{}",
                            d.namespace,
                            crate::networkpolicy::labels_text(&d.labels)
                        )
                    })
                    .collect();
                format!(
                    "entry {n} ({})",
                    if p.is_empty() {
                        "no pods by labels".into()
                    } else {
                        p.join(", ")
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    match given {
        // The baseline's rule carries DNS; without one, egress isolation would stop
        // every name lookup: say so.
        None => {
            if egress && dns_entries.is_empty() {
                eprintln!(
                    "warning: {}: no entry admits DNS (port 53), and --dns is not given: the egress policies allow no name lookups",
                    b.origin()
                );
            }
            Ok(None)
        }
        Some(None) if dns_entries.is_empty() => Ok(None),
        Some(None) => anyhow::bail!(
            "--dns none disagrees with {}, which admits DNS: {}; give one of them",
            b.origin(),
            describe()
        ),
        Some(Some(d)) if dns_entries.is_empty() => Ok(Some(d.clone())),
        Some(Some(d)) if dns_entries.iter().any(|(_, p)| p.contains(d)) => Ok(None),
        Some(Some(d)) => anyhow::bail!(
            "--dns {}/{} disagrees with {}: {}; give one of them",
            d.namespace,
            crate::networkpolicy::labels_text(&d.labels),
            b.origin(),
            describe()
        ),
    }
}

pub fn run(cfg: NetworkPolicyConfig) -> anyhow::Result<std::process::ExitCode> {
    let p = &cfg.inputs;
    let list = allowlist::file::load(&p.allowlist)?;
    let overrides = match &p.overrides {
        Some(o) => allowlist::overrides::load(o, &list)?,
        None => allowlist::Overrides::default(),
    };
    let inventory = crate::identity::Inventory::load(&p.inventory)?;
    let documented = |name: &str| list.documents(name);
    // Off the node: `node: true` is rendered as "the node", never as this machine's
    // addresses, and Kubernetes selectors need no cluster to become peers.
    let baseline = match &p.baseline {
        Some(path) => Some(Baseline::load(path, &inventory, &documented, None)?),
        None => None,
    };
    let mut options = cfg.options.clone();
    if let Some(b) = &baseline {
        options.dns = reconcile_dns(b, cfg.dns_given.as_ref(), options.egress)?;
    }
    let g = generate(&list, &overrides, &inventory, &options, baseline.as_ref());
    if g.policies.is_empty() {
        anyhow::bail!(
            "{}: no service has a `kubernetes:` namespace and labels, so there are no pods to \
             isolate; give them, e.g. `Tenant Service: {{kubernetes: {{namespace: voice, labels: {{app: tenant}}}}}}`",
            inventory.origin()
        );
    }
    for s in &g.skipped {
        eprintln!("warning: not expressed: {s}");
    }
    for l in &g.lints {
        eprintln!("{l}");
    }
    // Judge before writing, so a store that cannot be read leaves no half-done output.
    let verdict = match &cfg.store {
        Some(path) => {
            let store = Store::open_existing(path)
                .with_context(|| format!("--store {}", path.display()))?;
            Some(would_break::judge(
                &g,
                &store.edges(None, None)?,
                &store.rows(None, None)?,
                cfg.options.egress,
            ))
        }
        None => None,
    };
    match &cfg.output {
        PolicyOutput::Stdout => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(render::stream(&g).as_bytes())?;
            out.flush()?;
        }
        PolicyOutput::File(f) => std::fs::write(f, render::stream(&g))
            .with_context(|| format!("{}: cannot write", f.display()))?,
        PolicyOutput::Dir(d) => {
            std::fs::create_dir_all(d)
                .with_context(|| format!("{}: cannot create", d.display()))?;
            for (name, text) in render::files(&g) {
                let path = d.join(name);
                std::fs::write(&path, text)
                    .with_context(|| format!("{}: cannot write", path.display()))?;
            }
        }
    }
    let rules: usize = g.policies.iter().map(|p| p.rules.len()).sum();
    let from_baseline: usize = g
        .policies
        .iter()
        .flat_map(|p| &p.rules)
        .filter(|r| r.entry.is_some())
        .count();
    let platform = match &baseline {
        Some(b) => format!(", {from_baseline} from {}", b.origin()),
        None => String::new(),
    };
    eprintln!(
        "generated {} NetworkPolicies with {rules} rules: {} from {} of {} documented rows{platform}; {} not expressed",
        g.policies.len(),
        rules - from_baseline,
        g.expressed_rows.len(),
        list.connections.len(),
        g.skipped.len()
    );
    let Some(w) = verdict else {
        return Ok(std::process::ExitCode::SUCCESS);
    };
    eprint!("{}", would_break::text(&w));
    if let Some(path) = &cfg.would_break {
        let mut json = serde_json::to_string_pretty(&w)?;
        json.push('\n');
        std::fs::write(path, json).with_context(|| format!("{}: cannot write", path.display()))?;
    }
    if cfg.fail_on.contains(&NetworkPolicyFailOn::WouldBreak) && !w.would_break.is_empty() {
        eprintln!(
            "auditor: --fail-on would-break: {} observed connection edge(s) would be denied",
            w.would_break.len()
        );
        return Ok(std::process::ExitCode::from(1));
    }
    Ok(std::process::ExitCode::SUCCESS)
}
