//! `auditor schema NAME` serves every schema, and the committed copies are what it prints.

use std::{path::Path, process::Command};

const AUDITOR: &str = env!("CARGO_BIN_EXE_auditor");

fn auditor(args: &[&str]) -> String {
    let out = Command::new(AUDITOR).args(args).output().unwrap();
    assert!(out.status.success(), "auditor {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn committed(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)).unwrap()
}

#[test]
fn every_schema_has_a_name_and_a_current_committed_copy() {
    let listed = auditor(&["schema"]);
    for (name, path) in [
        ("event", "docs/event.schema.json"),
        ("report", "docs/report.schema.json"),
        ("would-break", "docs/would-break.schema.json"),
        ("allowlist", "allowlist/schema/allowlist.schema.json"),
        ("overrides", "allowlist/schema/overrides.schema.json"),
        ("inventory", "docs/inventory.schema.json"),
        ("baseline", "docs/baseline.schema.json"),
        ("exceptions", "allowlist/schema/exceptions.schema.json"),
        ("controls", "docs/controls.schema.json"),
    ] {
        assert!(listed.contains(&format!("  {name} ")), "{name}: {listed}");
        assert!(
            auditor(&["schema", name]) == committed(path),
            "{path} is stale: run `cargo xtask render`"
        );
    }
}

#[test]
fn the_older_spellings_print_the_same_schemas() {
    assert_eq!(
        auditor(&["allowlist", "schema"]),
        auditor(&["schema", "allowlist"])
    );
    assert_eq!(
        auditor(&["allowlist", "schema", "--overrides"]),
        auditor(&["schema", "overrides"])
    );
    assert_eq!(
        auditor(&["report", "--schema"]),
        auditor(&["schema", "report"])
    );
}

#[test]
fn the_inventory_schema_names_every_top_level_key() {
    let schema: serde_json::Value =
        serde_json::from_str(&auditor(&["schema", "inventory"])).unwrap();
    for key in ["version", "services", "externals", "mesh_upstreams", "mesh"] {
        assert!(schema["properties"][key].is_object(), "{key}: {schema:#}");
    }
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are refused"
    );
}
