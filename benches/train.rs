//! One training step of all-MiniLM-L6-v2 (forward, MNRL, backward, clipping, AdamW) on 32
//! SciFact train pairs at max_seq 256: full fine-tuning and LoRA r 8. Reports seconds per step
//! (criterion). Freed memory stays with the process (`embedtune::retain_freed_memory`), so the
//! peak memory printed for the second setting includes the first's: compare peak memory with
//! `benches/train_memory.rs`, one setting per process. Needs `EMBEDTUNE_SHARED`.
//!
//! `cargo bench --bench train`; compare with
//! `python3 $EMBEDTUNE_SHARED/tools/peer_bench.py train --steps 5`.

embedtune::use_mimalloc!();

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use embedtune_encoder::{LoraConfig, SentenceEncoder};
use embedtune_train::{peak_memory_mib, AdamW, AdamWConfig};

#[path = "common/train_step.rs"]
mod common;
use common::{examples, step, trainer};

type B = embedtune::CpuBackend;
const BATCH: usize = 32;

/// Resets the kernel's peak-RSS counter (Linux), so each setting reports its own peak.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn train_step(c: &mut Criterion) {
    embedtune::retain_freed_memory();
    let Some(shared) = embedtune::shared_dir() else {
        eprintln!("skipping train bench: set EMBEDTUNE_SHARED to the shared assets folder");
        return;
    };
    let data = examples(&shared);
    let batches: Vec<std::ops::Range<usize>> = (0..data.len() / BATCH)
        .map(|b| b * BATCH..(b + 1) * BATCH)
        .collect();
    let trainer = trainer::<B>();
    let device = Default::default();
    let mut group = c.benchmark_group("train_step");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(60))
        .warm_up_time(Duration::from_secs(1));
    for (name, lora) in [
        ("full", None),
        (
            "lora_r8",
            Some(LoraConfig {
                r: 8,
                alpha: 16.0,
                dropout: 0.1,
                ..Default::default()
            }),
        ),
    ] {
        reset_peak_memory();
        let mut model = SentenceEncoder::<B>::load(shared.join("models/all-MiniLM-L6-v2"), &device)
            .expect("model");
        model.set_max_seq_length(256).expect("max_seq");
        if let Some(cfg) = lora {
            model = model.with_lora(cfg, 42).expect("lora");
        }
        let (trainable, total) = model.parameter_counts();
        let mut adam = AdamW::<B>::new(AdamWConfig::default());
        let mut slot = Some(model);
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let m = slot.take().expect("model");
                let batch = batches[i % batches.len()].clone();
                slot = Some(step(&trainer, m, &mut adam, &data, batch, i as u64));
                i += 1;
            })
        });
        eprintln!(
            "train_step/{name}: {trainable} of {total} parameters trainable, process peak RSS {:.0} MiB after {i} steps",
            peak_memory_mib().unwrap_or(f64::NAN)
        );
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
