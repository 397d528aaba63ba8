//! Reading and writing `model.safetensors` with Hugging Face tensor names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{EncoderError, Result};

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

/// A float tensor ready to be written: name (without prefix), shape and values.
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

/// A parsed `model.safetensors`, handing out tensors by name and tracking which were used.
pub(crate) struct WeightReader<'a> {
    file: SafeTensors<'a>,
    path: PathBuf,
    prefix: &'static str,
    used: BTreeSet<String>,
    missing: Vec<String>,
}

impl<'a> WeightReader<'a> {
    /// Parses the bytes of a safetensors file. Names may carry a `bert.` prefix.
    pub(crate) fn new(bytes: &'a [u8], path: &Path) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| EncoderError::Safetensors {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let prefix = if file
            .names()
            .iter()
            .any(|n| n.starts_with("bert.embeddings."))
        {
            "bert."
        } else {
            ""
        };
        Ok(Self {
            file,
            path: path.to_path_buf(),
            prefix,
            used: BTreeSet::new(),
            missing: Vec::new(),
        })
    }

    /// The name prefix found in the file (`""` or `"bert."`).
    pub(crate) fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// Whether the file holds tensor `name` (without prefix).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.file.tensor(&format!("{}{name}", self.prefix)).is_ok()
    }

    /// Reads tensor `name` (without prefix) as f32 with the expected shape.
    ///
    /// A missing tensor is recorded (all are reported together by [`WeightReader::finish`]) and
    /// yields zeros; a wrong shape, dtype or non-finite value fails at once.
    pub(crate) fn tensor<B: Backend, const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Result<Tensor<B, D>> {
        let full = format!("{}{name}", self.prefix);
        let view = match self.file.tensor(&full) {
            Ok(v) => v,
            Err(_) => {
                self.missing.push(full);
                return Ok(Tensor::zeros(shape, device));
            }
        };
        self.used.insert(full.clone());
        if view.shape() != shape {
            return Err(EncoderError::TensorShape {
                path: self.path.clone(),
                name: full,
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let values = to_f32(&view).ok_or_else(|| EncoderError::TensorDtype {
            path: self.path.clone(),
            name: full.clone(),
            dtype: format!("{:?}", view.dtype()),
        })?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(EncoderError::NonFiniteTensor {
                path: self.path.clone(),
                name: full,
            });
        }
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
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
    pub(crate) fn finish(self) -> Result<Vec<RawTensor>> {
        self.check_missing()?;
        let mut kept = Vec::new();
        let mut unexpected = Vec::new();
        for (name, view) in self.file.tensors() {
            if self.used.contains(&name) {
                continue;
            }
            if ignorable(name.strip_prefix(self.prefix).unwrap_or(&name)) {
                kept.push(RawTensor {
                    name,
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    data: view.data().to_vec(),
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

fn to_f32(view: &TensorView<'_>) -> Option<Vec<f32>> {
    let data = view.data();
    Some(match view.dtype() {
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
