//! MultipleNegativesRankingLoss forward + backward: 32 anchors × (1 positive + 1 hard negative)
//! × 384-d embeddings on `Autodiff<NdArray<f32>>` (CPU), i.e. the loss part of one
//! all-MiniLM-L6-v2 training step at batch 32. Results: BENCHMARKS.md.
//!
//! `cargo bench --bench losses`

embedtune::use_mimalloc!();

use std::hint::black_box;

use burn::tensor::{Distribution, Tensor};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use criterion::{criterion_group, criterion_main, Criterion};
use embedtune_losses::{
    CoSentLoss, MultipleNegativesRankingLoss, MultipleNegativesSymmetricRankingLoss,
};

type B = Autodiff<NdArray<f32>>;
const BATCH: usize = 32;
const DIM: usize = 384;

fn embeddings() -> [Tensor<B, 2>; 3] {
    let device = Default::default();
    [0, 1, 2].map(|_| Tensor::<B, 2>::random([BATCH, DIM], Distribution::Normal(0.0, 1.0), &device))
}

fn bench_losses(c: &mut Criterion) {
    let [a, p, n] = embeddings();
    let mnrl = MultipleNegativesRankingLoss::default();
    let symmetric = MultipleNegativesSymmetricRankingLoss::default();
    let cosent = CoSentLoss::default();
    let scores = Tensor::<B, 1>::random(
        [BATCH],
        Distribution::Uniform(0.0, 1.0),
        &Default::default(),
    );

    c.bench_function("mnrl_fwd_bwd_32x(1+1)x384_ndarray_f32", |bench| {
        bench.iter(|| {
            let (a, p, n) = (
                a.clone().require_grad(),
                p.clone().require_grad(),
                n.clone().require_grad(),
            );
            let loss = mnrl.forward(a.clone(), p, vec![n]).unwrap();
            let grads = loss.backward();
            black_box(a.grad(&grads).unwrap());
        })
    });
    c.bench_function("mnrl_fwd_only_32x(1+1)x384_ndarray_f32", |bench| {
        bench.iter(|| {
            black_box(
                mnrl.forward(a.clone(), p.clone(), vec![n.clone()])
                    .unwrap()
                    .into_scalar(),
            )
        })
    });
    c.bench_function("mnrl_symmetric_fwd_bwd_32x(1+1)x384_ndarray_f32", |bench| {
        bench.iter(|| {
            let (a, p, n) = (
                a.clone().require_grad(),
                p.clone().require_grad(),
                n.clone().require_grad(),
            );
            let loss = symmetric.forward(a.clone(), p, vec![n]).unwrap();
            black_box(a.grad(&loss.backward()).unwrap());
        })
    });
    c.bench_function("cosent_fwd_bwd_32x384_ndarray_f32", |bench| {
        bench.iter(|| {
            let (a, p) = (a.clone().require_grad(), p.clone().require_grad());
            let loss = cosent.forward(a.clone(), p, scores.clone()).unwrap();
            black_box(a.grad(&loss.backward()).unwrap());
        })
    });
}

criterion_group!(benches, bench_losses);
criterion_main!(benches);
