//! Regression tests from fuzzing the model-directory parsers (`fuzz/`): each input once made a
//! loader panic or allocate without bound; now each is a typed error naming its file.

use std::path::Path;

use burn_ndarray::NdArray;
use embedtune_encoder::TransformerConfig;
use embedtune_encoder::{testing, EncoderError, LoraConfig, SentenceEncoder, TextTokenizer};
use serde_json::{json, Value};

type B = NdArray<f32>;

/// The tiny tokenizer's `tokenizer.json` as a JSON value.
fn tiny_tokenizer_json() -> Value {
    let text = testing::tiny_tokenizer(16)
        .expect("tokenizer")
        .inner()
        .to_string(false)
        .expect("serialise");
    serde_json::from_str(&text).expect("json")
}

/// Writes `text` as `tokenizer.json` in a fresh directory and loads it.
fn load_tokenizer(text: &str) -> (tempfile::TempDir, Result<TextTokenizer, EncoderError>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("tokenizer.json");
    std::fs::write(&path, text).expect("write");
    let result = TextTokenizer::from_file(&path, 16, 0);
    (tmp, result)
}

fn assert_tokenizer_error(result: Result<TextTokenizer, EncoderError>, expected: &str) {
    match result {
        Ok(_) => panic!("loaded; expected an error about {expected}"),
        Err(e @ EncoderError::Tokenizer { .. }) => {
            let message = e.to_string();
            assert!(message.contains("tokenizer.json"), "{message}");
            assert!(message.contains(expected), "{message} / {expected}");
        }
        Err(e) => panic!("expected a tokenizer error, got {e}"),
    }
}

/// `tokenizers` 0.22 unwraps the parse of `decoder` (`expect("Helper")`): a JSON syntax error
/// there panicked (fuzz target `tokenizer_json`, first minutes).
#[test]
fn regression_tokenizer_json_with_a_syntax_error_in_decoder() {
    let text = tiny_tokenizer_json().to_string();
    let at = text.find("\"decoder\":{").expect("decoder") + "\"decoder\":{".len();
    let broken = format!("{}\"type\":,{}", &text[..at], &text[at..]);
    let (_tmp, result) = load_tokenizer(&broken);
    assert_tokenizer_error(result, "expected value");
    let (_tmp, result) = load_tokenizer(&text[..text.len() / 2]);
    assert_tokenizer_error(result, "EOF");
}

/// A `Precompiled` normaliser's charsmap is trusted by `tokenizers` (`spm_precompiled`): its
/// size field reserves up to 8 GiB, its trie indexes an array by stored offsets, and a bad
/// charsmap panics in `tokenizers`' deserialiser (`expect("Precompiled")`).
#[test]
fn regression_corrupt_precompiled_charsmaps_are_refused() {
    let b64 = |bytes: &[u8]| {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
        out
    };
    // a root whose offset leads past the array; a trie size past the blob; not base64; no
    // charsmap; a NUL-free blob that is not UTF-8
    let root_far = [4u32.to_le_bytes(), (1u32 << 20).to_le_bytes()].concat();
    let cases: Vec<(Value, &str)> = vec![
        (json!(b64(&root_far)), "outside the array"),
        (json!(b64(&0x7fff_fff0u32.to_le_bytes())), "a trie of"),
        (json!("@@@@"), "not base64"),
        (Value::Null, "needs a precompiled_charsmap"),
        (json!(b64(&[0, 0, 0, 0, 0xff, 0xfe])), "not UTF-8"),
    ];
    for (charsmap, expected) in cases {
        let mut spec = tiny_tokenizer_json();
        spec["normalizer"] = json!({"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": charsmap}, {"type": "Lowercase"}]});
        let (_tmp, result) = load_tokenizer(&spec.to_string());
        assert_tokenizer_error(result, expected);
    }
}

/// The ids of the special tokens a post-processor adds are stated in `tokenizer.json` apart from
/// the vocabulary: a `[SEP]` id past `vocab_size` passed the vocabulary check at load and would
/// have indexed past the word embeddings at the first text.
#[test]
fn regression_post_processor_ids_count_in_the_vocabulary_check() {
    let mut spec = tiny_tokenizer_json();
    spec["post_processor"] =
        json!({"type": "BertProcessing", "sep": ["[SEP]", 500], "cls": ["[CLS]", 2]});
    let (_tmp, result) = load_tokenizer(&spec.to_string());
    let tokenizer = result.expect("the file itself is valid");
    assert_eq!(tokenizer.max_token_id(), Some(500));
    let config = TransformerConfig::tiny_bert(100, 8, 1, 2).expect("config");
    match SentenceEncoder::<B>::random(config, tokenizer, &Default::default()) {
        Err(EncoderError::VocabMismatch {
            max_id, vocab_size, ..
        }) => {
            assert_eq!((max_id, vocab_size), (500, 100))
        }
        Err(e) => panic!("expected VocabMismatch, got {e}"),
        Ok(_) => panic!("a [SEP] id past the vocabulary was accepted"),
    }
}

/// A saved adapter directory of a tiny model (rank 4 on query and value) and its base.
fn saved_adapter(dir: &Path) -> SentenceEncoder<B> {
    let tokenizer = testing::tiny_tokenizer(16).expect("tokenizer");
    let config = TransformerConfig::tiny_bert(100, 8, 1, 2).expect("config");
    let base = {
        let _serial = crate::common::serial();
        SentenceEncoder::<B>::random(config, tokenizer, &Default::default()).expect("model")
    };
    let lora = LoraConfig {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        target_modules: vec!["query".into(), "value".into()],
    };
    base.clone()
        .with_lora(lora, 1)
        .expect("attach")
        .save_lora_adapter(dir)
        .expect("save");
    base
}

/// `adapter_config.json`'s `r` sized the adapters that `with_lora` allocates before the
/// weights were read: `r: 10¹²` asked for 8·10¹² floats per layer. The rank is now checked
/// against the stored matrices first.
#[test]
fn regression_lora_rank_is_checked_against_the_weights_before_allocating() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("adapter");
    let base = saved_adapter(&dir);
    let config_path = dir.join("adapter_config.json");
    let original = std::fs::read_to_string(&config_path).expect("read");
    for (r, target) in [
        (1_000_000_000_000u64, json!(["query"])),
        (5, json!(["value"])),
        (4, json!(["key"])),
    ] {
        let mut config: Value = serde_json::from_str(&original).expect("json");
        config["r"] = json!(r);
        config["target_modules"] = target;
        std::fs::write(&config_path, config.to_string()).expect("write");
        let err = match base.clone().load_lora_adapter(&dir) {
            Ok(_) => panic!("r {r} loaded"),
            Err(e) => e,
        };
        let message = err.to_string();
        assert!(message.contains("adapter_model.safetensors"), "{message}");
        assert!(
            matches!(
                err,
                EncoderError::TensorShape { .. } | EncoderError::MissingTensors { .. }
            ),
            "{message}"
        );
    }
    // invalid values name the file too; target modules that match nothing were found by the
    // fuzz target `adapter_config` (the message named no file)
    for (key, value, expected) in [
        ("lora_dropout", json!(1.5), "dropout"),
        ("target_modules", json!(["qumry"]), "match no linear layer"),
    ] {
        let mut config: Value = serde_json::from_str(&original).expect("json");
        config[key] = value;
        std::fs::write(&config_path, config.to_string()).expect("write");
        let message = base
            .clone()
            .load_lora_adapter(&dir)
            .expect_err("invalid config")
            .to_string();
        assert!(
            message.contains("adapter_config.json") && message.contains(expected),
            "{message}"
        );
    }
    std::fs::write(&config_path, &original).expect("write");
    base.load_lora_adapter(&dir)
        .expect("the saved adapter loads");
}

/// A tensor missing from `model.safetensors` got a zero placeholder of the shape `config.json`
/// implies, before the missing tensors were reported: `vocab_size: 10¹²` allocated the word
/// embeddings' placeholder. Placeholders past the file's size stop the load at once.
#[test]
fn regression_missing_tensors_do_not_allocate_by_the_config() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("model");
    let tokenizer = testing::tiny_tokenizer(16).expect("tokenizer");
    let config = TransformerConfig::tiny_bert(100, 8, 1, 2).expect("config");
    let model = {
        let _serial = crate::common::serial();
        SentenceEncoder::<B>::random(config, tokenizer, &Default::default()).expect("model")
    };
    model.save(&dir).expect("save");
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).expect("read");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .filter(|(name, _)| !name.ends_with("word_embeddings.weight"))
        .collect();
    std::fs::write(
        &weights,
        safetensors::serialize(kept, None).expect("serialise"),
    )
    .expect("write");
    let config_path = dir.join("config.json");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("read")).expect("json");
    config["vocab_size"] = json!(1_000_000_000_000u64);
    std::fs::write(&config_path, config.to_string()).expect("write");
    match SentenceEncoder::<B>::load(&dir, &Default::default()) {
        Err(EncoderError::MissingTensors { path, names }) => {
            assert!(path.ends_with("model.safetensors"));
            assert!(
                names.iter().any(|n| n.ends_with("word_embeddings.weight")),
                "{names:?}"
            );
        }
        Err(e) => panic!("expected MissingTensors, got {e}"),
        Ok(_) => panic!("loaded without word embeddings"),
    }
}

/// `tokenizers` indexes `special_tokens` by each special token a `TemplateProcessing` template
/// names, and the encodings by the template's sequences, without checking at load: a template
/// naming an undefined token (found by the fuzz target `tokenizer_json`), mismatched `ids` and
/// `tokens`, or `$B` in the single template panicked at the first text.
#[test]
fn regression_template_post_processors_are_checked_at_load() {
    let a = json!({"Sequence": {"id": "A", "type_id": 0}});
    let b = json!({"Sequence": {"id": "B", "type_id": 0}});
    let cls = json!({"SpecialToken": {"id": "[CLS]", "type_id": 0}});
    let tokens = json!({"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}});
    let cases = [
        (json!([cls, a]), json!({}), "does not define"),
        (
            json!([cls, a]),
            json!({"[CLS]": {"id": "[CLS]", "ids": [2, 3], "tokens": ["[CLS]"]}}),
            "ids and",
        ),
        (json!([cls, a, b]), tokens.clone(), "$B"),
    ];
    for (single, special_tokens, expected) in cases {
        let mut spec = tiny_tokenizer_json();
        spec["post_processor"] = json!({"type": "Sequence", "processors": [{
            "type": "TemplateProcessing", "single": single, "pair": [cls, a, b],
            "special_tokens": special_tokens}]});
        let (_tmp, result) = load_tokenizer(&spec.to_string());
        assert_tokenizer_error(result, expected);
    }
    let mut spec = tiny_tokenizer_json();
    spec["post_processor"] = json!({"type": "TemplateProcessing", "single": [cls, a],
        "pair": [cls, a, b], "special_tokens": tokens});
    let (_tmp, result) = load_tokenizer(&spec.to_string());
    let tokenizer = result.expect("a valid template");
    let batch = tokenizer.batch(&["hello"], None).expect("tokenise");
    assert_eq!(batch.input_ids[0], 2);
}
