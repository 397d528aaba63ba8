//! The Hugging Face name of every tensor of the encoder, spelled in one place.
//!
//! BERT and (XLM-)RoBERTa checkpoints name their tensors alike (`encoder.layer.3.attention.self.query.weight`,
//! under an optional `bert.` / `roberta.` prefix). Loading, saving, LoRA's target matching and
//! adapter files, and the optimiser state of training checkpoints all take names from here:
//! the tables below pair each module of [`Bert`](crate::Bert) (its field path, as burn's module
//! visitor reports it) with its Hugging Face name, and [`hf_param_name`] maps any parameter
//! path of a [`SentenceEncoder`](crate::SentenceEncoder) to its tensor name.
//!
//! ```
//! use embedtune_encoder::names::{hf_param_name, linear, Linear};
//!
//! assert_eq!(linear(3, Linear::Query), "encoder.layer.3.attention.self.query");
//! assert_eq!(
//!     hf_param_name("bert.layers.3.attention.query.lora.a").as_deref(),
//!     Some("encoder.layer.3.attention.self.query.lora_A.weight"),
//! );
//! ```

/// The linear layers of a transformer block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Linear {
    /// The query projection.
    Query,
    /// The key projection.
    Key,
    /// The value projection.
    Value,
    /// The attention's output projection.
    AttentionOutput,
    /// The feed-forward expansion.
    Intermediate,
    /// The feed-forward projection back to the hidden size.
    Output,
}

impl Linear {
    /// Every linear layer of a block, in the order the checkpoint lists them.
    pub const ALL: [Linear; 6] = [
        Linear::Query,
        Linear::Key,
        Linear::Value,
        Linear::AttentionOutput,
        Linear::Intermediate,
        Linear::Output,
    ];

    /// The module's Hugging Face name inside `encoder.layer.{i}`.
    pub const fn hf(self) -> &'static str {
        match self {
            Linear::Query => "attention.self.query",
            Linear::Key => "attention.self.key",
            Linear::Value => "attention.self.value",
            Linear::AttentionOutput => "attention.output.dense",
            Linear::Intermediate => "intermediate.dense",
            Linear::Output => "output.dense",
        }
    }

    /// The module's field path inside [`Layer`](crate::Layer).
    pub const fn field(self) -> &'static str {
        match self {
            Linear::Query => "attention.query",
            Linear::Key => "attention.key",
            Linear::Value => "attention.value",
            Linear::AttentionOutput => "attention.output",
            Linear::Intermediate => "intermediate",
            Linear::Output => "output",
        }
    }
}

/// The LayerNorms of a transformer block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Norm {
    /// After the attention's residual.
    Attention,
    /// After the feed-forward residual.
    Output,
}

impl Norm {
    /// Both LayerNorms of a block.
    pub const ALL: [Norm; 2] = [Norm::Attention, Norm::Output];

    /// The module's Hugging Face name inside `encoder.layer.{i}`.
    pub const fn hf(self) -> &'static str {
        match self {
            Norm::Attention => "attention.output.LayerNorm",
            Norm::Output => "output.LayerNorm",
        }
    }

    /// The module's field path inside [`Layer`](crate::Layer).
    pub const fn field(self) -> &'static str {
        match self {
            Norm::Attention => "attention.norm",
            Norm::Output => "norm",
        }
    }
}

/// The modules of the embedding block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbeddingPart {
    /// Word (token) embeddings.
    Word,
    /// Absolute position embeddings.
    Position,
    /// Token-type (segment) embeddings.
    TokenType,
    /// The LayerNorm after their sum.
    Norm,
}

impl EmbeddingPart {
    /// Every module of the embedding block.
    pub const ALL: [EmbeddingPart; 4] = [
        EmbeddingPart::Word,
        EmbeddingPart::Position,
        EmbeddingPart::TokenType,
        EmbeddingPart::Norm,
    ];

    /// The module's Hugging Face name.
    pub const fn hf(self) -> &'static str {
        match self {
            EmbeddingPart::Word => "embeddings.word_embeddings",
            EmbeddingPart::Position => "embeddings.position_embeddings",
            EmbeddingPart::TokenType => "embeddings.token_type_embeddings",
            EmbeddingPart::Norm => "embeddings.LayerNorm",
        }
    }

    /// The module's field path inside [`Bert`](crate::Bert).
    pub const fn field(self) -> &'static str {
        match self {
            EmbeddingPart::Word => "embeddings.word",
            EmbeddingPart::Position => "embeddings.position",
            EmbeddingPart::TokenType => "embeddings.token_type",
            EmbeddingPart::Norm => "embeddings.norm",
        }
    }
}

/// The two factors of a LoRA adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoraFactor {
    /// The down-projection (`lora_A`, stored `[r, in]`).
    A,
    /// The up-projection (`lora_B`, stored `[out, r]`).
    B,
}

impl LoraFactor {
    /// The tensor's name under its linear layer, as PEFT writes it.
    pub const fn hf(self) -> &'static str {
        match self {
            LoraFactor::A => "lora_A.weight",
            LoraFactor::B => "lora_B.weight",
        }
    }

    /// The parameter's field path inside [`Dense`](crate::Dense).
    pub const fn field(self) -> &'static str {
        match self {
            LoraFactor::A => "lora.a",
            LoraFactor::B => "lora.b",
        }
    }
}

/// The prefixes task-model checkpoints put before the encoder's names (`BertForMaskedLM`
/// writes `bert.embeddings.…`, `XLMRobertaForMaskedLM` writes `roberta.embeddings.…`);
/// sentence-transformers saves the bare encoder without one.
pub const MODEL_PREFIXES: [&str; 2] = ["bert.", "roberta."];

/// PEFT's prefix for the wrapped model's tensors in `adapter_model.safetensors`.
pub const PEFT_PREFIX: &str = "base_model.model.";

/// The root field of the transformer inside a [`SentenceEncoder`](crate::SentenceEncoder).
const ENCODER_FIELD: &str = "bert";

/// The Hugging Face name of block `index`: `encoder.layer.{index}`.
pub fn layer(index: usize) -> String {
    format!("encoder.layer.{index}")
}

/// The Hugging Face name of a linear layer of block `index`.
pub fn linear(index: usize, which: Linear) -> String {
    format!("{}.{}", layer(index), which.hf())
}

/// The Hugging Face name of a LayerNorm of block `index`.
pub fn norm(index: usize, which: Norm) -> String {
    format!("{}.{}", layer(index), which.hf())
}

/// The name of a LoRA factor of the linear layer named `module`, as PEFT writes it (without
/// [`PEFT_PREFIX`]).
pub fn lora(module: &str, factor: LoraFactor) -> String {
    format!("{module}.{}", factor.hf())
}

/// A linear layer's weight and bias names.
pub(crate) fn weight_and_bias(module: &str) -> (String, String) {
    (format!("{module}.weight"), format!("{module}.bias"))
}

/// Maps a parameter path of a [`SentenceEncoder`](crate::SentenceEncoder) (or of its
/// [`Bert`](crate::Bert), without the leading `bert.`), as burn's module visitor reports it
/// (`bert.layers.0.attention.query.weight`), to the Hugging Face tensor name
/// (`encoder.layer.0.attention.self.query.weight`). LayerNorm's `gamma` / `beta` map to
/// `weight` / `bias`; LoRA factors map to PEFT's `….lora_A.weight` / `….lora_B.weight`.
/// `None` for a path that is no parameter of the encoder.
///
/// Values keep the encoder's layout: a linear weight is `[in, out]` here and `[out, in]` in a
/// Hugging Face checkpoint.
pub fn hf_param_name(path: &str) -> Option<String> {
    let path = path
        .strip_prefix(ENCODER_FIELD)
        .and_then(|p| p.strip_prefix('.'))
        .unwrap_or(path);
    let under = |path: &str, field: &str| -> Option<String> {
        path.strip_prefix(field)?
            .strip_prefix('.')
            .map(str::to_string)
    };
    if let Some(rest) = path.strip_prefix("layers.") {
        let (index, rest) = rest.split_once('.')?;
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let index: usize = index.parse().ok()?;
        for which in Linear::ALL {
            if let Some(param) = under(rest, which.field()) {
                return linear_param(&linear(index, which), &param);
            }
        }
        for which in Norm::ALL {
            if let Some(param) = under(rest, which.field()) {
                return norm_param(&norm(index, which), &param);
            }
        }
        return None;
    }
    for part in EmbeddingPart::ALL {
        if let Some(param) = under(path, part.field()) {
            return match part {
                EmbeddingPart::Norm => norm_param(part.hf(), &param),
                _ => (param == "weight").then(|| format!("{}.weight", part.hf())),
            };
        }
    }
    None
}

fn linear_param(module: &str, param: &str) -> Option<String> {
    match param {
        "weight" | "bias" => Some(format!("{module}.{param}")),
        _ => [LoraFactor::A, LoraFactor::B]
            .into_iter()
            .find(|f| f.field() == param)
            .map(|f| lora(module, f)),
    }
}

fn norm_param(module: &str, param: &str) -> Option<String> {
    match param {
        "gamma" => Some(format!("{module}.weight")),
        "beta" => Some(format!("{module}.bias")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_hugging_face_names() {
        for (path, name) in [
            (
                "bert.embeddings.word.weight",
                Some("embeddings.word_embeddings.weight"),
            ),
            ("embeddings.norm.gamma", Some("embeddings.LayerNorm.weight")),
            (
                "bert.layers.11.attention.norm.beta",
                Some("encoder.layer.11.attention.output.LayerNorm.bias"),
            ),
            (
                "bert.layers.0.attention.output.bias",
                Some("encoder.layer.0.attention.output.dense.bias"),
            ),
            (
                "bert.layers.2.output.lora.b",
                Some("encoder.layer.2.output.dense.lora_B.weight"),
            ),
            (
                "bert.layers.2.norm.gamma",
                Some("encoder.layer.2.output.LayerNorm.weight"),
            ),
            ("bert.layers.x.output.weight", None),
            ("bert.layers.+1.output.weight", None),
            ("bert.layers.0.outputs.weight", None),
            ("bert.embeddings.word.bias", None),
            ("bert.pooler.dense.weight", None),
            ("", None),
        ] {
            assert_eq!(hf_param_name(path).as_deref(), name, "{path}");
        }
    }
}
