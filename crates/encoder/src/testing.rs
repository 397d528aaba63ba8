//! Small in-memory models for tests and examples that must run without model files.

use std::path::PathBuf;
use std::str::FromStr;

use serde_json::json;
use tokenizers::Tokenizer;

use crate::error::{EncoderError, Result};
use crate::tokenize::TextTokenizer;

/// A lowercasing WordPiece tokenizer over single letters, digits and their `##` continuations
/// (so every ASCII word tokenises), with BERT's special tokens `[PAD]` 0, `[UNK]` 1, `[CLS]` 2,
/// `[SEP]` 3, `[MASK]` 4, truncating at `max_seq_len`.
pub fn tiny_tokenizer(max_seq_len: usize) -> Result<TextTokenizer> {
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let mut vocab: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    let chars: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    vocab.extend(chars.iter().map(|c| c.to_string()));
    vocab.extend(chars.iter().map(|c| format!("##{c}")));
    vocab.extend([".", ",", "?", "!", "-", ":", "'"].map(String::from));
    let vocab_map: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), json!(i)))
        .collect();
    let added: Vec<_> = specials
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"id": i, "content": s, "single_word": false, "lstrip": false,
                              "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab_map}
    });
    let path = PathBuf::from("<tiny tokenizer>");
    let tok = Tokenizer::from_str(&spec.to_string()).map_err(|e| EncoderError::Tokenizer {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    TextTokenizer::new(tok, max_seq_len, 0, path)
}

/// Copies a directory and everything under it, for tests that edit a copy of a model directory
/// (its `config.json`, say) and leave the original alone.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let Some(name) = path.file_name() else {
            continue;
        };
        let dest = to.join(name);
        if path.is_dir() {
            copy_dir(&path, &dest)?;
        } else {
            std::fs::copy(&path, &dest)?;
        }
    }
    Ok(())
}
