//! The evaluator instantiated for burn's CPU backend, for faster debug builds of the crates
//! that use it (feature `cpu-instances`, debug builds only; see `embedtune-encoder`'s module of
//! the same name). Nothing here runs; [`cpu`] exists to be compiled.

use burn_ndarray::NdArray;
use embedtune_encoder::SentenceEncoder;
use indicatif::ProgressBar;

use crate::{IrEvaluator, Report, Result};

/// Compiles the instances (never called).
#[doc(hidden)]
pub fn cpu(evaluator: &IrEvaluator, model: &SentenceEncoder<NdArray<f32>>) -> Result<Report> {
    evaluator.evaluate_with_progress(model, &ProgressBar::hidden())?;
    evaluator.evaluate(model)
}
