//! CoSENT loss for pairs with a similarity score.

use burn::tensor::{backend::Backend, Tensor};

use crate::ops::{check_inputs, check_positive, expect_columns, expect_labels};
use crate::{EmbeddingLoss, LossError, Similarity};

/// CoSENT loss, as sentence-transformers' `CoSENTLoss`.
///
/// For pairs `(first_i, second_i)` with gold scores `scores_i` and predicted similarities
/// `s_i = scale · sim(first_i, second_i)`, the loss penalises every pair of pairs ranked the
/// wrong way round:
/// `log(1 + Σ_{i,j: scores_i < scores_j} exp(s_i - s_j))`
/// (a logsumexp over those differences with a zero prepended). Only the order of the gold scores
/// matters; ties contribute nothing.
///
/// Columns: `[first, second]` (`[n, d]` each); labels: the gold scores (`[n]`), required.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoSentLoss {
    /// Multiplies the similarities. Default 20.
    pub scale: f64,
    /// Similarity of the two texts of a pair. Default cosine.
    pub similarity: Similarity,
}

impl Default for CoSentLoss {
    fn default() -> Self {
        Self {
            scale: 20.0,
            similarity: Similarity::Cosine,
        }
    }
}

impl CoSentLoss {
    /// The loss with sentence-transformers' defaults (scale 20, cosine).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the scale.
    pub fn with_scale(mut self, scale: f64) -> Self {
        self.scale = scale;
        self
    }

    /// Sets the similarity function.
    pub fn with_similarity(mut self, similarity: Similarity) -> Self {
        self.similarity = similarity;
        self
    }

    /// The loss for pairs `(first_i, second_i)` (`[n, d]` each) with gold `scores` (`[n]`).
    pub fn forward<B: Backend>(
        &self,
        first: Tensor<B, 2>,
        second: Tensor<B, 2>,
        scores: Tensor<B, 1>,
    ) -> Result<Tensor<B, 1>, LossError> {
        check_positive("scale", self.scale)?;
        check_inputs(
            &[("first", &first), ("second", &second)],
            Some(("scores", &scores)),
        )?;
        let n = first.dims()[0];

        let s = self
            .similarity
            .pairwise(first, second)
            .mul_scalar(self.scale);
        // diff[i, j] = s_i - s_j, kept where scores_i < scores_j.
        let diff = s.clone().reshape([n, 1]).expand([n, n]) - s.reshape([1, n]).expand([n, n]);
        let wrong_order = scores
            .clone()
            .reshape([n, 1])
            .expand([n, n])
            .lower(scores.reshape([1, n]).expand([n, n]));
        let diff = diff
            .mask_fill(wrong_order.bool_not(), f64::NEG_INFINITY)
            .reshape([1, n * n]);
        // log(1 + Σ exp(diff)) = m + log(exp(-m) + Σ exp(diff - m)) with m = max(0, max diff):
        // sentence-transformers' logsumexp over the differences with a zero prepended.
        let m = diff.clone().detach().max_dim(1).clamp_min(0.0);
        let sum = (diff - m.clone()).exp().sum_dim(1) + m.clone().neg().exp();
        Ok((sum.log() + m).reshape([1]))
    }
}

impl<B: Backend> EmbeddingLoss<B> for CoSentLoss {
    fn loss(
        &self,
        columns: &[Tensor<B, 2>],
        labels: Option<&Tensor<B, 1>>,
    ) -> Result<Tensor<B, 1>, LossError> {
        let [a, b] = expect_columns::<B, 2>("CoSentLoss", "2", columns)?;
        let scores = expect_labels("CoSentLoss", labels)?;
        self.forward(a.clone(), b.clone(), scores.clone())
    }
}
