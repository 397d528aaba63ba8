//! The fine-tuning job's command-line flags (feature `cli`), for programs that offer the job as
//! a command (`examples/finetune_e5.rs` is one): flatten [`FinetuneArgs`] into a `clap` parser
//! and call [`FinetuneArgs::job`]. Defaults come from [`TrainConfig`] and [`MiningConfig`], so
//! a flag left out trains exactly as the library's default does.
//!
//! ```
//! use clap::Parser;
//! use embedtune_train::{cli::FinetuneArgs, LossConfig, Recipe};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     job: FinetuneArgs,
//! }
//! let cli = Cli::parse_from(["finetune", "--data", "train.jsonl", "--lora-r", "8", "--loss", "cached-mnrl"]);
//! let job = cli.job.job("models/e5-large-v2".into(), "cpu").unwrap();
//! assert_eq!(job.settings.lr, 2e-4); // LoRA's default rate
//! assert_eq!(job.settings.lora.as_ref().unwrap().alpha, 16.0);
//! assert!(matches!(job.settings.loss, LossConfig::CachedMnrl { mini_batch: 32, .. }));
//!
//! // A named recipe, one of its settings overridden.
//! let cli = Cli::parse_from(["finetune", "--data", "train.jsonl", "--recipe", "quality", "--epochs", "4"]);
//! let job = cli.job.job("models/e5-large-v2".into(), "cpu").unwrap();
//! let quality = Recipe::Quality.settings();
//! assert_eq!(job.settings.epochs, 4);
//! assert_eq!(job.settings.lr, quality.lr);
//! assert_eq!(job.settings.loss, quality.loss);
//! assert_eq!(job.mining.unwrap().range_min, quality.mining.unwrap().range_min);
//! assert_eq!(job.remine_every, quality.remine_every);
//! assert_eq!(job.settings.topic_clusters, quality.topic_clusters);
//!
//! // The quality recipe without re-mining, and without topic-aware batches.
//! let cli = Cli::parse_from(["finetune", "--data", "train.jsonl", "--recipe", "quality", "--remine-every", "0"]);
//! assert_eq!(cli.job.job("models/e5-large-v2".into(), "cpu").unwrap().remine_every, None);
//! let cli = Cli::parse_from(["finetune", "--data", "train.jsonl", "--recipe", "quality", "--topic-clusters", "0"]);
//! assert_eq!(cli.job.job("models/e5-large-v2".into(), "cpu").unwrap().settings.topic_clusters, None);
//! ```

use std::path::PathBuf;

use clap::ValueEnum;
use embedtune_encoder::{LoraConfig, Prompts};

use crate::mining::{MiningConfig, MiningOutput, Sampling};
use crate::{
    AdamWConfig, EvalSet, Finetune, GistMargin, LossConfig, Recipe, RecipeSettings, Result,
    TrainConfig, TrainData, TrainError,
};

/// `--loss`: the names are [`LossConfig`]'s serde tags (as in `report.json`'s settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossName {
    /// MultipleNegativesRankingLoss (in-batch and hard negatives).
    Mnrl,
    /// Its GradCache form: large batches in `--mini-batch` pieces.
    CachedMnrl,
    /// Query → passage and passage → query.
    SymmetricMnrl,
    /// Triplet loss (Euclidean, margin 5).
    Triplet,
    /// MNRL on each of `--matryoshka-dims`' truncations.
    #[value(alias = "matryoshka")]
    MatryoshkaMnrl,
    /// GISTEmbed: MNRL whose false negatives a guide model (the zero-shot model) leaves out.
    Gist,
    /// Its GradCache form: large batches in `--mini-batch` pieces.
    CachedGist,
}

/// `--prompts`: a preset, or the model directory's own (`auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PromptPreset {
    /// The model directory's prompts (`config_sentence_transformers.json`).
    Auto,
    /// `query: ` / `passage: `.
    E5,
    /// BGE's query instruction, no passage prompt.
    Bge,
    /// No prompts.
    None,
}

fn name(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// The flags of a fine-tuning run. Everything but the model (whose default the caller decides)
/// and the device (a backend choice, made by the caller).
#[derive(clap::Args, Debug, Clone)]
pub struct FinetuneArgs {
    /// Training data: a BEIR directory (train split → pairs, or its grouped `train.jsonl` with
    /// hard negatives), or a JSONL / TSV / CSV file.
    #[arg(long)]
    pub data: PathBuf,
    /// BEIR directory to evaluate on when --data is a file (default: --data when it is one).
    #[arg(long)]
    pub eval_data: Option<PathBuf>,
    /// Split of --data used for training when it is a BEIR directory.
    #[arg(long, default_value = "train")]
    pub train_split: String,
    /// Split evaluated before and after.
    #[arg(long, default_value = "test")]
    pub eval_split: String,
    /// Output directory: the fine-tuned model (sentence-transformers layout), report.json,
    /// train_log.jsonl, train_plot.svg, checkpoints/.
    #[arg(long, default_value = "runs/finetune")]
    pub output: PathBuf,
    /// A named recipe: st (sentence-transformers' default: MNRL, one epoch, no mining) or
    /// quality (mined hard negatives chosen on held-out queries; see `Recipe::Quality`). The
    /// flags below override its settings one by one.
    #[arg(long, value_enum, default_value_t = RecipeName::St)]
    pub recipe: RecipeName,
    /// Passes over the training data (default: the recipe's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop after this many optimiser steps.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Examples per optimiser step.
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    #[arg(long, default_value_t = TrainConfig::default().grad_accum)]
    pub grad_accum: usize,
    /// Peak learning rate (default: the recipe's; 2e-5, or 2e-4 with LoRA, for `st`).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Share of the steps spent warming the rate up (then linear decay).
    #[arg(long, default_value_t = TrainConfig::default().warmup_ratio)]
    pub warmup_ratio: f64,
    /// AdamW's decoupled weight decay.
    #[arg(long, default_value_t = AdamWConfig::default().weight_decay)]
    pub weight_decay: f64,
    /// Seed of the sampler, dropout and mining.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
    /// Truncation length in tokens (default: the model's).
    #[arg(long)]
    pub max_seq_len: Option<usize>,
    /// Topic-aware batches: cluster the training queries into this many topics with the
    /// starting model and fill each batch from one topic; 0 turns them off (default: the
    /// recipe's: off for `st`, 8 for `quality`).
    #[arg(long)]
    pub topic_clusters: Option<usize>,
    /// The loss (default: the recipe's).
    #[arg(long, value_enum)]
    pub loss: Option<LossName>,
    /// Mini-batch of cached-mnrl.
    #[arg(long, default_value_t = 32)]
    pub mini_batch: usize,
    /// Temperature of the GIST losses (default: the recipe's, else 0.01).
    #[arg(long)]
    pub gist_temperature: Option<f64>,
    /// Margin of the GIST losses: candidates the guide scores above the positive less this are
    /// left out (default 0).
    #[arg(long)]
    pub gist_margin: Option<f64>,
    /// How --gist-margin applies (default absolute).
    #[arg(long, value_enum)]
    pub gist_margin_strategy: Option<MarginName>,
    /// Dimensions of the matryoshka loss.
    #[arg(long, value_delimiter = ',', default_value = "384,256,128,64")]
    pub matryoshka_dims: Vec<usize>,
    /// Hard negatives per example (default: as many as every example has).
    #[arg(long)]
    pub num_negatives: Option<usize>,
    /// Train LoRA adapters of this rank instead of all weights.
    #[arg(long)]
    pub lora_r: Option<usize>,
    /// LoRA's alpha (default 2 × rank).
    #[arg(long)]
    pub lora_alpha: Option<f64>,
    /// Dropout on the adapters' input.
    #[arg(long, default_value_t = 0.1)]
    pub lora_dropout: f64,
    /// Layers that get adapters (matched as PEFT's `target_modules`).
    #[arg(long, value_delimiter = ',', default_value = "query,key,value,dense")]
    pub lora_targets: Vec<String>,
    /// Mine this many hard negatives per pair with the zero-shot model before training
    /// (default: the recipe's mining, if any).
    #[arg(long)]
    pub mine_hard_negatives: Option<usize>,
    /// Candidates kept after the filters when mining (default 50).
    #[arg(long)]
    pub mine_range_max: Option<usize>,
    /// Skip this many of the best candidates left after the filters when mining (default 0).
    #[arg(long)]
    pub mine_range_min: Option<usize>,
    /// Drop candidates scoring above (positive score − margin) when mining.
    #[arg(long, alias = "mine-margin")]
    pub mine_absolute_margin: Option<f64>,
    /// Drop candidates scoring above positive score × (1 − margin) when mining.
    #[arg(long)]
    pub mine_relative_margin: Option<f64>,
    /// Drop candidates scoring above this when mining.
    #[arg(long)]
    pub mine_max_score: Option<f64>,
    /// Drop candidates scoring below this when mining.
    #[arg(long)]
    pub mine_min_score: Option<f64>,
    /// The best candidates (top, the default) or a seeded sample of them (random).
    #[arg(long, value_enum)]
    pub mine_sampling: Option<SamplingName>,
    /// One example per pair with all its negatives (n-tuple, the default) or one per negative
    /// (triplet).
    #[arg(long, value_enum)]
    pub mine_output: Option<OutputName>,
    /// Mine again with the model being trained before every N-th epoch (with the --mine-*
    /// settings); 0 turns it off (the quality recipe re-mines before every epoch after the
    /// first).
    #[arg(long)]
    pub remine_every: Option<u64>,
    /// Guide model of the GIST losses (default: the starting model, frozen).
    #[arg(long)]
    pub guide: Option<PathBuf>,
    /// Keep pairs that got fewer negatives than asked for (by default they are left out, as
    /// sentence-transformers does; kept, they make the trainer use fewer negatives for all).
    #[arg(long)]
    pub mine_keep_short: bool,
    /// Query / passage prompts: a preset, or auto (the model directory's own).
    #[arg(long, value_enum, default_value_t = PromptPreset::Auto)]
    pub prompts: PromptPreset,
    /// Evaluate every N steps (always at the end).
    #[arg(long)]
    pub eval_steps: Option<u64>,
    /// Checkpoint every N steps.
    #[arg(long)]
    pub save_steps: Option<u64>,
    /// Continue the run saved in this checkpoint directory.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Start a fresh run in an output directory that already holds one, replacing its
    /// checkpoints, log, model and report (without it such a directory is refused).
    #[arg(long)]
    pub overwrite: bool,
    /// Reuse the zero-shot metrics in this report (the evaluate example's `--output` for the
    /// same model, data, split and prompts) instead of evaluating before training.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Texts per forward pass when evaluating and mining.
    #[arg(long, default_value_t = 32)]
    pub eval_batch_size: usize,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// `--recipe`: the names are [`Recipe`]'s serde tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecipeName {
    /// sentence-transformers' default recipe.
    St,
    /// Mined hard negatives, chosen on held-out train queries.
    Quality,
}

/// `--gist-margin-strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MarginName {
    /// Left out above `positive − margin`.
    Absolute,
    /// Left out above `positive − |positive| · margin`.
    Relative,
}

/// `--mine-sampling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SamplingName {
    /// The best candidates.
    Top,
    /// A seeded sample of the candidates.
    Random,
}

/// `--mine-output`: the names are [`MiningOutput`]'s serde tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputName {
    /// One example per pair with all its negatives.
    NTuple,
    /// One example per negative.
    Triplet,
}

impl FinetuneArgs {
    /// The recipe's settings.
    fn recipe(&self) -> RecipeSettings {
        match self.recipe {
            RecipeName::St => Recipe::St,
            RecipeName::Quality => Recipe::Quality,
        }
        .settings()
    }

    /// The loss: the recipe's, or the one the flags name, with the GIST flags applied.
    fn loss(&self, recipe: &RecipeSettings) -> Result<LossConfig> {
        let mut loss = match self.loss {
            Some(l) => LossConfig::from_name(&name(l), self.mini_batch, &self.matryoshka_dims)?,
            None => recipe.loss.clone(),
        };
        if let LossConfig::Gist {
            temperature,
            margin,
            margin_strategy,
        }
        | LossConfig::CachedGist {
            temperature,
            margin,
            margin_strategy,
            ..
        } = &mut loss
        {
            *temperature = self.gist_temperature.unwrap_or(*temperature);
            *margin = self.gist_margin.unwrap_or(*margin);
            if let Some(strategy) = self.gist_margin_strategy {
                *margin_strategy = match strategy {
                    MarginName::Absolute => GistMargin::Absolute,
                    MarginName::Relative => GistMargin::Relative,
                };
            }
        }
        Ok(loss)
    }

    /// The mining settings: the recipe's, or `--mine-hard-negatives`', with every given
    /// `--mine-*` flag applied.
    fn mining(&self, recipe: &RecipeSettings) -> Option<MiningConfig> {
        let mut cfg = match (self.mine_hard_negatives, recipe.mining.clone()) {
            (Some(n), base) => MiningConfig {
                num_negatives: n,
                ..base.unwrap_or_default()
            },
            (None, Some(base)) => base,
            (None, None) => return None,
        };
        cfg.range_min = self.mine_range_min.unwrap_or(cfg.range_min);
        cfg.range_max = self.mine_range_max.unwrap_or(cfg.range_max);
        cfg.absolute_margin = self.mine_absolute_margin.or(cfg.absolute_margin);
        cfg.relative_margin = self.mine_relative_margin.or(cfg.relative_margin);
        cfg.max_score = self.mine_max_score.or(cfg.max_score);
        cfg.min_score = self.mine_min_score.or(cfg.min_score);
        if let Some(s) = self.mine_sampling {
            cfg.sampling = match s {
                SamplingName::Top => Sampling::Top,
                SamplingName::Random => Sampling::Random,
            };
        }
        if let Some(o) = self.mine_output {
            cfg.output = match o {
                OutputName::NTuple => MiningOutput::NTuple,
                OutputName::Triplet => MiningOutput::Triplet,
            };
        }
        cfg.seed = self.seed;
        cfg.batch_size = self.eval_batch_size;
        cfg.drop_short = !self.mine_keep_short;
        Some(cfg)
    }

    /// The job these flags describe, training the model in `model` on the device named
    /// `device_name` (recorded in the report). Without evaluation data (a file as `--data` and
    /// no `--eval-data`) the job trains without before / after metrics; `--baseline` then is an
    /// error.
    pub fn job(&self, model: PathBuf, device_name: &str) -> Result<Finetune> {
        let eval_dir = self
            .eval_data
            .clone()
            .or_else(|| self.data.is_dir().then(|| self.data.clone()));
        let lora = self.lora_r.map(|r| LoraConfig {
            r,
            alpha: self.lora_alpha.unwrap_or(2.0 * r as f64),
            dropout: self.lora_dropout,
            target_modules: self.lora_targets.clone(),
        });
        let recipe = self.recipe();
        let settings = TrainConfig {
            epochs: self.epochs.unwrap_or(recipe.epochs),
            max_steps: self.max_steps,
            batch_size: self.batch_size,
            grad_accum: self.grad_accum,
            lr: self.lr.unwrap_or(recipe.lr_for(lora.is_some())),
            warmup_ratio: self.warmup_ratio,
            adamw: AdamWConfig {
                weight_decay: self.weight_decay,
                ..Default::default()
            },
            seed: self.seed,
            loss: self.loss(&recipe)?,
            num_negatives: self.num_negatives,
            lora,
            max_seq_len: self.max_seq_len,
            topic_clusters: self
                .topic_clusters
                .or(recipe.topic_clusters)
                .filter(|&k| k > 0),
            eval_steps: self.eval_steps,
            save_steps: self.save_steps,
            progress_bar: !self.quiet,
            ..Default::default()
        };
        let mut job = Finetune::new(
            model,
            TrainData::from_path(&self.data, &self.train_split),
            &self.output,
        )
        .settings(settings)
        .overwrite(self.overwrite);
        job.device_name = device_name.to_string();
        job.prompts = Prompts::preset(&name(self.prompts));
        match (eval_dir, &self.baseline) {
            (Some(dir), baseline) => {
                let mut set = EvalSet::new(dir, &self.eval_split);
                set.batch_size = self.eval_batch_size;
                set.baseline = baseline.clone();
                job.eval = Some(set);
            }
            (None, Some(_)) => {
                return Err(TrainError::Config {
                    name: "baseline",
                    reason: "a baseline report needs evaluation data (--eval-data BEIR_DIR)".into(),
                })
            }
            (None, None) => tracing::warn!(
                "no evaluation data (pass --eval-data BEIR_DIR): training without before/after metrics"
            ),
        }
        job.mining = self.mining(&recipe);
        job.remine_every = self.remine_every.or(recipe.remine_every).filter(|&n| n > 0);
        job.guide = self.guide.clone();
        if let Some(dir) = &self.resume {
            job = job.resume(dir);
        }
        Ok(job)
    }
}
