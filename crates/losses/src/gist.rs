//! GISTEmbed: MNRL whose in-batch and hard negatives are filtered by a guide model.

use burn::tensor::{backend::Backend, Bool, Tensor};

use crate::mnrl::split_ranking_columns;
use crate::ops::{check_inputs, check_non_negative, check_positive, diagonal, logsumexp_rows};
use crate::{EmbeddingLoss, LossError, Similarity};

/// How [`GistEmbedLoss`] turns its margin into the threshold above which a candidate counts as
/// a false negative (sentence-transformers' `margin_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MarginStrategy {
    /// Candidates the guide scores above `positive − margin` are dropped.
    #[default]
    Absolute,
    /// Candidates the guide scores above `positive − |positive| · margin` are dropped.
    Relative,
}

/// GISTEmbed (Solatorio 2024), as sentence-transformers' `GISTEmbedLoss` /
/// `CachedGISTEmbedLoss`: a ranking loss over in-batch and hard negatives in which a guide model
/// (usually the frozen starting model) removes the candidates it scores above the pair's own
/// positive — the likely unlabelled positives that plain MNRL pushes away.
///
/// For anchors `a`, positives `p` and negative columns `n₁…n_k` (`[n, d]` each) and the guide's
/// embeddings of the same texts (`[n, d′]` each, any dimension), the scores of anchor i are the
/// cosine similarities `[a_i·p; a_i·a; p_i·p; a_i·n₁; …; a_i·n_k]` (the `a·a` block with
/// `contrast_anchors`, the `p·p` block with `contrast_positives`), each set to −∞ where the guide's
/// similarity of the same pair exceeds the threshold of row i (the guide's `a_i·p_i` less the
/// margin; the positive `a_i·p_i` itself is never masked). The loss is the mean cross-entropy of
/// `scores / temperature` with target `a_i·p_i`.
///
/// The guide's embeddings are constants: no gradient flows to them. Use
/// [`GistEmbedLoss::with_guide`] to get an [`EmbeddingLoss`] (and with it the cached form,
/// [`crate::CachedLoss`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GistEmbedLoss {
    /// Divides the similarities before the softmax. Default 0.01 (a scale of 100).
    pub temperature: f64,
    /// How `margin` is applied. Default absolute.
    pub margin_strategy: MarginStrategy,
    /// Default 0: every candidate the guide scores above the positive is dropped.
    pub margin: f64,
    /// Score anchors against the other anchors too. Default true.
    pub contrast_anchors: bool,
    /// Score positives against the other positives too. Default true.
    pub contrast_positives: bool,
}

impl Default for GistEmbedLoss {
    fn default() -> Self {
        Self {
            temperature: 0.01,
            margin_strategy: MarginStrategy::Absolute,
            margin: 0.0,
            contrast_anchors: true,
            contrast_positives: true,
        }
    }
}

impl GistEmbedLoss {
    /// The loss with sentence-transformers' defaults (temperature 0.01, absolute margin 0,
    /// anchor and positive contrast).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the temperature.
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sets the margin and how it applies.
    pub fn with_margin(mut self, strategy: MarginStrategy, margin: f64) -> Self {
        self.margin_strategy = strategy;
        self.margin = margin;
        self
    }

    /// Sets whether the anchor–anchor and positive–positive blocks are scored.
    pub fn with_contrast(mut self, anchors: bool, positives: bool) -> Self {
        self.contrast_anchors = anchors;
        self.contrast_positives = positives;
        self
    }

    /// The loss as an [`EmbeddingLoss`] for one batch, whose guide embeddings are `guide`
    /// (`[anchors, positives, negatives…]`, as the columns the loss will get).
    pub fn with_guide<B: Backend>(self, guide: Vec<Tensor<B, 2>>) -> GuidedGistLoss<B> {
        GuidedGistLoss { loss: self, guide }
    }

    /// The loss of `columns` (`[anchors, positives, negatives…]`, `[n, d]` each) guided by
    /// `guide` (the same texts embedded by the guide, `[n, d′]` each): a one-element tensor.
    pub fn forward<B: Backend>(
        &self,
        columns: &[Tensor<B, 2>],
        guide: &[Tensor<B, 2>],
    ) -> Result<Tensor<B, 1>, LossError> {
        check_positive("temperature", self.temperature)?;
        check_non_negative("margin", self.margin)?;
        const LOSS: &str = "GISTEmbedLoss";
        let (a, p, negatives) = split_ranking_columns(LOSS, columns)?;
        let (ga, gp, guide_negatives) = split_ranking_columns(LOSS, guide)?;
        if guide_negatives.len() != negatives.len() {
            return Err(LossError::ColumnCount {
                loss: "GISTEmbedLoss (guide)",
                expected: "as many columns as the model's",
                got: guide.len(),
            });
        }
        let names: Vec<String> = (0..negatives.len())
            .map(|i| format!("negatives[{i}]"))
            .collect();
        let guide_names: Vec<String> = (0..negatives.len())
            .map(|i| format!("guide negatives[{i}]"))
            .collect();
        let mut model_inputs = vec![("anchors", &a), ("positives", &p)];
        model_inputs.extend(names.iter().map(String::as_str).zip(negatives.iter()));
        check_inputs(&model_inputs, None)?;
        let mut guide_inputs = vec![("guide anchors", &ga), ("guide positives", &gp)];
        guide_inputs.extend(guide_names.iter().map(String::as_str).zip(&guide_negatives));
        check_inputs(&guide_inputs, None)?;
        let n = a.dims()[0];
        if ga.dims()[0] != n {
            return Err(LossError::BatchMismatch {
                input: "guide anchors".into(),
                rows: ga.dims()[0],
                reference: "anchors".into(),
                expected: n,
            });
        }

        let sim =
            |x: &Tensor<B, 2>, y: &Tensor<B, 2>| Similarity::Cosine.matrix(x.clone(), y.clone());
        let guide_sim =
            |x: &Tensor<B, 2>, y: &Tensor<B, 2>| sim(&x.clone().detach(), &y.clone().detach());
        let guide_ap = guide_sim(&ga, &gp);
        let own = diagonal(guide_ap.clone()).reshape([n, 1]);
        let threshold = match self.margin_strategy {
            MarginStrategy::Absolute => own.sub_scalar(self.margin),
            MarginStrategy::Relative => own.clone() - own.abs().mul_scalar(self.margin),
        };
        let false_negatives = |guided: Tensor<B, 2>| -> Tensor<B, 2, Bool> {
            let dims = guided.dims();
            guided.greater(threshold.clone().expand(dims))
        };
        let masked = |scores: Tensor<B, 2>, mask: Tensor<B, 2, Bool>| {
            scores.mask_fill(mask, f64::NEG_INFINITY)
        };

        let device = a.device();
        let not_own = Tensor::<B, 2, Bool>::diag_mask([n, n], 0, &device);
        let mut blocks = vec![masked(
            sim(&a, &p),
            false_negatives(guide_ap).bool_and(not_own),
        )];
        if self.contrast_anchors {
            blocks.push(masked(sim(&a, &a), false_negatives(guide_sim(&ga, &ga))));
        }
        if self.contrast_positives {
            blocks.push(masked(sim(&p, &p), false_negatives(guide_sim(&gp, &gp))));
        }
        for (neg, guide_neg) in negatives.iter().zip(&guide_negatives) {
            blocks.push(masked(
                sim(&a, neg),
                false_negatives(guide_sim(&ga, guide_neg)),
            ));
        }
        let logits = Tensor::cat(blocks, 1).div_scalar(self.temperature);
        let positive = diagonal(logits.clone());
        Ok((logsumexp_rows(logits) - positive).mean())
    }
}

/// [`GistEmbedLoss`] with the guide's embeddings of one batch: the [`EmbeddingLoss`] a training
/// loop (or [`crate::CachedLoss`]) calls with the model's columns.
#[derive(Debug, Clone)]
pub struct GuidedGistLoss<B: Backend> {
    loss: GistEmbedLoss,
    guide: Vec<Tensor<B, 2>>,
}

impl<B: Backend> EmbeddingLoss<B> for GuidedGistLoss<B> {
    fn loss(
        &self,
        columns: &[Tensor<B, 2>],
        _labels: Option<&Tensor<B, 1>>,
    ) -> Result<Tensor<B, 1>, LossError> {
        self.loss.forward(columns, &self.guide)
    }
}
