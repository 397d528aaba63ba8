//! Named recipes: the settings that were chosen and measured together (BENCHMARKS.md, "Quality
//! recipe"), to apply to a [`crate::Finetune`] job in one call ([`crate::Finetune::recipe`]).

use serde::{Deserialize, Serialize};

use crate::mining::MiningConfig;
use crate::LossConfig;

/// A named set of training settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// sentence-transformers' default fine-tuning: MNRL (scale 20) on the pairs with in-batch
    /// negatives, batch 32, one epoch, lr 2e-5 (2e-4 with LoRA), no mining.
    #[default]
    St,
    /// Chosen on a held-out fifth of SciFact's train queries (`scripts/make_selection_split.py`,
    /// seed 18; the runs are in BENCHMARKS.md): one hard negative per pair mined with the
    /// zero-shot model (candidates 11–50 after the filters, relative margin 0.05 below the
    /// query's lowest positive, pairs left without one are left out), MNRL (scale 20; it beat
    /// GISTEmbed at temperatures 0.05 and 0.01 there, one epoch at 2e-5), [`QUALITY_EPOCHS`]
    /// epochs, lr [`QUALITY_LR`] (2e-5 and 5e-5 scored lower there), batch 32, and the
    /// negatives mined again with the model being trained before every epoch after the first
    /// ([`QUALITY_REMINE_EVERY`]; it scored higher there than keeping the zero-shot model's, and
    /// three re-mined epochs scored higher there than two), and topic-aware batches
    /// ([`QUALITY_TOPIC_CLUSTERS`] topics of the training queries, each batch drawn from one;
    /// over four held-out runs on three disjoint folds they gained +0.0086 nDCG@10 on average).
    /// With LoRA the rate is ten times that, as for [`Recipe::St`] (not selected separately).
    Quality,
}

/// Epochs of [`Recipe::Quality`].
pub const QUALITY_EPOCHS: usize = 3;

/// Peak learning rate of [`Recipe::Quality`] (full fine-tuning).
pub const QUALITY_LR: f64 = 1e-4;

/// Re-mining period of [`Recipe::Quality`]: mine again before every epoch after the first.
pub const QUALITY_REMINE_EVERY: u64 = 1;

/// Topics of [`Recipe::Quality`]'s topic-aware batches ([`crate::TrainConfig::topic_clusters`];
/// fixed in advance, not tuned).
pub const QUALITY_TOPIC_CLUSTERS: usize = 8;

/// What a [`Recipe`] sets.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipeSettings {
    /// The loss.
    pub loss: LossConfig,
    /// Passes over the data.
    pub epochs: usize,
    /// Peak learning rate when all weights train.
    pub lr: f64,
    /// Peak learning rate when LoRA adapters train.
    pub lora_lr: f64,
    /// Hard-negative mining before training (its seed and prompts are the job's).
    pub mining: Option<MiningConfig>,
    /// Re-mining with the model being trained before every this many epochs.
    pub remine_every: Option<u64>,
    /// Topic-aware batches over this many topics ([`crate::TrainConfig::topic_clusters`]).
    pub topic_clusters: Option<usize>,
}

impl RecipeSettings {
    /// The peak learning rate: [`RecipeSettings::lora_lr`] when LoRA adapters train, else
    /// [`RecipeSettings::lr`].
    pub fn lr_for(&self, lora: bool) -> f64 {
        if lora {
            self.lora_lr
        } else {
            self.lr
        }
    }
}

impl Recipe {
    /// The recipe's settings.
    pub fn settings(self) -> RecipeSettings {
        match self {
            Recipe::St => RecipeSettings {
                loss: LossConfig::default(),
                epochs: 1,
                lr: 2e-5,
                lora_lr: 2e-4,
                mining: None,
                remine_every: None,
                topic_clusters: None,
            },
            Recipe::Quality => RecipeSettings {
                loss: LossConfig::Mnrl { scale: 20.0 },
                epochs: QUALITY_EPOCHS,
                lr: QUALITY_LR,
                lora_lr: 10.0 * QUALITY_LR,
                mining: Some(MiningConfig {
                    num_negatives: 1,
                    range_min: 10,
                    range_max: 50,
                    relative_margin: Some(0.05),
                    ..Default::default()
                }),
                remine_every: Some(QUALITY_REMINE_EVERY),
                topic_clusters: Some(QUALITY_TOPIC_CLUSTERS),
            },
        }
    }
}
