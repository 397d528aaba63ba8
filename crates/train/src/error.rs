//! The training crate's error type.

use std::path::PathBuf;

/// What can stop a training run.
#[derive(Debug, thiserror::Error)]
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
    /// A checkpoint could not be written or read.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
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
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
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
