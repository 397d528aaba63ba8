//! CachedLoss (GradCache) against the plain loss in one graph, on a tiny encoder (token embedding →
//! linear → tanh → dropout → mean pool), generic over the backend.

use std::convert::Infallible;

use super::{rel_err, tensor1, values};
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{backend::AutodiffBackend, backend::Backend, Int, Tensor, TensorData};
use embedtune_losses::{
    CachedLoss, CachedMultipleNegativesRankingLoss, CoSentLoss, EmbeddingLoss, LossError,
    MatryoshkaLoss, MiniBatch, MultipleNegativesRankingLoss, Pass,
};

/// The NdArray backend has one global RNG: tests that seed it and draw from it run one at a time.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

const VOCAB: usize = 40;
const SEQ: usize = 6;
const HIDDEN: usize = 12;
const OUT: usize = 10;
const BATCH: usize = 7;

#[derive(Module, Debug)]
struct TinyEncoder<B: Backend> {
    embedding: Embedding<B>,
    linear: Linear<B>,
    dropout: Dropout,
}

impl<B: Backend> TinyEncoder<B> {
    fn new(dropout: f64, device: &B::Device) -> Self {
        B::seed(device, 42);
        Self {
            embedding: EmbeddingConfig::new(VOCAB, HIDDEN).init(device),
            linear: LinearConfig::new(HIDDEN, OUT).init(device),
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    /// `[n, SEQ]` token ids → `[n, OUT]`.
    fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let n = tokens.dims()[0];
        let x = self.linear.forward(self.embedding.forward(tokens)).tanh();
        self.dropout.forward(x).mean_dim(1).reshape([n, OUT])
    }
}

/// Token ids of `columns` columns of BATCH texts, deterministic.
fn token_columns(columns: usize) -> Vec<Vec<i64>> {
    (0..columns)
        .map(|c| {
            (0..BATCH * SEQ)
                .map(|i| ((i * 7 + c * 13 + (i / SEQ) * (i % 5)) % VOCAB) as i64)
                .collect()
        })
        .collect()
}

fn tokens<B: Backend>(
    ids: &[i64],
    range: std::ops::Range<usize>,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let rows = &ids[range.start * SEQ..range.end * SEQ];
    Tensor::from_data(TensorData::new(rows.to_vec(), [range.len(), SEQ]), device)
}

fn param_grads<B: AutodiffBackend>(
    model: &TinyEncoder<B>,
    grads: &GradientsParams,
) -> Vec<Vec<f64>> {
    let bias = model.linear.bias.as_ref().expect("linear has a bias");
    vec![
        values(
            grads
                .get::<B::InnerBackend, 2>(model.embedding.weight.id)
                .expect("embedding grad"),
        ),
        values(
            grads
                .get::<B::InnerBackend, 2>(model.linear.weight.id)
                .expect("linear grad"),
        ),
        values(grads.get::<B::InnerBackend, 1>(bias.id).expect("bias grad")),
    ]
}

/// The plain loss in one graph. With `seeded_chunks = Some(cached)`, each mini-batch of
/// `cached` is embedded separately after reseeding with the seed the cached loss gives it (so
/// dropout draws the same masks), and the embeddings are concatenated.
fn plain<B: AutodiffBackend, L: EmbeddingLoss<B>>(
    loss: &L,
    model: &TinyEncoder<B>,
    ids: &[Vec<i64>],
    labels: Option<Tensor<B, 1>>,
    chunks: Option<&[MiniBatch]>,
) -> (f64, Vec<Vec<f64>>) {
    let device = B::Device::default();
    let columns: Vec<Tensor<B, 2>> = match chunks {
        None => ids
            .iter()
            .map(|c| model.forward(tokens(c, 0..BATCH, &device)))
            .collect(),
        Some(mbs) => (0..ids.len())
            .map(|c| {
                let parts = mbs
                    .iter()
                    .filter(|mb| mb.column == c)
                    .map(|mb| {
                        B::seed(&device, mb.seed);
                        model.forward(tokens(&ids[c], mb.range.clone(), &device))
                    })
                    .collect();
                Tensor::cat(parts, 0)
            })
            .collect(),
    };
    let value = loss.loss(&columns, labels.as_ref()).unwrap();
    let grads = GradientsParams::from_grads(value.backward(), model);
    (values(value)[0], param_grads(model, &grads))
}

/// The cached loss; also returns the mini-batches it asked for, in order.
fn cached<B: AutodiffBackend, L: EmbeddingLoss<B>>(
    loss: &CachedLoss<L>,
    model: &TinyEncoder<B>,
    ids: &[Vec<i64>],
    labels: Option<Tensor<B, 1>>,
    reseed: bool,
) -> (f64, Vec<Vec<f64>>, Vec<MiniBatch>) {
    let device = B::Device::default();
    let mut calls = Vec::new();
    let sizes = vec![BATCH; ids.len()];
    let out = loss
        .forward_backward(
            model,
            &sizes,
            labels,
            |m: &TinyEncoder<B>, mb: &MiniBatch| {
                calls.push(mb.clone());
                if reseed {
                    B::seed(&device, mb.seed);
                }
                Ok::<_, Infallible>(m.forward(tokens(&ids[mb.column], mb.range.clone(), &device)))
            },
        )
        .unwrap();
    (values(out.loss)[0], param_grads(model, &out.grads), calls)
}

fn worst(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| rel_err(x, y))
        .fold(0.0, f64::max)
}

pub fn cached_equals_plain<B: AutodiffBackend>(tol: f64) {
    let _rng = rng_lock();
    let device = B::Device::default();
    let model = TinyEncoder::<B>::new(0.0, &device);
    let ids = token_columns(3); // anchors, positives, one hard negative
    let mnrl = MultipleNegativesRankingLoss::default();
    // The cached loss runs first, on a module whose parameters are not initialised yet (burn
    // initialises them lazily, on first use).
    let first = CachedMultipleNegativesRankingLoss::new(mnrl, 3).unwrap();
    let first = cached(&first, &model, &ids, None, false);
    let (want_loss, want) = plain(&mnrl, &model, &ids, None, None);
    for mbs in [1, 3, BATCH, 100] {
        let loss = CachedMultipleNegativesRankingLoss::new(mnrl, mbs).unwrap();
        let (got_loss, got, calls) = if mbs == 3 {
            first.clone()
        } else {
            cached(&loss, &model, &ids, None, false)
        };
        let loss_err = rel_err(&[got_loss], &[want_loss]);
        let grad_err = worst(&got, &want);
        eprintln!(
            "mini-batch {mbs}: loss rel err {loss_err:.3e}, param grad rel err {grad_err:.3e}"
        );
        assert!(
            loss_err <= tol && grad_err <= tol,
            "mini-batch {mbs}: {loss_err:e} {grad_err:e}"
        );
        // Every text embedded exactly once per pass, in mini-batches of at most `mbs`.
        for pass in [Pass::Cache, Pass::Replay] {
            let of_pass: Vec<_> = calls.iter().filter(|c| c.pass == pass).collect();
            assert_eq!(of_pass.len(), 3 * BATCH.div_ceil(mbs));
            assert!(of_pass.iter().all(|c| c.range.len() <= mbs));
            let rows: usize = of_pass.iter().map(|c| c.range.len()).sum();
            assert_eq!(rows, 3 * BATCH);
        }
    }
}

pub fn cached_wraps_any_loss_matryoshka_and_cosent<B: AutodiffBackend>() {
    let _rng = rng_lock();
    let device = B::Device::default();
    let model = TinyEncoder::<B>::new(0.0, &device);
    let ids = token_columns(2);
    let matryoshka =
        MatryoshkaLoss::new(MultipleNegativesRankingLoss::default(), &[10, 4]).unwrap();
    let (want_loss, want) = plain(&matryoshka, &model, &ids, None, None);
    let (got_loss, got, _) = cached(
        &CachedLoss::new(matryoshka, 2).unwrap(),
        &model,
        &ids,
        None,
        false,
    );
    assert!(rel_err(&[got_loss], &[want_loss]) < 1e-10);
    assert!(worst(&got, &want) < 1e-10, "{:e}", worst(&got, &want));

    let scores = [0.1, 0.9, 0.4, 0.4, 0.7, 0.0, 0.3];
    let labels = || Some(tensor1::<B>(&scores, &device));
    let (want_loss, want) = plain(&CoSentLoss::default(), &model, &ids, labels(), None);
    let (got_loss, got, _) = cached(
        &CachedLoss::new(CoSentLoss::default(), 3).unwrap(),
        &model,
        &ids,
        labels(),
        false,
    );
    assert!(rel_err(&[got_loss], &[want_loss]) < 1e-10);
    assert!(worst(&got, &want) < 1e-10, "{:e}", worst(&got, &want));
}

pub fn dropout_needs_the_seed_hook<B: AutodiffBackend>() {
    let _rng = rng_lock();
    let device = B::Device::default();
    let model = TinyEncoder::<B>::new(0.3, &device);
    let ids = token_columns(2);
    let loss = CachedMultipleNegativesRankingLoss::new(MultipleNegativesRankingLoss::default(), 3)
        .unwrap()
        .with_seed(7);

    // Reseeding per mini-batch: the same gradients as the loss in one graph with the same masks.
    let (got_loss, got, calls) = cached(&loss, &model, &ids, None, true);
    let replay: Vec<MiniBatch> = calls
        .iter()
        .filter(|c| c.pass == Pass::Replay)
        .cloned()
        .collect();
    let cache: Vec<MiniBatch> = calls
        .iter()
        .filter(|c| c.pass == Pass::Cache)
        .cloned()
        .collect();
    let seeds = |v: &[MiniBatch]| {
        v.iter()
            .map(|c| (c.column, c.index, c.seed))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        seeds(&replay),
        seeds(&cache),
        "both passes see the same seeds"
    );
    let (want_loss, want) = plain(
        &MultipleNegativesRankingLoss::default(),
        &model,
        &ids,
        None,
        Some(&replay),
    );
    let err = worst(&got, &want);
    assert!(
        rel_err(&[got_loss], &[want_loss]) < 1e-10 && err < 1e-10,
        "loss {got_loss} vs {want_loss}, grads {err:e}"
    );

    // The next call gets new seeds (new dropout masks).
    let (_, _, next_calls) = cached(&loss, &model, &ids, None, true);
    assert_ne!(seeds(&next_calls[..cache.len()]), seeds(&cache));

    // Without reseeding, the replay draws other masks and the gradients are wrong: the check above
    // can fail.
    let (_, unseeded, _) = cached(&loss, &model, &ids, None, false);
    assert!(worst(&unseeded, &want) > 1e-3);
}

pub fn embed_errors_and_bad_shapes_are_reported<B: AutodiffBackend>() {
    let _rng = rng_lock();
    let device = B::Device::default();
    let model = TinyEncoder::<B>::new(0.0, &device);
    let ids = token_columns(2);
    let loss = CachedMultipleNegativesRankingLoss::new(MultipleNegativesRankingLoss::default(), 3)
        .unwrap();

    let err = loss
        .forward_backward(
            &model,
            &[BATCH, BATCH],
            None,
            |m: &TinyEncoder<B>, mb: &MiniBatch| {
                if mb.column == 1 && mb.index == 2 {
                    return Err("tokenizer failed".to_string());
                }
                Ok(m.forward(tokens(&ids[mb.column], mb.range.clone(), &device)))
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "embedding column 1, rows 6..7 failed: tokenizer failed"
    );

    let err = loss
        .forward_backward(
            &model,
            &[BATCH, BATCH],
            None,
            |m: &TinyEncoder<B>, mb: &MiniBatch| {
                let end = if mb.column == 1 {
                    mb.range.end.min(BATCH - 1)
                } else {
                    mb.range.end
                };
                Ok::<_, Infallible>(m.forward(tokens(
                    &ids[mb.column],
                    mb.range.start..end.max(mb.range.start),
                    &device,
                )))
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, LossError::EmbedShape { column: 1, .. }),
        "{err}"
    );

    let err = loss
        .forward_backward(
            &model,
            &[BATCH, 0],
            None,
            |m: &TinyEncoder<B>, mb: &MiniBatch| {
                Ok::<_, Infallible>(m.forward(tokens(&ids[mb.column], mb.range.clone(), &device)))
            },
        )
        .unwrap_err();
    assert!(matches!(err, LossError::Empty { .. }), "{err}");

    let err = loss
        .forward_backward(
            &model,
            &[BATCH, BATCH - 1],
            None,
            |m: &TinyEncoder<B>, mb: &MiniBatch| {
                Ok::<_, Infallible>(m.forward(tokens(&ids[mb.column], mb.range.clone(), &device)))
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "positives has 6 rows, anchors 7");
}
