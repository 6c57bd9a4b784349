//! What the CLI tests share: the workspace root, and a fresh scratch directory.

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
