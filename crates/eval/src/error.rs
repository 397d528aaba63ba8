//! The crate's single error type.

use std::path::PathBuf;

use embedtune_data::DataError;
use embedtune_encoder::EncoderError;
use embedtune_index::IndexError;

/// Everything that can go wrong while setting up or running an evaluation.
///
/// Errors from the encoder, the data readers and the index are wrapped as they are; the other
/// variants name what is wrong with the evaluator's own input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// Loading the model or encoding texts failed.
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    /// Reading the dataset failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Building or searching the index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The corpus holds no passage, so there is nothing to retrieve.
    #[error("the corpus is empty: there is nothing to retrieve")]
    EmptyCorpus,
    /// No query has a relevant document, so no metric can be averaged.
    #[error("no query has a relevant document ({skipped} queries without one)")]
    NoQueries {
        /// Queries given that had no relevant document.
        skipped: usize,
    },
    /// A cut-off of 0 in one of the k lists.
    #[error("{metric}@k: k must be at least 1")]
    ZeroK {
        /// The metric whose list holds the 0 (`accuracy`, `precision_recall`, `mrr`, `ndcg`, `map`).
        metric: &'static str,
    },
    /// Every k list is empty.
    #[error("no metric to compute: every k list is empty")]
    NoMetrics,
    /// A batch size of 0.
    #[error("the batch size must be at least 1")]
    ZeroBatchSize,
    /// The same id twice among the queries or in the corpus.
    #[error("duplicate {what} id {id:?}")]
    DuplicateId {
        /// `query` or `corpus`.
        what: &'static str,
        /// The repeated id.
        id: String,
    },
    /// Precomputed embeddings or rankings do not match the evaluator's queries or corpus.
    #[error("{what}: expected {expected}, found {found}")]
    CountMismatch {
        /// What was counted (`query embeddings`, `corpus embeddings`, `rankings`).
        what: &'static str,
        /// The evaluator's count.
        expected: usize,
        /// The count given.
        found: usize,
    },
    /// The query and corpus embeddings have different dimensions.
    #[error("the query embeddings have dimension {queries}, the corpus embeddings {corpus}")]
    DimensionMismatch {
        /// The query embeddings' dimension.
        queries: usize,
        /// The corpus embeddings' dimension.
        corpus: usize,
    },
    /// A ranking names an id that is not in the corpus.
    #[error("the ranking of query {query_id:?} names {id:?}, which is not in the corpus")]
    UnknownCorpusId {
        /// The query.
        query_id: String,
        /// The unknown corpus id.
        id: String,
    },
    /// A ranking lists the same corpus id twice.
    #[error("the ranking of query {query_id:?} lists {id:?} twice")]
    DuplicateHit {
        /// The query.
        query_id: String,
        /// The repeated corpus id.
        id: String,
    },
    /// A ranking gives a hit a NaN or infinite score.
    #[error("the ranking of query {query_id:?} gives {id:?} a non-finite score ({score})")]
    NonFiniteScore {
        /// The query.
        query_id: String,
        /// The corpus id.
        id: String,
        /// The score.
        score: f32,
    },
    /// Reading or writing a report file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A report file is not valid report JSON.
    #[error("{}: invalid report JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

/// `Result` with [`EvalError`].
pub type Result<T, E = EvalError> = std::result::Result<T, E>;
