//! What an evaluation produces: the averaged metrics, per-query values, counts and timings;
//! JSON in and out, a console table, and the comparison of two reports.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use unicode_width::UnicodeWidthStr;

use crate::error::{EvalError, Result};
use crate::metrics::{Metrics, Relevance};

/// Seconds spent in each phase of an evaluation (0 for phases that did not run, e.g. encoding
/// when embeddings were given).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Timings {
    /// Encoding the queries.
    pub encode_queries_s: f64,
    /// Encoding the corpus.
    pub encode_corpus_s: f64,
    /// Building the index over the corpus embeddings.
    pub index_s: f64,
    /// Retrieving the top max(k) for every query.
    pub search_s: f64,
    /// Computing the metrics.
    pub metrics_s: f64,
    /// The whole evaluation.
    pub total_s: f64,
}

/// The metrics of one evaluated query.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct QueryReport {
    /// The query id.
    pub query_id: String,
    /// Its number of relevant documents (grade > 0).
    pub relevant: usize,
    /// Its metric values, keyed as the report's averages.
    pub metrics: Metrics,
}

/// The result of an evaluation.
///
/// As JSON (see [`Report::to_json`]) the averaged metrics are the flat object `metrics`
/// (`{"accuracy@1": …, "precision@1": …, "recall@1": …, "ndcg@10": …, "mrr@10": …,
/// "map@100": …}`), beside the counts, the settings, `timings` and `per_query`. Reading a
/// report back accepts any object with a `metrics` object; the other fields default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    /// Each metric averaged over the evaluated queries.
    pub metrics: Metrics,
    /// Queries evaluated (those with at least one relevant document).
    pub queries: usize,
    /// Queries skipped because the qrels give them no relevant document (not part of any
    /// average, as in sentence-transformers).
    pub skipped_queries: usize,
    /// Passages searched.
    pub corpus_size: usize,
    /// Relevance judgements that name a document missing from the corpus. They still count
    /// as relevant (in recall's and MAP's denominators and the ideal DCG), as in
    /// sentence-transformers, so they lower the scores.
    pub relevant_outside_corpus: usize,
    /// How nDCG counted relevance.
    pub relevance: Relevance,
    /// The index searched: `flat` (exact) or `hnsw`; empty when rankings were given.
    pub index: String,
    /// The prompt prepended to queries, if any.
    pub query_prompt: Option<String>,
    /// The prompt prepended to passages, if any.
    pub passage_prompt: Option<String>,
    /// Where the time went.
    pub timings: Timings,
    /// Per-query metrics, in query order.
    pub per_query: Vec<QueryReport>,
}

impl Report {
    /// The averaged value of `key` (`ndcg@10`, …), if computed.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.metrics.get(key)
    }

    /// Texts encoded per second (queries and passages), when the evaluation encoded them.
    pub fn texts_per_second(&self) -> Option<f64> {
        let secs = self.timings.encode_queries_s + self.timings.encode_corpus_s;
        (secs > 0.0).then(|| (self.queries + self.corpus_size) as f64 / secs)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // A report holds strings and finite numbers only, which always serialise.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses a report from JSON text (`path` only labels errors).
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        serde_json::from_str(text).map_err(|source| EvalError::Json {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes [`Report::to_json`] to `path` atomically (temporary file, then rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut text = self.to_json();
        text.push('\n');
        embedtune_core::write_file_atomically(path.as_ref(), text.as_bytes()).map_err(|e| {
            EvalError::Io {
                path: e.path,
                source: e.source,
            }
        })
    }

    /// Reads a report written by [`Report::save`] (or any JSON object with a `metrics`
    /// object of numbers).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, path)
    }
}

/// A console table: a summary line, one row per metric, and the timings.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} queries ({} skipped: no relevant document), {} passages",
            self.queries, self.skipped_queries, self.corpus_size
        )?;
        if !self.index.is_empty() {
            write!(f, ", {} index", self.index)?;
        }
        writeln!(f, ", {} relevance", self.relevance.name())?;
        if self.relevant_outside_corpus > 0 {
            writeln!(
                f,
                "warning: {} relevant documents are not in the corpus",
                self.relevant_outside_corpus
            )?;
        }
        let width = metric_width(self.metrics.iter().map(|(k, _)| k));
        writeln!(f, "{}  {:>8}", Pad("metric", width), "value")?;
        for (key, value) in self.metrics.iter() {
            writeln!(f, "{}  {value:>8.4}", Pad(key, width))?;
        }
        let t = &self.timings;
        write!(
            f,
            "time {:.2} s: encode {:.2} s",
            t.total_s,
            t.encode_queries_s + t.encode_corpus_s
        )?;
        if let Some(rate) = self.texts_per_second() {
            write!(f, " ({rate:.1} texts/s)")?;
        }
        writeln!(
            f,
            ", index {:.3} s, search {:.3} s, metrics {:.3} s",
            t.index_s, t.search_s, t.metrics_s
        )
    }
}

/// Width of the metric-name column, in terminal columns: metric names read from a report file
/// may be any text, and a CJK or full-width character takes two columns, a combining mark none.
fn metric_width<'a>(keys: impl Iterator<Item = &'a str>) -> usize {
    keys.map(UnicodeWidthStr::width)
        .max()
        .unwrap_or(0)
        .max("metric".len())
}

/// Text left-aligned in a column `.1` terminal columns wide (`{:<w$}` pads by characters,
/// which misaligns wide characters).
struct Pad<'a>(&'a str, usize);

impl fmt::Display for Pad<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fill = self.1.saturating_sub(self.0.width());
        write!(f, "{}{:fill$}", self.0, "")
    }
}

/// One metric of a [`Comparison`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// The metric key.
    pub metric: String,
    /// Its value in the first report, if there.
    pub before: Option<f64>,
    /// Its value in the second report, if there.
    pub after: Option<f64>,
}

impl Delta {
    /// `after − before`, when both are present.
    pub fn delta(&self) -> Option<f64> {
        Some(self.after? - self.before?)
    }
}

/// Two reports side by side (e.g. before and after fine-tuning); printing it gives a table
/// with each metric's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Every metric of either report: those of `before` in its order, then those only in
    /// `after`.
    pub rows: Vec<Delta>,
    /// Differences in the setup that make the numbers less comparable (query or corpus
    /// counts, relevance mode).
    pub warnings: Vec<String>,
}

/// Compares `before` with `after`, metric by metric.
pub fn compare(before: &Report, after: &Report) -> Comparison {
    let mut rows: Vec<Delta> = before
        .metrics
        .iter()
        .map(|(metric, value)| Delta {
            metric: metric.to_string(),
            before: Some(value),
            after: after.metric(metric),
        })
        .collect();
    rows.extend(
        after
            .metrics
            .iter()
            .filter(|(metric, _)| before.metric(metric).is_none())
            .map(|(metric, value)| Delta {
                metric: metric.to_string(),
                before: None,
                after: Some(value),
            }),
    );
    let mut warnings = Vec::new();
    let mut differs = |what: &str, a: String, b: String| {
        if a != b {
            warnings.push(format!("{what} differ: {a} before, {b} after"));
        }
    };
    differs(
        "query counts",
        before.queries.to_string(),
        after.queries.to_string(),
    );
    differs(
        "corpus sizes",
        before.corpus_size.to_string(),
        after.corpus_size.to_string(),
    );
    differs(
        "relevance modes",
        before.relevance.name().to_string(),
        after.relevance.name().to_string(),
    );
    Comparison { rows, warnings }
}

/// A table: metric, before, after, delta (`-` where a report lacks the metric).
impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = metric_width(self.rows.iter().map(|r| r.metric.as_str()));
        writeln!(
            f,
            "{}  {:>8}  {:>8}  {:>8}",
            Pad("metric", width),
            "before",
            "after",
            "delta"
        )?;
        let cell = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        for row in &self.rows {
            let delta = row
                .delta()
                .map_or_else(|| "-".to_string(), |d| format!("{d:+.4}"));
            writeln!(
                f,
                "{}  {:>8}  {:>8}  {:>8}",
                Pad(&row.metric, width),
                cell(row.before),
                cell(row.after),
                delta
            )?;
        }
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        Ok(())
    }
}
