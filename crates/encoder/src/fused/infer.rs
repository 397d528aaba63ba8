//! The encoder's inference forward on the CPU, on plain `f32` slices: no autodiff, no padding,
//! no per-op tensors.
//!
//! A batch of texts is packed without padding: the token rows of every text follow one another
//! in one `[tokens, hidden]` matrix, so the linear layers (nearly all of the work) run on real
//! tokens only, and attention runs per text and head over that text's own length (no mask).
//! Queries, keys and values come out of the QKV products side by side in one `[tokens, 3·hidden]`
//! buffer; each head reads its slice of it through strides and writes its context straight into
//! the merged `[tokens, hidden]` layout, so heads are never split or merged by copies. The bias,
//! activation, residual and LayerNorm of each sub-layer are one pass over its output. Buffers
//! live in a [`Workspace`] reused across layers and batches.
//!
//! Matrix products go to the `gemm` crate (AVX-512 / AVX2 + FMA micro-kernels chosen at run
//! time, split across the rayon pool); element-wise passes split their rows across the pool.

use rayon::prelude::*;

use super::kernels::{exp, mean_rstd, normal_cdf, wide};
use crate::pooling::{Pooling, PoolingMode};

/// Rows of an element-wise pass handed to one rayon task at least.
const MIN_ROWS: usize = 8;

/// A read-only matrix view: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `[rows, cols]` matrix.
    pub(crate) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The index one past the last element the view reaches.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }

    /// Whether every element lies inside `data`.
    pub(crate) fn in_bounds(&self) -> bool {
        self.extent() <= self.data.len()
    }
}

/// A raw pointer that tasks writing disjoint parts of one buffer may share.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut(pub(crate) *mut f32);
// SAFETY: every task that receives a `SharedMut` writes a region no other task touches (checked
// by construction at each use), and the buffer outlives the parallel section.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    pub(crate) fn get(&self) -> *mut f32 {
        self.0
    }
}

/// `c ← scale · a·b` (or `c += scale · a·b` with `accumulate`), `c` row-major with row stride
/// `ldc`, starting at `c`. With `parallel`, the product is split across the rayon pool.
///
/// # Safety
/// `c` must be valid for writes at `i·ldc + j` for `i < a.rows`, `j < b.cols`, and nothing else
/// may access that region during the call. `a` and `b` must be in bounds with
/// `a.cols == b.rows` (checked).
pub(crate) unsafe fn gemm_raw(
    a: Mat<'_>,
    b: Mat<'_>,
    c: *mut f32,
    ldc: usize,
    scale: f32,
    accumulate: bool,
    parallel: bool,
) {
    assert!(
        a.cols == b.rows && a.in_bounds() && b.in_bounds(),
        "gemm: bad operands"
    );
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    let par = if parallel {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // gemm's convention: dst = alpha·dst + beta·lhs·rhs, with column and row strides.
    gemm::gemm(
        m,
        n,
        k,
        c,
        1,
        ldc as isize,
        accumulate,
        a.data.as_ptr(),
        a.cs as isize,
        a.rs as isize,
        b.data.as_ptr(),
        b.cs as isize,
        b.rs as isize,
        1.0,
        scale,
        false,
        false,
        false,
        par,
    );
}

/// `c[.., ..b.cols] ← a·b` into the row-major `c` with row stride `ldc`, split across threads.
fn gemm_into(a: Mat<'_>, b: Mat<'_>, c: &mut [f32], ldc: usize, accumulate: bool) {
    let need = if a.rows == 0 {
        0
    } else {
        (a.rows - 1) * ldc + b.cols
    };
    assert!(b.cols <= ldc && c.len() >= need, "gemm: output too short");
    // SAFETY: the output region lies inside `c`, which this call borrows mutably.
    unsafe { gemm_raw(a, b, c.as_mut_ptr(), ldc, 1.0, accumulate, true) }
}

/// One linear layer's weights: `W` `[in, out]` (any strides) and bias `[out]`.
pub(crate) struct LinearView<'a> {
    pub w: Mat<'a>,
    pub b: &'a [f32],
}

/// A LayerNorm's parameters.
pub(crate) struct NormView<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
}

/// The feed-forward activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    Gelu,
    GeluTanh,
    Relu,
}

/// One transformer layer's weights.
pub(crate) struct LayerView<'a> {
    pub query: LinearView<'a>,
    pub key: LinearView<'a>,
    pub value: LinearView<'a>,
    pub attn_out: LinearView<'a>,
    pub attn_norm: NormView<'a>,
    pub inter: LinearView<'a>,
    pub out: LinearView<'a>,
    pub out_norm: NormView<'a>,
}

/// The whole encoder's weights, borrowed from the model's tensors.
pub(crate) struct BertView<'a> {
    pub word: Mat<'a>,
    pub position: Mat<'a>,
    pub token_type: Mat<'a>,
    pub emb_norm: NormView<'a>,
    /// RoBERTa-style positions counted from this padding id (`None`: `0..len`).
    pub position_pad: Option<usize>,
    pub layers: Vec<LayerView<'a>>,
    pub heads: usize,
    pub act: Act,
}

impl BertView<'_> {
    /// The most tokens one text may have: the position rows, less `pad + 1` when positions
    /// count from the padding id.
    fn max_tokens(&self) -> usize {
        match self.position_pad {
            Some(pad) => self.position.rows.saturating_sub(pad + 1),
            None => self.position.rows,
        }
    }
}

/// Buffers reused across layers and batches (they only grow).
#[derive(Default)]
pub(crate) struct Workspace {
    x: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    inter: Vec<f32>,
}

pub(crate) fn sized(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// Why a batch cannot be run.
#[derive(Debug)]
pub(crate) enum InferError {
    /// A token id past the word-embedding rows.
    TokenId { id: u32, rows: usize },
    /// A text longer than the position-embedding rows.
    TooLong { len: usize, rows: usize },
}

impl BertView<'_> {
    fn hidden(&self) -> usize {
        self.word.cols
    }

    /// The last hidden state of each text, packed: `[Σ lengths, hidden]` in `ws.x` (returned).
    /// `ids[i]` are text `i`'s token ids (special tokens included, no padding); positions run
    /// `0..len` (BERT) or as RoBERTa forms them (see [`BertView::position_pad`]); token types
    /// are 0.
    pub(crate) fn forward<'w>(
        &self,
        ids: &[&[u32]],
        ws: &'w mut Workspace,
    ) -> Result<&'w [f32], InferError> {
        let h = self.hidden();
        let total: usize = ids.iter().map(|t| t.len()).sum();
        for t in ids {
            if let Some(&id) = t.iter().find(|&&id| id as usize >= self.word.rows) {
                return Err(InferError::TokenId {
                    id,
                    rows: self.word.rows,
                });
            }
            if t.len() > self.max_tokens() {
                return Err(InferError::TooLong {
                    len: t.len(),
                    rows: self.max_tokens(),
                });
            }
        }
        let offsets: Vec<usize> = ids
            .iter()
            .scan(0, |acc, t| {
                let o = *acc;
                *acc += t.len();
                Some(o)
            })
            .collect();
        let Workspace {
            x,
            qkv,
            ctx,
            tmp,
            inter,
        } = ws;
        let x = sized(x, total * h);
        self.embed(ids, x);
        let inter_w = self.layers.first().map_or(0, |l| l.inter.w.cols);
        let qkv = sized(qkv, total * 3 * h);
        let ctx = sized(ctx, total * h);
        let tmp = sized(tmp, total * h);
        let inter = sized(inter, total * inter_w);
        for layer in &self.layers {
            self.layer(layer, ids, &offsets, x, qkv, ctx, tmp, inter);
        }
        Ok(&ws.x[..total * h])
    }

    /// Word + position + token-type embeddings and their LayerNorm, one row per token (the
    /// tables are row-major: [`BertView`]'s constructor checks it).
    fn embed(&self, ids: &[&[u32]], x: &mut [f32]) {
        let h = self.hidden();
        fn row<'a>(m: Mat<'a>, i: usize, h: usize) -> &'a [f32] {
            &m.data[i * m.rs..][..h]
        }
        let type0 = row(self.token_type, 0, h);
        let norm = &self.emb_norm;
        // Token (text t, position p) → row offsets[t] + p, with its position id.
        let rows: Vec<(u32, usize)> = match self.position_pad {
            None => ids
                .iter()
                .flat_map(|t| t.iter().enumerate().map(|(p, &id)| (id, p)))
                .collect(),
            // `pad + 1 + k` for the k-th non-padding token, `pad` for a padding id.
            Some(pad) => ids
                .iter()
                .flat_map(|t| {
                    t.iter().scan(pad, move |next, &id| {
                        if id as usize == pad {
                            return Some((id, pad));
                        }
                        *next += 1;
                        Some((id, *next))
                    })
                })
                .collect(),
        };
        x.par_chunks_mut(h)
            .zip(rows.par_iter())
            .with_min_len(MIN_ROWS)
            .for_each(|(out, &(id, p))| {
                let (w, q) = (row(self.word, id as usize, h), row(self.position, p, h));
                embed_row_wide(out, w, q, type0);
                add_norm_row_wide(out, None, None, norm.gamma, norm.beta, norm.eps);
            });
    }

    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        l: &LayerView<'_>,
        ids: &[&[u32]],
        offsets: &[usize],
        x: &mut [f32],
        qkv: &mut [f32],
        ctx: &mut [f32],
        tmp: &mut [f32],
        inter: &mut [f32],
    ) {
        let h = self.hidden();
        let total = x.len() / h;
        let xm = Mat::row_major(x, total, h);
        // Q, K and V side by side: [tokens, 3h], biases first, products accumulated onto them.
        let parts = [&l.query, &l.key, &l.value];
        qkv.par_chunks_mut(3 * h).with_min_len(64).for_each(|row| {
            for (dst, lin) in row.chunks_exact_mut(h).zip(parts) {
                dst.copy_from_slice(lin.b);
            }
        });
        for (i, lin) in parts.into_iter().enumerate() {
            gemm_into(xm, lin.w, &mut qkv[i * h..], 3 * h, true);
        }
        self.attention(qkv, ids, offsets, ctx);
        // Output projection, then x = LayerNorm(ctx·Wo + bo + x).
        gemm_into(Mat::row_major(ctx, total, h), l.attn_out.w, tmp, h, false);
        add_norm(x, tmp, l.attn_out.b, &l.attn_norm);
        // Feed-forward: act(x·Wi + bi), then x = LayerNorm(inter·Wo + bo + x).
        let iw = l.inter.w.cols;
        gemm_into(Mat::row_major(x, total, h), l.inter.w, inter, iw, false);
        activate(inter, l.inter.b, self.act);
        gemm_into(Mat::row_major(inter, total, iw), l.out.w, tmp, h, false);
        add_norm(x, tmp, l.out.b, &l.out_norm);
    }

    /// Scaled dot-product attention of every text and head, from `qkv` `[tokens, 3h]` into
    /// `ctx` `[tokens, h]`: each (text, head) pair is one task reading its slices through
    /// strides.
    fn attention(&self, qkv: &[f32], ids: &[&[u32]], offsets: &[usize], ctx: &mut [f32]) {
        let h = self.hidden();
        let heads = self.heads;
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let out = SharedMut(ctx.as_mut_ptr());
        let ctx_len = ctx.len();
        let tasks: Vec<(usize, usize)> = (0..ids.len())
            .flat_map(|t| (0..heads).map(move |hd| (t, hd)))
            .collect();
        tasks
            .par_iter()
            .for_each_init(Default::default, |bufs, &(t, hd)| {
                let (scores, inv_sums): &mut (Vec<f32>, Vec<f32>) = bufs;
                let (len, off) = (ids[t].len(), offsets[t]);
                if len == 0 {
                    return;
                }
                let base = &qkv[off * 3 * h..(off + len) * 3 * h];
                let view = |col: usize| Mat {
                    data: &base[col..],
                    rows: len,
                    cols: d,
                    rs: 3 * h,
                    cs: 1,
                };
                let (q, k, v) = (view(hd * d), view(h + hd * d), view(2 * h + hd * d));
                let kt = Mat {
                    rows: d,
                    cols: len,
                    rs: k.cs,
                    cs: k.rs,
                    ..k
                };
                let s = sized(scores, len * len);
                // SAFETY: `s` is this task's own buffer of len × len.
                unsafe { gemm_raw(q, kt, s.as_mut_ptr(), len, scale, false, false) };
                inv_sums.clear();
                inv_sums.extend(s.chunks_exact_mut(len).map(softmax_row_wide));
                let p = Mat::row_major(s, len, len);
                assert!((off + len - 1) * h + hd * d + d <= ctx_len);
                // SAFETY: this task alone writes rows off..off+len, columns hd·d..(hd+1)·d of ctx
                // (the tasks' (text, head) pairs are distinct), which lie inside ctx (asserted).
                unsafe {
                    let c = out.get().add(off * h + hd * d);
                    gemm_raw(p, v, c, h, 1.0, false, false);
                    for (i, &inv) in inv_sums.iter().enumerate() {
                        let row = std::slice::from_raw_parts_mut(c.add(i * h), d);
                        row.iter_mut().for_each(|v| *v *= inv);
                    }
                }
            });
    }
}

/// `out = w + p + t` (one embedding row).
#[inline(always)]
fn embed_row(out: &mut [f32], w: &[f32], p: &[f32], t: &[f32]) {
    for (((o, &w), &p), &t) in out.iter_mut().zip(w).zip(p).zip(t) {
        *o = w + p + t;
    }
}
wide!(embed_row_wide => embed_row(out: &mut [f32], w: &[f32], p: &[f32], t: &[f32]));

/// `x ← LayerNorm(x + h + b)` over one row (`h`, `b` optional), with the training kernel's row
/// statistics.
#[inline(always)]
fn add_norm_row(
    x: &mut [f32],
    h: Option<&[f32]>,
    b: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    if let (Some(h), Some(b)) = (h, b) {
        for ((x, &h), &b) in x.iter_mut().zip(h).zip(b) {
            *x += h + b;
        }
    }
    let (mean, r) = mean_rstd(x, eps);
    for ((x, &g), &b) in x.iter_mut().zip(gamma).zip(beta) {
        *x = (*x - mean) * r * g + b;
    }
}
wide!(add_norm_row_wide => add_norm_row(
    x: &mut [f32],
    h: Option<&[f32]>,
    b: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
));

/// `x ← LayerNorm(x + h + b)` row by row.
fn add_norm(x: &mut [f32], h: &[f32], b: &[f32], norm: &NormView<'_>) {
    let w = norm.gamma.len();
    x.par_chunks_mut(w)
        .zip(h.par_chunks(w))
        .with_min_len(MIN_ROWS)
        .for_each(|(x, h)| add_norm_row_wide(x, Some(h), Some(b), norm.gamma, norm.beta, norm.eps));
}

#[inline(always)]
fn gelu_bias_row(x: &mut [f32], b: &[f32]) {
    for (x, &b) in x.iter_mut().zip(b) {
        let v = *x + b;
        *x = v * normal_cdf(v);
    }
}
wide!(gelu_bias_row_wide => gelu_bias_row(x: &mut [f32], b: &[f32]));

#[inline(always)]
fn relu_bias_row(x: &mut [f32], b: &[f32]) {
    for (x, &b) in x.iter_mut().zip(b) {
        *x = (*x + b).max(0.0);
    }
}
wide!(relu_bias_row_wide => relu_bias_row(x: &mut [f32], b: &[f32]));

fn gelu_tanh_bias_row(x: &mut [f32], b: &[f32]) {
    const C: f32 = 0.797_884_6; // sqrt(2 / pi)
    for (x, &b) in x.iter_mut().zip(b) {
        let v = *x + b;
        *x = 0.5 * v * (1.0 + (C * (v + 0.044_715 * v * v * v)).tanh());
    }
}

/// `x ← act(x + b)` row by row.
fn activate(x: &mut [f32], b: &[f32], act: Act) {
    x.par_chunks_mut(b.len())
        .with_min_len(MIN_ROWS)
        .for_each(|row| match act {
            Act::Gelu => gelu_bias_row_wide(row, b),
            Act::Relu => relu_bias_row_wide(row, b),
            Act::GeluTanh => gelu_tanh_bias_row(row, b),
        });
}

/// `p ← exp(p − max p)` over one row; returns `1 / Σ`, by which the row must be scaled to be
/// its softmax (the caller scales the much smaller context rows instead of the scores).
#[inline(always)]
pub(crate) fn softmax_row(p: &mut [f32]) -> f32 {
    // Sixteen partial maxima and sums, so that both loops vectorise.
    let mut maxes = [f32::NEG_INFINITY; 16];
    let mut chunks = p.chunks_exact(16);
    for c in &mut chunks {
        for (m, &v) in maxes.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&maxes)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut acc = [0.0f32; 16];
    let mut chunks = p.chunks_exact_mut(16);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c.iter_mut()) {
            *v = exp(*v - max);
            *a += *v;
        }
    }
    let mut sum: f32 = 0.0;
    for v in chunks.into_remainder() {
        *v = exp(*v - max);
        sum += *v;
    }
    sum += acc.iter().sum::<f32>();
    1.0 / sum
}
wide!(softmax_row_wide => softmax_row(p: &mut [f32]) -> f32);

/// Pools packed token states `x` `[Σ lengths, hidden]` into `[texts, hidden × modes]` as
/// [`Pooling::forward`] does for the same texts padded on the right, then L2-normalises each
/// row when asked.
pub(crate) fn pool(
    x: &[f32],
    hidden: usize,
    lengths: &[usize],
    pooling: &Pooling,
    prompt_len: usize,
    normalize: bool,
) -> Vec<f32> {
    let width = hidden * pooling.modes.len();
    let mut out = vec![0.0f32; lengths.len() * width];
    let padded = lengths.iter().copied().max().unwrap_or(0);
    let mut off = 0;
    for (t, &len) in lengths.iter().enumerate() {
        let tokens = &x[off * hidden..(off + len) * hidden];
        off += len;
        let row = |p: usize| &tokens[p * hidden..(p + 1) * hidden];
        // Positions that take part: all, or those after the prompt.
        let cut = if !pooling.include_prompt && prompt_len > 0 {
            prompt_len.min(padded).min(len)
        } else {
            0
        };
        let dst = &mut out[t * width..(t + 1) * width];
        for (mode, o) in pooling.modes.iter().zip(dst.chunks_exact_mut(hidden)) {
            match mode {
                PoolingMode::Mean | PoolingMode::MeanSqrtLen | PoolingMode::WeightedMean => {
                    let mut acc = vec![0.0f64; hidden];
                    let mut weight = 0.0f64;
                    for p in cut..len {
                        let w = if *mode == PoolingMode::WeightedMean {
                            (p + 1) as f64
                        } else {
                            1.0
                        };
                        weight += w;
                        for (a, &v) in acc.iter_mut().zip(row(p)) {
                            *a += w * f64::from(v);
                        }
                    }
                    let denom = match mode {
                        PoolingMode::MeanSqrtLen => weight.max(1e-9).sqrt(),
                        _ => weight.max(1e-9),
                    };
                    for (o, a) in o.iter_mut().zip(acc) {
                        *o = (a / denom) as f32;
                    }
                }
                PoolingMode::Cls => {
                    let first = if pooling.include_prompt {
                        0
                    } else {
                        prompt_len.min(padded.saturating_sub(1))
                    };
                    if first < len {
                        o.copy_from_slice(row(first));
                    }
                }
                PoolingMode::Max => {
                    o.fill(f32::NEG_INFINITY);
                    for p in cut..len {
                        for (o, &v) in o.iter_mut().zip(row(p)) {
                            *o = o.max(v);
                        }
                    }
                }
                PoolingMode::LastToken => {
                    // The last real token, zero when the prompt cut masks it out.
                    if len > cut {
                        o.copy_from_slice(row(len - 1));
                    }
                }
            }
        }
        if normalize {
            let norm = dst
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>();
            let inv = 1.0 / norm.sqrt().max(1e-12);
            for v in dst.iter_mut() {
                *v = (f64::from(*v) * inv) as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn gemm_follows_strides_scale_and_accumulate() {
        let (m, k, n) = (13, 9, 11);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.5).collect();
        let want = naive(&a, &b, m, k, n);
        // b given transposed (as an [n, k] array read through strides), c with a wider stride.
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let bv = Mat {
            data: &bt,
            rows: k,
            cols: n,
            rs: 1,
            cs: k,
        };
        let mut c = vec![1.0f32; m * (n + 3)];
        gemm_into(Mat::row_major(&a, m, k), bv, &mut c, n + 3, true);
        for i in 0..m {
            for j in 0..n {
                assert!((c[i * (n + 3) + j] - (want[i * n + j] + 1.0)).abs() < 1e-4);
            }
            assert_eq!(c[i * (n + 3) + n], 1.0, "columns past n untouched");
        }
        let mut s = vec![0.0f32; m * n];
        // SAFETY: s holds m × n.
        unsafe {
            gemm_raw(
                Mat::row_major(&a, m, k),
                Mat::row_major(&b, k, n),
                s.as_mut_ptr(),
                n,
                0.5,
                false,
                false,
            )
        };
        for (g, w) in s.iter().zip(&want) {
            assert!((g - 0.5 * w).abs() < 1e-4);
        }
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        for len in [1usize, 7, 16, 33] {
            let mut row: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let z: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
            let want: Vec<f64> = row.iter().map(|&v| ((v - max) as f64).exp() / z).collect();
            let inv = softmax_row_wide(&mut row);
            for (g, w) in row.iter().zip(&want) {
                let g = g * inv;
                assert!((g as f64 - w).abs() < 1e-6, "len {len}: {g} vs {w}");
            }
        }
    }
}
