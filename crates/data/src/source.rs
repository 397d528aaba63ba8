//! Line reading shared by every parser: 1-based line numbers, UTF-8 validation with the column
//! of the first bad byte, a BOM at the start of the file skipped (elsewhere an error), `\n` and
//! `\r\n` line ends, a per-line length limit so that a file without newlines cannot exhaust
//! memory, and the error constructors that stamp the file path and line on every error.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use crate::error::DataError;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where a record came from: the file and the 1-based line. Builds located errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub path: &'a Path,
    pub line: usize,
}

impl Ctx<'_> {
    fn path(&self) -> PathBuf {
        self.path.to_path_buf()
    }

    pub fn missing(&self, field: impl Into<String>) -> DataError {
        DataError::MissingField {
            path: self.path(),
            line: self.line,
            field: field.into(),
        }
    }

    pub fn wrong_type(
        &self,
        field: impl Into<String>,
        expected: &'static str,
        found: &'static str,
    ) -> DataError {
        DataError::WrongType {
            path: self.path(),
            line: self.line,
            field: field.into(),
            expected,
            found,
        }
    }

    pub fn invalid_number(
        &self,
        field: impl Into<String>,
        expected: &'static str,
        value: &str,
    ) -> DataError {
        DataError::InvalidNumber {
            path: self.path(),
            line: self.line,
            field: field.into(),
            expected,
            value: value.chars().take(40).collect(),
        }
    }

    pub fn empty(&self, field: impl Into<String>) -> DataError {
        DataError::EmptyText {
            path: self.path(),
            line: self.line,
            field: field.into(),
        }
    }

    /// A JSON syntax error in `text`, the line that was parsed.
    pub fn json(&self, err: &serde_json::Error, text: &str) -> DataError {
        let message = err.to_string();
        // serde_json appends " at line L column C"; the line is always 1 here, so keep the message.
        let message = match message.rfind(" at line ") {
            Some(at) => message[..at].to_string(),
            None => message,
        };
        DataError::Json {
            path: self.path(),
            line: self.line,
            column: char_column(text, err.column()),
            message,
        }
    }

    pub fn not_an_object(&self, found: &'static str) -> DataError {
        DataError::NotAnObject {
            path: self.path(),
            line: self.line,
            found,
        }
    }
}

/// The 1-based character column of serde_json's column, which counts bytes: the number of
/// characters that start at or before the byte it points at. 0 (no position) stays 0.
fn char_column(text: &str, byte_column: usize) -> usize {
    let chars = text
        .char_indices()
        .take_while(|&(at, _)| at < byte_column)
        .count();
    chars + byte_column.saturating_sub(text.len())
}

/// One physical line, without its line end.
pub(crate) struct Line<'a> {
    /// 1-based line number.
    pub number: usize,
    pub text: &'a str,
    pub path: &'a Path,
}

impl<'a> Line<'a> {
    pub fn ctx(&self) -> Ctx<'a> {
        Ctx {
            path: self.path,
            line: self.number,
        }
    }
}

/// Reads a byte stream line by line. After an I/O error or an over-long line the source is
/// finished (it cannot resynchronise); after a bad-UTF-8 or stray-BOM line it goes on.
pub(crate) struct LineSource<R> {
    reader: R,
    path: PathBuf,
    line: usize,
    buf: Vec<u8>,
    max_line_bytes: usize,
    finished: bool,
}

impl<R: BufRead> LineSource<R> {
    pub fn new(reader: R, path: PathBuf, max_line_bytes: usize) -> Self {
        Self {
            reader,
            path,
            line: 0,
            buf: Vec::new(),
            max_line_bytes: max_line_bytes.max(1),
            finished: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of lines read so far.
    pub fn lines_read(&self) -> usize {
        self.line
    }

    /// The next line, `None` at the end of the input.
    pub fn next_line(&mut self) -> Option<Result<Line<'_>, DataError>> {
        if self.finished {
            return None;
        }
        self.buf.clear();
        // Room for the longest allowed line plus "\r\n".
        let limit = self.max_line_bytes as u64 + 2;
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf);
        match read {
            Err(source) => {
                self.finished = true;
                return Some(Err(DataError::Io {
                    path: self.path.clone(),
                    source,
                }));
            }
            Ok(0) => {
                self.finished = true;
                return None;
            }
            Ok(_) => {}
        }
        self.line += 1;
        let mut end = self.buf.len();
        if self.buf.last() == Some(&b'\n') {
            end -= 1;
            if end > 0 && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
        } else if self.buf.len() as u64 == limit {
            self.finished = true;
            return Some(Err(DataError::LineTooLong {
                path: self.path.clone(),
                line: self.line,
                limit: self.max_line_bytes,
            }));
        } else if end > 0 && self.buf[end - 1] == b'\r' {
            // "\r" before end of file: a CRLF file whose last line has no "\n".
            end -= 1;
        }
        if end > self.max_line_bytes {
            self.finished = true;
            return Some(Err(DataError::LineTooLong {
                path: self.path.clone(),
                line: self.line,
                limit: self.max_line_bytes,
            }));
        }
        let mut start = 0;
        if self.buf[..end].starts_with(BOM) {
            if self.line == 1 {
                start = BOM.len();
            } else {
                return Some(Err(DataError::UnexpectedBom {
                    path: self.path.clone(),
                    line: self.line,
                }));
            }
        }
        match std::str::from_utf8(&self.buf[start..end]) {
            Ok(text) => Some(Ok(Line {
                number: self.line,
                text,
                path: &self.path,
            })),
            Err(e) => Some(Err(DataError::InvalidUtf8 {
                path: self.path.clone(),
                line: self.line,
                column: start + e.valid_up_to() + 1,
            })),
        }
    }
}
