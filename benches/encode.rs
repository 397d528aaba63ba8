//! Encoding throughput on the CPU backend, the cases of BENCHMARKS.md's encoding section
//! (needs `EMBEDTUNE_SHARED`):
//!
//! - `passages`: all-MiniLM-L6-v2, 256 SciFact passages (title + " " + text), max_seq 256,
//!   batch 32 (`peer_bench.py encode --docs 256`);
//! - `queries`: all-MiniLM-L6-v2, the 1,109 SciFact queries, batch 32
//!   (`peer_bench.py encode --texts queries --docs 1109`);
//! - `model`: any sentence-transformers directory named by `EMBEDTUNE_BENCH_MODEL` (e.g. the
//!   random BERT-base / BERT-large of `scripts/make_random_st_model.py`), 128 passages, max_seq
//!   256, batch `EMBEDTUNE_BENCH_BATCH` (32) (`peer_bench.py encode --model DIR --docs 128`);
//! - `sgemm`: the SGEMM ceiling, the best rate of the matrix product the forward uses, on
//!   1024 × 1024 × 1024 and a MiniLM-shaped product, all threads.
//!
//! `cargo bench --bench encode [-- passages|queries|model|sgemm]`; `--features flex,candle` adds
//! those backends to `passages`. Each case prints its tokens and GFLOP (linear layers and
//! attention over real tokens), from which tokens/s and GFLOP/s follow.

embedtune::use_mimalloc!();

use std::path::Path;
use std::time::{Duration, Instant};

use burn::tensor::backend::Backend;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use embedtune_encoder::{EncodeOptions, SentenceEncoder};

fn passages(shared: &Path, n: usize) -> Vec<String> {
    let text =
        std::fs::read_to_string(shared.join("data/scifact/corpus.jsonl")).expect("corpus.jsonl");
    text.lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            format!(
                "{} {}",
                v["title"].as_str().unwrap_or(""),
                v["text"].as_str().unwrap_or("")
            )
            .trim()
            .to_string()
        })
        .collect()
}

fn queries(shared: &Path) -> Vec<String> {
    let text =
        std::fs::read_to_string(shared.join("data/scifact/queries.jsonl")).expect("queries.jsonl");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["text"].as_str().unwrap_or("").to_string()
        })
        .collect()
}

/// FLOPs of one forward over texts of the given token counts: the linear layers on every real
/// token, and the two attention products per text (`2·L²·hidden` each).
fn forward_flops<B: Backend>(model: &SentenceEncoder<B>, lengths: &[usize]) -> f64 {
    let c = model.config();
    let (h, i, layers) = (
        c.hidden_size as f64,
        c.intermediate_size as f64,
        c.num_hidden_layers as f64,
    );
    let tokens: f64 = lengths.iter().map(|&l| l as f64).sum();
    let squares: f64 = lengths.iter().map(|&l| (l * l) as f64).sum();
    layers * (2.0 * tokens * (4.0 * h * h + 2.0 * h * i) + 4.0 * squares * h)
}

fn bench_case<B: Backend>(
    c: &mut Criterion,
    name: &str,
    model: &SentenceEncoder<B>,
    texts: &[String],
    batch_size: usize,
) {
    let lengths: Vec<usize> = model
        .tokenizer()
        .encode_ids(&texts.iter().map(String::as_str).collect::<Vec<_>>())
        .expect("tokenize")
        .iter()
        .map(Vec::len)
        .collect();
    let tokens: usize = lengths.iter().sum();
    let gflop = forward_flops(model, &lengths) / 1e9;
    let opts = EncodeOptions {
        batch_size,
        ..Default::default()
    };
    model
        .encode(&texts[..batch_size.min(texts.len())], &opts)
        .expect("warm-up");
    let mut group = c.benchmark_group(format!("encode/{name}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("texts", |b| {
        b.iter(|| model.encode(texts, &opts).expect("encode"))
    });
    group.finish();
    eprintln!(
        "{name}: {} texts, {tokens} tokens (max_seq {}), batch {batch_size}, {gflop:.1} GFLOP per pass \
         (tokens/s = texts/s × {:.2}; GFLOP/s = texts/s × {:.4})",
        texts.len(),
        model.max_seq_length(),
        tokens as f64 / texts.len() as f64,
        gflop / texts.len() as f64,
    );
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn minilm<B: Backend>(shared: &Path, device: &B::Device) -> SentenceEncoder<B> {
    SentenceEncoder::<B>::load(shared.join("models/all-MiniLM-L6-v2"), device).expect("model")
}

fn encode(c: &mut Criterion) {
    embedtune::retain_freed_memory();
    let Some(shared) = embedtune::shared_dir() else {
        eprintln!("skipping encode bench: set EMBEDTUNE_SHARED to the shared assets folder");
        return;
    };
    type Nd = burn_ndarray::NdArray<f32>;
    let device = Default::default();
    let docs = passages(&shared, env_usize("EMBEDTUNE_BENCH_DOCS", 256));
    let model = minilm::<Nd>(&shared, &device);
    bench_case(c, "passages", &model, &docs, 32);
    bench_case(c, "queries", &model, &queries(&shared), 32);
    #[cfg(feature = "flex")]
    bench_case(
        c,
        "passages-flex",
        &minilm::<burn_flex::Flex>(&shared, &Default::default()),
        &docs,
        32,
    );
    #[cfg(feature = "candle")]
    bench_case(
        c,
        "passages-candle",
        &minilm::<burn_candle::Candle<f32, i64>>(&shared, &Default::default()),
        &docs,
        32,
    );
    if let Ok(dir) = std::env::var("EMBEDTUNE_BENCH_MODEL") {
        let mut model = SentenceEncoder::<Nd>::load(&dir, &device).expect("EMBEDTUNE_BENCH_MODEL");
        model.set_max_seq_length(256).expect("max_seq 256");
        let docs = passages(&shared, env_usize("EMBEDTUNE_BENCH_DOCS", 128));
        bench_case(
            c,
            "model",
            &model,
            &docs,
            env_usize("EMBEDTUNE_BENCH_BATCH", 32),
        );
    }
}

/// GFLOP/s of `c = a·b` (`[m, k]·[k, n]`, row-major) with the gemm crate on all threads: the
/// best of several runs.
fn sgemm_rate(m: usize, k: usize, n: usize) -> f64 {
    let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 * 0.01).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.01).collect();
    let mut out = vec![0.0f32; m * n];
    let threads = rayon::current_num_threads();
    let mut best = 0.0f64;
    for _ in 0..20 {
        let t = Instant::now();
        // SAFETY: the three buffers have the sizes and strides passed.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                k as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(threads),
            );
        }
        best = best.max(2.0 * (m * k * n) as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    std::hint::black_box(&out);
    best
}

fn sgemm(_: &mut Criterion) {
    for (m, k, n) in [(1024, 1024, 1024), (2048, 2048, 2048), (8192, 384, 1536)] {
        eprintln!(
            "sgemm ceiling {m}×{k}×{n}: {:.1} GFLOP/s ({} threads)",
            sgemm_rate(m, k, n),
            rayon::current_num_threads()
        );
    }
}

criterion_group!(benches, sgemm, encode);
criterion_main!(benches);
