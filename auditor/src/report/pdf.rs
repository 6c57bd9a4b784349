//! `--format pdf`: the HTML report printed by headless Chromium (its print stylesheet
//! fits A4 and Letter). Chromium is found at $CHROMIUM, else /usr/bin/chromium.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, bail};

pub fn chromium() -> anyhow::Result<PathBuf> {
    let p = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !p.exists() {
        bail!(
            "--format pdf prints through headless Chromium, and {} does not exist: install \
             chromium (or set CHROMIUM=PATH), or write --format html and print it",
            p.display()
        );
    }
    Ok(p)
}

/// Prints `html` to PDF bytes.
pub fn print(html: &str) -> anyhow::Result<Vec<u8>> {
    let bin = chromium()?;
    let dir = std::env::temp_dir().join(format!("auditor-pdf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let page = dir.join("report.html");
    let pdf = dir.join("report.pdf");
    std::fs::write(&page, html).with_context(|| format!("writing {}", page.display()))?;
    let out = Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let bytes = std::fs::read(&pdf).map_err(|_| {
        anyhow::anyhow!(
            "{} printed no PDF: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}
