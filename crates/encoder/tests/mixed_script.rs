//! Truncation at max_seq in the middle of mixed-script text (issue 15), against
//! sentence-transformers on the shared tiny XLM-RoBERTa: long Chinese / English / emoji /
//! full-width / combining-mark texts, with and without a prompt, at the model's max_seq 128 and
//! at 16 and 37 set through [`SentenceEncoder::set_max_seq_length`]. The expected token ids and
//! embeddings are `tests/fixtures/mixed_script_truncation.json`, made by
//! `scripts/make_mixed_script_fixture.py`.
//!
//! Also the data crate's dataset statistics over these tokenizers' lengths
//! ([`TextTokenizer::token_lengths`]): tokens, not characters or bytes.

use std::path::{Path, PathBuf};

use burn_ndarray::NdArray;
use embedtune_data::{BeirDataset, DatasetStats, Example, ReadOptions, TextColumns};
use embedtune_encoder::{testing, EncodeOptions, SentenceEncoder, TextTokenizer};
use serde_json::Value;

use crate::common::{cosine, max_abs_diff, minilm, shared};

type B = NdArray<f32>;

struct Case {
    name: String,
    text: String,
    prompt: String,
    max_seq: usize,
    input_ids: Vec<u32>,
    full_length: usize,
    cut_mid_cjk: bool,
    /// The part of `text` whose tokens are exactly the kept ones, when there is one.
    prefix: Option<String>,
    embedding: Vec<f32>,
}

fn cases() -> Vec<Case> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mixed_script_truncation.json");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    let list = |v: &Value| v.as_array().expect("array").clone();
    list(&doc["cases"])
        .iter()
        .map(|c| {
            let name = c["text"].as_str().expect("text name").to_string();
            let text = doc["texts"][&name].as_str().expect("text").to_string();
            let prefix = c["prefix_chars"]
                .as_u64()
                .map(|n| text.chars().take(n as usize).collect());
            Case {
                prompt: c["prompt"].as_str().expect("prompt").into(),
                max_seq: c["max_seq"].as_u64().expect("max_seq") as usize,
                input_ids: list(&c["input_ids"])
                    .iter()
                    .map(|x| x.as_u64().expect("id") as u32)
                    .collect(),
                full_length: c["full_length"].as_u64().expect("full_length") as usize,
                cut_mid_cjk: c["cut_mid_cjk"].as_bool().expect("cut_mid_cjk"),
                embedding: list(&c["embedding"])
                    .iter()
                    .map(|x| x.as_f64().expect("float") as f32)
                    .collect(),
                name,
                text,
                prefix,
            }
        })
        .collect()
}

fn model_dir(test: &str) -> Option<PathBuf> {
    Some(shared(test)?.join("models/tiny-xlm-roberta-random"))
}

fn options(prompt: &str, batch_size: usize) -> EncodeOptions {
    EncodeOptions {
        batch_size,
        prompt: Some(prompt.into()),
        normalize: None,
    }
}

#[test]
fn mixed_script_truncation_matches_sentence_transformers() {
    let Some(dir) = model_dir("mixed_script_truncation_matches_sentence_transformers") else {
        return;
    };
    let cases = cases();
    assert_eq!(cases.len(), 36);
    let mut model = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("model loads");
    assert_eq!(model.max_seq_length(), 128);
    let (mut cut, mut mid_cjk) = (0, 0);
    for max_seq in [128, 16, 37] {
        model.set_max_seq_length(max_seq).expect("max_seq");
        let group: Vec<&Case> = cases.iter().filter(|c| c.max_seq == max_seq).collect();
        assert_eq!(group.len(), 12);
        for c in &group {
            let what = format!("{} {:?} at {max_seq}", c.name, c.prompt);
            let batch = model
                .tokenize(&[c.text.as_str()], Some(&c.prompt))
                .expect("tokenize");
            let ids: Vec<u32> = batch.input_ids.iter().map(|&i| i as u32).collect();
            assert_eq!(ids, c.input_ids, "token ids of {what}");
            assert_eq!(ids.len(), c.full_length.min(max_seq), "{what}");
            cut += usize::from(c.full_length > max_seq);
            mid_cjk += usize::from(c.cut_mid_cjk);
        }
        // Embeddings, one prompt at a time, in one batch and one by one.
        for prompt in ["", "query: "] {
            let same: Vec<&&Case> = group.iter().filter(|c| c.prompt == prompt).collect();
            let texts: Vec<&str> = same.iter().map(|c| c.text.as_str()).collect();
            for batch_size in [1, texts.len()] {
                let out = model
                    .encode(&texts, &options(prompt, batch_size))
                    .expect("encode");
                for (c, got) in same.iter().zip(&out) {
                    let (cos, diff) = (cosine(got, &c.embedding), max_abs_diff(got, &c.embedding));
                    assert!(
                        cos >= 0.99999 && diff <= 1e-4,
                        "{} {prompt:?} at {max_seq} (batch {batch_size}): cos {cos}, max |diff| {diff}",
                        c.name
                    );
                }
            }
        }
    }
    assert!(cut >= 20, "{cut} truncated cases");
    assert!(mid_cjk >= 10, "{mid_cjk} cases cut inside Chinese text");
}

/// A text cut at max_seq inside a run of Chinese characters embeds exactly as the prefix that
/// ends where the kept tokens end (same token ids, same embedding), at every max_seq.
#[test]
fn text_cut_mid_cjk_embeds_as_its_explicit_prefix() {
    let Some(dir) = model_dir("text_cut_mid_cjk_embeds_as_its_explicit_prefix") else {
        return;
    };
    let mut model = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("model loads");
    let cases = cases();
    let mut checked_mid_cjk = 0;
    for c in &cases {
        let Some(prefix) = &c.prefix else {
            assert!(
                c.full_length <= c.max_seq,
                "{}: a cut case without a prefix",
                c.name
            );
            continue;
        };
        model.set_max_seq_length(c.max_seq).expect("max_seq");
        let what = format!("{} {:?} at {}", c.name, c.prompt, c.max_seq);
        assert!(prefix.len() < c.text.len() && c.text.starts_with(prefix.as_str()));
        if c.cut_mid_cjk {
            let last = prefix.chars().last().expect("non-empty");
            let next = c.text[prefix.len()..].chars().next().expect("cut inside");
            assert!(
                ('\u{4e00}'..='\u{9fff}').contains(&last)
                    && ('\u{4e00}'..='\u{9fff}').contains(&next),
                "{what}: {last:?} | {next:?}"
            );
            checked_mid_cjk += 1;
        }
        let ids = |t: &str| {
            model
                .tokenize(&[t], Some(&c.prompt))
                .expect("tokenize")
                .input_ids
        };
        assert_eq!(ids(prefix), ids(&c.text), "{what}");
        let out = model
            .encode(&[c.text.as_str(), prefix.as_str()], &options(&c.prompt, 1))
            .expect("encode");
        assert_eq!(out[0], out[1], "{what}");
        assert!(cosine(&out[0], &c.embedding) >= 0.99999, "{what}");
    }
    assert!(checked_mid_cjk >= 10, "{checked_mid_cjk}");
}

/// Dataset statistics of `items` in `tok`'s tokens, truncation counted at its max_seq_len.
fn stats<T: TextColumns>(items: &[T], tok: &TextTokenizer) -> DatasetStats {
    type AnyError = Box<dyn std::error::Error + Send + Sync>;
    DatasetStats::compute(items, tok.max_seq_len(), |texts| -> Result<_, AnyError> {
        Ok(tok.token_lengths(texts)?)
    })
    .expect("statistics")
}

/// Statistics count the tokenizer's tokens: with the tiny BERT tokenizer every Chinese
/// character is a token, an emoji word one `[UNK]`, whatever their bytes or characters.
#[test]
fn stats_count_tokens_not_characters_or_bytes() {
    let tok = testing::tiny_tokenizer(6).expect("tokenizer");
    let data = [Example {
        anchor: "猫狗鱼".into(), // 3 chars, 9 bytes: [CLS] 3 × [UNK] [SEP]
        positive: "养老金账户的转移".into(), // 8 chars, 24 bytes: 10 tokens
        negatives: vec!["👨\u{200d}👩\u{200d}👧 🇦🇺".into()], // 8 chars, 27 bytes: 4 tokens
    }];
    let s = stats(&data, &tok);
    assert_eq!(s.max_seq_len, 6);
    assert_eq!(s.columns["anchor"].max, 5);
    assert_eq!(s.columns["positive"].max, 10);
    assert_eq!(s.columns["negative"].max, 4);
    assert_eq!((s.tokens.min, s.tokens.max), (4, 10));
    assert_eq!((s.truncated_texts, s.truncated_examples), (1, 1));
    // Truncated at 6 tokens in the middle of the Chinese text: [CLS] 4 × [UNK] [SEP].
    let positive = data[0].positive.as_str();
    assert_eq!(
        tok.encode_ids(&[positive]).expect("ids")[0],
        [2, 1, 1, 1, 1, 3]
    );
    assert_eq!(tok.token_lengths(&[positive]).expect("lengths"), [10]);
}

/// Token lengths before truncation, and the statistics' truncation counts, against
/// sentence-transformers on the shared multilingual tokenizer (cut in the middle of Chinese
/// text too), prompts prepended as sentence-transformers prepends them.
#[test]
fn token_lengths_and_stats_match_sentence_transformers() {
    let Some(dir) = model_dir("token_lengths_and_stats_match_sentence_transformers") else {
        return;
    };
    let mut model = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("model loads");
    let cases = cases();
    let mut mid_cjk = 0;
    for max_seq in [128, 16, 37] {
        model.set_max_seq_length(max_seq).expect("max_seq");
        let tok = model.tokenizer();
        let group: Vec<&Case> = cases.iter().filter(|c| c.max_seq == max_seq).collect();
        let texts: Vec<String> = group
            .iter()
            .map(|c| format!("{}{}", c.prompt, c.text))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let full = tok.token_lengths(&refs).expect("lengths");
        let ids = tok.encode_ids(&refs).expect("ids");
        for ((c, n), ids) in group.iter().zip(&full).zip(&ids) {
            let what = format!("{} {:?} at {max_seq}", c.name, c.prompt);
            assert_eq!(*n, c.full_length, "length before truncation of {what}");
            assert_eq!(ids, &c.input_ids, "token ids of {what}");
            mid_cjk += usize::from(c.cut_mid_cjk);
        }
        let s = stats(&texts, tok);
        assert_eq!(s.max_seq_len, max_seq);
        assert_eq!(s.tokens.max, *full.iter().max().expect("texts"));
        assert_eq!(s.tokens.min, *full.iter().min().expect("texts"));
        assert_eq!(
            s.truncated_texts,
            full.iter().filter(|&&n| n > max_seq).count()
        );
        assert!(s.truncated_texts > 0);
    }
    assert!(mid_cjk > 0, "the fixture must cut inside Chinese text");
}

/// SciFact's training pairs in all-MiniLM-L6-v2's tokens at its max_seq 256.
#[test]
fn scifact_train_stats_with_minilm() {
    let (Some(model), Some(root)) = (
        minilm("scifact_train_stats_with_minilm"),
        shared("scifact_train_stats_with_minilm"),
    ) else {
        return;
    };
    let dir = root.join("data/scifact");
    if !dir.is_dir() {
        eprintln!(
            "skipping scifact_train_stats_with_minilm: {} is missing",
            dir.display()
        );
        return;
    }
    let tok = TextTokenizer::from_file(&model.join("tokenizer.json"), 256, 0).expect("tokenizer");
    let ds = BeirDataset::load_splits(&dir, &["train"], &ReadOptions::default()).expect("scifact");
    let pairs = ds.train_pairs("train").expect("train pairs");
    let s = stats(&pairs, &tok);
    println!("{s}");
    assert_eq!(s.examples, 919);
    assert_eq!(s.texts, 1838);
    // 919 pairs over 809 queries: queries repeat.
    assert!(s.duplicate_texts >= 919 - 809);
    assert!(s.truncated_texts > 0 && s.truncated_texts <= 919);
    assert!(s.columns["anchor"].p50 < s.columns["positive"].p50);
}
