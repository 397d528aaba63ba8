//! The BERT encoder: embeddings and post-LayerNorm transformer layers, as Hugging Face's
//! `BertModel` computes them (without the pooler, which sentence-transformers never uses).

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, LayerNormConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};

use crate::config::{Activation, TransformerConfig};
use crate::dense::Dense;
use crate::error::Result;
use crate::fused;
use crate::names::{self, EmbeddingPart, Linear, Norm};
use crate::weights::{tensor_values, NamedTensor, WeightReader};

/// Where a module's weights come from.
pub(crate) enum Source<'r> {
    /// A safetensors file.
    File(&'r mut WeightReader),
    /// Random initialisation (tiny test models).
    Random,
}

impl Source<'_> {
    fn dense<B: Backend>(
        &mut self,
        name: &str,
        d_in: usize,
        d_out: usize,
        device: &B::Device,
    ) -> Result<Dense<B>> {
        match self {
            Source::File(r) => Dense::load(r, name, d_in, d_out, device),
            Source::Random => Ok(Dense::random(d_in, d_out, device)),
        }
    }

    /// Linear layer `which` of block `index`, with its shape from the config.
    fn linear<B: Backend>(
        &mut self,
        cfg: &TransformerConfig,
        index: usize,
        which: Linear,
        device: &B::Device,
    ) -> Result<Dense<B>> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let (d_in, d_out) = match which {
            Linear::Intermediate => (h, i),
            Linear::Output => (i, h),
            Linear::Query | Linear::Key | Linear::Value | Linear::AttentionOutput => (h, h),
        };
        self.dense(&names::linear(index, which), d_in, d_out, device)
    }

    /// LayerNorm `which` of block `index`.
    fn norm<B: Backend>(
        &mut self,
        cfg: &TransformerConfig,
        index: usize,
        which: Norm,
        device: &B::Device,
    ) -> Result<LayerNorm<B>> {
        let name = names::norm(index, which);
        self.layer_norm(&name, cfg.hidden_size, cfg.layer_norm_eps, device)
    }

    fn embedding<B: Backend>(
        &mut self,
        name: &str,
        rows: usize,
        dim: usize,
        device: &B::Device,
    ) -> Result<Embedding<B>> {
        let weight = match self {
            Source::File(r) => r.tensor(&format!("{name}.weight"), [rows, dim], device)?,
            Source::Random => Tensor::random([rows, dim], Distribution::Normal(0.0, 0.02), device),
        };
        Ok(Embedding {
            weight: Param::from_tensor(weight),
        })
    }

    fn layer_norm<B: Backend>(
        &mut self,
        name: &str,
        dim: usize,
        eps: f64,
        device: &B::Device,
    ) -> Result<LayerNorm<B>> {
        let mut norm = LayerNormConfig::new(dim).with_epsilon(eps).init(device);
        if let Source::File(r) = self {
            // Very old checkpoints name the LayerNorm parameters gamma / beta.
            let (w, b) = if r.has(&format!("{name}.gamma")) {
                ("gamma", "beta")
            } else {
                ("weight", "bias")
            };
            norm.gamma = Param::from_tensor(r.tensor(&format!("{name}.{w}"), [dim], device)?);
            norm.beta = Some(Param::from_tensor(r.tensor(
                &format!("{name}.{b}"),
                [dim],
                device,
            )?));
        }
        Ok(norm)
    }
}

fn export_norm<B: Backend>(
    norm: &LayerNorm<B>,
    name: &str,
    out: &mut Vec<NamedTensor>,
) -> Result<()> {
    let dim = norm.gamma.dims()[0];
    let (weight, bias) = names::weight_and_bias(name);
    out.push(NamedTensor {
        values: tensor_values(norm.gamma.val(), &weight)?,
        name: weight,
        shape: vec![dim],
    });
    let values = match &norm.beta {
        Some(b) => tensor_values(b.val(), &bias)?,
        None => vec![0.0; dim],
    };
    out.push(NamedTensor {
        values,
        name: bias,
        shape: vec![dim],
    });
    Ok(())
}

fn export_embedding<B: Backend>(
    emb: &Embedding<B>,
    name: &str,
    out: &mut Vec<NamedTensor>,
) -> Result<()> {
    let name = format!("{name}.weight");
    out.push(NamedTensor {
        shape: emb.weight.dims().to_vec(),
        values: tensor_values(emb.weight.val(), &name)?,
        name,
    });
    Ok(())
}

/// Word + position + token-type embeddings, LayerNorm and dropout.
#[derive(Module, Debug)]
pub struct EmbeddingLayer<B: Backend> {
    /// Word embeddings `[vocab, hidden]`.
    pub word: Embedding<B>,
    /// Absolute position embeddings `[max_positions, hidden]`.
    pub position: Embedding<B>,
    /// Token-type (segment) embeddings `[type_vocab, hidden]`.
    pub token_type: Embedding<B>,
    /// LayerNorm after the sum.
    pub norm: LayerNorm<B>,
    /// Dropout (training only).
    pub dropout: Dropout,
    /// The LayerNorm's epsilon.
    #[module(skip)]
    pub layer_norm_eps: f64,
    /// RoBERTa-style positions: the padding id they count from
    /// ([`TransformerConfig::position_pad`]); `None` for BERT's `0..len`.
    #[module(skip)]
    pub position_pad: Option<usize>,
}

impl<B: Backend> EmbeddingLayer<B> {
    fn new(cfg: &TransformerConfig, src: &mut Source<'_>, device: &B::Device) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            word: src.embedding(EmbeddingPart::Word.hf(), cfg.vocab_size, h, device)?,
            position: src.embedding(
                EmbeddingPart::Position.hf(),
                cfg.max_position_embeddings,
                h,
                device,
            )?,
            token_type: src.embedding(
                EmbeddingPart::TokenType.hf(),
                cfg.type_vocab_size,
                h,
                device,
            )?,
            norm: src.layer_norm(EmbeddingPart::Norm.hf(), h, cfg.layer_norm_eps, device)?,
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            layer_norm_eps: cfg.layer_norm_eps,
            position_pad: cfg.position_pad(),
        })
    }

    /// `[batch, seq]` ids → `[batch, seq, hidden]`.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let [_, seq] = input_ids.dims();
        let device = input_ids.device();
        let positions = match self.position_pad {
            // `pad + 1 + k` for the k-th real token, `pad` for padding.
            Some(pad) => {
                let real = input_ids.clone().not_equal_elem(pad as i64).int();
                (real.clone().cumsum(1) * real).add_scalar(pad as i64)
            }
            None => Tensor::<B, 1, Int>::arange(0..seq as i64, &device).reshape([1, seq]),
        };
        let words = self.word.forward(input_ids) + self.position.forward(positions);
        let types = self.token_type.forward(token_type_ids);
        let x = fused::residual_norm(words, types, &self.norm, self.layer_norm_eps, 0.0);
        fused::dropout(x, self.dropout.prob)
    }

    fn export(&self, out: &mut Vec<NamedTensor>) -> Result<()> {
        export_embedding(&self.word, EmbeddingPart::Word.hf(), out)?;
        export_embedding(&self.position, EmbeddingPart::Position.hf(), out)?;
        export_embedding(&self.token_type, EmbeddingPart::TokenType.hf(), out)?;
        export_norm(&self.norm, EmbeddingPart::Norm.hf(), out)
    }
}

/// Multi-head self-attention with its output projection, residual and LayerNorm
/// (Hugging Face's `BertAttention`).
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// Query projection (`attention.self.query`).
    pub query: Dense<B>,
    /// Key projection (`attention.self.key`).
    pub key: Dense<B>,
    /// Value projection (`attention.self.value`).
    pub value: Dense<B>,
    /// Output projection (`attention.output.dense`).
    pub output: Dense<B>,
    /// LayerNorm after the residual (`attention.output.LayerNorm`).
    pub norm: LayerNorm<B>,
    /// Dropout on attention probabilities (training only).
    pub attn_dropout: Dropout,
    /// Dropout on the output projection (training only).
    pub dropout: Dropout,
    /// Number of heads.
    pub heads: usize,
    /// The LayerNorm's epsilon.
    #[module(skip)]
    pub layer_norm_eps: f64,
}

impl<B: Backend> Attention<B> {
    fn new(
        cfg: &TransformerConfig,
        index: usize,
        src: &mut Source<'_>,
        device: &B::Device,
    ) -> Result<Self> {
        Ok(Self {
            query: src.linear(cfg, index, Linear::Query, device)?,
            key: src.linear(cfg, index, Linear::Key, device)?,
            value: src.linear(cfg, index, Linear::Value, device)?,
            output: src.linear(cfg, index, Linear::AttentionOutput, device)?,
            norm: src.norm(cfg, index, Norm::Attention, device)?,
            attn_dropout: DropoutConfig::new(cfg.attention_probs_dropout_prob).init(),
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            heads: cfg.num_attention_heads,
            layer_norm_eps: cfg.layer_norm_eps,
        })
    }

    /// `x` `[batch, seq, hidden]`, `mask_bias` `[batch, 1, 1, seq]` (0 for tokens, a large
    /// negative number for padding).
    pub fn forward(&self, x: Tensor<B, 3>, mask_bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let context = fused::attention(
            self.query.forward(x.clone()),
            self.key.forward(x.clone()),
            self.value.forward(x.clone()),
            mask_bias,
            self.heads,
            self.attn_dropout.prob,
        );
        let out = self.output.forward(context);
        fused::residual_norm(out, x, &self.norm, self.layer_norm_eps, self.dropout.prob)
    }
}

/// One transformer layer: attention, then the feed-forward block with residual and LayerNorm.
#[derive(Module, Debug)]
pub struct Layer<B: Backend> {
    /// Self-attention block.
    pub attention: Attention<B>,
    /// Feed-forward expansion (`intermediate.dense`).
    pub intermediate: Dense<B>,
    /// Feed-forward projection back (`output.dense`).
    pub output: Dense<B>,
    /// LayerNorm after the residual (`output.LayerNorm`).
    pub norm: LayerNorm<B>,
    /// Dropout on the feed-forward output (training only).
    pub dropout: Dropout,
    /// Feed-forward activation.
    #[module(skip)]
    pub activation: Activation,
    /// The LayerNorm's epsilon.
    #[module(skip)]
    pub layer_norm_eps: f64,
}

impl<B: Backend> Layer<B> {
    fn new(
        cfg: &TransformerConfig,
        index: usize,
        src: &mut Source<'_>,
        device: &B::Device,
    ) -> Result<Self> {
        Ok(Self {
            attention: Attention::new(cfg, index, src, device)?,
            intermediate: src.linear(cfg, index, Linear::Intermediate, device)?,
            output: src.linear(cfg, index, Linear::Output, device)?,
            norm: src.norm(cfg, index, Norm::Output, device)?,
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            activation: cfg.hidden_act,
            layer_norm_eps: cfg.layer_norm_eps,
        })
    }

    /// `[batch, seq, hidden]` → `[batch, seq, hidden]`.
    pub fn forward(&self, x: Tensor<B, 3>, mask_bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let x = self.attention.forward(x, mask_bias);
        let h = self.intermediate.forward(x.clone());
        let h = match self.activation {
            Activation::Gelu => fused::gelu(h),
            Activation::GeluTanh => burn::tensor::activation::gelu_approximate(h),
            Activation::Relu => relu(h),
        };
        let out = self.output.forward(h);
        fused::residual_norm(out, x, &self.norm, self.layer_norm_eps, self.dropout.prob)
    }

    /// The linear layer `which`.
    pub fn linear(&self, which: Linear) -> &Dense<B> {
        match which {
            Linear::Query => &self.attention.query,
            Linear::Key => &self.attention.key,
            Linear::Value => &self.attention.value,
            Linear::AttentionOutput => &self.attention.output,
            Linear::Intermediate => &self.intermediate,
            Linear::Output => &self.output,
        }
    }

    /// The linear layer `which`, mutably.
    pub fn linear_mut(&mut self, which: Linear) -> &mut Dense<B> {
        match which {
            Linear::Query => &mut self.attention.query,
            Linear::Key => &mut self.attention.key,
            Linear::Value => &mut self.attention.value,
            Linear::AttentionOutput => &mut self.attention.output,
            Linear::Intermediate => &mut self.intermediate,
            Linear::Output => &mut self.output,
        }
    }

    /// The LayerNorm `which`.
    pub fn norm(&self, which: Norm) -> &LayerNorm<B> {
        match which {
            Norm::Attention => &self.attention.norm,
            Norm::Output => &self.norm,
        }
    }

    fn export(&self, index: usize, out: &mut Vec<NamedTensor>) -> Result<()> {
        for which in Linear::ALL {
            self.linear(which)
                .export(&names::linear(index, which), out)?;
        }
        for which in Norm::ALL {
            export_norm(self.norm(which), &names::norm(index, which), out)?;
        }
        Ok(())
    }
}

/// The BERT encoder: embeddings and `num_hidden_layers` layers.
#[derive(Module, Debug)]
pub struct Bert<B: Backend> {
    /// Embedding block.
    pub embeddings: EmbeddingLayer<B>,
    /// Transformer layers.
    pub layers: Vec<Layer<B>>,
}

/// The bias added to attention scores at padded positions.
const MASKED: f32 = -1.0e9;

impl<B: Backend> Bert<B> {
    pub(crate) fn new(
        cfg: &TransformerConfig,
        src: &mut Source<'_>,
        device: &B::Device,
    ) -> Result<Self> {
        let embeddings = EmbeddingLayer::new(cfg, src, device)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::new(cfg, i, src, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { embeddings, layers })
    }

    /// Token embeddings `[batch, seq, hidden]` (the last hidden state).
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let [batch, seq] = input_ids.dims();
        let mask_bias = attention_mask
            .float()
            .neg()
            .add_scalar(1.0)
            .mul_scalar(MASKED)
            .reshape([batch, 1, 1, seq]);
        let mut x = self.embeddings.forward(input_ids, token_type_ids);
        for layer in &self.layers {
            x = layer.forward(x, mask_bias.clone());
        }
        x
    }

    /// Every linear layer with its Hugging Face module name, for LoRA.
    pub fn map_dense<E>(
        self,
        f: &mut impl FnMut(&str, Dense<B>) -> Result<Dense<B>, E>,
    ) -> Result<Self, E> {
        let mut layers = self.layers;
        for (i, layer) in layers.iter_mut().enumerate() {
            for which in Linear::ALL {
                let dense = layer.linear_mut(which);
                *dense = f(&names::linear(i, which), dense.clone())?;
            }
        }
        Ok(Self {
            embeddings: self.embeddings,
            layers,
        })
    }

    /// Every linear layer with its Hugging Face module name.
    pub fn dense_layers(&self) -> Vec<(String, &Dense<B>)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            for which in Linear::ALL {
                out.push((names::linear(i, which), layer.linear(which)));
            }
        }
        out
    }

    /// All weights in Hugging Face names and layout (adapters merged).
    pub(crate) fn export(&self) -> Result<Vec<NamedTensor>> {
        let mut out = Vec::new();
        self.embeddings.export(&mut out)?;
        for (i, layer) in self.layers.iter().enumerate() {
            layer.export(i, &mut out)?;
        }
        Ok(out)
    }
}
