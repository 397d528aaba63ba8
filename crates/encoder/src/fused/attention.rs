//! Multi-head scaled dot-product attention for training, over `[batch, seq, hidden]` buffers
//! whose heads lie side by side (head `h` is columns `h·d..(h+1)·d`): each (text, head) pair
//! reads its query, key and value slices through strides and writes its context straight into
//! the merged layout, forward and backward, so heads are never split or merged by copies.
//!
//! Forward: `ctx = dropout(softmax(scale·q·kᵀ + bias))·v`, keeping the softmax for the backward
//! pass (dropout masks are regenerated there from the counter-based hash, row
//! `(text·heads + head)·seq + query`, the same rows as [`super::kernels::softmax_dropout`]).

use rayon::prelude::*;

use super::infer::{gemm_raw, sized, softmax_row, Mat, SharedMut};
use super::kernels::{dropout_row_wide, softmax_grad_row_wide, wide, Dropout};

/// The shape of one attention call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    /// `hidden / heads`.
    pub d: usize,
}

impl Dims {
    fn hidden(&self) -> usize {
        self.heads * self.d
    }

    /// Head `hd` of text `b` in a `[batch, seq, hidden]` buffer: `[seq, d]` with row stride
    /// `hidden`.
    fn head<'a>(&self, x: &'a [f32], b: usize, hd: usize) -> Mat<'a> {
        let h = self.hidden();
        Mat {
            data: &x[b * self.seq * h + hd * self.d..],
            rows: self.seq,
            cols: self.d,
            rs: h,
            cs: 1,
        }
    }

    /// Every (text, head) pair, one task each.
    fn tasks(&self) -> Vec<(usize, usize)> {
        let heads = self.heads;
        (0..self.batch)
            .flat_map(|b| (0..heads).map(move |hd| (b, hd)))
            .collect()
    }
}

fn transposed(m: Mat<'_>) -> Mat<'_> {
    Mat {
        rows: m.cols,
        cols: m.rows,
        rs: m.cs,
        cs: m.rs,
        ..m
    }
}

/// `p ← softmax(p + b)` over one row.
#[inline(always)]
fn bias_softmax_row(p: &mut [f32], b: &[f32]) {
    for (p, &b) in p.iter_mut().zip(b) {
        *p += b;
    }
    let inv = softmax_row(p);
    for p in p.iter_mut() {
        *p *= inv;
    }
}
wide!(bias_softmax_row_wide => bias_softmax_row(p: &mut [f32], b: &[f32]));

/// The output buffer pointer for head `hd` of text `b` (row stride `hidden`), checked to hold
/// the whole `[seq, d]` block.
fn head_out(out: &SharedMut, len: usize, dims: &Dims, b: usize, hd: usize) -> *mut f32 {
    let (h, s) = (dims.hidden(), dims.seq);
    let start = b * s * h + hd * dims.d;
    assert!(
        s == 0 || start + (s - 1) * h + dims.d <= len,
        "attention: output too short"
    );
    // SAFETY: inside the buffer of `len` elements (asserted).
    unsafe { out.get().add(start) }
}

/// Forward: the context `[batch, seq, hidden]` and, with `keep`, the softmax
/// `[batch, heads, seq, seq]` (always kept when `drop` drops anything). `bias` is
/// `[batch, seq]`, added to every score row of its text.
pub(crate) fn forward(
    (q, k, v): (&[f32], &[f32], &[f32]),
    bias: &[f32],
    dims: Dims,
    scale: f32,
    drop: Dropout,
    keep: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (s, h) = (dims.seq, dims.hidden());
    let len = dims.batch * s * h;
    assert!(q.len() == len && k.len() == len && v.len() == len && bias.len() == dims.batch * s);
    let keep = keep || !drop.is_identity();
    let mut ctx = vec![0.0f32; len];
    let mut probs = keep.then(|| vec![0.0f32; dims.batch * dims.heads * s * s]);
    let out = SharedMut(ctx.as_mut_ptr());
    let kept = probs.as_mut().map(|p| SharedMut(p.as_mut_ptr()));
    dims.tasks()
        .par_iter()
        .for_each_init(Vec::new, |scores, &(b, hd)| {
            let sc = sized(scores, s * s);
            let (qh, kh, vh) = (
                dims.head(q, b, hd),
                dims.head(k, b, hd),
                dims.head(v, b, hd),
            );
            // SAFETY: `sc` is this task's own s × s buffer.
            unsafe { gemm_raw(qh, transposed(kh), sc.as_mut_ptr(), s, scale, false, false) };
            let bias = &bias[b * s..(b + 1) * s];
            for row in sc.chunks_exact_mut(s) {
                bias_softmax_row_wide(row, bias);
            }
            let task = b * dims.heads + hd;
            if let Some(kept) = &kept {
                // SAFETY: this task alone writes its s × s block of the kept softmax.
                let p =
                    unsafe { std::slice::from_raw_parts_mut(kept.get().add(task * s * s), s * s) };
                p.copy_from_slice(sc);
                if !drop.is_identity() {
                    for (i, (o, x)) in sc.chunks_exact_mut(s).zip(p.chunks_exact(s)).enumerate() {
                        dropout_row_wide(&drop, task * s + i, o, x);
                    }
                }
            }
            let c = head_out(&out, len, &dims, b, hd);
            // SAFETY: this task alone writes rows of text b, columns of head hd (checked above).
            unsafe { gemm_raw(Mat::row_major(sc, s, s), vh, c, h, 1.0, false, false) };
        });
    (ctx, probs)
}

/// Backward: `(dq, dk, dv)` from the upstream gradient `dctx` and the forward's softmax.
pub(crate) fn backward(
    (q, k, v): (&[f32], &[f32], &[f32]),
    probs: &[f32],
    dctx: &[f32],
    dims: Dims,
    scale: f32,
    drop: Dropout,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (s, h) = (dims.seq, dims.hidden());
    let len = dims.batch * s * h;
    assert!(q.len() == len && k.len() == len && v.len() == len && dctx.len() == len);
    assert!(probs.len() == dims.batch * dims.heads * s * s);
    let (mut dq, mut dk, mut dv) = (vec![0.0f32; len], vec![0.0f32; len], vec![0.0f32; len]);
    let outs = (
        SharedMut(dq.as_mut_ptr()),
        SharedMut(dk.as_mut_ptr()),
        SharedMut(dv.as_mut_ptr()),
    );
    dims.tasks()
        .par_iter()
        .for_each_init(Default::default, |bufs, &(b, hd)| {
            let (pd, dp): &mut (Vec<f32>, Vec<f32>) = bufs;
            let (pd, dp) = (sized(pd, s * s), sized(dp, s * s));
            let task = b * dims.heads + hd;
            let p = &probs[task * s * s..(task + 1) * s * s];
            let (qh, kh, vh) = (
                dims.head(q, b, hd),
                dims.head(k, b, hd),
                dims.head(v, b, hd),
            );
            let dch = dims.head(dctx, b, hd);
            // The dropped probabilities the forward multiplied v by.
            for (i, (o, x)) in pd.chunks_exact_mut(s).zip(p.chunks_exact(s)).enumerate() {
                dropout_row_wide(&drop, task * s + i, o, x);
            }
            let ptr = |o: &SharedMut| head_out(o, len, &dims, b, hd);
            // SAFETY (each product): `dp` is this task's own buffer; the dq / dk / dv blocks of
            // text b, head hd are written by this task alone and lie inside their buffers.
            unsafe {
                // dv = dropout(p)ᵀ · dctx
                let pdt = transposed(Mat::row_major(pd, s, s));
                gemm_raw(pdt, dch, ptr(&outs.2), h, 1.0, false, false);
                // d(dropout(p)) = dctx · vᵀ
                gemm_raw(dch, transposed(vh), dp.as_mut_ptr(), s, 1.0, false, false);
            }
            // Through the dropout and the softmax: dz = p ⊙ (dp·mask − Σ dp·mask·p), into pd.
            for (i, ((dz, pr), dy)) in pd
                .chunks_exact_mut(s)
                .zip(p.chunks_exact(s))
                .zip(dp.chunks_exact(s))
                .enumerate()
            {
                softmax_grad_row_wide(&drop, task * s + i, dz, pr, dy);
            }
            let dz = Mat::row_major(pd, s, s);
            // SAFETY: as above.
            unsafe {
                // dq = scale · dz · k,  dk = scale · dzᵀ · q
                gemm_raw(dz, kh, ptr(&outs.0), h, scale, false, false);
                gemm_raw(transposed(dz), qh, ptr(&outs.1), h, scale, false, false);
            }
        });
    (dq, dk, dv)
}
