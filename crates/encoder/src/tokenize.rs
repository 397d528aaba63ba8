//! Tokenisation with the model's `tokenizer.json`, truncated as sentence-transformers does.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde_json::Value;
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{EncoderError, Result};

/// A padded batch of token ids, ready to become tensors.
///
/// All three vectors are row-major `[batch, seq_len]`; padding is on the right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// Token ids, padded with the model's pad id.
    pub input_ids: Vec<i64>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<i64>,
    /// Segment ids (0 for single texts).
    pub token_type_ids: Vec<i64>,
    /// Number of texts.
    pub batch: usize,
    /// Length of the longest text in tokens (the padded width).
    pub seq_len: usize,
    /// Tokens taken by the prompt prefix, `[CLS]` included (0 without a prompt). Pooling
    /// excludes them when the model's pooling has `include_prompt: false`.
    pub prompt_len: usize,
}

impl TokenBatch {
    /// The number of real (unpadded) tokens of each text.
    pub fn lengths(&self) -> Vec<usize> {
        self.attention_mask
            .chunks(self.seq_len.max(1))
            .map(|row| row.iter().filter(|&&m| m != 0).count())
            .collect()
    }

    /// The three inputs as integer tensors `[batch, seq_len]` on `device`.
    pub fn to_tensors<B: Backend>(
        &self,
        device: &B::Device,
    ) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
        let shape = [self.batch, self.seq_len];
        let make = |v: &Vec<i64>| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(v.clone(), shape), device)
        };
        (
            make(&self.input_ids),
            make(&self.attention_mask),
            make(&self.token_type_ids),
        )
    }
}

/// The model's tokenizer with sentence-transformers' truncation.
///
/// Each text is truncated so that, with its special tokens, it has at most `max_seq_len` tokens
/// (`truncation="longest_first"`); batches are padded to their longest text. The truncation and
/// padding stored inside `tokenizer.json` are replaced: sentence-transformers does not use them.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    max_seq_len: usize,
    pad_id: i64,
    lowercase: bool,
    path: PathBuf,
}

impl TextTokenizer {
    /// Loads `tokenizer.json`.
    pub fn from_file(path: &Path, max_seq_len: usize, pad_id: usize) -> Result<Self> {
        if !path.is_file() {
            return Err(EncoderError::MissingFile {
                path: path.to_path_buf(),
                what: "the tokenizer (tokenizer.json)",
            });
        }
        let bad = |reason: String| EncoderError::Tokenizer {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(crate::error::io_err(path))?;
        // `tokenizers` panics on some malformed files (a JSON syntax error inside `decoder`, a
        // corrupt `Precompiled` normaliser): those are refused here first.
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if let Some(normalizer) = value.get("normalizer") {
            check_normalizer(normalizer).map_err(bad)?;
        }
        if let Some(processor) = value.get("post_processor") {
            check_post_processor(processor).map_err(bad)?;
        }
        let inner = Tokenizer::from_str(&text).map_err(|e| bad(e.to_string()))?;
        Self::new(inner, max_seq_len, pad_id, path.to_path_buf())
    }

    /// Wraps an in-memory tokenizer; `path` is only used in error messages.
    pub fn new(
        mut inner: Tokenizer,
        max_seq_len: usize,
        pad_id: usize,
        path: PathBuf,
    ) -> Result<Self> {
        if max_seq_len < 2 {
            return Err(EncoderError::Tokenizer {
                path,
                reason: format!("max_seq_len {max_seq_len} leaves no room for [CLS] and [SEP]"),
            });
        }
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_seq_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| EncoderError::Tokenizer {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            inner,
            max_seq_len,
            pad_id: pad_id as i64,
            lowercase: false,
            path,
        })
    }

    /// Lowercases texts before tokenisation (sentence-transformers' `do_lower_case: true`).
    pub fn with_lowercase(mut self, lowercase: bool) -> Self {
        self.lowercase = lowercase;
        self
    }

    /// The truncation length, special tokens included.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// Changes the truncation length.
    pub fn set_max_seq_len(&mut self, max_seq_len: usize) -> Result<()> {
        *self = Self::new(
            self.inner.clone(),
            max_seq_len,
            self.pad_id as usize,
            self.path.clone(),
        )?
        .with_lowercase(self.lowercase);
        Ok(())
    }

    /// Number of tokens in the vocabulary, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The largest token id the tokenizer can produce (its vocabulary, added tokens and the
    /// special tokens its post-processor adds, whose ids `tokenizer.json` states separately),
    /// `None` for an empty vocabulary.
    pub fn max_token_id(&self) -> Option<u32> {
        let specials = self
            .inner
            .post_process(Encoding::default(), None, true)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default();
        self.inner
            .get_vocab(true)
            .into_values()
            .chain(specials)
            .max()
    }

    /// The tokenizer file this tokenizer was read from (`<in memory>` and the like otherwise).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The wrapped `tokenizers` tokenizer (with this crate's truncation applied).
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// The texts as the tokenizer sees them: lowercased when the model lowercases.
    fn inputs(&self, texts: &[&str]) -> Vec<String> {
        texts
            .iter()
            .map(|t| {
                if self.lowercase {
                    t.to_lowercase()
                } else {
                    t.to_string()
                }
            })
            .collect()
    }

    fn error(&self, e: impl std::fmt::Display) -> EncoderError {
        EncoderError::Tokenizer {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Token ids of each text (special tokens included, truncated, unpadded).
    pub fn encode_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encodings = self
            .inner
            .encode_batch_fast(self.inputs(texts), true)
            .map_err(|e| self.error(e))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// Each text's token count before truncation, special tokens included: what
    /// [`TextTokenizer::encode_ids`] gives for it when that is at most
    /// [`max_seq_len`](TextTokenizer::max_seq_len), more when the text would be cut. Texts are
    /// lowercased as for `encode_ids` and tokenised in parallel (as `encode_ids` is); an empty
    /// text counts its special tokens (`[CLS]` and `[SEP]`: 2).
    ///
    /// This is the length function of the data crate's `DatasetStats::compute`:
    ///
    /// ```
    /// let tokenizer = embedtune_encoder::testing::tiny_tokenizer(8).unwrap();
    /// // The tiny tokenizer splits words into letters: [CLS] a ##b [SEP]; [CLS], 14 letters, [SEP].
    /// let lengths = tokenizer.token_lengths(&["ab", "superannuation"]).unwrap();
    /// assert_eq!(lengths, [4, 16]);
    /// assert_eq!(tokenizer.encode_ids(&["superannuation"]).unwrap()[0].len(), 8);
    /// ```
    pub fn token_lengths(&self, texts: &[&str]) -> Result<Vec<usize>> {
        let mut untruncated = self.inner.clone();
        untruncated
            .with_truncation(None)
            .map_err(|e| self.error(e))?;
        let encodings = untruncated
            .encode_batch_fast(self.inputs(texts), true)
            .map_err(|e| self.error(e))?;
        Ok(encodings.iter().map(Encoding::len).collect())
    }

    /// Tokenises and pads `texts`, each prefixed by `prompt` when given.
    pub fn batch(&self, texts: &[&str], prompt: Option<&str>) -> Result<TokenBatch> {
        let prompt = prompt.filter(|p| !p.is_empty());
        let ids = match prompt {
            Some(p) => {
                let joined: Vec<String> = texts.iter().map(|t| format!("{p}{t}")).collect();
                self.encode_ids(&joined.iter().map(String::as_str).collect::<Vec<_>>())?
            }
            None => self.encode_ids(texts)?,
        };
        let prompt_len = match prompt {
            Some(p) => self.prompt_len(p)?,
            None => 0,
        };
        Ok(self.pad(&ids, prompt_len))
    }

    /// Pads already tokenised texts into a batch.
    pub fn pad(&self, ids: &[Vec<u32>], prompt_len: usize) -> TokenBatch {
        let batch = ids.len();
        let seq_len = ids.iter().map(Vec::len).max().unwrap_or(0);
        let mut input_ids = vec![self.pad_id; batch * seq_len];
        let mut attention_mask = vec![0i64; batch * seq_len];
        for (row, tokens) in ids.iter().enumerate() {
            let base = row * seq_len;
            for (j, &t) in tokens.iter().enumerate() {
                input_ids[base + j] = t as i64;
                attention_mask[base + j] = 1;
            }
        }
        TokenBatch {
            input_ids,
            attention_mask,
            token_type_ids: vec![0; batch * seq_len],
            batch,
            seq_len,
            prompt_len,
        }
    }

    /// Tokens of `prompt` with `[CLS]` and without the trailing `[SEP]`, as
    /// sentence-transformers counts a prompt for `include_prompt: false`.
    pub fn prompt_len(&self, prompt: &str) -> Result<usize> {
        let encoding = self
            .inner
            .encode_fast(prompt, true)
            .map_err(|e| self.error(e))?;
        let special = encoding.get_special_tokens_mask();
        let ends_special = special.last().is_some_and(|&s| s == 1);
        Ok(encoding.len() - usize::from(ends_special))
    }
}

/// Refuses a `Precompiled` normaliser (anywhere in `normalizer`, e.g. inside a `Sequence`)
/// whose `precompiled_charsmap` would make `tokenizers` allocate by an unchecked size or index
/// out of bounds while normalising.
fn check_normalizer(normalizer: &Value) -> Result<(), String> {
    match normalizer {
        Value::Array(items) => items.iter().try_for_each(check_normalizer),
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("Precompiled") {
                check_precompiled(map.get("precompiled_charsmap"))?;
            }
            map.values().try_for_each(check_normalizer)
        }
        _ => Ok(()),
    }
}

/// Refuses a `TemplateProcessing` post-processor (anywhere in `post_processor`, e.g. inside a
/// `Sequence`) that `tokenizers` would panic on when adding special tokens: a template naming a
/// special token absent from `special_tokens`, a special token whose `ids` and `tokens`
/// differ in length, or a single-text template with the second sequence `$B`.
fn check_post_processor(processor: &Value) -> Result<(), String> {
    match processor {
        Value::Array(items) => items.iter().try_for_each(check_post_processor),
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("TemplateProcessing") {
                check_template(map)?;
            }
            map.values().try_for_each(check_post_processor)
        }
        _ => Ok(()),
    }
}

fn check_template(map: &serde_json::Map<String, Value>) -> Result<(), String> {
    let tokens = map.get("special_tokens").and_then(Value::as_object);
    if let Some(tokens) = tokens {
        for (key, token) in tokens {
            let len = |field: &str| token.get(field).and_then(Value::as_array).map(Vec::len);
            if len("ids") != len("tokens") {
                return Err(format!(
                    "TemplateProcessing: special token {key:?} has {:?} ids and {:?} tokens",
                    len("ids"),
                    len("tokens")
                ));
            }
        }
    }
    for template in ["single", "pair"] {
        let Some(pieces) = map.get(template).and_then(Value::as_array) else {
            continue;
        };
        for piece in pieces {
            if let Some(id) = piece
                .get("SpecialToken")
                .and_then(|t| t.get("id"))
                .and_then(Value::as_str)
            {
                if !tokens.is_some_and(|t| t.contains_key(id)) {
                    return Err(format!(
                        "TemplateProcessing: the {template} template uses special token {id:?}, \
                         which special_tokens does not define"
                    ));
                }
            }
            let sequence = piece.get("Sequence").and_then(|s| s.get("id"));
            if template == "single" && sequence.and_then(Value::as_str) == Some("B") {
                return Err(
                    "TemplateProcessing: the single template uses the second sequence $B".into(),
                );
            }
        }
    }
    Ok(())
}

/// Checks a SentencePiece `precompiled_charsmap` (base64 of: trie size in bytes u32 LE, the
/// double-array trie as u32 LE units, then the NUL-separated replacement strings) the way
/// `spm_precompiled` reads it: the trie fits the blob, every state reachable from the root can
/// be followed by any byte without leaving the array, and every leaf points at a character
/// boundary of the replacement strings.
fn check_precompiled(charsmap: Option<&Value>) -> Result<(), String> {
    let text = charsmap
        .and_then(Value::as_str)
        .ok_or("a Precompiled normalizer needs a precompiled_charsmap string")?;
    let blob = decode_base64(text).ok_or("precompiled_charsmap is not base64")?;
    let corrupt = |what: &str| format!("precompiled_charsmap: {what}");
    let size = blob
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| corrupt("shorter than its header"))?;
    let trie_end = 4 + size / 4 * 4;
    if trie_end > blob.len() {
        return Err(corrupt(&format!(
            "a trie of {size} bytes in {} bytes",
            blob.len()
        )));
    }
    let array: Vec<usize> = blob[4..trie_end]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let normalized = std::str::from_utf8(&blob[trie_end..])
        .map_err(|_| corrupt("the replacement strings are not UTF-8"))?;
    // The unit encoding of `spm_precompiled` (darts-clone).
    let offset = |u: usize| (u >> 10) << ((u & (1 << 9)) >> 6);
    let label = |u: usize| u & ((1 << 31) | 0xFF);
    let has_leaf = |u: usize| (u >> 8) & 1 == 1;
    let value = |u: usize| u & ((1 << 31) - 1);
    let root = *array.first().ok_or_else(|| corrupt("empty trie"))?;
    let mut seen = vec![false; array.len()];
    let mut stack = vec![offset(root)];
    while let Some(state) = stack.pop() {
        // the search reads `array[state ^ byte]` for every byte 1..=255 of the input
        if (state | 0xFF) >= array.len() {
            return Err(corrupt("a trie state leads outside the array"));
        }
        if std::mem::replace(&mut seen[state], true) {
            continue;
        }
        for byte in 1..=255usize {
            let unit = array[state ^ byte];
            if label(unit) != byte {
                continue;
            }
            let next = state ^ byte ^ offset(unit);
            if has_leaf(unit) {
                let at = array
                    .get(next)
                    .map(|&leaf| value(leaf))
                    .ok_or_else(|| corrupt("a trie leaf outside the array"))?;
                if !normalized.is_char_boundary(at) {
                    return Err(corrupt("a replacement outside the replacement strings"));
                }
            }
            stack.push(next);
        }
    }
    Ok(())
}

/// Standard base64 (padding optional); `None` on any other character.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text.as_bytes() {
        acc = (acc << 6) | u32::from(digit(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
