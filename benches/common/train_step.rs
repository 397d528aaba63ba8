//! What the training benches share: the SciFact train pairs and the trainer's own step
//! ([`Trainer::step`], the function `Trainer::train` calls for every step).

use std::ops::Range;
use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use embedtune_data::Example;
use embedtune_encoder::SentenceEncoder;
use embedtune_train::{AdamW, TrainConfig, Trainer};

/// (query, passage) examples of the SciFact train split, in qrels order.
pub fn examples(shared: &Path) -> Vec<Example> {
    let ds = embedtune_data::BeirDataset::load(shared.join("data/scifact"), &Default::default())
        .expect("scifact");
    ds.train_pairs("train").expect("train split")
}

/// The trainer whose step the benches time, with the default settings: MNRL (scale 20), global
/// norm clipped at 1, AdamW as transformers' Trainer. `step` writes nothing.
pub fn trainer<'e, Bk: AutodiffBackend>() -> Trainer<'e, Bk> {
    let settings = TrainConfig {
        progress_bar: false,
        ..Default::default()
    };
    Trainer::new(settings, std::env::temp_dir()).expect("settings")
}

/// Optimiser step number `index` on the examples in `batch` at learning rate 2e-5: embed the
/// queries and passages, MNRL, backward, clipping, AdamW.
pub fn step<Bk: AutodiffBackend>(
    trainer: &Trainer<'_, Bk>,
    model: SentenceEncoder<Bk>,
    adam: &mut AdamW<Bk>,
    examples: &[Example],
    batch: Range<usize>,
    index: u64,
) -> SentenceEncoder<Bk> {
    let group = [batch.collect::<Vec<usize>>()];
    trainer
        .step(model, adam, examples, &group, index, 2e-5)
        .expect("step")
        .0
}
