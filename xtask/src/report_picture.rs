//! The README's picture of the HTML report, `docs/report.png`: how its HTML is made from the
//! bundled recording, and the digest that ties the picture to that HTML. A PNG carries no
//! text header, so its sidecar `docs/report.png.md` says it is generated and holds the
//! digest.
//!
//! One definition for two users: `cargo xtask render` (xtask/src/render.rs) writes the
//! picture and the sidecar, and the staleness test (tests/tests/report_picture.rs, which
//! includes this file by path) regenerates the HTML and compares digests. Only std and
//! sha2 here, so both crates can compile it.

use std::path::Path;

use sha2::{Digest, Sha256};

pub const PICTURE: &str = "docs/report.png";
pub const SIDECAR: &str = "docs/report.png.md";
/// The inputs, relative to the repository root: the bundled allowlist and the recording
/// of the demo in examples/.
pub const ALLOWLIST: &str = "allowlist/voice-microservices.yaml";
pub const INVENTORY: &str = "examples/inventory.yaml";
pub const OVERRIDES: &str = "examples/overrides.yaml";
pub const FLOWS: &str = "examples/flows.jsonl";
/// Chromium's window: wide enough for the report's tables, tall enough for the summary,
/// the header and the diagram.
pub const WINDOW_SIZE: &str = "1320,1600";

/// `auditor` arguments that replay the recording into a new store.
pub fn replay_args(store: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "replay",
        "--allowlist",
        ALLOWLIST,
        "--inventory",
        INVENTORY,
        "--overrides",
        OVERRIDES,
        FLOWS,
        "--store",
    ]
    .map(String::from)
    .into();
    args.push(store.display().to_string());
    args
}

/// `auditor` arguments that write the store's HTML report.
pub fn report_args(store: &Path, html: &Path) -> Vec<String> {
    vec![
        "report".into(),
        "--store".into(),
        store.display().to_string(),
        "-o".into(),
        html.display().to_string(),
    ]
}

/// The rows of the report's header that change on every run with the same inputs: when it
/// was written, and the report's digest, which covers that time. `auditor report` has no
/// option to pin them, so they are blanked before hashing.
const VOLATILE_ROWS: [&str; 2] = ["<tr><th>Generated</th>", "<tr><th>Report digest</th>"];

/// The digest the Controls' sign-off statement names: the same volatile digest.
const SIGNOFF_DIGEST: &str = "report digest sha256 ";

/// The HTML with its volatile rows (and the sign-off's digest) blanked: equal for equal
/// inputs and equal code.
pub fn normalise(html: &str) -> String {
    html.lines()
        .map(|line| {
            if let Some(row) = VOLATILE_ROWS.iter().find(|row| line.starts_with(*row)) {
                return format!("{row}<td>…</td></tr>");
            }
            match line.split_once(SIGNOFF_DIGEST) {
                Some((before, after)) => {
                    let rest = after.trim_start_matches(|c: char| c.is_ascii_hexdigit());
                    format!("{before}{SIGNOFF_DIGEST}…{rest}")
                }
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// sha256 (hex) of the normalised HTML: what the sidecar records.
pub fn digest(html: &str) -> String {
    Sha256::digest(normalise(html).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const DIGEST_LABEL: &str = "sha256 of the normalised HTML: ";

/// The sidecar's text for a picture taken from HTML of this digest.
pub fn sidecar(digest: &str) -> String {
    format!(
        "# docs/report.png is generated\n\n\
Do not edit: run `cargo xtask render`, which makes it from\n\n\
- the recording `{FLOWS}`,\n\
- the inventory `{INVENTORY}` and the overrides `{OVERRIDES}`,\n\
- the bundled allowlist `{ALLOWLIST}`:\n\n\
it replays the recording into a new store (`auditor replay … --store STORE`), writes the\n\
store's HTML report (`auditor report --store STORE -o report.html`), and takes the picture\n\
with `chromium --headless --no-sandbox --hide-scrollbars --window-size={WINDOW_SIZE}\n\
--screenshot`.\n\n\
The report's header rows \"Generated\" and \"Report digest\" change on every run, so they are\n\
blanked before hashing, with the digest the Controls' sign-off names (the picture shows\n\
them as they were when it was taken).\n\
tests/tests/report_picture.rs regenerates the HTML the same way and fails when its digest\n\
differs from this one.\n\n\
{DIGEST_LABEL}{digest}\n"
    )
}

/// The digest a sidecar records, if it has one.
pub fn sidecar_digest(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|line| line.strip_prefix(DIGEST_LABEL))
        .map(str::trim)
}
