//! Training and evaluation data for embedtune.
//!
//! Reads the files users have — grouped or flat JSONL, TSV / CSV with a header, BEIR
//! directories — into [`Example`]s, [`ScoredPair`]s and [`IrSplit`]s; samples seeded batches
//! (optionally without duplicate texts, as sentence-transformers' `NoDuplicatesBatchSampler`);
//! and sums a dataset up ([`DatasetStats`]: duplicates, token-length percentiles, truncation)
//! from token lengths the caller's tokenizer gives. Bad input gives a [`DataError`] naming the
//! file and line, never a panic.
//!
//! The crate has no tokenizer and no tensors: tokenising and padding are the encoder's
//! (`embedtune_encoder::TextTokenizer`, whose `token_lengths` fits [`DatasetStats::compute`]).
//!
//! ```
//! use embedtune_data::{Dataset, ExampleReader, Format, ReadOptions};
//!
//! let jsonl = r#"{"query": "what is rust?", "positive_passages": ["A language.", "A fungus."], "negative_passages": ["A colour."]}
//! {"anchor": "capital of France", "positive": "Paris", "negatives": ["Lyon", "Nice"]}
//! "#;
//! let reader = ExampleReader::new(jsonl.as_bytes(), "train.jsonl", Format::Jsonl, ReadOptions::default());
//! let data = Dataset::from_reader(reader).unwrap();
//! assert_eq!(data.len(), 3); // one example per positive
//! assert_eq!(data.items[1].positive, "A fungus.");
//! assert_eq!(data.items[1].negatives, ["A colour."]);
//! assert_eq!(data.items[2].negatives, ["Lyon", "Nice"]);
//!
//! // A bad line is an error with its location.
//! let bad = ExampleReader::new(&b"{\"anchor\": \"a\", \"positive\": 3}\n"[..], "bad.jsonl", Format::Jsonl, ReadOptions::default());
//! let err = Dataset::from_reader(bad).unwrap_err();
//! assert_eq!(err.to_string(), "bad.jsonl:1: field \"positive\" should be a string, found a number");
//! ```
#![warn(missing_docs)]

mod beir;
mod delimited;
mod error;
mod fields;
mod reader;
mod sampler;
mod source;
mod stats;
mod types;

pub use beir::{
    read_documents, read_qrels, BeirDataset, IrSplit, Judgement, Qrels, QrelsLayout, QrelsReport,
    UnknownRef,
};
pub use error::{DataError, Result};
pub use reader::{
    read_examples, read_pairs, Dataset, EmptyTextPolicy, ExampleReader, Format, PairReader,
    ReadOptions, ReadReport, RecordReader,
};
pub use sampler::{length_sorted_batches, BatchSampler};
pub use stats::{DatasetStats, LengthStats};
pub use types::{Document, Example, ScoredPair, TextColumns};
