//! Shared test helpers (included with `mod common;`).
#![allow(dead_code)]

use std::path::PathBuf;

/// A fixture file path.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `$EMBEDTUNE_SHARED/<rel>` if the variable is set and the path exists; otherwise prints why
/// the test is skipped and returns `None`.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let Some(root) = std::env::var_os("EMBEDTUNE_SHARED") else {
        eprintln!("skipped: EMBEDTUNE_SHARED is not set");
        return None;
    };
    let path = PathBuf::from(root).join(rel);
    if !path.exists() {
        eprintln!("skipped: {} does not exist", path.display());
        return None;
    }
    Some(path)
}

/// A tiny BERT-style WordPiece tokenizer. Its stored truncation (3 tokens) and padding
/// (fixed 20, pad id 1) are deliberately wrong: the batch tokenizer must override them.
#[cfg(feature = "tokenize")]
pub fn tiny_tokenizer(with_padding_config: bool) -> embedtune_data::tokenizers::Tokenizer {
    let words = [
        "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "##s",
        "##ing", "big", "red", ".", ",", "[PAD]",
    ];
    let vocab: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{w:?}: {i}"))
        .collect();
    let padding = if with_padding_config {
        r#"{"strategy": {"Fixed": 20}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 16, "pad_type_id": 0, "pad_token": ","}"#
    } else {
        "null"
    };
    let json = format!(
        r###"{{
  "version": "1.0",
  "truncation": {{"direction": "Right", "max_length": 3, "strategy": "LongestFirst", "stride": 0}},
  "padding": {padding},
  "added_tokens": [],
  "normalizer": {{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true}},
  "pre_tokenizer": {{"type": "BertPreTokenizer"}},
  "post_processor": {{"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]}},
  "decoder": null,
  "model": {{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": {{{}}}}}
}}"###,
        vocab.join(", ")
    );
    json.parse().expect("tiny tokenizer json")
}
