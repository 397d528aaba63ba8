// Shared by the file-based fuzz targets (included with `include!`): a scratch directory in
// tmpfs for the files a loader reads, and the seed-writing hook.

use std::path::{Path, PathBuf};

/// A per-process scratch directory under `/dev/shm` (tmpfs: no disk writes per input), or the
/// system temporary directory where there is no `/dev/shm`.
#[allow(dead_code)]
fn scratch(target: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("embedtune-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Writes `seeds` (name, bytes) into `$EMBEDTUNE_FUZZ_SEEDS` when it is set (the README's run
/// command passes that directory to libFuzzer as a second corpus, read after this hook ran).
#[allow(dead_code)]
fn write_seeds(seeds: &[(String, Vec<u8>)]) {
    let Some(dir) = std::env::var_os("EMBEDTUNE_FUZZ_SEEDS") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("seed directory");
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("seed file");
    }
}

/// A file of the shared test assets (`$EMBEDTUNE_SHARED`, default `/work/shared`), if present.
#[allow(dead_code)]
fn shared_file(rel: &str) -> Option<Vec<u8>> {
    let base = std::env::var_os("EMBEDTUNE_SHARED").unwrap_or_else(|| "/work/shared".into());
    std::fs::read(Path::new(&base).join(rel)).ok()
}

/// Every error must name `path` (the file or directory it is about).
#[allow(dead_code)]
fn assert_names(error: &dyn std::fmt::Display, path: &Path) {
    let message = error.to_string();
    assert!(
        message.contains(&*path.to_string_lossy()),
        "the error does not name {}: {message}",
        path.display()
    );
}
