//! The training loop instantiated for burn's CPU backend, for faster debug builds of the crates
//! that use it (feature `cpu-instances`, debug builds only; see `embedtune-encoder`'s module of
//! the same name). Nothing here runs; [`cpu`] exists to be compiled.

use std::path::Path;

use burn::module::AutodiffModule;
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use embedtune_data::Example;
use embedtune_encoder::SentenceEncoder;

use crate::mining::{mine_hard_negatives, MiningConfig};
use crate::{
    checkpoint, AdamW, AdamWConfig, Evaluate, Finetune, IrEvaluation, Remine, Result, TrainConfig,
    Trainer,
};

type Cpu = NdArray<f32>;
type Ad = Autodiff<NdArray<f32>>;

/// Compiles the instances (never called).
#[allow(clippy::too_many_arguments)]
#[doc(hidden)]
pub fn cpu(
    job: Finetune,
    config: TrainConfig,
    dir: &Path,
    model: SentenceEncoder<Ad>,
    examples: &[Example],
    corpus: &[String],
    evaluation: &mut IrEvaluation,
    miner: &mut dyn Remine<Cpu>,
) -> Result<()> {
    let device = Default::default();
    job.run::<Ad>(&device)?;
    let inner = model.valid();
    mine_hard_negatives(&inner, examples, corpus, &MiningConfig::default())?;
    evaluation.report(&inner)?;
    Evaluate::<Cpu>::evaluate(evaluation, &inner)?;
    let _ = checkpoint::Fingerprints::of(&model, examples);
    let trainer = Trainer::<Ad>::new(config.clone(), dir)?;
    let mut adam = AdamW::<Ad>::new(AdamWConfig::default());
    let (model, _) = trainer.step(model, &mut adam, examples, &[vec![0]], 0, 1.0)?;
    let outcome = Trainer::<Ad>::new(config, dir)?
        .with_guide(inner)
        .with_evaluator(evaluation)
        .with_remining(1, miner)
        .train(model, examples, None)?;
    let _ = outcome.model.valid().merge_lora();
    Ok(())
}
