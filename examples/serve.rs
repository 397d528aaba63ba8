//! Serve a sentence-transformers model directory (e.g. a fine-tuned `runs/finetune`) over
//! OpenAI's embeddings API, for RAG stacks such as LlamaIndex over Chroma.
//!
//! ```text
//! cargo run --release --example serve -- --model DIR [--host 127.0.0.1] [--port 8080]
//!     [--name NAME] [--api-key KEY] [--default-input-type query|passage]
//!     [--max-batch-tokens N] [--max-queue-tokens N] [--max-inputs N] [--device cpu|cuda]
//! ```
//!
//! `POST /v1/embeddings`, `GET /v1/models`, `GET /health`; Ctrl-C or SIGTERM stops accepting
//! connections and finishes the requests already accepted. The library is `embedtune_serve`.

embedtune::use_mimalloc!();

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, ValueEnum};
use embedtune::{main_on, Device, OnBackend};
use embedtune_encoder::SentenceEncoder;
use embedtune_serve::{shutdown_signal, InputType, ServeConfig, Server};

/// `--default-input-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Prompt {
    Query,
    Passage,
}

#[derive(Parser, Debug)]
#[command(about = "Serve an embedding model over OpenAI's /v1/embeddings API")]
struct Args {
    /// Model directory (sentence-transformers layout).
    #[arg(long)]
    model: PathBuf,
    /// Address to bind (loopback by default; use --api-key when binding others).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The model's name in requests and responses (default: the directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Require `Authorization: Bearer KEY` on /v1/* (also read from EMBEDTUNE_API_KEY).
    #[arg(long, env = "EMBEDTUNE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Prompt for requests that send no `input_type` (default: none, as sentence-transformers).
    #[arg(long, value_enum)]
    default_input_type: Option<Prompt>,
    /// Tokens merged into one batch at most.
    #[arg(long, default_value_t = ServeConfig::default().max_batch_tokens)]
    max_batch_tokens: usize,
    /// Tokens waiting at most; beyond, requests get 503 with Retry-After.
    #[arg(long, default_value_t = ServeConfig::default().max_queue_tokens)]
    max_queue_tokens: usize,
    /// Texts per request at most.
    #[arg(long, default_value_t = ServeConfig::default().max_inputs)]
    max_inputs: usize,
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
}

struct Job(Args);

impl OnBackend for Job {
    type Output = Result<(), String>;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let model = SentenceEncoder::<B::InnerBackend>::load(&args.model, &device)
            .map_err(|e| e.to_string())?;
        let name = args.name.clone().unwrap_or_else(|| {
            let dir = std::fs::canonicalize(&args.model).unwrap_or(args.model.clone());
            dir.file_name()
                .map_or("embedtune".into(), |n| n.to_string_lossy().into_owned())
        });
        let config = ServeConfig {
            model_name: name.clone(),
            max_batch_tokens: args.max_batch_tokens,
            max_queue_tokens: args.max_queue_tokens,
            max_inputs: args.max_inputs,
            api_key: args.api_key.clone(),
            default_input_type: args.default_input_type.map(|p| match p {
                Prompt::Query => InputType::Query,
                Prompt::Passage => InputType::Passage,
            }),
            ..ServeConfig::default()
        };
        let server = Server::new(model, config).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
                .await
                .map_err(|e| format!("binding {}:{}: {e}", args.host, args.port))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            if !local.ip().is_loopback() && args.api_key.is_none() {
                eprintln!("warning: serving on {local} without --api-key: anyone who can reach it can use it");
            }
            eprintln!("serving {name} on http://{local}/v1 ({} device); Ctrl-C stops", args.device);
            server
                .serve(listener, shutdown_signal())
                .await
                .map_err(|e| e.to_string())
        })?;
        eprintln!("stopped: every accepted request was answered");
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    main_on(args.device, Job(args))
}
