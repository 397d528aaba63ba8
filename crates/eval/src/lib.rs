//! Retrieval evaluation for embedtune, measured exactly as sentence-transformers'
//! `InformationRetrievalEvaluator` measures it, so that numbers from this project and from
//! Python are directly comparable.
//!
//! ```
//! use std::collections::BTreeMap;
//! use embedtune_eval::{Document, Embeddings, EvalConfig, IrEvaluator};
//!
//! let doc = |id: &str, text: &str| Document { id: id.into(), text: text.into() };
//! let corpus = vec![
//!     doc("d1", "Paris is the capital of France."),
//!     doc("d2", "Rust is a programming language."),
//!     doc("d3", "Rust forms on iron."),
//! ];
//! let queries = vec![doc("q1", "capital of France"), doc("q2", "what is Rust?"), doc("q3", "unjudged")];
//! let relevant = BTreeMap::from([
//!     ("q1".to_string(), BTreeMap::from([("d1".to_string(), 1)])),
//!     ("q2".to_string(), BTreeMap::from([("d2".to_string(), 1)])),
//! ]);
//! let evaluator = IrEvaluator::from_parts(queries, corpus, &relevant, EvalConfig::default())?;
//!
//! // Embeddings from any model (`evaluate(&encoder)` encodes them itself); here, by hand:
//! // q1 ranks d1 first, q2 ranks d3 above its relevant d2.
//! let corpus_vectors = Embeddings::new(vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8], 2).unwrap();
//! let query_vectors = Embeddings::new(vec![1.0, 0.1, 0.5, 0.9], 2).unwrap();
//! let report = evaluator.evaluate_embeddings(&query_vectors, &corpus_vectors)?;
//!
//! assert_eq!(report.skipped_queries, 1); // q3 has no relevant document
//! assert_eq!(report.metric("accuracy@1"), Some(0.5));
//! assert_eq!(report.metric("mrr@10"), Some((1.0 + 1.0 / 2.0) / 2.0));
//! let ndcg = (1.0 + 1.0 / 3f64.log2()) / 2.0;
//! assert!((report.metric("ndcg@10").unwrap() - ndcg).abs() < 1e-12);
//! println!("{report}"); // a console table
//! # Ok::<(), embedtune_eval::EvalError>(())
//! ```
//!
//! Parts:
//! - [`MetricsConfig`]: accuracy@k, precision@k, recall@k, MRR@k, nDCG@k (binary or
//!   [graded](Relevance::Graded)) and MAP@k of one ranked list
//!   ([`MetricsConfig::query_metrics`]), with sentence-transformers' default cut-offs.
//! - [`IrEvaluator`]: built once from a BEIR split ([`IrSplit`]); evaluates a
//!   [`SentenceEncoder`](embedtune_encoder::SentenceEncoder) of any burn backend
//!   ([`IrEvaluator::evaluate`]), precomputed embeddings or precomputed rankings.
//! - [`Report`]: averaged metrics under flat keys (`ndcg@10`, `recall@10`, `mrr@10`,
//!   `map@100`, `accuracy@1`, …), per-query values, counts and timings; JSON and a console
//!   table. [`compare`] sets two reports side by side with deltas.

#![warn(missing_docs)]

mod error;
mod evaluator;
#[cfg(all(feature = "cpu-instances", debug_assertions, not(test)))]
#[doc(hidden)]
pub mod instances;
mod metrics;
mod report;

pub use embedtune_data::{Document, IrSplit};
pub use embedtune_index::{Embeddings, Hit, HnswParams, IndexConfig};
pub use error::{EvalError, Result};
pub use evaluator::{EvalConfig, IrEvaluator};
pub use metrics::{sort_ranking, Metrics, MetricsConfig, Relevance};
pub use report::{compare, Comparison, Delta, QueryReport, Report, Timings};
