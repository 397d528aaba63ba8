//! The trait every index implements, and choosing or reloading an index at run time.

use std::path::Path;

use embedtune_core::Embeddings;

use crate::error::IndexError;
use crate::file::{IndexFile, Kind};
use crate::flat::FlatIndex;
use crate::hnsw::{HnswIndex, HnswParams};
use crate::topk::Hit;
use crate::vectors::Metric;

/// A store of id-labelled vectors answering top-k similarity queries.
///
/// Batches of vectors and queries are [`Embeddings`] matrices (one row each), a single query
/// an `f32` slice. Results are
/// sorted by descending score, ties by ascending id. Every invalid input (wrong dimension,
/// NaN/inf, zero vector under cosine, duplicate or unknown id, `k = 0`, empty index) is an
/// [`IndexError`]; a failed call leaves the index unchanged.
pub trait VectorIndex: Send + Sync {
    /// `"flat"` or `"hnsw"`.
    fn kind(&self) -> &'static str;

    /// Values per vector.
    fn dim(&self) -> usize;

    /// How vectors are compared.
    fn metric(&self) -> Metric;

    /// Number of vectors that searches can return.
    fn len(&self) -> usize;

    /// Whether [`len`](Self::len) is 0.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `ids[i]` with the vector `vectors[i]`. Ids must be new and distinct
    /// ([`IndexError::DuplicateId`] otherwise, and nothing is added).
    fn add(&mut self, ids: &[String], vectors: &Embeddings) -> Result<(), IndexError>;

    /// Removes the vectors of `ids`, which must all be present ([`IndexError::UnknownId`]
    /// otherwise, and nothing is removed).
    fn remove(&mut self, ids: &[String]) -> Result<(), IndexError>;

    /// The `k` stored vectors most similar to `query` (fewer if the index holds fewer).
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>, IndexError>;

    /// [`search`](Self::search) for each row of `queries`, in parallel (rayon).
    fn search_batch(&self, queries: &Embeddings, k: usize) -> Result<Vec<Vec<Hit>>, IndexError>;

    /// Writes the index to `path` atomically (temporary file, fsync, rename; missing folders
    /// are created), with [`embedtune_core::write_file_with`]. See [`load_index`] for the
    /// format.
    fn save(&self, path: &Path) -> Result<(), IndexError>;
}

/// Which index to build. The default is exact search with cosine similarity.
///
/// Exact search of a batch is a matrix product: for corpora up to ~100k vectors it is fast
/// enough for evaluation and returns the true top-k, so it is the default. Use HNSW for larger
/// corpora or when single-query latency matters more than exactness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexConfig {
    /// [`FlatIndex`] with this metric.
    Flat {
        /// How vectors are compared.
        metric: Metric,
    },
    /// [`HnswIndex`] (cosine) with these parameters.
    Hnsw(HnswParams),
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig::Flat {
            metric: Metric::Cosine,
        }
    }
}

impl IndexConfig {
    /// An empty index of this configuration for vectors of `dim` values.
    pub fn build(&self, dim: usize) -> Result<Box<dyn VectorIndex>, IndexError> {
        Ok(match *self {
            IndexConfig::Flat { metric } => Box::new(FlatIndex::new(dim, metric)?),
            IndexConfig::Hnsw(params) => Box::new(HnswIndex::new(dim, params)?),
        })
    }
}

/// Loads an index of either kind saved by [`VectorIndex::save`].
///
/// A file is a header (magic `ETINDEX\0`, format version, kind, a length and CRC-32 per section,
/// the header's own CRC-32) followed by its sections: a JSON manifest (dimension, metric, ids by
/// internal slot, and for HNSW its parameters, removed slots and the writer's byte order and
/// word size), then the vectors (flat: `f32` little-endian, row-major) or `hnsw_rs`'s graph and
/// data dumps (HNSW). Every check runs before anything is built: a file that is not an index,
/// has another version, is truncated, fails a checksum, or is inconsistent (dimensions, counts,
/// ids, graph structure) gives a typed error.
pub fn load_index(path: impl AsRef<Path>) -> Result<Box<dyn VectorIndex>, IndexError> {
    from_file(IndexFile::read(path.as_ref())?)
}

/// [`load_index`] on the bytes of a file, as if read from `path` (which names the file in
/// errors; an HNSW graph is staged in its directory). For the fuzz targets.
#[doc(hidden)]
pub fn load_index_from_bytes(
    bytes: Vec<u8>,
    path: &Path,
) -> Result<Box<dyn VectorIndex>, IndexError> {
    from_file(IndexFile::from_bytes(bytes, path)?)
}

fn from_file(file: IndexFile) -> Result<Box<dyn VectorIndex>, IndexError> {
    Ok(match file.kind() {
        Kind::Flat => Box::new(FlatIndex::from_file(&file)?),
        Kind::Hnsw => Box::new(HnswIndex::from_file(&file)?),
    })
}
