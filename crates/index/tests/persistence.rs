//! Save / load round trips, and every way a file can be wrong.

use std::path::{Path, PathBuf};

use embedtune_index::{
    load_index, FlatIndex, HnswIndex, HnswParams, IndexError, Metric, VectorIndex, FORMAT_VERSION,
};

use crate::common::{edit_manifest, fixture, ids, m, rewrite_sections, Rng, DIM};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn hnsw_fixture(n: usize) -> (HnswIndex, Vec<f32>, Vec<f32>) {
    let (base, queries) = fixture();
    let mut index = HnswIndex::new(
        DIM,
        HnswParams {
            ef_search: 40,
            ..HnswParams::default()
        },
    )
    .unwrap();
    index
        .add(&ids(n), &m(&base[..n * DIM], index.dim()))
        .unwrap();
    (index, base, queries)
}

fn small_flat() -> FlatIndex {
    let mut index = FlatIndex::new(6, Metric::InnerProduct).unwrap();
    index
        .add(&ids(20), &m(&Rng::new(7).vectors(20, 6), index.dim()))
        .unwrap();
    index
}

#[test]
fn flat_round_trip_is_identical() {
    let (base, queries) = fixture();
    let mut index = FlatIndex::new(DIM, Metric::Cosine).unwrap();
    index
        .add(&ids(1000), &m(&base[..1000 * DIM], index.dim()))
        .unwrap();
    index.remove(&["v00003".to_string()]).unwrap();
    let dir = tmp();
    let path = dir.path().join("flat.idx");
    index.save(&path).unwrap();
    let loaded = FlatIndex::load(&path).unwrap();
    assert_eq!(
        (loaded.len(), loaded.dim(), loaded.metric()),
        (999, DIM, Metric::Cosine)
    );
    assert_eq!(
        loaded.search_batch(&m(&queries, loaded.dim()), 10).unwrap(),
        index.search_batch(&m(&queries, index.dim()), 10).unwrap()
    );
    let any = load_index(&path).unwrap();
    assert_eq!(any.kind(), "flat");
    assert_eq!(
        any.search(&queries[..DIM], 5).unwrap(),
        index.search(&queries[..DIM], 5).unwrap()
    );
}

#[test]
fn hnsw_round_trip_is_identical_and_accepts_additions() {
    let (mut index, base, queries) = hnsw_fixture(1500);
    index
        .remove(&["v00010".to_string(), "v00020".to_string()])
        .unwrap();
    let dir = tmp();
    let path = dir.path().join("hnsw.idx");
    index.save(&path).unwrap();
    let mut loaded = HnswIndex::load(&path).unwrap();
    assert_eq!(loaded.params(), index.params());
    assert_eq!((loaded.len(), loaded.tombstones()), (1498, 2));
    for ef in [16, 64] {
        assert_eq!(
            loaded
                .search_batch_with_ef(&m(&queries, loaded.dim()), 10, ef)
                .unwrap(),
            index
                .search_batch_with_ef(&m(&queries, index.dim()), 10, ef)
                .unwrap()
        );
    }
    assert_eq!(load_index(&path).unwrap().kind(), "hnsw");
    // no scratch files left beside the index
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["hnsw.idx"]);

    // adding after a reload works, and survives another round trip
    let more = ids(2000)[1500..].to_vec();
    loaded
        .add(&more, &m(&base[1500 * DIM..2000 * DIM], loaded.dim()))
        .unwrap();
    assert_eq!(loaded.len(), 1998);
    for (i, id) in more.iter().enumerate().step_by(25) {
        let v = &base[(1500 + i) * DIM..(1501 + i) * DIM];
        assert_eq!(&loaded.search(v, 1).unwrap()[0].id, id);
    }
    loaded.save(&path).unwrap();
    let again = HnswIndex::load(&path).unwrap();
    assert_eq!(again.len(), 1998);
    assert_eq!(
        again.search_batch(&m(&queries, again.dim()), 10).unwrap(),
        loaded.search_batch(&m(&queries, loaded.dim()), 10).unwrap()
    );
}

#[test]
fn empty_indexes_round_trip() {
    let dir = tmp();
    let path = dir.path().join("e.idx");
    HnswIndex::new(5, HnswParams::default())
        .unwrap()
        .save(&path)
        .unwrap();
    let mut h = HnswIndex::load(&path).unwrap();
    assert!(h.is_empty());
    h.add(&ids(1), &m(&[1.0, 2.0, 3.0, 4.0, 5.0], h.dim()))
        .unwrap();
    assert_eq!(
        h.search(&[1.0, 2.0, 3.0, 4.0, 5.0], 1).unwrap()[0].id,
        "v00000"
    );
    FlatIndex::new(5, Metric::Cosine)
        .unwrap()
        .save(&path)
        .unwrap();
    assert!(FlatIndex::load(&path).unwrap().is_empty());
}

#[test]
fn saving_replaces_atomically_and_reports_io_errors() {
    let dir = tmp();
    let path = dir.path().join("x.idx");
    std::fs::write(&path, b"old contents").unwrap();
    small_flat().save(&path).unwrap();
    assert_eq!(FlatIndex::load(&path).unwrap().len(), 20);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["x.idx"]);

    // missing folders are created (as for models and reports)...
    let nested = dir.path().join("new/dir/x.idx");
    small_flat().save(&nested).unwrap();
    assert_eq!(FlatIndex::load(&nested).unwrap().len(), 20);
    // ...but a folder that cannot be (a file is in the way) is an I/O error naming the path
    let blocked = path.join("y.idx");
    let e = small_flat().save(&blocked).unwrap_err();
    assert!(matches!(e, IndexError::Io { .. }), "{e}");
    assert!(e.to_string().contains("x.idx"), "{e}");
    let (h, _, _) = hnsw_fixture(50);
    assert!(matches!(h.save(&blocked), Err(IndexError::Io { .. })));
    let missing = dir.path().join("no/such/dir/x.idx");
    assert!(matches!(
        FlatIndex::load(&missing),
        Err(IndexError::Io { .. })
    ));
}

/// Saves a small flat and a small HNSW index; returns their paths.
fn saved(dir: &Path) -> [PathBuf; 2] {
    let flat = dir.join("flat.idx");
    small_flat().save(&flat).unwrap();
    let hnsw = dir.join("hnsw.idx");
    hnsw_fixture(300).0.save(&hnsw).unwrap();
    [flat, hnsw]
}

fn load_err(path: &Path) -> IndexError {
    match load_index(path) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e,
    }
}

#[test]
fn truncated_files_are_reported() {
    let dir = tmp();
    for path in saved(dir.path()) {
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 5, 19, 30, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            match load_err(&path) {
                IndexError::Truncated { found, .. } => assert_eq!(found, cut as u64),
                e => panic!("cut at {cut}: {e}"),
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        std::fs::write(&path, &longer).unwrap();
        assert!(matches!(load_err(&path), IndexError::Corrupted { .. }));
    }
}

#[test]
fn corrupted_bytes_fail_their_checksum() {
    let dir = tmp();
    for path in saved(dir.path()) {
        let bytes = std::fs::read(&path).unwrap();
        let count = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
        let header = 24 + 12 * count;
        // one byte in the header table, and one in the middle of every section
        let mut targets = vec![(21, "header".to_string())];
        let mut at = header;
        let names = [
            "manifest",
            if count == 2 { "vectors" } else { "hnsw graph" },
            "hnsw data",
        ];
        for (i, name) in names.iter().enumerate().take(count) {
            let len =
                u64::from_le_bytes(bytes[20 + 12 * i..28 + 12 * i].try_into().unwrap()) as usize;
            targets.push((at + len / 2, format!("{name} section")));
            at += len;
        }
        for (pos, what) in targets {
            let mut b = bytes.clone();
            b[pos] ^= 0x10;
            std::fs::write(&path, &b).unwrap();
            match load_err(&path) {
                IndexError::Corrupted { reason, .. } => {
                    assert!(reason.contains(&what), "{reason} / {what}")
                }
                e => panic!("byte {pos}: {e}"),
            }
        }
        let mut b = bytes.clone();
        b[0] = b'X';
        std::fs::write(&path, &b).unwrap();
        assert!(matches!(load_err(&path), IndexError::NotAnIndexFile { .. }));
        std::fs::write(&path, b"hello, this is not an index").unwrap();
        assert!(matches!(load_err(&path), IndexError::NotAnIndexFile { .. }));
        let mut b = bytes.clone();
        b[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        std::fs::write(&path, &b).unwrap();
        match load_err(&path) {
            IndexError::UnsupportedVersion {
                found, supported, ..
            } => {
                assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION))
            }
            e => panic!("{e}"),
        }
    }
}

#[test]
fn wrong_kind_and_inconsistent_manifests() {
    let dir = tmp();
    let [flat, hnsw] = saved(dir.path());
    assert!(matches!(
        FlatIndex::load(&hnsw),
        Err(IndexError::WrongKind { .. })
    ));
    assert!(matches!(
        HnswIndex::load(&flat),
        Err(IndexError::WrongKind { .. })
    ));

    // a manifest whose dimension disagrees with the data (checksums recomputed)
    for path in [&flat, &hnsw] {
        let original = std::fs::read(path).unwrap();
        edit_manifest(path, |m| m["dim"] = (m["dim"].as_u64().unwrap() + 1).into());
        assert!(
            matches!(load_err(path), IndexError::FileDimensionMismatch { .. }),
            "{}",
            load_err(path)
        );
        std::fs::write(path, &original).unwrap();
        edit_manifest(path, |m| m["ids"][1] = m["ids"][0].clone());
        assert!(
            matches!(load_err(path), IndexError::Corrupted { .. }),
            "duplicate id"
        );
        std::fs::write(path, &original).unwrap();
        edit_manifest(path, |m| {
            m["ids"].as_array_mut().unwrap().pop().map(|_| ()).unwrap()
        });
        assert!(matches!(
            load_err(path),
            IndexError::Corrupted { .. } | IndexError::FileDimensionMismatch { .. }
        ));
        std::fs::write(path, &original).unwrap();
        rewrite_sections(path, |s| s[0] = b"{not json".to_vec());
        assert!(matches!(load_err(path), IndexError::Corrupted { .. }));
        std::fs::write(path, &original).unwrap();
    }
    edit_manifest(&hnsw, |m| m["platform"]["usize_bytes"] = 4.into());
    assert!(matches!(
        load_err(&hnsw),
        IndexError::UnsupportedPlatform { .. }
    ));
    edit_manifest(&hnsw, |m| {
        m["platform"]["usize_bytes"] = 8.into();
        m["params"]["m"] = 12.into();
    });
    assert!(matches!(load_err(&hnsw), IndexError::Corrupted { .. }));
    edit_manifest(&hnsw, |m| {
        m["params"]["m"] = 16.into();
        m["removed"] = serde_json::json!([100000]);
    });
    assert!(matches!(load_err(&hnsw), IndexError::Corrupted { .. }));
}

#[test]
fn tampered_hnsw_dumps_never_reach_hnsw_rs() {
    // damage inside the hnsw_rs dump with valid checksums: the structural check must reject
    // or accept it before hnsw_rs's reader (which panics or exits on bad input) sees it
    let dir = tmp();
    let path = dir.path().join("h.idx");
    let (index, _, queries) = hnsw_fixture(120);
    index.save(&path).unwrap();
    let original = std::fs::read(&path).unwrap();
    let mut rng = Rng::new(11);
    let (mut rejected, mut accepted) = (0, 0);
    for trial in 0..300 {
        std::fs::write(&path, &original).unwrap();
        let section = 1 + trial % 2;
        rewrite_sections(&path, |s| {
            let len = s[section].len();
            // bias towards the structure-heavy start, then anywhere
            let pos = if trial % 3 == 0 {
                rng.next_u64() as usize % 200
            } else {
                rng.next_u64() as usize % len
            };
            s[section][pos] ^= 1 << (rng.next_u64() % 8);
        });
        match HnswIndex::load(&path) {
            Ok(loaded) => {
                accepted += 1;
                // whatever was accepted must be usable
                loaded.search_batch(&m(&queries, loaded.dim()), 5).unwrap();
            }
            Err(IndexError::Corrupted { .. } | IndexError::FileDimensionMismatch { .. }) => {
                rejected += 1
            }
            Err(e) => panic!("trial {trial}: unexpected {e}"),
        }
    }
    eprintln!("tampered dumps: {rejected} rejected, {accepted} accepted (harmless changes)");
    assert!(rejected > 100);
}

/// Makes `dir` read-only for as long as it lives: `chattr +i` where the file system allows it
/// (it binds root too, and tests often run as root), else mode 0555.
struct ReadOnly<'a> {
    dir: &'a Path,
    immutable: bool,
}

impl<'a> ReadOnly<'a> {
    fn new(dir: &'a Path) -> Self {
        let immutable = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !immutable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        Self { dir, immutable }
    }

    /// Whether creating a file in the directory really fails.
    fn effective(&self) -> bool {
        let probe = self.dir.join("probe");
        let refused = std::fs::write(&probe, b"x").is_err();
        let _ = std::fs::remove_file(&probe);
        refused
    }
}

impl Drop for ReadOnly<'_> {
    fn drop(&mut self) {
        if self.immutable {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(self.dir)
                .status();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(self.dir, std::fs::Permissions::from_mode(0o755));
        }
    }
}

#[test]
fn indexes_load_from_a_read_only_directory() {
    let (index, _, queries) = hnsw_fixture(300);
    let dir = tmp();
    let (hnsw, flat) = (dir.path().join("hnsw.idx"), dir.path().join("flat.idx"));
    index.save(&hnsw).unwrap();
    small_flat().save(&flat).unwrap();
    let guard = ReadOnly::new(dir.path());
    if !guard.effective() {
        eprintln!("skipped: cannot make a directory read-only here (root without chattr)");
        return;
    }
    let loaded = HnswIndex::load(&hnsw).unwrap();
    assert_eq!(
        loaded.search_batch(&m(&queries, loaded.dim()), 5).unwrap(),
        index.search_batch(&m(&queries, index.dim()), 5).unwrap()
    );
    assert_eq!(load_index(&flat).unwrap().kind(), "flat");
    drop(guard);
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["flat.idx", "hnsw.idx"]);
}
