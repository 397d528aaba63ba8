//! BEIR directories: `corpus.jsonl`, `queries.jsonl` and `qrels/{split}.tsv`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::delimited::DelimitedSource;
use crate::error::{DataError, Result};
use crate::fields;
use crate::reader::{json_object, open_reader, ReadOptions, ReadReport};
use crate::source::{Ctx, LineSource};
use crate::types::{Document, Example};

/// Reads a BEIR `corpus.jsonl` or `queries.jsonl`: one object per line with `_id` (string or
/// integer), `text` and an optional `title`; the text is `title + " " + text`, trimmed.
/// Duplicate ids are an error. Empty texts follow [`ReadOptions::empty_text`].
pub fn read_documents<R: BufRead>(
    reader: R,
    path: impl Into<PathBuf>,
    opts: &ReadOptions,
) -> Result<(Vec<Document>, ReadReport)> {
    let mut lines = LineSource::new(reader, path.into(), opts.max_line_bytes);
    let mut docs = Vec::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut report = ReadReport::default();
    while let Some(line) = lines.next_line() {
        let line = line?;
        if line.text.trim().is_empty() {
            continue;
        }
        let ctx = line.ctx();
        let obj = json_object(&ctx, line.text)?;
        let Some(doc) = fields::document(&ctx, &obj, opts.empty_text)? else {
            report.skipped_empty += 1;
            continue;
        };
        if let Some(&first) = first_line.get(&doc.id) {
            return Err(DataError::DuplicateId {
                path: ctx.path.to_path_buf(),
                line: ctx.line,
                id: doc.id,
                first_line: first,
            });
        }
        first_line.insert(doc.id.clone(), ctx.line);
        docs.push(doc);
    }
    report.lines = lines.lines_read();
    report.records = docs.len();
    Ok((docs, report))
}

/// One relevance judgement kept from a qrels file (score > 0, known query and document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Query id.
    pub query_id: String,
    /// Corpus (document) id.
    pub doc_id: String,
    /// Graded relevance (> 0).
    pub score: i32,
    /// 1-based line in the qrels file.
    pub line: usize,
}

/// A qrels row that names an id missing from the corpus or the queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRef {
    /// 1-based line in the qrels file.
    pub line: usize,
    /// The id not found.
    pub id: String,
}

/// How the columns of a qrels file were read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum QrelsLayout {
    /// BEIR's `query-id`, `corpus-id`, `score` (tab-separated; further columns ignored).
    #[default]
    Beir,
    /// TREC's four columns `query-id iteration doc-id relevance` (tabs or spaces).
    Trec,
}

/// What reading a qrels file found besides the kept judgements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QrelsReport {
    /// The column layout read.
    pub layout: QrelsLayout,
    /// The 1-based line of the header row, `None` when the file starts with data (a first row
    /// whose score column is a number is data).
    pub header_line: Option<usize>,
    /// Data rows read (header excluded).
    pub rows: usize,
    /// Rows kept as relevance judgements.
    pub relevant: usize,
    /// Rows with score <= 0 (ignored).
    pub not_relevant: usize,
    /// Rows repeating an earlier (query, document) pair (ignored: the first row counts).
    pub duplicates: usize,
    /// Rows naming a query id not in `queries.jsonl` (ignored).
    pub unknown_queries: Vec<UnknownRef>,
    /// Rows naming a document id not in `corpus.jsonl` (ignored).
    pub unknown_docs: Vec<UnknownRef>,
}

/// The relevance judgements of one split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Qrels {
    judgements: Vec<Judgement>,
    relevant: BTreeMap<String, BTreeMap<String, i32>>,
    report: QrelsReport,
}

impl Qrels {
    /// The kept judgements in file order.
    pub fn judgements(&self) -> &[Judgement] {
        &self.judgements
    }

    /// query id → (document id → graded relevance), relevant documents only.
    pub fn relevant(&self) -> &BTreeMap<String, BTreeMap<String, i32>> {
        &self.relevant
    }

    /// Counts and ignored rows.
    pub fn report(&self) -> &QrelsReport {
        &self.report
    }

    /// Number of queries with at least one relevant document.
    pub fn num_queries(&self) -> usize {
        self.relevant.len()
    }
}

/// Reads a qrels file: BEIR's TSV (`query-id`, `corpus-id`, `score` in the first three columns)
/// or TREC's `query-id iteration doc-id relevance` (four columns, tab- or space-separated), with
/// or without a header row: a first row whose score column is a number is data. Rows with
/// score <= 0, repeated pairs and ids for which `known_query` / `known_doc` say false are counted
/// in the report and dropped; the report also says which layout was read and where the header
/// was.
pub fn read_qrels<R: BufRead>(
    reader: R,
    path: impl Into<PathBuf>,
    opts: &ReadOptions,
    known_query: impl Fn(&str) -> bool,
    known_doc: impl Fn(&str) -> bool,
) -> Result<Qrels> {
    let lines = LineSource::new(reader, path.into(), opts.max_line_bytes);
    let mut rows = DelimitedSource::new(lines, '\t', opts.quoting);
    let mut q = Qrels::default();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    // (columns, query, document, score) of the layout fixed by the first row.
    let mut columns: Option<(usize, usize, usize, usize)> = None;
    while let Some(record) = rows.next_record() {
        let record = record?;
        let line = record.line;
        let mut fields = record.fields;
        if fields.len() == 1 {
            // Space-separated (TREC's usual form).
            fields = fields[0].split_whitespace().map(str::to_string).collect();
        }
        let path = rows.path();
        let ctx = Ctx { path, line };
        let (width, qi, di, si) = match columns {
            Some(c) => c,
            None => {
                let n = fields.len();
                if n < 3 {
                    return Err(DataError::MissingField {
                        path: path.to_path_buf(),
                        line,
                        field: "a third (score) column".into(),
                    });
                }
                let number = |i: usize| fields[i].trim().parse::<f64>().is_ok();
                // Four columns of data are TREC's; a header row (its score column is not a
                // number) and three columns are BEIR's.
                let (layout, c) = if n == 4 && number(3) {
                    (QrelsLayout::Trec, (4, 0, 2, 3))
                } else {
                    (QrelsLayout::Beir, (n, 0, 1, 2))
                };
                q.report.layout = layout;
                columns = Some(c);
                if !number(c.3) {
                    q.report.header_line = Some(line);
                    continue;
                }
                c
            }
        };
        if fields.len() != width {
            return Err(DataError::FieldCount {
                path: path.to_path_buf(),
                line,
                expected: width,
                found: fields.len(),
            });
        }
        q.report.rows += 1;
        let score = parse_score(&ctx, &fields[si])?;
        let doc_id = std::mem::take(&mut fields[di]).trim().to_string();
        let query_id = std::mem::take(&mut fields[qi]).trim().to_string();
        if score <= 0 {
            q.report.not_relevant += 1;
        } else if !known_query(&query_id) {
            q.report
                .unknown_queries
                .push(UnknownRef { line, id: query_id });
        } else if !known_doc(&doc_id) {
            q.report.unknown_docs.push(UnknownRef { line, id: doc_id });
        } else if !seen.insert((query_id.clone(), doc_id.clone())) {
            q.report.duplicates += 1;
        } else {
            q.relevant
                .entry(query_id.clone())
                .or_default()
                .insert(doc_id.clone(), score);
            q.judgements.push(Judgement {
                query_id,
                doc_id,
                score,
                line,
            });
        }
    }
    if columns.is_none() {
        return Err(DataError::MissingHeader {
            path: rows.path().to_path_buf(),
        });
    }
    q.report.relevant = q.judgements.len();
    Ok(q)
}

/// An integer relevance score (`1`, `2`, also `1.0`).
fn parse_score(ctx: &Ctx<'_>, text: &str) -> Result<i32> {
    let t = text.trim();
    if let Ok(v) = t.parse::<i32>() {
        return Ok(v);
    }
    match t.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && v.abs() <= f64::from(i32::MAX) => Ok(v as i32),
        _ => Err(ctx.invalid_number("score", "an integer", text)),
    }
}

/// What an information-retrieval evaluator needs for one split.
#[derive(Debug, Clone, PartialEq)]
pub struct IrSplit {
    /// Queries with at least one relevant document, in `queries.jsonl` order.
    pub queries: Vec<Document>,
    /// The whole corpus, in `corpus.jsonl` order.
    pub corpus: Vec<Document>,
    /// query id → (document id → graded relevance > 0).
    pub relevant: BTreeMap<String, BTreeMap<String, i32>>,
}

/// A BEIR dataset in memory: corpus and queries in file order, and the qrels of each split.
#[derive(Debug, Clone, Default)]
pub struct BeirDataset {
    corpus: Vec<Document>,
    corpus_index: HashMap<String, usize>,
    queries: Vec<Document>,
    query_index: HashMap<String, usize>,
    splits: BTreeMap<String, Qrels>,
    corpus_report: ReadReport,
    queries_report: ReadReport,
}

impl BeirDataset {
    /// A dataset from a corpus and queries (ids must be unique), without qrels yet.
    pub fn new(corpus: Vec<Document>, queries: Vec<Document>) -> Self {
        let index = |docs: &[Document]| {
            docs.iter()
                .enumerate()
                .map(|(i, d)| (d.id.clone(), i))
                .collect::<HashMap<_, _>>()
        };
        Self {
            corpus_index: index(&corpus),
            query_index: index(&queries),
            corpus,
            queries,
            ..Self::default()
        }
    }

    /// Loads `dir/corpus.jsonl`, `dir/queries.jsonl` and every `dir/qrels/*.tsv` (the split
    /// is the file stem).
    pub fn load(dir: impl AsRef<Path>, opts: &ReadOptions) -> Result<Self> {
        let dir = dir.as_ref();
        let qrels_dir = dir.join("qrels");
        let entries = std::fs::read_dir(&qrels_dir).map_err(|source| DataError::Io {
            path: qrels_dir.clone(),
            source,
        })?;
        let mut splits = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| DataError::Io {
                    path: qrels_dir.clone(),
                    source,
                })?
                .path();
            if path.extension().is_some_and(|e| e == "tsv") {
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    splits.push(stem.to_string());
                }
            }
        }
        splits.sort();
        let splits: Vec<&str> = splits.iter().map(String::as_str).collect();
        Self::load_splits(dir, &splits, opts)
    }

    /// Loads the corpus, the queries and the qrels of the named splits only.
    pub fn load_splits(dir: impl AsRef<Path>, splits: &[&str], opts: &ReadOptions) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |name: &str| {
            let path = dir.join(name);
            read_documents(open_reader(&path)?, path, opts)
        };
        let (corpus, corpus_report) = read("corpus.jsonl")?;
        let (queries, queries_report) = read("queries.jsonl")?;
        let mut ds = Self::new(corpus, queries);
        ds.corpus_report = corpus_report;
        ds.queries_report = queries_report;
        for split in splits {
            let path = dir.join("qrels").join(format!("{split}.tsv"));
            ds.add_qrels(split, open_reader(&path)?, path, opts)?;
        }
        Ok(ds)
    }

    /// Reads a qrels TSV for `split` against this corpus and these queries (replacing any
    /// qrels already loaded for it).
    pub fn add_qrels<R: BufRead>(
        &mut self,
        split: &str,
        reader: R,
        path: impl Into<PathBuf>,
        opts: &ReadOptions,
    ) -> Result<&Qrels> {
        let qrels = read_qrels(
            reader,
            path,
            opts,
            |q| self.query_index.contains_key(q),
            |d| self.corpus_index.contains_key(d),
        )?;
        self.splits.insert(split.to_string(), qrels);
        Ok(&self.splits[split])
    }

    /// The passages in `corpus.jsonl` order.
    pub fn corpus(&self) -> &[Document] {
        &self.corpus
    }

    /// The queries in `queries.jsonl` order.
    pub fn queries(&self) -> &[Document] {
        &self.queries
    }

    /// A passage's text by id.
    pub fn doc_text(&self, id: &str) -> Option<&str> {
        self.corpus_index
            .get(id)
            .map(|&i| self.corpus[i].text.as_str())
    }

    /// A query's text by id.
    pub fn query_text(&self, id: &str) -> Option<&str> {
        self.query_index
            .get(id)
            .map(|&i| self.queries[i].text.as_str())
    }

    /// Counts from reading `corpus.jsonl` and `queries.jsonl`.
    pub fn read_reports(&self) -> (&ReadReport, &ReadReport) {
        (&self.corpus_report, &self.queries_report)
    }

    /// The splits with qrels loaded, sorted.
    pub fn splits(&self) -> Vec<&str> {
        self.splits.keys().map(String::as_str).collect()
    }

    /// The qrels of a split.
    pub fn qrels(&self, split: &str) -> Result<&Qrels> {
        self.splits
            .get(split)
            .ok_or_else(|| DataError::UnknownSplit {
                split: split.to_string(),
                available: self.splits.keys().cloned().collect(),
            })
    }

    /// Training pairs of a split: one (query text, passage text) [`Example`] per kept
    /// judgement, in qrels file order, without negatives.
    pub fn train_pairs(&self, split: &str) -> Result<Vec<Example>> {
        Ok(self
            .qrels(split)?
            .judgements
            .iter()
            .filter_map(|j| {
                Some(Example::pair(
                    self.query_text(&j.query_id)?,
                    self.doc_text(&j.doc_id)?,
                ))
            })
            .collect())
    }

    /// The evaluation triple of a split: queries with at least one relevant document, the
    /// corpus and the graded relevant sets.
    pub fn ir_split(&self, split: &str) -> Result<IrSplit> {
        let qrels = self.qrels(split)?;
        Ok(IrSplit {
            queries: self
                .queries
                .iter()
                .filter(|q| qrels.relevant.contains_key(&q.id))
                .cloned()
                .collect(),
            corpus: self.corpus.clone(),
            relevant: qrels.relevant.clone(),
        })
    }
}
