//! `auditor report`: the compliance report from a store, or several merged.

use std::io::Write;

use anyhow::Context;

use crate::{
    cli::{ReportConfig, ReportFormat, ReportInput},
    report::{self, Report},
    store::Store,
};

pub fn run(args: ReportConfig) -> anyhow::Result<std::process::ExitCode> {
    let r: Report = match &args.input {
        ReportInput::Schema => {
            std::io::stdout().write_all(report::schema_json().as_bytes())?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        ReportInput::Collect(urls) => report::merge(collect(urls)?)?,
        ReportInput::Merge(paths) => merged(paths)?,
        ReportInput::Store {
            path,
            allowlist,
            since,
            until,
        } => {
            let store = Store::open_existing(path)?;
            let list = allowlist
                .as_deref()
                .map(allowlist::file::load)
                .transpose()?;
            report::from_store(&store, list, *since, *until)?
        }
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

/// Per-node JSON reports from files, merged.
fn merged(paths: &[std::path::PathBuf]) -> anyhow::Result<Report> {
    let reports = paths
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str::<Report>(&text)
                .with_context(|| format!("{} is not an auditor JSON report", p.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    report::merge(reports)
}

/// Every node's report: each URL's host is resolved to all its addresses (a headless
/// Service's name resolves to every daemon pod) and each is asked for /report.
fn collect(urls: &[String]) -> anyhow::Result<Vec<Report>> {
    use std::net::ToSocketAddrs;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let mut reports = Vec::new();
    for url in urls {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("--collect {url}: give an http:// URL"))?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let addrs: Vec<std::net::SocketAddr> = authority
            .to_socket_addrs()
            .with_context(|| format!("resolving {authority}"))?
            .collect();
        anyhow::ensure!(!addrs.is_empty(), "{authority} resolves to no address");
        for addr in addrs {
            let target = format!("http://{addr}/report");
            let text = rt.block_on(async {
                let resp = http.get(&target).send().await?;
                let status = resp.status();
                let body = resp.text().await?;
                anyhow::ensure!(
                    status.is_success(),
                    "{target}: HTTP {status}: {}",
                    body.trim()
                );
                Ok(body)
            })?;
            let r: Report = serde_json::from_str(&text)
                .with_context(|| format!("{target} did not send an auditor report"))?;
            eprintln!("collected {} from {target}", r.nodes.join(", "));
            reports.push(r);
        }
    }
    Ok(reports)
}
