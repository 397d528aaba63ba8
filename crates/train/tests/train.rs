//! Training-loop tests on a tiny random-weight model (no shared assets needed).

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{AutodiffModule, Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use embedtune_data::Example;
use embedtune_encoder::{testing, EncodeOptions, LoraConfig, SentenceEncoder, TransformerConfig};
use embedtune_train::checkpoint::{self, Checkpoint, Fingerprints};
use embedtune_train::mining::{
    mine_hard_negatives, select_negatives, write_grouped_jsonl, MiningConfig, MiningOutput,
    Sampling,
};
use embedtune_train::{
    clip_grad_norm, kmeans, AdamW, AdamWConfig, CheckpointFault, Evaluate, GistMargin,
    LinearSchedule, LossConfig, Remine, SettingChange, TrainConfig, TrainError, Trainer,
};

mod crash;
mod mixed_script;

type AD = Autodiff<NdArray<f32>>;
type I = NdArray<f32>;

/// burn-ndarray's random generator is global to the process: tests that draw from it (model
/// initialisation, dropout) run one at a time so that each sees only its own draws.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn tiny_model() -> SentenceEncoder<AD> {
    let tokenizer = testing::tiny_tokenizer(32).expect("tokenizer");
    let config = TransformerConfig::tiny_bert(tokenizer.vocab_size(), 32, 2, 4).expect("config");
    AD::seed(&Default::default(), 1);
    SentenceEncoder::random(config, tokenizer, &Default::default()).expect("model")
}

/// 24 (question, answer, wrong answer) triples over a made-up vocabulary of topics.
fn examples() -> Vec<Example> {
    let topics = [
        "tax",
        "rollover",
        "clearing",
        "audit",
        "pension",
        "insurance",
        "cap",
        "deadline",
        "payroll",
        "trustee",
        "employer",
        "fund",
    ];
    let mut out = Vec::new();
    for (i, t) in topics.iter().enumerate() {
        let other = topics[(i + 5) % topics.len()];
        for v in 0..2 {
            out.push(Example {
                anchor: format!("what about the {t} rule {v}"),
                positive: format!("the {t} rule says {t} things {v}"),
                negatives: vec![format!("the {other} rule says {other} things {v}")],
            });
        }
    }
    out
}

fn settings() -> TrainConfig {
    TrainConfig {
        batch_size: 8,
        lr: 1e-3,
        epochs: 2,
        progress_bar: false,
        ..Default::default()
    }
}

/// Optimiser steps of a run of `cfg` over `data`: every batch the sampler yields in each epoch
/// (the no-duplicates sampler yields more than `num_batches` on `examples()`, whose negatives
/// are other examples' positives).
fn expected_steps(cfg: &TrainConfig, data: &[Example]) -> u64 {
    let sampler = embedtune_data::BatchSampler::new(cfg.batch_size)
        .expect("sampler")
        .seed(cfg.seed)
        .no_duplicates(cfg.no_duplicates);
    (0..cfg.epochs as u64)
        .map(|e| sampler.batches(data, e).len().div_ceil(cfg.grad_accum) as u64)
        .sum()
}

fn weights(model: &SentenceEncoder<AD>) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    for (_, d) in model.bert.dense_layers() {
        out.push(
            d.weight
                .val()
                .into_data()
                .convert::<f32>()
                .into_vec()
                .expect("vec"),
        );
        if let Some(a) = &d.lora {
            out.push(
                a.a.val()
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .expect("vec"),
            );
            out.push(
                a.b.val()
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .expect("vec"),
            );
        }
    }
    out.push(
        model
            .bert
            .embeddings
            .word
            .weight
            .val()
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("vec"),
    );
    out
}

#[test]
fn loss_goes_down() {
    let _serial = serial();
    let out = tempfile::tempdir().expect("tmp");
    let cfg = TrainConfig {
        epochs: 6,
        ..settings()
    };
    let steps = expected_steps(&cfg, &examples());
    assert!(
        steps > 18,
        "6 epochs of at least 3 batches, some with extra ones"
    );
    let outcome = Trainer::<AD>::new(cfg, out.path())
        .expect("trainer")
        .train(tiny_model(), &examples(), None)
        .expect("train");
    assert_eq!(outcome.steps, steps);
    let n = outcome.history.len();
    let first: f64 = outcome.history[..3].iter().map(|r| r.loss).sum::<f64>() / 3.0;
    let last: f64 = outcome.history[n - 3..].iter().map(|r| r.loss).sum::<f64>() / 3.0;
    eprintln!("mean loss of the first 3 steps {first:.4}, of the last 3 {last:.4}");
    assert!(last < first * 0.8, "loss did not go down: {first} → {last}");
    assert!(out.path().join("train_log.jsonl").is_file());
    let lines = std::fs::read_to_string(out.path().join("train_log.jsonl")).expect("log");
    assert_eq!(
        lines.lines().count() as u64,
        steps,
        "one JSON line per logged step"
    );
}

#[test]
fn resume_reaches_the_same_weights_as_an_uninterrupted_run() {
    let _serial = serial();
    for loss in [
        LossConfig::Mnrl { scale: 20.0 },
        LossConfig::CachedMnrl {
            scale: 20.0,
            mini_batch: 3,
        },
    ] {
        let cfg = TrainConfig {
            save_steps: Some(2),
            loss: loss.clone(),
            ..settings()
        };
        let full_dir = tempfile::tempdir().expect("tmp");
        let full = Trainer::<AD>::new(cfg.clone(), full_dir.path())
            .expect("trainer")
            .train(tiny_model(), &examples(), None)
            .expect("train");

        let dir = tempfile::tempdir().expect("tmp");
        let partial = Trainer::<AD>::new(cfg.clone(), dir.path())
            .expect("trainer")
            .stop_after(3)
            .train(tiny_model(), &examples(), None)
            .expect("first part");
        assert_eq!(partial.steps, 3);
        let ck = checkpoint::latest(&dir.path().join("checkpoints")).expect("a checkpoint");
        assert!(ck.ends_with("step-2"), "{}", ck.display());
        let resumed = Trainer::<AD>::new(cfg, dir.path())
            .expect("trainer")
            .train(tiny_model(), &examples(), Some(&ck))
            .expect("resume");
        assert_eq!(resumed.steps, full.steps);
        let (a, b) = (weights(&resumed.model), weights(&full.model));
        let worst = a
            .iter()
            .zip(&b)
            .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
            .fold(0.0f32, f32::max);
        let losses_full: Vec<f64> = full.history.iter().map(|r| r.loss).collect();
        let losses_res: Vec<f64> = resumed.history.iter().map(|r| r.loss).collect();
        assert!(a == b, "{loss:?}: resumed run differs by up to {worst}; losses full {losses_full:?} resumed {losses_res:?}");
        let losses =
            |o: &[embedtune_train::StepRecord]| o.iter().map(|r| r.loss).collect::<Vec<_>>();
        assert_eq!(losses(&resumed.history), losses(&full.history));
        // The log holds each step once (step 3 was logged before the stop, then redone).
        assert_eq!(logged_steps(dir.path()), logged_steps(full_dir.path()));
    }
}

/// The steps of `train_log.jsonl` in `dir`, in order.
fn logged_steps(dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join("train_log.jsonl"))
        .expect("log")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["record"]["step"].as_u64().expect("step")
        })
        .collect()
}

#[test]
fn resume_with_other_settings_is_refused() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = TrainConfig {
        save_steps: Some(1),
        max_steps: Some(1),
        ..settings()
    };
    Trainer::<AD>::new(cfg.clone(), dir.path())
        .expect("t")
        .train(tiny_model(), &examples(), None)
        .expect("train");
    let ck = dir.path().join("checkpoints/step-1");
    let other = TrainConfig { lr: 5e-4, ..cfg };
    let err = match Trainer::<AD>::new(other, dir.path()).expect("t").train(
        tiny_model(),
        &examples(),
        Some(&ck),
    ) {
        Err(e) => e,
        Ok(_) => panic!("resume with another lr must fail"),
    };
    match &err {
        TrainError::CheckpointFile {
            path,
            fault: CheckpointFault::OtherSettings { changed },
        } => {
            assert!(path.starts_with(&ck), "{err}");
            assert_eq!(
                changed,
                &[SettingChange {
                    name: "lr",
                    checkpoint: "0.001".into(),
                    now: "0.0005".into()
                }],
                "{err}"
            );
        }
        _ => panic!("{err}"),
    }
    assert!(
        err.to_string()
            .contains("other settings: lr (checkpoint 0.001, now 0.0005)"),
        "{err}"
    );
}

/// Rewrites `optimizer.safetensors` of checkpoint `ck` with `tensors` (name, values).
fn write_optimizer_state(ck: &Path, tensors: &[(&str, Vec<f32>)]) {
    let bytes: Vec<(String, Vec<u8>)> = tensors
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((_, v), (n, b))| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![v.len()], b)
                    .expect("view");
            (n.clone(), view)
        })
        .collect();
    let file = safetensors::serialize(views, None).expect("serialise");
    std::fs::write(ck.join("optimizer.safetensors"), file).expect("write");
}

/// Regression (fuzzing the checkpoint files): optimiser state that does not belong to the model
/// (another size, a parameter it lacks, an unpaired or non-finite moment) used to load and then
/// panic inside the backend at the first step; it is refused at load, naming the file.
#[test]
fn regression_optimizer_state_of_another_model_is_refused_at_load() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = TrainConfig {
        save_steps: Some(1),
        max_steps: Some(1),
        ..settings()
    };
    Trainer::<AD>::new(cfg.clone(), dir.path())
        .expect("t")
        .train(tiny_model(), &examples(), None)
        .expect("train");
    let ck = dir.path().join("checkpoints/step-1");
    let fp = Fingerprints::of(&tiny_model(), &examples());
    let load = || Checkpoint::<AD>::load(&ck, &tiny_model(), &cfg, &fp, &Default::default());
    load().expect("the saved checkpoint loads");
    std::fs::copy(
        ck.join("optimizer.safetensors"),
        dir.path().join("optimizer.saved"),
    )
    .expect("copy");
    let name = "encoder.layer.0.attention.self.query.weight"; // 32 × 32 values
    let m = format!("{name}.exp_avg");
    let v = format!("{name}.exp_avg_sq");
    type Moments<'a> = Vec<(&'a str, Vec<f32>)>;
    let cases: Vec<(Moments<'_>, &str)> = vec![
        (vec![(&m, vec![0.0; 7]), (&v, vec![0.0; 7])], "shape [7]"),
        (
            vec![
                ("no.such.parameter.exp_avg", vec![0.0; 4]),
                ("no.such.parameter.exp_avg_sq", vec![0.0; 4]),
            ],
            "no trainable parameter",
        ),
        (vec![(&m, vec![0.0; 1024])], "lacks one of its two moments"),
        (
            vec![(&m, vec![0.0; 1024]), (&v, vec![0.0; 1025])],
            "shape [1025]",
        ),
        (vec![("stray", vec![0.0; 4])], "not an AdamW moment"),
    ];
    for (tensors, expected) in cases {
        write_optimizer_state(&ck, &tensors);
        match load() {
            Ok(_) => panic!("{expected}: optimiser state loaded"),
            Err(
                e @ (TrainError::CheckpointFile { .. } | TrainError::CheckpointMismatch { .. }),
            ) => {
                let message = e.to_string();
                assert!(message.contains("optimizer.safetensors"), "{message}");
                assert!(message.contains(expected), "{message} / {expected}");
            }
            Err(e) => panic!("{expected}: {e}"),
        }
    }
    // Every moment of the model, one of them NaN.
    let original: Vec<(String, Vec<f32>)> = {
        let path = ck.join("optimizer.safetensors");
        let saved = std::fs::read(dir.path().join("optimizer.saved")).expect("saved copy");
        checkpoint::read_optimizer_state(&saved, &path)
            .expect("the saved state parses")
            .into_iter()
            .map(|(k, mut values)| {
                if k == m {
                    values[3] = f32::NAN;
                }
                (k, values)
            })
            .collect()
    };
    let moments: Moments<'_> = original
        .iter()
        .map(|(k, values)| (k.as_str(), values.clone()))
        .collect();
    write_optimizer_state(&ck, &moments);
    match load() {
        Err(
            e @ TrainError::CheckpointFile {
                fault: CheckpointFault::NonFinite { .. },
                ..
            },
        ) => {
            let message = e.to_string();
            assert!(message.contains("optimizer.safetensors"), "{message}");
            assert!(
                message.contains(&format!("{m} holds non-finite")),
                "{message}"
            );
        }
        Err(e) => panic!("a NaN moment: {e}"),
        Ok(_) => panic!("a NaN moment loaded"),
    }
    let state = ck.join("trainer_state.json");
    for text in ["", "{", "{\"format_version\": 1}", "[]"] {
        std::fs::write(&state, text).expect("write");
        match load() {
            Err(e @ TrainError::CheckpointFile { .. }) => {
                let message = e.to_string();
                assert!(message.contains("trainer_state.json"), "{message}");
                assert!(
                    matches!(&e, TrainError::CheckpointFile { path, .. } if path.ends_with("trainer_state.json")),
                    "{message}"
                );
            }
            Err(e) => panic!("{text:?}: {e}"),
            Ok(_) => panic!("{text:?} loaded"),
        }
    }
}

#[test]
fn lora_training_changes_only_adapters_and_merges_for_saving() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let lora = LoraConfig {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        ..Default::default()
    };
    let cfg = TrainConfig {
        lora: Some(lora),
        lr: 1e-2,
        ..settings()
    };
    let base = tiny_model();
    let base_weights = weights(&base);
    let outcome = Trainer::<AD>::new(cfg, dir.path())
        .expect("t")
        .train(base.clone(), &examples(), None)
        .expect("train");
    let (trainable, total) = outcome.parameters;
    assert!(trainable < total / 4, "{trainable} of {total}");
    // Base weights (every dense weight and the embeddings) are bit-identical; adapters moved.
    let trained = weights(&outcome.model);
    let base_only: Vec<&Vec<f32>> = trained
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 0)
        .map(|(_, w)| w)
        .collect();
    let expected: Vec<&Vec<f32>> = base_weights
        .iter()
        .take(base_only.len() - 1)
        .chain(base_weights.last())
        .collect();
    assert_eq!(base_only, expected);
    let b_moved = trained
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 2)
        .any(|(_, b)| b.iter().any(|x| *x != 0.0));
    assert!(b_moved, "LoRA AD matrices stayed at zero");

    let merged = outcome.model.valid().merge_lora();
    let texts = ["what about the tax rule", "pension"];
    let unmerged_out = outcome
        .model
        .valid()
        .encode(&texts, &EncodeOptions::default())
        .expect("encode");
    let merged_out = merged
        .encode(&texts, &EncodeOptions::default())
        .expect("encode");
    for (a, b) in unmerged_out.iter().zip(&merged_out) {
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5));
    }
    merged.save(dir.path().join("final")).expect("save");
    let loaded =
        SentenceEncoder::<I>::load(dir.path().join("final"), &Default::default()).expect("load");
    assert_eq!(
        loaded
            .encode(&texts, &EncodeOptions::default())
            .expect("encode"),
        merged_out
    );
}

#[test]
fn non_finite_loss_stops_with_the_step_and_keeps_the_last_checkpoint() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    // An absurd learning rate blows the weights up after the first update.
    let cfg = TrainConfig {
        lr: 1e30,
        warmup_ratio: 0.0,
        max_grad_norm: 0.0,
        save_steps: Some(1),
        ..settings()
    };
    let err = match Trainer::<AD>::new(cfg.clone(), dir.path())
        .expect("t")
        .train(tiny_model(), &examples(), None)
    {
        Err(e) => e,
        Ok(o) => panic!(
            "training with lr 1e30 finished: losses {:?}",
            o.history.iter().map(|r| r.loss).collect::<Vec<_>>()
        ),
    };
    let step = match err {
        TrainError::NonFiniteLoss { step, .. } => step,
        other => panic!("expected NonFiniteLoss, got {other}"),
    };
    assert!(step >= 2, "step {step}");
    assert!(err_message_names_step(step));
    // The checkpoint before the failure is complete and loads.
    let ck = dir.path().join(format!("checkpoints/step-{}", step - 1));
    let fp = Fingerprints::of(&tiny_model(), &examples());
    let loaded = Checkpoint::<AD>::load(&ck, &tiny_model(), &cfg, &fp, &Default::default())
        .expect("checkpoint loads");
    assert_eq!(loaded.state.step, step - 1);
}

/// Gradients too large for their f32 squared sum (MNRL with an absurd logit scale: the loss
/// stays finite, the gradients reach ~1e20) give a non-finite global norm: a typed error before
/// the step, no checkpoint, and a log that reads back (it used to apply the step and write
/// `grad_norm: null`).
#[test]
fn non_finite_gradient_norm_stops_before_the_step() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = TrainConfig {
        loss: LossConfig::Mnrl { scale: 1e20 },
        save_steps: Some(1),
        ..settings()
    };
    let err = Trainer::<AD>::new(cfg, dir.path())
        .expect("t")
        .train(tiny_model(), &examples(), None)
        .err()
        .expect("training with gradients past f32 must stop");
    match &err {
        TrainError::NonFiniteGradNorm { step: 1, value } => assert!(!value.is_finite()),
        other => panic!("expected NonFiniteGradNorm at step 1, got {other}"),
    }
    assert!(err.to_string().contains("step 1"), "{err}");
    assert!(
        !dir.path().join("checkpoints/step-1").exists(),
        "no checkpoint of the failed step"
    );
    if let Ok(log) = std::fs::read_to_string(dir.path().join("train_log.jsonl")) {
        for line in log.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("log line reads back");
            assert!(v.get("grad_norm").is_none_or(|g| g.is_number()), "{line}");
        }
    }
}

fn err_message_names_step(step: u64) -> bool {
    TrainError::NonFiniteLoss {
        step,
        value: f64::NAN,
    }
    .to_string()
    .contains(&format!("step {step}"))
}

#[test]
fn bad_settings_and_data_are_errors() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    for cfg in [
        TrainConfig {
            batch_size: 0,
            ..settings()
        },
        TrainConfig {
            lr: -1.0,
            ..settings()
        },
        TrainConfig {
            warmup_ratio: 2.0,
            ..settings()
        },
        TrainConfig {
            loss: LossConfig::CachedMnrl {
                scale: 20.0,
                mini_batch: 0,
            },
            ..settings()
        },
    ] {
        assert!(matches!(
            Trainer::<AD>::new(cfg, dir.path()),
            Err(TrainError::Config { .. })
        ));
    }
    let trainer = || Trainer::<AD>::new(settings(), dir.path()).expect("t");
    assert!(matches!(
        trainer().train(tiny_model(), &[], None),
        Err(TrainError::Config { .. })
    ));
    let mut bad = examples();
    bad[3].anchor = "  ".into();
    let err = trainer()
        .train(tiny_model(), &bad, None)
        .err()
        .expect("empty anchor is refused");
    assert!(err.to_string().contains("example 3"), "{err}");
    let cfg = TrainConfig {
        num_negatives: Some(2),
        ..settings()
    };
    let err = Trainer::<AD>::new(cfg, dir.path())
        .expect("t")
        .train(tiny_model(), &examples(), None)
        .err()
        .expect("too few negatives");
    assert!(err.to_string().contains("fewer than the 2"), "{err}");
    assert!(LossConfig::from_name("nope", 32, &[]).is_err());
}

struct CountingEvaluator {
    calls: usize,
}

impl Evaluate<I> for CountingEvaluator {
    fn evaluate(
        &mut self,
        model: &SentenceEncoder<I>,
    ) -> embedtune_train::Result<BTreeMap<String, f64>> {
        self.calls += 1;
        // A stand-in metric: how close the first anchor is to its positive.
        let v = model.encode(
            &[
                "what about the tax rule 0",
                "the tax rule says tax things 0",
            ],
            &EncodeOptions::default(),
        )?;
        let sim: f32 = v[0].iter().zip(&v[1]).map(|(a, b)| a * b).sum();
        Ok(BTreeMap::from([("ndcg@10".to_string(), sim as f64)]))
    }
}

#[test]
fn evaluates_every_n_steps_and_keeps_the_best_model() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let mut eval = CountingEvaluator { calls: 0 };
    let cfg = TrainConfig {
        eval_steps: Some(2),
        ..settings()
    };
    let steps = expected_steps(&cfg, &examples());
    let outcome = Trainer::<AD>::new(cfg, dir.path())
        .expect("t")
        .with_evaluator(&mut eval)
        .train(tiny_model(), &examples(), None)
        .expect("train");
    assert_eq!(outcome.steps, steps);
    // Every second step, and at the end.
    let mut want: Vec<u64> = (1..=steps).filter(|s| s % 2 == 0).collect();
    if steps % 2 == 1 {
        want.push(steps);
    }
    assert_eq!(
        outcome.evals.iter().map(|e| e.step).collect::<Vec<_>>(),
        want
    );
    assert_eq!(eval.calls, want.len());
    let best = outcome.best.expect("a best model");
    let max = outcome
        .evals
        .iter()
        .map(|e| e.metrics["ndcg@10"])
        .fold(f64::MIN, f64::max);
    assert_eq!(best.value, max);
    assert!(best.path.join("model.safetensors").is_file());
    let svg = embedtune_train::plot::render(&outcome.history, &outcome.evals, "ndcg@10", "tiny")
        .expect("plot");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    // one line per series (in its colour), a dot per point, titles as SVG text
    assert_eq!(
        svg.matches(r##"stroke="#1F77B4""##).count(),
        1,
        "the loss line"
    );
    assert_eq!(
        svg.matches(r##"stroke="#D62728""##).count(),
        1,
        "the metric line"
    );
    assert_eq!(
        svg.matches("<circle").count(),
        outcome.history.len() + outcome.evals.len()
    );
    assert!(svg.contains("ndcg@10") && svg.contains("training loss"));
}

#[test]
fn schedule_matches_transformers_linear_warmup() {
    let _serial = serial();
    // 29 steps, warm-up ratio 0.1 → ceil(2.9) = 3 warm-up steps.
    let s = LinearSchedule::with_ratio(2e-5, 0.1, 29);
    assert_eq!(s.warmup_steps, 3);
    let lr: Vec<f64> = (0..29).map(|k| s.lr(k)).collect();
    assert_eq!(lr[0], 0.0);
    assert!((lr[1] - 2e-5 / 3.0).abs() < 1e-18);
    assert!((lr[3] - 2e-5).abs() < 1e-18);
    assert!((lr[28] - 2e-5 / 26.0).abs() < 1e-18);
    assert!(lr.windows(2).skip(3).all(|w| w[1] < w[0]));
}

/// One parameter, so the AdamW and clipping arithmetic can be checked by hand.
#[derive(Module, Debug)]
struct Toy<B: Backend> {
    w: Param<Tensor<B, 1>>,
    v: Param<Tensor<B, 2>>,
}

#[test]
fn adamw_and_global_norm_clipping_follow_pytorch() {
    let _serial = serial();
    let device = Default::default();
    let toy = Toy::<AD> {
        w: Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![1.0f32, -2.0], [2]),
            &device,
        )),
        v: Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.5f32, 0.25, -1.0, 3.0], [2, 2]),
            &device,
        )),
    };
    // loss = sum(3 w) + sum(4 v) → grads 3 and 4; global norm sqrt(2·9 + 4·16) = sqrt(82).
    let loss = toy.w.val().mul_scalar(3.0).sum() + toy.v.val().mul_scalar(4.0).sum();
    let mut grads = GradientsParams::from_grads(loss.backward(), &toy);
    let norm = clip_grad_norm::<AD, _>(&toy, &mut grads, 1.0);
    assert!((norm - 82f64.sqrt()).abs() < 1e-5);
    let coef = 1.0 / (82f64.sqrt() + 1e-6);
    let cfg = AdamWConfig {
        weight_decay: 0.01,
        ..Default::default()
    };
    let mut adam = AdamW::<AD>::new(cfg);
    let lr = 0.1;
    let toy = adam.step(lr, toy, grads);
    // PyTorch AdamW, first step: p·(1 − lr·wd) − lr·m̂/(√v̂ + ε) with m̂ = g, v̂ = g².
    let expect = |p: f64, g: f64| p * (1.0 - lr * 0.01) - lr * g / (g.abs() + 1e-8);
    let w: Vec<f32> = toy
        .w
        .val()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("vec");
    for (got, p) in w.iter().zip([1.0, -2.0]) {
        assert!((*got as f64 - expect(p, 3.0 * coef)).abs() < 1e-6, "{got}");
    }
    let v: Vec<f32> = toy
        .v
        .val()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("vec");
    for (got, p) in v.iter().zip([0.5, 0.25, -1.0, 3.0]) {
        assert!((*got as f64 - expect(p, 4.0 * coef)).abs() < 1e-6, "{got}");
    }
    assert_eq!(adam.tracked_parameters(), 2);
}

#[test]
fn mining_finds_negatives_that_are_not_positives() {
    let _serial = serial();
    let model = tiny_model().valid();
    let pairs: Vec<Example> = examples()
        .into_iter()
        .map(|e| Example::pair(e.anchor, e.positive))
        .collect();
    let corpus: Vec<String> = examples().into_iter().flat_map(|e| e.negatives).collect();
    let cfg = MiningConfig {
        num_negatives: 2,
        range_max: 10,
        ..Default::default()
    };
    let (mined, report) = mine_hard_negatives(&model, &pairs, &corpus, &cfg).expect("mine");
    assert_eq!(mined.len(), pairs.len());
    assert_eq!(report.pairs, pairs.len());
    for e in &mined {
        assert_eq!(e.negatives.len(), 2);
        assert!(!e.negatives.contains(&e.positive));
    }
    // With a margin above every score difference, nothing passes.
    let strict = MiningConfig {
        absolute_margin: Some(10.0),
        ..cfg.clone()
    };
    let (none, report) = mine_hard_negatives(&model, &pairs, &corpus, &strict).expect("mine");
    assert!(none.is_empty(), "pairs without negatives are left out");
    assert_eq!(report.short, pairs.len());
    let keep = MiningConfig {
        drop_short: false,
        ..strict
    };
    let (kept, report) = mine_hard_negatives(&model, &pairs, &corpus, &keep).expect("mine");
    assert_eq!(kept.len(), pairs.len());
    assert!(kept.iter().all(|e| e.negatives.is_empty()));
    assert_eq!(report.short, pairs.len());
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("mined.jsonl");
    write_grouped_jsonl(&path, &mined).expect("write");
    let back = embedtune_data::read_examples(&path, &Default::default()).expect("read back");
    assert_eq!(back.len(), mined.len());
    assert!(Path::new(&path).is_file());
    assert!(mine_hard_negatives(
        &model,
        &pairs,
        &corpus,
        &MiningConfig {
            range_max: 0,
            ..cfg
        }
    )
    .is_err());
}

/// The filters of `mine_hard_negatives` on a hand-made candidate list, each result checked by
/// hand against sentence-transformers' rules (a candidate is dropped when `score + absolute >
/// positive`, `score > positive · (1 − relative)`, `score > max_score` or `score < min_score`;
/// `range_max` and `range_min` apply to what the filters leave).
#[test]
fn mining_filters_match_sentence_transformers_rules() {
    // Passage 1 is the query's positive (its lowest positive scores 0.88).
    let hits = [
        (0, 0.95),
        (1, 0.90),
        (2, 0.85),
        (3, 0.80),
        (4, 0.70),
        (5, 0.60),
        (6, 0.40),
    ];
    let positives = [1usize].into_iter().collect();
    let base = MiningConfig {
        num_negatives: 3,
        ..Default::default()
    };
    let pick = |cfg: &MiningConfig| {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(cfg.seed);
        let s = select_negatives(&hits, &positives, 0.88, cfg, &mut rng);
        let docs: Vec<usize> = s.negatives.iter().map(|n| n.0).collect();
        (docs, s.dropped_positive, s.dropped_score)
    };
    // No filter: the best three that are not positives.
    assert_eq!(pick(&base), (vec![0, 2, 3], 1, 0));
    // Absolute margin 0.05: scores above 0.83 go (0 and 2).
    let abs = MiningConfig {
        absolute_margin: Some(0.05),
        ..base.clone()
    };
    assert_eq!(pick(&abs), (vec![3, 4, 5], 1, 2));
    // Relative margin 0.1: scores above 0.88 · 0.9 = 0.792 go (0, 2 and 3).
    let rel = MiningConfig {
        relative_margin: Some(0.1),
        ..base.clone()
    };
    assert_eq!(pick(&rel), (vec![4, 5, 6], 1, 3));
    // max_score 0.82 drops 0 and 2, min_score 0.5 drops 6.
    let band = MiningConfig {
        max_score: Some(0.82),
        min_score: Some(0.5),
        ..base.clone()
    };
    assert_eq!(pick(&band), (vec![3, 4, 5], 1, 3));
    // range_max 4 keeps 0, 2, 3, 4 of the candidates; range_min 1 then skips 0.
    let range = MiningConfig {
        range_min: 1,
        range_max: 4,
        ..base.clone()
    };
    assert_eq!(pick(&range), (vec![2, 3, 4], 1, 0));
    // Too few left: fewer negatives (the pair is short).
    let few = MiningConfig {
        range_min: 1,
        range_max: 3,
        ..base.clone()
    };
    assert_eq!(pick(&few).0, vec![2, 3]);
    // Random: two of the allowed four (range 1..5 → 2, 3, 4, 5), best first, the same for a seed.
    let random = MiningConfig {
        num_negatives: 2,
        range_min: 1,
        range_max: 5,
        sampling: Sampling::Random,
        ..base.clone()
    };
    let (docs, _, _) = pick(&random);
    assert_eq!(docs.len(), 2);
    assert!(docs.iter().all(|d| [2, 3, 4, 5].contains(d)), "{docs:?}");
    assert!(docs[0] < docs[1], "sorted by score: {docs:?}");
    assert_eq!(pick(&random).0, docs);
    let draws: std::collections::BTreeSet<Vec<usize>> = (0..20)
        .map(|seed| {
            pick(&MiningConfig {
                seed,
                ..random.clone()
            })
            .0
        })
        .collect();
    assert!(draws.len() > 1, "the sample depends on the seed");
    // Settings out of range are errors before anything is encoded.
    for bad in [
        MiningConfig {
            relative_margin: Some(1.5),
            ..base.clone()
        },
        MiningConfig {
            absolute_margin: Some(f64::NAN),
            ..base.clone()
        },
        MiningConfig {
            range_min: 5,
            range_max: 5,
            ..base.clone()
        },
        MiningConfig {
            num_negatives: 0,
            ..base.clone()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

/// Mined examples as triplets: one example per negative, all of the query's.
#[test]
fn mining_writes_triplets_with_the_same_negatives_for_every_positive_of_a_query() {
    let _serial = serial();
    let model = tiny_model().valid();
    let mut pairs: Vec<Example> = examples()
        .into_iter()
        .map(|e| Example::pair(e.anchor, e.positive))
        .collect();
    // A second positive for the first query.
    pairs.push(Example::pair(
        pairs[0].anchor.clone(),
        pairs[2].positive.clone(),
    ));
    let corpus: Vec<String> = examples().into_iter().flat_map(|e| e.negatives).collect();
    let cfg = MiningConfig {
        num_negatives: 2,
        range_max: 10,
        output: MiningOutput::Triplet,
        ..Default::default()
    };
    let (mined, report) = mine_hard_negatives(&model, &pairs, &corpus, &cfg).expect("mine");
    assert_eq!(report.complete, pairs.len());
    assert_eq!(mined.len(), 2 * pairs.len());
    assert!(mined.iter().all(|e| e.negatives.len() == 1));
    let of = |positive: &str| -> Vec<String> {
        mined
            .iter()
            .filter(|e| e.anchor == pairs[0].anchor && e.positive == positive)
            .map(|e| e.negatives[0].clone())
            .collect()
    };
    let (first, second) = (of(&pairs[0].positive), of(&pairs[2].positive));
    assert_eq!(first.len(), 2);
    assert_eq!(first, second, "negatives are mined per query");
    assert!(!first.contains(&pairs[0].positive) && !first.contains(&pairs[2].positive));
}

/// Queries are keyed by text: a (query, positive) pair given twice (e.g. two query ids with the
/// same text) is mined once, and the output is grouped by query in order of first appearance,
/// as sentence-transformers' `mine_hard_negatives` does.
#[test]
fn mining_drops_repeated_pairs_and_groups_by_query() {
    let _serial = serial();
    let model = tiny_model().valid();
    let distinct: Vec<Example> = examples()
        .into_iter()
        .map(|e| Example::pair(e.anchor, e.positive))
        .collect();
    assert!(distinct.len() >= 3);
    let mut pairs = distinct.clone();
    // The second pair again, then a second positive of the first query, not next to it.
    pairs.push(distinct[1].clone());
    pairs.push(Example::pair(
        distinct[0].anchor.clone(),
        distinct[2].positive.clone(),
    ));
    let corpus: Vec<String> = examples().into_iter().flat_map(|e| e.negatives).collect();
    let cfg = MiningConfig {
        num_negatives: 1,
        range_max: 10,
        ..Default::default()
    };
    let (mined, report) = mine_hard_negatives(&model, &pairs, &corpus, &cfg).expect("mine");
    assert_eq!(report.duplicate_pairs, 1);
    assert_eq!(report.pairs, pairs.len() - 1);
    assert_eq!(report.complete + report.short, report.pairs);
    let got: Vec<(&str, &str)> = mined
        .iter()
        .map(|e| (e.anchor.as_str(), e.positive.as_str()))
        .collect();
    let mut want: Vec<(&str, &str)> = vec![
        (&distinct[0].anchor, &distinct[0].positive),
        (&distinct[0].anchor, &distinct[2].positive),
    ];
    want.extend(
        distinct[1..]
            .iter()
            .map(|e| (e.anchor.as_str(), e.positive.as_str())),
    );
    assert_eq!(got, want);
    assert_eq!(mined[0].negatives, mined[1].negatives, "one query, one set");
}

/// A re-miner for tests: rotates every example's negative to the next example's and counts
/// its calls.
struct Rotate {
    epochs: Vec<u64>,
}

impl Remine<I> for Rotate {
    fn remine(
        &mut self,
        _model: &SentenceEncoder<I>,
        examples: &[Example],
        epoch: u64,
    ) -> Result<Vec<Example>, TrainError> {
        self.epochs.push(epoch);
        let n = examples.len();
        Ok((0..n)
            .map(|i| Example {
                negatives: examples[(i + 1) % n].negatives.clone(),
                ..examples[i].clone()
            })
            .collect())
    }
}

#[test]
fn gist_trains_with_a_frozen_guide_its_cached_form_agrees_and_remining_runs_between_epochs() {
    let _serial = serial();
    let gist = LossConfig::Gist {
        temperature: 0.05,
        margin: 0.0,
        margin_strategy: GistMargin::Absolute,
    };
    let cached = LossConfig::CachedGist {
        temperature: 0.05,
        margin: 0.0,
        margin_strategy: GistMargin::Absolute,
        mini_batch: 3,
    };
    // Without dropout both forms compute the same function.
    let deterministic = || {
        let tokenizer = testing::tiny_tokenizer(32).expect("tokenizer");
        let mut config =
            TransformerConfig::tiny_bert(tokenizer.vocab_size(), 32, 2, 4).expect("config");
        config.hidden_dropout_prob = 0.0;
        config.attention_probs_dropout_prob = 0.0;
        AD::seed(&Default::default(), 1);
        SentenceEncoder::<AD>::random(config, tokenizer, &Default::default()).expect("model")
    };
    let mut first_losses = Vec::new();
    for loss in [gist.clone(), cached] {
        let out = tempfile::tempdir().expect("tmp");
        let cfg = TrainConfig {
            loss,
            max_steps: Some(2),
            ..settings()
        };
        let outcome = Trainer::<AD>::new(cfg, out.path())
            .expect("trainer")
            .train(deterministic(), &examples(), None)
            .expect("train");
        assert_eq!(outcome.steps, 2);
        assert!(outcome
            .history
            .iter()
            .all(|r| r.loss.is_finite() && r.loss > 0.0));
        first_losses.push(outcome.history[0].loss);
    }
    let (plain, cached) = (first_losses[0], first_losses[1]);
    assert!(
        (plain - cached).abs() <= 1e-5 * plain.abs(),
        "GradCache changed the loss: {plain} vs {cached}"
    );

    // Re-mining before epochs 2 and 4 of 5.
    let out = tempfile::tempdir().expect("tmp");
    let cfg = TrainConfig {
        loss: gist,
        epochs: 5,
        ..settings()
    };
    let mut miner = Rotate { epochs: Vec::new() };
    let outcome = Trainer::<AD>::new(cfg.clone(), out.path())
        .expect("trainer")
        .with_remining(2, &mut miner)
        .train(tiny_model(), &examples(), None)
        .expect("train");
    assert_eq!(miner.epochs, vec![2, 4]);
    assert_eq!(outcome.steps, expected_steps(&cfg, &examples()));
}

fn train_err(r: Result<embedtune_train::TrainOutcome<AD>, TrainError>) -> TrainError {
    match r {
        Err(e) => e,
        Ok(o) => panic!("expected an error, trained {} steps", o.steps),
    }
}

/// A fresh run into a directory holding another run's checkpoints used to prune its own new
/// ones (pruning went by step number across runs).
#[test]
fn a_fresh_run_never_touches_another_runs_output() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let long = TrainConfig {
        save_steps: Some(3),
        epochs: 3,
        ..settings()
    };
    Trainer::<AD>::new(long, dir.path())
        .expect("t")
        .train(tiny_model(), &examples(), None)
        .expect("first run");
    let ck = dir.path().join("checkpoints");
    let before = std::fs::read_dir(&ck).expect("ls").count();
    let short = TrainConfig {
        save_steps: Some(1),
        max_steps: Some(2),
        ..settings()
    };
    let err = train_err(
        Trainer::<AD>::new(short.clone(), dir.path())
            .expect("t")
            .train(tiny_model(), &examples(), None),
    );
    assert!(
        matches!(&err, TrainError::OutputNotEmpty { found, .. } if found.contains(&"checkpoints".to_string())),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&ck).expect("ls").count(), before);
    assert!(ck.join("step-9").is_dir());
    // With overwrite, the earlier run's files go and the new run keeps its own checkpoints.
    Trainer::<AD>::new(short, dir.path())
        .expect("t")
        .overwrite(true)
        .train(tiny_model(), &examples(), None)
        .expect("overwrite");
    let mut names: Vec<String> = std::fs::read_dir(&ck)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["step-1", "step-2"]);
    assert_eq!(logged_steps(dir.path()), [1, 2]);
}

/// `finetune_e5 --model M --output M` used to replace the starting model without a word.
#[test]
fn an_output_directory_overlapping_the_model_is_refused() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tmp");
    let model_dir = root.path().join("model");
    tiny_model().valid().save(&model_dir).expect("save");
    let listing = |d: &Path| {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(d)
            .expect("ls")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().expect("meta").len(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(&model_dir);
    let model = SentenceEncoder::<AD>::load(&model_dir, &Default::default()).expect("load");
    for output in [
        model_dir.clone(),
        model_dir.join("run"),
        model_dir.join("."),
        root.path().to_path_buf(),
    ] {
        let err = train_err(Trainer::<AD>::new(settings(), &output).expect("t").train(
            model.clone(),
            &examples(),
            None,
        ));
        assert!(
            matches!(err, TrainError::OutputOverlapsModel { .. }),
            "{}: {err}",
            output.display()
        );
    }
    assert_eq!(listing(&model_dir), before);
    // A sibling directory is fine.
    Trainer::<AD>::new(
        TrainConfig {
            max_steps: Some(1),
            ..settings()
        },
        root.path().join("out"),
    )
    .expect("t")
    .train(model, &examples(), None)
    .expect("sibling output");
}

/// Rewrites one optimiser tensor's (name, shape), or drops it.
type Edit = dyn Fn(&str, Vec<usize>) -> Option<(String, Vec<usize>)>;

#[test]
fn resume_refuses_checkpoints_of_another_model_or_data_or_optimiser() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = TrainConfig {
        save_steps: Some(1),
        max_steps: Some(2),
        ..settings()
    };
    Trainer::<AD>::new(cfg.clone(), dir.path())
        .expect("t")
        .train(tiny_model(), &examples(), None)
        .expect("train");
    let ck = dir.path().join("checkpoints/step-1");
    let resume = |model: SentenceEncoder<AD>, data: &[Example], ck: &Path| {
        train_err(
            Trainer::<AD>::new(cfg.clone(), dir.path())
                .expect("t")
                .train(model, data, Some(ck)),
        )
    };
    // Another starting model (other random weights, same shapes).
    let other = {
        let tokenizer = testing::tiny_tokenizer(32).expect("tokenizer");
        let config =
            TransformerConfig::tiny_bert(tokenizer.vocab_size(), 32, 2, 4).expect("config");
        AD::seed(&Default::default(), 2);
        SentenceEncoder::random(config, tokenizer, &Default::default()).expect("model")
    };
    let err = resume(other, &examples(), &ck);
    assert!(
        matches!(
            err,
            TrainError::CheckpointMismatch {
                what: "starting model",
                ..
            }
        ),
        "{err}"
    );
    // Other data.
    let mut data = examples();
    data.swap(0, 1);
    let err = resume(tiny_model(), &data, &ck);
    assert!(
        matches!(
            err,
            TrainError::CheckpointMismatch {
                what: "training data",
                ..
            }
        ),
        "{err}"
    );
    // Optimiser moments whose shapes differ from the parameters, an unknown tensor, a missing
    // moment: refused with the file named, before any tensor is built from them.
    let opt = ck.join("optimizer.safetensors");
    let original = std::fs::read(&opt).expect("read");
    let table = safetensors::SafeTensors::deserialize(&original).expect("parse");
    let names: Vec<String> = table.names().into_iter().map(String::from).collect();
    let rewrite = |edit: &Edit| {
        let mut owned = Vec::new();
        for name in &names {
            let view = table.tensor(name).expect("tensor");
            if let Some((n, shape)) = edit(name, view.shape().to_vec()) {
                let len: usize = shape.iter().product();
                owned.push((n, shape, vec![0u8; len * 4]));
            }
        }
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
            .iter()
            .map(|(n, s, d)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                        .expect("view"),
                )
            })
            .collect();
        std::fs::write(&opt, safetensors::serialize(views, None).expect("ser")).expect("write");
    };
    let first = names[0].clone();
    let cases: Vec<(&str, Box<Edit>)> = vec![
        (
            "shape",
            Box::new(move |n: &str, s: Vec<usize>| {
                Some((n.to_string(), if n == first { vec![s[0] + 1] } else { s }))
            }),
        ),
        (
            "no trainable parameter",
            Box::new(|n: &str, s: Vec<usize>| Some((format!("nonexistent.{n}"), s))),
        ),
        (
            "lacks one of its two moments",
            Box::new(|n: &str, s: Vec<usize>| (!n.ends_with("_sq")).then(|| (n.to_string(), s))),
        ),
    ];
    for (expect, edit) in &cases {
        rewrite(edit.as_ref());
        let err = resume(tiny_model(), &examples(), &ck);
        match &err {
            TrainError::CheckpointMismatch {
                what: "optimiser state",
                path,
                reason,
            } => {
                assert!(path.ends_with("optimizer.safetensors"), "{err}");
                assert!(reason.contains(expect), "{expect}: {err}");
            }
            other => panic!("{expect}: expected an optimiser-state mismatch, got {other}"),
        }
    }
    std::fs::write(&opt, &original).expect("restore");
    Trainer::<AD>::new(cfg.clone(), dir.path())
        .expect("t")
        .train(tiny_model(), &examples(), Some(&ck))
        .expect("the untouched checkpoint resumes");
}

#[test]
fn a_lora_checkpoint_with_an_absurd_rank_is_refused_before_allocating() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = TrainConfig {
        lora: Some(LoraConfig {
            r: 4,
            alpha: 8.0,
            dropout: 0.0,
            ..Default::default()
        }),
        save_steps: Some(1),
        max_steps: Some(1),
        ..settings()
    };
    Trainer::<AD>::new(cfg.clone(), dir.path())
        .expect("t")
        .train(tiny_model(), &examples(), None)
        .expect("train");
    let ck = dir.path().join("checkpoints/step-1");
    let path = ck.join("adapter/adapter_config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    v["r"] = serde_json::json!(1_000_000_000_000u64);
    std::fs::write(&path, v.to_string()).expect("write");
    let err = train_err(Trainer::<AD>::new(cfg, dir.path()).expect("t").train(
        tiny_model(),
        &examples(),
        Some(&ck),
    ));
    assert!(err.to_string().contains("1000000000000"), "{err}");
}

/// The no-duplicates sampler can yield more batches than `num_batches` (a conflicting example
/// waits for the next batch): the trainer used to stop each epoch at `num_batches`, leaving
/// batches untrained, and a resumed run could differ from the uninterrupted one.
#[test]
fn an_epoch_trains_every_batch_the_sampler_yields() {
    let _serial = serial();
    // Six of twelve examples share one positive: no batch of four may hold two of them.
    let data: Vec<Example> = (0..12)
        .map(|i| Example {
            anchor: format!("question {i} about the fund"),
            positive: if i % 2 == 0 {
                "the shared answer".to_string()
            } else {
                format!("answer {i} about the fund")
            },
            negatives: vec![format!("unrelated text {i}")],
        })
        .collect();
    let cfg = TrainConfig {
        batch_size: 4,
        epochs: 2,
        no_duplicates: true,
        save_steps: Some(1),
        ..settings()
    };
    let sampler = embedtune_data::BatchSampler::new(4)
        .expect("sampler")
        .seed(cfg.seed)
        .no_duplicates(true);
    let per_epoch: Vec<usize> = (0..2).map(|e| sampler.batches(&data, e).len()).collect();
    assert!(
        per_epoch
            .iter()
            .all(|&n| n > sampler.num_batches(data.len())),
        "the fixture must make the sampler yield extra batches: {per_epoch:?}"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let full = Trainer::<AD>::new(cfg.clone(), dir.path())
        .expect("t")
        .train(tiny_model(), &data, None)
        .expect("train");
    assert_eq!(full.steps, per_epoch.iter().sum::<usize>() as u64);
    let last = full.history.last().expect("history");
    assert_eq!(last.epoch, 2.0);
    // Resumed in the middle of the second epoch: the same weights.
    let mid = per_epoch[0] as u64 + 1;
    let part = tempfile::tempdir().expect("tmp");
    Trainer::<AD>::new(cfg.clone(), part.path())
        .expect("t")
        .stop_after(mid)
        .train(tiny_model(), &data, None)
        .expect("part");
    let ck = part.path().join(format!("checkpoints/step-{mid}"));
    let resumed = Trainer::<AD>::new(cfg, part.path())
        .expect("t")
        .train(tiny_model(), &data, Some(&ck))
        .expect("resume");
    assert_eq!(resumed.steps, full.steps);
    assert!(weights(&resumed.model) == weights(&full.model));
}

#[test]
fn a_corrupted_checkpoint_is_an_error_naming_the_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = TrainConfig {
        save_steps: Some(1),
        max_steps: Some(1),
        ..settings()
    };
    Trainer::<AD>::new(cfg.clone(), dir.path())
        .expect("t")
        .train(tiny_model(), &examples(), None)
        .expect("train");
    let ck = dir.path().join("checkpoints/step-1");
    let fp = Fingerprints::of(&tiny_model(), &examples());
    let load = || Checkpoint::<AD>::load(&ck, &tiny_model(), &cfg, &fp, &Default::default());
    for (file, damage) in [
        ("trainer_state.json", 0.5),
        ("optimizer.safetensors", 0.5),
        ("optimizer.safetensors", 0.0),
        ("model/model.safetensors", 0.9),
    ] {
        let path = ck.join(file);
        let original = std::fs::read(&path).expect("read");
        let cut = (original.len() as f64 * damage) as usize;
        std::fs::write(&path, &original[..cut]).expect("truncate");
        let err = match load() {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{file} cut to {cut} bytes loaded"),
        };
        assert!(
            err.contains(file.rsplit('/').next().unwrap()),
            "{file}: {err}"
        );
        std::fs::write(&path, &original).expect("restore");
    }
    load().expect("the restored checkpoint loads");
}

#[test]
fn a_recipe_sets_its_rate_for_full_and_lora_training() {
    use embedtune_train::{
        Finetune, Recipe, TrainData, QUALITY_EPOCHS, QUALITY_LR, QUALITY_REMINE_EVERY,
        QUALITY_TOPIC_CLUSTERS,
    };
    let job = |lora: Option<LoraConfig>| {
        let settings = TrainConfig {
            lora,
            ..TrainConfig::default()
        };
        Finetune::new("model", TrainData::Examples(Vec::new()), "out")
            .settings(settings)
            .recipe(Recipe::Quality)
    };
    let full = job(None);
    assert_eq!(full.settings.lr, QUALITY_LR);
    assert_eq!(full.settings.epochs, QUALITY_EPOCHS);
    assert_eq!(full.mining.as_ref().map(|m| m.range_min), Some(10));
    assert_eq!(full.remine_every, Some(QUALITY_REMINE_EVERY));
    assert_eq!(full.settings.topic_clusters, Some(QUALITY_TOPIC_CLUSTERS));
    let lora = job(Some(LoraConfig::default()));
    assert_eq!(lora.settings.lr, 10.0 * QUALITY_LR);
    let st = Finetune::new("model", TrainData::Examples(Vec::new()), "out").recipe(Recipe::St);
    assert_eq!(st.settings.lr, 2e-5);
    assert!(st.mining.is_none());
    assert_eq!(st.settings.topic_clusters, None);
}

/// The training step against sentence-transformers on the real all-MiniLM-L6-v2: three
/// optimiser steps (MNRL scale 20 with one hard-negative column, global-norm clipping at 1,
/// AdamW as transformers' Trainer sets it up) from the same weights on the same batches, dropout
/// off on both sides so that each run is a function of its inputs. The fixture
/// (`scripts/make_train_steps_fixture.py`) holds PyTorch's loss and gradient norm per step and
/// the probe texts' embeddings before and after; everything the trainer does in a step (the
/// encoder's forward and backward, the loss, clipping, the update) must agree with it.
#[test]
fn three_steps_on_minilm_match_sentence_transformers() {
    let Some(root) = std::env::var_os("EMBEDTUNE_SHARED") else {
        eprintln!("skipped: EMBEDTUNE_SHARED is not set");
        return;
    };
    let src = Path::new(&root).join("models/all-MiniLM-L6-v2");
    if !src.is_dir() {
        eprintln!("skipped: {} does not exist", src.display());
        return;
    }
    let _serial = serial();
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_mnrl_steps.json"),
        )
        .expect("fixture"),
    )
    .expect("fixture json");
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .expect("rows")
            .iter()
            .flat_map(|row| row.as_array().expect("row").iter())
            .map(|x| x.as_f64().expect("number") as f32)
            .collect()
    };
    let text = |v: &serde_json::Value| v.as_str().expect("text").to_string();

    // The model with dropout off: its files, config.json rewritten.
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("model");
    testing::copy_dir(&src, &dir).expect("copy");
    let cfg_path = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).expect("config")).expect("json");
    cfg["hidden_dropout_prob"] = 0.0.into();
    cfg["attention_probs_dropout_prob"] = 0.0.into();
    std::fs::write(&cfg_path, cfg.to_string()).expect("write config");
    let mut model = SentenceEncoder::<AD>::load(&dir, &Default::default()).expect("load");
    assert_eq!(
        model.max_seq_length() as u64,
        fixture["max_seq_length"].as_u64().expect("len")
    );

    let probes: Vec<String> = fixture["probes"]
        .as_array()
        .expect("probes")
        .iter()
        .map(text)
        .collect();
    let probes: Vec<&str> = probes.iter().map(String::as_str).collect();
    let embed = |m: &SentenceEncoder<I>| -> Vec<f32> {
        m.embed(&probes, None)
            .expect("embed")
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("vec")
    };
    let max_diff = |a: &[f32], b: &[f32]| -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    };
    let before = floats(&fixture["before"]);
    let zero_shot = max_diff(&embed(&model.valid()), &before);
    assert!(
        zero_shot < 1e-5,
        "zero-shot embeddings differ by {zero_shot}"
    );

    let trainer = Trainer::<AD>::new(
        TrainConfig {
            progress_bar: false,
            ..Default::default()
        },
        tmp.path().join("out"),
    )
    .expect("trainer");
    let mut adam = AdamW::<AD>::new(trainer.config().adamw);
    for (k, step) in fixture["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .enumerate()
    {
        let examples: Vec<Example> = step["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| Example {
                anchor: text(&row[0]),
                positive: text(&row[1]),
                negatives: vec![text(&row[2])],
            })
            .collect();
        let group = [(0..examples.len()).collect::<Vec<usize>>()];
        let lr = step["lr"].as_f64().expect("lr");
        let (next, stats) = trainer
            .step(model, &mut adam, &examples, &group, k as u64, lr)
            .expect("step");
        model = next;
        let (loss, norm) = (
            step["loss"].as_f64().expect("loss"),
            step["grad_norm"].as_f64().expect("norm"),
        );
        eprintln!(
            "step {k}: loss {} (PyTorch {loss}), gradient norm {} (PyTorch {norm})",
            stats.loss, stats.grad_norm
        );
        assert!(
            (stats.loss - loss).abs() < 1e-5,
            "step {k}: loss {}",
            stats.loss
        );
        assert!(
            (stats.grad_norm - norm).abs() < 1e-4 * norm,
            "step {k}: gradient norm {}",
            stats.grad_norm
        );
    }
    let after = floats(&fixture["after"]);
    let got = embed(&model.valid());
    let moved = max_diff(&after, &before);
    let diff = max_diff(&got, &after);
    eprintln!("after three steps: embeddings moved {moved}, differ from PyTorch's by {diff}");
    assert!(moved > 1e-2, "the steps barely moved the model: {moved}");
    assert!(
        diff < 1e-5,
        "after three steps the embeddings differ by {diff}"
    );
}

/// 90 unit-ish vectors around three directions of a 16-d space, with seeded noise.
fn three_blobs() -> (embedtune_core::Embeddings, Vec<usize>) {
    let mut state = 12345u64;
    let mut noise = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.4
    };
    let mut values = Vec::new();
    let mut truth = Vec::new();
    for i in 0..90 {
        let blob = i % 3;
        for d in 0..16 {
            let centre = if d / 5 == blob { 1.0 } else { 0.0 };
            values.push(centre + noise());
        }
        truth.push(blob);
    }
    (
        embedtune_core::Embeddings::new(values, 16).expect("shape"),
        truth,
    )
}

#[test]
fn kmeans_recovers_separated_clusters_and_rejects_bad_input() {
    let (vectors, truth) = three_blobs();
    for seed in [0, 1, 42] {
        let labels = kmeans(&vectors, 3, seed).expect("kmeans");
        // Each blob is one cluster, and the three clusters differ.
        for blob in 0..3 {
            let of_blob: std::collections::BTreeSet<u32> = (0..90)
                .filter(|&i| truth[i] == blob)
                .map(|i| labels[i])
                .collect();
            assert_eq!(
                of_blob.len(),
                1,
                "seed {seed}: blob {blob} split into {of_blob:?}"
            );
        }
        let all: std::collections::BTreeSet<u32> = labels.iter().copied().collect();
        assert_eq!(all.len(), 3);
        assert_eq!(labels, kmeans(&vectors, 3, seed).expect("again"), "seeded");
    }
    // As many clusters as points: every point alone; duplicate points still give k labels < k.
    let four = embedtune_core::Embeddings::new(vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0], 2)
        .expect("shape");
    let labels = kmeans(&four, 3, 9).expect("kmeans");
    assert!(labels.iter().all(|&l| l < 3));
    assert_eq!(labels[0], labels[2]);
    assert_eq!(labels[1], labels[3]);
    let distinct =
        embedtune_core::Embeddings::new(vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0], 2).expect("shape");
    let labels = kmeans(&distinct, 3, 9).expect("kmeans");
    assert_eq!(
        labels
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );

    let config_error = |r: Result<Vec<u32>, TrainError>| match r {
        Err(TrainError::Config { name, reason }) => {
            assert_eq!(name, "topic_clusters");
            reason
        }
        other => panic!("expected a topic_clusters error, got {other:?}"),
    };
    assert!(config_error(kmeans(&vectors, 0, 1)).contains("0 clusters"));
    assert!(config_error(kmeans(&vectors, 91, 1)).contains("91 clusters asked for 90"));
    let mut bad = vectors.clone();
    bad.get_mut(7).expect("row")[3] = f32::NAN;
    assert!(config_error(kmeans(&bad, 3, 1)).contains("vector 7"));
    let mut zero = vectors.clone();
    zero.get_mut(5).expect("row").fill(0.0);
    assert!(config_error(kmeans(&zero, 3, 1)).contains("vector 5"));
}

#[test]
fn topic_aware_batches_train_with_given_or_clustered_topics() {
    let _serial = serial();
    let data = examples();
    // Given topics: the first six subjects, and the last six.
    let topics: std::collections::HashMap<String, u32> = data
        .iter()
        .enumerate()
        .map(|(i, e)| (e.anchor.clone(), (i / 12) as u32))
        .collect();
    let cfg = settings();
    let sampler = embedtune_data::BatchSampler::new(cfg.batch_size)
        .expect("sampler")
        .seed(cfg.seed)
        .no_duplicates(true);
    let ids: Vec<u32> = data.iter().map(|e| topics[&e.anchor]).collect();
    let expected: u64 = (0..cfg.epochs as u64)
        .map(|e| {
            sampler
                .topic_batches(&data, &ids, e)
                .expect("batches")
                .len() as u64
        })
        .sum();
    let out = tempfile::tempdir().expect("tmp");
    let outcome = Trainer::<AD>::new(cfg.clone(), out.path())
        .expect("trainer")
        .with_topics(topics)
        .train(tiny_model(), &data, None)
        .expect("train");
    assert_eq!(outcome.steps, expected);
    assert!(outcome.history.iter().all(|r| r.loss.is_finite()));

    // Clustered with the starting model.
    let out = tempfile::tempdir().expect("tmp");
    let clustered = TrainConfig {
        topic_clusters: Some(2),
        ..settings()
    };
    let outcome = Trainer::<AD>::new(clustered, out.path())
        .expect("trainer")
        .train(tiny_model(), &data, None)
        .expect("train");
    assert!(outcome.steps >= 6, "two epochs of at least 3 batches");

    // More topics than distinct anchors: a typed error before any step.
    let out = tempfile::tempdir().expect("tmp");
    let too_many = TrainConfig {
        topic_clusters: Some(25),
        ..settings()
    };
    match Trainer::<AD>::new(too_many, out.path())
        .expect("trainer")
        .train(tiny_model(), &data, None)
    {
        Err(TrainError::Config { name, .. }) => assert_eq!(name, "topic_clusters"),
        Err(e) => panic!("expected a topic_clusters error, got {e}"),
        Ok(_) => panic!("25 topics of 24 anchors trained"),
    }
    let zero = TrainConfig {
        topic_clusters: Some(0),
        ..settings()
    };
    assert!(Trainer::<AD>::new(zero, out.path()).is_err());
}
