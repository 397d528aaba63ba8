//! Encoding a JSON Lines file of texts into a JSON Lines file of embeddings.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use burn::tensor::backend::Backend;

use crate::error::{io_err, EncoderError, InputFault, Result};
use crate::model::{EncodeOptions, SentenceEncoder};

/// What [`SentenceEncoder::encode_jsonl`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodeFileReport {
    /// Texts encoded (one output line each).
    pub texts: usize,
    /// Values per embedding.
    pub dim: usize,
    /// Seconds spent encoding (reading and writing excluded).
    pub encode_seconds: f64,
}

/// Reads the `text` field of every non-blank line of JSON Lines file `path` (a UTF-8 byte-order
/// mark is skipped). Empty or whitespace-only texts are refused unless `allow_empty`.
pub fn read_texts(path: &Path, allow_empty: bool) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut texts = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let fault = |fault| EncoderError::Input {
            path: path.to_path_buf(),
            line: i + 1,
            fault,
        };
        let line = line.map_err(io_err(path))?;
        let line = line.trim_start_matches('\u{feff}');
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| fault(InputFault::Json(e)))?;
        let text = value
            .get("text")
            .ok_or_else(|| fault(InputFault::NoText))?
            .as_str()
            .ok_or_else(|| fault(InputFault::TextNotString))?;
        if text.trim().is_empty() && !allow_empty {
            return Err(fault(InputFault::EmptyText));
        }
        texts.push(text.to_string());
    }
    Ok(texts)
}

impl<B: Backend> SentenceEncoder<B> {
    /// Encodes JSON Lines file `input` (`{"text": "..."}` per line, see [`read_texts`]) into
    /// `output`, one `{"embedding": [...]}` line per text in input order, written atomically.
    /// A bad line is an [`EncoderError::Input`] naming the file and line, found before any
    /// encoding.
    pub fn encode_jsonl(
        &self,
        input: &Path,
        output: &Path,
        options: &EncodeOptions,
        allow_empty: bool,
    ) -> Result<EncodeFileReport> {
        let texts = read_texts(input, allow_empty)?;
        let start = Instant::now();
        let vectors = self.encode(&texts, options)?;
        let encode_seconds = start.elapsed().as_secs_f64();
        let mut bytes = Vec::new();
        for v in &vectors {
            serde_json::to_writer(&mut bytes, &serde_json::json!({ "embedding": v })).map_err(
                |source| EncoderError::Json {
                    path: output.to_path_buf(),
                    source,
                },
            )?;
            bytes.write_all(b"\n").map_err(io_err(output))?;
        }
        embedtune_core::write_file_atomically(output, &bytes)?;
        Ok(EncodeFileReport {
            texts: vectors.len(),
            dim: vectors.dim(),
            encode_seconds,
        })
    }
}
