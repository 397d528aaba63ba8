//! The whole encoder on the fused CPU path (`Autodiff<NdArray<f32>>`) against burn's generic
//! tensor ops (`Autodiff<NdArray<f32, i32>>`, a backend type the fused kernels do not take
//! over): the same tiny BERT (saved once, loaded into both; ReLU and no dropout, so that both
//! compute the same function) must give the same embeddings and the same gradient for every
//! parameter.
//!
//! Both sides are f32, and the generic side's LayerNorm is burn's composite of f32 ops: it
//! measured up to 3e-4 (relative to the largest gradient of a parameter) away from the fused
//! kernel here, while the fused LayerNorm backward is within 1e-6 of the same formula in f64
//! (`fused::kernels` tests). So this test's tolerance is 1e-3: it catches a wrong gradient
//! (an O(1) difference), the kernels' precision is checked against f64 in the unit tests.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use embedtune_encoder::{testing, SentenceEncoder, TransformerConfig};

type Fast = Autodiff<NdArray<f32>>;
/// burn-ndarray in f32 with i32 indices: a different backend type, so the generic path.
type Generic = Autodiff<NdArray<f32, i32>>;

const TEXTS: [&str; 4] = [
    "employers report contributions through superstream",
    "a rollover",
    "what is a clearing house for small business super?",
    "",
];

/// Every parameter's gradient, in the module's visiting order.
struct Collect<'a, B: AutodiffBackend> {
    grads: &'a B::Gradients,
    out: Vec<Vec<f64>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let g = param
            .val()
            .grad(self.grads)
            .expect("every parameter has a gradient");
        self.out
            .push(g.into_data().convert::<f64>().to_vec().expect("floats"));
    }
}

fn run<B: AutodiffBackend>(dir: &std::path::Path) -> (Vec<f64>, Vec<Vec<f64>>) {
    let model = SentenceEncoder::<B>::load(dir, &Default::default()).expect("load");
    let emb = model.embed(&TEXTS, None).expect("embed");
    let [n, d] = emb.dims();
    // A loss that weighs every coordinate differently (a plain sum of unit vectors' parts
    // would leave some gradients zero).
    let w: Vec<f32> = (0..n * d)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let w = Tensor::<B, 2>::from_data(TensorData::new(w, [n, d]), &Default::default());
    let loss = (emb.clone() * w).sum();
    let grads = loss.backward();
    let mut c = Collect::<B> {
        grads: &grads,
        out: Vec::new(),
    };
    model.visit(&mut c);
    let emb = emb.into_data().convert::<f64>().to_vec().expect("floats");
    (emb, c.out)
}

#[test]
fn fused_cpu_path_matches_generic_ops() {
    let tokenizer = testing::tiny_tokenizer(32).expect("tokenizer");
    let config = TransformerConfig::tiny_bert(tokenizer.vocab_size(), 32, 2, 4).expect("config");
    // Seeded weights, drawn while no other test draws from the shared generator.
    let model = {
        let _serial = crate::common::serial();
        NdArray::<f32>::seed(&Default::default(), 1);
        SentenceEncoder::<NdArray<f32>>::random(config, tokenizer, &Default::default())
            .expect("model")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    model.save(dir.path()).expect("save");
    // Dropout off and ReLU in the saved config.json (the model writes back the config it was
    // made from): burn's GELU gradient is the tanh approximation's, the fused one exact.
    let path = dir.path().join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("config")).expect("json");
    json["hidden_dropout_prob"] = 0.0.into();
    json["attention_probs_dropout_prob"] = 0.0.into();
    json["hidden_act"] = "relu".into();
    std::fs::write(&path, json.to_string()).expect("write config");

    let (fast_emb, fast_grads) = run::<Fast>(dir.path());
    let (exact_emb, exact_grads) = run::<Generic>(dir.path());
    let worst = fast_emb
        .iter()
        .zip(&exact_emb)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 1e-5, "embeddings differ by {worst}");
    assert_eq!(fast_grads.len(), exact_grads.len());
    // Gradients that are zero in exact arithmetic (the key biases: softmax ignores a constant
    // shift) are rounding noise on both sides; measure them against the model's largest.
    let largest = exact_grads
        .iter()
        .flatten()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (f, e)) in fast_grads.iter().zip(&exact_grads).enumerate() {
        let scale = e.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = f
            .iter()
            .zip(e)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff <= 1e-3 * scale.max(1e-6 * largest),
            "parameter {i} ({} values): gradients differ by {diff} (largest {scale})",
            f.len()
        );
    }
}
