//! Hard-negative mining with the current encoder and an exact index, as sentence-transformers'
//! `mine_hard_negatives`: for each query, score every passage, drop its positives and the
//! candidates a margin, `max_score` or `min_score` marks as likely unlabelled positives, keep the
//! best `range_max` of the rest, skip the first `range_min`, and take `num_negatives` (the best,
//! or a seeded sample) for every pair of the query.

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
    /// A random sample (seeded), sorted by score.
    Random,
}

/// The shape of the mined examples (sentence-transformers' `output_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MiningOutput {
    /// One example per (query, positive) with all its negatives (`n-tuple`): pairs that got
    /// fewer than `num_negatives` are left out unless [`MiningConfig::drop_short`] is off.
    #[default]
    NTuple,
    /// One (query, positive, negative) example per negative found (`triplet`).
    Triplet,
}

/// Settings of [`mine_hard_negatives`], with the meaning of sentence-transformers'
/// `mine_hard_negatives` arguments of the same names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MiningConfig {
    /// Negatives to keep per query.
    pub num_negatives: usize,
    /// Skip this many of the best candidates left after the filters (the likeliest false
    /// negatives).
    pub range_min: usize,
    /// Keep at most this many of the best candidates left after the filters (positives aside).
    pub range_max: usize,
    /// Drop candidates scoring above `positive − absolute_margin`, where `positive` is the
    /// lowest score of the query's positives.
    #[serde(default, alias = "margin")]
    pub absolute_margin: Option<f64>,
    /// Drop candidates scoring above `positive · (1 − relative_margin)`.
    #[serde(default)]
    pub relative_margin: Option<f64>,
    /// Drop candidates scoring above this.
    pub max_score: Option<f64>,
    /// Drop candidates scoring below this.
    #[serde(default)]
    pub min_score: Option<f64>,
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
    /// One example per pair or per negative.
    #[serde(default)]
    pub output: MiningOutput,
    /// With [`MiningOutput::NTuple`], leave out pairs that got fewer than `num_negatives`
    /// negatives (sentence-transformers does the same). Default `true`: a batch trains with
    /// the same number of negatives for every pair, so one pair without a negative would
    /// otherwise make the trainer drop every pair's negatives ([`crate::Trainer`] uses as many
    /// as the example with the fewest has).
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
            absolute_margin: None,
            relative_margin: None,
            max_score: None,
            min_score: None,
            sampling: Sampling::Top,
            seed: 42,
            batch_size: 32,
            query_prompt: None,
            passage_prompt: None,
            output: MiningOutput::NTuple,
            drop_short: true,
        }
    }
}

impl MiningConfig {
    /// Checks the ranges before anything is encoded.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(TrainError::Config {
                name: "mining",
                reason,
            })
        };
        if self.num_negatives == 0 || self.range_max <= self.range_min {
            return bad(format!(
                "need num_negatives > 0 and range_max ({}) > range_min ({})",
                self.range_max, self.range_min
            ));
        }
        for (name, value) in [
            ("absolute_margin", self.absolute_margin),
            ("relative_margin", self.relative_margin),
            ("max_score", self.max_score),
            ("min_score", self.min_score),
        ] {
            if value.is_some_and(|v| !v.is_finite()) {
                return bad(format!("{name} must be a finite number"));
            }
        }
        if self
            .relative_margin
            .is_some_and(|m| !(0.0..=1.0).contains(&m))
        {
            return bad("relative_margin must be in [0, 1]".into());
        }
        Ok(())
    }
}

/// Counts of a mining run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MiningReport {
    /// Distinct (query, positive) pairs mined.
    pub pairs: usize,
    /// Input pairs that repeat an earlier (query, positive) pair (same texts, e.g. two query ids
    /// with one text): mined once, as sentence-transformers does, and left out of the output.
    #[serde(default)]
    pub duplicate_pairs: usize,
    /// Pairs that got `num_negatives` negatives.
    pub complete: usize,
    /// Pairs that got fewer (all filters passed by too few candidates); left out of the
    /// output with [`MiningConfig::drop_short`].
    pub short: usize,
    /// Candidates dropped as positives of their query.
    pub dropped_positive: usize,
    /// Candidates dropped by a margin, `max_score` or `min_score`.
    pub dropped_score: usize,
    /// Mean score of the kept negatives.
    pub mean_negative_score: f64,
    /// Mean score of the positives.
    pub mean_positive_score: f64,
}

/// What [`select_negatives`] kept and dropped for one query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// (passage, score) of the chosen negatives, best first.
    pub negatives: Vec<(usize, f64)>,
    /// Candidates dropped as positives.
    pub dropped_positive: usize,
    /// Candidates dropped by a margin, `max_score` or `min_score`.
    pub dropped_score: usize,
}

/// The filters of [`mine_hard_negatives`] for one query: `hits` are (passage, score) pairs
/// sorted best first, `positives` the query's positive passages and `positive_score` the lowest
/// score among them. Drops positives and candidates failing a margin, `max_score` or
/// `min_score`; keeps the best `range_max` of the rest, skips the first `range_min` of those,
/// and returns the best `num_negatives` (or, with [`Sampling::Random`], a sample of them drawn
/// with `rng`, sorted by score).
pub fn select_negatives(
    hits: &[(usize, f64)],
    positives: &BTreeSet<usize>,
    positive_score: f64,
    config: &MiningConfig,
    rng: &mut impl rand::Rng,
) -> Selection {
    let mut out = Selection::default();
    let mut kept = Vec::new();
    for &(doc, score) in hits {
        if positives.contains(&doc) {
            out.dropped_positive += 1;
            continue;
        }
        let fails = config
            .absolute_margin
            .is_some_and(|m| score + m > positive_score)
            || config
                .relative_margin
                .is_some_and(|m| score > positive_score * (1.0 - m))
            || config.max_score.is_some_and(|m| score > m)
            || config.min_score.is_some_and(|m| score < m);
        if fails {
            out.dropped_score += 1;
            continue;
        }
        kept.push((doc, score));
    }
    kept.truncate(config.range_max);
    let mut kept: Vec<(usize, f64)> = kept.into_iter().skip(config.range_min).collect();
    if config.sampling == Sampling::Random {
        let k = config.num_negatives.min(kept.len());
        let (sample, _) = kept.partial_shuffle(rng, k);
        let mut sample = sample.to_vec();
        sample.sort_by(|a, b| b.1.total_cmp(&a.1));
        kept = sample;
    }
    kept.truncate(config.num_negatives);
    out.negatives = kept;
    out
}

/// Mines hard negatives for `pairs` from `corpus` (every positive is added to the corpus too),
/// as sentence-transformers' `mine_hard_negatives`: each query is scored against every passage
/// (cosine), its candidates go through [`select_negatives`], and every pair of the query gets
/// the same negatives. Returns the examples with their negatives (existing negatives are
/// replaced) in [`MiningConfig::output`]'s shape and in sentence-transformers' order: queries
/// by first appearance, each with its positives by first appearance. Queries are keyed by text
/// and a repeated (query, positive) pair is output once (counted in
/// [`MiningReport::duplicate_pairs`]), as sentence-transformers does.
pub fn mine_hard_negatives<B: Backend>(
    model: &SentenceEncoder<B>,
    pairs: &[Example],
    corpus: &[String],
    config: &MiningConfig,
) -> Result<(Vec<Example>, MiningReport)> {
    config.validate()?;
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
    // Enough candidates that `range_max` remain once the query's positives are removed.
    let most_positives = positives_of.values().map(BTreeSet::len).max().unwrap_or(0);
    let k = (config.range_max + most_positives).min(passages.len());
    let hits = index.search_batch(&query_vecs, k)?;

    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let mut report = MiningReport::default();
    let mut chosen: HashMap<&str, Selection> = HashMap::new();
    let mut pos_sum = 0.0;
    for (qi, (query, hits)) in queries.iter().zip(hits).enumerate() {
        let hits: Vec<(usize, f64)> = hits
            .into_iter()
            .filter_map(|hit| Some((hit.id.parse::<usize>().ok()?, hit.score as f64)))
            .collect();
        let positives = &positives_of[query];
        let scores: Vec<f64> = positives
            .iter()
            .map(|&p| dot(&query_vecs[qi], &passage_vecs[p]))
            .collect();
        let lowest = scores.iter().copied().fold(f64::INFINITY, f64::min);
        let selection = select_negatives(&hits, positives, lowest, config, &mut rng);
        report.dropped_positive += selection.dropped_positive;
        report.dropped_score += selection.dropped_score;
        chosen.insert(query, selection);
    }

    // sentence-transformers' output order: queries in order of first appearance, each with its
    // distinct positives in order of first appearance; a repeated (query, positive) pair is
    // mined once.
    let mut grouped: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    for p in pairs {
        let g = *group_of.entry(p.anchor.as_str()).or_insert_with(|| {
            grouped.push((p.anchor.as_str(), Vec::new()));
            grouped.len() - 1
        });
        let positives = &mut grouped[g].1;
        if positives.contains(&p.positive.as_str()) {
            report.duplicate_pairs += 1;
        } else {
            positives.push(p.positive.as_str());
        }
    }
    report.pairs = pairs.len() - report.duplicate_pairs;

    let (mut neg_sum, mut neg_n) = (0.0, 0usize);
    let mut out = Vec::with_capacity(report.pairs);
    let query_index: HashMap<&str, usize> =
        queries.iter().enumerate().map(|(i, q)| (*q, i)).collect();
    let distinct = grouped
        .iter()
        .flat_map(|(q, positives)| positives.iter().map(move |p| (*q, *p)));
    for (anchor, positive) in distinct {
        let qi = query_index[anchor];
        pos_sum += dot(&query_vecs[qi], &passage_vecs[seen[positive]]);
        let negatives = &chosen[anchor].negatives;
        if negatives.len() == config.num_negatives {
            report.complete += 1;
        } else {
            report.short += 1;
            if config.output == MiningOutput::NTuple && config.drop_short {
                continue;
            }
        }
        neg_sum += negatives.iter().map(|c| c.1).sum::<f64>();
        neg_n += negatives.len();
        let texts = negatives.iter().map(|&(d, _)| passages[d].clone());
        match config.output {
            MiningOutput::NTuple => out.push(Example {
                anchor: anchor.to_string(),
                positive: positive.to_string(),
                negatives: texts.collect(),
            }),
            MiningOutput::Triplet => out.extend(texts.map(|n| Example {
                anchor: anchor.to_string(),
                positive: positive.to_string(),
                negatives: vec![n],
            })),
        }
    }
    report.mean_negative_score = neg_sum / neg_n.max(1) as f64;
    report.mean_positive_score = pos_sum / report.pairs as f64;
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
