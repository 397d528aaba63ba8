//! The reusable fine-tuning loop of embedtune: train a [`SentenceEncoder`] on (query, positive,
//! hard negatives) examples with a contrastive loss, fully or with LoRA, with AdamW, a linear
//! warm-up/decay schedule, global-norm clipping, evaluation, atomic checkpoints that resume
//! exactly, a JSON-lines log, an SVG chart and hard-negative mining.
//!
//! The whole job — load E5, train with MultipleNegativesRankingLoss on (query, positive,
//! negative) triples, Recall@10 before and after, save a directory sentence-transformers loads —
//! is one call ([`Finetune`]; a runnable version on a tiny model is in its module's docs):
//!
//! ```no_run
//! use burn_autodiff::Autodiff;
//! use burn_ndarray::NdArray;
//! use embedtune_train::{EvalSet, Finetune, LossConfig, TrainConfig, TrainData};
//!
//! let settings = TrainConfig { epochs: 1, batch_size: 32, lr: 2e-5, loss: LossConfig::Mnrl { scale: 20.0 }, ..Default::default() };
//! let report = Finetune::new("models/e5-large-v2", TrainData::from_path("triples.jsonl", "train"), "runs/e5-super")
//!     .eval(EvalSet::new("data/super-beir", "test"))
//!     .settings(settings)
//!     .run::<Autodiff<NdArray<f32>>>(&Default::default())?;
//! let (before, after) = (report.before.unwrap(), report.after.unwrap());
//! println!("Recall@10 {:.3} → {:.3}", before["recall@10"], after["recall@10"]);
//! // runs/e5-super now loads with SentenceTransformer("runs/e5-super") in Python.
//! # Ok::<(), embedtune_train::TrainError>(())
//! ```
//!
//! The loop alone, on a model already loaded:
//!
//! ```
//! use burn_autodiff::Autodiff;
//! use burn_ndarray::NdArray;
//! use embedtune_data::Example;
//! use embedtune_encoder::{testing, SentenceEncoder, TransformerConfig};
//! use embedtune_train::{TrainConfig, Trainer};
//!
//! type B = Autodiff<NdArray<f32>>;
//! let tokenizer = testing::tiny_tokenizer(32).unwrap();
//! let config = TransformerConfig::tiny_bert(tokenizer.vocab_size(), 32, 1, 4).unwrap();
//! let model = SentenceEncoder::<B>::random(config, tokenizer, &Default::default()).unwrap();
//! let examples: Vec<Example> = (0..8)
//!     .map(|i| Example::pair(format!("question {i}"), format!("answer number {i}")))
//!     .collect();
//! let settings = TrainConfig { batch_size: 4, lr: 1e-3, progress_bar: false, ..Default::default() };
//! let out_dir = tempfile::tempdir().unwrap();
//! let outcome = Trainer::<B>::new(settings, out_dir.path()).unwrap()
//!     .train(model, &examples, None)
//!     .unwrap();
//! assert_eq!(outcome.steps, 2);
//! assert!(outcome.history.iter().all(|r| r.loss.is_finite()));
//! ```
//!
//! [`SentenceEncoder`]: embedtune_encoder::SentenceEncoder

#![warn(missing_docs)]

pub mod checkpoint;
#[cfg(feature = "cli")]
pub mod cli;
mod config;
mod error;
#[cfg(all(feature = "cpu-instances", debug_assertions, not(test)))]
#[doc(hidden)]
pub mod instances;
mod ir;
mod job;
mod log;
pub mod mining;
mod optim;
pub mod plot;
mod recipe;
mod topics;
mod trainer;

pub use config::{GistMargin, LossConfig, TrainConfig};
pub use error::{CheckpointFault, Result, SettingChange, TrainError};
pub use ir::IrEvaluation;
pub use job::{EvalSet, Finetune, Remined, Report, TrainData};
pub use log::{peak_memory_mib, EvalRecord, Progress, RunLog, StepRecord};
pub use optim::{
    clip_grad_norm, grad_norm, scale_grads, AdamW, AdamWConfig, LinearSchedule, NamedTensors,
};
pub use recipe::{
    Recipe, RecipeSettings, QUALITY_EPOCHS, QUALITY_LR, QUALITY_REMINE_EVERY,
    QUALITY_TOPIC_CLUSTERS,
};
pub use topics::{anchor_topics, kmeans, KMEANS_MAX_ITER};
pub use trainer::{check_output_dir, Best, Evaluate, Remine, StepStats, TrainOutcome, Trainer};
