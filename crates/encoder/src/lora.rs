//! LoRA adapters (Hu et al. 2021) as PEFT implements them: configuration, the adapter module,
//! and PEFT's on-disk format (`adapter_config.json` + `adapter_model.safetensors`).

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{LoraError, Result};

/// Which linear layers get adapters, and how large they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Rank of the update `A·B`.
    pub r: usize,
    /// Scaling numerator: the update is multiplied by `alpha / r`.
    #[serde(rename = "lora_alpha")]
    pub alpha: f64,
    /// Dropout on the adapter's input (training only).
    #[serde(rename = "lora_dropout")]
    pub dropout: f64,
    /// Hugging Face module names or name suffixes, as PEFT matches them: `query`, `key`,
    /// `value`, `attention.output.dense`, `intermediate.dense`, `output.dense`, or `dense` for
    /// all three dense layers. A module matches a target when its full name equals it or ends
    /// with `.` + target.
    pub target_modules: Vec<String>,
}

impl Default for LoraConfig {
    /// r 8, alpha 16, dropout 0.1 on query, key, value and the dense layers.
    fn default() -> Self {
        Self {
            r: 8,
            alpha: 16.0,
            dropout: 0.1,
            target_modules: ["query", "key", "value", "dense"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl LoraConfig {
    /// Checks the values before adapters are built.
    pub fn validate(&self) -> Result<()> {
        if self.r == 0 {
            return Err(LoraError::ZeroRank.into());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(LoraError::Alpha(self.alpha).into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(LoraError::Dropout(self.dropout).into());
        }
        if self.target_modules.is_empty() {
            return Err(LoraError::NoTargets.into());
        }
        Ok(())
    }

    /// The update's scale `alpha / r`.
    pub fn scaling(&self) -> f64 {
        self.alpha / self.r as f64
    }

    /// Whether the module with full name `name` (e.g. `encoder.layer.0.attention.self.query`)
    /// is a target.
    pub fn matches(&self, name: &str) -> bool {
        self.target_modules.iter().any(|t| {
            name == t
                || (name.len() > t.len()
                    && name.ends_with(t.as_str())
                    && name.as_bytes()[name.len() - t.len() - 1] == b'.')
        })
    }
}

/// The adapter of one linear layer: `scaling · dropout(x)·A·B`, with `A` `[in, r]` (PEFT's
/// `lora_A.weight` transposed) and `B` `[r, out]` (`lora_B.weight` transposed).
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
    /// Down-projection `[in, r]`.
    pub a: Param<Tensor<B, 2>>,
    /// Up-projection `[r, out]`.
    pub b: Param<Tensor<B, 2>>,
    /// `alpha / r`.
    pub scaling: f64,
    /// Input dropout (active only on autodiff backends).
    pub dropout: Dropout,
}

impl<B: Backend> LoraAdapter<B> {
    /// PEFT's initialisation: `A` Kaiming-uniform (bound `1/√in`), `B` zero, so the wrapped
    /// layer's output is unchanged until `B` is trained. `seed` makes `A` reproducible.
    pub fn init(
        d_in: usize,
        d_out: usize,
        config: &LoraConfig,
        seed: u64,
        device: &B::Device,
    ) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let a: Vec<f32> = (0..d_in * config.r)
            .map(|_| rng.random_range(-bound..bound) as f32)
            .collect();
        Self::from_tensors(
            Tensor::from_data(TensorData::new(a, [d_in, config.r]), device),
            Tensor::zeros([config.r, d_out], device),
            config,
        )
    }

    /// An adapter with the given matrices (`a` `[in, r]`, `b` `[r, out]`).
    pub fn from_tensors(a: Tensor<B, 2>, b: Tensor<B, 2>, config: &LoraConfig) -> Self {
        Self {
            a: Param::from_tensor(a),
            b: Param::from_tensor(b),
            scaling: config.scaling(),
            dropout: DropoutConfig::new(config.dropout).init(),
        }
    }

    /// The adapter's contribution for input `x` `[.., in]`.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let x = crate::fused::dropout(x, self.dropout.prob);
        // Scaling the rank-r intermediate is the same product, on r columns instead of `out`.
        linear(
            linear(x, self.a.val(), None) * self.scaling,
            self.b.val(),
            None,
        )
    }

    /// The full-size update `scaling · A·B` `[in, out]`, for merging.
    pub fn delta(&self) -> Tensor<B, 2> {
        self.a.val().matmul(self.b.val()) * self.scaling
    }
}

/// PEFT's `adapter_config.json`, as written by PEFT 0.x for a LoRA adapter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PeftAdapterConfig {
    pub peft_type: String,
    pub r: usize,
    pub lora_alpha: f64,
    #[serde(default)]
    pub lora_dropout: f64,
    pub target_modules: TargetModules,
    #[serde(default = "default_bias")]
    pub bias: String,
    #[serde(default)]
    pub fan_in_fan_out: bool,
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default)]
    pub use_dora: bool,
    #[serde(default)]
    pub task_type: Option<String>,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    #[serde(default)]
    pub inference_mode: bool,
    #[serde(default)]
    pub init_lora_weights: serde_json::Value,
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
}

fn default_bias() -> String {
    "none".into()
}

/// PEFT stores `target_modules` as a list or as one regular-expression string.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum TargetModules {
    List(Vec<String>),
    One(String),
}

impl PeftAdapterConfig {
    pub(crate) fn from_lora(config: &LoraConfig, base: Option<String>) -> Self {
        Self {
            peft_type: "LORA".into(),
            r: config.r,
            lora_alpha: config.alpha,
            lora_dropout: config.dropout,
            target_modules: TargetModules::List(config.target_modules.clone()),
            bias: "none".into(),
            fan_in_fan_out: false,
            use_rslora: false,
            use_dora: false,
            task_type: Some("FEATURE_EXTRACTION".into()),
            base_model_name_or_path: base,
            inference_mode: true,
            init_lora_weights: serde_json::Value::Bool(true),
            modules_to_save: None,
        }
    }

    /// Converts to a [`LoraConfig`], refusing variants this crate does not implement.
    pub(crate) fn to_lora(&self) -> Result<LoraConfig> {
        let unsupported = |what: &str| Err(LoraError::Unsupported(what.to_string()).into());
        if self.peft_type != "LORA" {
            return unsupported(&format!("peft_type {}", self.peft_type));
        }
        if self.use_rslora {
            return unsupported("rsLoRA");
        }
        if self.use_dora {
            return unsupported("DoRA");
        }
        if self.bias != "none" {
            return unsupported(&format!("bias {:?}", self.bias));
        }
        if self.fan_in_fan_out {
            return unsupported("fan_in_fan_out");
        }
        if self.modules_to_save.as_ref().is_some_and(|m| !m.is_empty()) {
            return unsupported("modules_to_save");
        }
        let target_modules = match &self.target_modules {
            TargetModules::List(l) => l.clone(),
            TargetModules::One(s) => {
                return unsupported(&format!("a regular-expression target_modules {s:?}"))
            }
        };
        let config = LoraConfig {
            r: self.r,
            alpha: self.lora_alpha,
            dropout: self.lora_dropout,
            target_modules,
        };
        config.validate()?;
        Ok(config)
    }
}
