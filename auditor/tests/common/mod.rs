//! What the CLI tests share: the workspace root, a fresh scratch directory, and the
//! Chromium the PDF tests print with.
// Each test binary uses some of these.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// An empty directory `auditor-{what}-{name}-{pid}` under the temporary directory.
pub fn dir(what: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("auditor-{what}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

/// Chromium, when it and pdftotext (poppler-utils) are installed. None (after saying
/// SKIPPED) when one is missing, unless CI or AUDITOR_REQUIRE_KERNEL is set: then the
/// test fails rather than pass without having run.
pub fn chromium_for_pdf() -> Option<PathBuf> {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|t| on_path(t));
    let (Some(chromium), Some(_)) = (chromium, on_path("pdftotext")) else {
        let why =
            "the PDF tests need chromium and pdftotext (poppler-utils): run `cargo xtask setup`";
        if std::env::var_os("CI").is_some() || std::env::var_os("AUDITOR_REQUIRE_KERNEL").is_some()
        {
            panic!("{why}");
        }
        eprintln!("SKIPPED: {why}");
        return None;
    };
    Some(chromium)
}
