//! `auditor networkpolicy`: the NetworkPolicies the documented architecture describes,
//! and, from a store, what they would break.

use anyhow::Context;

use crate::{
    cli::{NetworkPolicyConfig, NetworkPolicyFailOn, PolicyOutput},
    networkpolicy::{generate, render, would_break},
    store::Store,
};

pub fn run(cfg: NetworkPolicyConfig) -> anyhow::Result<std::process::ExitCode> {
    let p = &cfg.inputs;
    let list = allowlist::file::load(&p.allowlist)?;
    let overrides = match &p.overrides {
        Some(o) => allowlist::overrides::load(o, &list)?,
        None => allowlist::Overrides::default(),
    };
    let inventory = crate::identity::Inventory::load(&p.inventory)?;
    let g = generate(&list, &overrides, &inventory, &cfg.options);
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
    eprintln!(
        "generated {} NetworkPolicies with {rules} rules from {} of {} documented rows; {} not expressed",
        g.policies.len(),
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
