//! docs/report.png, the README's picture of the HTML report, is of the report that the
//! current code writes from the bundled recording: the HTML is regenerated exactly as
//! `cargo xtask render` makes it (one shared definition, included below) and its digest
//! must be the one the picture's sidecar records. No root, no kernel.

// xtask's half of it (the window size, the sidecar's text) is not used here.
#[allow(dead_code)]
#[path = "../../xtask/src/report_picture.rs"]
mod report_picture;

use std::{path::Path, process::Command};

use auditor_tests::workspace_bin;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn auditor(args: &[String]) {
    let out = Command::new(workspace_bin("auditor"))
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("run auditor");
    assert!(
        out.status.success(),
        "auditor {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_report_picture_is_of_the_current_report() {
    let tmp = std::env::temp_dir().join(format!("auditor-report-picture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let (store, html) = (tmp.join("store.db"), tmp.join("report.html"));
    auditor(&report_picture::replay_args(&store));
    auditor(&report_picture::report_args(&store, &html));
    let digest = report_picture::digest(&std::fs::read_to_string(&html).unwrap());
    std::fs::remove_dir_all(&tmp).unwrap();

    let root = Path::new(ROOT);
    assert!(
        root.join(report_picture::PICTURE).exists(),
        "{} is missing: run cargo xtask render",
        report_picture::PICTURE
    );
    let sidecar = std::fs::read_to_string(root.join(report_picture::SIDECAR))
        .unwrap_or_else(|e| panic!("{}: {e}: run cargo xtask render", report_picture::SIDECAR));
    assert_eq!(
        report_picture::sidecar_digest(&sidecar),
        Some(digest.as_str()),
        "{} was taken from another report than the code writes now: run cargo xtask render",
        report_picture::PICTURE
    );
}

/// Equal reports hash equal whenever they were written: the rows that hold the time of
/// writing are blanked, and nothing else is.
#[test]
fn only_the_time_of_writing_is_blanked() {
    let at = |when: &str, digest: &str| {
        format!(
            "<table>\n<tr><th>Generated</th><td>{when}</td></tr>\n\
<tr><th>Report digest</th><td>sha256 {digest}</td></tr>\n<tr><th>Nodes</th><td>replay</td></tr>\n</table>"
        )
    };
    let a = at("2026-11-26T10:00:00Z", "aa");
    assert_eq!(
        report_picture::digest(&a),
        report_picture::digest(&at("2027-01-01T00:00:00Z", "bb"))
    );
    assert_ne!(
        report_picture::digest(&a),
        report_picture::digest(&a.replace("replay", "node-a"))
    );
}
