//! Matryoshka wrapper: train every prefix of the embedding.

use burn::tensor::{backend::Backend, Tensor};

use crate::ops::normalize;
use crate::{EmbeddingLoss, LossError};

/// Matryoshka representation loss (Kusupati et al. 2022), as sentence-transformers'
/// `MatryoshkaLoss`: the inner loss is applied to the embeddings truncated to each of `dims`
/// (the first `dim` components) and L2-renormalised, and the results are summed with
/// per-dimension weights:
/// `Σ_k weight_k · inner(normalize(columns[.., :dim_k]), labels)`.
///
/// The dimensions are kept in decreasing order (with their weights), as sentence-transformers
/// does. sentence-transformers' `n_dims_per_step` (a random subset of dimensions per step) is
/// not offered.
#[derive(Debug, Clone, PartialEq)]
pub struct MatryoshkaLoss<L> {
    inner: L,
    dims: Vec<usize>,
    weights: Vec<f64>,
}

impl<L> MatryoshkaLoss<L> {
    /// Wraps `inner` for the given dimensions (e.g. `[384, 256, 128, 64]`), all weighted 1.
    ///
    /// Errors if `dims` is empty or contains 0.
    pub fn new(inner: L, dims: &[usize]) -> Result<Self, LossError> {
        Self::with_weights(inner, dims, &vec![1.0; dims.len()])
    }

    /// Wraps `inner` for the given dimensions with one weight each.
    ///
    /// Errors if `dims` is empty or contains 0, if the lengths differ, or if a weight is
    /// negative or not finite.
    pub fn with_weights(inner: L, dims: &[usize], weights: &[f64]) -> Result<Self, LossError> {
        if dims.is_empty() {
            return Err(LossError::invalid(
                "matryoshka_dims",
                "[]",
                "at least one dimension is needed",
            ));
        }
        if weights.len() != dims.len() {
            return Err(LossError::invalid(
                "matryoshka_weights",
                format!("{weights:?}"),
                &format!("needs one weight per dimension ({} dimensions)", dims.len()),
            ));
        }
        for (i, (&d, &w)) in dims.iter().zip(weights).enumerate() {
            if d == 0 {
                return Err(LossError::invalid(
                    format!("matryoshka_dims[{i}]"),
                    d,
                    "must be > 0",
                ));
            }
            if !(w.is_finite() && w >= 0.0) {
                return Err(LossError::invalid(
                    format!("matryoshka_weights[{i}]"),
                    w,
                    "must be finite and >= 0",
                ));
            }
        }
        let mut pairs: Vec<(usize, f64)> =
            dims.iter().copied().zip(weights.iter().copied()).collect();
        pairs.sort_by_key(|p| std::cmp::Reverse(p.0));
        Ok(Self {
            inner,
            dims: pairs.iter().map(|p| p.0).collect(),
            weights: pairs.iter().map(|p| p.1).collect(),
        })
    }

    /// The wrapped loss.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// The dimensions, largest first.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The weight of each of [`dims`](Self::dims).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
}

impl<B: Backend, L: EmbeddingLoss<B>> EmbeddingLoss<B> for MatryoshkaLoss<L> {
    fn loss(
        &self,
        columns: &[Tensor<B, 2>],
        labels: Option<&Tensor<B, 1>>,
    ) -> Result<Tensor<B, 1>, LossError> {
        let max_dim = self.dims[0];
        for (i, c) in columns.iter().enumerate() {
            let d = c.dims()[1];
            if d < max_dim {
                return Err(LossError::invalid(
                    "matryoshka_dims",
                    format!("{:?}", self.dims),
                    &format!("column {i} has dimension {d}, smaller than {max_dim}"),
                ));
            }
        }
        let mut total: Option<Tensor<B, 1>> = None;
        for (&dim, &weight) in self.dims.iter().zip(&self.weights) {
            let truncated: Vec<Tensor<B, 2>> = columns
                .iter()
                .map(|c| normalize(c.clone().narrow(1, 0, dim)))
                .collect();
            let term = self.inner.loss(&truncated, labels)?.mul_scalar(weight);
            total = Some(match total {
                Some(t) => t + term,
                None => term,
            });
        }
        // `dims` is never empty (checked in the constructor).
        total.ok_or_else(|| {
            LossError::invalid("matryoshka_dims", "[]", "at least one dimension is needed")
        })
    }
}
