//! Contrastive losses for fine-tuning text-embedding models with [burn]: the objectives of
//! sentence-transformers, generic over any burn `Backend`, working
//! on embedding tensors (`Tensor<B, 2>`, `[batch, dim]`) so they can be used with any encoder.
//!
//! | loss | columns | labels |
//! |---|---|---|
//! | [`MultipleNegativesRankingLoss`] (scale 20, cosine) | anchors, positives, negatives… | – |
//! | [`MultipleNegativesSymmetricRankingLoss`] | anchors, positives, negatives… | – |
//! | [`CachedMultipleNegativesRankingLoss`] (GradCache, any [`EmbeddingLoss`] via [`CachedLoss`]) | anchors, positives, negatives… | – |
//! | [`GistEmbedLoss`] (temperature 0.01, a guide model's embeddings drop false negatives; cached via [`CachedLoss`]) | anchors, positives, negatives… | – |
//! | [`CoSentLoss`] (scale 20, cosine) | first, second | gold scores |
//! | [`ContrastiveLoss`] (margin 0.5, cosine distance) | first, second | 1 similar / 0 dissimilar |
//! | [`TripletLoss`] (margin 5, euclidean) | anchors, positives, negatives | – |
//! | [`MatryoshkaLoss`] (wraps any of them) | as the inner loss | as the inner loss |
//!
//! Values and gradients match sentence-transformers 6.2 (checked against its float64 output in
//! the crate's tests). Bad inputs (mismatched batch sizes, empty batches, NaN/inf) give a
//! [`LossError`] naming the input, never a panic.
//!
//! ```
//! use burn::tensor::{Distribution, Tensor};
//! use burn_autodiff::Autodiff;
//! use burn_ndarray::NdArray;
//! use embedtune_losses::{EmbeddingLoss, LossError, MultipleNegativesRankingLoss};
//!
//! type B = Autodiff<NdArray<f32>>;
//! let device = Default::default();
//! // 8 (anchor, positive) pairs of 16-d embeddings, as an encoder would output them.
//! let anchors = Tensor::<B, 2>::random([8, 16], Distribution::Normal(0.0, 1.0), &device).require_grad();
//! let positives = Tensor::<B, 2>::random([8, 16], Distribution::Normal(0.0, 1.0), &device).require_grad();
//!
//! let mnrl = MultipleNegativesRankingLoss::default(); // scale 20, cosine similarity
//! let loss = mnrl.forward(anchors.clone(), positives.clone(), vec![])?;
//! let grads = loss.backward();
//! assert_eq!(anchors.grad(&grads).unwrap().dims(), [8, 16]);
//! assert!(loss.into_scalar() > 0.0);
//!
//! // The same loss through the column-based trait, as a training loop holding any loss uses it.
//! let loss: &dyn EmbeddingLoss<B> = &mnrl;
//! let _value = loss.loss(&[anchors.clone(), positives], None)?;
//!
//! // Mismatched batches are an error naming the input.
//! let err = mnrl.forward(anchors, Tensor::zeros([7, 16], &device), vec![]).unwrap_err();
//! assert_eq!(err.to_string(), "positives has 7 rows, anchors 8");
//! # Ok::<(), LossError>(())
//! ```

#![warn(missing_docs)]

mod cached;
mod contrastive;
mod cosent;
mod error;
mod gist;
#[cfg(all(feature = "cpu-instances", debug_assertions, not(test)))]
#[doc(hidden)]
pub mod instances;
mod matryoshka;
mod mnrl;
mod ops;
mod symmetric;
mod triplet;

pub use cached::{CachedLoss, CachedMultipleNegativesRankingLoss, CachedOutput, MiniBatch, Pass};
pub use contrastive::ContrastiveLoss;
pub use cosent::CoSentLoss;
pub use error::{LossError, Result};
pub use gist::{GistEmbedLoss, GuidedGistLoss, MarginStrategy};
pub use matryoshka::MatryoshkaLoss;
pub use mnrl::MultipleNegativesRankingLoss;
pub use ops::{normalize, Distance, Similarity};
pub use symmetric::MultipleNegativesSymmetricRankingLoss;
pub use triplet::TripletLoss;

use burn::tensor::{backend::Backend, Tensor};

/// A loss over columns of embeddings, the common interface of every loss in this crate (what
/// sentence-transformers calls `compute_loss_from_embeddings`).
///
/// `columns[k]` holds the embeddings of the k-th text of every example (`[batch, dim]`), e.g.
/// `[anchors, positives, negatives…]` or `[first, second]`; `labels` holds one value per example
/// for the losses that need them ([`CoSentLoss`], [`ContrastiveLoss`]) and is ignored by the
/// others. The result is a one-element tensor, differentiable w.r.t. the embeddings.
///
/// Wrappers ([`MatryoshkaLoss`], [`CachedLoss`]) take any `EmbeddingLoss`.
pub trait EmbeddingLoss<B: Backend> {
    /// The loss of one batch, or an error naming the bad input.
    fn loss(
        &self,
        columns: &[Tensor<B, 2>],
        labels: Option<&Tensor<B, 1>>,
    ) -> Result<Tensor<B, 1>, LossError>;
}
