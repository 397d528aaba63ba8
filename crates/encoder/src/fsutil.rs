//! Atomic writes: files and whole directories appear complete or not at all.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{io_err, EncoderError, Result};

/// Writes files into a staging directory; see [`write_dir_atomically`].
pub struct DirWriter {
    root: PathBuf,
}

impl DirWriter {
    /// The staging directory, for writers that create their own files or folders in it.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Writes `bytes` to `name` (a relative path; parent folders are created) and syncs it.
    pub fn bytes(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut f = std::fs::File::create(&path).map_err(io_err(&path))?;
        f.write_all(bytes).map_err(io_err(&path))?;
        f.sync_all().map_err(io_err(&path))
    }

    /// Writes `value` as pretty-printed JSON.
    pub fn json(&mut self, name: &str, value: &serde_json::Value) -> Result<()> {
        let mut text =
            serde_json::to_string_pretty(value).map_err(|source| EncoderError::Json {
                path: self.root.join(name),
                source,
            })?;
        text.push('\n');
        self.bytes(name, text.as_bytes())
    }
}

fn sibling(dir: &Path, tag: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    dir.with_file_name(format!(".{name}.{tag}-{}-{nanos}", std::process::id()))
}

/// Replaces directory `dir` with the files `fill` writes, atomically: they go to a sibling
/// staging directory that is renamed into place once complete. A previous `dir` is moved aside
/// and removed only after the rename, so a failure at any point leaves either the old or the
/// new content, never a mixture.
pub fn write_dir_atomically(
    dir: &Path,
    fill: impl FnOnce(&mut DirWriter) -> Result<()>,
) -> Result<()> {
    let dir = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().map_err(io_err(dir))?.join(dir)
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let staging = sibling(&dir, "tmp");
    std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    let mut writer = DirWriter {
        root: staging.clone(),
    };
    if let Err(e) = fill(&mut writer) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let old = if dir.exists() {
        let old = sibling(&dir, "old");
        std::fs::rename(&dir, &old).map_err(io_err(&dir))?;
        Some(old)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&staging, &dir) {
        if let Some(old) = &old {
            let _ = std::fs::rename(old, &dir);
        }
        let _ = std::fs::remove_dir_all(&staging);
        return Err(EncoderError::Io {
            path: dir,
            source: e,
        });
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    Ok(())
}

/// Writes the files `fill` produces into directory `dir`, keeping the files already there that
/// it does not produce: everything is staged in a sibling directory first, then each file is
/// renamed into place (an atomic replacement per file). Use it where `dir` also holds other
/// artefacts, e.g. a training run's logs beside the model it saves.
pub fn write_into_dir(dir: &Path, fill: impl FnOnce(&mut DirWriter) -> Result<()>) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let staging = sibling(dir, "tmp");
    std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    let mut writer = DirWriter {
        root: staging.clone(),
    };
    let result = fill(&mut writer).and_then(|()| move_tree(&staging, dir));
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn move_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).map_err(io_err(from))? {
        let entry = entry.map_err(io_err(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            std::fs::create_dir_all(&dst).map_err(io_err(&dst))?;
            move_tree(&src, &dst)?;
        } else {
            std::fs::rename(&src, &dst).map_err(io_err(&dst))?;
        }
    }
    Ok(())
}

/// Writes one file atomically: a temporary file in the same directory, synced, then renamed.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    let tmp = sibling(path, "tmp");
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(EncoderError::Io {
            path: path.to_path_buf(),
            source: e,
        });
    }
    Ok(())
}
