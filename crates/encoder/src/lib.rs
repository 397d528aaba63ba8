//! BERT-family sentence encoders (E5-v2, BGE-en-v1.5, all-MiniLM) for [burn], loaded from and
//! saved to sentence-transformers model directories, with LoRA adapters.
//!
//! ```no_run
//! use burn_ndarray::NdArray;
//! use embedtune_encoder::{EncodeOptions, SentenceEncoder};
//!
//! # fn main() -> Result<(), embedtune_encoder::EncoderError> {
//! let device = Default::default();
//! let model = SentenceEncoder::<NdArray>::load("models/all-MiniLM-L6-v2", &device)?;
//! let vectors = model.encode(&["What is the SuperStream deadline?"], &EncodeOptions::default())?;
//! assert_eq!(vectors[0].len(), model.dim());
//! # Ok(())
//! # }
//! ```
//!
//! A model without files, runnable anywhere:
//!
//! ```
//! use burn_ndarray::NdArray;
//! use embedtune_encoder::{testing, EncodeOptions, SentenceEncoder, TransformerConfig};
//!
//! let device = Default::default();
//! let tokenizer = testing::tiny_tokenizer(64).unwrap();
//! let config = TransformerConfig::tiny_bert(tokenizer.vocab_size(), 32, 2, 4).unwrap();
//! let model = SentenceEncoder::<NdArray>::random(config, tokenizer, &device).unwrap();
//! let v = model.encode(&["alpha beta", "gamma"], &EncodeOptions::default()).unwrap();
//! let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
//! assert!((norm - 1.0).abs() < 1e-5);
//! ```
//!
//! Parts:
//! - [`TransformerConfig`] mirrors `config.json`; [`Bert`] is the transformer.
//! - [`SentenceEncoder`] adds pooling, normalisation, tokenizer and prompts; it encodes texts
//!   in batches ([`SentenceEncoder::encode`]), gives differentiable embeddings for training
//!   ([`SentenceEncoder::forward`]) and saves ([`SentenceEncoder::save`]).
//! - [`LoraConfig`] / [`SentenceEncoder::with_lora`] attach LoRA adapters; they merge for
//!   export and save / load in PEFT's format.
//!
//! On burn's CPU backend (`NdArray<f32>`, and `Autodiff<NdArray<f32>>` for training) the
//! linear layers, GELU, dropout, residual + LayerNorm and the attention softmax run as fused
//! kernels with their own backward passes (feature `cpu-kernels`, on by default); every other
//! backend computes the same functions from burn's tensor ops.

#![warn(missing_docs)]

mod bert;
mod config;
mod dense;
mod error;
mod fused;
#[cfg(all(feature = "cpu-instances", debug_assertions, not(test)))]
#[doc(hidden)]
pub mod instances;
mod jsonl;
mod lora;
mod model;
pub mod names;
mod pooling;
mod st;
pub mod testing;
mod tokenize;
mod weights;

pub use bert::{Attention, Bert, EmbeddingLayer, Layer};
pub use config::{Activation, Architecture, TransformerConfig};
pub use dense::Dense;
pub use embedtune_core::Embeddings;
pub use error::{EncoderError, InputFault, LoraError, Result};
pub use jsonl::{read_texts, EncodeFileReport};
pub use lora::{LoraAdapter, LoraConfig};
pub use model::{EncodeOptions, SentenceEncoder};
pub use pooling::{l2_normalize, Pooling, PoolingMode};
pub use st::{Prompts, StMeta};
pub use tokenize::{TextTokenizer, TokenBatch};
#[doc(hidden)]
pub use weights::{read_safetensors, NamedTensor};
