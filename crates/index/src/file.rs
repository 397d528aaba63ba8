//! The index file container: a checksummed header, then the sections of one index.
//!
//! ```text
//! offset       size    field
//! 0            8       magic  b"ETINDEX\0"
//! 8            4       format version, u32 LE (this build: FORMAT_VERSION)
//! 12           4       kind, u32 LE (1 = flat, 2 = hnsw)
//! 16           4       number of sections n, u32 LE (fixed by the kind)
//! 20           12 × n  per section: length u64 LE, CRC-32 of its bytes u32 LE
//! 20 + 12n     4       CRC-32 of bytes [0, 20 + 12n)
//! 24 + 12n     …       the sections' bytes, in order, nothing after them
//! ```
//!
//! Section 0 is always a JSON manifest. Reading checks, in order: magic, version, header
//! checksum, kind and section count, file length (shorter → [`IndexError::Truncated`]), then
//! each section's checksum; any failure is a typed error and nothing of the file is used.
//! Writing is atomic: a temporary file in the target's directory, fsync, rename, fsync of the
//! directory.

use std::fs;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::IndexError;

/// First bytes of every index file.
pub const MAGIC: [u8; 8] = *b"ETINDEX\0";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes before the section table.
const FIXED_HEADER: usize = 20;
/// Bytes per section-table entry.
const ENTRY: usize = 12;

/// What an index file holds; fixes the sections that follow the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Flat,
    Hnsw,
}

impl Kind {
    fn code(self) -> u32 {
        match self {
            Kind::Flat => 1,
            Kind::Hnsw => 2,
        }
    }

    fn from_code(code: u32) -> Option<Self> {
        [Kind::Flat, Kind::Hnsw]
            .into_iter()
            .find(|k| k.code() == code)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Flat => "flat",
            Kind::Hnsw => "hnsw",
        }
    }

    /// Section names, for messages; their number is the section count.
    fn sections(self) -> &'static [&'static str] {
        match self {
            Kind::Flat => &["manifest", "vectors"],
            Kind::Hnsw => &["manifest", "hnsw graph", "hnsw data"],
        }
    }
}

/// A file read into memory whose header and checksums have been verified.
pub(crate) struct IndexFile {
    path: PathBuf,
    kind: Kind,
    bytes: Vec<u8>,
    sections: Vec<Range<usize>>,
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

impl IndexFile {
    /// Reads and verifies `path`.
    pub(crate) fn read(path: &Path) -> Result<Self, IndexError> {
        let bytes = fs::read(path).map_err(|e| IndexError::io(path, e))?;
        Self::from_bytes(bytes, path)
    }

    /// Verifies the bytes of an index file read from `path` (used in messages, and as the
    /// directory an HNSW graph is staged in).
    pub(crate) fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self, IndexError> {
        let corrupted = |reason: String| IndexError::Corrupted {
            path: path.to_path_buf(),
            reason,
        };
        let truncated = |expected: usize| IndexError::Truncated {
            path: path.to_path_buf(),
            expected: expected as u64,
            found: bytes.len() as u64,
        };
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(IndexError::NotAnIndexFile {
                path: path.to_path_buf(),
            });
        }
        if bytes.len() < FIXED_HEADER {
            return Err(truncated(FIXED_HEADER));
        }
        let version = le_u32(&bytes, 8);
        if version != FORMAT_VERSION {
            return Err(IndexError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let count = le_u32(&bytes, 16) as usize;
        if count > 16 {
            return Err(corrupted(format!("header announces {count} sections")));
        }
        let header_len = FIXED_HEADER + ENTRY * count;
        if bytes.len() < header_len + 4 {
            return Err(truncated(header_len + 4));
        }
        if crc32fast::hash(&bytes[..header_len]) != le_u32(&bytes, header_len) {
            return Err(corrupted("header checksum mismatch".into()));
        }
        let kind = Kind::from_code(le_u32(&bytes, 12))
            .ok_or_else(|| corrupted(format!("unknown index kind {}", le_u32(&bytes, 12))))?;
        let names = kind.sections();
        if count != names.len() {
            return Err(corrupted(format!(
                "a {} index has {} sections, the header announces {count}",
                kind.name(),
                names.len()
            )));
        }
        let mut sections = Vec::with_capacity(count);
        let mut end = (header_len + 4) as u64;
        for (i, name) in names.iter().enumerate() {
            let len = le_u64(&bytes, FIXED_HEADER + ENTRY * i);
            let start = end;
            end = end
                .checked_add(len)
                .ok_or_else(|| corrupted(format!("{name} section length {len}")))?;
            sections.push((start, end));
        }
        if (bytes.len() as u64) < end {
            return Err(IndexError::Truncated {
                path: path.to_path_buf(),
                expected: end,
                found: bytes.len() as u64,
            });
        }
        if (bytes.len() as u64) > end {
            return Err(corrupted(format!(
                "{} bytes after the last section",
                bytes.len() as u64 - end
            )));
        }
        // every section lies within `bytes`, whose length fits in usize
        let sections: Vec<Range<usize>> = sections
            .into_iter()
            .map(|(s, e)| s as usize..e as usize)
            .collect();
        for (i, range) in sections.iter().enumerate() {
            if crc32fast::hash(&bytes[range.clone()])
                != le_u32(&bytes, FIXED_HEADER + ENTRY * i + 8)
            {
                return Err(corrupted(format!("{} section checksum mismatch", names[i])));
            }
        }
        Ok(IndexFile {
            path: path.to_path_buf(),
            kind,
            bytes,
            sections,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// Fails with [`IndexError::WrongKind`] unless the file holds a `kind` index.
    pub(crate) fn expect_kind(&self, kind: Kind) -> Result<(), IndexError> {
        if self.kind != kind {
            return Err(IndexError::WrongKind {
                path: self.path.clone(),
                expected: kind.name(),
                found: self.kind.name().to_string(),
            });
        }
        Ok(())
    }

    /// The bytes of section `i` (0 is the manifest).
    pub(crate) fn section(&self, i: usize) -> &[u8] {
        &self.bytes[self.sections[i].clone()]
    }

    /// Parses the manifest (section 0).
    pub(crate) fn manifest<T: DeserializeOwned>(&self) -> Result<T, IndexError> {
        serde_json::from_slice(self.section(0))
            .map_err(|e| self.corrupted(format!("manifest: {e}")))
    }

    /// An [`IndexError::Corrupted`] for this file.
    pub(crate) fn corrupted(&self, reason: String) -> IndexError {
        IndexError::Corrupted {
            path: self.path.clone(),
            reason,
        }
    }
}

/// Writes a `kind` index file atomically at `path`: `manifest` as JSON in section 0, then the
/// other sections.
pub(crate) fn write<T: Serialize>(
    path: &Path,
    kind: Kind,
    manifest: &T,
    rest: &[&[u8]],
) -> Result<(), IndexError> {
    let manifest = serde_json::to_vec(manifest).map_err(|e| {
        IndexError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    let sections: Vec<&[u8]> = std::iter::once(manifest.as_slice())
        .chain(rest.iter().copied())
        .collect();
    debug_assert_eq!(sections.len(), kind.sections().len());
    let mut header = Vec::with_capacity(FIXED_HEADER + ENTRY * sections.len() + 4);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&kind.code().to_le_bytes());
    header.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for s in &sections {
        header.extend_from_slice(&(s.len() as u64).to_le_bytes());
        header.extend_from_slice(&crc32fast::hash(s).to_le_bytes());
    }
    header.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
    embedtune_core::write_file_with(path, |out| {
        out.write_all(&header)?;
        sections.iter().try_for_each(|s| out.write_all(s))
    })
    .map_err(|e| IndexError::io(&e.path, e.source))
}
