//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use embedtune_index::Hit;

pub const DIM: usize = 384;

/// Reads float16 little-endian values.
pub fn read_f16(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect()
}

/// The committed slice of real SciFact vectors: (2,000 base vectors, 100 queries).
pub fn fixture() -> (Vec<f32>, Vec<f32>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    (
        read_f16(&dir.join("scifact_sentences_2000.f16")),
        read_f16(&dir.join("scifact_queries_100.f16")),
    )
}

/// The shared vectors folder from `EMBEDTUNE_SHARED`, or `None` with the reason printed.
pub fn shared_vectors() -> Option<PathBuf> {
    let Some(shared) = std::env::var_os("EMBEDTUNE_SHARED") else {
        eprintln!("skipped: EMBEDTUNE_SHARED is not set");
        return None;
    };
    let dir = PathBuf::from(shared).join("data/vectors");
    for f in ["scifact_sentences.f16", "scifact_queries.f16"] {
        if !dir.join(f).is_file() {
            eprintln!("skipped: {} is missing", dir.join(f).display());
            return None;
        }
    }
    Some(dir)
}

/// Ids "v00000", "v00001", … (zero-padded, so string order is numeric order).
pub fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("v{i:05}")).collect()
}

/// A deterministic xorshift generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn vectors(&mut self, n: usize, dim: usize) -> Vec<f32> {
        (0..n * dim).map(|_| self.unit()).collect()
    }

    /// Small integers in -3..=3: inner products are exact in f32, and ties are common.
    pub fn small_ints(&mut self, n: usize, dim: usize) -> Vec<f32> {
        (0..n * dim)
            .map(|_| (self.next_u64() % 7) as f32 - 3.0)
            .collect()
    }
}

/// Brute force in f64: every (id, score), best first, ties by ascending id.
pub fn brute_force(
    ids: &[String],
    base: &[f32],
    query: &[f32],
    cosine: bool,
) -> Vec<(String, f64)> {
    let dim = query.len();
    let norm = |v: &[f32]| v.iter().map(|x| *x as f64 * *x as f64).sum::<f64>().sqrt();
    let qn = if cosine { norm(query) } else { 1.0 };
    let mut all: Vec<(String, f64)> = base
        .chunks_exact(dim)
        .zip(ids)
        .map(|(v, id)| {
            let dot: f64 = v
                .iter()
                .zip(query)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            let s = if cosine { dot / (norm(v) * qn) } else { dot };
            (id.clone(), s)
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all
}

/// Asserts that `hits` are the first `hits.len()` entries of the brute-force ranking: scores
/// within `tol`, and the same id at each rank, except where the brute-force scores of the two
/// ids are themselves within `tol` (an order f32 rounding may legitimately swap).
pub fn assert_matches_brute_force(hits: &[Hit], truth: &[(String, f64)], tol: f64) {
    let score_of = |id: &str| truth.iter().find(|t| t.0 == id).map(|t| t.1);
    for (rank, (hit, want)) in hits.iter().zip(truth).enumerate() {
        assert!(
            (hit.score as f64 - want.1).abs() <= tol,
            "rank {rank}: score {} vs brute force {}",
            hit.score,
            want.1
        );
        if hit.id != want.0 {
            let theirs = score_of(&hit.id).expect("hit id is in the index");
            assert!(
                (theirs - want.1).abs() <= tol,
                "rank {rank}: {} (score {theirs}) where brute force has {} (score {})",
                hit.id,
                want.0,
                want.1
            );
        }
    }
}

/// Mean recall@k of `found` against `truth`.
pub fn recall(found: &[Vec<Hit>], truth: &[Vec<Hit>], k: usize) -> f64 {
    let mut hit = 0;
    for (f, t) in found.iter().zip(truth) {
        let want: Vec<&str> = t.iter().take(k).map(|h| h.id.as_str()).collect();
        hit += f
            .iter()
            .take(k)
            .filter(|h| want.contains(&h.id.as_str()))
            .count();
    }
    hit as f64 / (k * truth.len()) as f64
}

/// Rewrites an index file's sections through `edit`, recomputing lengths and checksums as the
/// documented format prescribes (so the result passes every checksum).
pub fn rewrite_sections(path: &Path, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let bytes = std::fs::read(path).unwrap();
    let count = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    let mut at = 24 + 12 * count;
    let mut sections = Vec::new();
    for i in 0..count {
        let e = 20 + 12 * i;
        let len = u64::from_le_bytes(bytes[e..e + 8].try_into().unwrap()) as usize;
        sections.push(bytes[at..at + len].to_vec());
        at += len;
    }
    edit(&mut sections);
    let mut out = bytes[..20].to_vec();
    for s in &sections {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(s).to_le_bytes());
    }
    out.extend_from_slice(&crc32fast::hash(&out).to_le_bytes());
    for s in &sections {
        out.extend_from_slice(s);
    }
    std::fs::write(path, out).unwrap();
}

/// Edits the JSON manifest (section 0) of an index file, keeping it valid.
pub fn edit_manifest(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    rewrite_sections(path, |s| {
        let mut v: serde_json::Value = serde_json::from_slice(&s[0]).unwrap();
        edit(&mut v);
        s[0] = serde_json::to_vec(&v).unwrap();
    });
}

/// A matrix of row-major `values`, `dim` per row (the tests' vectors are flat arrays).
pub fn m(values: &[f32], dim: usize) -> embedtune_index::Embeddings {
    embedtune_index::Embeddings::new(values.to_vec(), dim).expect("whole rows")
}
