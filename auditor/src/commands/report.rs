//! `auditor report`: the compliance report from a store, or several merged.

use std::io::Write;

use anyhow::Context;

use crate::{
    cli::{FailOn, ReportConfig, ReportFormat, ReportInput},
    report::{self, Report},
    store::Store,
};

pub fn run(mut cfg: ReportConfig) -> anyhow::Result<std::process::ExitCode> {
    // The files a report is judged by are read first: their errors come before the work.
    let mapping = report::Mapping::load(&cfg.controls, cfg.builtin_controls)?;
    let exceptions = cfg
        .exceptions
        .as_deref()
        .map(allowlist::file::read_source)
        .transpose()?;
    // --chain: follow the newest report in DIR, from where it ends.
    if let Some(dir) = &cfg.chain {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--chain {}: cannot make the directory", dir.display()))?;
        let tail = chain_tail(dir)?;
        if let Some((path, until)) = &tail {
            start_at(&mut cfg.input, *until)?;
            cfg.previous = Some(path.clone());
        }
        if let Some(next) = end_on_bucket(&mut cfg.input)? {
            // Not a failure: a schedule that runs again within a bucket (a Job started
            // by hand) leaves the chain as it is and goes on to render it.
            eprintln!(
                "auditor: --chain {}: nothing to add yet: the newest report ends at {}; the next can end at {} (periods end on {}-minute boundaries)",
                dir.display(),
                crate::model::time::rfc3339_millis(next - crate::store::BUCKET_MS),
                crate::model::time::rfc3339_millis(next),
                crate::store::BUCKET_MS / 60_000
            );
            return Ok(std::process::ExitCode::SUCCESS);
        }
    }
    let mut r: Report = match cfg.input.clone() {
        ReportInput::Schema => {
            std::io::stdout().write_all(report::schema_json().as_bytes())?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        ReportInput::Verify {
            report,
            key,
            signature,
        } => return verify(&report, &key, signature.as_deref()),
        ReportInput::VerifyChain { dir, key } => return verify_chain(&dir, &key),
        ReportInput::Collect {
            urls,
            token,
            since,
            until,
        } => report::merge(collect(&urls, token.as_deref(), since, until)?)?,
        ReportInput::Merge(paths) => merged(&paths)?,
        ReportInput::Render(path) => return render(&cfg, &path),
        ReportInput::Prometheus {
            url,
            allowlist,
            since,
            until,
            step,
        } => {
            let list = allowlist::file::load(&allowlist)?;
            report::prometheus::from_prometheus(&report::prometheus::Query {
                url: &url,
                list: &list,
                list_name: &allowlist.display().to_string(),
                since_ms: since,
                until_ms: until,
                step,
            })?
        }
        ReportInput::Store {
            path,
            allowlist,
            since,
            until,
        } => {
            let store = Store::open_existing(&path)?;
            let list = allowlist
                .as_deref()
                .map(|p| {
                    allowlist::file::load(p)
                        .map(|l| (l, p.display().to_string()))
                        .map_err(anyhow::Error::from)
                })
                .transpose()?;
            report::from_store(&store, list, since, until)?
        }
    };
    if !cfg.expect_nodes.is_empty() {
        report::expect_nodes(&mut r, cfg.expect_nodes.clone());
    }
    if let Some((text, origin)) = &exceptions {
        // The services as the report names them: its rows' and its edges' ends (a service
        // only the inventory knows is an edge's end), whatever the report's source.
        let services: std::collections::BTreeSet<&str> = r
            .rows
            .iter()
            .flat_map(|x| [x.src.as_str(), x.dst.as_str()])
            .chain(
                r.violations
                    .iter()
                    .flat_map(|v| [&v.edge.src.service, &v.edge.dst.service])
                    .flatten()
                    .map(String::as_str),
            )
            .collect();
        let list = allowlist::exceptions::parse(text, origin, &|n: &str| {
            services.get(n).map(|s| (*s).to_string())
        })?;
        let sha256 = crate::provenance::sha256_hex(text.as_bytes());
        report::apply_exceptions(&mut r, &list, origin, sha256);
    }
    report::attach_controls(&mut r, &mapping);
    if let Some(path) = &cfg.previous {
        r.previous = Some(previous_of(path, &r)?);
    }
    report::seal(&mut r);
    write_out(&cfg, &r)
}

/// Writes the finished report in its format (and signature), then applies the gates.
fn write_out(cfg: &ReportConfig, r: &Report) -> anyhow::Result<std::process::ExitCode> {
    let mut output = cfg.output.clone();
    let bytes: Vec<u8> = match cfg.format {
        ReportFormat::Json => (serde_json::to_string_pretty(&r)? + "\n").into_bytes(),
        ReportFormat::Markdown => report::markdown::render(r).into_bytes(),
        ReportFormat::Html => report::html::render(r).into_bytes(),
        ReportFormat::Junit => report::junit::render(r).into_bytes(),
        ReportFormat::Pdf => report::pdf::print(&report::html::render(r))?,
    };
    // The key first: a bad key must not leave an unsigned report behind.
    let key = cfg
        .sign
        .as_deref()
        .map(report::sign::load_private)
        .transpose()?;
    if let Some(dir) = &cfg.chain {
        let name = format!("report-{}.json", r.period.until.replace(':', ""));
        let path = dir.join(name);
        if path.exists() {
            anyhow::bail!(
                "--chain: {} exists: a report ending at {} is already in the chain",
                path.display(),
                r.period.until
            );
        }
        output = Some(path);
    }
    match &output {
        Some(p) if cfg.chain.is_some() => {
            // The chain reads every .json in DIR: the signature first, then the report
            // whole by a rename, so a kill leaves no half report in the chain.
            if let Some(key) = &key {
                let sig = report::sign::signature_path(p);
                std::fs::write(&sig, report::sign::sign(key, &bytes))
                    .with_context(|| format!("writing {}", sig.display()))?;
            }
            let part = p.with_extension("json.part");
            std::fs::write(&part, &bytes).with_context(|| format!("writing {}", part.display()))?;
            std::fs::rename(&part, p)
                .with_context(|| format!("renaming {} to {}", part.display(), p.display()))?;
            eprintln!("{}", r.summary.headline);
            eprintln!("report added to the chain: {}", p.display());
        }
        Some(p) => {
            std::fs::write(p, &bytes).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("{}", r.summary.headline);
            eprintln!("report written to {}", p.display());
            if let Some(key) = &key {
                let sig = report::sign::signature_path(p);
                std::fs::write(&sig, report::sign::sign(key, &bytes))
                    .with_context(|| format!("writing {}", sig.display()))?;
                eprintln!("signature written to {}", sig.display());
            }
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    let failed: Vec<&str> = cfg
        .fail_on
        .iter()
        .filter_map(|f| match f {
            FailOn::Violations if r.summary.violation_edges > 0 => Some("violations"),
            FailOn::NeverObserved
                if r.summary.documented_observed < r.summary.documented_connections =>
            {
                Some("never-observed")
            }
            FailOn::Unaudited if !r.coverage.gaps.is_empty() || r.coverage.fraction.is_none() => {
                Some("unaudited")
            }
            FailOn::Replayed if r.capture.as_ref().is_none_or(|c| c.not_live()) => Some("replayed"),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        eprintln!(
            "auditor: --fail-on {}: {}",
            failed.join(","),
            failed
                .iter()
                .map(|f| match *f {
                    "violations" => format!("{} violation edge(s)", r.summary.violation_edges),
                    "never-observed" => format!(
                        "{} documented connection(s) never observed",
                        r.summary.documented_connections - r.summary.documented_observed
                    ),
                    "replayed" => format!(
                        "not live evidence: {}",
                        r.capture.as_ref().map_or(
                            "the report does not say where its observations came from",
                            |c| &c.statement
                        )
                    ),
                    _ => match r.coverage.fraction {
                        Some(f) => format!(
                            "{} gap(s) in auditing ({:.1}% of the period fully audited)",
                            r.coverage.gaps.len(),
                            f * 100.0
                        ),
                        None => format!("coverage {}", report::coverage_text(r)),
                    },
                })
                .collect::<Vec<_>>()
                .join("; ")
        );
        return Ok(std::process::ExitCode::from(1));
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `--render REPORT.json`: the report as it is, in the asked format; an edited one is
/// refused, and the gates apply to what it says.
fn render(cfg: &ReportConfig, path: &std::path::Path) -> anyhow::Result<std::process::ExitCode> {
    let text =
        std::fs::read(path).with_context(|| format!("--render {}: cannot read", path.display()))?;
    let r: Report = serde_json::from_slice(&text)
        .with_context(|| format!("--render {}: not an auditor JSON report", path.display()))?;
    report::check_digest(&path.display().to_string(), &r)?;
    if r.digest.is_none() {
        anyhow::bail!("--render {}: the report carries no digest", path.display());
    }
    let rendered = ReportConfig {
        input: ReportInput::Render(path.to_path_buf()),
        ..cfg.clone()
    };
    write_out(&rendered, &r)
}

/// The chain's newest report in `dir` (the latest period end), and that end in unix ms;
/// None when `dir` holds no JSON report yet.
fn chain_tail(dir: &std::path::Path) -> anyhow::Result<Option<(std::path::PathBuf, i64)>> {
    let mut newest: Option<(std::path::PathBuf, i64)> = None;
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("--chain {}: cannot read the directory", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        // A report --chain wrote says its end in its name: a long chain is not read
        // whole on every run (`previous_of` reads the newest in full and checks it).
        let until = match until_in_name(&path) {
            Some(until) => until,
            None => {
                let text = std::fs::read(&path)
                    .with_context(|| format!("{}: cannot read", path.display()))?;
                let r: Report = serde_json::from_slice(&text).with_context(|| {
                    format!(
                        "--chain {}: {} is not a JSON report; keep only the chain's reports there",
                        dir.display(),
                        path.display()
                    )
                })?;
                period_ms(&r.period.until).with_context(|| format!("{}", path.display()))?
            }
        };
        if newest.as_ref().is_none_or(|(_, u)| until > *u) {
            newest = Some((path, until));
        }
    }
    Ok(newest)
}

/// The period's end a chain report's name gives (`report-<until, colons out>.json`, as
/// `--chain` names them), when the name is exactly that.
fn until_in_name(path: &std::path::Path) -> Option<i64> {
    let stem = path
        .file_name()?
        .to_str()?
        .strip_prefix("report-")?
        .strip_suffix(".json")?;
    // 2026-12-05T101500.000Z -> 2026-12-05T10:15:00.000Z
    let (date, time) = stem.split_once('T')?;
    let time = time.get(..2)?.to_string() + ":" + time.get(2..4)? + ":" + time.get(4..)?;
    let until = period_ms(&format!("{date}T{time}")).ok()?;
    (crate::model::time::rfc3339_millis(until).replace(':', "") == stem).then_some(until)
}

/// Starts a report's period at `since` (unix ms): the end of the report it follows.
fn start_at(input: &mut ReportInput, at: i64) -> anyhow::Result<()> {
    match input {
        ReportInput::Store { since, .. } | ReportInput::Collect { since, .. } => *since = Some(at),
        ReportInput::Prometheus { since, .. } => *since = at,
        _ => anyhow::bail!(
            "--chain needs a report with a period: --store, --collect or --prometheus"
        ),
    }
    Ok(())
}

/// Ends a chained report's period on the store's time buckets (--until, else now, rounded
/// down), so that consecutive reports count each bucket once. Some(the next boundary)
/// when that end is not after where the chain ends: nothing to add yet.
fn end_on_bucket(input: &mut ReportInput) -> anyhow::Result<Option<i64>> {
    use crate::store::{BUCKET_MS, bucket_of};
    let now = crate::model::time::unix_ms(std::time::SystemTime::now());
    let (since, until) = match input {
        ReportInput::Store { since, until, .. } | ReportInput::Collect { since, until, .. } => {
            let end = bucket_of(until.unwrap_or(now));
            *until = Some(end);
            (*since, end)
        }
        ReportInput::Prometheus { since, until, .. } => {
            *until = bucket_of(*until);
            (Some(*since), *until)
        }
        _ => return Ok(None),
    };
    // A period into the future would be closed before its connections are stored.
    if until > now {
        anyhow::bail!(
            "--chain: --until is in the future ({}): a chained report covers what was already stored",
            crate::model::time::rfc3339_millis(until)
        );
    }
    Ok(since
        .filter(|&s| until <= s)
        .map(|s| bucket_of(s) + BUCKET_MS))
}

/// A report period's bound (RFC 3339), in unix ms.
fn period_ms(text: &str) -> anyhow::Result<i64> {
    crate::model::time::parse_rfc3339(text)
        .map_err(|e| anyhow::anyhow!("its period's time {text:?} does not read: {e}"))
}

/// `--previous FILE`: the report this one follows, unedited, by digest and period. Its
/// period must end no later than this one starts (a chain runs forward); a gap between
/// them is said here and fails `verify --chain`.
fn previous_of(path: &std::path::Path, this: &Report) -> anyhow::Result<report::Previous> {
    let content = std::fs::read(path)
        .with_context(|| format!("--previous {}: cannot read", path.display()))?;
    let prev: Report = serde_json::from_slice(&content).with_context(|| {
        format!(
            "--previous {}: not a JSON report (give the report as `-o FILE.json` wrote it)",
            path.display()
        )
    })?;
    let Some(digest) = prev.digest.clone() else {
        anyhow::bail!(
            "--previous {}: the report carries no digest",
            path.display()
        );
    };
    let actual = report::compute_digest(&prev);
    if digest != actual {
        anyhow::bail!(
            "--previous {}: its digest {digest} does not match its content ({actual}): it was edited",
            path.display()
        );
    }
    let (ends, starts) = (
        period_ms(&prev.period.until)?,
        period_ms(&this.period.since)?,
    );
    if ends > starts {
        anyhow::bail!(
            "--previous {}: its period ends at {}, after this report's starts ({}): the periods would overlap; give --since {}",
            path.display(),
            prev.period.until,
            this.period.since,
            prev.period.until
        );
    }
    if ends < starts {
        eprintln!(
            "note: --previous {} ends at {}, this report starts at {}: the chain has a gap there",
            path.display(),
            prev.period.until,
            this.period.since
        );
    }
    Ok(report::Previous {
        digest,
        period: prev.period,
    })
}

/// `auditor report verify --chain DIR`: every JSON report in DIR, signed and unedited,
/// each naming the one before it, periods end to start. 0 verified, 1 not, 2 errors.
fn verify_chain(
    dir: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<std::process::ExitCode> {
    let key = report::sign::load_public(key)?;
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the directory", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!("{}: no JSON report in it", dir.display());
    }
    let mut failures: Vec<String> = Vec::new();
    // Each report that reads, with whether it verifies on its own: (file, report, period
    // start, period end, verified). One that fails keeps its place in the order, so its
    // neighbours' links are not blamed for it.
    let mut chain: Vec<(String, Report, i64, i64, bool)> = Vec::new();
    for path in &files {
        let name = path.display().to_string();
        let content = std::fs::read(path).with_context(|| format!("{name}: cannot read"))?;
        let r: Report = match serde_json::from_slice(&content) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!(
                    "{name}: not an auditor JSON report ({e}); a chain's directory holds only its reports"
                ));
                continue;
            }
        };
        let (since, until) = match (period_ms(&r.period.since), period_ms(&r.period.until)) {
            (Ok(s), Ok(u)) => (s, u),
            (Err(e), _) | (_, Err(e)) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let sig_path = report::sign::signature_path(path);
        let verified = match std::fs::read_to_string(&sig_path) {
            Err(_) => {
                failures.push(format!(
                    "{name}: no signature ({} is missing)",
                    sig_path.display()
                ));
                false
            }
            Ok(sig_text) => match report::sign::verify(
                &key,
                &content,
                &sig_text,
                &sig_path.display().to_string(),
            )? {
                Err(report::sign::Mismatch(why)) => {
                    failures.push(format!("{name}: edited or not signed by this key: {why}"));
                    false
                }
                Ok(()) if r.digest.as_deref() != Some(report::compute_digest(&r).as_str()) => {
                    failures.push(format!(
                        "{name}: its digest does not match its content: edited"
                    ));
                    false
                }
                Ok(()) => true,
            },
        };
        chain.push((name, r, since, until, verified));
    }
    chain.sort_by_key(|(_, _, since, _, _)| *since);
    for pair in chain.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        // A report that failed above cannot vouch for a link or a period.
        if !before.4 || !after.4 {
            continue;
        }
        let named = after.1.previous.as_ref();
        match named {
            None => failures.push(format!(
                "{}: names no previous report, but {} comes before it: a chain's reports each name the one before (--previous)",
                after.0, before.0
            )),
            Some(p) if Some(&p.digest) != before.1.digest.as_ref() => failures.push(format!(
                "{}: names previous digest {}, which is not {}'s ({}): a report between them was removed, inserted or replaced",
                after.0,
                p.digest,
                before.0,
                before.1.digest.as_deref().unwrap_or("none")
            )),
            Some(_) => {}
        }
        if before.3 < after.2 {
            failures.push(format!(
                "{} and {}: a gap in the chain from {} to {}",
                before.0, after.0, before.1.period.until, after.1.period.since
            ));
        } else if before.3 > after.2 {
            failures.push(format!(
                "{} and {}: their periods overlap ({} is after {})",
                before.0, after.0, before.1.period.until, after.1.period.since
            ));
        }
    }
    if let Some((first, r, _, _, _)) = chain.first()
        && let Some(p) = &r.previous
    {
        println!(
            "{first}: the chain starts here; the report before it ({}, until {}) is not in {}",
            p.digest,
            p.period.until,
            dir.display()
        );
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("NOT verified: {f}");
        }
        let good = chain.iter().filter(|c| c.4).count();
        eprintln!(
            "{}: NOT verified: {} problem(s); {good} of {} report(s) verify on their own",
            dir.display(),
            failures.len(),
            files.len()
        );
        return Ok(std::process::ExitCode::from(1));
    }
    let (first, last) = (&chain[0], &chain[chain.len() - 1]);
    println!(
        "{}: verified: {} reports signed by the given key, unedited, each naming the one before it, from {} to {} without gaps or overlaps",
        dir.display(),
        chain.len(),
        first.1.period.since,
        last.1.period.until
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// `auditor report verify`: 0 verified, 1 not (edited or another key), 2 errors.
fn verify(
    report_path: &std::path::Path,
    key: &std::path::Path,
    signature: Option<&std::path::Path>,
) -> anyhow::Result<std::process::ExitCode> {
    let content = std::fs::read(report_path)
        .with_context(|| format!("{}: cannot read", report_path.display()))?;
    let key = report::sign::load_public(key)?;
    let sig_path = signature.map_or_else(|| report::sign::signature_path(report_path), Into::into);
    let sig_text = std::fs::read_to_string(&sig_path).with_context(|| {
        format!(
            "{}: cannot read the signature (written by `auditor report --sign`)",
            sig_path.display()
        )
    })?;
    let name = report_path.display();
    if let Err(report::sign::Mismatch(why)) =
        report::sign::verify(&key, &content, &sig_text, &sig_path.display().to_string())?
    {
        eprintln!("{name}: NOT verified: {why}");
        return Ok(std::process::ExitCode::from(1));
    }
    // A JSON report also carries its own digest: check it too.
    if let Ok(r) = serde_json::from_slice::<Report>(&content)
        && let Some(d) = &r.digest
    {
        let actual = report::compute_digest(&r);
        if *d != actual {
            eprintln!("{name}: NOT verified: its digest {d} does not match its content ({actual})");
            return Ok(std::process::ExitCode::from(1));
        }
    }
    println!("{name}: verified: signed by the given key, unedited");
    // What the signature vouches for is the report as written: say where its
    // observations came from, so "verified" is never read as "captured live".
    println!("{name}: captured: {}", captured(&content));
    Ok(std::process::ExitCode::SUCCESS)
}

/// A Markdown cell's text as written before `markdown::cell` escaped it.
fn markdown_text(cell: &str) -> String {
    let mut out = String::with_capacity(cell.len());
    let mut chars = cell.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|n| n.is_ascii_punctuation()) {
            continue;
        }
        out.push(c);
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// An HTML cell's text, entities decoded.
fn html_text(cell: &str) -> String {
    cell.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The capture statement a report carries, in any format.
fn captured(content: &[u8]) -> String {
    if let Ok(r) = serde_json::from_slice::<Report>(content) {
        return r.capture.map_or(
            "not recorded (a report before auditor-report/4): not shown to be live capture".into(),
            |c| c.statement,
        );
    }
    if content.starts_with(b"%PDF") {
        return "a PDF: its first page says where the observations came from (the JSON report it was rendered from says it too)".into();
    }
    let text = String::from_utf8_lossy(content);
    // The "Captured" header fact of Markdown (a table row) or HTML (th/td).
    let found = text.lines().find_map(|l| {
        l.strip_prefix("| Captured | ")
            .and_then(|r| r.strip_suffix(" |"))
            .map(markdown_text)
            .or_else(|| {
                l.strip_prefix("<tr><th>Captured</th><td>")
                    .and_then(|r| r.strip_suffix("</td></tr>"))
                    .map(html_text)
            })
    });
    found.unwrap_or_else(|| {
        if text.contains("name=\"capture\"") {
            "see the report's `capture` property".into()
        } else {
            "not stated in the report: not shown to be live capture".into()
        }
    })
}

/// Per-node JSON reports from files, merged.
fn merged(paths: &[std::path::PathBuf]) -> anyhow::Result<Report> {
    let reports = paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read", p.display()))?;
            let r = serde_json::from_str::<Report>(&text)
                .with_context(|| format!("{} is not an auditor JSON report", p.display()))?;
            Ok((p.display().to_string(), r))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    report::merge(reports)
}

/// Every node's report: each URL's host is resolved to all its addresses (a headless
/// Service's name resolves to every daemon pod) and each is asked for /report.
fn collect(
    urls: &[String],
    token: Option<&str>,
    since: Option<i64>,
    until: Option<i64>,
) -> anyhow::Result<Vec<(String, Report)>> {
    let window: Vec<String> = [("since", since), ("until", until)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|ms| format!("{k}={}", crate::model::time::rfc3339_millis(ms))))
        .collect();
    let query = if window.is_empty() {
        String::new()
    } else {
        format!("?{}", window.join("&"))
    };
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
            let target = format!("http://{addr}/report{query}");
            let text = rt.block_on(async {
                let mut req = http.get(&target);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await?;
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
            // An older daemon ignores the period and sends its whole store: refused, not
            // merged as if it were the period's.
            for (bound, asked, got) in [
                ("since", since, &r.period.since),
                ("until", until, &r.period.until),
            ] {
                if let Some(ms) = asked
                    && period_ms(got).ok() != Some(ms)
                {
                    anyhow::bail!(
                        "{target}: asked for the period's {bound} {}, it reported {got}: that daemon does not serve a period (upgrade it)",
                        crate::model::time::rfc3339_millis(ms)
                    );
                }
            }
            eprintln!("collected {} from {target}", r.nodes.join(", "));
            reports.push((target, r));
        }
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_reports_name_gives_its_end_and_another_name_does_not() {
        let at = |name: &str| until_in_name(std::path::Path::new(name));
        assert_eq!(
            at("chain/report-2026-11-26T220500.000Z.json"),
            period_ms("2026-11-26T22:05:00.000Z").ok()
        );
        for other in [
            "nov.json",
            "report-2026-11-26T22:05:00Z.json",
            "report-x.json",
            "report-2026-11-26T2205.json",
        ] {
            assert_eq!(at(other), None, "{other}");
        }
    }
}
