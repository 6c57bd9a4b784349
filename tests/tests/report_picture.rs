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

/// The example report, opened in Chromium at the picture's width (1,320 px): the page is
/// no wider than the window, and neither is the diagram nor any violation's edge or
/// target box in it, so nothing is behind a sideways scroll. (A copy of the report with a
/// one-line script writes the measures into the DOM; the report itself has none.)
#[test]
fn every_violation_in_the_example_report_is_in_view_at_the_page_width() {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "chromium is missing: `cargo xtask setup` installs it"
    );
    let tmp = std::env::temp_dir().join(format!("auditor-report-width-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let (store, html) = (tmp.join("store.db"), tmp.join("report.html"));
    auditor(&report_picture::replay_args(&store));
    auditor(&report_picture::report_args(&store, &html));
    let page = std::fs::read_to_string(&html).unwrap();
    let violations = page.matches("class=\"edge violation\"").count();
    assert_eq!(violations, 4, "the example's four violations are drawn");
    let probe = tmp.join("probe.html");
    std::fs::write(
        &probe,
        page.replace(
            "</body>",
            "<script>\
             const r = e => Math.ceil(e.getBoundingClientRect().right);\
             const bad = [...document.querySelectorAll('g.node rect')].filter(b => b.getAttribute('stroke') === '#c62828');\
             document.body.setAttribute('data-measures', [document.documentElement.scrollWidth, r(document.querySelector('svg.diagram')), Math.max(...[...document.querySelectorAll('path.edge.violation')].map(r)), Math.max(...bad.map(r)), bad.length].join(' '));\
             </script></body>",
        ),
    )
    .unwrap();
    let (w, _) = report_picture::WINDOW_SIZE.split_once(',').unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", tmp.join("profile").display()))
        .arg(format!("--window-size={}", report_picture::WINDOW_SIZE))
        .arg("--dump-dom")
        .arg(format!("file://{}", probe.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let measures: Vec<u32> = dom
        .split("data-measures=\"")
        .nth(1)
        .and_then(|x| x.split('"').next())
        .expect("the probe's measures")
        .split(' ')
        .map(|x| x.parse().expect("a number"))
        .collect();
    std::fs::remove_dir_all(&tmp).unwrap();
    let w: u32 = w.parse().unwrap();
    let [page_w, diagram, edges, boxes, red_boxes] = measures[..] else {
        panic!("{measures:?}")
    };
    // Every service a violation touches is drawn red: both ends of each violation.
    assert!(red_boxes >= 4, "{red_boxes} red boxes");
    for (what, right) in [
        ("the page", page_w),
        ("the diagram", diagram),
        ("a violation's edge", edges),
        ("a violation's service box", boxes),
    ] {
        assert!(
            right <= w,
            "at {w} px {what} reaches {right} px: behind a sideways scroll"
        );
    }
}
