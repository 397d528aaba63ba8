//! The similarity metric, and the checks and preparation every vector and query goes through
//! before it reaches an index: shape, finiteness, norm, and L2 normalisation for cosine.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use embedtune_core::Embeddings;

use crate::error::{IndexError, Item};
use crate::kernels;

/// How vectors are compared. Scores are "higher is more similar" for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Cosine similarity. Vectors and queries are L2-normalised on the way in (so zero vectors
    /// are rejected) and the score is their inner product, in [-1, 1].
    #[default]
    Cosine,
    /// Raw inner product (maximum inner product search), vectors stored as given.
    InnerProduct,
}

impl Metric {
    /// The metric's name as written in index files and messages: `cosine` or `inner_product`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::InnerProduct => "inner_product",
        }
    }
}

/// Checks one vector in place and, for cosine, normalises it.
fn prepare_row(row: &mut [f32], metric: Metric, item: impl Fn() -> Item) -> Result<(), IndexError> {
    check_row(row, &item)?;
    if metric == Metric::Cosine {
        let norm2 = kernels::dot(row, row);
        if norm2 == 0.0 {
            return Err(IndexError::ZeroVector { item: item() });
        }
        let inv = 1.0 / norm2.sqrt();
        row.iter_mut().for_each(|x| *x *= inv);
    }
    Ok(())
}

/// Finite components and a finite squared norm (so that no inner product can overflow).
fn check_row(row: &[f32], item: &impl Fn() -> Item) -> Result<(), IndexError> {
    if let Some((component, &value)) = row.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(IndexError::NonFinite {
            item: item(),
            component,
            value,
        });
    }
    if !kernels::dot(row, row).is_finite() {
        return Err(IndexError::NormOverflow { item: item() });
    }
    Ok(())
}

/// Validates an `add` batch (one row per id) and returns the rows as the index stores them,
/// row-major (normalised for cosine).
pub(crate) fn prepare_batch(
    ids: &[String],
    vectors: &Embeddings,
    dim: usize,
    metric: Metric,
) -> Result<Vec<f32>, IndexError> {
    check_dim("vectors", vectors, dim)?;
    if ids.len() != vectors.len() {
        return Err(IndexError::BatchShape {
            ids: ids.len(),
            rows: vectors.len(),
        });
    }
    let mut rows = vectors.as_slice().to_vec();
    for (position, row) in rows.chunks_exact_mut(dim).enumerate() {
        prepare_row(row, metric, || Item::Vector {
            id: ids[position].clone(),
            position,
        })?;
    }
    Ok(rows)
}

/// A batch's width is the index's.
pub(crate) fn check_dim(
    what: &'static str,
    batch: &Embeddings,
    dim: usize,
) -> Result<(), IndexError> {
    if batch.dim() != dim {
        return Err(IndexError::BatchDimension {
            what,
            expected: dim,
            found: batch.dim(),
        });
    }
    Ok(())
}

/// Validates one query of `dim` values and returns it ready for scoring.
pub(crate) fn prepare_query(
    query: &[f32],
    dim: usize,
    metric: Metric,
) -> Result<Cow<'_, [f32]>, IndexError> {
    if query.len() != dim {
        return Err(IndexError::DimensionMismatch {
            item: Item::Query { position: 0 },
            expected: dim,
            found: query.len(),
        });
    }
    prepare_queries(query, dim, metric)
}

/// Validates a row-major batch of queries and returns it ready for scoring (borrowed as is for
/// the inner product, a normalised copy for cosine).
pub(crate) fn prepare_queries(
    queries: &[f32],
    dim: usize,
    metric: Metric,
) -> Result<Cow<'_, [f32]>, IndexError> {
    match metric {
        Metric::InnerProduct => {
            for (position, row) in queries.chunks_exact(dim).enumerate() {
                check_row(row, &|| Item::Query { position })?;
            }
            Ok(Cow::Borrowed(queries))
        }
        Metric::Cosine => {
            let mut rows = queries.to_vec();
            for (position, row) in rows.chunks_exact_mut(dim).enumerate() {
                prepare_row(row, metric, || Item::Query { position })?;
            }
            Ok(Cow::Owned(rows))
        }
    }
}

/// The checks every search starts with.
pub(crate) fn check_search(k: usize, live: usize) -> Result<(), IndexError> {
    if k == 0 {
        return Err(IndexError::ZeroK);
    }
    if live == 0 {
        return Err(IndexError::EmptyIndex);
    }
    Ok(())
}
