//! `cargo xtask setup` installs the eBPF toolchain, so xtask must build without it: on a
//! fresh machine the README's commands (`cargo xtask demo`, `cargo xtask test`) compile
//! xtask first. The `auditor` crate's build script compiles the kernel programs with
//! Debian's rustc and bpf-linker; once it was in xtask's closure (through the tests
//! crate), and both commands failed before installing anything.
//!
//! The rule, as aya-template keeps it: xtask's normal and build dependency closure holds
//! no crate of this workspace, so no build script of ours can run before set-up.

use std::{
    collections::{BTreeSet, HashMap},
    process::Command,
};

use serde_json::Value;

/// Every package reachable from xtask through normal and build dependencies (not dev:
/// tests are built after set-up), from `cargo metadata`'s resolve graph.
fn xtask_closure(metadata: &Value) -> Vec<&Value> {
    let packages: HashMap<&str, &Value> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("id"), p))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve.nodes")
        .iter()
        .map(|n| (n["id"].as_str().expect("id"), n))
        .collect();
    let root = packages
        .values()
        .find(|p| p["name"] == "xtask" && p["source"].is_null())
        .expect("xtask in the workspace")["id"]
        .as_str()
        .unwrap();
    let mut seen = BTreeSet::from([root]);
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        for dep in nodes[id]["deps"].as_array().expect("deps") {
            let used = dep["dep_kinds"]
                .as_array()
                .expect("dep_kinds")
                .iter()
                .any(|k| {
                    // kind null = normal; "build" = build-dependency; "dev" is left out.
                    k["kind"].is_null() || k["kind"] == "build"
                });
            let pkg = dep["pkg"].as_str().expect("pkg");
            if used && seen.insert(pkg) {
                todo.push(pkg);
            }
        }
    }
    seen.remove(root);
    seen.iter().map(|id| packages[id]).collect()
}

#[test]
fn xtask_depends_on_no_crate_of_the_workspace() {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let closure = xtask_closure(&metadata);
    assert!(
        closure.len() > 3,
        "the closure walk found almost nothing ({} packages): the metadata format changed?",
        closure.len()
    );
    let ours: Vec<String> = closure
        .iter()
        .filter(|p| p["source"].is_null())
        .map(|p| {
            let build_script = p["targets"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["kind"][0] == "custom-build"));
            format!(
                "{}{}",
                p["name"].as_str().unwrap(),
                if build_script {
                    " (has a build script)"
                } else {
                    ""
                }
            )
        })
        .collect();
    assert!(
        ours.is_empty(),
        "xtask depends on {ours:?}: a crate of this workspace, so `cargo xtask setup` cannot \
         build on a machine without the eBPF toolchain. Run the code as a binary that xtask \
         builds and starts after set-up (as `auditor-demo` in tests/ does)."
    );
}
