//! Data pipeline throughput on SciFact: parse (corpus + queries + train qrels) and tokenise
//! (the encoder's `TextTokenizer` on the all-MiniLM-L6-v2 tokenizer, max_seq_len 256, batches
//! of 32, truncated and padded) the 5,183 passages and the 919 train pairs, in texts/s. Needs
//! `EMBEDTUNE_SHARED` (skips with a message otherwise).
//!
//! `cargo bench --bench data`; compare with `python3 $EMBEDTUNE_SHARED/tools/peer_bench.py encode`.

embedtune::use_mimalloc!();

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use embedtune_data::{BeirDataset, ReadOptions};
use embedtune_encoder::TextTokenizer;

const BATCH: usize = 32;
const MAX_SEQ: usize = 256;

fn shared() -> Option<PathBuf> {
    let root = PathBuf::from(std::env::var_os("EMBEDTUNE_SHARED")?);
    root.join("data/scifact").exists().then_some(root)
}

/// Tokenises `texts` in batches; returns the number of non-padding tokens (kept so the work is used).
fn tokenise_all(tok: &TextTokenizer, texts: &[&str]) -> usize {
    texts
        .chunks(BATCH)
        .map(|b| {
            tok.batch(b, None)
                .expect("tokenise")
                .lengths()
                .iter()
                .sum::<usize>()
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let Some(root) = shared() else {
        eprintln!(
            "data bench skipped: EMBEDTUNE_SHARED unset or $EMBEDTUNE_SHARED/data/scifact missing"
        );
        return;
    };
    let dir = root.join("data/scifact");
    let opts = ReadOptions::default();
    // Pad id 0: all-MiniLM-L6-v2's `[PAD]` (its config.json's pad_token_id).
    let tok = TextTokenizer::from_file(
        &root.join("models/all-MiniLM-L6-v2/tokenizer.json"),
        MAX_SEQ,
        0,
    )
    .expect("tokenizer");
    let ds = BeirDataset::load_splits(&dir, &["train"], &opts).expect("scifact");
    let corpus: Vec<&str> = ds.corpus().iter().map(|d| d.text.as_str()).collect();
    let pairs = ds.train_pairs("train").expect("train pairs");
    let pair_texts: Vec<&str> = pairs
        .iter()
        .flat_map(|e| [e.anchor.as_str(), e.positive.as_str()])
        .collect();
    println!(
        "scifact: {} passages, {} queries, {} train pairs ({} texts); rayon threads: {}",
        corpus.len(),
        ds.queries().len(),
        pairs.len(),
        pair_texts.len(),
        rayon::current_num_threads()
    );

    let mut g = c.benchmark_group("data");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(2));

    let parsed_texts = (ds.corpus().len() + ds.queries().len()) as u64;
    g.throughput(Throughput::Elements(parsed_texts));
    g.bench_function("parse_scifact_corpus_queries_train_qrels", |b| {
        b.iter(|| BeirDataset::load_splits(&dir, &["train"], &opts).expect("scifact"))
    });

    g.throughput(Throughput::Elements(corpus.len() as u64));
    g.bench_function(BenchmarkId::new("tokenise_corpus", BATCH), |b| {
        b.iter(|| tokenise_all(&tok, &corpus))
    });

    g.throughput(Throughput::Elements(pair_texts.len() as u64));
    g.bench_function(BenchmarkId::new("tokenise_train_pairs", BATCH), |b| {
        b.iter(|| tokenise_all(&tok, &pair_texts))
    });

    // End to end: read the files, then tokenise the corpus and both sides of the train pairs.
    g.throughput(Throughput::Elements(
        (corpus.len() + pair_texts.len()) as u64,
    ));
    g.bench_function("parse_and_tokenise_corpus_and_train_pairs", |b| {
        b.iter(|| {
            let ds = BeirDataset::load_splits(&dir, &["train"], &opts).expect("scifact");
            let corpus: Vec<&str> = ds.corpus().iter().map(|d| d.text.as_str()).collect();
            let pairs = ds.train_pairs("train").expect("pairs");
            let anchors: Vec<&str> = pairs.iter().map(|e| e.anchor.as_str()).collect();
            let positives: Vec<&str> = pairs.iter().map(|e| e.positive.as_str()).collect();
            tokenise_all(&tok, &corpus)
                + tokenise_all(&tok, &anchors)
                + tokenise_all(&tok, &positives)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
