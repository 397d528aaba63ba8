//! Streaming readers for JSONL, TSV and CSV training files, and the in-memory [`Dataset`].

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::delimited::DelimitedSource;
use crate::error::{DataError, Result};
use crate::fields::{self, json_type, RowFields};
use crate::source::{Ctx, LineSource};
use crate::types::{Example, ScoredPair};

/// What to do with an empty (or whitespace-only) text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyTextPolicy {
    /// Fail with [`DataError::EmptyText`] (the default).
    #[default]
    Error,
    /// Drop the whole record (a grouped JSONL line: all its examples) and count it in
    /// [`ReadReport::skipped_empty`].
    Skip,
}

/// Options shared by all readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Empty-text policy. Default: [`EmptyTextPolicy::Error`].
    pub empty_text: EmptyTextPolicy,
    /// Keep at most this many hard negatives per example (the first ones). Default: all.
    pub max_negatives: Option<usize>,
    /// Longest line accepted, in bytes; longer is [`DataError::LineTooLong`]. Bounds memory
    /// on files without newlines. Default: 64 MiB.
    pub max_line_bytes: usize,
    /// CSV / TSV: treat `"` as the RFC 4180 quote character (default). Turn off for TSV files
    /// that contain raw quotes and never quote fields.
    pub quoting: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            empty_text: EmptyTextPolicy::Error,
            max_negatives: None,
            max_line_bytes: 64 << 20,
            quoting: true,
        }
    }
}

/// File format of a training file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line. For [`Example`]s each line may be grouped
    /// (`query`, `positive_passages`, `negative_passages`) or flat (`anchor` | `query`,
    /// `positive`, `negative` / `negatives`); for [`ScoredPair`]s: `sentence1`, `sentence2`,
    /// `label` | `score`.
    Jsonl,
    /// Tab-separated with a header row naming the columns.
    Tsv,
    /// Comma-separated with a header row naming the columns.
    Csv,
}

impl Format {
    /// The format named by the file extension (`.jsonl` / `.json`, `.tsv`, `.csv`).
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("jsonl" | "json" | "ndjson") => Ok(Format::Jsonl),
            Some("tsv" | "tab") => Ok(Format::Tsv),
            Some("csv") => Ok(Format::Csv),
            _ => Err(DataError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Counts kept while reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Physical lines read.
    pub lines: usize,
    /// Records produced (a grouped JSONL line produces one per positive).
    pub records: usize,
    /// Source records dropped under [`EmptyTextPolicy::Skip`].
    pub skipped_empty: usize,
}

/// Parses one non-blank JSONL line into an object (shared with the BEIR reader).
pub(crate) fn json_object(ctx: &Ctx<'_>, text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(other) => Err(ctx.not_an_object(json_type(&other))),
        Err(e) => Err(ctx.json(&e, text)),
    }
}

enum Source<R> {
    Jsonl(LineSource<R>),
    Delimited(DelimitedSource<R>),
}

/// How a record type is built from a JSON object or a CSV row.
/// Each pushes the records it built and returns false if the source record was skipped.
type JsonParser<T> = fn(&Ctx<'_>, &Map<String, Value>, &ReadOptions, &mut Vec<T>) -> Result<bool>;
type RowParser<T> = fn(&Ctx<'_>, &RowFields<'_>, &ReadOptions, &mut Vec<T>) -> Result<bool>;

/// A streaming reader: an iterator of records that holds one line (one grouped JSONL line's
/// examples) in memory at a time, so a file of any size is read in constant memory.
///
/// Use [`ExampleReader`] or [`PairReader`]. A record error is yielded as `Err` with its file
/// and line and the reader goes on with the next record; I/O errors and over-long lines end
/// the iteration.
pub struct RecordReader<R, T> {
    source: Source<R>,
    opts: ReadOptions,
    pending: VecDeque<T>,
    buf: Vec<T>,
    report: ReadReport,
    json: JsonParser<T>,
    row: RowParser<T>,
}

/// Streaming reader of [`Example`]s.
pub type ExampleReader<R> = RecordReader<R, Example>;
/// Streaming reader of [`ScoredPair`]s.
pub type PairReader<R> = RecordReader<R, ScoredPair>;

/// Pushes a built record; false if the source record was skipped.
fn keep<T>(out: &mut Vec<T>, item: Option<T>) -> bool {
    match item {
        Some(t) => {
            out.push(t);
            true
        }
        None => false,
    }
}

fn example_json(
    ctx: &Ctx<'_>,
    obj: &Map<String, Value>,
    opts: &ReadOptions,
    out: &mut Vec<Example>,
) -> Result<bool> {
    if obj.contains_key("positive_passages") {
        fields::grouped(ctx, obj, opts, out)
    } else {
        Ok(keep(out, fields::example(ctx, obj, opts)?))
    }
}

fn example_row(
    ctx: &Ctx<'_>,
    row: &RowFields<'_>,
    opts: &ReadOptions,
    out: &mut Vec<Example>,
) -> Result<bool> {
    Ok(keep(out, fields::example(ctx, row, opts)?))
}

fn pair_json(
    ctx: &Ctx<'_>,
    obj: &Map<String, Value>,
    opts: &ReadOptions,
    out: &mut Vec<ScoredPair>,
) -> Result<bool> {
    Ok(keep(out, fields::scored_pair(ctx, obj, opts)?))
}

fn pair_row(
    ctx: &Ctx<'_>,
    row: &RowFields<'_>,
    opts: &ReadOptions,
    out: &mut Vec<ScoredPair>,
) -> Result<bool> {
    Ok(keep(out, fields::scored_pair(ctx, row, opts)?))
}

impl<R: BufRead> RecordReader<R, Example> {
    /// Reads [`Example`]s from `reader`; `path` is only used in error messages.
    pub fn new(reader: R, path: impl Into<PathBuf>, format: Format, opts: ReadOptions) -> Self {
        Self::with_parsers(reader, path.into(), format, opts, example_json, example_row)
    }
}

impl<R: BufRead> RecordReader<R, ScoredPair> {
    /// Reads [`ScoredPair`]s from `reader`; `path` is only used in error messages.
    pub fn new(reader: R, path: impl Into<PathBuf>, format: Format, opts: ReadOptions) -> Self {
        Self::with_parsers(reader, path.into(), format, opts, pair_json, pair_row)
    }
}

impl RecordReader<BufReader<File>, Example> {
    /// Opens a file of [`Example`]s, the format taken from its extension.
    pub fn open(path: impl AsRef<Path>, opts: ReadOptions) -> Result<Self> {
        let (file, path, format) = open_file(path.as_ref())?;
        Ok(Self::new(file, path, format, opts))
    }
}

impl RecordReader<BufReader<File>, ScoredPair> {
    /// Opens a file of [`ScoredPair`]s, the format taken from its extension.
    pub fn open(path: impl AsRef<Path>, opts: ReadOptions) -> Result<Self> {
        let (file, path, format) = open_file(path.as_ref())?;
        Ok(Self::new(file, path, format, opts))
    }
}

pub(crate) fn open_reader(path: &Path) -> Result<BufReader<File>> {
    File::open(path)
        .map(|f| BufReader::with_capacity(1 << 16, f))
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn open_file(path: &Path) -> Result<(BufReader<File>, PathBuf, Format)> {
    let format = Format::from_path(path)?;
    Ok((open_reader(path)?, path.to_path_buf(), format))
}

impl<R: BufRead, T> RecordReader<R, T> {
    fn with_parsers(
        reader: R,
        path: PathBuf,
        format: Format,
        opts: ReadOptions,
        json: JsonParser<T>,
        row: RowParser<T>,
    ) -> Self {
        let lines = LineSource::new(reader, path, opts.max_line_bytes);
        let source = match format {
            Format::Jsonl => Source::Jsonl(lines),
            Format::Tsv => Source::Delimited(DelimitedSource::new(lines, '\t', opts.quoting)),
            Format::Csv => Source::Delimited(DelimitedSource::new(lines, ',', opts.quoting)),
        };
        Self {
            source,
            opts,
            pending: VecDeque::new(),
            buf: Vec::new(),
            report: ReadReport::default(),
            json,
            row,
        }
    }

    /// Counts so far (complete once the iterator is exhausted).
    pub fn report(&self) -> &ReadReport {
        &self.report
    }

    /// Reads the next source record into `pending`. `None` at the end of input.
    fn fill(&mut self) -> Option<Result<()>> {
        self.buf.clear();
        let kept = match &mut self.source {
            Source::Jsonl(lines) => {
                let line = loop {
                    match lines.next_line()? {
                        Ok(line) if line.text.trim().is_empty() => continue,
                        Ok(line) => break line,
                        Err(e) => return Some(Err(e)),
                    }
                };
                let ctx = line.ctx();
                json_object(&ctx, line.text)
                    .and_then(|obj| (self.json)(&ctx, &obj, &self.opts, &mut self.buf))
            }
            Source::Delimited(rows) => {
                let row = match rows.next_row()? {
                    Ok(row) => row,
                    Err(e) => return Some(Err(e)),
                };
                let ctx = Ctx {
                    path: row.path,
                    line: row.line,
                };
                let rec = RowFields {
                    header: row.header,
                    fields: &row.fields,
                };
                (self.row)(&ctx, &rec, &self.opts, &mut self.buf)
            }
        };
        Some(kept.map(|kept| {
            if !kept {
                self.report.skipped_empty += 1;
            }
            self.pending.extend(self.buf.drain(..));
        }))
    }
}

impl<R: BufRead, T> RecordReader<R, T> {
    fn lines_read(&self) -> usize {
        match &self.source {
            Source::Jsonl(lines) => lines.lines_read(),
            Source::Delimited(rows) => rows.lines_read(),
        }
    }
}

impl<R: BufRead, T> Iterator for RecordReader<R, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                self.report.records += 1;
                return Some(Ok(item));
            }
            let filled = self.fill();
            self.report.lines = self.lines_read();
            match filled? {
                Ok(()) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Records read into memory, with the counts from reading them. Build one when the data must
/// be shuffled or batched; see [`BatchSampler`](crate::BatchSampler).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset<T> {
    /// The records, in file order.
    pub items: Vec<T>,
    /// Counts from reading.
    pub report: ReadReport,
}

impl<T> Dataset<T> {
    /// Reads every record of a streaming reader, stopping at the first error.
    pub fn from_reader<R: BufRead>(mut reader: RecordReader<R, T>) -> Result<Self> {
        let items = reader.by_ref().collect::<Result<Vec<T>>>()?;
        Ok(Self {
            items,
            report: reader.report,
        })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True if there are no records.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Reads a whole file of [`Example`]s (format from the extension) into memory.
pub fn read_examples(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Dataset<Example>> {
    Dataset::from_reader(ExampleReader::open(path, opts.clone())?)
}

/// Reads a whole file of [`ScoredPair`]s (format from the extension) into memory.
pub fn read_pairs(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Dataset<ScoredPair>> {
    Dataset::from_reader(PairReader::open(path, opts.clone())?)
}
