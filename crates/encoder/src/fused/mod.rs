//! The transformer's blocks as single operations: the linear layer (bias included), GELU,
//! dropout, dropout + residual + LayerNorm, and mask + softmax + dropout of the attention
//! scores.
//!
//! On burn's CPU backend (`NdArray<f32>`, and `Autodiff<NdArray<f32>>` for training) with the
//! `cpu-kernels` feature, each block is one row-wise kernel with a hand-written backward pass
//! (module `cpu`): one read and one write per tensor instead of a pass, a temporary tensor and
//! an autodiff node per elementary op. Every other backend (CUDA, wgpu, …) gets the same maths
//! composed from burn's tensor ops, so the encoder stays generic over `B: Backend`; the tests
//! check that the two agree in values and gradients.

#[cfg(feature = "cpu-kernels")]
mod attention;
#[cfg(feature = "cpu-kernels")]
mod cpu;
#[cfg(feature = "cpu-kernels")]
mod infer;
#[cfg(feature = "cpu-kernels")]
pub(crate) mod kernels;

use burn::nn::{Dropout, LayerNorm};

use crate::bert::Bert;
use crate::error::Result;
use crate::pooling::Pooling;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::Tensor;

/// A linear layer `x·W + b` for `x` `[rows, in]`, `W` `[in, out]`.
pub(crate) fn linear<B: Backend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
    b: Tensor<B, 1>,
) -> Tensor<B, 2> {
    #[cfg(feature = "cpu-kernels")]
    let (x, w, b) = match cpu::linear(x, w, b) {
        Ok(y) => return y,
        Err(inputs) => inputs,
    };
    burn::tensor::module::linear(x, w, Some(b))
}

/// GELU (erf form), as `torch.nn.functional.gelu`.
pub(crate) fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "cpu-kernels")]
    let x = match cpu::gelu(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    burn::tensor::activation::gelu(x)
}

/// Dropout with probability `p` while training (autodiff backends); the identity otherwise.
pub(crate) fn dropout<B: Backend, const D: usize>(x: Tensor<B, D>, p: f64) -> Tensor<B, D> {
    if !B::ad_enabled(&x.device()) || p == 0.0 {
        return x;
    }
    #[cfg(feature = "cpu-kernels")]
    let x = match cpu::dropout(x, p) {
        Ok(y) => return y,
        Err(x) => x,
    };
    Dropout { prob: p }.forward(x)
}

/// `norm(dropout(h) + x)`: the end of each BERT sub-layer (`eps` is the norm's epsilon, which
/// burn's `LayerNorm` keeps private; the generic path uses the norm's own).
#[cfg_attr(not(feature = "cpu-kernels"), allow(unused_variables))]
pub(crate) fn residual_norm<B: Backend>(
    h: Tensor<B, 3>,
    x: Tensor<B, 3>,
    norm: &LayerNorm<B>,
    eps: f64,
    p: f64,
) -> Tensor<B, 3> {
    let p = if B::ad_enabled(&h.device()) { p } else { 0.0 };
    #[cfg(feature = "cpu-kernels")]
    let (h, x) = match cpu::residual_norm(h, x, norm, eps, p) {
        Ok(y) => return y,
        Err(inputs) => inputs,
    };
    norm.forward(dropout(h, p) + x)
}

/// Attention probabilities `dropout(softmax(scores + mask_bias))` over the last axis, for
/// scores `[batch, heads, queries, keys]` and `mask_bias` `[batch, 1, 1, keys]`.
pub(crate) fn attention_probs<B: Backend>(
    scores: Tensor<B, 4>,
    mask_bias: Tensor<B, 4>,
    p: f64,
) -> Tensor<B, 4> {
    let p = if B::ad_enabled(&scores.device()) {
        p
    } else {
        0.0
    };
    #[cfg(feature = "cpu-kernels")]
    let (scores, mask_bias) = match cpu::attention_probs(scores, mask_bias, p) {
        Ok(y) => return y,
        Err(inputs) => inputs,
    };
    dropout(softmax(scores + mask_bias, 3), p)
}

/// Multi-head self-attention context `[batch, seq, hidden]` from the projected queries, keys
/// and values `[batch, seq, hidden]` (heads side by side), `mask_bias` `[batch, 1, 1, seq]`
/// (0 for tokens, a large negative number for padding) and dropout `p` on the probabilities
/// while training: `dropout(softmax(q·kᵀ/√d + mask))·v` per head.
pub(crate) fn attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    mask_bias: Tensor<B, 4>,
    heads: usize,
    p: f64,
) -> Tensor<B, 3> {
    let p = if B::ad_enabled(&q.device()) { p } else { 0.0 };
    #[cfg(feature = "cpu-kernels")]
    let (q, k, v, mask_bias) = match cpu::attention((q, k, v), mask_bias, heads, p) {
        Ok(y) => return y,
        Err(inputs) => inputs,
    };
    let [batch, seq, hidden] = q.dims();
    let head_dim = hidden / heads;
    let split = |t: Tensor<B, 3>| t.reshape([batch, seq, heads, head_dim]).swap_dims(1, 2);
    let scale = 1.0 / (head_dim as f64).sqrt();
    let context = if p > 0.0 {
        // Training: attention dropout needs the probabilities. Scaling q before the product
        // is cheaper than scaling the [seq, seq] scores.
        let scores = split(q * scale).matmul(split(k).swap_dims(2, 3));
        attention_probs(scores, mask_bias, p).matmul(split(v))
    } else {
        // The backend's fused attention (flash attention on GPU backends).
        let options = AttentionModuleOptions {
            scale: Some(scale),
            softcap: None,
            is_causal: false,
        };
        burn_attention(split(q), split(k), split(v), None, Some(mask_bias), options)
    };
    context.swap_dims(1, 2).reshape([batch, seq, hidden])
}

/// The inference forward on the CPU backend (`NdArray<f32>` with the `cpu-kernels` feature):
/// texts packed without padding, fused attention reading heads through strides, buffers reused
/// across batches (module `infer`). Other backends have none and run [`Bert::forward`].
pub(crate) struct Inference {
    #[cfg(feature = "cpu-kernels")]
    weights: cpu::CpuBert,
    #[cfg(feature = "cpu-kernels")]
    workspace: infer::Workspace,
}

impl Inference {
    /// The CPU inference forward of `bert`, when `B` is the CPU backend and every weight fits.
    pub(crate) fn new<B: Backend>(bert: &Bert<B>) -> Option<Self> {
        #[cfg(feature = "cpu-kernels")]
        {
            let weights = cpu::CpuBert::new(bert)?;
            weights.view()?;
            Some(Self {
                weights,
                workspace: infer::Workspace::default(),
            })
        }
        #[cfg(not(feature = "cpu-kernels"))]
        {
            let _ = bert;
            None
        }
    }

    /// Pooled (and, with `normalize`, L2-normalised) embeddings `[texts, dim]` of unpadded
    /// token ids, as [`Bert::forward`] then [`Pooling::forward`] compute them on the padded
    /// batch.
    pub(crate) fn embed(
        &mut self,
        ids: &[&[u32]],
        pooling: &Pooling,
        prompt_len: usize,
        normalize: bool,
    ) -> Result<Vec<f32>> {
        #[cfg(feature = "cpu-kernels")]
        {
            use crate::error::EncoderError;
            let Some(view) = self.weights.view() else {
                return Err(EncoderError::InvalidInput {
                    name: "weights",
                    reason: "the model's tensors changed layout".into(),
                });
            };
            let x = view
                .forward(ids, &mut self.workspace)
                .map_err(|e| match e {
                    infer::InferError::TokenId { id, rows } => EncoderError::InvalidInput {
                        name: "input_ids",
                        reason: format!(
                            "token id {id} is past the model's {rows} word embeddings \
                         (the tokenizer does not match config.json's vocab_size)"
                        ),
                    },
                    infer::InferError::TooLong { len, rows } => EncoderError::InvalidInput {
                        name: "input_ids",
                        reason: format!(
                            "{len} tokens, more than the model's {rows} position embeddings"
                        ),
                    },
                })?;
            let lengths: Vec<usize> = ids.iter().map(|t| t.len()).collect();
            Ok(infer::pool(
                x,
                view.word.cols,
                &lengths,
                pooling,
                prompt_len,
                normalize,
            ))
        }
        #[cfg(not(feature = "cpu-kernels"))]
        {
            let _ = (ids, pooling, prompt_len, normalize);
            unreachable!("Inference::new returns None without the cpu-kernels feature")
        }
    }
}

#[cfg(all(test, feature = "cpu-kernels"))]
mod tests;
