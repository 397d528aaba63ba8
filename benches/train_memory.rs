//! Peak memory of training, full fine-tuning against LoRA, one setting per process (so that
//! neither inherits the other's high-water mark or allocator pools). Prints seconds per step
//! and the process's peak resident set (VmHWM) after `--steps` optimiser steps on SciFact
//! train pairs.
//!
//! ```text
//! EMBEDTUNE_SHARED=../shared cargo bench --bench train_memory -- full minilm 32 256 2
//! EMBEDTUNE_SHARED=../shared cargo bench --bench train_memory -- lora large-random 8 128 2
//! ```
//!
//! Arguments: `full|lora`, `minilm|large-random`, pairs per batch, max_seq_len, steps, and
//! optionally LoRA's dropout (default 0.1).
//! `minilm` is `../shared/models/all-MiniLM-L6-v2` (22.7 M parameters); `large-random` is
//! the same architecture at E5-large-v2's / BERT-large's size (24 layers, 1024 wide, 16 heads,
//! 4096 intermediate, 335 M parameters) with random weights and MiniLM's tokenizer: the memory
//! and time of a step do not depend on the weights' values. LoRA: r 8, alpha 16, dropout 0.1 on
//! query, key, value and the dense layers.

embedtune::use_mimalloc!();

use std::time::Instant;

use burn::tensor::backend::Backend;
use embedtune_encoder::{LoraConfig, SentenceEncoder, TextTokenizer, TransformerConfig};
use embedtune_train::{peak_memory_mib, AdamW, AdamWConfig};

#[path = "common/train_step.rs"]
mod common;

type B = embedtune::CpuBackend;

fn main() {
    embedtune::retain_freed_memory();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if !(5..=6).contains(&args.len()) {
        eprintln!(
            "usage: train_memory full|lora minilm|large-random PAIRS MAX_SEQ STEPS [DROPOUT]"
        );
        return;
    }
    let Some(shared) = embedtune::shared_dir() else {
        eprintln!("skipping train_memory: set EMBEDTUNE_SHARED to the shared assets folder");
        return;
    };
    let num = |i: usize| -> usize { args[i].parse().expect("a number") };
    let (batch, max_seq, steps) = (num(2), num(3), num(4));
    let dropout: f64 = args.get(5).map_or(0.1, |d| d.parse().expect("a dropout"));
    let minilm = shared.join("models/all-MiniLM-L6-v2");
    let device = Default::default();
    let mut model = match args[1].as_str() {
        "minilm" => SentenceEncoder::<B>::load(&minilm, &device).expect("model"),
        "large-random" => {
            let text = std::fs::read_to_string(minilm.join("config.json")).expect("config");
            let mut raw: serde_json::Value = serde_json::from_str(&text).expect("json");
            for (key, value) in [
                ("hidden_size", 1024),
                ("num_hidden_layers", 24),
                ("num_attention_heads", 16),
                ("intermediate_size", 4096),
            ] {
                raw[key] = value.into();
            }
            let config =
                TransformerConfig::from_json_str(&raw.to_string(), &minilm).expect("large config");
            let tokenizer = TextTokenizer::from_file(&minilm.join("tokenizer.json"), max_seq, 0)
                .expect("tokenizer");
            B::seed(&device, 7);
            SentenceEncoder::<B>::random(config, tokenizer, &device).expect("random model")
        }
        other => panic!("unknown model {other}"),
    };
    model.set_max_seq_length(max_seq).expect("max_seq");
    let lora = match args[0].as_str() {
        "full" => false,
        "lora" => true,
        other => panic!("unknown setting {other}"),
    };
    if lora {
        model = model
            .with_lora(
                LoraConfig {
                    r: 8,
                    alpha: 16.0,
                    dropout,
                    ..Default::default()
                },
                42,
            )
            .expect("lora");
    }
    let (trainable, total) = model.parameter_counts();
    let loaded = peak_memory_mib().unwrap_or(f64::NAN);
    let data = common::examples(&shared);
    let trainer = common::trainer::<B>();
    let mut adam = AdamW::<B>::new(AdamWConfig::default());
    let mut times = Vec::new();
    for i in 0..steps.min(data.len() / batch) {
        let t = Instant::now();
        model = common::step(
            &trainer,
            model,
            &mut adam,
            &data,
            i * batch..(i + 1) * batch,
            i as u64,
        );
        times.push(t.elapsed().as_secs_f64());
    }
    println!(
        "{{\"setting\": \"{}\", \"model\": \"{}\", \"lora_dropout\": {dropout}, \"pairs\": {batch}, \"max_seq\": {max_seq}, \"trainable\": {trainable}, \"total\": {total}, \"peak_after_load_mib\": {loaded:.0}, \"step_seconds\": {times:?}, \"peak_mib\": {:.0}}}",
        args[0],
        args[1],
        peak_memory_mib().unwrap_or(f64::NAN)
    );
}
