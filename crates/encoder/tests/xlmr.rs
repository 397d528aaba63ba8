//! XLM-RoBERTa / RoBERTa parity with sentence-transformers: the shared tiny random model
//! (mean pooling, Normalize, E5 prompts, max_seq 128) and two more shapes made by
//! `scripts/make_xlmr_fixtures.py` (CLS pooling with 3 heads and max_seq 64; `model_type`
//! roberta with `roberta.`-prefixed weights, mean pooling without the prompt, max_seq 32).
//! Token ids must be identical; embeddings cos ≥ 0.99999 and max |diff| ≤ 1e-4, through the
//! inference path at several batch sizes and through the padded forward training uses.

use std::path::{Path, PathBuf};

use burn_ndarray::NdArray;
use embedtune_encoder::{testing, EncodeOptions, SentenceEncoder};
use serde_json::Value;

use crate::common::{cosine, max_abs_diff, shared};

type B = NdArray<f32>;

struct Reference {
    text: String,
    prompt: String,
    input_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn references(path: &Path) -> Vec<Reference> {
    let text = std::fs::read_to_string(path).expect("reference file");
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("JSON line");
            let list = |k: &str| v[k].as_array().expect(k).clone();
            Reference {
                text: v["text"].as_str().expect("text").into(),
                prompt: v["prompt"].as_str().expect("prompt").into(),
                input_ids: list("input_ids")
                    .iter()
                    .map(|x| x.as_u64().expect("id") as u32)
                    .collect(),
                embedding: list("embedding")
                    .iter()
                    .map(|x| x.as_f64().expect("float") as f32)
                    .collect(),
            }
        })
        .collect()
}

fn check(name: &str, got: &[f32], want: &[f32]) {
    let (cos, diff) = (cosine(got, want), max_abs_diff(got, want));
    assert!(
        cos >= 0.99999 && diff <= 1e-4,
        "{name}: cos {cos}, max |diff| {diff}"
    );
}

/// Token ids, then embeddings through `encode` at batch sizes 1, 7 and 32 and through the
/// training forward (`embed` on an autodiff backend: padded batches), against `refs`.
fn parity(dir: &Path, refs: &[Reference], max_seq: usize) {
    let model = SentenceEncoder::<B>::load(dir, &Default::default()).expect("model loads");
    assert_eq!(model.max_seq_length(), max_seq);
    let mut truncated = 0;
    for r in refs {
        let batch = model
            .tokenize(&[r.text.as_str()], Some(&r.prompt))
            .expect("tokenize");
        let ids: Vec<u32> = batch.input_ids.iter().map(|&i| i as u32).collect();
        assert_eq!(
            ids, r.input_ids,
            "token ids of {:?} + {:?}",
            r.prompt, r.text
        );
        truncated += usize::from(ids.len() == max_seq);
    }
    assert!(truncated > 0, "one text must reach max_seq");
    for prompt in ["query: ", "passage: "] {
        let group: Vec<&Reference> = refs.iter().filter(|r| r.prompt == prompt).collect();
        let texts: Vec<&str> = group.iter().map(|r| r.text.as_str()).collect();
        for batch_size in [1, 7, 32] {
            let options = EncodeOptions {
                batch_size,
                prompt: Some(prompt.into()),
                ..Default::default()
            };
            let out = model.encode(&texts, &options).expect("encode");
            for (r, got) in group.iter().zip(&out) {
                check(
                    &format!("{prompt}{} (batch {batch_size})", r.text),
                    got,
                    &r.embedding,
                );
            }
        }
        // The generic (padded) forward, as training runs it, without dropout.
        let rows = model.embed(&texts, Some(prompt)).expect("embed");
        let dim = group[0].embedding.len();
        let values: Vec<f32> = rows.into_data().convert::<f32>().into_vec().expect("vec");
        for (r, got) in group.iter().zip(values.chunks(dim)) {
            check(
                &format!("{prompt}{} (padded forward)", r.text),
                got,
                &r.embedding,
            );
        }
    }
}

#[test]
fn shared_tiny_xlm_roberta_matches_sentence_transformers() {
    let Some(shared) = shared("shared_tiny_xlm_roberta_matches_sentence_transformers") else {
        return;
    };
    let dir = shared.join("models/tiny-xlm-roberta-random");
    let refs = references(&shared.join("reference/xlmr_embeddings.jsonl"));
    assert_eq!(refs.len(), 20);
    parity(&dir, &refs, 128);
    // Saved and loaded again: the same embeddings, and the same config.json model_type.
    let model = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("loads");
    let tmp = tempfile::tempdir().expect("tmp");
    model.save(tmp.path().join("m")).expect("save");
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("m/config.json")).expect("config"),
    )
    .expect("json");
    assert_eq!(config["model_type"], "xlm-roberta");
    parity(&tmp.path().join("m"), &refs, 128);
}

/// A fixture directory completed with the shared tokenizer.json.
fn fixture(name: &str, shared: &Path) -> (tempfile::TempDir, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join(name);
    testing::copy_dir(&src, &dir).expect("copy");
    std::fs::copy(
        shared.join("models/tiny-xlm-roberta-random/tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .expect("tokenizer");
    (tmp, dir)
}

#[test]
fn other_xlm_roberta_shapes_and_poolings_match_sentence_transformers() {
    let Some(shared) = shared("other_xlm_roberta_shapes_and_poolings_match_sentence_transformers")
    else {
        return;
    };
    for (name, max_seq) in [("xlmr-cls-3heads", 64), ("roberta-mean-prefixed", 32)] {
        let (_tmp, dir) = fixture(name, &shared);
        let refs = references(&dir.join("reference.jsonl"));
        parity(&dir, &refs, max_seq);
    }
}

#[test]
fn xlm_roberta_bad_configs_are_typed_errors_naming_the_file() {
    let Some(shared) = shared("xlm_roberta_bad_configs_are_typed_errors_naming_the_file") else {
        return;
    };
    let (_tmp, dir) = fixture("xlmr-cls-3heads", &shared);
    let edit = |file: &str, f: &dyn Fn(&mut Value)| {
        let path = dir.join(file);
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let original = v.clone();
        f(&mut v);
        std::fs::write(&path, v.to_string()).expect("write");
        let err = SentenceEncoder::<B>::load(&dir, &Default::default())
            .err()
            .map(|e| e.to_string());
        std::fs::write(&path, original.to_string()).expect("restore");
        err
    };
    // Neither BERT nor (XLM-)RoBERTa.
    let err = edit("config.json", &|v| v["model_type"] = "deberta-v2".into()).expect("refused");
    assert!(
        err.contains("deberta-v2") && err.contains("config.json"),
        "{err}"
    );
    // Positions past max_position_embeddings: max_seq 64 needs 66 rows (they start at pad + 1).
    let err = edit("sentence_bert_config.json", &|v| {
        v["max_seq_length"] = 65.into()
    })
    .expect("refused");
    assert!(
        err.contains("65") && err.contains("sentence_bert_config.json"),
        "{err}"
    );
    let err = edit("config.json", &|v| v["max_position_embeddings"] = 2.into()).expect("refused");
    assert!(
        err.contains("max_position_embeddings") && err.contains("config.json"),
        "{err}"
    );
    // Untouched, it loads.
    SentenceEncoder::<B>::load(&dir, &Default::default()).expect("loads");
}
