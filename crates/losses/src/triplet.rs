//! Triplet loss.

use burn::tensor::{activation::relu, backend::Backend, Tensor};

use crate::ops::{check_inputs, check_non_negative, expect_columns};
use crate::{Distance, EmbeddingLoss, LossError};

/// Triplet loss, as sentence-transformers' `TripletLoss`.
///
/// For triplets `(anchor_i, positive_i, negative_i)`:
/// `mean_i relu(d(anchor_i, positive_i) - d(anchor_i, negative_i) + margin)`.
///
/// Columns: `[anchors, positives, negatives]` (`[n, d]` each); labels are ignored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TripletLoss {
    /// Distance. Default euclidean.
    pub distance: Distance,
    /// Margin. Default 5.
    pub margin: f64,
}

impl Default for TripletLoss {
    fn default() -> Self {
        Self {
            distance: Distance::Euclidean,
            margin: 5.0,
        }
    }
}

impl TripletLoss {
    /// The loss with sentence-transformers' defaults (euclidean, margin 5).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the margin.
    pub fn with_margin(mut self, margin: f64) -> Self {
        self.margin = margin;
        self
    }

    /// Sets the distance.
    pub fn with_distance(mut self, distance: Distance) -> Self {
        self.distance = distance;
        self
    }

    /// The loss for `anchors`, `positives` and `negatives` (`[n, d]` each).
    pub fn forward<B: Backend>(
        &self,
        anchors: Tensor<B, 2>,
        positives: Tensor<B, 2>,
        negatives: Tensor<B, 2>,
    ) -> Result<Tensor<B, 1>, LossError> {
        check_non_negative("margin", self.margin)?;
        check_inputs(
            &[
                ("anchors", &anchors),
                ("positives", &positives),
                ("negatives", &negatives),
            ],
            None,
        )?;
        let d_pos = self.distance.pairwise(anchors.clone(), positives, 0.0);
        let d_neg = self.distance.pairwise(anchors, negatives, 0.0);
        Ok(relu((d_pos - d_neg).add_scalar(self.margin)).mean())
    }
}

impl<B: Backend> EmbeddingLoss<B> for TripletLoss {
    fn loss(
        &self,
        columns: &[Tensor<B, 2>],
        _labels: Option<&Tensor<B, 1>>,
    ) -> Result<Tensor<B, 1>, LossError> {
        let [a, p, n] = expect_columns::<B, 3>("TripletLoss", "3", columns)?;
        self.forward(a.clone(), p.clone(), n.clone())
    }
}
