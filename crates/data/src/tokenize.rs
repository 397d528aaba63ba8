//! Parallel tokenisation into padded id / mask / token-type arrays and burn tensors.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rayon::prelude::*;
use tokenizers::{Encoding, PostProcessor, Tokenizer, TruncationDirection};

use crate::error::{DataError, Result};

/// Tokenises batches of texts the way sentence-transformers does: each text on its own, cut so
/// that with its special tokens (`[CLS]`, `[SEP]`, ...) it has at most `max_seq_len` tokens
/// (right truncation, as the `longest_first` strategy does for a single text), padded to the
/// longest text of the batch.
///
/// Truncation and padding settings stored in `tokenizer.json` are ignored. The pad id is the
/// tokenizer's padding id if `tokenizer.json` sets one, else the id of `[PAD]` (or `<pad>`),
/// else 0. Texts are tokenised in parallel on the rayon pool.
#[derive(Debug, Clone)]
pub struct BatchTokenizer {
    tokenizer: Tokenizer,
    max_seq_len: usize,
    added: usize,
    pad_id: u32,
    pad_type_id: u32,
}

/// A tokenised batch, row-major `[batch, seq_len]`, padded to the longest text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// Token ids; padding is the pad id.
    pub input_ids: Vec<i64>,
    /// 1 for tokens, 0 for padding.
    pub attention_mask: Vec<i64>,
    /// Token-type (segment) ids; padding uses the tokenizer's pad type id (0).
    pub token_type_ids: Vec<i64>,
    /// Number of texts.
    pub batch: usize,
    /// Padded length (the longest text's token count, at most `max_seq_len`).
    pub seq_len: usize,
    /// Each text's token count after truncation, special tokens included.
    pub lengths: Vec<usize>,
    /// Each text's token count before truncation, special tokens included.
    pub full_lengths: Vec<usize>,
}

impl TokenBatch {
    /// Number of texts that were truncated.
    pub fn truncated(&self) -> usize {
        self.lengths
            .iter()
            .zip(&self.full_lengths)
            .filter(|(l, f)| f > l)
            .count()
    }

    /// Share of the `batch × seq_len` positions that are padding.
    pub fn padding_fraction(&self) -> f64 {
        let total = self.batch * self.seq_len;
        if total == 0 {
            return 0.0;
        }
        1.0 - self.lengths.iter().sum::<usize>() as f64 / total as f64
    }

    /// `(input_ids, attention_mask, token_type_ids)` as `[batch, seq_len]` integer tensors on
    /// `device` (converted to the backend's integer type).
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

fn tok_err(e: impl std::fmt::Display) -> DataError {
    DataError::Tokenizer {
        message: e.to_string(),
    }
}

impl BatchTokenizer {
    /// Loads a `tokenizer.json`.
    pub fn from_file(path: impl AsRef<Path>, max_seq_len: usize) -> Result<Self> {
        let path = path.as_ref();
        let tokenizer =
            Tokenizer::from_file(path).map_err(|e| tok_err(format!("{}: {e}", path.display())))?;
        Self::new(tokenizer, max_seq_len)
    }

    /// Wraps a tokenizer. `max_seq_len` must leave room for at least one token besides the
    /// special tokens.
    pub fn new(mut tokenizer: Tokenizer, max_seq_len: usize) -> Result<Self> {
        let pad_id = tokenizer
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| tokenizer.token_to_id("[PAD]"))
            .or_else(|| tokenizer.token_to_id("<pad>"))
            .unwrap_or(0);
        let pad_type_id = tokenizer.get_padding().map_or(0, |p| p.pad_type_id);
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(tok_err)?;
        let added = tokenizer
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        if max_seq_len <= added {
            return Err(DataError::MaxSeqTooSmall {
                max_seq_len,
                special: added,
            });
        }
        Ok(Self {
            tokenizer,
            max_seq_len,
            added,
            pad_id,
            pad_type_id,
        })
    }

    /// The wrapped tokenizer (without truncation or padding).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Longest sequence, special tokens included.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// The padding id used.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// One text → (truncated encoding with special tokens, token count before truncation).
    fn encode_one(&self, text: &str) -> Result<(Encoding, usize)> {
        let mut enc = self.tokenizer.encode_fast(text, false).map_err(tok_err)?;
        let full = enc.len() + self.added;
        let budget = self.max_seq_len - self.added;
        if enc.len() > budget {
            enc.truncate(budget, 0, TruncationDirection::Right);
            enc.get_overflowing_mut().clear();
        }
        let enc = self
            .tokenizer
            .post_process(enc, None, true)
            .map_err(tok_err)?;
        Ok((enc, full))
    }

    fn check_texts<S: AsRef<str>>(texts: &[S]) -> Result<()> {
        match texts.iter().position(|t| t.as_ref().trim().is_empty()) {
            Some(index) => Err(DataError::EmptyTextInBatch { index }),
            None => Ok(()),
        }
    }

    /// Tokenises a batch (in parallel). An empty (or whitespace-only) text is
    /// [`DataError::EmptyTextInBatch`]; an empty batch is [`DataError::EmptyBatch`].
    pub fn encode<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<TokenBatch> {
        if texts.is_empty() {
            return Err(DataError::EmptyBatch);
        }
        Self::check_texts(texts)?;
        let encoded: Vec<(Encoding, usize)> = texts
            .par_iter()
            .map(|t| self.encode_one(t.as_ref()))
            .collect::<Result<_>>()?;
        let batch = encoded.len();
        let seq_len = encoded.iter().map(|(e, _)| e.len()).max().unwrap_or(0);
        let mut out = TokenBatch {
            input_ids: vec![i64::from(self.pad_id); batch * seq_len],
            attention_mask: vec![0; batch * seq_len],
            token_type_ids: vec![i64::from(self.pad_type_id); batch * seq_len],
            batch,
            seq_len,
            lengths: Vec::with_capacity(batch),
            full_lengths: Vec::with_capacity(batch),
        };
        for (row, (enc, full)) in encoded.iter().enumerate() {
            let at = row * seq_len;
            let n = enc.len();
            for (dst, &id) in out.input_ids[at..at + n].iter_mut().zip(enc.get_ids()) {
                *dst = i64::from(id);
            }
            for (dst, &ty) in out.token_type_ids[at..at + n]
                .iter_mut()
                .zip(enc.get_type_ids())
            {
                *dst = i64::from(ty);
            }
            out.attention_mask[at..at + n].fill(1);
            out.lengths.push(n);
            out.full_lengths.push(*full);
        }
        Ok(out)
    }

    /// Token counts before truncation (special tokens included), in parallel.
    pub fn token_lengths<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<usize>> {
        Self::check_texts(texts)?;
        texts
            .par_iter()
            .map(|t| {
                let enc = self
                    .tokenizer
                    .encode_fast(t.as_ref(), false)
                    .map_err(tok_err)?;
                Ok(enc.len() + self.added)
            })
            .collect()
    }
}
