//! Training settings.

use embedtune_encoder::LoraConfig;
use embedtune_losses::{
    EmbeddingLoss, GistEmbedLoss, MarginStrategy, MatryoshkaLoss, MultipleNegativesRankingLoss,
    MultipleNegativesSymmetricRankingLoss, TripletLoss,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::optim::AdamWConfig;

/// The training objective (all take (anchor, positive, negatives…) examples).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum LossConfig {
    /// MultipleNegativesRankingLoss: in-batch negatives plus hard negatives (scale 20, cosine).
    Mnrl {
        /// Logit scale.
        scale: f64,
    },
    /// MNRL with GradCache: the same gradients with `mini_batch` texts in the graph at a time.
    CachedMnrl {
        /// Logit scale.
        scale: f64,
        /// Texts per forward in the graph.
        mini_batch: usize,
    },
    /// Symmetric MNRL (query→doc and doc→query).
    SymmetricMnrl {
        /// Logit scale.
        scale: f64,
    },
    /// Triplet loss (euclidean, margin 5); needs one negative per example.
    Triplet {
        /// Margin.
        margin: f64,
    },
    /// MNRL on embeddings truncated to each dimension, weighted equally (Matryoshka).
    MatryoshkaMnrl {
        /// Logit scale.
        scale: f64,
        /// Dimensions, e.g. `[384, 256, 128, 64]`.
        dims: Vec<usize>,
    },
    /// GISTEmbed: MNRL (with anchor–anchor and positive–positive negatives) whose candidates
    /// the guide model scores above the pair's positive are left out (the frozen starting
    /// model unless [`crate::Trainer::with_guide`] gives another).
    Gist {
        /// Temperature (the inverse of MNRL's scale).
        temperature: f64,
        /// How far below the guide's positive score a candidate must stay.
        margin: f64,
        /// How the margin applies.
        margin_strategy: GistMargin,
    },
    /// GISTEmbed with GradCache: the same gradients with `mini_batch` texts in the graph at a
    /// time (the guide embeds the whole batch once, without gradients).
    CachedGist {
        /// Temperature.
        temperature: f64,
        /// How far below the guide's positive score a candidate must stay.
        margin: f64,
        /// How the margin applies.
        margin_strategy: GistMargin,
        /// Texts per forward in the graph.
        mini_batch: usize,
    },
}

/// How a GISTEmbed margin applies (sentence-transformers' `margin_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GistMargin {
    /// Left out above `positive − margin`.
    #[default]
    Absolute,
    /// Left out above `positive − |positive| · margin`.
    Relative,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self::Mnrl { scale: 20.0 }
    }
}

impl LossConfig {
    /// Parses a name (the serde tags): `mnrl`, `cached-mnrl`, `symmetric-mnrl`, `triplet`,
    /// `matryoshka-mnrl` (or `matryoshka`) (with `mini_batch` for the cached loss and `dims` for Matryoshka).
    pub fn from_name(name: &str, mini_batch: usize, dims: &[usize]) -> Result<Self> {
        Ok(match name {
            "mnrl" => Self::Mnrl { scale: 20.0 },
            "cached-mnrl" => Self::CachedMnrl { scale: 20.0, mini_batch },
            "symmetric-mnrl" => Self::SymmetricMnrl { scale: 20.0 },
            "triplet" => Self::Triplet { margin: 5.0 },
            "matryoshka" | "matryoshka-mnrl" => Self::MatryoshkaMnrl { scale: 20.0, dims: dims.to_vec() },
            "gist" => Self::Gist {
                temperature: 0.01,
                margin: 0.0,
                margin_strategy: GistMargin::Absolute,
            },
            "cached-gist" => Self::CachedGist {
                temperature: 0.01,
                margin: 0.0,
                margin_strategy: GistMargin::Absolute,
                mini_batch,
            },
            other => {
                return Err(TrainError::Config {
                    name: "loss",
                    reason: format!(
                        "unknown loss {other:?}: expected mnrl, cached-mnrl, symmetric-mnrl, triplet, matryoshka-mnrl, gist or cached-gist"
                    ),
                })
            }
        })
    }

    /// The GradCache mini-batch of the cached losses.
    pub fn mini_batch(&self) -> Option<usize> {
        match self {
            Self::CachedMnrl { mini_batch, .. } | Self::CachedGist { mini_batch, .. } => {
                Some(*mini_batch)
            }
            _ => None,
        }
    }

    /// The GISTEmbed loss of the GIST variants (its guide's embeddings are given per batch).
    pub fn gist(&self) -> Option<GistEmbedLoss> {
        match *self {
            Self::Gist {
                temperature,
                margin,
                margin_strategy,
            }
            | Self::CachedGist {
                temperature,
                margin,
                margin_strategy,
                ..
            } => {
                let strategy = match margin_strategy {
                    GistMargin::Absolute => MarginStrategy::Absolute,
                    GistMargin::Relative => MarginStrategy::Relative,
                };
                Some(
                    GistEmbedLoss::new()
                        .with_temperature(temperature)
                        .with_margin(strategy, margin),
                )
            }
            _ => None,
        }
    }

    /// Builds the loss that runs on whole columns (for the cached loss: the inner MNRL); the
    /// GIST losses are built per batch with their guide's embeddings ([`LossConfig::gist`]).
    pub(crate) fn build<B: burn::tensor::backend::Backend>(
        &self,
    ) -> Result<Box<dyn EmbeddingLoss<B>>> {
        Ok(match self {
            Self::Gist { .. } | Self::CachedGist { .. } => {
                return Err(TrainError::Config {
                    name: "loss",
                    reason: "GISTEmbed needs its guide's embeddings of each batch".into(),
                })
            }
            Self::Mnrl { scale } | Self::CachedMnrl { scale, .. } => {
                Box::new(MultipleNegativesRankingLoss::new().with_scale(*scale))
            }
            Self::SymmetricMnrl { scale } => {
                Box::new(MultipleNegativesSymmetricRankingLoss::new().with_scale(*scale))
            }
            Self::Triplet { margin } => Box::new(TripletLoss::new().with_margin(*margin)),
            Self::MatryoshkaMnrl { scale, dims } => Box::new(MatryoshkaLoss::new(
                MultipleNegativesRankingLoss::new().with_scale(*scale),
                dims,
            )?),
        })
    }
}

/// Everything that shapes a training run. Defaults are the Python recipe's (sentence-transformers
/// with transformers' Trainer): AdamW lr 2e-5, warm-up 10 %, linear decay, clipping at 1.0,
/// batch 32, one epoch, MNRL scale 20, no-duplicates batches, seed 42.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the data (ignored when `max_steps` is set).
    pub epochs: usize,
    /// Stop after this many optimiser steps.
    pub max_steps: Option<u64>,
    /// Examples per batch (per micro-batch when accumulating).
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Share of the steps spent warming up (rounded up).
    pub warmup_ratio: f64,
    /// AdamW settings.
    pub adamw: AdamWConfig,
    /// Clip the global gradient norm to this (0 disables).
    pub max_grad_norm: f64,
    /// Seed of batch order, adapter initialisation and dropout.
    pub seed: u64,
    /// The objective.
    pub loss: LossConfig,
    /// Never put the same text twice in a batch.
    pub no_duplicates: bool,
    /// Topic-aware batches (TAS-B): cluster the training anchors into this many topics with
    /// the starting model (spherical k-means, [`crate::kmeans`]) and draw every full batch from
    /// one topic ([`embedtune_data::BatchSampler::topic_batches`]). `None` (default): plain
    /// batches, as sentence-transformers.
    #[serde(default)]
    pub topic_clusters: Option<usize>,
    /// Hard negatives used per example (the first k); `None` uses as many as every example has.
    pub num_negatives: Option<usize>,
    /// Train LoRA adapters instead of all weights.
    pub lora: Option<LoraConfig>,
    /// Truncation length for training texts (`None` keeps the model's).
    pub max_seq_len: Option<usize>,
    /// Prefix for anchors (queries).
    pub query_prompt: Option<String>,
    /// Prefix for positives and negatives (passages).
    pub passage_prompt: Option<String>,
    /// Evaluate every N optimiser steps (and always at the end).
    pub eval_steps: Option<u64>,
    /// Save a checkpoint every N optimiser steps.
    pub save_steps: Option<u64>,
    /// Keep at most this many step checkpoints (the best one is kept apart).
    pub save_total_limit: usize,
    /// Log every N optimiser steps.
    pub logging_steps: u64,
    /// Metric that picks the best checkpoint (higher is better).
    pub metric_for_best: String,
    /// Draw a progress bar on stderr.
    pub progress_bar: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            max_steps: None,
            batch_size: 32,
            grad_accum: 1,
            lr: 2e-5,
            warmup_ratio: 0.1,
            adamw: AdamWConfig::default(),
            max_grad_norm: 1.0,
            seed: 42,
            loss: LossConfig::default(),
            no_duplicates: true,
            topic_clusters: None,
            num_negatives: None,
            lora: None,
            max_seq_len: None,
            query_prompt: None,
            passage_prompt: None,
            eval_steps: None,
            save_steps: None,
            save_total_limit: 2,
            logging_steps: 1,
            metric_for_best: "ndcg@10".into(),
            progress_bar: true,
        }
    }
}

impl TrainConfig {
    /// Checks ranges before a run starts.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, reason: &str| {
            Err(TrainError::Config {
                name,
                reason: reason.to_string(),
            })
        };
        if self.batch_size == 0 {
            return bad("batch_size", "must be positive");
        }
        if self.grad_accum == 0 {
            return bad("grad_accum", "must be positive");
        }
        if self.epochs == 0 && self.max_steps.is_none() {
            return bad("epochs", "must be positive (or set max_steps)");
        }
        if self.max_steps == Some(0) {
            return bad("max_steps", "must be positive");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", "must be a positive number");
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            return bad("warmup_ratio", "must be in [0, 1]");
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm >= 0.0) {
            return bad("max_grad_norm", "must be ≥ 0");
        }
        let a = &self.adamw;
        if !(0.0..1.0).contains(&a.beta1) || !(0.0..1.0).contains(&a.beta2) {
            return bad("adamw betas", "must be in [0, 1)");
        }
        if !(a.eps > 0.0 && a.weight_decay >= 0.0) {
            return bad("adamw", "eps must be > 0 and weight_decay ≥ 0");
        }
        if self.topic_clusters == Some(0) {
            return bad("topic_clusters", "must be positive when set");
        }
        if self.logging_steps == 0 {
            return bad("logging_steps", "must be positive");
        }
        if self.eval_steps == Some(0) || self.save_steps == Some(0) {
            return bad("eval_steps / save_steps", "must be positive when set");
        }
        if self.loss.mini_batch() == Some(0) {
            return bad("mini_batch", "must be positive");
        }
        if let Some(gist) = self.loss.gist() {
            if !(gist.temperature.is_finite() && gist.temperature > 0.0) {
                return bad("temperature", "must be a positive number");
            }
            if !(gist.margin.is_finite() && gist.margin >= 0.0) {
                return bad("margin", "must be ≥ 0");
            }
        }
        if let Some(lora) = &self.lora {
            lora.validate()?;
        }
        Ok(())
    }
}
