//! Encoding throughput: 64 SciFact passages (title + " " + text), max_seq 256, batch 32, with
//! all-MiniLM-L6-v2 on the CPU backend(s). Needs `EMBEDTUNE_SHARED`.
//!
//! `cargo bench --bench encode`; `--features flex,candle` adds those backends.
//! Compare with `python3 $EMBEDTUNE_SHARED/tools/peer_bench.py encode --docs 64`.

/// mimalloc keeps freed tensor buffers for reuse; the system allocator returns them to the
/// kernel and pays page faults to get them back (measured: 12.5 s instead of 19.7 s to encode
/// 64 passages, see BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use burn::tensor::backend::Backend;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use embedtune_encoder::{EncodeOptions, SentenceEncoder};

const DOCS: usize = 64;

fn passages(shared: &std::path::Path) -> Vec<String> {
    let text =
        std::fs::read_to_string(shared.join("data/scifact/corpus.jsonl")).expect("corpus.jsonl");
    text.lines()
        .take(DOCS)
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

fn bench_backend<B: Backend>(
    c: &mut Criterion,
    name: &str,
    shared: &std::path::Path,
    device: B::Device,
) {
    let model =
        SentenceEncoder::<B>::load(shared.join("models/all-MiniLM-L6-v2"), &device).expect("model");
    let docs = passages(shared);
    let tokens: usize = model
        .tokenizer()
        .encode_ids(&docs.iter().map(String::as_str).collect::<Vec<_>>())
        .expect("tokenize")
        .iter()
        .map(Vec::len)
        .sum();
    let opts = EncodeOptions {
        batch_size: 32,
        ..Default::default()
    };
    model.encode(&docs[..32], &opts).expect("warm-up");
    let mut group = c.benchmark_group(format!("encode/{name}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    // Throughput in texts; tokens/s = texts/s × tokens / DOCS (printed below).
    group.throughput(Throughput::Elements(DOCS as u64));
    group.bench_function("texts", |b| {
        b.iter(|| model.encode(&docs, &opts).expect("encode"))
    });
    group.finish();
    eprintln!("{name}: {DOCS} passages, {tokens} tokens (max_seq 256)");
}

fn encode(c: &mut Criterion) {
    embedtune::retain_freed_memory();
    let Some(shared) = embedtune::shared_dir() else {
        eprintln!("skipping encode bench: set EMBEDTUNE_SHARED to the shared assets folder");
        return;
    };
    bench_backend::<burn_ndarray::NdArray<f32>>(c, "ndarray", &shared, Default::default());
    #[cfg(feature = "flex")]
    bench_backend::<burn_flex::Flex>(c, "flex", &shared, Default::default());
    #[cfg(feature = "candle")]
    bench_backend::<burn_candle::Candle<f32, i64>>(c, "candle", &shared, Default::default());
}

criterion_group!(benches, encode);
criterion_main!(benches);
