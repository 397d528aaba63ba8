//! Building blocks shared by the losses: similarity and distance functions, a stable
//! log-sum-exp, and the input checks every loss runs first.

use burn::tensor::{backend::Backend, Int, Tensor};

use crate::LossError;

/// Squared-norm floor used by [`normalize`]: a row is divided by `max(‖x‖, 1e-12)`, as PyTorch's
/// `F.normalize` does, so an all-zero row stays zero instead of becoming NaN.
const NORM_EPS_SQ: f64 = 1e-24;

/// Floor of a squared distance before its square root, so the gradient of the euclidean distance
/// of two identical rows is 0 (PyTorch's `vector_norm` subgradient) rather than NaN. It moves the
/// distance of identical rows from 0 to 1e-15 and no other distance.
const DIST_EPS_SQ: f64 = 1e-30;

/// How two embeddings are compared by the ranking losses and CoSENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Similarity {
    /// Cosine similarity: the dot product of the L2-normalised embeddings (sentence-transformers'
    /// `cos_sim` / `pairwise_cos_sim`). The default.
    #[default]
    Cosine,
    /// Raw dot product (`dot_score`); use with already normalised embeddings or a smaller scale.
    DotProduct,
}

impl Similarity {
    /// Similarity of every row of `a` ([n, d]) with every row of `b` ([m, d]): [n, m].
    pub(crate) fn matrix<B: Backend>(self, a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 2> {
        let (a, b) = self.prepare(a, b);
        a.matmul(b.transpose())
    }

    /// Similarity of row i of `a` with row i of `b` (same shape [n, d]): [n].
    pub(crate) fn pairwise<B: Backend>(self, a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 1> {
        let (a, b) = self.prepare(a, b);
        let n = a.dims()[0];
        (a * b).sum_dim(1).reshape([n])
    }

    fn prepare<B: Backend>(self, a: Tensor<B, 2>, b: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        match self {
            Similarity::Cosine => (normalize(a), normalize(b)),
            Similarity::DotProduct => (a, b),
        }
    }
}

/// How far apart two embeddings are, for the contrastive and triplet losses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distance {
    /// `1 - cos(a, b)`.
    Cosine,
    /// `‖a - b‖₂`.
    Euclidean,
    /// `‖a - b‖₁`.
    Manhattan,
}

impl Distance {
    /// Distance of row i of `a` to row i of `b` (same shape [n, d]): [n].
    ///
    /// `shift` is added to every difference before the norm (euclidean and manhattan only); it
    /// is PyTorch's `pairwise_distance` `eps` (1e-6), which sentence-transformers'
    /// `ContrastiveLoss` uses and `TripletLoss` does not.
    pub(crate) fn pairwise<B: Backend>(
        self,
        a: Tensor<B, 2>,
        b: Tensor<B, 2>,
        shift: f64,
    ) -> Tensor<B, 1> {
        let n = a.dims()[0];
        match self {
            Distance::Cosine => Similarity::Cosine.pairwise(a, b).neg().add_scalar(1.0),
            Distance::Euclidean => {
                let diff = (a - b).add_scalar(shift);
                diff.square()
                    .sum_dim(1)
                    .clamp_min(DIST_EPS_SQ)
                    .sqrt()
                    .reshape([n])
            }
            Distance::Manhattan => (a - b).add_scalar(shift).abs().sum_dim(1).reshape([n]),
        }
    }
}

/// Divides every row by its L2 norm (floored at 1e-12, like PyTorch's `F.normalize`).
pub fn normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().square().sum_dim(1).clamp_min(NORM_EPS_SQ).sqrt();
    x / norm
}

/// `log(sum_j exp(x[i, j]))` for every row i, computed stably: [n, m] → [n].
pub(crate) fn logsumexp_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 1> {
    let n = x.dims()[0];
    let max = x.clone().detach().max_dim(1);
    let lse = (x - max.clone()).exp().sum_dim(1).log() + max;
    lse.reshape([n])
}

/// The diagonal `x[i, i]` of the first n columns of `x` ([n, m], m ≥ n): [n].
pub(crate) fn diagonal<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 1> {
    let n = x.dims()[0];
    let idx = Tensor::<B, 1, Int>::arange(0..n as i64, &x.device()).reshape([n, 1]);
    x.gather(1, idx).reshape([n])
}

/// Checks the inputs of a loss before anything is computed: every embedding matrix has rows and
/// columns, all have the rows and dimension of the first, labels (if any) have one value per row,
/// and everything is finite. Reads one small tensor back from the device.
pub(crate) fn check_inputs<B: Backend>(
    columns: &[(&str, &Tensor<B, 2>)],
    labels: Option<(&str, &Tensor<B, 1>)>,
) -> Result<(), LossError> {
    let Some(&(ref_name, reference)) = columns.first() else {
        return Ok(());
    };
    let [rows, dim] = reference.dims();
    if rows == 0 || dim == 0 {
        return Err(LossError::Empty {
            input: ref_name.to_string(),
            shape: vec![rows, dim],
        });
    }
    for &(name, t) in &columns[1..] {
        let [r, d] = t.dims();
        if r != rows {
            return Err(LossError::BatchMismatch {
                input: name.to_string(),
                rows: r,
                reference: ref_name.to_string(),
                expected: rows,
            });
        }
        if d != dim {
            return Err(LossError::DimMismatch {
                input: name.to_string(),
                dim: d,
                reference: ref_name.to_string(),
                expected: dim,
            });
        }
    }
    if let Some((name, l)) = labels {
        let [n] = l.dims();
        if n != rows {
            return Err(LossError::BatchMismatch {
                input: name.to_string(),
                rows: n,
                reference: ref_name.to_string(),
                expected: rows,
            });
        }
    }

    // One flag per input, read back in one go.
    let mut flags: Vec<Tensor<B, 1, Int>> = columns
        .iter()
        .map(|(_, t)| (*t).clone().is_finite().all().int())
        .collect();
    if let Some((_, l)) = labels {
        flags.push(l.clone().is_finite().all().int());
    }
    let data = Tensor::cat(flags, 0).try_into_data()?;
    let names = columns
        .iter()
        .map(|(n, _)| *n)
        .chain(labels.map(|(n, _)| n));
    for (finite, name) in data.iter::<i64>().zip(names) {
        if finite == 0 {
            return Err(LossError::NonFinite {
                input: name.to_string(),
            });
        }
    }
    Ok(())
}

/// Checks that a scale-like parameter is finite and positive.
pub(crate) fn check_positive(name: &str, value: f64) -> Result<(), LossError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(LossError::invalid(name, value, "must be finite and > 0"))
    }
}

/// Checks that a margin-like parameter is finite and non-negative.
pub(crate) fn check_non_negative(name: &str, value: f64) -> Result<(), LossError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(LossError::invalid(name, value, "must be finite and >= 0"))
    }
}

/// Returns the first `n` columns as the only columns a loss accepts, or a
/// [`LossError::ColumnCount`].
pub(crate) fn expect_columns<'a, B: Backend, const N: usize>(
    loss: &'static str,
    expected: &'static str,
    columns: &'a [Tensor<B, 2>],
) -> Result<&'a [Tensor<B, 2>; N], LossError> {
    columns.try_into().map_err(|_| LossError::ColumnCount {
        loss,
        expected,
        got: columns.len(),
    })
}

/// Returns the labels, or [`LossError::MissingLabels`].
pub(crate) fn expect_labels<'a, B: Backend>(
    loss: &'static str,
    labels: Option<&'a Tensor<B, 1>>,
) -> Result<&'a Tensor<B, 1>, LossError> {
    labels.ok_or(LossError::MissingLabels { loss })
}
