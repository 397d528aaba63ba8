//! What the training benches share: the SciFact train pairs and one optimiser step.

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use embedtune_encoder::SentenceEncoder;
use embedtune_losses::{EmbeddingLoss, MultipleNegativesRankingLoss};
use embedtune_train::{clip_grad_norm, AdamW};

/// (query, passage) pairs of the SciFact train split, in qrels order.
pub fn pairs(shared: &std::path::Path) -> Vec<(String, String)> {
    let ds = embedtune_data::BeirDataset::load(shared.join("data/scifact"), &Default::default())
        .expect("scifact");
    ds.train_pairs("train")
        .expect("train split")
        .into_iter()
        .map(|e| (e.anchor, e.positive))
        .collect()
}

/// One step: embed anchors and positives, MNRL, backward, clip to norm 1, AdamW at lr 2e-5.
pub fn step<Bk: AutodiffBackend>(
    model: SentenceEncoder<Bk>,
    adam: &mut AdamW<Bk>,
    batch: &[(String, String)],
) -> SentenceEncoder<Bk> {
    let anchors: Vec<&str> = batch.iter().map(|p| p.0.as_str()).collect();
    let positives: Vec<&str> = batch.iter().map(|p| p.1.as_str()).collect();
    let a = model.embed(&anchors, None).expect("embed");
    let p = model.embed(&positives, None).expect("embed");
    let loss = MultipleNegativesRankingLoss::default()
        .loss(&[a, p], None)
        .expect("loss");
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    clip_grad_norm::<Bk, _>(&model, &mut grads, 1.0);
    adam.step(2e-5, model, grads)
}
