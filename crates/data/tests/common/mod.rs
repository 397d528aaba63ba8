//! Shared test helpers (included with `mod common;`).
#![allow(dead_code)]

use std::path::PathBuf;

/// A fixture file path.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `$EMBEDTUNE_SHARED/<rel>` if the variable is set and the path exists; otherwise prints why
/// the test is skipped and returns `None`.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let Some(root) = std::env::var_os("EMBEDTUNE_SHARED") else {
        eprintln!("skipped: EMBEDTUNE_SHARED is not set");
        return None;
    };
    let path = PathBuf::from(root).join(rel);
    if !path.exists() {
        eprintln!("skipped: {} does not exist", path.display());
        return None;
    }
    Some(path)
}
