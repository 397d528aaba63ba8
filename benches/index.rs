//! `embedtune-index` on the shared SciFact vectors (45,391 all-MiniLM-L6-v2 sentence vectors,
//! 1,109 queries, 384 dimensions): HNSW build time, recall@10 and queries/s per `ef_search`
//! (one thread, and all threads) on the search layout, and the exact (flat) index's queries/s
//! for single queries and batches. Write-up and the hnswlib comparison: BENCHMARKS.md.
//!
//! ```text
//! EMBEDTUNE_SHARED=/path/to/shared cargo bench --bench index
//! ```
//!
//! The shared folder defaults to `../shared` beside the workspace; without it the bench prints
//! why and exits. Criterion reports each measurement's throughput in queries/s ("elem/s").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use embedtune_index::{Embeddings, FlatIndex, Hit, HnswIndex, HnswParams, Metric, VectorIndex};

const DIM: usize = 384;
const K: usize = 10;
const EFS: [usize; 5] = [16, 32, 64, 128, 256];

fn shared_vectors() -> Option<PathBuf> {
    let shared = std::env::var_os("EMBEDTUNE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("data/vectors");
    dir.join("scifact_sentences.f16").is_file().then_some(dir)
}

fn read_f16(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect()
}

fn recall(found: &[Vec<Hit>], truth: &[Vec<Hit>]) -> f64 {
    let hits: usize = found
        .iter()
        .zip(truth)
        .map(|(f, t)| f.iter().filter(|h| t.iter().any(|x| x.id == h.id)).count())
        .sum();
    hits as f64 / (K * truth.len()) as f64
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs `f` once and returns its result and wall time.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

fn main() {
    let Some(dir) = shared_vectors() else {
        eprintln!(
            "index bench skipped: set EMBEDTUNE_SHARED to the shared folder (with data/vectors)"
        );
        return;
    };
    let base = read_f16(&dir.join("scifact_sentences.f16"));
    let queries = read_f16(&dir.join("scifact_queries.f16"));
    let (n, n_q) = (base.len() / DIM, queries.len() / DIM);
    let matrix = |v: &[f32]| Embeddings::new(v.to_vec(), DIM).expect("whole vectors");
    let (base_m, queries_m) = (matrix(&base), matrix(&queries));
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let threads = rayon::current_num_threads();
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    println!("index bench: {n} base vectors, {n_q} queries, dim {DIM}, {threads} rayon threads");
    println!("load average at start: {}", load_average());

    let mut flat = FlatIndex::new(DIM, Metric::Cosine).unwrap();
    flat.add(&ids, &base_m).unwrap();
    let (truth, exact) = timed(|| flat.search_batch(&queries_m, K).unwrap());
    println!(
        "flat: one batch of {n_q} queries, first run: {:.3} s = {:.0} q/s",
        exact.as_secs_f64(),
        n_q as f64 / exact.as_secs_f64()
    );

    let params = HnswParams {
        m: 16,
        ef_construction: 200,
        ef_search: 64,
    };
    let mut hnsw = HnswIndex::new(DIM, params).unwrap();
    let ((), build) = timed(|| hnsw.add(&ids, &base_m).unwrap());
    println!(
        "hnsw build (M {}, ef_construction {}, {threads} threads): {:.2} s",
        params.m,
        params.ef_construction,
        build.as_secs_f64()
    );
    let one_pass = |hnsw: &HnswIndex, ef: usize| {
        let ((), t) = timed(|| {
            one_thread.install(|| {
                for q in queries.chunks_exact(DIM) {
                    hnsw.search_with_ef(q, K, ef).unwrap();
                }
            })
        });
        n_q as f64 / t.as_secs_f64()
    };
    let ((), compact) = timed(|| hnsw.compact().unwrap());
    println!(
        "hnsw compact (search layout): {:.3} s; one pass at ef 64 on one thread: {:.0} q/s",
        compact.as_secs_f64(),
        one_pass(&hnsw, 64)
    );
    for ef in EFS {
        let found = hnsw.search_batch_with_ef(&queries_m, K, ef).unwrap();
        println!("hnsw ef {ef:>3}: recall@{K} {:.4}", recall(&found, &truth));
    }

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let query = |i: u64| &queries[(i as usize % n_q) * DIM..(i as usize % n_q + 1) * DIM];

    let mut g = c.benchmark_group("hnsw");
    g.throughput(Throughput::Elements(1));
    for ef in EFS {
        // one query at a time on one thread
        g.bench_function(format!("ef{ef}/1-thread"), |b| {
            one_thread.install(|| {
                let mut i = 0;
                b.iter(|| {
                    i += 1;
                    hnsw.search_with_ef(query(i), K, ef).unwrap()
                })
            })
        });
    }
    g.throughput(Throughput::Elements(n_q as u64));
    for ef in EFS {
        // the whole query set as one batch, queries spread over all threads
        g.bench_function(format!("ef{ef}/{threads}-threads-batch"), |b| {
            b.iter(|| hnsw.search_batch_with_ef(&queries_m, K, ef).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("flat");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("single/{threads}-threads"), |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            flat.search(query(i), K).unwrap()
        })
    });
    for batch in [16, 64, n_q] {
        g.throughput(Throughput::Elements(batch as u64));
        let chunk = matrix(&queries[..batch * DIM]);
        g.bench_function(format!("batch{batch}/{threads}-threads"), |b| {
            b.iter(|| flat.search_batch(&chunk, K).unwrap())
        });
    }
    g.throughput(Throughput::Elements(n_q as u64));
    g.bench_function(format!("batch{n_q}/1-thread"), |b| {
        one_thread.install(|| b.iter(|| flat.search_batch(&queries_m, K).unwrap()))
    });
    g.finish();

    c.final_summary();
    println!("load average at end: {}", load_average());
}
