//! The eval crate's IR evaluator as a training-time [`Evaluate`].

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use embedtune_encoder::SentenceEncoder;
use embedtune_eval::{IrEvaluator, Report};

use crate::error::Result;
use crate::trainer::Evaluate;

/// Runs an [`IrEvaluator`] during training and keeps its full reports.
pub struct IrEvaluation {
    /// The evaluator (split, metrics, index, prompts).
    pub evaluator: IrEvaluator,
    /// Every report produced, in order (the last one is the final evaluation).
    pub reports: Vec<Report>,
}

impl IrEvaluation {
    /// Wraps `evaluator`.
    pub fn new(evaluator: IrEvaluator) -> Self {
        Self {
            evaluator,
            reports: Vec::new(),
        }
    }

    /// Evaluates `model` once (e.g. before training) and keeps the report.
    pub fn report<B: Backend>(&mut self, model: &SentenceEncoder<B>) -> Result<Report> {
        let report = self.evaluator.evaluate(model)?;
        self.reports.push(report.clone());
        Ok(report)
    }
}

impl<B: Backend> Evaluate<B> for IrEvaluation {
    fn evaluate(&mut self, model: &SentenceEncoder<B>) -> Result<BTreeMap<String, f64>> {
        let report = self.report(model)?;
        Ok(report
            .metrics
            .iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect())
    }
}
