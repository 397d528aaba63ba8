//! Exact search: every query scored against every stored vector.

use std::borrow::Cow;
use std::path::Path;

use embedtune_core::Embeddings;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::IndexError;
use crate::file::{self, IndexFile, Kind};
use crate::ids::IdMap;
use crate::index::VectorIndex;
use crate::kernels;
use crate::topk::{Hit, TopK};
use crate::vectors::{
    check_dim, check_search, prepare_batch, prepare_queries, prepare_query, Metric,
};

/// Bytes of stored vectors scored as one block: small enough to stay in a core's L2 cache
/// while a chunk of queries streams over it.
const BLOCK_BYTES: usize = 192 << 10;
/// Most queries one parallel task scores together over the whole index.
const MAX_QUERY_CHUNK: usize = 96;
/// Queries per register tile of the scoring kernel.
const TILE_QUERIES: usize = 6;
/// Rows a single query scores per parallel task.
const SINGLE_TASK_ROWS: usize = 8192;

/// Exact (brute-force) nearest-neighbour index: the ground truth for every other index.
///
/// Vectors are stored contiguously, row-major. A search is a matrix product of the queries with
/// the stored vectors (AVX2/FMA kernels picked at run time), computed block by block in parallel
/// (rayon), each query keeping its best `k` in a bounded heap. A batch reuses every block of
/// stored vectors, loaded once into cache, for up to 96 queries, so batched search is several
/// times faster per query than one query at a time (which is bound by memory bandwidth).
///
/// Results are exact: the `k` highest scores, ties broken by ascending id; a query gets the same
/// hits (and bit-identical scores) alone or inside a batch.
///
/// Removal is immediate (the last vector moves into the freed row).
#[derive(Debug, Clone)]
pub struct FlatIndex {
    dim: usize,
    metric: Metric,
    ids: IdMap,
    rows: Vec<f32>,
}

#[derive(Serialize, Deserialize)]
struct Manifest<'a> {
    dim: usize,
    metric: Metric,
    ids: Cow<'a, [String]>,
}

impl FlatIndex {
    /// An empty index for vectors of `dim` values.
    pub fn new(dim: usize, metric: Metric) -> Result<Self, IndexError> {
        if dim == 0 {
            return Err(IndexError::ZeroDimension);
        }
        Ok(FlatIndex {
            dim,
            metric,
            ids: IdMap::default(),
            rows: Vec::new(),
        })
    }

    /// Loads an index saved by [`VectorIndex::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, IndexError> {
        Self::from_file(&IndexFile::read(path.as_ref())?)
    }

    pub(crate) fn from_file(file: &IndexFile) -> Result<Self, IndexError> {
        file.expect_kind(Kind::Flat)?;
        let m: Manifest = file.manifest()?;
        if m.dim == 0 {
            return Err(file.corrupted("manifest: dimension 0".into()));
        }
        let bytes = file.section(1);
        let expected = m
            .ids
            .len()
            .checked_mul(m.dim)
            .and_then(|n| n.checked_mul(4));
        if expected != Some(bytes.len()) {
            return Err(IndexError::FileDimensionMismatch {
                path: file.path().to_path_buf(),
                reason: format!(
                    "the manifest lists {} vectors of dimension {}, the vectors section holds {} bytes",
                    m.ids.len(),
                    m.dim,
                    bytes.len()
                ),
            });
        }
        let rows: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(i) = rows.iter().position(|x| !x.is_finite()) {
            return Err(file.corrupted(format!("vector {} has a non-finite value", i / m.dim)));
        }
        let ids = IdMap::from_slots(m.ids.into_owned(), |_| true).map_err(|e| file.corrupted(e))?;
        Ok(FlatIndex {
            dim: m.dim,
            metric: m.metric,
            ids,
            rows,
        })
    }

    /// Rows per block of [`BLOCK_BYTES`].
    fn block_rows(&self) -> usize {
        (BLOCK_BYTES / (4 * self.dim)).max(8)
    }

    /// Best `k` for one prepared query, the stored rows split across threads.
    fn search_one(&self, query: &[f32], k: usize) -> Vec<Hit> {
        let dim = self.dim;
        let ids = self.ids.by_slot();
        let task_rows = SINGLE_TASK_ROWS.max(self.block_rows());
        self.rows
            .par_chunks(task_rows * dim)
            .zip(ids.par_chunks(task_rows))
            .map(|(rows, ids)| {
                let mut scores = vec![0.0; ids.len()];
                kernels::score_matrix(query, rows, dim, &mut scores);
                let mut top = TopK::new(k);
                top.scan(&scores, ids);
                top
            })
            .reduce_with(|mut a, b| {
                a.merge(b);
                a
            })
            .map(TopK::into_hits)
            .unwrap_or_default()
    }

    /// Best `k` for a chunk of prepared queries: one pass over the stored rows, block by block.
    fn search_chunk(&self, queries: &[f32], k: usize) -> Vec<Vec<Hit>> {
        let dim = self.dim;
        let n_q = queries.len() / dim;
        let ids = self.ids.by_slot();
        let block = self.block_rows();
        let mut tops: Vec<TopK> = (0..n_q).map(|_| TopK::new(k)).collect();
        let mut scores = vec![0.0; n_q * block];
        for (rows, ids) in self.rows.chunks(block * dim).zip(ids.chunks(block)) {
            let n_r = ids.len();
            kernels::score_matrix(queries, rows, dim, &mut scores);
            for (top, scores) in tops.iter_mut().zip(scores.chunks_exact(n_r)) {
                top.scan(scores, ids);
            }
        }
        tops.into_iter().map(TopK::into_hits).collect()
    }

    /// Best `k` for every prepared query: chunks of queries in parallel when there are enough
    /// of them to keep every thread busy, otherwise one query at a time over split rows.
    fn search_prepared(&self, queries: &[f32], k: usize) -> Vec<Vec<Hit>> {
        let n_q = queries.len() / self.dim;
        let threads = rayon::current_num_threads();
        if n_q < TILE_QUERIES * threads {
            return queries
                .chunks_exact(self.dim)
                .map(|q| self.search_one(q, k))
                .collect();
        }
        // a multiple of the kernel's query tile, at most MAX_QUERY_CHUNK, and at least two
        // chunks per thread when the batch allows
        let chunk = n_q.div_ceil(2 * threads).div_ceil(TILE_QUERIES) * TILE_QUERIES;
        let chunk = chunk.clamp(TILE_QUERIES, MAX_QUERY_CHUNK);
        queries
            .par_chunks(chunk * self.dim)
            .flat_map_iter(|qs| self.search_chunk(qs, k))
            .collect()
    }
}

impl VectorIndex for FlatIndex {
    fn kind(&self) -> &'static str {
        Kind::Flat.name()
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn len(&self) -> usize {
        self.ids.live()
    }

    fn add(&mut self, ids: &[String], vectors: &Embeddings) -> Result<(), IndexError> {
        let rows = prepare_batch(ids, vectors, self.dim, self.metric)?;
        self.ids.check_new(ids)?;
        self.ids.push(ids);
        self.rows.extend_from_slice(&rows);
        Ok(())
    }

    fn remove(&mut self, ids: &[String]) -> Result<(), IndexError> {
        let slots = self.ids.slots_of(ids)?;
        // remove from the highest slot down so that the slots still to remove never move
        let mut slots = slots;
        slots.sort_unstable_by(|a, b| b.cmp(a));
        let dim = self.dim;
        for slot in slots {
            let s = slot as usize;
            if let Some(moved) = self.ids.swap_remove(slot) {
                let m = moved as usize;
                self.rows.copy_within(m * dim..(m + 1) * dim, s * dim);
            }
            self.rows.truncate(self.ids.slots() * dim);
        }
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>, IndexError> {
        check_search(k, self.len())?;
        let query = prepare_query(query, self.dim, self.metric)?;
        Ok(self.search_one(&query, k))
    }

    fn search_batch(&self, queries: &Embeddings, k: usize) -> Result<Vec<Vec<Hit>>, IndexError> {
        check_dim("queries", queries, self.dim)?;
        check_search(k, self.len())?;
        let queries = prepare_queries(queries.as_slice(), self.dim, self.metric)?;
        Ok(self.search_prepared(&queries, k))
    }

    fn save(&self, path: &Path) -> Result<(), IndexError> {
        let manifest = Manifest {
            dim: self.dim,
            metric: self.metric,
            ids: Cow::Borrowed(self.ids.by_slot()),
        };
        let vectors: Vec<u8> = self.rows.iter().flat_map(|x| x.to_le_bytes()).collect();
        file::write(path, Kind::Flat, &manifest, &[&vectors])
    }
}
