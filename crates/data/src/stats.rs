//! Dataset statistics: counts, duplicate texts, token-length percentiles, truncation.
//!
//! Every length is a count of the caller's tokens: [`DatasetStats::compute`] asks the caller's
//! tokenizer for each distinct text's length, special tokens included, before truncation
//! (`embedtune_encoder::TextTokenizer::token_lengths` gives exactly that). Tokens, not
//! characters or UTF-8 bytes, which differ widely between scripts (a Chinese character is 3
//! bytes and often a token of its own; an English word is several characters and often one
//! token). Texts count as duplicates when they are byte-equal (no Unicode normalisation: `café`
//! and `cafe\u{301}` are two texts).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::error::DataError;
use crate::types::TextColumns;

/// Token-length distribution (special tokens included, before truncation).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LengthStats {
    /// Number of texts.
    pub count: usize,
    /// Shortest.
    pub min: usize,
    /// Median (nearest rank).
    pub p50: usize,
    /// 90th percentile (nearest rank).
    pub p90: usize,
    /// 95th percentile (nearest rank).
    pub p95: usize,
    /// 99th percentile (nearest rank).
    pub p99: usize,
    /// Longest.
    pub max: usize,
    /// Mean.
    pub mean: f64,
}

impl LengthStats {
    /// Statistics of a list of lengths (sorted here).
    pub fn from_lengths(mut lengths: Vec<usize>) -> Self {
        if lengths.is_empty() {
            return Self::default();
        }
        lengths.sort_unstable();
        let n = lengths.len();
        let rank = |p: f64| lengths[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        Self {
            count: n,
            min: lengths[0],
            p50: rank(50.0),
            p90: rank(90.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: lengths[n - 1],
            mean: lengths.iter().sum::<usize>() as f64 / n as f64,
        }
    }
}

/// What a dataset holds, for a look before training.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetStats {
    /// Number of examples.
    pub examples: usize,
    /// Number of texts over all columns.
    pub texts: usize,
    /// Distinct texts.
    pub unique_texts: usize,
    /// Texts that repeat an earlier one (`texts - unique_texts`).
    pub duplicate_texts: usize,
    /// Examples where the same text appears in two of its own columns (e.g. anchor = positive).
    pub examples_with_repeated_text: usize,
    /// The `max_seq_len` used to count truncation.
    pub max_seq_len: usize,
    /// Token lengths of all texts.
    pub tokens: LengthStats,
    /// Token lengths per column (`anchor`, `positive`, `negative`, ...).
    pub columns: BTreeMap<&'static str, LengthStats>,
    /// Texts longer than `max_seq_len` tokens (they will be cut).
    pub truncated_texts: usize,
    /// Examples with at least one truncated text.
    pub truncated_examples: usize,
}

impl DatasetStats {
    /// Computes the statistics of `items`, with `max_seq_len` (special tokens included) the
    /// length past which a text counts as truncated.
    ///
    /// `token_lengths` is called once, with every distinct text once (in order of first
    /// appearance), and returns each one's token count before truncation, special tokens
    /// included, in the same order: with the encoder,
    /// `|texts| Ok(tokenizer.token_lengths(texts)?)`. Its error is passed through. An empty
    /// text is handed to it like any other (the statistics have no objection; the tokenizer
    /// decides: the encoder's gives it its special tokens). A number of lengths other than the
    /// number of texts is [`DataError::TokenLengthCount`].
    ///
    /// ```
    /// use embedtune_data::{DataError, DatasetStats, Example};
    ///
    /// let data = [Example::pair("a short query", "a somewhat longer passage of text")];
    /// // A stand-in tokenizer: one token per word, plus two special tokens.
    /// let words = |texts: &[&str]| -> Result<Vec<usize>, DataError> {
    ///     Ok(texts.iter().map(|t| t.split_whitespace().count() + 2).collect())
    /// };
    /// let stats = DatasetStats::compute(&data, 6, words).unwrap();
    /// assert_eq!((stats.tokens.min, stats.tokens.max), (5, 8));
    /// assert_eq!(stats.truncated_texts, 1);
    /// ```
    pub fn compute<T: TextColumns, E>(
        items: &[T],
        max_seq_len: usize,
        token_lengths: impl FnOnce(&[&str]) -> Result<Vec<usize>, E>,
    ) -> Result<Self, E>
    where
        E: From<DataError>,
    {
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut unique: Vec<&str> = Vec::new();
        let mut rows: Vec<Vec<(&'static str, usize)>> = Vec::with_capacity(items.len());
        let mut texts = 0;
        let mut repeated = 0;
        for item in items {
            let mut row = Vec::new();
            for (column, text) in item.columns() {
                let id = *ids.entry(text).or_insert_with(|| {
                    unique.push(text);
                    unique.len() - 1
                });
                row.push((column, id));
                texts += 1;
            }
            let mut distinct: Vec<usize> = row.iter().map(|&(_, id)| id).collect();
            distinct.sort_unstable();
            distinct.dedup();
            repeated += usize::from(distinct.len() < row.len());
            rows.push(row);
        }
        let lengths = token_lengths(&unique)?;
        if lengths.len() != unique.len() {
            return Err(DataError::TokenLengthCount {
                texts: unique.len(),
                lengths: lengths.len(),
            }
            .into());
        }
        let max = max_seq_len;
        let mut all = Vec::with_capacity(texts);
        let mut columns: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
        let mut truncated_texts = 0;
        let mut truncated_examples = 0;
        for row in &rows {
            let mut cut = false;
            for &(column, id) in row {
                let len = lengths[id];
                all.push(len);
                columns.entry(column).or_default().push(len);
                if len > max {
                    truncated_texts += 1;
                    cut = true;
                }
            }
            truncated_examples += usize::from(cut);
        }
        Ok(Self {
            examples: items.len(),
            texts,
            unique_texts: unique.len(),
            duplicate_texts: texts - unique.len(),
            examples_with_repeated_text: repeated,
            max_seq_len: max,
            tokens: LengthStats::from_lengths(all),
            columns: columns
                .into_iter()
                .map(|(c, l)| (c, LengthStats::from_lengths(l)))
                .collect(),
            truncated_texts,
            truncated_examples,
        })
    }
}

impl fmt::Display for DatasetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} examples, {} texts ({} distinct, {} duplicates), {} examples repeat a text internally",
            self.examples, self.texts, self.unique_texts, self.duplicate_texts, self.examples_with_repeated_text
        )?;
        writeln!(
            f,
            "truncated at {} tokens: {} texts, {} examples",
            self.max_seq_len, self.truncated_texts, self.truncated_examples
        )?;
        writeln!(
            f,
            "{:<10} {:>7} {:>5} {:>5} {:>5} {:>5} {:>5} {:>6} {:>8}",
            "tokens", "count", "min", "p50", "p90", "p95", "p99", "max", "mean"
        )?;
        let all =
            std::iter::once(("all", &self.tokens)).chain(self.columns.iter().map(|(c, s)| (*c, s)));
        for (name, s) in all {
            writeln!(
                f,
                "{:<10} {:>7} {:>5} {:>5} {:>5} {:>5} {:>5} {:>6} {:>8.1}",
                name, s.count, s.min, s.p50, s.p90, s.p95, s.p99, s.max, s.mean
            )?;
        }
        Ok(())
    }
}
