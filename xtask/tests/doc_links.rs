//! Every relative link in the README, the changelog and the reference pages under docs/
//! points at a file that exists, and a `#section` in it at a heading that exists: the
//! reference is split across pages, and a moved section must not leave a dead link.

use std::path::{Path, PathBuf};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn pages() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut pages: Vec<PathBuf> = ["README.md", "CHANGELOG.md", "examples/README.md"]
        .iter()
        .map(|p| root.join(p))
        .collect();
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("docs/ entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages
}

/// The targets of the page's Markdown links and images, `[text](target)`.
fn link_targets(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            rest.find(')').map(|end| rest[..end].trim().to_string())
        })
        .collect()
}

/// The anchors GitHub gives the page's headings: lower case, spaces as hyphens, and every
/// character but letters, digits, `-` and `_` dropped.
fn anchors(text: &str) -> Vec<String> {
    let mut in_fence = false;
    text.lines()
        .filter(|line| {
            if line.starts_with("```") {
                in_fence = !in_fence;
            }
            !in_fence && line.starts_with('#')
        })
        .map(|line| {
            line.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_relative_link_resolves() {
    let mut dead = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{page:?}: {e}"));
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let path = if file.is_empty() {
                page.clone()
            } else {
                page.parent().expect("page's directory").join(file)
            };
            let name = page
                .strip_prefix(ROOT)
                .unwrap_or(&page)
                .display()
                .to_string();
            if !path.exists() {
                dead.push(format!("{name}: {target}: no such file"));
            } else if !anchor.is_empty() && path.extension().is_some_and(|e| e == "md") {
                let linked = std::fs::read_to_string(&path).expect("linked page");
                if !anchors(&linked).iter().any(|a| a == anchor) {
                    dead.push(format!("{name}: {target}: no such heading"));
                }
            }
        }
    }
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn anchors_are_github_s() {
    assert_eq!(
        anchors("# The daemon: `auditor run`\n## Set-up on a fresh machine (Debian 12, as root)"),
        [
            "the-daemon-auditor-run",
            "set-up-on-a-fresh-machine-debian-12-as-root"
        ]
    );
    assert_eq!(
        link_targets("see [a](b.md#c) and ![p](d.png)"),
        ["b.md#c", "d.png"]
    );
}
