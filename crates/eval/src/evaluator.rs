//! [`IrEvaluator`]: encode, retrieve, score, report.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Instant;

use burn::tensor::backend::Backend;
use embedtune_data::{BeirDataset, Document, IrSplit, ReadOptions};
use embedtune_encoder::{EncodeOptions, SentenceEncoder};
use embedtune_index::{Embeddings, Hit, IndexConfig};
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{EvalError, Result};
use crate::metrics::{sort_ranking, Metrics, MetricsConfig};
use crate::report::{QueryReport, Report, Timings};

/// How to evaluate: metrics, index, batching, prompts, progress.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    /// Which metrics at which cut-offs (default: sentence-transformers' lists).
    pub metrics: MetricsConfig,
    /// The index that retrieves the top max(k): exact cosine search by default, as
    /// sentence-transformers; [`IndexConfig::Hnsw`] for approximate search.
    pub index: IndexConfig,
    /// Texts per forward pass when encoding (default 32).
    pub batch_size: usize,
    /// Prefix for queries. `None` (default): the model's own query prompt, if it has one;
    /// `Some("")`: none.
    pub query_prompt: Option<String>,
    /// Prefix for passages. `None` (default): the model's own passage prompt, if it has one;
    /// `Some("")`: none.
    pub passage_prompt: Option<String>,
    /// Draw a progress bar on stderr while encoding (default true; indicatif hides it when
    /// stderr is not a terminal). See also [`IrEvaluator::evaluate_with_progress`].
    pub show_progress: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            metrics: MetricsConfig::default(),
            index: IndexConfig::default(),
            batch_size: 32,
            query_prompt: None,
            passage_prompt: None,
            show_progress: true,
        }
    }
}

/// An information-retrieval evaluator over one split, built once and run on any number of
/// models (e.g. every N training steps on a dev split).
///
/// It measures retrieval as sentence-transformers' `InformationRetrievalEvaluator` does:
/// queries and passages are encoded, each query retrieves the top max(k) passages (exact
/// cosine search by default), hits are ranked by descending score with ties broken by
/// ascending corpus id, and the metrics of [`MetricsConfig`] are averaged over the queries.
///
/// Queries whose qrels name no relevant document (grade > 0) are skipped at construction and
/// counted in [`Report::skipped_queries`]; they take no part in any average.
#[derive(Debug, Clone)]
pub struct IrEvaluator {
    config: EvalConfig,
    /// Evaluated queries, in the order given.
    queries: Vec<Document>,
    /// The relevant documents (id → grade > 0) of each evaluated query.
    relevant: Vec<BTreeMap<String, i32>>,
    /// Ids of the queries without a relevant document.
    skipped: Vec<String>,
    corpus: Vec<Document>,
    corpus_ids: HashSet<String>,
    relevant_outside_corpus: usize,
}

impl IrEvaluator {
    /// An evaluator over a BEIR split (from [`embedtune_data::BeirDataset::ir_split`]).
    pub fn new(split: IrSplit, config: EvalConfig) -> Result<Self> {
        Self::from_parts(split.queries, split.corpus, &split.relevant, config)
    }

    /// An evaluator over split `split` of the BEIR directory `dir` (`corpus.jsonl`,
    /// `queries.jsonl`, `qrels/{split}.tsv`). What the qrels file holds (layout, header, rows,
    /// relevant and not, repeated rows, unknown ids) is reported as a `tracing` event.
    pub fn from_beir(dir: &Path, split: &str, config: EvalConfig) -> Result<Self> {
        let data = BeirDataset::load_splits(dir, &[split], &ReadOptions::default())?;
        if let Ok(qrels) = data.qrels(split) {
            let r = qrels.report();
            let header = r
                .header_line
                .map_or("no header".into(), |l| format!("header on line {l}"));
            tracing::info!(
                "qrels {split}: {:?} layout, {header}, {} rows: {} relevant, {} not relevant, \
                 {} repeated, {} unknown queries, {} unknown documents",
                r.layout,
                r.rows,
                r.relevant,
                r.not_relevant,
                r.duplicates,
                r.unknown_queries.len(),
                r.unknown_docs.len()
            );
        }
        Self::new(data.ir_split(split)?, config)
    }

    /// An evaluator over queries, a corpus and qrels (query id → document id → grade; grades
    /// ≤ 0 mean not relevant). Queries without a relevant document are skipped and counted.
    ///
    /// Errors: an empty corpus, no query with a relevant document, a repeated query or corpus
    /// id, a batch size or a k of 0, or no metric to compute.
    pub fn from_parts(
        queries: Vec<Document>,
        corpus: Vec<Document>,
        relevant: &BTreeMap<String, BTreeMap<String, i32>>,
        config: EvalConfig,
    ) -> Result<Self> {
        config.metrics.validate()?;
        if config.batch_size == 0 {
            return Err(EvalError::ZeroBatchSize);
        }
        if corpus.is_empty() {
            return Err(EvalError::EmptyCorpus);
        }
        let mut corpus_ids = HashSet::with_capacity(corpus.len());
        if let Some(doc) = corpus.iter().find(|d| !corpus_ids.insert(d.id.clone())) {
            return Err(EvalError::DuplicateId {
                what: "corpus",
                id: doc.id.clone(),
            });
        }
        let mut seen = HashSet::with_capacity(queries.len());
        let (mut kept, mut kept_relevant, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
        for query in queries {
            if !seen.insert(query.id.clone()) {
                return Err(EvalError::DuplicateId {
                    what: "query",
                    id: query.id,
                });
            }
            let docs: BTreeMap<String, i32> = relevant
                .get(&query.id)
                .into_iter()
                .flatten()
                .filter(|&(_, &grade)| grade > 0)
                .map(|(id, &grade)| (id.clone(), grade))
                .collect();
            if docs.is_empty() {
                skipped.push(query.id);
            } else {
                kept.push(query);
                kept_relevant.push(docs);
            }
        }
        if kept.is_empty() {
            return Err(EvalError::NoQueries {
                skipped: skipped.len(),
            });
        }
        let relevant_outside_corpus = kept_relevant
            .iter()
            .flat_map(BTreeMap::keys)
            .filter(|id| !corpus_ids.contains(*id))
            .count();
        Ok(Self {
            config,
            queries: kept,
            relevant: kept_relevant,
            skipped,
            corpus,
            corpus_ids,
            relevant_outside_corpus,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EvalConfig {
        &self.config
    }

    /// The evaluated queries (those with a relevant document), in the order given: the order
    /// of the query embeddings and rankings the `evaluate_*` methods take.
    pub fn queries(&self) -> &[Document] {
        &self.queries
    }

    /// The corpus, in the order given: the order of the corpus embeddings
    /// [`IrEvaluator::evaluate_embeddings`] takes.
    pub fn corpus(&self) -> &[Document] {
        &self.corpus
    }

    /// Ids of the queries skipped for having no relevant document.
    pub fn skipped_queries(&self) -> &[String] {
        &self.skipped
    }

    /// Encodes queries and corpus with `encoder`, retrieves and scores, drawing a progress bar
    /// on stderr when [`EvalConfig::show_progress`] is set.
    pub fn evaluate<B: Backend>(&self, encoder: &SentenceEncoder<B>) -> Result<Report> {
        let bar = if self.config.show_progress {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>8} [{elapsed_precise}] {wide_bar} {pos}/{len} texts ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        let report = self.evaluate_with_progress(encoder, &bar);
        bar.finish_and_clear();
        report
    }

    /// [`IrEvaluator::evaluate`] reporting to `bar` (e.g. a trainer's own bar, or one of a
    /// `MultiProgress`): its length is set to the number of texts, its position advances per
    /// batch and its message names the phase (`queries`, `passages`). The bar is left as it
    /// is at the end.
    pub fn evaluate_with_progress<B: Backend>(
        &self,
        encoder: &SentenceEncoder<B>,
        bar: &ProgressBar,
    ) -> Result<Report> {
        let start = Instant::now();
        let prompts = encoder.prompts();
        let query_prompt = resolve_prompt(&self.config.query_prompt, &prompts.query);
        let passage_prompt = resolve_prompt(&self.config.passage_prompt, &prompts.passage);
        bar.set_length((self.queries.len() + self.corpus.len()) as u64);
        bar.set_position(0);

        bar.set_message("queries");
        let query_vectors = self.encode(encoder, &self.queries, &query_prompt, bar, 0)?;
        let encode_queries_s = start.elapsed().as_secs_f64();

        bar.set_message("passages");
        let t = Instant::now();
        let corpus_vectors = self.encode(
            encoder,
            &self.corpus,
            &passage_prompt,
            bar,
            self.queries.len(),
        )?;
        let encode_corpus_s = t.elapsed().as_secs_f64();

        let mut report = self.evaluate_embeddings(&query_vectors, &corpus_vectors)?;
        report.query_prompt = query_prompt;
        report.passage_prompt = passage_prompt;
        report.timings.encode_queries_s = encode_queries_s;
        report.timings.encode_corpus_s = encode_corpus_s;
        report.timings.total_s = start.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Encodes `docs` in batches, advancing `bar` from `offset`.
    fn encode<B: Backend>(
        &self,
        encoder: &SentenceEncoder<B>,
        docs: &[Document],
        prompt: &Option<String>,
        bar: &ProgressBar,
        offset: usize,
    ) -> Result<Embeddings> {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let options = EncodeOptions {
            batch_size: self.config.batch_size,
            prompt: prompt.clone(),
            normalize: None,
        };
        Ok(encoder.encode_with_progress(&texts, &options, |done| {
            bar.set_position((offset + done) as u64)
        })?)
    }

    /// Retrieves and scores from precomputed embeddings: `queries[i]` embeds
    /// [`queries()[i]`](Self::queries), `corpus[j]` embeds [`corpus()[j]`](Self::corpus). All
    /// must have the same length. No model is needed, so metric code is testable on its own.
    pub fn evaluate_embeddings(&self, queries: &Embeddings, corpus: &Embeddings) -> Result<Report> {
        let start = Instant::now();
        check_count("corpus embeddings", self.corpus.len(), corpus.len())?;
        check_count("query embeddings", self.queries.len(), queries.len())?;
        if queries.dim() != corpus.dim() {
            return Err(EvalError::DimensionMismatch {
                queries: queries.dim(),
                corpus: corpus.dim(),
            });
        }

        let mut index = self.config.index.build(corpus.dim())?;
        let ids: Vec<String> = self.corpus.iter().map(|d| d.id.clone()).collect();
        index.add(&ids, corpus)?;
        let index_s = start.elapsed().as_secs_f64();

        let t = Instant::now();
        let k = self.config.metrics.max_k().min(self.corpus.len());
        let rankings = index.search_batch(queries, k)?;
        let search_s = t.elapsed().as_secs_f64();

        let mut report = self.evaluate_rankings(rankings)?;
        report.index = index.kind().to_string();
        report.timings.index_s = index_s;
        report.timings.search_s = search_s;
        report.timings.total_s = start.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Scores precomputed rankings: `rankings[i]` holds the hits retrieved for
    /// [`queries()[i]`](Self::queries), in any order (they are ranked here by descending
    /// score, ties by ascending corpus id), as many as the caller retrieved.
    ///
    /// Errors: a count other than the number of queries, a hit naming an id not in the corpus,
    /// an id listed twice for one query, a non-finite score.
    pub fn evaluate_rankings(&self, mut rankings: Vec<Vec<Hit>>) -> Result<Report> {
        let start = Instant::now();
        check_count("rankings", self.queries.len(), rankings.len())?;
        let mut per_query = Vec::with_capacity(self.queries.len());
        for ((query, relevant), ranking) in
            self.queries.iter().zip(&self.relevant).zip(&mut rankings)
        {
            self.check_ranking(&query.id, ranking)?;
            sort_ranking(ranking);
            let metrics = self
                .config
                .metrics
                .query_metrics(ranking, relevant)
                .unwrap_or_default();
            per_query.push(QueryReport {
                query_id: query.id.clone(),
                relevant: relevant.len(),
                metrics,
            });
        }
        let keys = self.config.metrics.keys();
        let metrics = Metrics::mean(&keys, per_query.iter().map(|q| &q.metrics));
        let metrics_s = start.elapsed().as_secs_f64();
        Ok(Report {
            metrics,
            queries: self.queries.len(),
            skipped_queries: self.skipped.len(),
            corpus_size: self.corpus.len(),
            relevant_outside_corpus: self.relevant_outside_corpus,
            relevance: self.config.metrics.relevance,
            index: String::new(),
            query_prompt: None,
            passage_prompt: None,
            timings: Timings {
                metrics_s,
                total_s: metrics_s,
                ..Timings::default()
            },
            per_query,
        })
    }

    /// Known ids, each once, finite scores.
    fn check_ranking(&self, query_id: &str, ranking: &[Hit]) -> Result<()> {
        let mut seen = HashSet::with_capacity(ranking.len());
        for hit in ranking {
            let err = if !self.corpus_ids.contains(&hit.id) {
                EvalError::UnknownCorpusId {
                    query_id: query_id.to_string(),
                    id: hit.id.clone(),
                }
            } else if !seen.insert(hit.id.as_str()) {
                EvalError::DuplicateHit {
                    query_id: query_id.to_string(),
                    id: hit.id.clone(),
                }
            } else if !hit.score.is_finite() {
                EvalError::NonFiniteScore {
                    query_id: query_id.to_string(),
                    id: hit.id.clone(),
                    score: hit.score,
                }
            } else {
                continue;
            };
            return Err(err);
        }
        Ok(())
    }
}

/// The configured prompt, else the model's; an empty prompt is none.
fn resolve_prompt(configured: &Option<String>, model: &Option<String>) -> Option<String> {
    configured
        .as_ref()
        .or(model.as_ref())
        .filter(|p| !p.is_empty())
        .cloned()
}

fn check_count(what: &'static str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(EvalError::CountMismatch {
            what,
            expected,
            found,
        })
    }
}
