//! Row-wise CPU kernels behind the fused operations: each reads its inputs once and writes its
//! outputs once, where burn's composite versions make a pass (and a tensor) per elementary op.
//!
//! Every kernel works on contiguous row-major buffers `[rows, width]` and runs its rows in
//! parallel with rayon. Dropout masks are not stored: element `(row, col)` is kept when a
//! counter-based hash of `(seed, row, col)` falls under the keep probability, so the backward
//! pass regenerates exactly the forward pass's mask.

use rayon::prelude::*;

/// Rows handed to one rayon task at least (keeps task overhead small for narrow rows).
const MIN_ROWS: usize = 16;

/// Whether the CPU runs AVX-512 (F, VL, BW, DQ) besides AVX2 and FMA.
#[inline]
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2()
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the CPU runs AVX2 and FMA (checked once; the check caches its answer).
#[inline]
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `fn $name(args)` runs the `#[inline(always)]` function `$generic` compiled for AVX-512 when
/// the CPU has it (loops run 16 lanes wide), for AVX2 + FMA when it has those (8 lanes), and
/// as it is otherwise (SSE2's 4). Results are bit-identical either way: Rust never contracts
/// `a * b + c` into an FMA on its own, and the lanes do the same operations in the same order.
macro_rules! wide {
    ($name:ident => $generic:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        wide!($name => $generic($($arg: $ty),*) -> ());
    };
    ($name:ident => $generic:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty) => {
        pub(crate) fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) -> $ret {
                    $generic($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    $generic($($arg),*)
                }
                if $crate::fused::kernels::has_avx512() {
                    // SAFETY: the CPU has the features `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if $crate::fused::kernels::has_avx2() {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $generic($($arg),*)
        }
    };
}
pub(crate) use wide;

/// Dropout with probability `p`, as a per-element keep test and the survivors' scale.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dropout {
    /// Kept when the element's 32-bit hash is below this (`u32::MAX` with `keep_all`).
    threshold: u32,
    /// `1 / (1 - p)`.
    scale: f32,
    /// `p == 0`: nothing is dropped.
    keep_all: bool,
    /// The call's seed.
    seed: u64,
}

impl Dropout {
    /// Drops with probability `p` (in `[0, 1)`), masks drawn from `seed`.
    pub(crate) fn new(p: f64, seed: u64) -> Self {
        let keep = 1.0 - p;
        Self {
            threshold: (keep * 4_294_967_296.0).min(u32::MAX as f64) as u32,
            scale: (1.0 / keep) as f32,
            keep_all: p <= 0.0,
            seed,
        }
    }

    /// No dropout.
    pub(crate) fn none() -> Self {
        Self::new(0.0, 0)
    }

    /// Whether nothing is dropped.
    pub(crate) fn is_identity(&self) -> bool {
        self.keep_all
    }

    /// The mask row `row` as multipliers (0 or `1 / (1 - p)`), written into `out`.
    #[inline(always)]
    fn row_factors(&self, row: usize, out: &mut [f32]) {
        if self.keep_all {
            out.fill(1.0);
            return;
        }
        let s = splitmix64(self.seed ^ (row as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let (lo, hi) = (s as u32, (s >> 32) as u32);
        for (col, o) in out.iter_mut().enumerate() {
            let h = hash32((col as u32) ^ lo, hi);
            *o = if h < self.threshold { self.scale } else { 0.0 };
        }
    }
}

/// splitmix64's finaliser.
#[inline(always)]
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 32-bit integer hash (two multiply–xorshift rounds) of `x` keyed by `k`.
#[inline(always)]
fn hash32(x: u32, k: u32) -> u32 {
    let mut h = x.wrapping_add(k);
    h ^= h >> 16;
    h = h.wrapping_mul(0x7FEB_352D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846C_A68B);
    h ^ (h >> 16)
}

/// `e^x` in f32 (Cephes' reduction and polynomial, within 2 ulp), 0 below −87.3.
/// Branch-free so that loops over it vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let under = x < -87.3;
    let x = x.clamp(-87.3, 88.7);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    // n is an integer in −126..=128, held in the low mantissa bits of `shifted`: reading it
    // there avoids a float → int conversion (Rust's saturating `as i32` does not vectorise).
    let n_int = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    if under {
        0.0
    } else {
        y * scale
    }
}

/// `erfc(z)` for `z ≥ 0` (Numerical Recipes' Chebyshev fit, relative error below 1.2e-7).
#[inline(always)]
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204
                                + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t * exp(-z * z + poly)
}

/// The standard normal CDF Φ(x), without cancellation in either tail.
#[inline(always)]
pub(crate) fn normal_cdf(x: f32) -> f32 {
    let half_tail = 0.5 * erfc_pos(x.abs() * std::f32::consts::FRAC_1_SQRT_2);
    if x >= 0.0 {
        1.0 - half_tail
    } else {
        half_tail
    }
}

#[inline(always)]
fn gelu_chunk(o: &mut [f32], x: &[f32]) {
    for (o, &x) in o.iter_mut().zip(x) {
        *o = x * normal_cdf(x);
    }
}
wide!(gelu_chunk_wide => gelu_chunk(o: &mut [f32], x: &[f32]));

/// GELU (the erf form): `x · Φ(x)`.
pub(crate) fn gelu(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(4096)
        .zip(x.par_chunks(4096))
        .for_each(|(o, x)| gelu_chunk_wide(o, x));
    out
}

#[inline(always)]
fn gelu_grad_chunk(o: &mut [f32], x: &[f32], dy: &[f32]) {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    for ((o, &x), &dy) in o.iter_mut().zip(x).zip(dy) {
        let pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
        *o = dy * (normal_cdf(x) + x * pdf);
    }
}
wide!(gelu_grad_chunk_wide => gelu_grad_chunk(o: &mut [f32], x: &[f32], dy: &[f32]));

/// GELU's backward: `dy · (Φ(x) + x · φ(x))`.
pub(crate) fn gelu_backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(4096)
        .zip(x.par_chunks(4096).zip(dy.par_chunks(4096)))
        .for_each(|(o, (x, dy))| gelu_grad_chunk_wide(o, x, dy));
    out
}

/// Row `row` of `x · mask` into `o`.
#[inline(always)]
fn dropout_row(drop: &Dropout, row: usize, o: &mut [f32], x: &[f32]) {
    drop.row_factors(row, o);
    for (o, &x) in o.iter_mut().zip(x) {
        *o *= x;
    }
}
wide!(dropout_row_wide => dropout_row(drop: &Dropout, row: usize, o: &mut [f32], x: &[f32]));

/// Dropout forward: `x · mask`, rows of `width`.
pub(crate) fn dropout(x: &[f32], width: usize, drop: Dropout) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(width)
        .zip(x.par_chunks(width))
        .enumerate()
        .with_min_len(MIN_ROWS)
        .for_each(|(row, (o, x))| dropout_row_wide(&drop, row, o, x));
    out
}

/// What the fused residual LayerNorm keeps for its backward pass.
#[derive(Clone, Debug)]
pub(crate) struct NormSaved {
    /// The normalised input `(s − mean) / std`, `[rows, width]`.
    pub xhat: Vec<f32>,
    /// `1 / std` per row.
    pub rstd: Vec<f32>,
}

/// The mean and `1 / sqrt(variance + eps)` of one LayerNorm row. The statistics accumulate in
/// f64: a row of 1,024 f32 values summed in f32 loses ~1e-5 relative, which the backward
/// pass's cancellations magnify.
#[inline(always)]
pub(crate) fn mean_rstd(row: &[f32], eps: f32) -> (f32, f32) {
    let width = row.len() as f64;
    let mut sum = 0.0f64;
    for &v in row {
        sum += f64::from(v);
    }
    let mean = sum / width;
    let mut var = 0.0f64;
    for &v in row {
        let d = f64::from(v) - mean;
        var += d * d;
    }
    let r = 1.0 / (var / width + f64::from(eps)).sqrt();
    (mean as f32, r as f32)
}

/// One row of [`residual_norm`]: `o` gets the output, `xh` the normalised sum; returns 1/std.
#[inline(always)]
fn norm_row(
    drop: &Dropout,
    row: usize,
    (o, xh): (&mut [f32], &mut [f32]),
    (h, x): (&[f32], &[f32]),
    (gamma, beta): (&[f32], &[f32]),
    eps: f32,
) -> f32 {
    // o holds the mask, then the sum, then the output.
    drop.row_factors(row, o);
    for ((o, &h), &x) in o.iter_mut().zip(h).zip(x) {
        *o = h * *o + x;
    }
    let (mean, r) = mean_rstd(o, eps);
    for (((o, xh), &g), &b) in o.iter_mut().zip(xh.iter_mut()).zip(gamma).zip(beta) {
        let n = (*o - mean) * r;
        *xh = n;
        *o = n * g + b;
    }
    r
}

type RowOut<'a> = (&'a mut [f32], &'a mut [f32]);
type RowIn<'a> = (&'a [f32], &'a [f32]);

wide!(norm_row_wide => norm_row(
    drop: &Dropout,
    row: usize,
    out: RowOut<'_>,
    input: RowIn<'_>,
    affine: RowIn<'_>,
    eps: f32,
) -> f32);

/// `LayerNorm(dropout(h) + x)` over rows of `gamma.len()`, with its saved state.
pub(crate) fn residual_norm(
    h: &[f32],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    drop: Dropout,
) -> (Vec<f32>, NormSaved) {
    let width = gamma.len();
    let rows = h.len() / width;
    let mut out = vec![0.0; h.len()];
    let mut xhat = vec![0.0; h.len()];
    let mut rstd = vec![0.0; rows];
    out.par_chunks_mut(width)
        .zip(xhat.par_chunks_mut(width))
        .zip(rstd.par_iter_mut())
        .zip(h.par_chunks(width).zip(x.par_chunks(width)))
        .enumerate()
        .with_min_len(MIN_ROWS)
        .for_each(|(row, (((o, xh), rs), (h, x)))| {
            *rs = norm_row_wide(&drop, row, (o, xh), (h, x), (gamma, beta), eps);
        });
    (out, NormSaved { xhat, rstd })
}

/// A block of rows of the LayerNorm backward: writes `dx` and adds to `dg`, `db`.
#[inline(always)]
fn norm_grad_block(
    dx: &mut [f32],
    (dy, xhat): (&[f32], &[f32]),
    rstd: &[f32],
    gamma: &[f32],
    (dg, db): (&mut [f32], &mut [f32]),
) {
    let width = gamma.len();
    for (((dx, dy), xhat), &r) in dx
        .chunks_mut(width)
        .zip(dy.chunks(width))
        .zip(xhat.chunks(width))
        .zip(rstd)
    {
        let (mut a, mut b) = (0.0f64, 0.0f64);
        for ((((&dy, &xh), &g), dg), db) in dy
            .iter()
            .zip(xhat)
            .zip(gamma)
            .zip(dg.iter_mut())
            .zip(db.iter_mut())
        {
            let d = dy * g;
            a += f64::from(d);
            b += f64::from(d * xh);
            *dg += dy * xh;
            *db += dy;
        }
        let (a, b) = ((a / width as f64) as f32, (b / width as f64) as f32);
        for (((dx, &dy), &xh), &g) in dx.iter_mut().zip(dy).zip(xhat).zip(gamma) {
            *dx = r * (dy * g - a - xh * b);
        }
    }
}
wide!(norm_grad_block_wide => norm_grad_block(
    dx: &mut [f32],
    input: RowIn<'_>,
    rstd: &[f32],
    gamma: &[f32],
    acc: RowOut<'_>,
));

/// Gradients of [`residual_norm`]: `(d_h, d_x, d_gamma, d_beta)`; `d_h` is `None` when
/// there is no dropout (it equals `d_x` then).
pub(crate) fn residual_norm_backward(
    saved: &NormSaved,
    gamma: &[f32],
    dy: &[f32],
    drop: Dropout,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let width = gamma.len();
    let block = 64 * width;
    let mut dx = vec![0.0; dy.len()];
    let (dgamma, dbeta) = dx
        .par_chunks_mut(block)
        .zip(dy.par_chunks(block))
        .zip(saved.xhat.par_chunks(block))
        .zip(saved.rstd.par_chunks(64))
        .map(|(((dx, dy), xhat), rstd)| {
            let mut dg = vec![0.0f32; width];
            let mut db = vec![0.0f32; width];
            norm_grad_block_wide(dx, (dy, xhat), rstd, gamma, (&mut dg, &mut db));
            (dg, db)
        })
        .reduce(
            || (vec![0.0; width], vec![0.0; width]),
            |(mut g1, mut b1), (g2, b2)| {
                g1.iter_mut().zip(g2).for_each(|(a, b)| *a += b);
                b1.iter_mut().zip(b2).for_each(|(a, b)| *a += b);
                (g1, b1)
            },
        );
    let dh = (!drop.is_identity()).then(|| dropout(&dx, width, drop));
    (dh, dx, dgamma, dbeta)
}

/// One row of the masked softmax: `p = softmax(s + b)`.
#[inline(always)]
fn softmax_row(p: &mut [f32], s: &[f32], b: &[f32]) {
    let mut max = f32::NEG_INFINITY;
    for ((p, &s), &b) in p.iter_mut().zip(s).zip(b) {
        *p = s + b;
        max = max.max(*p);
    }
    let mut sum = 0.0f64;
    for p in p.iter_mut() {
        *p = exp(*p - max);
        sum += f64::from(*p);
    }
    let inv = (1.0 / sum) as f32;
    for p in p.iter_mut() {
        *p *= inv;
    }
}
wide!(softmax_row_wide => softmax_row(p: &mut [f32], s: &[f32], b: &[f32]));

/// Attention probabilities: `dropout(softmax(scores + bias))` over rows of `width` (the key
/// length). `bias` is `[batch, width]`, one row per batch element, shared by its
/// `rows_per_bias` score rows (heads × query positions). Returns the output and the softmax
/// (kept for the backward pass; the same buffer as the output when nothing is dropped).
pub(crate) fn softmax_dropout(
    scores: &[f32],
    bias: &[f32],
    width: usize,
    rows_per_bias: usize,
    drop: Dropout,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let mut probs = vec![0.0; scores.len()];
    probs
        .par_chunks_mut(width)
        .zip(scores.par_chunks(width))
        .enumerate()
        .with_min_len(MIN_ROWS)
        .for_each(|(row, (p, s))| {
            softmax_row_wide(p, s, &bias[(row / rows_per_bias) * width..][..width]);
        });
    if drop.is_identity() {
        return (probs, None);
    }
    let out = dropout(&probs, width, drop);
    (out, Some(probs))
}

/// One row of the softmax backward: `dz = p · (dp − Σ dp·p)` with `dp = dy · mask`.
#[inline(always)]
fn softmax_grad_row(drop: &Dropout, row: usize, dz: &mut [f32], p: &[f32], dy: &[f32]) {
    // dz first holds d(softmax) = dy · mask.
    drop.row_factors(row, dz);
    let mut dot = 0.0f64;
    for ((dz, &dy), &p) in dz.iter_mut().zip(dy).zip(p) {
        *dz *= dy;
        dot += f64::from(*dz * p);
    }
    let dot = dot as f32;
    for (dz, &p) in dz.iter_mut().zip(p) {
        *dz = p * (*dz - dot);
    }
}
wide!(softmax_grad_row_wide => softmax_grad_row(
    drop: &Dropout,
    row: usize,
    dz: &mut [f32],
    p: &[f32],
    dy: &[f32],
));

/// Gradient of [`softmax_dropout`] with respect to the scores, from the softmax `probs`.
pub(crate) fn softmax_dropout_backward(
    probs: &[f32],
    dy: &[f32],
    width: usize,
    drop: Dropout,
) -> Vec<f32> {
    let mut dz = vec![0.0; probs.len()];
    dz.par_chunks_mut(width)
        .zip(probs.par_chunks(width).zip(dy.par_chunks(width)))
        .enumerate()
        .with_min_len(MIN_ROWS)
        .for_each(|(row, (dz, (p, dy)))| softmax_grad_row_wide(&drop, row, dz, p, dy));
    dz
}

/// `x·W + b` for `x` `[rows, k]`, `W` `[k, n]`, `b` `[n]` (row-major): the bias is written
/// first and the product accumulated onto it.
pub(crate) fn linear(x: &[f32], w: &[f32], b: &[f32], rows: usize, k: usize) -> Vec<f32> {
    let n = b.len();
    let mut out = Vec::with_capacity(rows * n);
    for _ in 0..rows {
        out.extend_from_slice(b);
    }
    gemm(rows, k, n, (x, k, 1), (w, n, 1), 1.0, &mut out);
    out
}

/// `(dx, dw, db)` of a linear layer, each present when asked for.
pub(crate) type LinearGrads = (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>);

/// Gradients of [`linear`] for `dy` `[rows, n]`: `dy·Wᵀ`, `xᵀ·dy` and the column sums of
/// `dy`, each only when asked for. The transposes are strides, not copies.
pub(crate) fn linear_backward(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dims: (usize, usize, usize),
    want: (bool, bool, bool),
) -> LinearGrads {
    let (rows, k, n) = dims;
    let dx = want.0.then(|| {
        let mut dx = vec![0.0; rows * k];
        gemm(rows, n, k, (dy, n, 1), (w, 1, n), 0.0, &mut dx);
        dx
    });
    let dw = want.1.then(|| {
        let mut dw = vec![0.0; k * n];
        gemm(k, rows, n, (x, 1, k), (dy, n, 1), 0.0, &mut dw);
        dw
    });
    let db = want.2.then(|| column_sums(dy, n));
    (dx, dw, db)
}

#[inline(always)]
fn add_rows(acc: &mut [f32], block: &[f32]) {
    for row in block.chunks(acc.len()) {
        acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
    }
}
wide!(add_rows_wide => add_rows(acc: &mut [f32], block: &[f32]));

/// Sums of the columns of `m` `[rows, width]`.
fn column_sums(m: &[f32], width: usize) -> Vec<f32> {
    m.par_chunks(64 * width)
        .map(|block| {
            let mut acc = vec![0.0f32; width];
            add_rows_wide(&mut acc, block);
            acc
        })
        .reduce(
            || vec![0.0; width],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        )
}

/// `c ← a·b + beta·c` with `a` `[m, k]` and `b` `[k, n]` given as (values, row stride,
/// column stride), `c` row-major `[m, n]`.
fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    assert!(a.0.len() >= last(m, k, a.1, a.2), "gemm: a is too short");
    assert!(b.0.len() >= last(k, n, b.1, b.2), "gemm: b is too short");
    assert!(c.len() >= m * n, "gemm: c is too short");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the asserts above keep every index the product reads or writes inside the slices.
    // gemm's convention: c = alpha·c + beta·a·b, with (column, row) strides.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            beta != 0.0,
            a.0.as_ptr(),
            a.2 as isize,
            a.1 as isize,
            b.0.as_ptr(),
            b.2 as isize,
            b.1 as isize,
            beta,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        let mut worst = 0.0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = ((exp(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(-1.0e9), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn normal_cdf_matches_integrated_density() {
        // Reference: Φ by Simpson integration of the normal density in f64.
        fn cdf64(x: f64) -> f64 {
            // erfc by high-precision numerical integration of the normal density.
            let (a, n) = (-40.0f64, 200_000);
            let h = (x - a) / n as f64;
            let f = |t: f64| (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let mut s = f(a) + f(x);
            for i in 1..n {
                s += f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
            }
            s * h / 3.0
        }
        for &x in &[
            -6.0f32, -4.0, -2.5, -1.0, -0.3, 0.0, 0.2, 1.0, 2.0, 3.5, 6.0,
        ] {
            let want = cdf64(x as f64);
            let got = normal_cdf(x) as f64;
            // In the far lower tail Φ = e^(−x²/2 + …) and f32 rounding of the exponent
            // (x²/2 = 18 at x = −6) alone is worth ~1e-6 relative.
            let tol = if x < -3.0 { 5e-6 } else { 1e-6 };
            assert!(
                ((got - want) / want).abs() < tol,
                "Φ({x}) = {got}, expected {want}"
            );
        }
    }

    #[test]
    fn dropout_keeps_about_the_right_share_and_is_reproducible() {
        let drop = Dropout::new(0.1, 42);
        let x = vec![1.0f32; 100_000];
        let a = dropout(&x, 1000, drop);
        let b = dropout(&x, 1000, drop);
        assert_eq!(a, b);
        let kept = a.iter().filter(|&&v| v != 0.0).count() as f64 / a.len() as f64;
        assert!((kept - 0.9).abs() < 0.005, "kept {kept}");
        assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        let c = dropout(&x, 1000, Dropout::new(0.1, 43));
        assert_ne!(a, c);
    }
}

#[cfg(test)]
mod norm_f64 {
    use super::*;

    /// The fused LayerNorm backward against the same formula in f64, on BERT-like rows:
    /// width 384, a few outlier features 30× larger than the rest, eps 1e-12.
    #[test]
    fn layer_norm_backward_matches_f64() {
        let (rows, d) = (24, 384);
        let mut s = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let h: Vec<f32> = (0..rows * d)
            .map(|i| (next() * if i % d < 3 { 30.0 } else { 1.0 }) as f32)
            .collect();
        let x: Vec<f32> = (0..rows * d).map(|_| next() as f32).collect();
        let gamma: Vec<f32> = (0..d).map(|_| (1.0 + 0.5 * next()) as f32).collect();
        let beta: Vec<f32> = (0..d).map(|_| (0.1 * next()) as f32).collect();
        let dy: Vec<f32> = (0..rows * d).map(|_| next() as f32).collect();
        let (_, saved) = residual_norm(&h, &x, &gamma, &beta, 1e-12, Dropout::none());
        let (_, dx, dg, _) = residual_norm_backward(&saved, &gamma, &dy, Dropout::none());
        let mut worst = 0.0f64;
        let mut scale = 0.0f64;
        let mut want_dg = vec![0.0f64; d];
        for r in 0..rows {
            let row = r * d..(r + 1) * d;
            let sv: Vec<f64> = row.clone().map(|i| h[i] as f64 + x[i] as f64).collect();
            let mean = sv.iter().sum::<f64>() / d as f64;
            let var = sv.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
            let rstd = 1.0 / (var + 1e-12).sqrt();
            let xhat: Vec<f64> = sv.iter().map(|v| (v - mean) * rstd).collect();
            let g: Vec<f64> = (0..d)
                .map(|j| dy[r * d + j] as f64 * gamma[j] as f64)
                .collect();
            let a = g.iter().sum::<f64>() / d as f64;
            let b = g.iter().zip(&xhat).map(|(g, x)| g * x).sum::<f64>() / d as f64;
            for j in 0..d {
                let want = rstd * (g[j] - a - xhat[j] * b);
                worst = worst.max((dx[r * d + j] as f64 - want).abs());
                scale = scale.max(want.abs());
                want_dg[j] += dy[r * d + j] as f64 * xhat[j];
            }
        }
        assert!(worst <= 1e-6 * scale, "d x: {worst} against {scale}");
        let dg_scale = want_dg.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (got, want) in dg.iter().zip(&want_dg) {
            assert!((*got as f64 - want).abs() <= 1e-6 * dg_scale);
        }
    }
}
