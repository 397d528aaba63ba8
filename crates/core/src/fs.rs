//! Atomic writes: files and whole directories appear complete or not at all, and a process
//! killed in the middle of a save leaves nothing that the next save or load cannot repair.
//!
//! Every save stages its content in a sibling named `.{target}.tmp-{pid}-{nanos}` (or moves an
//! old directory aside as `.{target}.old-{pid}-{nanos}`). Such names left by a process that no
//! longer runs are recovered by the next save into the same directory, and by
//! [`recover_interrupted`] (which the encoder calls before loading a model):
//! a staged directory that was committed ([`write_into_dir`]) is completed, an old directory
//! whose replacement never arrived is put back, anything else is removed.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file-system operation of an atomic write (or of the repair of an interrupted one) failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct FsError {
    /// The file or directory.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

type Result<T, E = FsError> = std::result::Result<T, E>;

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> FsError {
    let path = path.into();
    move |source| FsError { path, source }
}

/// Tag of staging siblings.
const TMP: &str = "tmp";
/// Tag of directories moved aside while being replaced (platforms without an atomic exchange).
const OLD: &str = "old";
/// Written last into a [`write_into_dir`] staging directory: its files are complete and may be
/// moved in by whoever finds it.
const COMMIT: &str = ".embedtune-commit";

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

    /// Writes `value` as pretty-printed JSON with a final newline.
    pub fn json(&mut self, name: &str, value: &impl serde::Serialize) -> Result<()> {
        let mut text = serde_json::to_string_pretty(value).map_err(|e| FsError {
            path: self.root.join(name),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        text.push('\n');
        self.bytes(name, text.as_bytes())
    }
}

/// A staging or moved-aside sibling of `target`, unique to this process and moment.
fn sibling(target: &Path, tag: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    target.with_file_name(format!(".{name}.{tag}-{}-{nanos}", std::process::id()))
}

/// `(target name, tag, pid)` of a name made by [`sibling`].
fn parse_sibling(file_name: &str) -> Option<(&str, &str, u32)> {
    let rest = file_name.strip_prefix('.')?;
    let (head, nanos) = rest.rsplit_once('-')?;
    let (head, pid) = head.rsplit_once('-')?;
    let (name, tag) = head.rsplit_once('.')?;
    if name.is_empty()
        || !(tag == TMP || tag == OLD)
        || nanos.is_empty()
        || !nanos.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((name, tag, pid.parse().ok()?))
}

/// Whether process `pid` may still be running (and so may still be using its staging files).
/// Where that cannot be told, it is assumed to run.
fn may_be_running(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Absolute form of `path` (relative to the current directory), without touching the disk.
fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir().map_err(io_err(path))?.join(path))
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Syncs directory `dir` itself, so that renames and new entries in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(io_err(dir))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Syncs every file and directory under `root` (and `root`).
fn sync_tree(root: &Path) -> Result<()> {
    for entry in std::fs::read_dir(root).map_err(io_err(root))? {
        let path = entry.map_err(io_err(root))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&path))?;
        }
    }
    sync_dir(root)
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// Repairs what interrupted saves left in `parent` by processes that no longer run: committed
/// staging directories are moved into their target, a directory moved aside whose target is
/// missing is put back, and every other leftover is removed. With `only`, just the leftovers of
/// that target name are looked at. Failing to remove a leftover is not an error; failing to
/// complete or roll back a save is.
fn recover_in(parent: &Path, only: Option<&str>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(()); // nothing there yet, or unreadable: nothing we can repair
    };
    let mut repaired = false;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some((name, tag, pid)) = file_name.to_str().and_then(parse_sibling) else {
            continue;
        };
        if only.is_some_and(|o| o != name) || may_be_running(pid) {
            continue;
        }
        let (path, target) = (entry.path(), parent.join(name));
        if tag == TMP && path.join(COMMIT).is_file() {
            std::fs::create_dir_all(&target).map_err(io_err(&target))?;
            move_tree(&path, &target)?;
            sync_dir(&target)?;
            repaired = true;
        } else if tag == OLD && !target.exists() {
            std::fs::rename(&path, &target).map_err(io_err(&target))?;
            repaired = true;
            continue;
        }
        let _ = remove_any(&path);
    }
    if repaired {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Completes or rolls back an interrupted save of `target` (a directory or file written by this
/// module) left by a process that no longer runs, so that `target` holds one whole save. A no-op
/// when there is nothing to repair; an error only when a repair is needed and fails (e.g. a
/// read-only directory).
pub fn recover_interrupted(target: &Path) -> Result<()> {
    let target = absolute(target)?;
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    recover_in(parent_of(&target), Some(name))
}

/// Removes a staging path on drop unless disarmed.
struct Staging(Option<PathBuf>);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = remove_any(&p);
        }
    }
}

/// Swaps two paths atomically (`renameat2(RENAME_EXCHANGE)`); `Ok(false)` where the platform or
/// file system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them as given (absolute).
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<bool> {
    Ok(false)
}

/// Puts the complete directory `staging` in place of `dir`. With an atomic exchange (Linux),
/// `dir` always names the old or the new content; elsewhere the old one is moved aside first,
/// and a kill between the two renames is rolled back by the next [`recover_interrupted`].
fn replace_dir(staging: &Path, dir: &Path, allow_exchange: bool) -> Result<()> {
    let parent = parent_of(dir);
    if !dir.exists() {
        std::fs::rename(staging, dir).map_err(io_err(dir))?;
        return sync_dir(parent);
    }
    if allow_exchange && exchange(staging, dir).map_err(io_err(dir))? {
        sync_dir(parent)?;
        // `staging` now holds the old content.
        std::fs::remove_dir_all(staging).map_err(io_err(staging))?;
        return Ok(());
    }
    let old = sibling(dir, OLD);
    std::fs::rename(dir, &old).map_err(io_err(dir))?;
    if let Err(e) = std::fs::rename(staging, dir) {
        let _ = std::fs::rename(&old, dir);
        return Err(FsError {
            path: dir.to_path_buf(),
            source: e,
        });
    }
    sync_dir(parent)?;
    std::fs::remove_dir_all(&old).map_err(io_err(&old))
}

/// Replaces directory `dir` with the files `fill` writes, atomically: they go to a sibling
/// staging directory, synced, which then takes `dir`'s place in one step (Linux's
/// `RENAME_EXCHANGE`; elsewhere a move-aside that the next save or load rolls back if
/// interrupted). A failure or a kill at any point leaves either the old or the new content,
/// never a mixture, and no staging directory that outlives the next save.
pub fn write_dir_atomically<E: From<FsError>>(
    dir: &Path,
    fill: impl FnOnce(&mut DirWriter) -> Result<(), E>,
) -> Result<(), E> {
    write_dir_with(dir, fill, true)
}

fn write_dir_with<E: From<FsError>>(
    dir: &Path,
    fill: impl FnOnce(&mut DirWriter) -> Result<(), E>,
    allow_exchange: bool,
) -> Result<(), E> {
    let dir = absolute(dir)?;
    let parent = parent_of(&dir);
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    recover_in(parent, None)?;
    let staging = sibling(&dir, TMP);
    std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    let mut guard = Staging(Some(staging.clone()));
    let mut writer = DirWriter {
        root: staging.clone(),
    };
    fill(&mut writer)?;
    sync_tree(&staging)?;
    replace_dir(&staging, &dir, allow_exchange)?;
    guard.0 = None;
    Ok(())
}

/// Writes the files `fill` produces into directory `dir`, keeping the files already there that
/// it does not produce (e.g. a training run's logs beside the model it saves). Everything is
/// staged and synced in a sibling directory, which is then marked committed; only then are the
/// files renamed into place one by one. A kill during the renames leaves the committed staging
/// directory, and the next save into `dir` or [`recover_interrupted`] (called by
/// the encoder's model loading) finishes moving it in.
pub fn write_into_dir<E: From<FsError>>(
    dir: &Path,
    fill: impl FnOnce(&mut DirWriter) -> Result<(), E>,
) -> Result<(), E> {
    let dir = absolute(dir)?;
    let parent = parent_of(&dir);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    recover_in(parent, None)?;
    let staging = sibling(&dir, TMP);
    std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    let _guard = Staging(Some(staging.clone()));
    let mut writer = DirWriter {
        root: staging.clone(),
    };
    fill(&mut writer)?;
    sync_tree(&staging)?;
    writer.bytes(COMMIT, b"")?;
    sync_dir(&staging)?;
    move_tree(&staging, &dir)?;
    Ok(sync_dir(&dir)?)
}

/// Moves every file under `from` to the same relative path under `to` (the commit marker
/// excepted), creating folders as needed; each move is an atomic rename.
fn move_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).map_err(io_err(from))? {
        let entry = entry.map_err(io_err(from))?;
        if entry.file_name() == COMMIT {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            std::fs::create_dir_all(&dst).map_err(io_err(&dst))?;
            move_tree(&src, &dst)?;
            sync_dir(&dst)?;
        } else {
            std::fs::rename(&src, &dst).map_err(io_err(&dst))?;
        }
    }
    Ok(())
}

/// Writes one file atomically: a temporary sibling, synced, renamed over `path`, and the
/// directory synced. Readers see the old file or the new one, never a partial one; a kill
/// leaves at most a temporary sibling, which the next write into that directory removes.
/// Missing parent directories are created.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file_with(path, |out| out.write_all(bytes))
}

/// [`write_file_atomically`] with the content streamed by `fill` into a buffered writer (for
/// files too large to build in memory first).
pub fn write_file_with(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<&std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let path = absolute(path)?;
    let parent = parent_of(&path);
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    recover_in(parent, path.file_name().and_then(|n| n.to_str()))?;
    let tmp = sibling(&path, TMP);
    let mut guard = Staging(Some(tmp.clone()));
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, &file);
            fill(&mut out)?;
            out.flush()?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    result.map_err(io_err(&path))?;
    guard.0 = None;
    sync_dir(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_file() {
                out.push((name, std::fs::read_to_string(e.path()).unwrap()));
            } else {
                out.push((name, "<dir>".into()));
            }
        }
        out.sort();
        out
    }

    /// A pid no process has (Linux's pid_max is at most 2^22).
    const DEAD: u32 = 4_194_304 + 17;

    fn dead_sibling(target: &Path, tag: &str) -> PathBuf {
        let name = target.file_name().unwrap().to_string_lossy();
        target.with_file_name(format!(".{name}.{tag}-{DEAD}-1"))
    }

    #[test]
    fn sibling_names_round_trip() {
        let s = sibling(Path::new("/x/step-10"), TMP);
        let name = s.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            parse_sibling(name),
            Some(("step-10", TMP, std::process::id()))
        );
        assert_eq!(parse_sibling(".a.b.old-12-34"), Some(("a.b", OLD, 12)));
        for bad in [
            "step-10",
            ".x.tmp-1",
            ".x.new-1-2",
            "..tmp-1-2",
            ".x.tmp-a-2",
        ] {
            assert_eq!(parse_sibling(bad), None, "{bad}");
        }
    }

    #[test]
    fn replacing_a_directory_keeps_no_staging_and_works_with_and_without_exchange() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("model");
        for (round, exchange) in [(1, true), (2, false), (3, true)] {
            write_dir_with(
                &dir,
                |w| {
                    w.bytes("a.txt", format!("{round}").as_bytes())?;
                    if round == 1 {
                        w.bytes("only-first.txt", b"x")?;
                    }
                    Ok::<(), FsError>(())
                },
                exchange,
            )
            .unwrap();
            let mut want = vec![("a.txt".to_string(), round.to_string())];
            if round == 1 {
                want.push(("only-first.txt".into(), "x".into()));
            }
            assert_eq!(files(&dir), want); // nothing of an earlier save survives

            assert_eq!(files(tmp.path()), vec![("model".into(), "<dir>".into())]);
        }
    }

    #[test]
    fn a_failing_fill_leaves_the_old_directory_and_no_staging() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("model");
        write_dir_atomically(&dir, |w| w.bytes("a.txt", b"old")).unwrap();
        let err = write_dir_atomically(&dir, |w| {
            w.bytes("a.txt", b"new")?;
            Err(FsError {
                path: "fill".into(),
                source: std::io::Error::other("refused"),
            })
        });
        assert!(err.is_err());
        assert_eq!(files(&dir), vec![("a.txt".into(), "old".into())]);
        assert_eq!(files(tmp.path()).len(), 1);
    }

    #[test]
    fn a_save_killed_between_the_renames_is_rolled_back() {
        // The state a kill leaves on a platform without an atomic exchange: the old directory
        // moved aside, the new one staged, the target missing.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("model");
        let old = dead_sibling(&dir, OLD);
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("a.txt"), "old").unwrap();
        let staged = dead_sibling(&dir, TMP);
        std::fs::create_dir_all(&staged).unwrap();
        std::fs::write(staged.join("a.txt"), "half").unwrap();
        recover_interrupted(&dir).unwrap();
        assert_eq!(files(&dir), vec![("a.txt".into(), "old".into())]);
        assert_eq!(files(tmp.path()), vec![("model".into(), "<dir>".into())]);
    }

    #[test]
    fn a_committed_write_into_dir_is_completed_and_an_uncommitted_one_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("log.txt"), "log").unwrap();
        std::fs::write(dir.join("a.txt"), "new").unwrap(); // moved before the kill
        std::fs::write(dir.join("b.txt"), "old").unwrap();
        let staged = dead_sibling(&dir, TMP);
        std::fs::create_dir_all(staged.join("sub")).unwrap();
        std::fs::write(staged.join("b.txt"), "new").unwrap();
        std::fs::write(staged.join("sub/c.txt"), "new").unwrap();
        std::fs::write(staged.join(COMMIT), "").unwrap();
        // An uncommitted staging directory of another dead save.
        let half = dir.with_file_name(format!(".run.tmp-{}-2", DEAD + 1));
        std::fs::create_dir_all(&half).unwrap();
        std::fs::write(half.join("a.txt"), "half").unwrap();
        recover_interrupted(&dir).unwrap();
        assert_eq!(
            files(&dir),
            vec![
                ("a.txt".into(), "new".into()),
                ("b.txt".into(), "new".into()),
                ("log.txt".into(), "log".into()),
                ("sub".into(), "<dir>".into()),
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("sub/c.txt")).unwrap(),
            "new"
        );
        assert_eq!(files(tmp.path()), vec![("run".into(), "<dir>".into())]);
    }

    #[test]
    fn saves_clean_up_dead_leftovers_of_other_targets_but_not_live_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let dead = dead_sibling(&tmp.path().join("step-3"), TMP);
        std::fs::create_dir_all(&dead).unwrap();
        let dead_file = dead_sibling(&tmp.path().join("report.json"), TMP);
        std::fs::write(&dead_file, "{").unwrap();
        let live = sibling(&tmp.path().join("step-4"), TMP); // this process: in use
        std::fs::create_dir_all(&live).unwrap();
        write_dir_atomically(&tmp.path().join("step-5"), |w| w.bytes("x", b"1")).unwrap();
        assert!(!dead.exists() && !dead_file.exists());
        assert!(live.exists());
    }

    #[test]
    fn write_into_dir_keeps_other_files_and_leaves_no_marker() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("log.txt"), "log").unwrap();
        write_into_dir(&dir, |w| w.bytes("sub/m.txt", b"m")).unwrap();
        assert_eq!(
            files(&dir),
            vec![
                ("log.txt".into(), "log".into()),
                ("sub".into(), "<dir>".into())
            ]
        );
        assert_eq!(files(tmp.path()).len(), 1);
        write_file_atomically(&dir.join("r.json"), b"{}").unwrap();
        assert_eq!(files(&dir).len(), 3);
    }
}
