//! The error type shared by every loss in this crate.

use std::ops::Range;

/// Why a loss could not be computed.
///
/// Every variant names the offending input (`"anchors"`, `"positives"`, `"negatives[0]"`,
/// `"labels"`, ...) or parameter, so a training loop can report it as is. Losses return this
/// instead of panicking on bad user input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LossError {
    /// An input has a different number of rows (examples) than the reference input.
    #[error("{input} has {rows} rows, {reference} {expected}")]
    BatchMismatch {
        /// The input with the wrong number of rows.
        input: String,
        /// Its number of rows.
        rows: usize,
        /// The input it is compared with (usually `anchors`).
        reference: String,
        /// The number of rows of `reference`.
        expected: usize,
    },
    /// An input has a different embedding dimension than the reference input.
    #[error("{input} has dimension {dim}, {reference} {expected}")]
    DimMismatch {
        /// The input with the wrong dimension.
        input: String,
        /// Its dimension (number of columns).
        dim: usize,
        /// The input it is compared with.
        reference: String,
        /// The dimension of `reference`.
        expected: usize,
    },
    /// An input has no rows, or embeddings have no columns.
    #[error("{input} is empty (shape {shape:?})")]
    Empty {
        /// The empty input.
        input: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// An input contains NaN or an infinity.
    #[error("{input} contains non-finite values (NaN or infinity)")]
    NonFinite {
        /// The input with non-finite values.
        input: String,
    },
    /// The loss was given the wrong number of embedding columns.
    #[error("{loss} takes {expected} embedding columns, got {got}")]
    ColumnCount {
        /// The loss.
        loss: &'static str,
        /// What it accepts, e.g. `"2"` or `"at least 2"`.
        expected: &'static str,
        /// How many it was given.
        got: usize,
    },
    /// The loss needs labels (scores) and none were given.
    #[error("{loss} needs labels, none were given")]
    MissingLabels {
        /// The loss.
        loss: &'static str,
    },
    /// A loss parameter is out of its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter, e.g. `"scale"` or `"matryoshka_dims[2]"`.
        name: String,
        /// Its value, formatted.
        value: String,
        /// What is expected of it.
        reason: String,
    },
    /// The embedding function given to a cached loss failed.
    #[error("embedding column {column}, rows {range:?} failed: {source}")]
    Embed {
        /// The column (0 = anchors).
        column: usize,
        /// The rows of that column being embedded.
        range: Range<usize>,
        /// The error returned by the embedding function.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The embedding function given to a cached loss returned a tensor of the wrong shape.
    #[error("embedding column {column}, rows {range:?} returned shape {shape:?}, expected [{expected_rows}, {expected_dim}]")]
    EmbedShape {
        /// The column (0 = anchors).
        column: usize,
        /// The rows of that column being embedded.
        range: Range<usize>,
        /// The shape it returned.
        shape: Vec<usize>,
        /// The expected number of rows (`range.len()`).
        expected_rows: usize,
        /// The expected dimension (that of the first mini-batch).
        expected_dim: usize,
    },
    /// The backend failed to read a tensor back (e.g. a device error).
    #[error("backend error: {0}")]
    Backend(#[from] burn::tensor::backend::ExecutionError),
}

impl LossError {
    pub(crate) fn invalid(name: impl Into<String>, value: impl ToString, reason: &str) -> Self {
        LossError::InvalidParameter {
            name: name.into(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = LossError> = std::result::Result<T, E>;
