//! Named recipes: the settings that were chosen and measured together (BENCHMARKS.md, "Quality
//! recipe"), to apply to a [`crate::Finetune`] job in one call ([`crate::Finetune::recipe`]).

use serde::{Deserialize, Serialize};

use crate::mining::MiningConfig;
use crate::{GistMargin, LossConfig};

/// A named set of training settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// sentence-transformers' default fine-tuning: MNRL (scale 20) on the pairs with in-batch
    /// negatives, batch 32, one epoch, lr 2e-5, no mining.
    #[default]
    St,
    /// Chosen on a held-out fifth of SciFact's train queries (`scripts/make_selection_split.py`,
    /// seed 18): one hard negative per pair mined with the zero-shot model (candidates 11–50
    /// after the filters, relative margin 0.05 below the query's lowest positive, pairs left
    /// without one are left out), GISTEmbed with the frozen zero-shot model as its guide
    /// (temperature [`QUALITY_TEMPERATURE`]), [`QUALITY_EPOCHS`] epochs, lr 2e-5, batch 32.
    Quality,
}

/// GISTEmbed's temperature in [`Recipe::Quality`].
pub const QUALITY_TEMPERATURE: f64 = 0.05;
/// Epochs of [`Recipe::Quality`].
pub const QUALITY_EPOCHS: usize = 1;

/// What a [`Recipe`] sets.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipeSettings {
    /// The loss.
    pub loss: LossConfig,
    /// Passes over the data.
    pub epochs: usize,
    /// Hard-negative mining before training (its seed and prompts are the job's).
    pub mining: Option<MiningConfig>,
    /// Re-mining with the model being trained before every this many epochs.
    pub remine_every: Option<u64>,
}

impl Recipe {
    /// The recipe's settings.
    pub fn settings(self) -> RecipeSettings {
        match self {
            Recipe::St => RecipeSettings {
                loss: LossConfig::default(),
                epochs: 1,
                mining: None,
                remine_every: None,
            },
            Recipe::Quality => RecipeSettings {
                loss: LossConfig::Gist {
                    temperature: QUALITY_TEMPERATURE,
                    margin: 0.0,
                    margin_strategy: GistMargin::Absolute,
                },
                epochs: QUALITY_EPOCHS,
                mining: Some(MiningConfig {
                    num_negatives: 1,
                    range_min: 10,
                    range_max: 50,
                    relative_margin: Some(0.05),
                    ..Default::default()
                }),
                remine_every: None,
            },
        }
    }
}
