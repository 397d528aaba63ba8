//! The crate's error type: every bad input or bad file is reported as an [`IndexError`].

use std::fmt;
use std::path::PathBuf;

/// Which input an error is about: a vector being added, a query, or a loaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item {
    /// The vector at `position` in an `add` batch, with its id.
    Vector {
        /// Position of the vector in the batch (0-based).
        position: usize,
        /// The id given for it.
        id: String,
    },
    /// The query at `position` in a search batch (0 for a single query).
    Query {
        /// Position of the query in the batch (0-based).
        position: usize,
    },
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Vector { position, id } => write!(f, "vector {position} (id {id:?})"),
            Item::Query { position } => write!(f, "query {position}"),
        }
    }
}

/// Everything that can go wrong in this crate.
///
/// Invalid input never panics: it returns one of these, naming the vector, query, id or file concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// An index was asked for with dimension 0.
    #[error("an index needs a dimension of at least 1")]
    ZeroDimension,
    /// A vector or query does not have the index's dimension.
    #[error("{item} has {found} values but the index has dimension {expected}")]
    DimensionMismatch {
        /// The vector or query concerned.
        item: Item,
        /// The index's dimension.
        expected: usize,
        /// The length that was given.
        found: usize,
    },
    /// An `add` batch with another number of ids than of vectors.
    #[error("a batch of {ids} ids with {rows} vectors")]
    BatchShape {
        /// Number of ids in the batch.
        ids: usize,
        /// Number of vectors (rows) in the batch.
        rows: usize,
    },
    /// A batch of vectors or queries whose rows are not as wide as the index's vectors.
    #[error("the {what} have dimension {found} but the index has dimension {expected}")]
    BatchDimension {
        /// `vectors` (an `add` batch) or `queries` (a search batch).
        what: &'static str,
        /// The index's dimension.
        expected: usize,
        /// The batch's dimension.
        found: usize,
    },
    /// A NaN or infinite component.
    #[error("{item} has a non-finite value ({value}) at component {component}")]
    NonFinite {
        /// The vector or query concerned.
        item: Item,
        /// Index of the bad component.
        component: usize,
        /// The bad value.
        value: f32,
    },
    /// A vector whose squared norm overflows `f32` (its scores would be infinite).
    #[error("{item} is too large: its squared norm overflows f32")]
    NormOverflow {
        /// The vector or query concerned.
        item: Item,
    },
    /// A zero vector under the cosine metric, which has no direction.
    #[error("{item} is all zeros: cosine similarity is undefined for it")]
    ZeroVector {
        /// The vector or query concerned.
        item: Item,
    },
    /// An id that is already in the index, or given twice in one batch.
    ///
    /// Policy: ids are unique; a batch containing a duplicate is rejected as a whole and the
    /// index is left unchanged. To replace a vector, `remove` its id, then `add` it again.
    #[error("duplicate id {id:?} at position {position} of the batch ({reason})")]
    DuplicateId {
        /// The id.
        id: String,
        /// Its position in the batch.
        position: usize,
        /// "already in the index" or "repeated within the batch".
        reason: &'static str,
    },
    /// `remove` was given an id that is not in the index.
    #[error("id {id:?} (position {position} of the batch) is not in the index")]
    UnknownId {
        /// The id.
        id: String,
        /// Its position in the batch.
        position: usize,
    },
    /// A search asked for zero results.
    #[error("k must be at least 1")]
    ZeroK,
    /// A search on an index that holds no (live) vectors.
    #[error("the index is empty")]
    EmptyIndex,
    /// The index would exceed the 2³² − 1 vectors it can address.
    #[error("an index holds at most {max} vectors")]
    TooManyVectors {
        /// The limit.
        max: usize,
    },
    /// A construction or search parameter out of range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// The value given.
        value: usize,
        /// What is allowed.
        reason: &'static str,
    },
    /// A metric this index type cannot use.
    #[error("{index} does not support the {metric} metric")]
    UnsupportedMetric {
        /// The index type.
        index: &'static str,
        /// The metric asked for.
        metric: &'static str,
    },
    /// An I/O error on a file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start with this crate's magic bytes.
    #[error("{path} is not an embedtune index file")]
    NotAnIndexFile {
        /// The file.
        path: PathBuf,
    },
    /// The file was written with another format version.
    #[error("{path} has index format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The file is shorter than its header says.
    #[error("{path} is truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The length the header announces.
        expected: u64,
        /// The actual length.
        found: u64,
    },
    /// A checksum mismatch or an inconsistent structure inside the file.
    #[error("{path} is corrupted: {reason}")]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the section.
        reason: String,
    },
    /// A file whose dimensions disagree with each other or with what the caller expects.
    #[error("{path}: dimension mismatch: {reason}")]
    FileDimensionMismatch {
        /// The file.
        path: PathBuf,
        /// What disagrees.
        reason: String,
    },
    /// The file holds another kind of index than the one asked for.
    #[error("{path} holds a {found} index, not a {expected} index")]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// The kind asked for.
        expected: &'static str,
        /// The kind in the file.
        found: String,
    },
    /// The file was written on a platform whose HNSW dump layout differs (endianness, word size).
    #[error("{path} was written on another platform ({reason})")]
    UnsupportedPlatform {
        /// The file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// `hnsw_rs` reported an error (or failed) while dumping or reloading its graph.
    #[error("hnsw_rs failed to {action}: {message}")]
    Hnsw {
        /// "dump the graph" or "reload the graph".
        action: &'static str,
        /// Its message.
        message: String,
    },
}

impl IndexError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IndexError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
