//! CSV / TSV records (RFC 4180): a header row, `"`-quoted fields with `""` for a quote,
//! delimiters and newlines allowed inside quotes. Built on [`LineSource`], so line numbers,
//! UTF-8, BOM and CRLF handling are the same as for JSONL. A line end inside a quoted field
//! becomes `\n` whatever the file used.

use std::io::BufRead;
use std::path::Path;

use crate::error::DataError;
use crate::source::LineSource;

/// One record: the 1-based line it starts on and its fields.
pub(crate) struct Record {
    /// 1-based line where the record starts.
    pub line: usize,
    /// The fields, unquoted, untrimmed.
    pub fields: Vec<String>,
}

/// A data row with the header it is read against and the file it came from.
pub(crate) struct Row<'a> {
    /// 1-based line where the record starts.
    pub line: usize,
    pub fields: Vec<String>,
    pub header: &'a [String],
    pub path: &'a Path,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` seen inside a quoted field: either the closing quote or the first of `""`.
    QuoteInQuoted,
}

pub(crate) struct DelimitedSource<R> {
    lines: LineSource<R>,
    delimiter: char,
    quoting: bool,
    header: Option<(usize, Vec<String>)>,
    /// Set after a header error: without a header no row can be read.
    failed: bool,
}

impl<R: BufRead> DelimitedSource<R> {
    pub fn new(lines: LineSource<R>, delimiter: char, quoting: bool) -> Self {
        Self {
            lines,
            delimiter,
            quoting,
            header: None,
            failed: false,
        }
    }

    pub fn path(&self) -> &Path {
        self.lines.path()
    }

    pub fn lines_read(&self) -> usize {
        self.lines.lines_read()
    }

    /// The header (column names trimmed and lower-cased) and the line it is on. Read on first use.
    pub fn header(&mut self) -> Result<(usize, &[String]), DataError> {
        if self.header.is_none() {
            let header = self.read_header();
            self.failed = header.is_err();
            self.header = Some(header?);
        }
        Ok(match &self.header {
            Some((line, names)) => (*line, names.as_slice()),
            None => (0, &[]),
        })
    }

    fn read_header(&mut self) -> Result<(usize, Vec<String>), DataError> {
        let row = match self.next_record() {
            None => {
                return Err(DataError::MissingHeader {
                    path: self.lines.path().to_path_buf(),
                })
            }
            Some(row) => row?,
        };
        let names: Vec<String> = row.fields.iter().map(|n| n.trim().to_lowercase()).collect();
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(DataError::DuplicateColumn {
                    path: self.lines.path().to_path_buf(),
                    line: row.line,
                    column: name.clone(),
                });
            }
        }
        Ok((row.line, names))
    }

    /// The next data row, checked to have as many fields as the header, with the header and
    /// the file path.
    pub fn next_row(&mut self) -> Option<Result<Row<'_>, DataError>> {
        if self.failed {
            return None;
        }
        let expected = match self.header() {
            Ok((_, h)) => h.len(),
            Err(e) => return Some(Err(e)),
        };
        let row = match self.next_record()? {
            Ok(row) => row,
            Err(e) => return Some(Err(e)),
        };
        if row.fields.len() != expected {
            return Some(Err(DataError::FieldCount {
                path: self.lines.path().to_path_buf(),
                line: row.line,
                expected,
                found: row.fields.len(),
            }));
        }
        let header = self.header.as_ref().map_or(&[][..], |(_, h)| h.as_slice());
        Some(Ok(Row {
            line: row.line,
            fields: row.fields,
            header,
            path: self.lines.path(),
        }))
    }

    /// The next record, header or not. Empty lines between records are skipped.
    pub(crate) fn next_record(&mut self) -> Option<Result<Record, DataError>> {
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut state = State::FieldStart;
        let mut start_line = 0;
        let mut quote_line = 0;
        loop {
            let line = match self.lines.next_line() {
                None if start_line == 0 => return None,
                None => {
                    // Only a quoted field can carry a record past the end of a line.
                    return Some(Err(DataError::UnterminatedQuote {
                        path: self.lines.path().to_path_buf(),
                        line: quote_line,
                    }));
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(line)) => line,
            };
            if start_line == 0 {
                if line.text.is_empty() {
                    continue;
                }
                start_line = line.number;
            }
            for (i, ch) in line.text.chars().enumerate() {
                match state {
                    State::FieldStart | State::Unquoted if ch == self.delimiter => {
                        fields.push(std::mem::take(&mut cur));
                        state = State::FieldStart;
                    }
                    State::FieldStart if ch == '"' && self.quoting => {
                        state = State::Quoted;
                        quote_line = line.number;
                    }
                    State::FieldStart | State::Unquoted => {
                        cur.push(ch);
                        state = State::Unquoted;
                    }
                    State::Quoted if ch == '"' => state = State::QuoteInQuoted,
                    State::Quoted => cur.push(ch),
                    State::QuoteInQuoted if ch == '"' => {
                        cur.push('"');
                        state = State::Quoted;
                    }
                    State::QuoteInQuoted if ch == self.delimiter => {
                        fields.push(std::mem::take(&mut cur));
                        state = State::FieldStart;
                    }
                    State::QuoteInQuoted => {
                        return Some(Err(DataError::QuoteSyntax {
                            path: line.path.to_path_buf(),
                            line: line.number,
                            column: i + 1,
                        }));
                    }
                }
            }
            if state == State::Quoted {
                cur.push('\n');
                continue;
            }
            fields.push(cur);
            return Some(Ok(Record {
                line: start_line,
                fields,
            }));
        }
    }
}
