//! The metrics of one ranked list, exactly as sentence-transformers'
//! `InformationRetrievalEvaluator.compute_metrics` defines them, and the ordered map that
//! holds them.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use embedtune_index::Hit;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{EvalError, Result};

/// How relevance judgements (qrels grades) count in nDCG.
///
/// Accuracy, precision, recall, MRR and MAP are always binary: a document is relevant when its
/// grade is above 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relevance {
    /// Every relevant document has gain 1 (sentence-transformers' evaluator; the default).
    #[default]
    Binary,
    /// A relevant document's gain is its qrels grade, and the ideal DCG ranks the grades in
    /// descending order (BEIR / `trec_eval`'s `ndcg_cut`). Equal to [`Relevance::Binary`] on
    /// datasets whose grades are all 1, such as SciFact.
    Graded,
}

impl Relevance {
    /// `binary` or `graded`.
    pub fn name(self) -> &'static str {
        match self {
            Relevance::Binary => "binary",
            Relevance::Graded => "graded",
        }
    }
}

/// The metrics a report holds, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Accuracy,
    Precision,
    Recall,
    Ndcg,
    Mrr,
    Map,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Accuracy => "accuracy",
            Kind::Precision => "precision",
            Kind::Recall => "recall",
            Kind::Ndcg => "ndcg",
            Kind::Mrr => "mrr",
            Kind::Map => "map",
        }
    }
}

/// Which metrics to compute, at which cut-offs `k`.
///
/// The defaults are those of sentence-transformers' `InformationRetrievalEvaluator`. Each list
/// is read in its order with repeated values dropped; an empty list computes nothing for its
/// metric. Report keys are `accuracy@1`, `precision@10`, `recall@10`, `ndcg@10`, `mrr@10`,
/// `map@100`, …, in that metric order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsConfig {
    /// Accuracy@k: 1 when a relevant document is in the top k, else 0. Default 1, 3, 5, 10.
    pub accuracy_at_k: Vec<usize>,
    /// Precision@k (relevant in the top k / k, even when fewer than k documents were
    /// retrieved) and recall@k (relevant in the top k / number of relevant documents).
    /// Default 1, 3, 5, 10.
    pub precision_recall_at_k: Vec<usize>,
    /// MRR@k: 1 / rank of the first relevant document within the top k, else 0. Default 10.
    pub mrr_at_k: Vec<usize>,
    /// nDCG@k: DCG of the top k over the ideal DCG of all relevant documents (cut at k), with
    /// gains per [`MetricsConfig::relevance`]. Default 10.
    pub ndcg_at_k: Vec<usize>,
    /// MAP@k: the sum of precision@i at each relevant rank i ≤ k, divided by
    /// min(k, number of relevant documents). Default 100.
    pub map_at_k: Vec<usize>,
    /// Binary (default) or graded gains for nDCG.
    pub relevance: Relevance,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            accuracy_at_k: vec![1, 3, 5, 10],
            precision_recall_at_k: vec![1, 3, 5, 10],
            mrr_at_k: vec![10],
            ndcg_at_k: vec![10],
            map_at_k: vec![100],
            relevance: Relevance::Binary,
        }
    }
}

impl MetricsConfig {
    /// Checks that no k is 0 and that there is at least one metric to compute.
    pub fn validate(&self) -> Result<()> {
        let lists = [
            ("accuracy", &self.accuracy_at_k),
            ("precision_recall", &self.precision_recall_at_k),
            ("mrr", &self.mrr_at_k),
            ("ndcg", &self.ndcg_at_k),
            ("map", &self.map_at_k),
        ];
        if let Some((metric, _)) = lists.iter().find(|(_, ks)| ks.contains(&0)) {
            return Err(EvalError::ZeroK { metric });
        }
        if lists.iter().all(|(_, ks)| ks.is_empty()) {
            return Err(EvalError::NoMetrics);
        }
        Ok(())
    }

    /// The deepest cut-off: how many documents to retrieve per query.
    pub fn max_k(&self) -> usize {
        self.cutoffs().map(|(_, k)| k).max().unwrap_or(0)
    }

    /// The report keys (`accuracy@1`, …, `map@100`), in report order.
    pub fn keys(&self) -> Vec<String> {
        self.cutoffs().map(|(kind, k)| key(kind, k)).collect()
    }

    /// Every (metric, k) in report order, repeated cut-offs dropped.
    fn cutoffs(&self) -> impl Iterator<Item = (Kind, usize)> + '_ {
        let lists = [
            (Kind::Accuracy, &self.accuracy_at_k),
            (Kind::Precision, &self.precision_recall_at_k),
            (Kind::Recall, &self.precision_recall_at_k),
            (Kind::Ndcg, &self.ndcg_at_k),
            (Kind::Mrr, &self.mrr_at_k),
            (Kind::Map, &self.map_at_k),
        ];
        lists.into_iter().flat_map(|(kind, ks)| {
            let mut seen = HashSet::new();
            ks.iter()
                .copied()
                .filter(move |&k| seen.insert(k))
                .map(move |k| (kind, k))
        })
    }

    /// The metrics of one query: `ranking` is the retrieved list in rank order (see
    /// [`sort_ranking`]), `relevant` maps document ids to qrels grades (grades ≤ 0 count as not
    /// relevant). `None` when no document is relevant: the evaluator skips such queries, as
    /// sentence-transformers does.
    ///
    /// Only the first [`max_k`](Self::max_k) entries of `ranking` are looked at; a ranking
    /// shorter than k (a corpus smaller than k) simply has no more hits.
    pub fn query_metrics(
        &self,
        ranking: &[Hit],
        relevant: &BTreeMap<String, i32>,
    ) -> Option<Metrics> {
        let mut grades: Vec<f64> = relevant
            .values()
            .filter(|&&g| g > 0)
            .map(|&g| f64::from(g))
            .collect();
        if grades.is_empty() {
            return None;
        }
        let n_relevant = grades.len();
        let depth = self.max_k().min(ranking.len());
        let gains: Vec<f64> = ranking[..depth]
            .iter()
            .map(|hit| match relevant.get(&hit.id) {
                Some(&g) if g > 0 => match self.relevance {
                    Relevance::Binary => 1.0,
                    Relevance::Graded => f64::from(g),
                },
                _ => 0.0,
            })
            .collect();
        let ideal = match self.relevance {
            Relevance::Binary => vec![1.0; grades.len()],
            Relevance::Graded => {
                grades.sort_by(|a, b| b.total_cmp(a));
                grades
            }
        };
        // found[i]: relevant documents among the first i hits
        let mut found = Vec::with_capacity(depth + 1);
        found.push(0usize);
        for g in &gains {
            found.push(found[found.len() - 1] + usize::from(*g > 0.0));
        }
        let first = gains.iter().position(|&g| g > 0.0);
        let metrics = self
            .cutoffs()
            .map(|(kind, k)| {
                let top = k.min(depth);
                let value = match kind {
                    Kind::Accuracy => f64::from(u8::from(first.is_some_and(|r| r < k))),
                    Kind::Precision => found[top] as f64 / k as f64,
                    Kind::Recall => found[top] as f64 / n_relevant as f64,
                    Kind::Mrr => first
                        .filter(|&r| r < k)
                        .map_or(0.0, |r| 1.0 / (r + 1) as f64),
                    Kind::Ndcg => dcg(&gains[..top]) / dcg(&ideal[..k.min(ideal.len())]),
                    Kind::Map => {
                        let sum: f64 = (0..top)
                            .filter(|&i| gains[i] > 0.0)
                            .map(|i| found[i + 1] as f64 / (i + 1) as f64)
                            // A fold from +0.0: `sum()` of nothing is -0.0 in Rust.
                            .fold(0.0, |a, b| a + b);
                        sum / k.min(n_relevant) as f64
                    }
                };
                (key(kind, k), value)
            })
            .collect();
        Some(metrics)
    }
}

/// `metric@k`.
fn key(kind: Kind, k: usize) -> String {
    format!("{}@{k}", kind.name())
}

/// Discounted cumulative gain: Σ gain_i / log2(i + 2) over 0-based ranks i.
fn dcg(gains: &[f64]) -> f64 {
    gains
        .iter()
        .enumerate()
        .map(|(i, g)| g / ((i + 2) as f64).log2())
        .sum()
}

/// Puts hits in rank order: descending score, ties broken by ascending corpus id (byte order,
/// which is Python's string order), as sentence-transformers ranks them. Scores must be finite
/// (the evaluator checks); `0.0` and `-0.0` tie.
pub fn sort_ranking(hits: &mut [Hit]) {
    hits.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// Metric values by key (`ndcg@10` → 0.6451), in insertion order.
///
/// Serialises as a flat JSON object in that order; reads any JSON object of numbers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    entries: Vec<(String, f64)>,
}

impl Metrics {
    /// No metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.entries.iter().find(|(k, _)| k == key).map(|&(_, v)| v)
    }

    /// Sets `key` to `value`, in place if present, else at the end.
    pub fn insert(&mut self, key: impl Into<String>, value: f64) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Keys and values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Number of metrics.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no metrics.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The mean of each of `keys` over `items` (a key an item lacks counts as 0); empty when
    /// `items` is.
    pub fn mean<'a>(keys: &[String], items: impl IntoIterator<Item = &'a Metrics>) -> Metrics {
        let mut sums = vec![0.0; keys.len()];
        let mut n = 0usize;
        for item in items {
            n += 1;
            for (sum, key) in sums.iter_mut().zip(keys) {
                *sum += item.get(key).unwrap_or(0.0);
            }
        }
        if n == 0 {
            return Metrics::new();
        }
        keys.iter()
            .cloned()
            .zip(sums.into_iter().map(|s| s / n as f64))
            .collect()
    }
}

impl FromIterator<(String, f64)> for Metrics {
    fn from_iter<I: IntoIterator<Item = (String, f64)>>(iter: I) -> Self {
        let mut metrics = Metrics::new();
        for (k, v) in iter {
            metrics.insert(k, v);
        }
        metrics
    }
}

impl Serialize for Metrics {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metrics {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MetricsVisitor;
        impl<'de> Visitor<'de> for MetricsVisitor {
            type Value = Metrics;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of metric names to numbers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Metrics, A::Error> {
                let mut metrics = Metrics::new();
                while let Some((k, v)) = access.next_entry::<String, f64>()? {
                    metrics.insert(k, v);
                }
                Ok(metrics)
            }
        }
        deserializer.deserialize_map(MetricsVisitor)
    }
}
