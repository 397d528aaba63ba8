//! The HTTP server: routes, authentication, and the embeddings endpoint.

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use burn::tensor::backend::Backend;
use embedtune_encoder::{EncoderError, SentenceEncoder, TextTokenizer};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::api::{self, ApiError, EmbeddingRequest};
use crate::batcher::{Batcher, Job, Refused, Stats};
use crate::config::{InputType, ServeConfig};

/// What can stop a server from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The model's tokenizer failed on its own prompts.
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    /// A setting is out of range.
    #[error("invalid setting {name}: {reason}")]
    Config {
        /// The setting.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Binding, accepting or the model thread failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A prompt and its length in tokens (as pooling counts it).
#[derive(Debug, Clone)]
struct Prompt {
    text: Option<String>,
    len: usize,
}

impl Prompt {
    fn new(tokenizer: &TextTokenizer, text: Option<&String>) -> Result<Self, EncoderError> {
        let text = text.filter(|p| !p.is_empty()).cloned();
        let len = match &text {
            Some(p) => tokenizer.prompt_len(p)?,
            None => 0,
        };
        Ok(Self { text, len })
    }
}

/// What the handlers share.
struct Shared {
    config: ServeConfig,
    tokenizer: TextTokenizer,
    query: Prompt,
    passage: Prompt,
    none: Prompt,
    dim: usize,
    normalize: bool,
    batcher: Batcher,
    /// Bounds how many requests are tokenised at once (one per core), so that a flood of
    /// requests does not become a flood of tokenising threads and their memory.
    tokenizing: tokio::sync::Semaphore,
    stats: Arc<Stats>,
}

/// An OpenAI-compatible embedding server for one model: `POST /v1/embeddings`,
/// `GET /v1/models`, `GET /health`. A thread owns the model and runs batches; requests are
/// tokenised on tokio's blocking pool and queued (bounded in tokens) for it.
pub struct Server {
    shared: Arc<Shared>,
    worker: JoinHandle<()>,
}

impl Server {
    /// Starts the model thread for `model` with `config`.
    pub fn new<B: Backend>(
        model: SentenceEncoder<B>,
        config: ServeConfig,
    ) -> Result<Self, ServeError> {
        for (name, value) in [
            ("max_inputs", config.max_inputs),
            ("max_input_chars", config.max_input_chars),
            ("max_body_bytes", config.max_body_bytes),
            ("max_batch_tokens", config.max_batch_tokens),
            ("max_queue_tokens", config.max_queue_tokens),
            ("batch_size", config.batch_size),
        ] {
            if value == 0 {
                return Err(ServeError::Config {
                    name,
                    reason: "must be positive".into(),
                });
            }
        }
        let tokenizer = model.tokenizer().clone();
        let prompts = model.prompts().clone();
        let query = Prompt::new(&tokenizer, prompts.query.as_ref())?;
        let passage = Prompt::new(&tokenizer, prompts.passage.as_ref())?;
        let (dim, normalize) = (model.dim(), model.normalize());
        let stats = Arc::new(Stats::default());
        let (batcher, worker) = Batcher::start(
            model,
            config.batch_size,
            config.max_batch_tokens,
            config.max_queue_tokens,
            Arc::clone(&stats),
        )?;
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                tokenizer,
                query,
                passage,
                none: Prompt { text: None, len: 0 },
                dim,
                normalize,
                batcher,
                tokenizing: tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(1, |n| n.get()),
                ),
                stats,
            }),
            worker,
        })
    }

    /// The worker's counters (batches run, requests merged, requests cancelled).
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.shared.stats)
    }

    /// `POST /v1/embeddings` without HTTP: the response body for request body `body`.
    pub async fn embed(&self, body: &[u8]) -> Result<Value, ApiError> {
        embed(&self.shared, body).await
    }

    /// The routes, for serving with axum or nesting in another router.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/models", get(models))
            .route("/health", get(health))
            .with_state(Arc::clone(&self.shared))
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting connections,
    /// finishes the requests already accepted, and stops the model thread.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let router = self.router();
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        let Self { shared, worker } = self;
        drop(shared); // the last sender: the worker ends after the queue drains
        tokio::task::spawn_blocking(move || worker.join())
            .await
            .map_err(std::io::Error::other)?
            .map_err(|_| std::io::Error::other("the model thread panicked"))?;
        Ok(())
    }
}

/// Completes on Ctrl-C or (Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(e.body())).into_response();
    if let Some(seconds) = e.retry_after {
        if let Ok(value) = seconds.to_string().parse() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

/// `Authorization: Bearer <key>` when the server has a key.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &shared.config.api_key else {
        return Ok(());
    };
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if sent == Some(key.as_str()) {
        Ok(())
    } else {
        Err(ApiError {
            status: 401,
            kind: "authentication_error",
            message: "missing or wrong API key (Authorization: Bearer …)".into(),
            param: None,
            code: Some("invalid_api_key"),
            retry_after: None,
        })
    }
}

async fn embeddings(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    if let Err(e) = authorize(&shared, &headers) {
        return error_response(&e);
    }
    let bytes = match axum::body::to_bytes(body, shared.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(&ApiError {
                status: 413,
                code: Some("body_too_large"),
                ..ApiError::invalid(
                    "body",
                    format!(
                        "the request body is larger than {} bytes (or was cut off)",
                        shared.config.max_body_bytes
                    ),
                )
            })
        }
    };
    match embed(&shared, &bytes).await {
        Ok(value) => Json(value).into_response(),
        Err(e) => error_response(&e),
    }
}

fn server_error(message: String) -> ApiError {
    ApiError {
        status: 500,
        kind: "server_error",
        message,
        param: None,
        code: None,
        retry_after: None,
    }
}

fn overloaded(shared: &Shared) -> ApiError {
    ApiError {
        status: 503,
        kind: "server_error",
        message: format!(
            "the server is overloaded ({} tokens queued); retry shortly",
            shared.batcher.queued_tokens()
        ),
        param: None,
        code: Some("overloaded"),
        retry_after: Some(1),
    }
}

async fn embed(shared: &Arc<Shared>, body: &[u8]) -> Result<Value, ApiError> {
    let request = EmbeddingRequest::parse(body, &shared.config, shared.dim)?;
    let prompt = match request.input_type.or(shared.config.default_input_type) {
        Some(InputType::Query) => shared.query.clone(),
        Some(InputType::Passage) => shared.passage.clone(),
        None => shared.none.clone(),
    };
    // refused before any work when the queue is full already
    if shared.batcher.is_full() {
        return Err(overloaded(shared));
    }
    let permit = shared
        .tokenizing
        .acquire()
        .await
        .map_err(|e| server_error(e.to_string()))?;
    let tokenizer = shared.tokenizer.clone();
    let texts = request.input;
    let prompt_text = prompt.text.clone();
    let ids = tokio::task::spawn_blocking(move || {
        let inputs: Vec<String> = match &prompt_text {
            Some(p) => texts.iter().map(|t| format!("{p}{t}")).collect(),
            None => texts,
        };
        tokenizer.encode_ids(&inputs.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .map_err(|e| server_error(format!("tokenising: {e}")))?
    .map_err(|e| server_error(e.to_string()))?;
    drop(permit);
    let tokens: usize = ids.iter().map(Vec::len).sum();
    let (reply, answer) = oneshot::channel();
    let job = Job {
        ids,
        prompt_len: prompt.len,
        tokens,
        reply,
    };
    shared
        .batcher
        .submit(job)
        .map_err(|refused| match refused {
            Refused::Full => overloaded(shared),
            Refused::Stopped => server_error("the model thread has stopped".into()),
        })?;
    let vectors = answer
        .await
        .map_err(|_| server_error("the model thread dropped the request".into()))?
        .map_err(server_error)?;
    let vectors = match request.dimensions {
        Some(d) if d < shared.dim => api::truncate(&vectors, d, shared.normalize),
        _ => vectors,
    };
    Ok(api::response(
        &vectors,
        request.encoding_format,
        &shared.config.model_name,
        tokens,
    ))
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&shared, &headers) {
        return error_response(&e);
    }
    Json(serde_json::json!({
        "object": "list",
        "data": [{
            "id": shared.config.model_name,
            "object": "model",
            "created": 0,
            "owned_by": "embedtune",
        }],
    }))
    .into_response()
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    Json(serde_json::json!({
        "status": "ok",
        "model": shared.config.model_name,
        "dimensions": shared.dim,
        "queued_tokens": shared.batcher.queued_tokens(),
    }))
    .into_response()
}
