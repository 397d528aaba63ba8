//! Multiple negatives ranking loss (InfoNCE with in-batch negatives).

use burn::tensor::{backend::Backend, Tensor};

use crate::ops::{check_inputs, check_positive, diagonal, logsumexp_rows};
use crate::{EmbeddingLoss, LossError, Similarity};

/// Multiple negatives ranking loss, as sentence-transformers' `MultipleNegativesRankingLoss`
/// (default `directions=("query_to_doc",)`).
///
/// For a batch of `n` (anchor, positive, negative₁, …, negative_k) rows, anchor i is scored
/// against every positive and every hard negative of the batch,
/// `logits[i, j] = scale · sim(anchor_i, candidate_j)` with the candidates
/// `[positives; negatives₁; …; negatives_k]` (`n·(1+k)` of them), and the loss is the mean
/// cross-entropy with target `j = i`:
/// `mean_i( logsumexp_j(logits[i, j]) - logits[i, i] )`.
///
/// Columns (for [`EmbeddingLoss::loss`]): `[anchors, positives, negatives...]`, all `[n, d]`;
/// labels are ignored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultipleNegativesRankingLoss {
    /// Multiplies the similarities before the softmax (inverse temperature). Default 20.
    pub scale: f64,
    /// Similarity function. Default cosine.
    pub similarity: Similarity,
}

impl Default for MultipleNegativesRankingLoss {
    fn default() -> Self {
        Self {
            scale: 20.0,
            similarity: Similarity::Cosine,
        }
    }
}

impl MultipleNegativesRankingLoss {
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

    /// The loss for `anchors` and `positives` (`[n, d]` each) with any number of hard-negative
    /// columns (`[n, d]` each): a one-element tensor.
    pub fn forward<B: Backend>(
        &self,
        anchors: Tensor<B, 2>,
        positives: Tensor<B, 2>,
        negatives: Vec<Tensor<B, 2>>,
    ) -> Result<Tensor<B, 1>, LossError> {
        let logits = self.logits(anchors, positives, negatives)?;
        let positive = diagonal(logits.clone());
        Ok((logsumexp_rows(logits) - positive).mean())
    }

    /// Checks the inputs and returns the scaled similarity logits `[n, n·(1+k)]` of the anchors
    /// against `[positives; negatives...]`.
    pub(crate) fn logits<B: Backend>(
        &self,
        anchors: Tensor<B, 2>,
        positives: Tensor<B, 2>,
        negatives: Vec<Tensor<B, 2>>,
    ) -> Result<Tensor<B, 2>, LossError> {
        check_positive("scale", self.scale)?;
        let names: Vec<String> = (0..negatives.len())
            .map(|i| format!("negatives[{i}]"))
            .collect();
        let mut columns = vec![("anchors", &anchors), ("positives", &positives)];
        columns.extend(names.iter().map(String::as_str).zip(negatives.iter()));
        check_inputs(&columns, None)?;

        let mut candidates = Vec::with_capacity(1 + negatives.len());
        candidates.push(positives);
        candidates.extend(negatives);
        let candidates = Tensor::cat(candidates, 0);
        Ok(self
            .similarity
            .matrix(anchors, candidates)
            .mul_scalar(self.scale))
    }
}

/// Anchors, positives, and the hard-negative columns.
pub(crate) type RankingColumns<B> = (Tensor<B, 2>, Tensor<B, 2>, Vec<Tensor<B, 2>>);

/// Splits `[anchors, positives, negatives...]` for the ranking losses.
pub(crate) fn split_ranking_columns<B: Backend>(
    loss: &'static str,
    columns: &[Tensor<B, 2>],
) -> Result<RankingColumns<B>, LossError> {
    match columns {
        [anchors, positives, negatives @ ..] => {
            Ok((anchors.clone(), positives.clone(), negatives.to_vec()))
        }
        _ => Err(LossError::ColumnCount {
            loss,
            expected: "at least 2",
            got: columns.len(),
        }),
    }
}

impl<B: Backend> EmbeddingLoss<B> for MultipleNegativesRankingLoss {
    fn loss(
        &self,
        columns: &[Tensor<B, 2>],
        _labels: Option<&Tensor<B, 1>>,
    ) -> Result<Tensor<B, 1>, LossError> {
        let (a, p, n) = split_ranking_columns("MultipleNegativesRankingLoss", columns)?;
        self.forward(a, p, n)
    }
}
