//! The embedding matrix: what the encoder produces and the index, the evaluator and the miner
//! consume.

use std::ops::Index;

/// A matrix with one embedding per row: `len()` rows of `dim()` `f32`s, stored contiguously
/// row-major, so that the whole matrix goes to an index or a file as one slice.
///
/// ```
/// use embedtune_core::Embeddings;
///
/// let mut m = Embeddings::new(vec![1.0, 0.0, 0.0, 1.0], 2).unwrap();
/// m.push(&[0.6, 0.8]).unwrap();
/// assert_eq!((m.len(), m.dim()), (3, 2));
/// assert_eq!(&m[2], &[0.6, 0.8]);
/// assert_eq!(m.iter().map(|row| row[0]).sum::<f32>(), 1.6);
/// assert!(m.push(&[1.0]).is_err()); // a row of the wrong width
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    values: Vec<f32>,
    dim: usize,
}

/// A matrix whose shape does not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShapeError {
    /// The row width is zero.
    #[error("an embedding matrix needs a positive dimension")]
    ZeroDim,
    /// The values do not fill whole rows.
    #[error("{values} values do not make rows of {dim}")]
    Ragged {
        /// Number of values.
        values: usize,
        /// Row width.
        dim: usize,
    },
    /// A row has another width than the matrix.
    #[error("row {row} has {found} values, expected {dim}")]
    RowWidth {
        /// Position of the row.
        row: usize,
        /// The matrix's width.
        dim: usize,
        /// The row's width.
        found: usize,
    },
}

impl Embeddings {
    /// A matrix over row-major `values`, `dim` per row.
    pub fn new(values: Vec<f32>, dim: usize) -> Result<Self, ShapeError> {
        if dim == 0 {
            return Err(ShapeError::ZeroDim);
        }
        if !values.len().is_multiple_of(dim) {
            return Err(ShapeError::Ragged {
                values: values.len(),
                dim,
            });
        }
        Ok(Self { values, dim })
    }

    /// An empty matrix of width `dim` with room for `rows` rows.
    pub fn with_capacity(dim: usize, rows: usize) -> Result<Self, ShapeError> {
        Self::new(Vec::with_capacity(dim.saturating_mul(rows)), dim)
    }

    /// A matrix of `rows` rows of zeros.
    pub fn zeros(rows: usize, dim: usize) -> Result<Self, ShapeError> {
        Self::new(vec![0.0; rows.saturating_mul(dim)], dim)
    }

    /// A matrix from separate rows, all `dim` wide.
    pub fn from_rows<R: AsRef<[f32]>>(rows: &[R], dim: usize) -> Result<Self, ShapeError> {
        let mut m = Self::with_capacity(dim, rows.len())?;
        for row in rows {
            m.push(row.as_ref())?;
        }
        Ok(m)
    }

    /// Appends a row.
    pub fn push(&mut self, row: &[f32]) -> Result<(), ShapeError> {
        if row.len() != self.dim {
            return Err(ShapeError::RowWidth {
                row: self.len(),
                dim: self.dim,
                found: row.len(),
            });
        }
        self.values.extend_from_slice(row);
        Ok(())
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.len() / self.dim
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Width of each row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Row `i`, `None` past the end.
    pub fn get(&self, i: usize) -> Option<&[f32]> {
        let start = i.checked_mul(self.dim)?;
        self.values.get(start..start.checked_add(self.dim)?)
    }

    /// Row `i`, mutable, `None` past the end.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut [f32]> {
        let start = i.checked_mul(self.dim)?;
        self.values.get_mut(start..start.checked_add(self.dim)?)
    }

    /// The rows in order.
    pub fn iter(&self) -> std::slice::ChunksExact<'_, f32> {
        self.values.chunks_exact(self.dim)
    }

    /// The rows in order, mutable.
    pub fn iter_mut(&mut self) -> std::slice::ChunksExactMut<'_, f32> {
        self.values.chunks_exact_mut(self.dim)
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.values
    }

    /// All values, row-major, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.values
    }

    /// The values, row-major.
    pub fn into_vec(self) -> Vec<f32> {
        self.values
    }

    /// A copy as separate rows (for APIs that want `Vec<Vec<f32>>`).
    pub fn to_rows(&self) -> Vec<Vec<f32>> {
        self.iter().map(<[f32]>::to_vec).collect()
    }

    /// The rows at `positions`, in that order, as a new matrix; `None` if one is past the end.
    pub fn select(&self, positions: &[usize]) -> Option<Self> {
        let mut values = Vec::with_capacity(positions.len() * self.dim);
        for &i in positions {
            values.extend_from_slice(self.get(i)?);
        }
        Some(Self {
            values,
            dim: self.dim,
        })
    }
}

impl Index<usize> for Embeddings {
    type Output = [f32];

    /// Row `i`.
    ///
    /// # Panics
    /// If `i` is past the end (as slice indexing does); [`Embeddings::get`] does not panic.
    fn index(&self, i: usize) -> &[f32] {
        let start = i * self.dim;
        &self.values[start..start + self.dim]
    }
}

impl<'a> IntoIterator for &'a Embeddings {
    type Item = &'a [f32];
    type IntoIter = std::slice::ChunksExact<'a, f32>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked() {
        assert_eq!(Embeddings::new(vec![1.0; 3], 0), Err(ShapeError::ZeroDim));
        assert_eq!(
            Embeddings::new(vec![1.0; 5], 2),
            Err(ShapeError::Ragged { values: 5, dim: 2 })
        );
        let rows = [vec![1.0, 2.0], vec![3.0]];
        assert_eq!(
            Embeddings::from_rows(&rows, 2),
            Err(ShapeError::RowWidth {
                row: 1,
                dim: 2,
                found: 1
            })
        );
        let empty = Embeddings::with_capacity(4, 10).unwrap();
        assert!(empty.is_empty());
        assert_eq!((empty.len(), empty.dim()), (0, 4));
        assert_eq!(empty.iter().count(), 0);
    }

    #[test]
    fn rows_round_trip() {
        let rows = vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]];
        let m = Embeddings::from_rows(&rows, 3).unwrap();
        assert_eq!(m.to_rows(), rows);
        assert_eq!(m.as_slice(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(m.get(1), Some(&[4.0, 5.0, 6.0][..]));
        assert_eq!(m.get(2), None);
        assert_eq!(m.get(usize::MAX), None);
        assert_eq!(
            m.select(&[1, 0, 1]).unwrap().to_rows(),
            [rows[1].clone(), rows[0].clone(), rows[1].clone()]
        );
        assert!(m.select(&[2]).is_none());
        assert_eq!(Embeddings::zeros(2, 3).unwrap().as_slice(), &[0.0; 6]);
        let mut m = m;
        m.iter_mut().for_each(|r| r[0] = 0.0);
        assert_eq!(m.into_vec(), vec![0.0, 2.0, 3.0, 0.0, 5.0, 6.0]);
    }
}
