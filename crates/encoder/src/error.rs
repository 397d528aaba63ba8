//! The encoder's error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading, running or saving an encoder.
///
/// Each variant names the file, tensor or input it is about, so that a user can find
/// the problem without a debugger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncoderError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A required file of the model directory is absent.
    #[error("{path}: not found ({what})")]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
        /// What the file is for.
        what: &'static str,
    },
    /// A JSON file could not be parsed or has the wrong structure.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The parser's error, with line and column.
        source: serde_json::Error,
    },
    /// `config.json` names an architecture this crate does not implement.
    #[error(
        "{path}: unsupported model_type {model_type:?} (supported: \"bert\", \"roberta\", \"xlm-roberta\")"
    )]
    UnsupportedModelType {
        /// The config file.
        path: PathBuf,
        /// The `model_type` found.
        model_type: String,
    },
    /// A configuration value is missing, out of range or inconsistent.
    #[error("{path}: {reason}")]
    InvalidConfig {
        /// The file holding the value.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds weights in a format other than safetensors.
    #[error(
        "{dir}: no model.safetensors (found {found}); only safetensors weights are supported: \
         convert them, e.g. in Python `SentenceTransformer(dir).save(out, safe_serialization=True)`"
    )]
    NotSafetensors {
        /// The model directory.
        dir: PathBuf,
        /// The weight files that were found instead.
        found: String,
    },
    /// `model.safetensors` is truncated or malformed.
    #[error("{path}: invalid safetensors file: {reason}")]
    Safetensors {
        /// The weights file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// A tensor's shape differs from what the config implies.
    #[error("{path}: tensor {name}: expected shape {expected:?}, found {found:?}")]
    TensorShape {
        /// The weights file.
        path: PathBuf,
        /// The tensor's name in the file.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape stored in the file.
        found: Vec<usize>,
    },
    /// A tensor is stored in a dtype that cannot be used as a weight.
    #[error("{path}: tensor {name}: unsupported dtype {dtype} (expected F32, F16, BF16 or F64)")]
    TensorDtype {
        /// The weights file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// A tensor holds NaN or infinite values.
    #[error("{path}: tensor {name} holds non-finite values")]
    NonFiniteTensor {
        /// The weights file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
    },
    /// Tensors the model needs are absent from the weights file.
    #[error("{path}: missing tensors: {}", names.join(", "))]
    MissingTensors {
        /// The weights file.
        path: PathBuf,
        /// The missing names.
        names: Vec<String>,
    },
    /// The weights file holds tensors that belong to no part of the model.
    #[error("{path}: unexpected tensors: {}", names.join(", "))]
    UnexpectedTensors {
        /// The weights file.
        path: PathBuf,
        /// The names nothing uses.
        names: Vec<String>,
    },
    /// The tokenizer could not be loaded or failed on a text.
    #[error("{path}: tokenizer: {reason}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// The tokenizer's message.
        reason: String,
    },
    /// The tokenizer produces token ids the model has no embedding for.
    #[error(
        "{tokenizer} gives token ids up to {max_id}, but {config} has vocab_size {vocab_size} \
         (the tokenizer does not belong to this model)"
    )]
    VocabMismatch {
        /// The tokenizer file.
        tokenizer: PathBuf,
        /// The model configuration file.
        config: PathBuf,
        /// The largest id the tokenizer produces.
        max_id: u32,
        /// The model's word-embedding rows.
        vocab_size: usize,
    },
    /// An input text is empty (or only whitespace).
    #[error("text {index} is empty")]
    EmptyText {
        /// Position of the text in the input.
        index: usize,
    },
    /// An input tensor has the wrong shape or holds invalid values.
    #[error("input {name}: {reason}")]
    InvalidInput {
        /// The input's name (e.g. `input_ids`).
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A line of an input file of texts ([`crate::read_texts`]) is unusable.
    #[error("{path}:{line}: {fault}")]
    Input {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        fault: InputFault,
    },
    /// An embedding matrix could not be formed (e.g. a model whose dimension is zero).
    #[error("embeddings: {0}")]
    Shape(#[from] embedtune_core::ShapeError),
    /// The model produced non-finite values.
    #[error("{what} holds non-finite values")]
    NonFiniteOutput {
        /// Which output.
        what: &'static str,
    },
    /// A tensor could not be read back from the backend.
    #[error("reading tensor {name} from the backend: {reason}")]
    TensorData {
        /// The tensor.
        name: String,
        /// The backend's message.
        reason: String,
    },
    /// A LoRA configuration or adapter is invalid, or the operation needs (no) adapters.
    #[error("LoRA: {}{source}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Lora {
        /// The adapter's `adapter_config.json`, when the problem is in a file.
        path: Option<PathBuf>,
        /// What is wrong.
        source: LoraError,
    },
}

/// What is wrong with a LoRA configuration or adapter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LoraError {
    /// The rank is 0.
    #[error("rank r must be positive")]
    ZeroRank,
    /// `alpha` is not a positive number.
    #[error("alpha {0} must be positive")]
    Alpha(f64),
    /// The dropout is not in `[0, 1)`.
    #[error("dropout {0} is not in [0, 1)")]
    Dropout(f64),
    /// `target_modules` is empty.
    #[error("no target modules")]
    NoTargets,
    /// `target_modules` match no linear layer of the model.
    #[error("target_modules {0:?} match no linear layer of the model")]
    NoMatch(Vec<String>),
    /// The rank exceeds a target layer's smaller dimension.
    #[error("rank r = {r} exceeds {module}'s smaller dimension {smaller}")]
    RankTooLarge {
        /// The rank.
        r: usize,
        /// The layer.
        module: String,
        /// Its smaller dimension.
        smaller: usize,
    },
    /// The adapter uses a PEFT feature this crate does not implement.
    #[error("the adapter uses {0}, which is not supported")]
    Unsupported(String),
    /// Adapters are attached already.
    #[error("adapters are already attached")]
    AlreadyAttached,
    /// The operation needs attached adapters.
    #[error("no adapters are attached")]
    NotAttached,
}

impl From<LoraError> for EncoderError {
    fn from(source: LoraError) -> Self {
        EncoderError::Lora { path: None, source }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = EncoderError> = std::result::Result<T, E>;

/// What is wrong with a line of an input file of texts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputFault {
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// No `text` field.
    #[error("no \"text\" field")]
    NoText,
    /// `text` is not a string.
    #[error("\"text\" is not a string")]
    TextNotString,
    /// An empty or whitespace-only text, where those are refused.
    #[error("empty text (pass --allow-empty to embed it anyway)")]
    EmptyText,
}

impl From<embedtune_core::FsError> for EncoderError {
    fn from(e: embedtune_core::FsError) -> Self {
        EncoderError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> EncoderError {
    let path = path.into();
    move |source| EncoderError::Io { path, source }
}
