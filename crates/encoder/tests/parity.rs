//! Parity with sentence-transformers on all-MiniLM-L6-v2 (needs `EMBEDTUNE_SHARED`).

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::Backend;
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use embedtune_encoder::{EncodeOptions, SentenceEncoder};
use serde_json::Value;

use crate::common::{cosine, max_abs_diff, minilm, shared};

type B = NdArray<f32>;

struct Reference {
    text: String,
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
    pooled: Vec<f32>,
    embedding: Vec<f32>,
}

fn references(shared: &std::path::Path) -> Vec<Reference> {
    let path = shared.join("reference/minilm_embeddings.jsonl");
    let text = std::fs::read_to_string(&path).expect("reference file readable");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("reference line is JSON");
            let ints = |k: &str| -> Vec<u32> {
                v[k].as_array()
                    .expect(k)
                    .iter()
                    .map(|x| x.as_u64().expect("int") as u32)
                    .collect()
            };
            let floats = |k: &str| -> Vec<f32> {
                v[k].as_array()
                    .expect(k)
                    .iter()
                    .map(|x| x.as_f64().expect("float") as f32)
                    .collect()
            };
            Reference {
                text: v["text"].as_str().expect("text").to_string(),
                input_ids: ints("input_ids"),
                token_type_ids: ints("token_type_ids"),
                pooled: floats("pooled"),
                embedding: floats("embedding"),
            }
        })
        .collect()
}

#[test]
fn minilm_matches_sentence_transformers() {
    let Some(dir) = minilm("minilm_matches_sentence_transformers") else {
        return;
    };
    let refs = references(&shared("refs").expect("shared"));
    assert!(
        refs.len() >= 20,
        "expected the 20 reference texts, got {}",
        refs.len()
    );
    let device = Default::default();
    let model = SentenceEncoder::<B>::load(&dir, &device).expect("model loads");
    assert_eq!(
        model.max_seq_length(),
        256,
        "max_seq_length from sentence_bert_config.json"
    );
    assert!(model.normalize());

    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let ids = model.tokenizer().encode_ids(&texts).expect("tokenize");
    for (r, got) in refs.iter().zip(&ids) {
        assert_eq!(got, &r.input_ids, "input_ids differ for {:?}", r.text);
        let batch = model.tokenize(&[r.text.as_str()], None).expect("tokenize");
        let types: Vec<u32> = batch.token_type_ids.iter().map(|&t| t as u32).collect();
        assert_eq!(types, r.token_type_ids);
    }
    // Lengths before truncation: the kept ids' count, past 256 for the texts cut there.
    let lengths = model.tokenizer().token_lengths(&texts).expect("lengths");
    let mut cut = 0;
    for ((r, got), &n) in refs.iter().zip(&ids).zip(&lengths) {
        if n > 256 {
            assert_eq!(got.len(), 256, "{:?}", r.text);
            cut += 1;
        } else {
            assert_eq!(n, got.len(), "{:?}", r.text);
        }
    }
    assert!(
        cut >= 2,
        "the reference has texts past 256 tokens, {cut} found"
    );

    let pooled = model
        .encode(
            &texts,
            &EncodeOptions {
                batch_size: 7,
                normalize: Some(false),
                ..Default::default()
            },
        )
        .expect("encode pooled");
    let emb = model
        .encode(
            &texts,
            &EncodeOptions {
                batch_size: 7,
                ..Default::default()
            },
        )
        .expect("encode");
    let (mut worst_cos, mut worst_diff) = (1.0f64, 0.0f32);
    let (mut worst_cos_p, mut worst_diff_p) = (1.0f64, 0.0f32);
    for (i, r) in refs.iter().enumerate() {
        worst_cos = worst_cos.min(cosine(&emb[i], &r.embedding));
        worst_diff = worst_diff.max(max_abs_diff(&emb[i], &r.embedding));
        worst_cos_p = worst_cos_p.min(cosine(&pooled[i], &r.pooled));
        worst_diff_p = worst_diff_p.max(max_abs_diff(&pooled[i], &r.pooled));
    }
    eprintln!(
        "parity over {} texts: embedding worst cosine {worst_cos:.9}, worst |diff| {worst_diff:.3e}; \
         pooled worst cosine {worst_cos_p:.9}, worst |diff| {worst_diff_p:.3e}",
        refs.len()
    );
    assert!(worst_cos >= 0.99999, "embedding cosine {worst_cos}");
    assert!(worst_diff <= 1e-4, "embedding diff {worst_diff}");
    assert!(worst_cos_p >= 0.99999, "pooled cosine {worst_cos_p}");
    assert!(worst_diff_p <= 1e-4, "pooled diff {worst_diff_p}");
}

#[test]
fn minilm_batch_size_does_not_change_results() {
    let Some(dir) = minilm("minilm_batch_size_does_not_change_results") else {
        return;
    };
    let refs = references(&shared("refs").expect("shared"));
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let model = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("model loads");
    let run = |bs| {
        model
            .encode(
                &texts,
                &EncodeOptions {
                    batch_size: bs,
                    ..Default::default()
                },
            )
            .expect("encode")
    };
    let one = run(1);
    for bs in [7, 32] {
        let other = run(bs);
        let worst = one
            .iter()
            .zip(&other)
            .map(|(a, b)| max_abs_diff(a, b))
            .fold(0.0, f32::max);
        eprintln!("batch size 1 vs {bs}: worst |diff| {worst:.3e}");
        assert!(worst <= 1e-5, "batch size {bs} differs from 1 by {worst}");
    }
}

#[test]
fn minilm_save_and_reload_round_trips() {
    let Some(dir) = minilm("minilm_save_and_reload_round_trips") else {
        return;
    };
    let device = Default::default();
    let model = SentenceEncoder::<B>::load(&dir, &device).expect("model loads");
    let out = tempfile::tempdir().expect("tempdir");
    let saved = out.path().join("saved");
    model.save(&saved).expect("save");
    let reloaded = SentenceEncoder::<B>::load(&saved, &device).expect("reload");
    let texts = [
        "SuperStream contributions are due within 28 days.",
        "a",
        "Zürich",
    ];
    let a = model
        .encode(&texts, &EncodeOptions::default())
        .expect("encode");
    let b = reloaded
        .encode(&texts, &EncodeOptions::default())
        .expect("encode");
    assert_eq!(a, b, "reloaded model gives different embeddings");

    // Same tensor names, shapes and dtypes as the source file.
    let header = |p: &std::path::Path| {
        let bytes = std::fs::read(p).expect("read");
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
        let v: Value = serde_json::from_slice(&bytes[8..8 + n]).expect("header");
        let mut out: Vec<(String, String)> = v
            .as_object()
            .expect("object")
            .iter()
            .filter(|(k, _)| *k != "__metadata__")
            .map(|(k, t)| (k.clone(), format!("{} {}", t["dtype"], t["shape"])))
            .collect();
        out.sort();
        out
    };
    assert_eq!(
        header(&dir.join("model.safetensors")),
        header(&saved.join("model.safetensors"))
    );
    for f in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "vocab.txt",
        "special_tokens_map.json",
    ] {
        assert!(saved.join(f).is_file(), "saved directory lacks {f}");
    }
}

/// The inference path at batch sizes 1, 7 and 32: the reference texts include two of 256 tokens
/// among short ones, so batches of 7 and 32 are mostly padding in a padded layout.
#[test]
fn minilm_parity_at_every_batch_size() {
    let Some(dir) = minilm("minilm_parity_at_every_batch_size") else {
        return;
    };
    let refs = references(&shared("refs").expect("shared"));
    let model = SentenceEncoder::<B>::load(&dir, &Default::default()).expect("model loads");
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    for batch_size in [1, 7, 32] {
        let emb = model
            .encode(
                &texts,
                &EncodeOptions {
                    batch_size,
                    ..Default::default()
                },
            )
            .expect("encode");
        for (e, r) in emb.iter().zip(&refs) {
            let (cos, diff) = (cosine(e, &r.embedding), max_abs_diff(e, &r.embedding));
            assert!(
                cos >= 0.99999 && diff <= 1e-4,
                "batch {batch_size}, {:?}: cosine {cos}, |diff| {diff}",
                r.text
            );
        }
    }
}

/// Per text, the mean and standard deviation over `draws` training-mode forwards of
/// `‖e_train − e_eval‖²` (dropout on: the model's own rates), seeds 5000….
fn dropout_noise(
    model: &SentenceEncoder<Autodiff<B>>,
    texts: &[&str],
    draws: u64,
) -> (Vec<f64>, Vec<f64>) {
    let rows = |t: burn::tensor::Tensor<B, 2>| -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .into_vec()
            .expect("embeddings")
    };
    let e0 = rows(model.valid().embed(texts, None).expect("embed"));
    let dim = e0.len() / texts.len();
    let device = Default::default();
    let mut d2 = vec![Vec::with_capacity(draws as usize); texts.len()];
    for k in 0..draws {
        Autodiff::<B>::seed(&device, 5000 + k);
        let e = rows(model.embed(texts, None).expect("embed").inner());
        for (t, d) in d2.iter_mut().enumerate() {
            let range = t * dim..(t + 1) * dim;
            d.push(
                e[range.clone()]
                    .iter()
                    .zip(&e0[range])
                    .map(|(x, y)| ((x - y) as f64).powi(2))
                    .sum(),
            );
        }
    }
    let n = draws as f64;
    let mean: Vec<f64> = d2.iter().map(|d| d.iter().sum::<f64>() / n).collect();
    let sd = d2
        .iter()
        .zip(&mean)
        .map(|(d, m)| (d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
        .collect();
    (mean, sd)
}

/// Dropout in training mode moves the embeddings as much as sentence-transformers' does. Masks
/// cannot be matched draw for draw across frameworks, so this compares statistics: per text, the
/// mean over 100 training-mode forwards of the squared distance to the inference embedding must
/// be within 5 standard errors of PyTorch's (400 draws; fixture by
/// `scripts/make_dropout_fixture.py`, max_seq_length 64). The same model with attention-probability
/// dropout off must fail that bound, so the comparison can tell a missing dropout site apart.
#[test]
fn dropout_noise_matches_sentence_transformers() {
    let Some(src) = minilm("dropout_noise_matches_sentence_transformers") else {
        return;
    };
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/minilm_dropout_noise.json"),
        )
        .expect("fixture"),
    )
    .expect("fixture json");
    let floats = |k: &str| -> Vec<f64> {
        fixture[k]
            .as_array()
            .expect(k)
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect()
    };
    let (want_mean, want_sd) = (floats("mean_sq_dist"), floats("sd_sq_dist"));
    let want_draws = fixture["draws"].as_f64().expect("draws");
    let texts: Vec<&str> = fixture["texts"]
        .as_array()
        .expect("texts")
        .iter()
        .map(|t| t.as_str().expect("text"))
        .collect();
    let max_len = fixture["max_seq_length"].as_u64().expect("length") as usize;
    let eval: Vec<f32> = fixture["eval_embeddings"]
        .as_array()
        .expect("embeddings")
        .iter()
        .flat_map(|r| r.as_array().expect("row").iter())
        .map(|x| x.as_f64().expect("number") as f32)
        .collect();

    let load = |dir: &std::path::Path| {
        let mut m = SentenceEncoder::<Autodiff<B>>::load(dir, &Default::default())
            .expect("model loads")
            .no_grad();
        m.set_max_seq_length(max_len).expect("length");
        m
    };
    let draws = 100;
    // The draws seed the shared generator: no other test draws from it meanwhile.
    let _serial = crate::common::serial();
    // Largest |z| over the texts: (ours − PyTorch's) in standard errors of the difference.
    let worst_z = |model: &SentenceEncoder<Autodiff<B>>, what: &str| -> f64 {
        let (mean, sd) = dropout_noise(model, &texts, draws);
        let mut worst = 0.0f64;
        for t in 0..texts.len() {
            let se = (want_sd[t].powi(2) / want_draws + sd[t].powi(2) / draws as f64).sqrt();
            let z = (mean[t] - want_mean[t]) / se;
            eprintln!(
                "{what}, text {t}: mean squared distance {:.5} (PyTorch {:.5}), z {z:.2}",
                mean[t], want_mean[t]
            );
            worst = worst.max(z.abs());
        }
        worst
    };

    let model = load(&src);
    let e0: Vec<f32> = model
        .valid()
        .embed(&texts, None)
        .expect("embed")
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("embeddings");
    let diff = max_abs_diff(&e0, &eval);
    assert!(diff < 1e-5, "inference embeddings differ by {diff}");
    let z = worst_z(&model, "ours");
    assert!(
        z < 5.0,
        "dropout noise differs from PyTorch's by {z:.1} standard errors"
    );

    // Without attention-probability dropout the noise is smaller: the bound must catch it.
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("model");
    embedtune_encoder::testing::copy_dir(&src, &dir).expect("copy");
    let cfg_path = dir.join("config.json");
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).expect("config")).expect("json");
    cfg["attention_probs_dropout_prob"] = 0.0.into();
    std::fs::write(&cfg_path, cfg.to_string()).expect("write config");
    let z = worst_z(&load(&dir), "no attention dropout");
    assert!(
        z >= 5.0,
        "without attention dropout the noise is within {z:.1} standard errors"
    );
}
