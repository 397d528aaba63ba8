//! Parity with sentence-transformers 6.2: `../shared/reference/losses.json` holds float64 inputs,
//! loss values and d(loss)/d(input) computed by the Python losses (see
//! `shared/tools/make_reference.py`).
//!
//! Needs `EMBEDTUNE_SHARED` (the shared folder); skips with a message when it is unset or the file
//! is missing.

use std::path::PathBuf;

use super::{rel_err, tensor1, tensor2, values};
use burn::tensor::{backend::AutodiffBackend, Tensor};
use embedtune_losses::{
    CoSentLoss, ContrastiveLoss, Distance, EmbeddingLoss, MultipleNegativesRankingLoss,
    MultipleNegativesSymmetricRankingLoss, Similarity, TripletLoss,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    params: Value,
    inputs: Vec<Vec<Vec<f64>>>,
    labels: Option<Vec<f64>>,
    loss: f64,
    grads: Vec<Vec<Vec<f64>>>,
}

fn load() -> Option<Reference> {
    let Some(shared) = std::env::var_os("EMBEDTUNE_SHARED") else {
        eprintln!("skipped: EMBEDTUNE_SHARED is not set");
        return None;
    };
    let path = PathBuf::from(shared).join("reference/losses.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} is missing", path.display());
        return None;
    };
    Some(serde_json::from_str(&text).expect("losses.json parses"))
}

fn param(case: &Case, key: &str) -> Value {
    case.params.get(key).cloned().unwrap_or(Value::Null)
}

/// The loss of a case, built from our defaults; asserts the defaults are the parameters the
/// reference was computed with, so a change of default is caught here.
fn loss_for<B: AutodiffBackend>(case: &Case) -> Box<dyn EmbeddingLoss<B>> {
    let scale = param(case, "scale").as_f64();
    match case.name.as_str() {
        "mnrl" | "mnrl_hard_negatives" | "mnrl_symmetric" => {
            assert_eq!(param(case, "similarity"), "cosine");
            assert_eq!(scale, Some(MultipleNegativesRankingLoss::default().scale));
            assert_eq!(
                MultipleNegativesRankingLoss::default().similarity,
                Similarity::Cosine
            );
            if case.name == "mnrl_symmetric" {
                Box::new(MultipleNegativesSymmetricRankingLoss::default())
            } else {
                Box::new(MultipleNegativesRankingLoss::default())
            }
        }
        "mnrl_scale_50" => Box::new(MultipleNegativesRankingLoss::new().with_scale(scale.unwrap())),
        "cosent" => {
            assert_eq!(param(case, "similarity"), "cosine");
            assert_eq!(scale, Some(CoSentLoss::default().scale));
            Box::new(CoSentLoss::default())
        }
        "contrastive" => {
            let d = ContrastiveLoss::default();
            assert_eq!(param(case, "margin").as_f64(), Some(d.margin));
            assert_eq!(param(case, "distance"), "cosine_distance");
            assert_eq!(d.distance, Distance::Cosine);
            assert_eq!(param(case, "size_average").as_bool(), Some(d.size_average));
            Box::new(d)
        }
        "triplet" => {
            let d = TripletLoss::default();
            assert_eq!(param(case, "margin").as_f64(), Some(d.margin));
            assert_eq!(param(case, "distance"), "euclidean");
            assert_eq!(d.distance, Distance::Euclidean);
            Box::new(d)
        }
        other => panic!("unknown case {other}: add it to this test"),
    }
}

/// Runs every case; returns (name, loss relative error, worst gradient relative error).
fn run_all<B: AutodiffBackend>() -> Option<Vec<(String, f64, f64)>> {
    let reference = load()?;
    let device = B::Device::default();
    let mut out = Vec::new();
    for case in &reference.cases {
        let loss_fn = loss_for::<B>(case);
        let leaves: Vec<Tensor<B, 2>> = case
            .inputs
            .iter()
            .map(|m| {
                let flat: Vec<f64> = m.iter().flatten().copied().collect();
                tensor2::<B>(&flat, m.len(), m[0].len(), &device).require_grad()
            })
            .collect();
        let labels = case.labels.as_ref().map(|l| tensor1::<B>(l, &device));
        let loss = loss_fn.loss(&leaves, labels.as_ref()).expect(&case.name);
        let grads = loss.backward();
        let loss_err = rel_err(&values(loss), &[case.loss]);
        let mut grad_err: f64 = 0.0;
        assert_eq!(leaves.len(), case.grads.len());
        for (leaf, expected) in leaves.iter().zip(&case.grads) {
            let got = values(leaf.grad(&grads).expect("input has a gradient"));
            let want: Vec<f64> = expected.iter().flatten().copied().collect();
            grad_err = grad_err.max(rel_err(&got, &want));
        }
        out.push((case.name.clone(), loss_err, grad_err));
    }
    let names: Vec<&str> = out.iter().map(|c| c.0.as_str()).collect();
    for expected in [
        "mnrl",
        "mnrl_hard_negatives",
        "mnrl_scale_50",
        "mnrl_symmetric",
        "cosent",
        "contrastive",
        "triplet",
    ] {
        assert!(
            names.contains(&expected),
            "case {expected} missing from losses.json"
        );
    }
    Some(out)
}

/// Runs every case on backend `B` and asserts loss and gradient relative errors are within `tol`.
pub fn check<B: AutodiffBackend>(backend: &str, tol: f64) {
    let Some(results) = run_all::<B>() else {
        return;
    };
    let mut failures = Vec::new();
    for (name, loss_err, grad_err) in &results {
        eprintln!("{backend} {name:<22} loss rel err {loss_err:.3e}  grad rel err {grad_err:.3e}");
        if !(*loss_err <= tol && *grad_err <= tol) {
            failures.push(name.clone());
        }
    }
    assert!(failures.is_empty(), "{backend}: over {tol:e}: {failures:?}");
}
