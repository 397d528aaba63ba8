//! The wire format: OpenAI's embeddings request and response, and its error body.

use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use crate::config::{InputType, ServeConfig};

/// An error as OpenAI's API returns it: an HTTP status and
/// `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {kind}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// OpenAI's error type (`invalid_request_error`, `authentication_error`, `server_error`, …).
    pub kind: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// The request field concerned, if one is.
    pub param: Option<&'static str>,
    /// A machine-readable code (`model_not_found`, `overloaded`, …).
    pub code: Option<&'static str>,
    /// Seconds a client should wait before retrying (sent as `Retry-After`).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// A 400 `invalid_request_error` about `param`.
    pub fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            kind: "invalid_request_error",
            message: message.into(),
            param: Some(param),
            code: None,
            retry_after: None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

/// How embeddings are written in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodingFormat {
    /// JSON arrays of numbers.
    Float,
    /// Base64 of the little-endian `f32` bytes (what OpenAI's Python client asks for by
    /// default, and decodes itself).
    Base64,
}

/// A checked `POST /v1/embeddings` request.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingRequest {
    /// The texts, in order.
    pub input: Vec<String>,
    /// How to write the embeddings.
    pub encoding_format: EncodingFormat,
    /// Matryoshka truncation: keep the first `dimensions` values (re-normalised when the model
    /// normalises).
    pub dimensions: Option<usize>,
    /// Query or passage prompt; `None`: the server's default.
    pub input_type: Option<InputType>,
}

impl EmbeddingRequest {
    /// Parses and checks a request body against the server's limits and model: `input` a
    /// non-empty string or a non-empty array of non-empty strings (token arrays are refused),
    /// `model` absent or the served model's name, `encoding_format` `float` or `base64`,
    /// `dimensions` 1 to the model's dimension, `input_type` `query`, `passage` or `document`.
    pub fn parse(body: &[u8], config: &ServeConfig, dim: usize) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid("body", format!("invalid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(ApiError::invalid("body", "the body must be a JSON object"));
        };
        let input = match map.get("input") {
            None => return Err(ApiError::invalid("input", "missing field 'input'")),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    return Err(ApiError::invalid("input", "'input' is an empty list"));
                }
                if items.len() > config.max_inputs {
                    return Err(ApiError {
                        status: 413,
                        code: Some("too_many_inputs"),
                        ..ApiError::invalid(
                            "input",
                            format!(
                                "{} inputs in one request; at most {} are accepted",
                                items.len(),
                                config.max_inputs
                            ),
                        )
                    });
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::String(s) => Ok(s.clone()),
                        Value::Number(_) | Value::Array(_) => Err(ApiError::invalid(
                            "input",
                            format!("input[{i}]: token arrays are not supported; send text"),
                        )),
                        other => Err(ApiError::invalid(
                            "input",
                            format!("input[{i}] is {}, not a string", kind(other)),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            Some(other) => {
                return Err(ApiError::invalid(
                    "input",
                    format!(
                        "'input' is {}: send a string or an array of strings",
                        kind(other)
                    ),
                ))
            }
        };
        for (i, text) in input.iter().enumerate() {
            if text.is_empty() {
                return Err(ApiError::invalid("input", format!("input[{i}] is empty")));
            }
            let chars = text.chars().count();
            if chars > config.max_input_chars {
                return Err(ApiError {
                    status: 413,
                    code: Some("input_too_long"),
                    ..ApiError::invalid(
                        "input",
                        format!(
                            "input[{i}] has {chars} characters; at most {} are accepted",
                            config.max_input_chars
                        ),
                    )
                });
            }
        }
        match map.get("model") {
            None | Some(Value::Null) => {}
            Some(Value::String(m)) if *m == config.model_name => {}
            Some(other) => {
                return Err(ApiError {
                    status: 404,
                    code: Some("model_not_found"),
                    ..ApiError::invalid(
                        "model",
                        format!(
                            "model {other} is not served here; this server serves {:?}",
                            config.model_name
                        ),
                    )
                })
            }
        }
        let encoding_format = match map.get("encoding_format") {
            None | Some(Value::Null) => EncodingFormat::Float,
            Some(Value::String(f)) if f == "float" => EncodingFormat::Float,
            Some(Value::String(f)) if f == "base64" => EncodingFormat::Base64,
            Some(other) => {
                return Err(ApiError::invalid(
                    "encoding_format",
                    format!("encoding_format {other}: expected \"float\" or \"base64\""),
                ))
            }
        };
        let dimensions = match map.get("dimensions") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(d) if d >= 1 && d as usize <= dim => Some(d as usize),
                _ => {
                    return Err(ApiError::invalid(
                        "dimensions",
                        format!("dimensions {v}: expected an integer from 1 to {dim}"),
                    ))
                }
            },
        };
        let input_type = match map.get("input_type") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(InputType::parse(t).ok_or_else(|| {
                ApiError::invalid(
                    "input_type",
                    format!("input_type {t:?}: expected \"query\", \"passage\" or \"document\""),
                )
            })?),
            Some(other) => {
                return Err(ApiError::invalid(
                    "input_type",
                    format!("input_type {other} is not a string"),
                ))
            }
        };
        Ok(Self {
            input,
            encoding_format,
            dimensions,
            input_type,
        })
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One embedding of the response.
#[derive(Debug, Clone, Serialize)]
struct Datum {
    object: &'static str,
    index: usize,
    embedding: Value,
}

/// Token counts of the response.
#[derive(Debug, Clone, Copy, Serialize)]
struct Usage {
    prompt_tokens: usize,
    total_tokens: usize,
}

/// The response body for `vectors` (one row per input), `tokens` tokens in all.
pub(crate) fn response(
    vectors: &embedtune_core::Embeddings,
    format: EncodingFormat,
    model: &str,
    tokens: usize,
) -> Value {
    let data: Vec<Datum> = vectors
        .iter()
        .enumerate()
        .map(|(index, row)| Datum {
            object: "embedding",
            index,
            embedding: match format {
                EncodingFormat::Float => Value::from(row.to_vec()),
                EncodingFormat::Base64 => {
                    let bytes: Vec<u8> = row.iter().flat_map(|x| x.to_le_bytes()).collect();
                    Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            },
        })
        .collect();
    serde_json::json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": Usage { prompt_tokens: tokens, total_tokens: tokens },
    })
}

/// Keeps the first `dim` values of each row, re-normalising each to unit length when
/// `normalize` (as the model's own output is then unit length).
pub(crate) fn truncate(
    vectors: &embedtune_core::Embeddings,
    dim: usize,
    normalize: bool,
) -> embedtune_core::Embeddings {
    let mut out = embedtune_core::Embeddings::with_capacity(dim, vectors.len())
        .expect("dim is at least 1 (checked when parsing)");
    for row in vectors {
        let mut cut = row[..dim.min(row.len())].to_vec();
        if normalize {
            let norm = cut.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                cut.iter_mut().for_each(|x| *x /= norm);
            }
        }
        out.push(&cut).expect("rows of width dim");
    }
    out
}
