//! Self-contained tests on a tiny random-weight model: the same code paths as a real model
//! (save → load from a directory, tokenizer, pooling, LoRA), without `../shared`.

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use embedtune_encoder::{
    testing, EncodeOptions, EncoderError, LoraConfig, LoraError, SentenceEncoder, TextTokenizer,
    TransformerConfig,
};
use serde_json::Value;

use crate::common::max_abs_diff;

type B = NdArray<f32>;
type AD = Autodiff<NdArray<f32>>;

const TEXTS: [&str; 5] = [
    "the super guarantee is paid quarterly",
    "a",
    "employers report contributions through superstream, within 28 days of quarter end",
    "",
    "what is a clearing house?",
];

fn tiny_model<Bk: burn::tensor::backend::Backend>() -> SentenceEncoder<Bk> {
    let tokenizer = testing::tiny_tokenizer(48).expect("tokenizer");
    let config = TransformerConfig::tiny_bert(tokenizer.vocab_size(), 32, 2, 4).expect("config");
    let _serial = crate::common::serial();
    SentenceEncoder::random(config, tokenizer, &Default::default()).expect("model")
}

/// A saved tiny model directory.
fn saved_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("tiny");
    tiny_model::<B>().save(&dir).expect("save");
    (tmp, dir)
}

fn encode(model: &SentenceEncoder<B>, batch_size: usize) -> embedtune_encoder::Embeddings {
    model
        .encode(
            &TEXTS,
            &EncodeOptions {
                batch_size,
                ..Default::default()
            },
        )
        .expect("encode")
}

#[test]
fn save_then_load_gives_identical_embeddings() {
    let (_tmp, dir) = saved_dir();
    let model = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("load");
    let again_dir = dir.with_file_name("again");
    model.save(&again_dir).expect("save again");
    let again = SentenceEncoder::<B>::load(&again_dir, &Default::default()).expect("load again");
    assert_eq!(encode(&model, 32), encode(&again, 32));
    let norms: Vec<f32> = encode(&model, 32)
        .iter()
        .map(|v| v.iter().map(|x| x * x).sum::<f32>().sqrt())
        .collect();
    for n in norms {
        assert!(
            (n - 1.0).abs() < 1e-5,
            "normalised embeddings have norm 1, got {n}"
        );
    }
    // Saving over an existing directory replaces it and leaves no staging folders behind.
    model.save(&again_dir).expect("overwrite");
    let leftovers: Vec<_> = std::fs::read_dir(dir.parent().expect("parent"))
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging directories left: {leftovers:?}"
    );
}

#[test]
fn padding_does_not_leak_into_results() {
    let (_tmp, dir) = saved_dir();
    let model = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("load");
    let one = encode(&model, 1);
    for bs in [2, 3, 7, 32] {
        let other = encode(&model, bs);
        let worst = one
            .iter()
            .zip(&other)
            .map(|(a, b)| max_abs_diff(a, b))
            .fold(0.0, f32::max);
        assert!(worst <= 1e-5, "batch size {bs}: {worst}");
    }
}

#[test]
fn prompts_change_embeddings_and_exclusion_masks_prompt_tokens() {
    let (_tmp, dir) = saved_dir();
    let model = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("load");
    let plain = model
        .encode(&["tax file number"], &EncodeOptions::default())
        .expect("plain");
    let opts = EncodeOptions {
        prompt: Some("query: ".into()),
        ..Default::default()
    };
    let prompted = model.encode(&["tax file number"], &opts).expect("prompted");
    assert!(
        max_abs_diff(&plain[0], &prompted[0]) > 1e-4,
        "a prompt must change the embedding"
    );
    let batch = model.tokenize(&["tax"], Some("query: ")).expect("tokenize");
    // [CLS] q u e r y : → 7 tokens with [CLS]; the tiny tokenizer splits words into letters.
    assert_eq!(
        batch.prompt_len,
        1 + model.tokenizer().encode_ids(&["query:"]).expect("ids")[0].len() - 2
    );
}

#[test]
fn bad_model_directories_give_typed_errors() {
    let device = Default::default();
    let load = |d: &Path| SentenceEncoder::<B>::load(d, &device).map(|_| ());

    // Not a directory at all.
    let err = load(Path::new("/nonexistent/model")).unwrap_err();
    assert!(matches!(err, EncoderError::MissingFile { .. }), "{err}");

    // No config.json.
    let (_t1, dir) = saved_dir();
    std::fs::remove_file(dir.join("config.json")).expect("rm");
    let err = load(&dir).unwrap_err();
    assert!(
        matches!(&err, EncoderError::MissingFile { path, .. } if path.ends_with("config.json")),
        "{err}"
    );

    // model_type gpt2.
    let (_t2, dir) = saved_dir();
    edit_json(&dir.join("config.json"), |v| {
        v["model_type"] = "gpt2".into()
    });
    let err = load(&dir).unwrap_err();
    assert!(
        matches!(&err, EncoderError::UnsupportedModelType { model_type, .. } if model_type == "gpt2"),
        "{err}"
    );
    assert!(err.to_string().contains("gpt2"));

    // Truncated weights.
    let (_t3, dir) = saved_dir();
    let w = dir.join("model.safetensors");
    let bytes = std::fs::read(&w).expect("read");
    std::fs::write(&w, &bytes[..bytes.len() / 2]).expect("truncate");
    let err = load(&dir).unwrap_err();
    assert!(
        matches!(&err, EncoderError::Safetensors { path, .. } if path.ends_with("model.safetensors")),
        "{err}"
    );

    // A tensor whose shape disagrees with the config.
    let (_t4, dir) = saved_dir();
    edit_json(&dir.join("config.json"), |v| {
        v["intermediate_size"] = 100.into()
    });
    let err = load(&dir).unwrap_err();
    match &err {
        EncoderError::TensorShape {
            name,
            expected,
            found,
            ..
        } => {
            assert_eq!(name, "encoder.layer.0.intermediate.dense.weight");
            assert_eq!(expected, &vec![100, 32]);
            assert_eq!(found, &vec![128, 32]);
        }
        other => panic!("expected TensorShape, got {other}"),
    }

    // Missing tokenizer.json.
    let (_t5, dir) = saved_dir();
    std::fs::remove_file(dir.join("tokenizer.json")).expect("rm");
    let err = load(&dir).unwrap_err();
    assert!(
        matches!(&err, EncoderError::MissingFile { path, .. } if path.ends_with("tokenizer.json")),
        "{err}"
    );

    // PyTorch weights only.
    let (_t6, dir) = saved_dir();
    std::fs::rename(dir.join("model.safetensors"), dir.join("pytorch_model.bin")).expect("mv");
    let err = load(&dir).unwrap_err();
    assert!(matches!(err, EncoderError::NotSafetensors { .. }), "{err}");
    assert!(err.to_string().contains("safetensors"));

    // A layer fewer in the file than the config says: missing tensors are named.
    let (_t7, dir) = saved_dir();
    edit_json(&dir.join("config.json"), |v| {
        v["num_hidden_layers"] = 3.into()
    });
    let err = load(&dir).unwrap_err();
    match &err {
        EncoderError::MissingTensors { names, .. } => {
            assert!(
                names.contains(&"encoder.layer.2.attention.self.query.weight".to_string()),
                "{names:?}"
            )
        }
        other => panic!("expected MissingTensors, got {other}"),
    }

    // A layer more in the file than the config says: unexpected tensors are named.
    let (_t8, dir) = saved_dir();
    edit_json(&dir.join("config.json"), |v| {
        v["num_hidden_layers"] = 1.into()
    });
    let err = load(&dir).unwrap_err();
    assert!(
        matches!(&err, EncoderError::UnexpectedTensors { names, .. } if names.iter().all(|n| n.starts_with("encoder.layer.1."))),
        "{err}"
    );

    // Malformed JSON names the file.
    let (_t9, dir) = saved_dir();
    std::fs::write(dir.join("modules.json"), "[{").expect("write");
    let err = load(&dir).unwrap_err();
    assert!(
        matches!(&err, EncoderError::Json { path, .. } if path.ends_with("modules.json")),
        "{err}"
    );
}

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).expect("json")).expect("write");
}

#[test]
fn legacy_and_plain_transformers_directories_load() {
    // 6.x style pooling config ("pooling_mode": "cls") and modules.json type names.
    let (_t, dir) = saved_dir();
    std::fs::write(
        dir.join("1_Pooling/config.json"),
        r#"{"embedding_dimension": 32, "pooling_mode": "cls", "include_prompt": true}"#,
    )
    .expect("write");
    edit_json(&dir.join("modules.json"), |v| {
        v[0]["type"] = "sentence_transformers.base.modules.transformer.Transformer".into();
        v[1]["type"] = "sentence_transformers.sentence_transformer.modules.pooling.Pooling".into();
        v[2]["type"] = "sentence_transformers.base.modules.normalize.Normalize".into();
    });
    // 6.x keeps max_seq_length in tokenizer_config.json.
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        r#"{"transformer_task": "feature-extraction"}"#,
    )
    .expect("write");
    edit_json(&dir.join("tokenizer_config.json"), |v| {
        v["model_max_length"] = 40.into()
    });
    let model = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("6.x layout loads");
    assert_eq!(
        model.pooling().modes,
        vec![embedtune_encoder::PoolingMode::Cls]
    );
    assert_eq!(model.max_seq_length(), 40);

    // A plain transformers directory: no modules.json → mean pooling, no normalisation.
    let (_t2, dir) = saved_dir();
    for f in [
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
    ] {
        std::fs::remove_file(dir.join(f)).expect("rm");
    }
    std::fs::remove_dir_all(dir.join("1_Pooling")).expect("rm");
    let plain = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("plain dir loads");
    assert!(!plain.normalize());
    assert_eq!(
        plain.pooling().modes,
        vec![embedtune_encoder::PoolingMode::Mean]
    );
    let v = plain
        .encode(&["abc"], &EncodeOptions::default())
        .expect("encode");
    let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() > 1e-3,
        "no normalisation expected, norm {norm}"
    );
}

#[test]
fn lora_starts_as_identity_trains_only_adapters_and_merges() {
    let model = tiny_model::<AD>();
    // Its training steps draw dropout masks from the shared generator.
    let _serial = crate::common::serial();
    let base_out = model
        .valid()
        .encode(&TEXTS, &EncodeOptions::default())
        .expect("encode");
    let config = LoraConfig {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        ..LoraConfig::default()
    };
    let lora = model.clone().with_lora(config.clone(), 7).expect("attach");
    let (trainable, total) = lora.parameter_counts();
    // Per layer: q, k, v, attention.output (32→32): 4 × (32·4 + 4·32); intermediate 32→128 and
    // output 128→32: 2 × (32·4 + 4·128).
    assert_eq!(
        trainable,
        2 * (4 * (32 * 4 + 4 * 32) + 2 * (32 * 4 + 4 * 128))
    );
    assert_eq!(total, model.bert.num_params() + trainable);
    let lora_out = lora
        .valid()
        .encode(&TEXTS, &EncodeOptions::default())
        .expect("encode");
    assert_eq!(
        base_out, lora_out,
        "B starts at zero: the model is unchanged at step 0"
    );

    // A few optimiser steps: only adapter tensors change.
    let before = snapshot(&lora.bert);
    let mut optim = AdamWConfig::new().init::<AD, SentenceEncoder<AD>>();
    let mut model = lora;
    for _ in 0..3 {
        let emb = model.embed(&TEXTS[..3], None).expect("embed");
        let loss = emb.clone().matmul(emb.transpose()).sum().neg();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    let after = snapshot(&model.bert);
    let mut changed = Vec::new();
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        if a != b {
            changed.push(name.clone());
        }
    }
    assert!(!changed.is_empty(), "training changed nothing");
    assert!(
        changed.iter().all(|n| n.contains(".lora.")),
        "base weights changed: {changed:?}"
    );

    // Merge: same outputs within 1e-5.
    let trained = model.valid();
    let unmerged = trained
        .encode(&TEXTS, &EncodeOptions::default())
        .expect("encode");
    let merged = trained.clone().merge_lora();
    assert!(merged.lora_config().is_none());
    let merged_out = merged
        .encode(&TEXTS, &EncodeOptions::default())
        .expect("encode");
    let worst = unmerged
        .iter()
        .zip(&merged_out)
        .map(|(a, b)| max_abs_diff(a, b))
        .fold(0.0, f32::max);
    assert!(worst <= 1e-5, "merged differs by {worst}");
    assert!(
        max_abs_diff(&unmerged[0], &base_out[0]) > 1e-6,
        "adapters had an effect"
    );

    // Adapter save → load on the untouched base → same outputs.
    let tmp = tempfile::tempdir().expect("tempdir");
    trained
        .save_lora_adapter(tmp.path().join("adapter"))
        .expect("save adapter");
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("adapter/adapter_config.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(cfg["peft_type"], "LORA");
    assert_eq!(cfg["r"], 4);
    let reloaded = model_base_valid(&model)
        .load_lora_adapter(tmp.path().join("adapter"))
        .expect("load adapter");
    let reloaded_out = reloaded
        .encode(&TEXTS, &EncodeOptions::default())
        .expect("encode");
    let worst = unmerged
        .iter()
        .zip(&reloaded_out)
        .map(|(a, b)| max_abs_diff(a, b))
        .fold(0.0, f32::max);
    assert!(worst <= 1e-6, "reloaded adapter differs by {worst}");
    let names = safetensor_names(&tmp.path().join("adapter/adapter_model.safetensors"));
    assert!(names.contains(
        &"base_model.model.encoder.layer.0.attention.self.query.lora_A.weight".to_string()
    ));
    assert!(
        names.contains(&"base_model.model.encoder.layer.1.output.dense.lora_B.weight".to_string())
    );

    // The merged model saves in the sentence-transformers layout and loads back the same.
    let out = tmp.path().join("merged");
    merged.save(&out).expect("save merged");
    let loaded = SentenceEncoder::<B>::load(&out, &Default::default()).expect("load merged");
    assert_eq!(
        loaded
            .encode(&TEXTS, &EncodeOptions::default())
            .expect("encode"),
        merged_out
    );
}

/// The trained model's base weights without adapters (inference copy).
fn model_base_valid(model: &SentenceEncoder<AD>) -> SentenceEncoder<B> {
    model.valid().remove_lora()
}

fn snapshot<Bk: burn::tensor::backend::Backend>(
    bert: &embedtune_encoder::Bert<Bk>,
) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for (name, d) in bert.dense_layers() {
        out.push((
            format!("{name}.weight"),
            d.weight
                .val()
                .into_data()
                .convert::<f32>()
                .into_vec()
                .expect("vec"),
        ));
        if let Some(a) = &d.lora {
            out.push((
                format!("{name}.lora.a"),
                a.a.val()
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .expect("vec"),
            ));
            out.push((
                format!("{name}.lora.b"),
                a.b.val()
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .expect("vec"),
            ));
        }
    }
    let e = &bert.embeddings.word.weight;
    out.push((
        "word".into(),
        e.val()
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("vec"),
    ));
    out
}

fn safetensor_names(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    st.names().into_iter().map(String::from).collect()
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let model = tiny_model::<B>();
    let err = model
        .encode(
            &["x"],
            &EncodeOptions {
                batch_size: 0,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(
        err,
        EncoderError::InvalidInput {
            name: "batch_size",
            ..
        }
    ));
    assert!(model
        .encode::<&str>(&[], &EncodeOptions::default())
        .expect("empty ok")
        .is_empty());
    assert!(matches!(
        model.tokenize(&[], None),
        Err(EncoderError::InvalidInput { .. })
    ));
    let mut m = model.clone();
    assert!(m.set_max_seq_length(10_000).is_err());
    let bad = LoraConfig {
        r: 0,
        ..LoraConfig::default()
    };
    assert!(matches!(
        model.clone().with_lora(bad, 0),
        Err(EncoderError::Lora {
            source: LoraError::ZeroRank,
            ..
        })
    ));
    let nothing = LoraConfig {
        target_modules: vec!["nonexistent".into()],
        ..LoraConfig::default()
    };
    assert!(matches!(
        model.with_lora(nothing, 0),
        Err(EncoderError::Lora {
            source: LoraError::NoMatch(_),
            ..
        })
    ));
}

/// The CPU inference path of `encode` (texts packed without padding, fused attention) gives
/// what the generic padded forward gives, for every pooling mode, with and without a prompt
/// that pooling excludes, on a padding-heavy batch (one text at max_seq among short ones and an
/// empty one) and at batch sizes 1, 7 and 32.
#[test]
fn inference_path_matches_generic_forward_for_every_pooling() {
    let long = "superannuation guarantee contributions ".repeat(20);
    let mut texts: Vec<&str> = TEXTS.to_vec();
    texts.push(&long);
    texts.extend(["b", "ab", "clearing house", "tfn"]);
    let poolings = [
        r#""pooling_mode_mean_tokens": true"#,
        r#""pooling_mode_cls_token": true"#,
        r#""pooling_mode_max_tokens": true"#,
        r#""pooling_mode_mean_sqrt_len_tokens": true"#,
        r#""pooling_mode_weightedmean_tokens": true"#,
        r#""pooling_mode_lasttoken": true"#,
        r#""pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": true"#,
    ];
    let (_tmp, dir) = saved_dir();
    for modes in poolings {
        for include_prompt in [true, false] {
            std::fs::write(
                dir.join("1_Pooling/config.json"),
                format!(
                    r#"{{"word_embedding_dimension": 32, {modes}, "include_prompt": {include_prompt}}}"#
                ),
            )
            .expect("write");
            let model = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("load");
            for prompt in [None, Some("query: ")] {
                let generic = model.embed(&texts, prompt).expect("generic forward");
                let dim = generic.dims()[1];
                let generic = generic.into_data().to_vec::<f32>().expect("f32");
                for batch_size in [1, 7, 32] {
                    let options = EncodeOptions {
                        batch_size,
                        prompt: prompt.map(str::to_string),
                        ..Default::default()
                    };
                    let fast = model.encode(&texts, &options).expect("encode");
                    for (i, (f, g)) in fast.iter().zip(generic.chunks(dim)).enumerate() {
                        let diff = max_abs_diff(f, g);
                        assert!(
                            diff <= 1e-5,
                            "{modes}, include_prompt {include_prompt}, prompt {prompt:?}, \
                             batch {batch_size}, text {i}: |diff| {diff}"
                        );
                    }
                }
            }
        }
    }
}

/// A tokenizer that produces ids past the model's word embeddings is refused when the model is
/// made or loaded, naming both files (the issue's case: an `added_tokens` entry with
/// id = `vocab_size`, which used to panic inside burn-ndarray at the first text holding it).
#[test]
fn tokenizer_ids_past_the_vocabulary_are_refused_at_load() {
    let tokenizer = testing::tiny_tokenizer(48).expect("tokenizer");
    let config =
        TransformerConfig::tiny_bert(tokenizer.vocab_size() - 5, 32, 2, 4).expect("config");
    let err = SentenceEncoder::<B>::random(config, tokenizer, &Default::default())
        .expect_err("a model smaller than its tokenizer");
    assert!(matches!(err, EncoderError::VocabMismatch { .. }), "{err}");

    let (_tmp, dir) = saved_dir();
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).expect("read"))
            .expect("json");
    let vocab_size = config["vocab_size"].as_u64().expect("vocab_size");
    edit_json(&dir.join("tokenizer.json"), |v| {
        v["added_tokens"]
            .as_array_mut()
            .expect("added_tokens")
            .push(
                serde_json::json!({"id": vocab_size, "content": "[NEW]", "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true}),
            );
    });
    let err = SentenceEncoder::<B>::load(&dir, &Default::default()).expect_err("mismatch");
    match &err {
        EncoderError::VocabMismatch {
            tokenizer,
            config,
            max_id,
            vocab_size: n,
        } => {
            assert!(tokenizer.ends_with("tokenizer.json"), "{err}");
            assert!(config.ends_with("config.json"), "{err}");
            assert_eq!((*max_id as u64, *n as u64), (vocab_size, vocab_size));
        }
        other => panic!("expected VocabMismatch, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("tokenizer.json") && message.contains("config.json"),
        "{message}"
    );
}

/// Byte offset (in the file) and length of tensor `name`'s data in a safetensors file.
fn tensor_span(bytes: &[u8], name: &str) -> (usize, usize) {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).expect("header");
    let offsets = &header[name]["data_offsets"];
    let (a, b) = (
        offsets[0].as_u64().expect("begin") as usize,
        offsets[1].as_u64().expect("end") as usize,
    );
    (8 + n + a, b - a)
}

#[test]
fn nan_in_the_weights_is_refused_naming_the_tensor() {
    let (_tmp, dir) = saved_dir();
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).expect("read");
    let name = "encoder.layer.1.attention.self.key.weight";
    let (at, _) = tensor_span(&bytes, name);
    bytes[at + 4 * 7..at + 4 * 8].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let err = SentenceEncoder::<B>::load(&dir, &Default::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(name) && text.contains("model.safetensors"),
        "{text}"
    );
}

/// `chattr +i` on `dir` (binds root too) for as long as it lives; `None` where the file
/// system does not allow it.
struct Immutable(PathBuf);

impl Immutable {
    fn new(dir: &Path) -> Option<Self> {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// Every file under `dir` with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("ls") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            let bytes = std::fs::read(&p).expect("read");
            out.push((p, bytes));
        }
    }
    out.sort();
    out
}

#[test]
fn saving_into_a_read_only_directory_is_an_error_and_keeps_the_old_model() {
    let (tmp, dir) = saved_dir();
    let before = files_under(tmp.path());
    let Some(_lock) = Immutable::new(tmp.path()) else {
        eprintln!("skipped: chattr +i is not available here");
        return;
    };
    let model = tiny_model::<B>();
    let err = model.save(&dir).unwrap_err();
    assert!(
        matches!(&err, EncoderError::Io { path, .. } if path.starts_with(tmp.path())),
        "{err}"
    );
    let err = model.save_into(&dir).unwrap_err();
    assert!(matches!(&err, EncoderError::Io { .. }), "{err}");
    drop(_lock);
    assert_eq!(
        files_under(tmp.path()),
        before,
        "the old model is untouched"
    );
}

/// A file system that fills up during a save (a small tmpfs: the first save fits, the second
/// needs room for the staged copy beside the old one and runs out).
#[test]
fn a_disk_full_during_a_save_keeps_the_old_model_and_leaves_no_staging() {
    let (_src, src_dir) = saved_dir();
    let size: u64 = files_under(&src_dir)
        .iter()
        .map(|(_, b)| b.len() as u64)
        .sum();
    let mount = tempfile::tempdir().expect("tmp");
    let limit = size + size / 2 + 64 * 1024;
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={limit}")])
        .arg("tmpfs")
        .arg(mount.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a small tmpfs here");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.path().to_path_buf());
    let dir = mount.path().join("model");
    let first = tiny_model::<B>();
    first.save(&dir).expect("the first save fits");
    let before = files_under(mount.path());
    let err = tiny_model::<B>().save(&dir).unwrap_err();
    assert!(
        matches!(&err, EncoderError::Io { source, .. } if source.raw_os_error() == Some(28)),
        "expected ENOSPC, got {err}"
    );
    assert_eq!(
        files_under(mount.path()),
        before,
        "old model intact, no staging"
    );
    let loaded = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("loads");
    let diff = max_abs_diff(encode(&loaded, 2).as_slice(), encode(&first, 2).as_slice());
    assert!(
        diff <= 1e-5,
        "the loaded model is the first one saved: {diff}"
    );
}

/// Every parameter path of the module tree, as burn's visitor reports it.
fn parameter_paths<Bk: burn::tensor::backend::Backend>(model: &SentenceEncoder<Bk>) -> Vec<String> {
    struct Paths {
        path: Vec<String>,
        out: Vec<String>,
    }
    impl<Bk: burn::tensor::backend::Backend> burn::module::ModuleVisitor<Bk> for Paths {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(
            &mut self,
            _param: &burn::module::Param<burn::tensor::Tensor<Bk, D>>,
        ) {
            self.out.push(self.path.join("."));
        }
    }
    let mut v = Paths {
        path: Vec::new(),
        out: Vec::new(),
    };
    model.visit(&mut v);
    v.out
}

/// One source of truth for tensor names: every parameter of the module tree (with and without
/// adapters) has a Hugging Face name from `names::hf_param_name`, those names are the ones a
/// save writes (`model.safetensors`) and an adapter save writes (`adapter_model.safetensors`,
/// under PEFT's prefix), and LoRA's target matching sees the same module names.
#[test]
fn parameter_paths_saved_tensors_and_adapter_names_agree() {
    use embedtune_encoder::names::{self, hf_param_name, Linear};
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tiny_model::<B>();
    let mapped: Vec<String> = parameter_paths(&model)
        .iter()
        .map(|p| hf_param_name(p).unwrap_or_else(|| panic!("{p} has no name")))
        .collect();
    let mut sorted = mapped.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), mapped.len(), "names are unique");
    model.save(tmp.path().join("m")).expect("save");
    let mut saved = safetensor_names(&tmp.path().join("m/model.safetensors"));
    saved.retain(|n| !n.starts_with("pooler.") && n != "embeddings.position_ids");
    saved.sort();
    assert_eq!(saved, sorted);
    // 2 layers × 6 linear layers, each weight + bias; 2 LayerNorms per layer; embeddings.
    assert_eq!(sorted.len(), 2 * (6 * 2 + 2 * 2) + 3 + 2);

    let lora = LoraConfig {
        r: 2,
        target_modules: vec!["query".into(), "output.dense".into()],
        ..Default::default()
    };
    let with = model.with_lora(lora, 3).expect("lora");
    let adapter_names: Vec<String> = parameter_paths(&with)
        .iter()
        .filter(|p| p.contains(".lora."))
        .map(|p| hf_param_name(p).unwrap_or_else(|| panic!("{p} has no name")))
        .collect();
    with.save_lora_adapter(tmp.path().join("a"))
        .expect("save adapter");
    let mut stored = safetensor_names(&tmp.path().join("a/adapter_model.safetensors"));
    stored.sort();
    let mut expected: Vec<String> = adapter_names
        .iter()
        .map(|n| format!("{}{n}", names::PEFT_PREFIX))
        .collect();
    expected.sort();
    assert_eq!(stored, expected);
    // `query`, the attention's `output.dense` and the feed-forward `output.dense`: 3 per layer.
    assert_eq!(expected.len(), 2 * 3 * 2);
    for (i, which) in [
        (0, Linear::Query),
        (1, Linear::AttentionOutput),
        (1, Linear::Output),
    ] {
        let a = format!(
            "{}{}.lora_A.weight",
            names::PEFT_PREFIX,
            names::linear(i, which)
        );
        assert!(expected.contains(&a), "{a}");
    }
}

// The tokenizer on its own. The tiny tokenizer's ids: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3,
// letters a–z 5–30, continuations ##a–##z 41–66; it splits every word into letters.

/// The tiny tokenizer's `tokenizer.json` with `edit` applied, and the tokenizer it makes.
fn tiny_tokenizer_edited(edit: impl FnOnce(&mut Value)) -> tokenizers::Tokenizer {
    let text = testing::tiny_tokenizer(16)
        .expect("tokenizer")
        .inner()
        .to_string(false)
        .expect("serialise");
    let mut spec: Value = serde_json::from_str(&text).expect("json");
    edit(&mut spec);
    spec.to_string().parse().expect("tokenizer")
}

/// The truncation and padding stored in `tokenizer.json` are not sentence-transformers': they
/// are replaced (no cut at 3 tokens, no fixed padding to 20, the given pad id rather than the
/// file's).
#[test]
fn tokenizer_ignores_the_stored_truncation_and_padding() {
    let stored = tiny_tokenizer_edited(|spec| {
        spec["truncation"] = serde_json::json!(
            {"direction": "Right", "max_length": 3, "strategy": "LongestFirst", "stride": 0});
        spec["padding"] = serde_json::json!(
            {"strategy": {"Fixed": 20}, "direction": "Right", "pad_to_multiple_of": null,
             "pad_id": 77, "pad_type_id": 1, "pad_token": "."});
    });
    let tok = TextTokenizer::new(stored, 128, 0, "<stored settings>".into()).expect("tokenizer");
    let b = tok.batch(&["ab cd", "x"], None).expect("batch");
    assert_eq!((b.batch, b.seq_len, b.prompt_len), (2, 6, 0));
    assert_eq!(&b.input_ids[..6], &[2, 5, 42, 7, 44, 3]);
    assert_eq!(&b.input_ids[6..], &[2, 28, 3, 0, 0, 0]);
    assert_eq!(&b.attention_mask[6..], &[1, 1, 1, 0, 0, 0]);
    assert!(b.token_type_ids.iter().all(|&t| t == 0));
    assert_eq!(b.lengths(), [6, 3]);
    assert_eq!(tok.token_lengths(&["ab cd", "x"]).expect("lengths"), [6, 3]);
}

/// `token_lengths` counts what `encode_ids` keeps for a text that fits, and the whole text
/// (past max_seq_len) for one that is cut; `[CLS]` and `[SEP]` stay inside max_seq_len.
#[test]
fn token_lengths_count_before_truncation() {
    let tok = testing::tiny_tokenizer(5).expect("tokenizer");
    let short = ["ab", "x", "", "a, b"];
    let ids = tok.encode_ids(&short).expect("ids");
    let lengths = tok.token_lengths(&short).expect("lengths");
    assert_eq!(lengths, ids.iter().map(Vec::len).collect::<Vec<_>>());
    assert_eq!(lengths, [4, 3, 2, 5]);
    // "ab cd ef": [CLS] a ##b c ##d e ##f [SEP], 8 tokens, cut to 5.
    let ids = tok.encode_ids(&["ab cd ef", "x"]).expect("ids");
    assert_eq!(ids[0], [2, 5, 42, 7, 3]);
    assert_eq!(
        tok.token_lengths(&["ab cd ef", "x"]).expect("lengths"),
        [8, 3]
    );
    let long = "superannuation guarantee ".repeat(40);
    let ids = tok.encode_ids(&[long.as_str()]).expect("ids");
    assert_eq!(ids[0].len(), tok.max_seq_len());
    assert_eq!((ids[0][0], ids[0][4]), (2, 3));
    let full = tok.token_lengths(&[long.as_str()]).expect("lengths")[0];
    assert_eq!(full, 2 + 40 * (14 + 9));
    assert!(full > tok.max_seq_len());
    // The model's tokenizer is the same.
    let model = tiny_model::<B>();
    let lengths = model
        .tokenizer()
        .token_lengths(&[long.as_str(), "ab"])
        .expect("lengths");
    assert_eq!(lengths, [full, 4]);
    assert_eq!(
        model
            .tokenize(&[long.as_str()], None)
            .expect("batch")
            .seq_len,
        model.max_seq_length()
    );
    assert!(tok.token_lengths(&[]).expect("no texts").is_empty());
}

/// Both `encode_ids` and `token_lengths` lowercase when the model does
/// (`do_lower_case`), on a tokenizer that does not lowercase by itself.
#[test]
fn token_lengths_lowercase_as_encode_ids() {
    let cased = tiny_tokenizer_edited(|spec| spec["normalizer"]["lowercase"] = false.into());
    let tok = TextTokenizer::new(cased, 64, 0, "<cased>".into()).expect("tokenizer");
    // Upper case is not in the vocabulary: one [UNK] per word.
    assert_eq!(tok.encode_ids(&["AB CD"]).expect("ids")[0], [2, 1, 1, 3]);
    assert_eq!(tok.token_lengths(&["AB CD"]).expect("lengths"), [4]);
    let tok = tok.with_lowercase(true);
    assert_eq!(
        tok.encode_ids(&["AB CD"]).expect("ids")[0],
        [2, 5, 42, 7, 44, 3]
    );
    assert_eq!(tok.token_lengths(&["AB CD"]).expect("lengths"), [6]);
}

/// Truncation is `tokenizers`' own `longest_first` at max_seq_len, special tokens included, at
/// every length; `token_lengths` is the untruncated length.
#[test]
fn same_ids_as_tokenizers_longest_first_truncation() {
    let texts = [
        "the cat sat on the mat",
        "a big red dog ran on the mat, the cats sat",
        "dogs",
        "the sitting cat",
        "zebra unknown words here",
    ];
    let mut untruncated = tiny_tokenizer_edited(|_| ());
    untruncated.with_truncation(None).expect("no truncation");
    for max in [3, 4, 6, 9, 64] {
        let tok = testing::tiny_tokenizer(max).expect("tokenizer");
        let mut reference = tiny_tokenizer_edited(|_| ());
        reference.with_padding(None);
        reference
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max,
                strategy: tokenizers::TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .expect("truncation");
        let ids = tok.encode_ids(&texts).expect("ids");
        let lengths = tok.token_lengths(&texts).expect("lengths");
        for (row, text) in texts.iter().enumerate() {
            let want = reference.encode(*text, true).expect("encode");
            assert_eq!(ids[row], want.get_ids(), "max {max}: {text}");
            assert!(ids[row].len() <= max);
            let whole = untruncated.encode(*text, true).expect("encode");
            assert_eq!(lengths[row], whole.len(), "max {max}: {text}");
        }
    }
}

/// A large batch (tokenised in parallel) gives each text what it gives alone.
#[test]
fn large_batch_equals_one_by_one() {
    let tok = testing::tiny_tokenizer(12).expect("tokenizer");
    let words = ["the", "cat", "sat", "on", "mat", "dog", "ran", "big"];
    let texts: Vec<String> = (0..500)
        .map(|i| {
            (0..(i % 17 + 1))
                .map(|j| words[(i * 7 + j * 3) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let ids = tok.encode_ids(&refs).expect("ids");
    let lengths = tok.token_lengths(&refs).expect("lengths");
    let batch = tok.batch(&refs, None).expect("batch");
    assert_eq!(
        batch.lengths(),
        ids.iter().map(Vec::len).collect::<Vec<_>>()
    );
    for (row, text) in refs.iter().enumerate() {
        assert_eq!(ids[row], tok.encode_ids(&[text]).expect("one")[0]);
        assert_eq!(lengths[row], tok.token_lengths(&[text]).expect("one")[0]);
        let at = row * batch.seq_len;
        let padded: Vec<u32> = batch.input_ids[at..at + ids[row].len()]
            .iter()
            .map(|&i| i as u32)
            .collect();
        assert_eq!(padded, ids[row]);
    }
}

/// A batch becomes `[batch, seq_len]` integer tensors holding the same values.
#[test]
fn token_batch_to_tensors_on_a_burn_backend() {
    let tok = testing::tiny_tokenizer(16).expect("tokenizer");
    let b = tok
        .batch(&["the cat", "a big red dog ran"], None)
        .expect("batch");
    let (ids, mask, types) = b.to_tensors::<B>(&Default::default());
    for t in [&ids, &mask, &types] {
        assert_eq!(t.dims(), [2, b.seq_len]);
    }
    let values = |t: burn::tensor::Tensor<B, 2, burn::tensor::Int>| -> Vec<i64> {
        t.into_data().convert::<i64>().to_vec().expect("values")
    };
    assert_eq!(values(ids), b.input_ids);
    assert_eq!(values(mask), b.attention_mask);
    assert_eq!(values(types), b.token_type_ids);
}

/// Settings the tokenizer cannot honour and a missing file are typed errors.
#[test]
fn tokenizer_settings_and_files_are_checked() {
    let tok = testing::tiny_tokenizer(8).expect("tokenizer");
    let err = TextTokenizer::new(tok.inner().clone(), 1, 0, "<tiny>".into()).unwrap_err();
    assert!(
        matches!(&err, EncoderError::Tokenizer { reason, .. } if reason.contains("max_seq_len 1")),
        "{err}"
    );
    let mut again = tok.clone();
    assert!(matches!(
        again.set_max_seq_len(1),
        Err(EncoderError::Tokenizer { .. })
    ));
    assert_eq!(
        again.max_seq_len(),
        8,
        "a refused length leaves the tokenizer as it was"
    );
    let err = TextTokenizer::from_file(Path::new("/nonexistent/tokenizer.json"), 8, 0).unwrap_err();
    assert!(
        matches!(&err, EncoderError::MissingFile { path, .. } if path.ends_with("tokenizer.json")),
        "{err}"
    );
}

#[test]
fn jsonl_files_encode_in_order_and_bad_lines_name_file_and_line() {
    let model = tiny_model::<B>();
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("texts.jsonl");
    let mut lines = String::from("\u{feff}");
    for t in TEXTS {
        lines.push_str(&serde_json::json!({ "text": t }).to_string());
        lines.push_str("\n\n");
    }
    std::fs::write(&input, &lines).expect("write");
    let output = dir.path().join("out/vectors.jsonl");
    let options = EncodeOptions::default();
    // (TEXTS has an empty text: embedded as `[CLS] [SEP]` when allowed)
    let done = model
        .encode_jsonl(&input, &output, &options, true)
        .expect("encode_jsonl");
    assert_eq!((done.texts, done.dim), (TEXTS.len(), model.dim()));
    let direct = model.encode(&TEXTS, &options).expect("encode");
    let written: Vec<Vec<f32>> = std::fs::read_to_string(&output)
        .expect("read output")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json");
            serde_json::from_value(v["embedding"].clone()).expect("floats")
        })
        .collect();
    assert_eq!(written, direct.to_rows());

    let bad = [
        (
            "{\"text\": \"ok\"}\n{\"text\": 3}\n",
            2,
            "\"text\" is not a string",
        ),
        ("{\"txt\": \"a\"}\n", 1, "no \"text\" field"),
        ("{\"text\": \"a\"}\n\n{oops\n", 3, "invalid JSON"),
        ("{\"text\": \"a\"}\n{\"text\": \"  \"}\n", 2, "empty text"),
    ];
    for (content, line, what) in bad {
        std::fs::write(&input, content).expect("write");
        let err = model
            .encode_jsonl(&input, &output, &options, false)
            .unwrap_err();
        assert!(
            matches!(&err, EncoderError::Input { line: l, .. } if *l == line),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}:{line}: ", input.display())),
            "{message}"
        );
        assert!(message.contains(what), "{message}");
    }
    // whitespace-only texts are embedded when allowed; a missing file is an I/O error
    assert_eq!(
        embedtune_encoder::read_texts(&input, true).expect("allowed"),
        ["a", "  "]
    );
    let err = embedtune_encoder::read_texts(&dir.path().join("missing.jsonl"), false).unwrap_err();
    assert!(matches!(err, EncoderError::Io { .. }), "{err}");
}
