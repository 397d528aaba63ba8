//! The transformer's `config.json`, as Hugging Face writes it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{EncoderError, Result};

/// The transformer architectures this crate knows.
///
/// Every variant is a post-LayerNorm BERT-style encoder with the same weight names; they differ
/// in how position ids are formed: `0..len` for BERT; for (XLM-)RoBERTa, as transformers'
/// `create_position_ids_from_input_ids`, `pad_token_id + 1 + k` for the k-th non-padding token
/// and `pad_token_id` for padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `model_type: "bert"`: BERT, MiniLM, E5-v2, BGE-v1.5.
    Bert,
    /// `model_type: "xlm-roberta"`: multilingual-e5, bge-m3.
    XlmRoberta,
    /// `model_type: "roberta"`: the same encoder as XLM-RoBERTa.
    Roberta,
}

impl Architecture {
    fn from_model_type(model_type: &str) -> Option<Self> {
        match model_type {
            "bert" => Some(Self::Bert),
            "xlm-roberta" => Some(Self::XlmRoberta),
            "roberta" => Some(Self::Roberta),
            _ => None,
        }
    }

    /// The `model_type` string of `config.json`.
    pub fn model_type(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::XlmRoberta => "xlm-roberta",
            Self::Roberta => "roberta",
        }
    }

    /// Whether position ids count from `pad_token_id + 1` and skip padding (RoBERTa's scheme).
    pub fn positions_after_padding(self) -> bool {
        matches!(self, Self::XlmRoberta | Self::Roberta)
    }
}

/// The feed-forward activation (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU, `x·Φ(x)` with erf (`"gelu"`).
    Gelu,
    /// The tanh approximation of GELU (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
    /// ReLU (`"relu"`).
    Relu,
}

impl Activation {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            "relu" => Some(Self::Relu),
            _ => None,
        }
    }
}

/// The fields of `config.json` the encoder uses. Unknown keys are ignored on reading and kept
/// verbatim (in [`TransformerConfig::raw`]) for writing back.
#[derive(Debug, Clone, Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default = "default_dropout")]
    hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    attention_probs_dropout_prob: f64,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    pad_token_id: Option<usize>,
    #[serde(default)]
    position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// A validated transformer configuration.
#[derive(Debug, Clone)]
pub struct TransformerConfig {
    /// Which architecture.
    pub architecture: Architecture,
    /// Vocabulary size (rows of the word embedding).
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads; divides `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    pub hidden_act: Activation,
    /// Dropout after embeddings, attention output and feed-forward output (training only).
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities (training only).
    pub attention_probs_dropout_prob: f64,
    /// Rows of the position embedding.
    pub max_position_embeddings: usize,
    /// Rows of the token-type embedding.
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Id of the padding token.
    pub pad_token_id: usize,
    /// The whole `config.json` as read, written back unchanged on save.
    pub raw: serde_json::Value,
}

impl TransformerConfig {
    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(EncoderError::MissingFile {
                path: path.to_path_buf(),
                what: "the transformer's config.json",
            });
        }
        let text = std::fs::read_to_string(path).map_err(crate::error::io_err(path))?;
        Self::from_json_str(&text, path)
    }

    /// Parses a `config.json` text; `path` is used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let json_err = |source| EncoderError::Json {
            path: path.to_path_buf(),
            source,
        };
        let raw: serde_json::Value = serde_json::from_str(text).map_err(json_err)?;
        let cfg: RawConfig = serde_json::from_value(raw.clone()).map_err(json_err)?;
        let invalid = |reason: String| EncoderError::InvalidConfig {
            path: path.to_path_buf(),
            reason,
        };
        let model_type = cfg.model_type.clone().unwrap_or_default();
        let architecture = Architecture::from_model_type(&model_type).ok_or_else(|| {
            EncoderError::UnsupportedModelType {
                path: path.to_path_buf(),
                model_type: model_type.clone(),
            }
        })?;
        let hidden_act = Activation::parse(&cfg.hidden_act)
            .ok_or_else(|| invalid(format!("unsupported hidden_act {:?}", cfg.hidden_act)))?;
        if let Some(kind) = &cfg.position_embedding_type {
            if kind != "absolute" {
                return Err(invalid(format!(
                    "position_embedding_type {kind:?} is not supported (only \"absolute\")"
                )));
            }
        }
        for (name, value) in [
            ("vocab_size", cfg.vocab_size),
            ("hidden_size", cfg.hidden_size),
            ("num_hidden_layers", cfg.num_hidden_layers),
            ("num_attention_heads", cfg.num_attention_heads),
            ("intermediate_size", cfg.intermediate_size),
            ("max_position_embeddings", cfg.max_position_embeddings),
            ("type_vocab_size", cfg.type_vocab_size),
        ] {
            if value == 0 {
                return Err(invalid(format!("{name} must be positive")));
            }
        }
        if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(invalid(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                cfg.hidden_size, cfg.num_attention_heads
            )));
        }
        for (name, p) in [
            ("hidden_dropout_prob", cfg.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                cfg.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(invalid(format!("{name} {p} is not in [0, 1)")));
            }
        }
        if !(cfg.layer_norm_eps > 0.0 && cfg.layer_norm_eps.is_finite()) {
            return Err(invalid(format!(
                "layer_norm_eps {} must be positive",
                cfg.layer_norm_eps
            )));
        }
        // RoBERTa's `<pad>` is 1 (`<s>` 0, `</s>` 2); BERT's `[PAD]` 0.
        let pad_token_id = cfg
            .pad_token_id
            .unwrap_or(usize::from(architecture.positions_after_padding()));
        if pad_token_id >= cfg.vocab_size {
            return Err(invalid(format!(
                "pad_token_id {pad_token_id} is outside the vocabulary ({})",
                cfg.vocab_size
            )));
        }
        if architecture.positions_after_padding() && cfg.max_position_embeddings <= pad_token_id + 1
        {
            return Err(invalid(format!(
                "max_position_embeddings {} leaves no position after pad_token_id {pad_token_id} \
                 ({} positions count from pad_token_id + 1)",
                cfg.max_position_embeddings,
                architecture.model_type()
            )));
        }
        Ok(Self {
            architecture,
            vocab_size: cfg.vocab_size,
            hidden_size: cfg.hidden_size,
            num_hidden_layers: cfg.num_hidden_layers,
            num_attention_heads: cfg.num_attention_heads,
            intermediate_size: cfg.intermediate_size,
            hidden_act,
            hidden_dropout_prob: cfg.hidden_dropout_prob,
            attention_probs_dropout_prob: cfg.attention_probs_dropout_prob,
            max_position_embeddings: cfg.max_position_embeddings,
            type_vocab_size: cfg.type_vocab_size,
            layer_norm_eps: cfg.layer_norm_eps,
            pad_token_id,
            raw,
        })
    }

    /// A small BERT configuration, for tests and examples that need a model without files.
    ///
    /// Fails like [`TransformerConfig::load`] when the sizes are inconsistent (e.g. `hidden_size`
    /// not a multiple of `heads`).
    pub fn tiny_bert(
        vocab_size: usize,
        hidden_size: usize,
        layers: usize,
        heads: usize,
    ) -> Result<Self> {
        let raw = serde_json::json!({
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": vocab_size,
            "hidden_size": hidden_size,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "intermediate_size": hidden_size * 4,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": 512,
            "type_vocab_size": 2,
            "layer_norm_eps": 1e-12,
            "pad_token_id": 0,
            "position_embedding_type": "absolute"
        });
        Self::from_json_str(&raw.to_string(), &PathBuf::from("<tiny_bert>"))
    }

    /// The padding id that position ids count from, for architectures whose positions start
    /// after it ([`Architecture::positions_after_padding`]).
    pub fn position_pad(&self) -> Option<usize> {
        self.architecture
            .positions_after_padding()
            .then_some(self.pad_token_id)
    }

    /// The longest text, in tokens (special tokens included), the position embeddings can
    /// place: `max_position_embeddings`, less `pad_token_id + 1` for RoBERTa-style positions.
    pub fn max_tokens(&self) -> usize {
        match self.position_pad() {
            Some(pad) => self.max_position_embeddings.saturating_sub(pad + 1),
            None => self.max_position_embeddings,
        }
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}
