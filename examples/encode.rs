//! Encode texts with a sentence-transformers model directory.
//!
//! ```text
//! cargo run --release --example encode -- --model DIR --input texts.jsonl --output out.jsonl \
//!     [--prompt STR] [--batch-size N] [--device cpu|cuda] [--allow-empty]
//! ```
//!
//! Each input line is `{"text": "..."}`; each output line is `{"embedding": [f32, ...]}`, in
//! input order. A bad input line stops the run with its line number. Empty texts are refused
//! unless `--allow-empty` is given (sentence-transformers embeds them as `[CLS] [SEP]`).

embedtune::use_mimalloc!();

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use embedtune::{main_on, Device, OnBackend};
use embedtune_encoder::{EncodeOptions, SentenceEncoder};

#[derive(Parser, Debug)]
#[command(
    about = "Encode JSONL texts into embeddings with a sentence-transformers model directory"
)]
struct Args {
    /// Model directory (sentence-transformers layout).
    #[arg(long)]
    model: PathBuf,
    /// Input JSONL, one {"text": "..."} per line.
    #[arg(long)]
    input: PathBuf,
    /// Output JSONL, one {"embedding": [...]} per line.
    #[arg(long)]
    output: PathBuf,
    /// Prefix for every text (e.g. "query: ").
    #[arg(long)]
    prompt: Option<String>,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// cpu or cuda.
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
    /// Embed empty texts instead of refusing them.
    #[arg(long)]
    allow_empty: bool,
}

struct Job(Args);

impl OnBackend for Job {
    type Output = Result<(), String>;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let options = EncodeOptions {
            batch_size: args.batch_size,
            prompt: args.prompt.clone(),
            normalize: None,
        };
        let done = SentenceEncoder::<B::InnerBackend>::load(&args.model, &device)
            .and_then(|m| m.encode_jsonl(&args.input, &args.output, &options, args.allow_empty))
            .map_err(|e| e.to_string())?;
        eprintln!(
            "encoded {} texts ({} dims) in {:.2} s ({:.1} texts/s) on {} → {}",
            done.texts,
            done.dim,
            done.encode_seconds,
            done.texts as f64 / done.encode_seconds.max(1e-9),
            args.device,
            args.output.display()
        );
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    main_on(args.device, Job(args))
}
