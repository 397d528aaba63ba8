//! Hard-negative mining with the current encoder and an exact index, as sentence-transformers'
//! `mine_hard_negatives`: for each (query, positive), retrieve the top `range_max` passages,
//! skip the first `range_min`, drop candidates that are positives of the query or score above
//! `positive score − margin` or above `max_score` (likely unlabelled positives), and keep
//! `num_negatives` of the rest (the best, or a seeded sample).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use burn::tensor::backend::Backend;
use embedtune_core::write_file_atomically;
use embedtune_data::Example;
use embedtune_encoder::{EncodeOptions, SentenceEncoder};
use embedtune_index::{FlatIndex, Metric, VectorIndex};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// How negatives are chosen among the candidates that pass the filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sampling {
    /// The highest-scoring candidates.
    Top,
    /// A random sample (seeded).
    Random,
}

/// Settings of [`mine_hard_negatives`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MiningConfig {
    /// Negatives to keep per (query, positive).
    pub num_negatives: usize,
    /// Skip this many of the top candidates (they are the likeliest false negatives).
    pub range_min: usize,
    /// Consider at most this many top candidates.
    pub range_max: usize,
    /// Drop candidates scoring above `positive score − margin`.
    pub margin: Option<f64>,
    /// Drop candidates scoring above this.
    pub max_score: Option<f64>,
    /// Top or sampled.
    pub sampling: Sampling,
    /// Seed of the sampling.
    pub seed: u64,
    /// Texts per forward pass while encoding.
    pub batch_size: usize,
    /// Prefix for queries.
    pub query_prompt: Option<String>,
    /// Prefix for passages.
    pub passage_prompt: Option<String>,
    /// Leave out pairs that got fewer than `num_negatives` negatives (sentence-transformers'
    /// `mine_hard_negatives` does the same). Default `true`: a batch trains with the same number
    /// of negatives for every pair, so one pair without a negative would otherwise make the
    /// trainer drop every pair's negatives ([`crate::Trainer`] uses as many as the example with
    /// the fewest has).
    #[serde(default = "yes")]
    pub drop_short: bool,
}

fn yes() -> bool {
    true
}

impl Default for MiningConfig {
    fn default() -> Self {
        Self {
            num_negatives: 1,
            range_min: 0,
            range_max: 50,
            margin: None,
            max_score: None,
            sampling: Sampling::Top,
            seed: 42,
            batch_size: 32,
            query_prompt: None,
            passage_prompt: None,
            drop_short: true,
        }
    }
}

/// Counts of a mining run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MiningReport {
    /// (query, positive) pairs processed.
    pub pairs: usize,
    /// Pairs that got `num_negatives` negatives.
    pub complete: usize,
    /// Pairs that got fewer (all filters passed by too few candidates); left out of the
    /// output with [`MiningConfig::drop_short`].
    pub short: usize,
    /// Candidates dropped as positives of their query.
    pub dropped_positive: usize,
    /// Candidates dropped by the margin or `max_score`.
    pub dropped_score: usize,
    /// Mean score of the kept negatives.
    pub mean_negative_score: f64,
    /// Mean score of the positives.
    pub mean_positive_score: f64,
}

/// Mines hard negatives for `pairs` from `corpus` (every positive is added to the corpus too).
/// Returns the examples with their negatives (existing negatives are replaced), without the
/// pairs that got too few unless [`MiningConfig::drop_short`] is off.
pub fn mine_hard_negatives<B: Backend>(
    model: &SentenceEncoder<B>,
    pairs: &[Example],
    corpus: &[String],
    config: &MiningConfig,
) -> Result<(Vec<Example>, MiningReport)> {
    if config.range_max <= config.range_min || config.num_negatives == 0 {
        return Err(TrainError::Config {
            name: "mining",
            reason: format!(
                "need num_negatives > 0 and range_max ({}) > range_min ({})",
                config.range_max, config.range_min
            ),
        });
    }
    // Unique passages: the corpus, then positives not in it.
    let mut passages: Vec<String> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for t in corpus.iter().chain(pairs.iter().map(|p| &p.positive)) {
        if !seen.contains_key(t.as_str()) {
            seen.insert(t.as_str(), passages.len());
            passages.push(t.clone());
        }
    }
    if passages.is_empty() || pairs.is_empty() {
        return Err(TrainError::Config {
            name: "mining",
            reason: "no pairs or passages".into(),
        });
    }
    // All positives of each query, so that none becomes its negative.
    let mut positives_of: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    for p in pairs {
        positives_of
            .entry(p.anchor.as_str())
            .or_default()
            .insert(seen[p.positive.as_str()]);
    }
    let queries: Vec<&str> = positives_of.keys().copied().collect();

    let opts = |prompt: &Option<String>| EncodeOptions {
        batch_size: config.batch_size,
        prompt: prompt.clone(),
        normalize: Some(true),
    };
    tracing::info!(
        "mining: encoding {} passages and {} queries",
        passages.len(),
        queries.len()
    );
    let passage_vecs = model.encode(&passages, &opts(&config.passage_prompt))?;
    let query_vecs = model.encode(&queries, &opts(&config.query_prompt))?;
    let dim = model.dim();
    let mut index = FlatIndex::new(dim, Metric::InnerProduct)?;
    let ids: Vec<String> = (0..passages.len()).map(|i| format!("{i:09}")).collect();
    index.add(&ids, &passage_vecs)?;
    let k = config.range_max.min(passages.len());
    let hits = index.search_batch(&query_vecs, k)?;
    let hits_of: HashMap<&str, Vec<(usize, f32)>> = queries
        .iter()
        .zip(hits)
        .map(|(q, h)| {
            let list = h
                .into_iter()
                .filter_map(|hit| Some((hit.id.parse::<usize>().ok()?, hit.score)))
                .collect();
            (*q, list)
        })
        .collect();
    let query_index: HashMap<&str, usize> =
        queries.iter().enumerate().map(|(i, q)| (*q, i)).collect();

    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let mut report = MiningReport {
        pairs: pairs.len(),
        ..Default::default()
    };
    let (mut neg_sum, mut neg_n, mut pos_sum) = (0.0, 0usize, 0.0);
    let mut out = Vec::with_capacity(pairs.len());
    for p in pairs {
        let qi = query_index[p.anchor.as_str()];
        let pi = seen[p.positive.as_str()];
        let pos_score = dot(&query_vecs[qi], &passage_vecs[pi]);
        pos_sum += pos_score;
        let positives = &positives_of[p.anchor.as_str()];
        let mut candidates = Vec::new();
        for &(doc, score) in hits_of[p.anchor.as_str()].iter().skip(config.range_min) {
            if positives.contains(&doc) {
                report.dropped_positive += 1;
                continue;
            }
            let score = score as f64;
            let too_close = config.margin.is_some_and(|m| score > pos_score - m);
            let too_high = config.max_score.is_some_and(|m| score > m);
            if too_close || too_high {
                report.dropped_score += 1;
                continue;
            }
            candidates.push((doc, score));
        }
        if config.sampling == Sampling::Random {
            candidates.shuffle(&mut rng);
        }
        candidates.truncate(config.num_negatives);
        if candidates.len() == config.num_negatives {
            report.complete += 1;
        } else {
            report.short += 1;
            if config.drop_short {
                continue;
            }
        }
        neg_sum += candidates.iter().map(|c| c.1).sum::<f64>();
        neg_n += candidates.len();
        out.push(Example {
            anchor: p.anchor.clone(),
            positive: p.positive.clone(),
            negatives: candidates
                .into_iter()
                .map(|(d, _)| passages[d].clone())
                .collect(),
        });
    }
    report.mean_negative_score = neg_sum / neg_n.max(1) as f64;
    report.mean_positive_score = pos_sum / pairs.len() as f64;
    Ok((out, report))
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Writes examples as grouped JSONL (`query`, `positive_passages`, `negative_passages`),
/// grouping consecutive examples of the same query, atomically.
pub fn write_grouped_jsonl(path: &Path, examples: &[Example]) -> Result<()> {
    let mut groups: Vec<(&str, Vec<&str>, Vec<&str>)> = Vec::new();
    for e in examples {
        match groups.last_mut() {
            Some((q, pos, neg))
                if *q == e.anchor
                    && *neg == e.negatives.iter().map(String::as_str).collect::<Vec<_>>() =>
            {
                pos.push(&e.positive);
            }
            _ => groups.push((
                &e.anchor,
                vec![&e.positive],
                e.negatives.iter().map(String::as_str).collect(),
            )),
        }
    }
    let mut buf = Vec::new();
    for (q, pos, neg) in groups {
        let line =
            serde_json::json!({"query": q, "positive_passages": pos, "negative_passages": neg});
        writeln!(buf, "{line}").map_err(|e| TrainError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
    }
    write_file_atomically(path, &buf)?;
    Ok(())
}
