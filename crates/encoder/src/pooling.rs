//! Pooling of token embeddings into one vector per text, as sentence-transformers' `Pooling`.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// One pooling strategy (sentence-transformers' `pooling_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolingMode {
    /// Mean of the unmasked token embeddings (`"mean"`).
    Mean,
    /// The first unmasked token, `[CLS]` for right-padded BERT input (`"cls"`).
    Cls,
    /// Element-wise maximum over the unmasked tokens (`"max"`).
    Max,
    /// Sum divided by the square root of the token count (`"mean_sqrt_len_tokens"`).
    MeanSqrtLen,
    /// Mean weighted by token position 1, 2, … (`"weightedmean"`).
    WeightedMean,
    /// The last unmasked token (`"lasttoken"`).
    LastToken,
}

impl PoolingMode {
    /// Parses sentence-transformers' name for the mode.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "mean" => Self::Mean,
            "cls" => Self::Cls,
            "max" => Self::Max,
            "mean_sqrt_len_tokens" => Self::MeanSqrtLen,
            "weightedmean" => Self::WeightedMean,
            "lasttoken" => Self::LastToken,
            _ => return None,
        })
    }

    /// sentence-transformers' name for the mode.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Cls => "cls",
            Self::Max => "max",
            Self::MeanSqrtLen => "mean_sqrt_len_tokens",
            Self::WeightedMean => "weightedmean",
            Self::LastToken => "lasttoken",
        }
    }

    /// The legacy boolean key (`pooling_mode_*`) of `1_Pooling/config.json` for this mode.
    pub fn legacy_key(self) -> &'static str {
        match self {
            Self::Mean => "pooling_mode_mean_tokens",
            Self::Cls => "pooling_mode_cls_token",
            Self::Max => "pooling_mode_max_tokens",
            Self::MeanSqrtLen => "pooling_mode_mean_sqrt_len_tokens",
            Self::WeightedMean => "pooling_mode_weightedmean_tokens",
            Self::LastToken => "pooling_mode_lasttoken",
        }
    }

    /// Every mode, in the order of the legacy keys.
    pub const ALL: [PoolingMode; 6] = [
        Self::Cls,
        Self::Max,
        Self::Mean,
        Self::MeanSqrtLen,
        Self::WeightedMean,
        Self::LastToken,
    ];
}

/// The pooling layer: one or more modes (their outputs are concatenated, as in
/// sentence-transformers) and whether prompt tokens take part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pooling {
    /// The modes, applied in order and concatenated.
    pub modes: Vec<PoolingMode>,
    /// When `false`, the tokens of a prompt prefix are excluded from pooling.
    pub include_prompt: bool,
}

impl Default for Pooling {
    fn default() -> Self {
        Self {
            modes: vec![PoolingMode::Mean],
            include_prompt: true,
        }
    }
}

impl Pooling {
    /// Pools `tokens` `[batch, seq, hidden]` under `mask` `[batch, seq]` (1 = real token, right
    /// padding) into `[batch, hidden × modes]`. `prompt_len` tokens after position 0 … are
    /// masked out first when `include_prompt` is false (the count includes `[CLS]`, as in
    /// sentence-transformers).
    pub fn forward<B: Backend>(
        &self,
        tokens: Tensor<B, 3>,
        mask: Tensor<B, 2, Int>,
        prompt_len: usize,
    ) -> Tensor<B, 2> {
        let [batch, seq, hidden] = tokens.dims();
        let device = tokens.device();
        let full_mask = mask.float();
        let mask = if !self.include_prompt && prompt_len > 0 {
            let cut = prompt_len.min(seq);
            let keep = Tensor::<B, 1, Int>::arange(0..seq as i64, &device)
                .greater_equal_elem(cut as i64)
                .float()
                .reshape([1, seq]);
            full_mask.clone() * keep
        } else {
            full_mask.clone()
        };
        let mask3: Tensor<B, 3> = mask.clone().reshape([batch, seq, 1]);
        let mut outputs: Vec<Tensor<B, 2>> = self
            .modes
            .iter()
            .map(|mode| match mode {
                PoolingMode::Mean | PoolingMode::MeanSqrtLen => {
                    let sum = (tokens.clone() * mask3.clone())
                        .sum_dim(1)
                        .reshape([batch, hidden]);
                    let count = mask.clone().sum_dim(1).clamp_min(1e-9);
                    let denom = if *mode == PoolingMode::Mean {
                        count
                    } else {
                        count.sqrt()
                    };
                    sum / denom
                }
                PoolingMode::Cls => {
                    // The first unmasked position: 0, or the first token after an excluded prompt.
                    let first = if !self.include_prompt {
                        prompt_len.min(seq - 1)
                    } else {
                        0
                    };
                    tokens.clone().narrow(1, first, 1).reshape([batch, hidden])
                }
                PoolingMode::Max => {
                    let masked_out = mask3.clone().equal_elem(0.0).expand([batch, seq, hidden]);
                    tokens
                        .clone()
                        .mask_fill(masked_out, f32::NEG_INFINITY)
                        .max_dim(1)
                        .reshape([batch, hidden])
                }
                PoolingMode::WeightedMean => {
                    let positions = Tensor::<B, 1, Int>::arange(1..seq as i64 + 1, &device)
                        .float()
                        .reshape([1, seq]);
                    let weights = mask.clone() * positions;
                    let sum = (tokens.clone() * weights.clone().reshape([batch, seq, 1]))
                        .sum_dim(1)
                        .reshape([batch, hidden]);
                    sum / weights.sum_dim(1).clamp_min(1e-9)
                }
                PoolingMode::LastToken => {
                    // Right padding: the last real token sits at length - 1.
                    let last = full_mask.clone().sum_dim(1).int() - 1;
                    let last = last
                        .clamp_min(0)
                        .reshape([batch, 1, 1])
                        .expand([batch, 1, hidden]);
                    (tokens.clone() * mask3.clone())
                        .gather(1, last)
                        .reshape([batch, hidden])
                }
            })
            .collect();
        match outputs.len() {
            1 => outputs
                .pop()
                .unwrap_or_else(|| Tensor::zeros([batch, hidden], &device)),
            _ => Tensor::cat(outputs, 1),
        }
    }
}

/// L2-normalises each row, as `torch.nn.functional.normalize(x, p=2, dim=1)` (eps 1e-12).
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
