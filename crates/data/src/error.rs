//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading, batching or summing up data.
///
/// Variants that come from a file name the file (`path`, as given by the caller; `<memory>` or
/// any other label for in-memory input) and the 1-based `line` where the problem is. For a
/// CSV / TSV record spread over several physical lines (a quoted field with newlines) `line` is
/// the line where the record starts. The `Display` form is `path:line: message`, like a compiler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// Opening or reading the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes of a line are not valid UTF-8.
    #[error("{}:{line}:{column}: invalid UTF-8", path.display())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based byte column of the first invalid byte (in bytes: the line is not text;
        /// a BOM at the start of the file counts).
        column: usize,
    },
    /// A UTF-8 byte-order mark somewhere other than the very start of the file (a BOM at the
    /// start is skipped). This usually means several files were concatenated.
    #[error("{}:{line}: UTF-8 byte-order mark in the middle of the file (concatenated files?)", path.display())]
    UnexpectedBom {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A line is longer than the reader's limit (see [`ReadOptions::max_line_bytes`](crate::ReadOptions::max_line_bytes)).
    #[error("{}:{line}: line longer than {limit} bytes", path.display())]
    LineTooLong {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A JSONL line is not valid JSON.
    #[error("{}:{line}:{column}: invalid JSON: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based character (Unicode scalar value) column inside the line where the JSON
        /// parser stopped, counted like [`DataError::QuoteSyntax`]'s (serde_json's own column
        /// counts bytes, three per Chinese character); a BOM at the start of the file is not
        /// counted.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A JSONL line is valid JSON but not an object.
    #[error("{}:{line}: expected a JSON object, found {found}", path.display())]
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The JSON type found (`array`, `string`, ...).
        found: &'static str,
    },
    /// A required field (JSON key or CSV column) is absent.
    #[error("{}:{line}: missing field {field}", path.display())]
    MissingField {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field, or the alternatives (`"anchor" or "query"`).
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("{}:{line}: field {field:?} should be {expected}, found {found}", path.display())]
    WrongType {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field (`negatives[2]` for an element of a list).
        field: String,
        /// What was expected (`a string`, `a number`, ...).
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A numeric field (label, score, qrels relevance) does not hold a valid finite number.
    #[error("{}:{line}: field {field:?} should be {expected}, found {value:?}", path.display())]
    InvalidNumber {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field.
        field: String,
        /// What was expected (`a number`, `an integer`).
        expected: &'static str,
        /// The text found (cut to 40 characters).
        value: String,
    },
    /// A text field is empty (or whitespace only) and [`EmptyTextPolicy::Error`](crate::EmptyTextPolicy::Error) is in force.
    #[error("{}:{line}: field {field:?} is empty", path.display())]
    EmptyText {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field.
        field: String,
    },
    /// A CSV / TSV record has a different number of fields than the header.
    #[error("{}:{line}: expected {expected} fields (as in the header), found {found}", path.display())]
    FieldCount {
        /// The file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: usize,
        /// Number of header columns.
        expected: usize,
        /// Number of fields in the record.
        found: usize,
    },
    /// A quoted CSV / TSV field is never closed.
    #[error("{}:{line}: quoted field starting here is never closed", path.display())]
    UnterminatedQuote {
        /// The file.
        path: PathBuf,
        /// 1-based line where the quoted field starts.
        line: usize,
    },
    /// A character other than a delimiter or line end follows the closing quote of a CSV / TSV field.
    #[error("{}:{line}:{column}: unexpected character after closing quote", path.display())]
    QuoteSyntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based character column of the offending character.
        column: usize,
    },
    /// A CSV / TSV file has no header row (it is empty).
    #[error("{}: missing header row (empty file)", path.display())]
    MissingHeader {
        /// The file.
        path: PathBuf,
    },
    /// Two header columns have the same name.
    #[error("{}:{line}: duplicate column {column:?}", path.display())]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// 1-based line of the header.
        line: usize,
        /// The repeated name.
        column: String,
    },
    /// An id appears twice in a BEIR `corpus.jsonl` or `queries.jsonl`.
    #[error("{}:{line}: duplicate id {id:?} (first seen on line {first_line})", path.display())]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// 1-based line of the repeat.
        line: usize,
        /// The id.
        id: String,
        /// 1-based line where it first appeared.
        first_line: usize,
    },
    /// The file extension does not name a known format.
    #[error("{}: unknown data format (expected .jsonl, .json, .tsv or .csv)", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A BEIR split was asked for that has no `qrels/{split}.tsv`.
    #[error("no qrels for split {split:?} (available: {available:?})")]
    UnknownSplit {
        /// The split asked for.
        split: String,
        /// The splits loaded.
        available: Vec<String>,
    },
    /// A batch size of 0.
    #[error("invalid configuration: batch size must be > 0")]
    ZeroBatchSize,
    /// [`BatchSampler::topic_batches`](crate::BatchSampler::topic_batches) was given a number
    /// of topics other than the number of items.
    #[error("topic batches: {topics} topics given for {items} items")]
    TopicCount {
        /// Items to batch.
        items: usize,
        /// Topics given.
        topics: usize,
    },
    /// The token-length function given to
    /// [`DatasetStats::compute`](crate::DatasetStats::compute) returned a number of lengths
    /// other than the number of texts it was given.
    #[error("token lengths: {lengths} lengths returned for {texts} texts")]
    TokenLengthCount {
        /// Distinct texts handed over.
        texts: usize,
        /// Lengths returned.
        lengths: usize,
    },
}

/// Result alias with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;
