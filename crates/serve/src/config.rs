//! The server's settings.

/// Which of the model's prompts a request's texts get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    /// The query prompt (e.g. E5's `query: `).
    Query,
    /// The passage prompt (e.g. E5's `passage: `); `document` is accepted as a name for it.
    Passage,
}

impl InputType {
    /// `query`, `passage` or `document` (case-sensitive, as the field is sent by clients).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "query" => Some(Self::Query),
            "passage" | "document" => Some(Self::Passage),
            _ => None,
        }
    }
}

/// Limits, batching and access of a [`crate::Server`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// The model's name in requests (`model`) and responses, and in `GET /v1/models`.
    pub model_name: String,
    /// Most texts in one request (more: 413).
    pub max_inputs: usize,
    /// Most characters (Unicode scalar values) in one text (more: 413). Longer texts would be
    /// truncated to the model's `max_seq_length` tokens anyway; this bounds the work and memory
    /// of tokenising them.
    pub max_input_chars: usize,
    /// Most bytes in a request body (more: 413).
    pub max_body_bytes: usize,
    /// Tokens merged into one batch at most: requests waiting in the queue join the running
    /// batch while it stays under this budget (a single larger request runs alone).
    pub max_batch_tokens: usize,
    /// Tokens waiting in the queue at most; a request that would exceed it gets 503 with
    /// `Retry-After`, so that memory stays bounded under any load. The default, 131,072 tokens,
    /// is some 20 s of work for all-MiniLM-L6-v2 on two CPU cores: past that a client learns at
    /// once that it should retry rather than wait minutes.
    pub max_queue_tokens: usize,
    /// Texts per forward pass inside a batch.
    pub batch_size: usize,
    /// Prompt for requests without `input_type`; `None`: no prompt (as
    /// sentence-transformers' `encode` without `prompt_name`).
    pub default_input_type: Option<InputType>,
    /// Bearer token that `/v1/*` requests must send (`Authorization: Bearer …`); `None`: no
    /// authentication.
    pub api_key: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            model_name: "embedtune".into(),
            max_inputs: 2048,
            max_input_chars: 100_000,
            max_body_bytes: 16 << 20,
            max_batch_tokens: 16_384,
            max_queue_tokens: 1 << 17,
            batch_size: 32,
            default_input_type: None,
            api_key: None,
        }
    }
}
