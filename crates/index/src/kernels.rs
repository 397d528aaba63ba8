//! Inner-product kernels, chosen once per process for the CPU at hand.
//!
//! Two entry points:
//! - [`dot`]: one inner product, with four independent accumulators (norms, HNSW distances);
//! - [`score_matrix`]: all inner products between a block of queries and a block of rows, in
//!   register tiles of 6 queries × 2 rows (12 accumulators, 15 of the 16 vector registers) so
//!   that each row streamed from cache serves six queries held in L1, or 1 query × 8 rows for a
//!   lone query. Exact search is this matrix product followed by a bounded heap.
//!
//! Every score of [`score_matrix`] is computed by the same sequence of operations whatever the
//! tile it falls in (one 8-lane accumulator per pair over `dim / 8` steps, a fixed horizontal-sum
//! order, then the scalar tail), so a query scored alone or inside a batch gets bit-identical
//! scores, and single and batched exact search return the same hits.
//!
//! On x86-64 with AVX2 and FMA (detected at run time, no `-C target-cpu` needed) the kernels use
//! 256-bit fused multiply-adds; elsewhere a portable version that the compiler auto-vectorises.
//! This module holds the crate's only `unsafe` code.

use std::sync::OnceLock;

/// Lanes of one accumulator.
const LANES: usize = 8;

/// The kernels selected for this CPU.
struct Kernels {
    dot: fn(&[f32], &[f32]) -> f32,
    score_matrix: fn(&[f32], &[f32], usize, &mut [f32]),
}

fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Kernels {
                dot: avx2::dot_entry,
                score_matrix: avx2::score_matrix_entry,
            };
        }
        Kernels {
            dot: portable::dot,
            score_matrix: portable::score_matrix,
        }
    })
}

/// The inner product of `a` and `b` (which must have the same length).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    (kernels().dot)(a, b)
}

/// Writes `out[i * n_rows + j] = <query i, row j>` for the row-major `queries` and `rows`
/// (both whole multiples of `dim`; `out` has room for `n_queries × n_rows` scores).
pub(crate) fn score_matrix(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    assert!(dim > 0 && queries.len().is_multiple_of(dim) && rows.len().is_multiple_of(dim));
    assert!(out.len() >= (queries.len() / dim) * (rows.len() / dim));
    (kernels().score_matrix)(queries, rows, dim, out)
}

/// A register tile: the inner products of `Q` queries with `C` rows.
trait Tile {
    /// # Safety
    /// The implementation's instruction set must be available, and every slice must hold at
    /// least `dim` values.
    unsafe fn tile<const Q: usize, const C: usize>(
        q: [&[f32]; Q],
        c: [&[f32]; C],
        dim: usize,
    ) -> [[f32; C]; Q];
}

/// Sums 8 lanes in the fixed order ((0+4) + (2+6)) + ((1+5) + (3+7)), shared by both back ends.
#[inline(always)]
fn hsum_portable(a: &[f32; LANES]) -> f32 {
    let s4 = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let s2 = [s4[0] + s4[2], s4[1] + s4[3]];
    s2[0] + s2[1]
}

/// Tiles the `queries × rows` product: groups of 6 queries against pairs of rows (the rows
/// stream from L2 while the 6 queries stay in L1; the tile shapes tried are compared in
/// `BENCHMARKS.md`), leftover queries one at a time against 8 rows, and 1-wide tiles for remainders.
///
/// # Safety
/// `T`'s instruction set must be available; the shapes are checked by [`score_matrix`].
#[inline(always)]
unsafe fn score_matrix_with<T: Tile>(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    let n_q = queries.len() / dim;
    let n_r = rows.len() / dim;
    let q = |i: usize| &queries[i * dim..(i + 1) * dim];
    let r = |j: usize| &rows[j * dim..(j + 1) * dim];
    let mut i = 0;
    while i + 6 <= n_q {
        let qs = [q(i), q(i + 1), q(i + 2), q(i + 3), q(i + 4), q(i + 5)];
        let mut j = 0;
        while j + 2 <= n_r {
            let t = unsafe { T::tile::<6, 2>(qs, [r(j), r(j + 1)], dim) };
            for (a, row) in t.iter().enumerate() {
                out[(i + a) * n_r + j..(i + a) * n_r + j + 2].copy_from_slice(row);
            }
            j += 2;
        }
        if j < n_r {
            let t = unsafe { T::tile::<6, 1>(qs, [r(j)], dim) };
            for (a, row) in t.iter().enumerate() {
                out[(i + a) * n_r + j] = row[0];
            }
        }
        i += 6;
    }
    while i < n_q {
        let qs = [q(i)];
        let o = &mut out[i * n_r..(i + 1) * n_r];
        let mut j = 0;
        while j + 8 <= n_r {
            let rs = [
                r(j),
                r(j + 1),
                r(j + 2),
                r(j + 3),
                r(j + 4),
                r(j + 5),
                r(j + 6),
                r(j + 7),
            ];
            let t = unsafe { T::tile::<1, 8>(qs, rs, dim) };
            o[j..j + 8].copy_from_slice(&t[0]);
            j += 8;
        }
        while j < n_r {
            o[j] = unsafe { T::tile::<1, 1>(qs, [r(j)], dim) }[0][0];
            j += 1;
        }
        i += 1;
    }
}

/// Plain Rust; the fixed-size lane arrays let the compiler vectorise it for the baseline target.
mod portable {
    use super::{hsum_portable, score_matrix_with, Tile, LANES};

    pub(super) struct Portable;

    impl Tile for Portable {
        #[inline(always)]
        unsafe fn tile<const Q: usize, const C: usize>(
            q: [&[f32]; Q],
            c: [&[f32]; C],
            dim: usize,
        ) -> [[f32; C]; Q] {
            let mut acc = [[[0f32; LANES]; C]; Q];
            let body = dim - dim % LANES;
            for k in (0..body).step_by(LANES) {
                for a in 0..Q {
                    let qa = &q[a][k..k + LANES];
                    for b in 0..C {
                        let cb = &c[b][k..k + LANES];
                        for l in 0..LANES {
                            acc[a][b][l] += qa[l] * cb[l];
                        }
                    }
                }
            }
            let mut out = [[0f32; C]; Q];
            for a in 0..Q {
                for b in 0..C {
                    let mut s = hsum_portable(&acc[a][b]);
                    for t in body..dim {
                        s += q[a][t] * c[b][t];
                    }
                    out[a][b] = s;
                }
            }
            out
        }
    }

    pub(super) fn score_matrix(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
        // SAFETY: the portable tile needs no special instructions.
        unsafe { score_matrix_with::<Portable>(queries, rows, dim, out) }
    }

    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        const W: usize = 4 * LANES;
        let mut acc = [[0f32; LANES]; 4];
        let body = a.len() - a.len() % W;
        for (x, y) in a[..body].chunks_exact(W).zip(b[..body].chunks_exact(W)) {
            for (j, acc) in acc.iter_mut().enumerate() {
                for l in 0..LANES {
                    acc[l] += x[j * LANES + l] * y[j * LANES + l];
                }
            }
        }
        let lanes: [f32; LANES] =
            std::array::from_fn(|l| (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]));
        let mut s = hsum_portable(&lanes);
        for t in body..a.len() {
            s += a[t] * b[t];
        }
        s
    }
}

/// AVX2 + FMA, selected at run time.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{score_matrix_with, Tile, LANES};
    use std::arch::x86_64::*;

    /// Same order as `hsum_portable`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)))
    }

    pub(super) struct Avx2;

    impl Tile for Avx2 {
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn tile<const Q: usize, const C: usize>(
            q: [&[f32]; Q],
            c: [&[f32]; C],
            dim: usize,
        ) -> [[f32; C]; Q] {
            let mut acc = [[_mm256_setzero_ps(); C]; Q];
            let body = dim - dim % LANES;
            let mut k = 0;
            while k < body {
                let mut cv = [_mm256_setzero_ps(); C];
                for b in 0..C {
                    // SAFETY: k + LANES <= body <= dim <= c[b].len().
                    cv[b] = unsafe { _mm256_loadu_ps(c[b].as_ptr().add(k)) };
                }
                for a in 0..Q {
                    // SAFETY: as above, for q[a].
                    let qa = unsafe { _mm256_loadu_ps(q[a].as_ptr().add(k)) };
                    for b in 0..C {
                        acc[a][b] = _mm256_fmadd_ps(qa, cv[b], acc[a][b]);
                    }
                }
                k += LANES;
            }
            let mut out = [[0f32; C]; Q];
            for a in 0..Q {
                for b in 0..C {
                    let mut s = hsum(acc[a][b]);
                    for t in body..dim {
                        s = q[a][t].mul_add(c[b][t], s);
                    }
                    out[a][b] = s;
                }
            }
            out
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn score_matrix(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
        // SAFETY: this function only runs where AVX2 and FMA are enabled.
        unsafe { score_matrix_with::<Avx2>(queries, rows, dim, out) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let body = n - n % (4 * LANES);
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut k = 0;
        while k < body {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: k + 4 * LANES <= body <= n, the length of both slices.
                let (x, y) = unsafe {
                    (
                        _mm256_loadu_ps(a.as_ptr().add(k + j * LANES)),
                        _mm256_loadu_ps(b.as_ptr().add(k + j * LANES)),
                    )
                };
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            k += 4 * LANES;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut s = hsum(s);
        for t in body..n {
            s = a[t].mul_add(b[t], s);
        }
        s
    }

    /// Installed by `kernels()` only after AVX2 and FMA were detected.
    pub(super) fn score_matrix_entry(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
        // SAFETY: see above.
        unsafe { score_matrix(queries, rows, dim, out) }
    }

    /// Installed by `kernels()` only after AVX2 and FMA were detected.
    pub(super) fn dot_entry(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: see above.
        unsafe { dot(a, b) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn dot_matches_naive_for_all_tail_lengths() {
        for n in 0..80 {
            let (a, b) = (data(n, 1), data(n, 2));
            assert!((dot(&a, &b) as f64 - naive(&a, &b)).abs() < 1e-5, "n = {n}");
            assert!(
                (portable::dot(&a, &b) as f64 - naive(&a, &b)).abs() < 1e-5,
                "n = {n}"
            );
        }
    }

    #[test]
    fn score_matrix_is_tile_independent() {
        // every shape of tile and remainder: 13 queries (6 + 6 + 1), 13 rows (2 × 6 + 1, 8 + 5)
        for dim in [1, 7, 8, 19, 64] {
            let (q, r) = (data(13 * dim, 3), data(13 * dim, 4));
            let mut all = vec![0.0; 13 * 13];
            score_matrix(&q, &r, dim, &mut all);
            for i in 0..13 {
                let mut one = vec![0.0; 13];
                score_matrix(&q[i * dim..(i + 1) * dim], &r, dim, &mut one);
                for j in 0..13 {
                    let qi = &q[i * dim..(i + 1) * dim];
                    let rj = &r[j * dim..(j + 1) * dim];
                    assert_eq!(all[i * 13 + j].to_bits(), one[j].to_bits(), "dim {dim}");
                    let mut single = [0.0];
                    score_matrix(qi, rj, dim, &mut single);
                    assert_eq!(single[0].to_bits(), one[j].to_bits(), "dim {dim}");
                    assert!((one[j] as f64 - naive(qi, rj)).abs() < 1e-5);
                }
            }
            let mut portable_all = vec![0.0; 13 * 13];
            portable::score_matrix(&q, &r, dim, &mut portable_all);
            for (x, y) in all.iter().zip(&portable_all) {
                assert!((x - y).abs() < 1e-5);
            }
        }
    }
}
