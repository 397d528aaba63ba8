//! Checkpoints: model (or LoRA adapters), optimiser state, schedule position and run history,
//! written atomically so that a killed run always leaves the last complete checkpoint intact.
//!
//! Layout of a checkpoint directory:
//! - `model/`: the model in the sentence-transformers layout (full fine-tuning), or
//!   `adapter/`: the LoRA adapters in PEFT's format (the base model is the run's input model);
//! - `optimizer.safetensors`: AdamW moments, named after each parameter's Hugging Face tensor
//!   name ([`embedtune_encoder::names::hf_param_name`]): `{name}.exp_avg` / `.exp_avg_sq`
//!   (e.g. `encoder.layer.0.attention.self.query.lora_A.weight.exp_avg`), flat, in the order of
//!   the encoder's layout;
//! - `trainer_state.json`: step, history, evaluations, best model, and the settings.
//!
//! The schedule and the data order are functions of the settings and the step, and dropout is
//! reseeded from the step, so resuming reproduces the uninterrupted run exactly.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use embedtune_core::write_dir_atomically;
use embedtune_data::Example;
use embedtune_encoder::{names, SentenceEncoder};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::{checkpoint_err, io_err, CheckpointFault, Result, SettingChange, TrainError};
use crate::log::{EvalRecord, StepRecord};
use crate::optim::{trainable_sizes, AdamW};
use crate::trainer::Best;

const FORMAT_VERSION: u32 = 3;

/// What a checkpoint must have been made from to be resumed: the starting model's weights and
/// the prepared training data, each as a 64-bit fingerprint (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprints {
    /// The starting model: every parameter's path, shape and values (before LoRA adapters).
    pub model: String,
    /// The training examples as trained on: texts, order, hard negatives kept.
    pub data: String,
}

impl Fingerprints {
    /// Fingerprints of `model` (read once, parameter by parameter) and `examples`.
    pub fn of<B: Backend>(model: &SentenceEncoder<B>, examples: &[Example]) -> Self {
        Self {
            model: model_fingerprint(model),
            data: data_fingerprint(examples),
        }
    }
}

/// FxHash-style 64-bit mixing: fast, for telling inputs apart, not for security.
struct Hasher(u64);

impl Hasher {
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.word(b.len() as u64);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.word(u64::from_le_bytes(tail));
    }

    fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

fn model_fingerprint<B: Backend>(model: &SentenceEncoder<B>) -> String {
    struct Visit {
        path: Vec<String>,
        h: Hasher,
    }
    impl<B: Backend> ModuleVisitor<B> for Visit {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let t = param.val();
            self.h.bytes(self.path.join(".").as_bytes());
            for d in t.dims() {
                self.h.word(d as u64);
            }
            let data = t.into_data();
            self.h.bytes(&data.bytes);
        }
    }
    let mut v = Visit {
        path: Vec::new(),
        h: Hasher(0),
    };
    model.visit(&mut v);
    v.h.hex()
}

fn data_fingerprint(examples: &[Example]) -> String {
    let mut h = Hasher(1);
    h.word(examples.len() as u64);
    for e in examples {
        h.bytes(e.anchor.as_bytes());
        h.bytes(e.positive.as_bytes());
        h.word(e.negatives.len() as u64);
        for n in &e.negatives {
            h.bytes(n.as_bytes());
        }
    }
    h.hex()
}

/// The run's progress, saved in `trainer_state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainerState {
    /// Checkpoint format version.
    pub format_version: u32,
    /// Optimiser steps done.
    pub step: u64,
    /// Logged steps.
    pub history: Vec<StepRecord>,
    /// Evaluations.
    pub evals: Vec<EvalRecord>,
    /// Best evaluation so far.
    pub best: Option<Best>,
    /// The settings of the run.
    pub config: TrainConfig,
    /// The model the run started from.
    pub base_model: Option<PathBuf>,
    /// What the run was started from: a resume must present the same.
    pub fingerprints: Fingerprints,
    /// Parameters with optimiser state when the checkpoint was written.
    pub optimizer_parameters: usize,
}

impl TrainerState {
    pub(crate) fn new(
        config: &TrainConfig,
        base_model: Option<&Path>,
        fingerprints: Fingerprints,
    ) -> Self {
        Self {
            fingerprints,
            optimizer_parameters: 0,
            format_version: FORMAT_VERSION,
            step: 0,
            history: Vec::new(),
            evals: Vec::new(),
            best: None,
            config: config.clone(),
            base_model: base_model.map(Path::to_path_buf),
        }
    }
}

impl TrainerState {
    /// Parses a `trainer_state.json` text read from `path` (named in errors) and checks its
    /// format version.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let state: TrainerState = serde_json::from_str(text)
            .map_err(|e| checkpoint_err(path)(CheckpointFault::StateJson(e)))?;
        if state.format_version != FORMAT_VERSION {
            return Err(checkpoint_err(path)(CheckpointFault::FormatVersion {
                found: state.format_version,
                supported: FORMAT_VERSION,
            }));
        }
        Ok(state)
    }
}

/// Parses the bytes of an `optimizer.safetensors` file read from `path` (named in errors): the
/// AdamW moments by name, as [`AdamW::import`] takes them. Every tensor must be finite F32, and
/// every `{p}.exp_avg` must come with a `{p}.exp_avg_sq` of the same size and vice versa.
#[doc(hidden)]
pub fn read_optimizer_state(bytes: &[u8], path: &Path) -> Result<BTreeMap<String, Vec<f32>>> {
    let bad = |fault| checkpoint_err(path)(fault);
    let file = SafeTensors::deserialize(bytes).map_err(|e| bad(CheckpointFault::Safetensors(e)))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(CheckpointFault::NotF32 {
                tensor: name,
                dtype: view.dtype(),
            }));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(bad(CheckpointFault::NonFinite { tensor: name }));
        }
        tensors.insert(name, values);
    }
    for (name, values) in &tensors {
        let partner = if let Some(p) = name.strip_suffix(".exp_avg") {
            format!("{p}.exp_avg_sq")
        } else if let Some(p) = name.strip_suffix(".exp_avg_sq") {
            format!("{p}.exp_avg")
        } else {
            return Err(bad(CheckpointFault::NotAMoment {
                tensor: name.clone(),
            }));
        };
        match tensors.get(&partner) {
            None => {
                return Err(bad(CheckpointFault::UnpairedMoment {
                    tensor: name.clone(),
                    partner,
                }))
            }
            Some(other) if other.len() != values.len() => {
                return Err(bad(CheckpointFault::MomentSizes {
                    tensor: name.clone(),
                    values: values.len(),
                    partner,
                    partner_values: other.len(),
                }))
            }
            Some(_) => {}
        }
    }
    Ok(tensors)
}

/// A loaded checkpoint.
pub struct Checkpoint<B: AutodiffBackend> {
    /// The model to continue training.
    pub model: SentenceEncoder<B>,
    /// The optimiser with its state.
    pub optimizer: AdamW<B>,
    /// Progress and history.
    pub state: TrainerState,
}

/// Settings that change the computation: a resumed run must have the same.
fn fingerprint(c: &TrainConfig) -> Vec<(&'static str, String)> {
    vec![
        ("epochs", c.epochs.to_string()),
        ("max_steps", format!("{:?}", c.max_steps)),
        ("batch_size", c.batch_size.to_string()),
        ("grad_accum", c.grad_accum.to_string()),
        ("lr", c.lr.to_string()),
        ("warmup_ratio", c.warmup_ratio.to_string()),
        ("adamw", format!("{:?}", c.adamw)),
        ("max_grad_norm", c.max_grad_norm.to_string()),
        ("seed", c.seed.to_string()),
        ("loss", format!("{:?}", c.loss)),
        ("no_duplicates", c.no_duplicates.to_string()),
        ("num_negatives", format!("{:?}", c.num_negatives)),
        ("lora", format!("{:?}", c.lora)),
        ("max_seq_len", format!("{:?}", c.max_seq_len)),
        ("query_prompt", format!("{:?}", c.query_prompt)),
        ("passage_prompt", format!("{:?}", c.passage_prompt)),
    ]
}

impl<B: AutodiffBackend> Checkpoint<B> {
    /// Loads checkpoint `dir` of a run with settings `config` started from `base` (the run's
    /// input model, needed for LoRA checkpoints, which hold only the adapters) on data with
    /// fingerprint `expected.data`. A checkpoint of other settings, another starting model or
    /// other data, or whose optimiser state does not fit the model, is refused before its
    /// tensors are read.
    pub fn load(
        dir: &Path,
        base: &SentenceEncoder<B>,
        config: &TrainConfig,
        expected: &Fingerprints,
        device: &B::Device,
    ) -> Result<Self> {
        let state_path = dir.join("trainer_state.json");
        let text = std::fs::read_to_string(&state_path).map_err(io_err(&state_path))?;
        let state = TrainerState::from_json_str(&text, &state_path)?;
        let changed: Vec<SettingChange> = fingerprint(&state.config)
            .into_iter()
            .zip(fingerprint(config))
            .filter(|(a, b)| a.1 != b.1)
            .map(|((name, checkpoint), (_, now))| SettingChange {
                name,
                checkpoint,
                now,
            })
            .collect();
        if !changed.is_empty() {
            return Err(checkpoint_err(state_path)(CheckpointFault::OtherSettings {
                changed,
            }));
        }
        let mismatch = |what, reason| TrainError::CheckpointMismatch {
            path: dir.to_path_buf(),
            what,
            reason,
        };
        if state.fingerprints.model != expected.model {
            return Err(mismatch(
                "starting model",
                format!(
                    "the run started from weights with fingerprint {} ({}), these are {}",
                    state.fingerprints.model,
                    state
                        .base_model
                        .as_ref()
                        .map_or("no directory".into(), |p| p.display().to_string()),
                    expected.model
                ),
            ));
        }
        if state.fingerprints.data != expected.data {
            return Err(mismatch(
                "training data",
                format!(
                    "the run trained on data with fingerprint {}, this data has {}",
                    state.fingerprints.data, expected.data
                ),
            ));
        }
        let model = if config.lora.is_some() {
            base.clone().load_lora_adapter(dir.join("adapter"))?
        } else {
            let mut m = SentenceEncoder::<B>::load(dir.join("model"), device)?;
            m.set_prompts(base.prompts().clone());
            m
        };
        let opt_path = dir.join("optimizer.safetensors");
        let bytes = std::fs::read(&opt_path).map_err(io_err(&opt_path))?;
        let file = SafeTensors::deserialize(&bytes)
            .map_err(|e| checkpoint_err(&opt_path)(CheckpointFault::Safetensors(e)))?;
        // The table is checked against the model before any value is read.
        let trainable = trainable_by_hf_name(&model).map_err(checkpoint_err(&opt_path))?;
        let sizes = trainable
            .iter()
            .map(|(n, (_, s))| (n.clone(), *s))
            .collect();
        check_optimizer_state(&file, &sizes, &state).map_err(|reason| {
            TrainError::CheckpointMismatch {
                path: opt_path.clone(),
                what: "optimiser state",
                reason,
            }
        })?;
        // Back from the file's Hugging Face names to the optimiser's parameter paths.
        let tensors = read_optimizer_state(&bytes, &opt_path)?
            .into_iter()
            .map(|(name, values)| {
                let (param, moment) = split_moment(&name).unwrap_or((&name, ""));
                let path = trainable.get(param).map_or(param, |(path, _)| path);
                (format!("{path}{moment}"), values)
            })
            .collect();
        let optimizer = AdamW::import(config.adamw, state.step, tensors, device)
            .map_err(checkpoint_err(&opt_path))?;
        Ok(Self {
            model,
            optimizer,
            state,
        })
    }
}

/// The model's trainable parameters by Hugging Face name: parameter path and element count.
fn trainable_by_hf_name<B: AutodiffBackend>(
    model: &SentenceEncoder<B>,
) -> Result<BTreeMap<String, (String, usize)>, CheckpointFault> {
    trainable_sizes(model)
        .into_iter()
        .map(|(path, size)| Ok((hf_name(&path)?, (path, size))))
        .collect()
}

/// The Hugging Face name of parameter `path`.
fn hf_name(path: &str) -> Result<String, CheckpointFault> {
    names::hf_param_name(path).ok_or_else(|| CheckpointFault::UnnamedParameter {
        parameter: path.to_string(),
    })
}

/// `{param}.exp_avg` → (`param`, `.exp_avg`), likewise `.exp_avg_sq`.
fn split_moment(name: &str) -> Option<(&str, &str)> {
    [".exp_avg_sq", ".exp_avg"]
        .into_iter()
        .find_map(|m| name.strip_suffix(m).map(|p| (p, m)))
}

/// Checks the optimiser file's table against the model's trainable parameters: every entry is
/// an F32 vector `{parameter}.exp_avg` / `.exp_avg_sq` of a trainable parameter, with its
/// element count, both moments present, as many parameters as the state says.
fn check_optimizer_state(
    file: &SafeTensors<'_>,
    trainable: &BTreeMap<String, usize>,
    state: &TrainerState,
) -> std::result::Result<(), String> {
    let mut params = BTreeMap::new();
    for (name, view) in file.tensors() {
        let Some((param, moment)) = split_moment(&name) else {
            return Err(format!("{name} is not an AdamW moment"));
        };
        let moment = usize::from(moment == ".exp_avg_sq");
        let Some(&numel) = trainable.get(param) else {
            return Err(format!(
                "{name} belongs to no trainable parameter of the model"
            ));
        };
        if view.dtype() != Dtype::F32 {
            return Err(format!("{name} is {:?}, not F32", view.dtype()));
        }
        if view.shape() != [numel] {
            return Err(format!(
                "{name} has shape {:?}, the parameter has {numel} elements",
                view.shape()
            ));
        }
        params.entry(param.to_string()).or_insert([false; 2])[moment] = true;
    }
    if let Some((p, _)) = params.iter().find(|(_, m)| !(m[0] && m[1])) {
        return Err(format!("{p} lacks one of its two moments"));
    }
    if params.len() != state.optimizer_parameters {
        return Err(format!(
            "state for {} parameters, the checkpoint was written with {}",
            params.len(),
            state.optimizer_parameters
        ));
    }
    Ok(())
}

/// Writes a checkpoint to `dir` atomically (replacing an existing one).
pub fn save<B: AutodiffBackend>(
    dir: &Path,
    model: &SentenceEncoder<B>,
    optimizer: &AdamW<B>,
    state: &TrainerState,
) -> Result<()> {
    let opt_path = dir.join("optimizer.safetensors");
    let bad = |fault| checkpoint_err(&opt_path)(fault);
    let (_, moments) = optimizer.export().map_err(bad)?;
    let mut state = state.clone();
    state.optimizer_parameters = optimizer.tracked_parameters();
    let bytes = moments
        .into_iter()
        .map(|(name, values)| {
            let (path, moment) = split_moment(&name).unwrap_or((&name, ""));
            let name = format!("{}{moment}", hf_name(path)?);
            let shape = vec![values.len()];
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            Ok((name, shape, data))
        })
        .collect::<Result<Vec<(String, Vec<usize>, Vec<u8>)>, CheckpointFault>>()
        .map_err(bad)?;
    let mut views = Vec::with_capacity(bytes.len());
    for (name, shape, data) in &bytes {
        let view = TensorView::new(Dtype::F32, shape.clone(), data).map_err(|source| {
            bad(CheckpointFault::TensorLayout {
                tensor: name.clone(),
                source,
            })
        })?;
        views.push((name.clone(), view));
    }
    let optimizer_bytes = safetensors::serialize(views, Some(HashMap::new()))
        .map_err(|e| bad(CheckpointFault::SerializeSafetensors(e)))?;
    let state_json = serde_json::to_value(&state).map_err(|source| TrainError::Serialize {
        path: dir.join("trainer_state.json"),
        source,
    })?;
    let valid = burn::module::AutodiffModule::valid(model);
    write_dir_atomically(dir, |w| {
        if valid.lora_config().is_some() {
            valid.save_lora_adapter(w.path().join("adapter"))?;
        } else {
            valid.save(w.path().join("model"))?;
        }
        w.bytes("optimizer.safetensors", &optimizer_bytes)?;
        w.json("trainer_state.json", &state_json)?;
        Ok::<(), TrainError>(())
    })
}

/// Keeps the newest `keep` `step-N` checkpoints with `N ≤ up_to` under `dir` and removes the
/// older ones; checkpoints past `up_to` (another timeline of the run, from before a resume at
/// an earlier step) are left alone.
pub fn prune(dir: &Path, keep: usize, up_to: u64) -> Result<()> {
    let mut steps = steps(dir).map_err(io_err(dir))?;
    steps.retain(|(n, _)| *n <= up_to);
    let excess = steps.len().saturating_sub(keep.max(1));
    for (_, path) in steps.into_iter().take(excess) {
        std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
    }
    Ok(())
}

/// The `step-N` checkpoints under `dir` with their step numbers, oldest first (staging folders
/// of interrupted saves are not among them).
pub fn steps(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut steps: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_string_lossy()
                .strip_prefix("step-")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    steps.sort();
    Ok(steps)
}

/// The newest `step-N` checkpoint under `dir`, if any.
pub fn latest(dir: &Path) -> Option<PathBuf> {
    steps(dir).ok()?.pop().map(|(_, p)| p)
}
