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

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use embedtune::{main_on, Device, OnBackend};
use embedtune_core::write_file_atomically;
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

fn read_texts(args: &Args) -> Result<Vec<String>, String> {
    let file =
        std::fs::File::open(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?;
    let mut texts = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let at = || format!("{}:{n}", args.input.display());
        let line = line.map_err(|e| format!("{}: {e}", at()))?;
        let line = line.trim_start_matches('\u{feff}');
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{}: invalid JSON: {e}", at()))?;
        let text = value
            .get("text")
            .ok_or_else(|| format!("{}: no \"text\" field", at()))?
            .as_str()
            .ok_or_else(|| format!("{}: \"text\" is not a string", at()))?;
        if text.trim().is_empty() && !args.allow_empty {
            return Err(format!(
                "{}: empty text (pass --allow-empty to embed it anyway)",
                at()
            ));
        }
        texts.push(text.to_string());
    }
    Ok(texts)
}

struct Job(Args);

impl OnBackend for Job {
    type Output = Result<(), String>;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let texts = read_texts(&args)?;
        let model = SentenceEncoder::<B::InnerBackend>::load(&args.model, &device)
            .map_err(|e| e.to_string())?;
        let options = EncodeOptions {
            batch_size: args.batch_size,
            prompt: args.prompt.clone(),
            normalize: None,
        };
        let start = Instant::now();
        let vectors = model.encode(&texts, &options).map_err(|e| e.to_string())?;
        let secs = start.elapsed().as_secs_f64();
        let mut out = BufWriter::new(Vec::new());
        for v in &vectors {
            serde_json::to_writer(&mut out, &serde_json::json!({ "embedding": v }))
                .map_err(|e| e.to_string())?;
            out.write_all(b"\n").map_err(|e| e.to_string())?;
        }
        let bytes = out.into_inner().map_err(|e| e.to_string())?;
        write_file_atomically(&args.output, &bytes).map_err(|e| e.to_string())?;
        eprintln!(
            "encoded {} texts ({} dims) in {secs:.2} s ({:.1} texts/s) on {} → {}",
            vectors.len(),
            model.dim(),
            vectors.len() as f64 / secs.max(1e-9),
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
