//! The training crate's error type.

use std::path::PathBuf;

/// What can stop a training run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The encoder failed (loading, tokenising, saving).
    #[error(transparent)]
    Encoder(#[from] embedtune_encoder::EncoderError),
    /// The loss rejected its inputs.
    #[error("loss: {0}")]
    Loss(#[from] embedtune_losses::LossError),
    /// Reading or sampling the data failed.
    #[error(transparent)]
    Data(#[from] embedtune_data::DataError),
    /// Evaluation failed.
    #[error("evaluation: {0}")]
    Eval(#[from] embedtune_eval::EvalError),
    /// The index failed (hard-negative mining).
    #[error(transparent)]
    Index(#[from] embedtune_index::IndexError),
    /// A setting is invalid.
    #[error("invalid setting {name}: {reason}")]
    Config {
        /// The setting.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The loss became NaN or infinite.
    #[error("the loss is {value} at step {step}: training stopped; the last checkpoint is intact")]
    NonFiniteLoss {
        /// Optimiser step (1-based) at which it happened.
        step: u64,
        /// The value.
        value: f64,
    },
    /// The gradients' global norm became NaN or infinite: the step is not applied.
    #[error(
        "the gradient norm is {value} at step {step}: training stopped before applying it; \
         the last checkpoint is intact"
    )]
    NonFiniteGradNorm {
        /// Optimiser step (1-based) at which it happened.
        step: u64,
        /// The value.
        value: f64,
    },
    /// A checkpoint file could not be read or written: unreadable, of another format, written
    /// with other settings, optimiser state that is not a set of finite AdamW moments.
    #[error("checkpoint {}: {fault}", path.display())]
    CheckpointFile {
        /// The file (`trainer_state.json`, `optimizer.safetensors`) inside the checkpoint
        /// directory.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        fault: CheckpointFault,
    },
    /// A checkpoint does not belong to this run: another starting model, other data, or
    /// optimiser state that does not fit the model's parameters. Found before anything is
    /// allocated from it.
    #[error("checkpoint {path} does not fit this run: {what}: {reason}")]
    CheckpointMismatch {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// What differs (`starting model`, `training data`, `optimiser state`).
        what: &'static str,
        /// How.
        reason: String,
    },
    /// The output directory holds another run's files, which a fresh run would mix with its
    /// own (and whose checkpoints it could prune).
    #[error(
        "the output directory {path} already holds a run ({}): resume from one of its \
         checkpoints, allow overwriting it, or choose another directory",
        found.join(", ")
    )]
    OutputNotEmpty {
        /// The output directory.
        path: PathBuf,
        /// What was found there.
        found: Vec<String>,
    },
    /// The output directory is the starting model's directory, or inside it (or contains it):
    /// saving there would replace or mix with the model being trained.
    #[error("the output directory {output} overlaps the starting model's directory {model}")]
    OutputOverlapsModel {
        /// The output directory.
        output: PathBuf,
        /// The model directory.
        model: PathBuf,
    },
    /// Drawing the training plot failed.
    #[error("plot: {0}")]
    Plot(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A value could not be serialised to JSON for a file (`report.json`, a checkpoint's
    /// `trainer_state.json`).
    #[error("{}: serialising JSON: {source}", path.display())]
    Serialize {
        /// The file it was for.
        path: PathBuf,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What is wrong with a checkpoint file ([`TrainError::CheckpointFile`] names the file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointFault {
    /// `trainer_state.json` is not valid JSON or not a trainer state.
    #[error("invalid trainer state: {0}")]
    StateJson(#[source] serde_json::Error),
    /// `trainer_state.json` is of a checkpoint format this build does not read.
    #[error("format version {found} (this build reads {supported})")]
    FormatVersion {
        /// The file's version.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The checkpoint was written with settings that change the computation, other than the
    /// run's: resuming would not continue the same run.
    #[error(
        "written with other settings: {}",
        changed.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    OtherSettings {
        /// Every setting that differs.
        changed: Vec<SettingChange>,
    },
    /// `optimizer.safetensors` is not a valid safetensors file.
    #[error("invalid safetensors: {0}")]
    Safetensors(#[source] safetensors::SafeTensorError),
    /// An optimiser tensor is not F32.
    #[error("{tensor} is {dtype:?}, not F32")]
    NotF32 {
        /// The tensor.
        tensor: String,
        /// Its type.
        dtype: safetensors::Dtype,
    },
    /// An optimiser tensor holds NaN or infinite values.
    #[error("{tensor} holds non-finite values")]
    NonFinite {
        /// The tensor.
        tensor: String,
    },
    /// An optimiser tensor is named neither `{parameter}.exp_avg` nor `{parameter}.exp_avg_sq`.
    #[error("{tensor} is neither an .exp_avg nor an .exp_avg_sq moment")]
    NotAMoment {
        /// The tensor.
        tensor: String,
    },
    /// One of a parameter's two AdamW moments is missing.
    #[error("{tensor} without {partner}")]
    UnpairedMoment {
        /// The moment present.
        tensor: String,
        /// The missing one.
        partner: String,
    },
    /// A parameter's two AdamW moments differ in size.
    #[error("{tensor} has {values} values, {partner} {partner_values}")]
    MomentSizes {
        /// One moment.
        tensor: String,
        /// Its number of values.
        values: usize,
        /// The other moment.
        partner: String,
        /// Its number of values.
        partner_values: usize,
    },
    /// A trainable parameter has no Hugging Face tensor name to store its optimiser state
    /// under.
    #[error("parameter {parameter} has no Hugging Face name")]
    UnnamedParameter {
        /// The parameter's path in the model.
        parameter: String,
    },
    /// The optimiser state's values could not be read out of the backend (writing).
    #[error("reading the values of {tensor}: {source}")]
    TensorValues {
        /// The state tensor.
        tensor: String,
        /// burn's error.
        source: burn::tensor::DataError,
    },
    /// An optimiser tensor could not be laid out as a safetensors tensor (writing).
    #[error("optimiser tensor {tensor}: {source}")]
    TensorLayout {
        /// The tensor.
        tensor: String,
        /// safetensors' error.
        source: safetensors::SafeTensorError,
    },
    /// The optimiser state could not be serialised as safetensors (writing).
    #[error("serialising safetensors: {0}")]
    SerializeSafetensors(#[source] safetensors::SafeTensorError),
}

/// A setting whose value in a checkpoint differs from the run's ([`CheckpointFault::OtherSettings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingChange {
    /// The setting (`lr`, `batch_size`, ...).
    pub name: &'static str,
    /// Its value in the checkpoint.
    pub checkpoint: String,
    /// Its value in this run.
    pub now: String,
}

impl std::fmt::Display for SettingChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (checkpoint {}, now {})",
            self.name, self.checkpoint, self.now
        )
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

impl From<embedtune_core::FsError> for TrainError {
    fn from(e: embedtune_core::FsError) -> Self {
        TrainError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}

/// Names `path` in a [`CheckpointFault`].
pub(crate) fn checkpoint_err(
    path: impl Into<PathBuf>,
) -> impl FnOnce(CheckpointFault) -> TrainError {
    let path = path.into();
    move |fault| TrainError::CheckpointFile { path, fault }
}
