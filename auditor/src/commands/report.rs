//! `auditor report`: the compliance report from a store, or several merged.

use std::io::Write;

use anyhow::Context;

use crate::{
    cli::{ReportArgs, ReportFormat},
    report::{self, Report},
    store::Store,
};

pub fn run(args: ReportArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.schema {
        std::io::stdout().write_all(report::schema_json().as_bytes())?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let r: Report = if !args.merge.is_empty() {
        let reports = args
            .merge
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                serde_json::from_str::<Report>(&text)
                    .with_context(|| format!("{} is not an auditor JSON report", p.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        report::merge(reports)?
    } else {
        let path = args.store.as_deref().context("give --store (or --merge)")?;
        let store = Store::open_existing(path)?;
        let list = args
            .allowlist
            .as_deref()
            .map(allowlist::file::load)
            .transpose()?;
        let since = args
            .since
            .as_deref()
            .map(report::parse_when)
            .transpose()
            .context("--since")?;
        let until = args
            .until
            .as_deref()
            .map(report::parse_when)
            .transpose()
            .context("--until")?;
        report::from_store(&store, list, since, until)?
    };
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&r)? + "\n",
        ReportFormat::Markdown => report::markdown::render(&r),
        ReportFormat::Html => report::html::render(&r),
    };
    match &args.output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("{}", r.summary.headline);
            eprintln!("report written to {}", p.display());
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}
