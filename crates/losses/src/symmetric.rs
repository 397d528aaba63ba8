//! Symmetric multiple negatives ranking loss.

use burn::tensor::{backend::Backend, Tensor};

use crate::mnrl::split_ranking_columns;
use crate::ops::{diagonal, logsumexp_rows};
use crate::{EmbeddingLoss, LossError, MultipleNegativesRankingLoss, Similarity};

/// Symmetric multiple negatives ranking loss, as sentence-transformers'
/// `MultipleNegativesSymmetricRankingLoss` (directions query→doc and doc→query, each with its
/// own softmax, `partition_mode="per_direction"`).
///
/// With `logits = scale · sim(anchors, [positives; negatives...])` (`[n, n·(1+k)]`) the
/// query→doc term of row i is `logsumexp_j logits[i, j]`, the doc→query term is
/// `logsumexp_j logits[j, i]` over the anchors j (positive i against every anchor), and the loss is
/// `mean_i( (qd_i + dq_i) / 2 - logits[i, i] )`, i.e. the average of the two cross-entropies.
///
/// Columns: `[anchors, positives, negatives...]`; hard negatives only enter the query→doc
/// direction. Labels are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MultipleNegativesSymmetricRankingLoss {
    /// Scale and similarity, as in [`MultipleNegativesRankingLoss`] (defaults 20, cosine).
    pub ranking: MultipleNegativesRankingLoss,
}

impl MultipleNegativesSymmetricRankingLoss {
    /// The loss with sentence-transformers' defaults (scale 20, cosine).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the scale.
    pub fn with_scale(mut self, scale: f64) -> Self {
        self.ranking.scale = scale;
        self
    }

    /// Sets the similarity function.
    pub fn with_similarity(mut self, similarity: Similarity) -> Self {
        self.ranking.similarity = similarity;
        self
    }

    /// The loss for `anchors`, `positives` and optional hard-negative columns (`[n, d]` each).
    pub fn forward<B: Backend>(
        &self,
        anchors: Tensor<B, 2>,
        positives: Tensor<B, 2>,
        negatives: Vec<Tensor<B, 2>>,
    ) -> Result<Tensor<B, 1>, LossError> {
        let n = anchors.dims()[0];
        let logits = self.ranking.logits(anchors, positives, negatives)?;
        let positive = diagonal(logits.clone());
        let doc_to_query = logits.clone().narrow(1, 0, n).transpose();
        let log_z = (logsumexp_rows(logits) + logsumexp_rows(doc_to_query)).div_scalar(2.0);
        Ok((log_z - positive).mean())
    }
}

impl<B: Backend> EmbeddingLoss<B> for MultipleNegativesSymmetricRankingLoss {
    fn loss(
        &self,
        columns: &[Tensor<B, 2>],
        _labels: Option<&Tensor<B, 1>>,
    ) -> Result<Tensor<B, 1>, LossError> {
        let (a, p, n) = split_ranking_columns("MultipleNegativesSymmetricRankingLoss", columns)?;
        self.forward(a, p, n)
    }
}
