//! Contrastive loss for labelled pairs.

use burn::tensor::{activation::relu, backend::Backend, Tensor};

use crate::ops::{check_inputs, check_non_negative, expect_columns, expect_labels};
use crate::{Distance, EmbeddingLoss, LossError};

/// PyTorch's `pairwise_distance` `eps`, which sentence-transformers' `ContrastiveLoss` inherits
/// for its euclidean and manhattan distances.
const PAIRWISE_DISTANCE_EPS: f64 = 1e-6;

/// Contrastive loss (Hadsell et al. 2006), as sentence-transformers' `ContrastiveLoss`.
///
/// For pairs `(first_i, second_i)` with labels `y_i` (1 = similar, 0 = dissimilar) and distance
/// `d_i`, each pair costs `0.5 · (y_i · d_i² + (1 - y_i) · relu(margin - d_i)²)`; the loss is their
/// mean (`size_average`, the default) or sum. Labels other than 0/1 are used as weights, as in
/// sentence-transformers.
///
/// Columns: `[first, second]` (`[n, d]` each); labels: `[n]`, required.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContrastiveLoss {
    /// Distance between the two embeddings of a pair. Default cosine distance `1 - cos`.
    /// Euclidean and manhattan add PyTorch's `pairwise_distance` eps (1e-6) to each difference,
    /// as sentence-transformers does.
    pub distance: Distance,
    /// Dissimilar pairs closer than this are penalised. Default 0.5.
    pub margin: f64,
    /// Mean over the pairs if true (default), sum otherwise.
    pub size_average: bool,
}

impl Default for ContrastiveLoss {
    fn default() -> Self {
        Self {
            distance: Distance::Cosine,
            margin: 0.5,
            size_average: true,
        }
    }
}

impl ContrastiveLoss {
    /// The loss with sentence-transformers' defaults (cosine distance, margin 0.5, mean).
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

    /// Sums instead of averaging over the pairs when `false`.
    pub fn with_size_average(mut self, size_average: bool) -> Self {
        self.size_average = size_average;
        self
    }

    /// The loss for pairs `(first_i, second_i)` (`[n, d]` each) with `labels` (`[n]`).
    pub fn forward<B: Backend>(
        &self,
        first: Tensor<B, 2>,
        second: Tensor<B, 2>,
        labels: Tensor<B, 1>,
    ) -> Result<Tensor<B, 1>, LossError> {
        check_non_negative("margin", self.margin)?;
        check_inputs(
            &[("first", &first), ("second", &second)],
            Some(("labels", &labels)),
        )?;
        let shift = match self.distance {
            Distance::Cosine => 0.0,
            Distance::Euclidean | Distance::Manhattan => PAIRWISE_DISTANCE_EPS,
        };
        let d = self.distance.pairwise(first, second, shift);
        let similar = labels.clone() * d.clone().square();
        let dissimilar =
            labels.neg().add_scalar(1.0) * relu(d.neg().add_scalar(self.margin)).square();
        let losses = (similar + dissimilar).mul_scalar(0.5);
        Ok(if self.size_average {
            losses.mean()
        } else {
            losses.sum()
        })
    }
}

impl<B: Backend> EmbeddingLoss<B> for ContrastiveLoss {
    fn loss(
        &self,
        columns: &[Tensor<B, 2>],
        labels: Option<&Tensor<B, 1>>,
    ) -> Result<Tensor<B, 1>, LossError> {
        let [a, b] = expect_columns::<B, 2>("ContrastiveLoss", "2", columns)?;
        let labels = expect_labels("ContrastiveLoss", labels)?;
        self.forward(a.clone(), b.clone(), labels.clone())
    }
}
