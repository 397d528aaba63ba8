//! Reading and writing `model.safetensors` with Hugging Face tensor names.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::tensor::{Dtype, Metadata, TensorInfo, TensorView};

use crate::error::{io_err, EncoderError, Result};

/// Tensors of a checkpoint that the encoder does not use but keeps, so that a saved model has
/// the same tensor names as its source (`pooler.*`, `embeddings.position_ids`).
#[derive(Debug, Clone)]
pub struct RawTensor {
    /// Name in the file.
    pub name: String,
    /// Stored dtype.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Little-endian bytes as stored.
    pub data: Vec<u8>,
}

/// A float tensor: name (without prefix), shape and values, to be written or as read by
/// [`read_safetensors`].
#[derive(Debug, Clone)]
pub struct NamedTensor {
    /// Name relative to the model (e.g. `encoder.layer.0.attention.self.query.weight`).
    pub name: String,
    /// Shape in the Hugging Face layout (`[out, in]` for linear weights).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// Whether an unused tensor may be ignored (kept as [`RawTensor`]) rather than reported.
fn ignorable(name: &str) -> bool {
    name.starts_with("pooler.") || name == "embeddings.position_ids"
}

/// The most header bytes a safetensors file may declare (the `safetensors` crate's limit).
const MAX_HEADER: u64 = 100_000_000;

/// A `model.safetensors` file opened for reading: its header is parsed and validated (by the
/// `safetensors` crate's own checks, and against the file's length) up front, and each tensor's
/// bytes are read from the file when the tensor is asked for, so that loading holds at most
/// one tensor's bytes besides the tensors already made. Tracks which tensors were used.
pub(crate) struct WeightReader {
    file: File,
    metadata: Metadata,
    /// Where the data section starts in the file.
    data_start: u64,
    path: PathBuf,
    prefix: &'static str,
    used: BTreeSet<String>,
    missing: Vec<String>,
    /// Values of the zero placeholders handed out for missing tensors so far.
    placeholder_values: u64,
    /// The file's length in bytes.
    len: u64,
}

impl WeightReader {
    /// Opens and validates a safetensors file. Names may carry a `bert.` prefix.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let bad = |reason: String| EncoderError::Safetensors {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = File::open(path).map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        let mut n = [0u8; 8];
        if len < 8 {
            return Err(bad(format!("{len} bytes: too short for a header")));
        }
        file.read_exact(&mut n).map_err(io_err(path))?;
        let n = u64::from_le_bytes(n);
        if n > MAX_HEADER || 8 + n > len {
            return Err(bad(format!(
                "header length {n} does not fit a file of {len} bytes"
            )));
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header).map_err(io_err(path))?;
        let header =
            std::str::from_utf8(&header).map_err(|e| bad(format!("header is not UTF-8: {e}")))?;
        let metadata: Metadata =
            serde_json::from_str(header).map_err(|e| bad(format!("header: {e}")))?;
        let data_start = 8 + n;
        let data_len = metadata.data_len() as u64;
        if data_start + data_len != len {
            return Err(bad(format!(
                "the header describes {data_len} bytes of tensor data, the file holds {}",
                len - data_start
            )));
        }
        // Task-model checkpoints name the encoder's weights `bert.…` / `roberta.…`;
        // sentence-transformers saves the bare encoder without a prefix.
        let prefix = crate::names::MODEL_PREFIXES
            .into_iter()
            .find(|p| {
                metadata
                    .tensors()
                    .keys()
                    .any(|n| n.starts_with(&format!("{p}embeddings.")))
            })
            .unwrap_or("");
        Ok(Self {
            file,
            metadata,
            data_start,
            path: path.to_path_buf(),
            prefix,
            used: BTreeSet::new(),
            missing: Vec::new(),
            placeholder_values: 0,
            len,
        })
    }

    /// The name prefix found in the file (`""`, `"bert."` or `"roberta."`).
    pub(crate) fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// Whether the file holds tensor `name` (without prefix).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.metadata
            .info(&format!("{}{name}", self.prefix))
            .is_some()
    }

    /// The stored bytes of a tensor.
    fn bytes(&mut self, info: &TensorInfo) -> Result<Vec<u8>> {
        let (start, end) = info.data_offsets;
        let mut data = vec![0u8; end - start];
        self.file
            .seek(SeekFrom::Start(self.data_start + start as u64))
            .and_then(|_| self.file.read_exact(&mut data))
            .map_err(io_err(&self.path))?;
        Ok(data)
    }

    /// Reads tensor `name` (without prefix) as f32 with the expected shape.
    ///
    /// A missing tensor is recorded (all are reported together by [`WeightReader::finish`], or
    /// at once when the missing tensors hold more values than the file has bytes) and yields
    /// zeros; a wrong shape, dtype or non-finite value fails at once.
    pub(crate) fn tensor<B: Backend, const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Result<Tensor<B, D>> {
        let full = format!("{}{name}", self.prefix);
        let Some(info) = self.metadata.info(&full).cloned() else {
            self.missing.push(full);
            // The placeholders are never used (loading fails at the end), but their shapes
            // come from the config: a `vocab_size` of 10¹² must not allocate them. Past as
            // many values as the file has bytes, the file cannot be this model's: stop here.
            let values = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
            self.placeholder_values = values
                .and_then(|v| v.checked_add(self.placeholder_values))
                .unwrap_or(u64::MAX);
            if self.placeholder_values > self.len {
                self.check_missing()?;
            }
            return Ok(Tensor::zeros(shape, device));
        };
        self.used.insert(full.clone());
        if info.shape != shape {
            return Err(EncoderError::TensorShape {
                path: self.path.clone(),
                name: full,
                expected: shape.to_vec(),
                found: info.shape,
            });
        }
        let values = self.values(&full, &info)?;
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
    }

    /// The shape of tensor `name` (without prefix) in the file, if it is there.
    pub(crate) fn shape(&self, name: &str) -> Option<&[usize]> {
        self.metadata
            .info(&format!("{}{name}", self.prefix))
            .map(|info| info.shape.as_slice())
    }

    /// The values of tensor `full` (its name in the file) as f32: fails on a dtype that is not
    /// a float or on a non-finite value.
    fn values(&mut self, full: &str, info: &TensorInfo) -> Result<Vec<f32>> {
        let path = self.path.clone();
        let dtype_error = || EncoderError::TensorDtype {
            path: path.clone(),
            name: full.to_string(),
            dtype: format!("{:?}", info.dtype),
        };
        if !matches!(
            info.dtype,
            Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64
        ) {
            return Err(dtype_error());
        }
        let bytes = self.bytes(info)?;
        let values = to_f32(info.dtype, &bytes).ok_or_else(dtype_error)?;
        drop(bytes);
        if values.iter().any(|v| !v.is_finite()) {
            return Err(EncoderError::NonFiniteTensor {
                path: self.path.clone(),
                name: full.to_string(),
            });
        }
        Ok(values)
    }

    /// Fails if any requested tensor was absent.
    pub(crate) fn check_missing(&self) -> Result<()> {
        if self.missing.is_empty() {
            return Ok(());
        }
        Err(EncoderError::MissingTensors {
            path: self.path.clone(),
            names: self.missing.clone(),
        })
    }

    /// Reports missing and unexpected tensors; returns the ignorable ones to keep.
    pub(crate) fn finish(mut self) -> Result<Vec<RawTensor>> {
        self.check_missing()?;
        let mut kept = Vec::new();
        let mut unexpected = Vec::new();
        for name in self.metadata.offset_keys() {
            if self.used.contains(&name) {
                continue;
            }
            if ignorable(name.strip_prefix(self.prefix).unwrap_or(&name)) {
                let Some(info) = self.metadata.info(&name).cloned() else {
                    continue;
                };
                kept.push(RawTensor {
                    data: self.bytes(&info)?,
                    name,
                    dtype: info.dtype,
                    shape: info.shape,
                });
            } else {
                unexpected.push(name);
            }
        }
        if !unexpected.is_empty() {
            unexpected.sort();
            return Err(EncoderError::UnexpectedTensors {
                path: self.path,
                names: unexpected,
            });
        }
        kept.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(kept)
    }
}

/// Reads every tensor of a safetensors file as f32 (in file order), with the checks model
/// loading applies: header and tensor table, file length, dtype, finite values. For the fuzz
/// targets.
#[doc(hidden)]
pub fn read_safetensors(path: &Path) -> Result<Vec<NamedTensor>> {
    let mut reader = WeightReader::open(path)?;
    let mut out = Vec::new();
    for name in reader.metadata.offset_keys() {
        let Some(info) = reader.metadata.info(&name).cloned() else {
            continue;
        };
        let values = reader.values(&name, &info)?;
        out.push(NamedTensor {
            name,
            shape: info.shape,
            values,
        });
    }
    Ok(out)
}

fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        _ => return None,
    })
}

/// Reads a float tensor back from the backend as f32 values.
pub(crate) fn tensor_values<B: Backend, const D: usize>(
    tensor: Tensor<B, D>,
    name: &str,
) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| EncoderError::TensorData {
            name: name.to_string(),
            reason: format!("{e:?}"),
        })
}

/// Serialises model tensors (with `prefix` added to their names) and kept raw tensors into the
/// bytes of a safetensors file, in f32.
pub(crate) fn serialize(
    prefix: &str,
    tensors: &[NamedTensor],
    raw: &[RawTensor],
    path: &Path,
) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<u8>)> = tensors
        .iter()
        .map(|t| {
            let mut b = Vec::with_capacity(t.values.len() * 4);
            for v in &t.values {
                b.extend_from_slice(&v.to_le_bytes());
            }
            (format!("{prefix}{}", t.name), b)
        })
        .collect();
    let mut views: BTreeMap<String, TensorView<'_>> = BTreeMap::new();
    let bad = |e: safetensors::SafeTensorError| EncoderError::Safetensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    for (t, (name, b)) in tensors.iter().zip(&bytes) {
        views.insert(
            name.clone(),
            TensorView::new(Dtype::F32, t.shape.clone(), b).map_err(bad)?,
        );
    }
    for r in raw {
        views.insert(
            r.name.clone(),
            TensorView::new(r.dtype, r.shape.clone(), &r.data).map_err(bad)?,
        );
    }
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    safetensors::serialize(views, Some(metadata)).map_err(bad)
}
