//! GISTEmbed against sentence-transformers: `fixtures/gist.json` holds float64 model and guide
//! embeddings with the loss and d(loss)/d(model embeddings) of `GISTEmbedLoss` /
//! `CachedGISTEmbedLoss` (`scripts/make_gist_fixture.py`). Checked on f64 (1e-12 relative) and
//! f32 (1e-5), directly and through [`CachedLoss`] (GradCache) with mini-batches of 2.

use super::common::{rel_err, tensor2, values};
use burn::tensor::{backend::AutodiffBackend, Tensor};
use embedtune_losses::{CachedLoss, GistEmbedLoss, LossError, MarginStrategy};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    params: Value,
    inputs: Vec<Vec<Vec<f64>>>,
    guide: Vec<Vec<Vec<f64>>>,
    loss: f64,
    grads: Vec<Vec<Vec<f64>>>,
}

fn fixture() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gist.json");
    let text = std::fs::read_to_string(path).expect("gist.json is checked in");
    serde_json::from_str(&text).expect("gist.json parses")
}

/// Our loss with the case's parameters, over our defaults (which must be the reference's).
fn loss_for(case: &Case) -> GistEmbedLoss {
    let d = GistEmbedLoss::default();
    let p = &case.params;
    let strategy = match p.get("margin_strategy").and_then(Value::as_str) {
        None | Some("absolute") => MarginStrategy::Absolute,
        Some("relative") => MarginStrategy::Relative,
        Some(other) => panic!("unknown margin strategy {other}"),
    };
    GistEmbedLoss::new()
        .with_temperature(
            p.get("temperature")
                .and_then(Value::as_f64)
                .unwrap_or(d.temperature),
        )
        .with_margin(
            strategy,
            p.get("margin").and_then(Value::as_f64).unwrap_or(d.margin),
        )
        .with_contrast(
            p.get("contrast_anchors")
                .and_then(Value::as_bool)
                .unwrap_or(d.contrast_anchors),
            p.get("contrast_positives")
                .and_then(Value::as_bool)
                .unwrap_or(d.contrast_positives),
        )
}

fn matrices<B: AutodiffBackend>(m: &[Vec<Vec<f64>>], device: &B::Device) -> Vec<Tensor<B, 2>> {
    m.iter()
        .map(|rows| {
            let flat: Vec<f64> = rows.iter().flatten().copied().collect();
            tensor2::<B>(&flat, rows.len(), rows[0].len(), device)
        })
        .collect()
}

/// (loss relative error, worst gradient relative error) of one case, in one graph.
fn direct<B: AutodiffBackend>(case: &Case) -> (f64, f64) {
    let device = B::Device::default();
    let leaves: Vec<Tensor<B, 2>> = matrices::<B>(&case.inputs, &device)
        .into_iter()
        .map(Tensor::require_grad)
        .collect();
    let guide = matrices::<B>(&case.guide, &device);
    let loss = loss_for(case).forward(&leaves, &guide).expect(&case.name);
    let grads = loss.backward();
    let loss_err = rel_err(&values(loss), &[case.loss]);
    let grad_err = leaves
        .iter()
        .zip(&case.grads)
        .map(|(leaf, want)| {
            let got = values(leaf.grad(&grads).expect("a gradient"));
            rel_err(&got, &want.iter().flatten().copied().collect::<Vec<_>>())
        })
        .fold(0.0, f64::max);
    (loss_err, grad_err)
}

/// The same through GradCache: the "model" is one parameter per column, so the parameter
/// gradients are the embedding gradients.
fn cached<B: AutodiffBackend>(case: &Case) -> (f64, f64) {
    use burn::module::{Module, Param};
    #[derive(Module, Debug)]
    struct Columns<B: burn::tensor::backend::Backend> {
        columns: Vec<Param<Tensor<B, 2>>>,
    }
    let device = B::Device::default();
    let model = Columns {
        columns: matrices::<B>(&case.inputs, &device)
            .into_iter()
            .map(Param::from_tensor)
            .collect(),
    };
    let guided = loss_for(case).with_guide(matrices::<B>(&case.guide, &device));
    let sizes: Vec<usize> = case.inputs.iter().map(Vec::len).collect();
    let out = CachedLoss::new(guided, 2)
        .unwrap()
        .forward_backward(&model, &sizes, None, |m: &Columns<B>, mb| {
            let t = m.columns[mb.column].val();
            Ok::<_, std::convert::Infallible>(t.narrow(0, mb.range.start, mb.range.len()))
        })
        .expect(&case.name);
    let loss_err = rel_err(&values(out.loss), &[case.loss]);
    let grad_err = model
        .columns
        .iter()
        .zip(&case.grads)
        .map(|(p, want)| {
            let got = values(
                out.grads
                    .get::<B::InnerBackend, 2>(p.id)
                    .expect("a gradient"),
            );
            rel_err(&got, &want.iter().flatten().copied().collect::<Vec<_>>())
        })
        .fold(0.0, f64::max);
    (loss_err, grad_err)
}

/// Every case, direct and cached, within `tol`.
pub fn check<B: AutodiffBackend>(backend: &str, tol: f64) {
    let fixture = fixture();
    let names: Vec<&str> = fixture.cases.iter().map(|c| c.name.as_str()).collect();
    assert!(
        names.contains(&"cached_two_negatives") && names.len() >= 6,
        "{names:?}"
    );
    let mut failures = Vec::new();
    for case in &fixture.cases {
        for (how, (loss_err, grad_err)) in
            [("direct", direct::<B>(case)), ("cached", cached::<B>(case))]
        {
            eprintln!(
                "{backend} {:<22} {how}: loss rel err {loss_err:.3e}  grad rel err {grad_err:.3e}",
                case.name
            );
            if !(loss_err <= tol && grad_err <= tol) {
                failures.push(format!("{} ({how})", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{backend}: over {tol:e}: {failures:?}");
}

/// The guide must cover the same columns and rows as the model's embeddings.
pub fn errors<B: AutodiffBackend>() {
    let device = B::Device::default();
    let case = &fixture().cases[1];
    let inputs = matrices::<B>(&case.inputs, &device);
    let guide = matrices::<B>(&case.guide, &device);
    let loss = GistEmbedLoss::new();
    let err = loss.forward(&inputs, &guide[..2]).unwrap_err();
    assert!(matches!(err, LossError::ColumnCount { .. }), "{err}");
    let short: Vec<Tensor<B, 2>> = guide.iter().map(|g| g.clone().narrow(0, 0, 3)).collect();
    let err = loss.forward(&inputs, &short).unwrap_err();
    assert_eq!(err.to_string(), "guide anchors has 3 rows, anchors 6");
    let err = loss
        .with_temperature(0.0)
        .forward(&inputs, &guide)
        .unwrap_err();
    assert!(matches!(err, LossError::InvalidParameter { .. }), "{err}");
}
