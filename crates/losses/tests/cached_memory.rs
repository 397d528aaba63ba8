//! Peak heap memory of CachedLoss grows with the mini-batch, not the batch: measured with a
//! counting global allocator around one training step of an encoder whose activations dominate.
//! (One test in this binary, so no other test allocates meanwhile.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use embedtune_losses::{
    CachedMultipleNegativesRankingLoss, MiniBatch, MultipleNegativesRankingLoss,
};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak bytes allocated above the level at the start of `f`.
fn peak_during(f: impl FnOnce()) -> usize {
    let start = CURRENT.load(Ordering::SeqCst);
    PEAK.store(start, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst) - start
}

type B = Autodiff<NdArray<f32>>;
const VOCAB: usize = 100;
const SEQ: usize = 64;
const HIDDEN: usize = 128;
const OUT: usize = 32;

#[derive(Module, Debug)]
struct Encoder<B: Backend> {
    embedding: Embedding<B>,
    hidden: Linear<B>,
    out: Linear<B>,
}

impl<B: Backend> Encoder<B> {
    fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let n = tokens.dims()[0];
        let x = self.hidden.forward(self.embedding.forward(tokens)).tanh();
        self.out.forward(x).tanh().mean_dim(1).reshape([n, OUT])
    }
}

fn ids(batch: usize, column: usize) -> Vec<i64> {
    (0..batch * SEQ)
        .map(|i| ((i * 31 + column * 17 + i / SEQ) % VOCAB) as i64)
        .collect()
}

fn tokens(ids: &[i64], range: std::ops::Range<usize>) -> Tensor<B, 2, Int> {
    let rows = ids[range.start * SEQ..range.end * SEQ].to_vec();
    Tensor::from_data(
        TensorData::new(rows, [range.len(), SEQ]),
        &Default::default(),
    )
}

fn plain_step(model: &Encoder<B>, cols: &[Vec<i64>], batch: usize) {
    let a = model.forward(tokens(&cols[0], 0..batch));
    let p = model.forward(tokens(&cols[1], 0..batch));
    let loss = MultipleNegativesRankingLoss::default()
        .forward(a, p, vec![])
        .unwrap();
    let grads = GradientsParams::from_grads(loss.backward(), model);
    assert_eq!(grads.len(), 5);
}

fn cached_step(model: &Encoder<B>, cols: &[Vec<i64>], batch: usize, mini_batch: usize) {
    let loss = CachedMultipleNegativesRankingLoss::new(
        MultipleNegativesRankingLoss::default(),
        mini_batch,
    )
    .unwrap();
    let out = loss
        .forward_backward(
            model,
            &[batch, batch],
            None,
            |m: &Encoder<B>, mb: &MiniBatch| {
                Ok::<_, Infallible>(m.forward(tokens(&cols[mb.column], mb.range.clone())))
            },
        )
        .unwrap();
    assert_eq!(out.grads.len(), 5);
}

#[test]
fn cached_peak_memory_follows_the_mini_batch() {
    let device = Default::default();
    B::seed(&device, 1);
    let model = Encoder::<B> {
        embedding: EmbeddingConfig::new(VOCAB, HIDDEN).init(&device),
        hidden: LinearConfig::new(HIDDEN, HIDDEN).init(&device),
        out: LinearConfig::new(HIDDEN, OUT).init(&device),
    };
    let cols: Vec<Vec<i64>> = (0..2).map(|c| ids(64, c)).collect();
    // Warm-up: lazily initialised state (graph server, thread pools) is not counted.
    plain_step(&model, &cols, 4);
    cached_step(&model, &cols, 4, 2);

    let plain_16 = peak_during(|| plain_step(&model, &cols, 16));
    let plain_64 = peak_during(|| plain_step(&model, &cols, 64));
    let cached_16 = peak_during(|| cached_step(&model, &cols, 16, 4));
    let cached_64 = peak_during(|| cached_step(&model, &cols, 64, 4));
    let cached_64_mb16 = peak_during(|| cached_step(&model, &cols, 64, 16));
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    eprintln!(
        "peak MiB: plain batch 16 {:.2}, plain 64 {:.2}; cached mini-batch 4: batch 16 {:.2}, batch 64 {:.2}; cached mini-batch 16, batch 64 {:.2}",
        mib(plain_16),
        mib(plain_64),
        mib(cached_16),
        mib(cached_64),
        mib(cached_64_mb16)
    );
    // The measurement sees the activations: plain grows with the batch.
    assert!(plain_64 as f64 > 3.0 * plain_16 as f64);
    // Cached: 4x the batch at the same mini-batch costs little more (embeddings, logits)...
    assert!((cached_64 as f64) < 1.5 * cached_16 as f64);
    // ...far less than the plain loss on the same batch...
    assert!((cached_64 as f64) < 0.25 * plain_64 as f64);
    // ...and a larger mini-batch costs more.
    assert!(cached_64_mb16 as f64 > 2.0 * cached_64 as f64);
}
