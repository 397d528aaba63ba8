//! Retrieval evaluation of a sentence-transformers model directory on a BEIR dataset, measured
//! as sentence-transformers' `InformationRetrievalEvaluator` measures it.
//!
//! ```text
//! cargo run --release --example evaluate -- --model DIR --data BEIR_DIR [--split test] \
//!     [--index exact|hnsw] [--query-prompt STR] [--passage-prompt STR] [--batch-size N] \
//!     [--output metrics.json] [--device cpu|cuda] \
//!     [--graded] [--ef-search N] [--compare BEFORE.json] [--no-progress]
//! ```
//!
//! `BEIR_DIR` holds `corpus.jsonl`, `queries.jsonl` and `qrels/SPLIT.tsv`. Prompts default to
//! the model's own (`--query-prompt ""` turns one off). The metrics table goes to stdout, the
//! progress bar and the summary to stderr; `--output` writes the report JSON (metrics under
//! `metrics`, with `ndcg@10`, `recall@10`, `mrr@10`, `map@100`, `accuracy@1`, ...), and
//! `--compare` prints each metric's change from an earlier report.

embedtune::use_mimalloc!();

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, ValueEnum};
use embedtune::{main_on, Device, OnBackend};
use embedtune_encoder::SentenceEncoder;
use embedtune_eval::{
    compare, EvalConfig, HnswParams, IndexConfig, IrEvaluator, MetricsConfig, Relevance, Report,
};

/// Which index retrieves the top k.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum IndexKind {
    /// Exact cosine search (as sentence-transformers).
    Exact,
    /// Approximate search over an HNSW graph.
    Hnsw,
}

#[derive(Parser, Debug)]
#[command(
    about = "Evaluate retrieval (nDCG, MRR, MAP, recall, precision, accuracy @k) on a BEIR split"
)]
struct Args {
    /// Model directory (sentence-transformers layout).
    #[arg(long)]
    model: PathBuf,
    /// BEIR dataset directory (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv).
    #[arg(long)]
    data: PathBuf,
    /// The qrels split to evaluate.
    #[arg(long, default_value = "test")]
    split: String,
    /// exact or hnsw.
    #[arg(long, value_enum, default_value_t = IndexKind::Exact)]
    index: IndexKind,
    /// Prefix for queries (default: the model's query prompt; "" for none).
    #[arg(long)]
    query_prompt: Option<String>,
    /// Prefix for passages (default: the model's passage prompt; "" for none).
    #[arg(long)]
    passage_prompt: Option<String>,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Write the report JSON here.
    #[arg(long)]
    output: Option<PathBuf>,
    /// cpu or cuda.
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
    /// nDCG with the qrels grades as gains (BEIR / trec_eval) instead of binary relevance.
    #[arg(long)]
    graded: bool,
    /// HNSW candidate list size while searching (with --index hnsw).
    #[arg(long, default_value_t = HnswParams::default().ef_search)]
    ef_search: usize,
    /// An earlier report JSON: print each metric's change from it.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Draw no progress bar.
    #[arg(long)]
    no_progress: bool,
}

impl Args {
    fn config(&self) -> EvalConfig {
        let index = match self.index {
            IndexKind::Exact => IndexConfig::default(),
            IndexKind::Hnsw => IndexConfig::Hnsw(HnswParams {
                ef_search: self.ef_search,
                ..HnswParams::default()
            }),
        };
        let relevance = if self.graded {
            Relevance::Graded
        } else {
            Relevance::Binary
        };
        EvalConfig {
            metrics: MetricsConfig {
                relevance,
                ..MetricsConfig::default()
            },
            index,
            batch_size: self.batch_size,
            query_prompt: self.query_prompt.clone(),
            passage_prompt: self.passage_prompt.clone(),
            show_progress: !self.no_progress,
        }
    }
}

struct Job(Args);

impl OnBackend for Job {
    type Output = Result<(), String>;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let err = |e: embedtune_eval::EvalError| e.to_string();
        // read the earlier report first, so that a bad path fails before the long part
        let before = args
            .compare
            .as_ref()
            .map(Report::load)
            .transpose()
            .map_err(err)?;
        let evaluator =
            IrEvaluator::from_beir(&args.data, &args.split, args.config()).map_err(err)?;
        let model = SentenceEncoder::<B::InnerBackend>::load(&args.model, &device)
            .map_err(|e| e.to_string())?;
        eprintln!(
            "evaluating {} on {} ({}): {} queries, {} passages, {} device",
            args.model.display(),
            args.data.display(),
            args.split,
            evaluator.queries().len(),
            evaluator.corpus().len(),
            args.device
        );
        let report = evaluator.evaluate(&model).map_err(err)?;
        print!("{report}");
        if let Some(before) = &before {
            print!("\n{}", compare(before, &report));
        }
        if let Some(path) = &args.output {
            report.save(path).map_err(err)?;
            eprintln!("report → {}", path.display());
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    main_on(args.device, Job(args))
}
