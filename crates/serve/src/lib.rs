//! An OpenAI-compatible embedding server for a sentence-transformers model directory, so that
//! RAG stacks that speak OpenAI's API (LlamaIndex, LangChain, Chroma's OpenAI embedding
//! function, the `openai` client) use a fine-tuned model directly.
//!
//! - `POST /v1/embeddings`: `input` (a string or an array of strings), `model`,
//!   `encoding_format` (`float` or `base64`), `dimensions` (Matryoshka truncation), and
//!   `input_type` (`query` / `passage`: the model's prompts); `usage` counts tokens.
//! - `GET /v1/models`, `GET /health`.
//! - Dynamic batching: one thread owns the model; requests waiting in the queue are merged
//!   into the running batch up to a token budget ([`ServeConfig::max_batch_tokens`]).
//! - Limits with OpenAI-shaped errors: request size and input counts (413), malformed requests
//!   (400), a queue bounded in tokens (503 with `Retry-After`), optional bearer-token auth
//!   (401). Graceful shutdown finishes accepted requests.
//!
//! ```
//! use burn_ndarray::NdArray;
//! use embedtune_encoder::{testing, SentenceEncoder, TransformerConfig};
//! use embedtune_serve::{ServeConfig, Server};
//!
//! # let tokenizer = testing::tiny_tokenizer(48).unwrap();
//! # let config = TransformerConfig::tiny_bert(tokenizer.vocab_size(), 32, 1, 4).unwrap();
//! // Any loaded model, e.g. `SentenceEncoder::load("runs/finetune", &device)`:
//! let model = SentenceEncoder::<NdArray<f32>>::random(config, tokenizer, &Default::default()).unwrap();
//! let server = Server::new(model, ServeConfig::default()).unwrap();
//! let runtime = tokio::runtime::Runtime::new().unwrap();
//! let body = br#"{"input": ["super guarantee", "clearing house"], "dimensions": 16}"#;
//! let response = runtime.block_on(server.embed(body)).unwrap();
//! assert_eq!(response["data"][1]["embedding"].as_array().unwrap().len(), 16);
//! assert!(response["usage"]["prompt_tokens"].as_u64().unwrap() >= 4);
//! // Bad requests are errors in OpenAI's shape, never panics.
//! let err = runtime.block_on(server.embed(br#"{"input": []}"#)).unwrap_err();
//! assert_eq!(err.status, 400);
//! assert_eq!(err.body()["error"]["type"], "invalid_request_error");
//! // To serve over HTTP: `server.serve(listener, embedtune_serve::shutdown_signal()).await`.
//! ```
#![warn(missing_docs)]

mod api;
mod batcher;
mod config;
#[cfg(all(feature = "cpu-instances", debug_assertions, not(test)))]
#[doc(hidden)]
pub mod instances;
mod server;

pub use api::{ApiError, EmbeddingRequest, EncodingFormat};
pub use batcher::Stats;
pub use config::{InputType, ServeConfig};
pub use server::{shutdown_signal, ServeError, Server};
