//! Vector indexes for embeddings: store `f32` vectors under string ids, answer top-k queries.
//!
//! No deep-learning dependency: [`Embeddings`] matrices (or a single `f32` slice) in, `(id, score)`
//! hits out, so any project can use it. Two indexes implement [`VectorIndex`]:
//!
//! - [`FlatIndex`]: exact search (cosine or inner product), a blocked matrix product with
//!   run-time-selected AVX2/FMA kernels, parallel, top-k by bounded heap. The ground truth, and
//!   the default ([`IndexConfig::default`]): batched exact search beats HNSW outright on corpora
//!   up to ~100k vectors.
//! - [`HnswIndex`]: approximate search over a graph built by `hnsw_rs` (cosine), `ef_search` per
//!   query, parallel insertion and batch search, tombstone removal plus [`HnswIndex::rebuild`].
//!   Searches run over the graph laid out in flat arrays (as fast as hnswlib at equal recall on
//!   SciFact, `BENCHMARKS.md`).
//!
//! Both save to a single checksummed file, written atomically, and reload with every check done
//! before use ([`load_index`]).
//!
//! ```
//! use embedtune_index::{Embeddings, FlatIndex, Metric, VectorIndex};
//!
//! let mut index = FlatIndex::new(3, Metric::Cosine)?;
//! let ids = ["apple", "pear", "car"].map(String::from);
//! let vectors = Embeddings::new(vec![1.0, 0.0, 0.0, 0.8, 0.6, 0.0, 0.0, 0.0, 1.0], 3).unwrap();
//! index.add(&ids, &vectors)?;
//!
//! let hits = index.search(&[2.0, 0.2, 0.0], 2)?;
//! assert_eq!(hits[0].id, "apple");
//! assert_eq!(hits[1].id, "pear");
//! assert!(hits[0].score > hits[1].score && hits[0].score <= 1.0);
//!
//! // invalid input is a typed error, never a panic
//! assert!(index.search(&[1.0, f32::NAN, 0.0], 2).is_err());
//! # Ok::<(), embedtune_index::IndexError>(())
//! ```

#![warn(missing_docs)]

mod error;
mod file;
mod flat;
mod hnsw;
mod ids;
mod index;
mod kernels;
mod topk;
mod vectors;

pub use embedtune_core::Embeddings;
pub use error::{IndexError, Item, Result};
pub use file::{FORMAT_VERSION, MAGIC};
pub use flat::FlatIndex;
pub use hnsw::{HnswIndex, HnswParams};
pub use index::{load_index, load_index_from_bytes, IndexConfig, VectorIndex};
pub use topk::Hit;
pub use vectors::Metric;
