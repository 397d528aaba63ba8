//! The fused CPU blocks (`Autodiff<NdArray<f32>>`) against the same maths from burn's tensor
//! ops (`Autodiff<NdArray<f32, i32>>`: another backend type, so the generic path, also f32):
//! outputs and the gradients of every input, for a weighted-sum loss. GELU is checked against
//! exact f64 values instead (burn's GELU gradient is the tanh approximation's). With dropout,
//! where the two paths draw different masks, the mask is read back from the fused op and the
//! expected values and gradients are computed from it in f64.

use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;

type Fast = Autodiff<NdArray<f32>>;
type Exact = Autodiff<NdArray<f32, i32>>;

/// burn-ndarray's generator is global: tests that seed it and draw dropout masks hold this,
/// so that parallel tests do not draw from each other's sequence.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Deterministic values in `[-scale, scale]`.
fn rand(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn tensor<B: Backend, const D: usize>(v: &[f64], shape: [usize; D]) -> Tensor<B, D> {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), &Default::default())
}

fn tracked<B: AutodiffBackend, const D: usize>(v: &[f64], shape: [usize; D]) -> Tensor<B, D> {
    tensor::<B, D>(v, shape).require_grad()
}

fn vals<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("float tensor")
}

fn grad<B: AutodiffBackend, const D: usize>(t: &Tensor<B, D>, grads: &B::Gradients) -> Vec<f64> {
    vals(t.grad(grads).expect("a gradient"))
}

#[track_caller]
fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * scale,
            "{what}[{i}]: {g} vs {w} (tolerance {tol} × {scale})"
        );
    }
}

fn norm<B: Backend>(gamma: &[f64], beta: &[f64]) -> LayerNorm<B> {
    let mut n = LayerNormConfig::new(gamma.len())
        .with_epsilon(1e-12)
        .init::<B>(&Default::default());
    n.gamma = Param::from_tensor(tensor(gamma, [gamma.len()]));
    n.beta = Some(Param::from_tensor(tensor(beta, [beta.len()])));
    n
}

/// Φ(x) in f64 from erf's series `erf(z) = 2/√π · e^(−z²) · Σ 2ⁿ z^(2n+1) / (2n+1)!!`, whose
/// terms are all positive (no cancellation).
fn normal_cdf64(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let (mut term, mut sum) = (z, z);
    for n in 1..200 {
        term *= 2.0 * z * z / (2 * n + 1) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    let erf = 2.0 / std::f64::consts::PI.sqrt() * (-z * z).exp() * sum;
    0.5 * (1.0 + erf.copysign(x))
}

/// GELU and its gradient against the exact f64 values `x·Φ(x)` and `Φ(x) + x·φ(x)` (what
/// PyTorch computes). burn's own `gelu_backward` is the derivative of the tanh approximation
/// (off by up to ~3e-5), so the generic path is not the reference here.
#[test]
fn gelu_matches_exact_gelu() {
    let shape = [3, 5, 40];
    let n = 600;
    let (x, w) = (rand(n, 1, 6.0), rand(n, 2, 1.0));
    let xt = tracked::<Fast, 3>(&x, shape);
    let y = super::gelu(xt.clone());
    let g = (y.clone() * tensor::<Fast, 3>(&w, shape)).sum().backward();
    let (fy, fg) = (vals(y), grad(&xt, &g));
    // The inputs as the f32 tensors hold them.
    let x: Vec<f64> = x.iter().map(|&v| v as f32 as f64).collect();
    let ey: Vec<f64> = x.iter().map(|&v| v * normal_cdf64(v)).collect();
    let pdf = |v: f64| (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let eg: Vec<f64> = (0..n)
        .map(|i| (normal_cdf64(x[i]) + x[i] * pdf(x[i])) * (w[i] as f32 as f64))
        .collect();
    assert_close(&fy, &ey, 1e-6, "gelu");
    assert_close(&fg, &eg, 1e-6, "d gelu");
    // Inference (plain NdArray) gives the same values.
    let plain = vals(super::gelu(tensor::<NdArray<f32>, 3>(&x, shape)));
    assert_close(&plain, &ey, 1e-6, "gelu, inference");
}

#[test]
fn residual_norm_matches_burn_without_dropout() {
    let shape = [2, 7, 48];
    let n = 2 * 7 * 48;
    let (h, x, w) = (rand(n, 3, 2.0), rand(n, 4, 2.0), rand(n, 5, 1.0));
    let (gamma, beta) = (rand(48, 6, 1.5), rand(48, 7, 0.5));
    macro_rules! run {
        ($B:ty) => {{
            let (ht, xt) = (tracked::<$B, 3>(&h, shape), tracked::<$B, 3>(&x, shape));
            let ln = norm::<$B>(&gamma, &beta);
            let y = super::residual_norm(ht.clone(), xt.clone(), &ln, 1e-12, 0.0);
            let g = (y.clone() * tensor::<$B, 3>(&w, shape)).sum().backward();
            let beta_grad = grad(&ln.beta.as_ref().expect("beta").val(), &g);
            (
                vals(y),
                grad(&ht, &g),
                grad(&xt, &g),
                grad(&ln.gamma.val(), &g),
                beta_grad,
            )
        }};
    }
    let fast = run!(Fast);
    let exact = run!(Exact);
    assert_close(&fast.0, &exact.0, 1e-5, "norm");
    assert_close(&fast.1, &exact.1, 1e-5, "d h");
    assert_close(&fast.2, &exact.2, 1e-5, "d x");
    assert_close(&fast.3, &exact.3, 1e-5, "d gamma");
    assert_close(&fast.4, &exact.4, 1e-5, "d beta");
    let plain = {
        let ln = norm::<NdArray<f32>>(&gamma, &beta);
        let (ht, xt) = (tensor(&h, shape), tensor(&x, shape));
        vals(super::residual_norm(ht, xt, &ln, 1e-12, 0.0))
    };
    assert_close(&plain, &exact.0, 1e-5, "norm, inference");
}

/// f64 LayerNorm of one row.
fn layer_norm_row(s: &[f64], gamma: &[f64], beta: &[f64]) -> (Vec<f64>, f64) {
    let d = s.len() as f64;
    let mean = s.iter().sum::<f64>() / d;
    let var = s.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d;
    let rstd = 1.0 / (var + 1e-12).sqrt();
    let xhat = s.iter().map(|v| (v - mean) * rstd).collect::<Vec<_>>();
    let y = xhat
        .iter()
        .zip(gamma)
        .zip(beta)
        .map(|((x, g), b)| x * g + b);
    (y.collect(), rstd)
}

#[test]
fn residual_norm_with_dropout_is_consistent() {
    let (rows, d) = (40, 64);
    let shape = [4, 10, d];
    let n = rows * d;
    let p = 0.25;
    let scale = 1.0 / (1.0 - p);
    let (h, x, w) = (rand(n, 8, 2.0), rand(n, 9, 2.0), rand(n, 10, 1.0));
    let (gamma, beta) = (rand(d, 11, 1.5), rand(d, 12, 0.5));
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    Fast::seed(&Default::default(), 5);
    let (ht, xt) = (tracked::<Fast, 3>(&h, shape), tracked::<Fast, 3>(&x, shape));
    let ln = norm::<Fast>(&gamma, &beta);
    let y = super::residual_norm(ht.clone(), xt.clone(), &ln, 1e-12, p);
    let g = (y.clone() * tensor::<Fast, 3>(&w, shape)).sum().backward();
    let (y, dh, dx) = (vals(y), grad(&ht, &g), grad(&xt, &g));
    // d h = d x · mask · scale: read the mask back from the gradients.
    let mut mask = vec![0.0; n];
    for i in 0..n {
        if dh[i] != 0.0 {
            assert!((dh[i] - dx[i] * scale).abs() <= 1e-5 * dx[i].abs().max(1e-3));
            mask[i] = 1.0;
        }
    }
    let kept = mask.iter().sum::<f64>() / n as f64;
    assert!((kept - (1.0 - p)).abs() < 0.04, "kept {kept}");
    // The output is LayerNorm(h · mask · scale + x) with that mask.
    let mut want = Vec::with_capacity(n);
    for r in 0..rows {
        let s: Vec<f64> = (r * d..(r + 1) * d)
            .map(|i| h[i] * mask[i] * scale + x[i])
            .collect();
        want.extend(layer_norm_row(&s, &gamma, &beta).0);
    }
    assert_close(&y, &want, 1e-5, "dropout norm");
    // Same seed, same masks.
    Fast::seed(&Default::default(), 5);
    let again = super::residual_norm(tensor(&h, shape), tensor(&x, shape), &ln, 1e-12, p);
    assert_eq!(vals(again), y);
}

#[test]
fn attention_probs_match_burn_without_dropout() {
    let shape = [2, 3, 5, 9];
    let n = 2 * 3 * 5 * 9;
    let (s, w) = (rand(n, 13, 4.0), rand(n, 14, 1.0));
    // The second sequence has its last 3 keys padded.
    let mut bias = vec![0.0; 2 * 9];
    bias[15..].iter_mut().for_each(|b| *b = -1.0e9);
    macro_rules! run {
        ($B:ty) => {{
            let st = tracked::<$B, 4>(&s, shape);
            let y = super::attention_probs(st.clone(), tensor::<$B, 4>(&bias, [2, 1, 1, 9]), 0.0);
            let g = (y.clone() * tensor::<$B, 4>(&w, shape)).sum().backward();
            (vals(y), grad(&st, &g))
        }};
    }
    let (fy, fg) = run!(Fast);
    let (ey, eg) = run!(Exact);
    assert_close(&fy, &ey, 1e-6, "softmax");
    assert_close(&fg, &eg, 1e-6, "d softmax");
    for row in 15..30 {
        assert!(
            fy[row * 9 + 6..row * 9 + 9].iter().all(|&v| v == 0.0),
            "padding gets 0"
        );
    }
}

#[test]
fn attention_probs_with_dropout_are_consistent() {
    let (rows, d) = (2 * 4 * 16, 16);
    let shape = [2, 4, 16, d];
    let n = rows * d;
    let p = 0.1;
    let scale = 1.0 / (1.0 - p);
    let (s, w) = (rand(n, 15, 4.0), rand(n, 16, 1.0));
    let bias = vec![0.0; 2 * d];
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    Fast::seed(&Default::default(), 9);
    let st = tracked::<Fast, 4>(&s, shape);
    let y = super::attention_probs(st.clone(), tensor::<Fast, 4>(&bias, [2, 1, 1, d]), p);
    let g = (y.clone() * tensor::<Fast, 4>(&w, shape)).sum().backward();
    let (y, ds) = (vals(y), grad(&st, &g));
    let mut dropped = 0;
    for r in 0..rows {
        let z = &s[r * d..(r + 1) * d];
        let max = z.iter().fold(f64::MIN, |m, v| m.max(*v));
        let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        let probs: Vec<f64> = e.iter().map(|v| v / sum).collect();
        // The mask, read from the output; then y, and d scores = p · (dp − Σ dp·p).
        let mask: Vec<f64> = (0..d).map(|j| f64::from(y[r * d + j] != 0.0)).collect();
        dropped += mask.iter().filter(|&&m| m == 0.0).count();
        let dp: Vec<f64> = (0..d).map(|j| w[r * d + j] * mask[j] * scale).collect();
        let dot: f64 = dp.iter().zip(&probs).map(|(a, b)| a * b).sum();
        for j in 0..d {
            let want = probs[j] * mask[j] * scale;
            assert!((y[r * d + j] - want).abs() < 1e-6, "y[{r},{j}]");
            let want_grad = probs[j] * (dp[j] - dot);
            assert!(
                (ds[r * d + j] - want_grad).abs() < 1e-6,
                "d scores[{r},{j}]"
            );
        }
    }
    let share = dropped as f64 / n as f64;
    assert!((share - p).abs() < 0.03, "dropped {share}");
}

#[test]
fn dropout_gradient_uses_the_forward_mask() {
    let shape = [6, 50];
    let n = 300;
    let (x, w) = (rand(n, 17, 1.0), rand(n, 18, 1.0));
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    Fast::seed(&Default::default(), 1);
    let xt = tracked::<Fast, 2>(&x, shape);
    let y = super::dropout(xt.clone(), 0.5);
    let g = (y.clone() * tensor::<Fast, 2>(&w, shape)).sum().backward();
    let (y, dx) = (vals(y), grad(&xt, &g));
    for i in 0..n {
        let kept = y[i] != 0.0;
        let want_y = if kept { x[i] * 2.0 } else { 0.0 };
        let want_dx = if kept { w[i] * 2.0 } else { 0.0 };
        assert!((y[i] - want_y).abs() < 1e-6 && (dx[i] - want_dx).abs() < 1e-6);
    }
    // Not training: the identity.
    let plain = vals(super::dropout(tensor::<NdArray<f32>, 2>(&x, shape), 0.5));
    assert_close(&plain, &x, 1e-7, "inference dropout");
}

#[test]
fn linear_matches_burn() {
    let (rows, k, n) = (37, 24, 19);
    let (x, w, b, dy) = (
        rand(rows * k, 19, 1.0),
        rand(k * n, 20, 0.5),
        rand(n, 21, 0.5),
        rand(rows * n, 22, 1.0),
    );
    macro_rules! run {
        ($B:ty) => {{
            let xt = tracked::<$B, 2>(&x, [rows, k]);
            let wt = tracked::<$B, 2>(&w, [k, n]);
            let bt = tracked::<$B, 1>(&b, [n]);
            let y = super::linear(xt.clone(), wt.clone(), bt.clone());
            let g = (y.clone() * tensor::<$B, 2>(&dy, [rows, n]))
                .sum()
                .backward();
            (vals(y), grad(&xt, &g), grad(&wt, &g), grad(&bt, &g))
        }};
    }
    let fast = run!(Fast);
    let exact = run!(Exact);
    assert_close(&fast.0, &exact.0, 1e-6, "linear");
    assert_close(&fast.1, &exact.1, 1e-6, "d x");
    assert_close(&fast.2, &exact.2, 1e-6, "d w");
    assert_close(&fast.3, &exact.3, 1e-6, "d b");
    // A frozen weight (LoRA): only x gets a gradient.
    let xt = tracked::<Fast, 2>(&x, [rows, k]);
    let y = super::linear(xt.clone(), tensor(&w, [k, n]), tensor(&b, [n]));
    let g = (y * tensor::<Fast, 2>(&dy, [rows, n])).sum().backward();
    assert_close(&grad(&xt, &g), &exact.1, 1e-6, "d x, frozen weight");
    let plain = super::linear(
        tensor::<NdArray<f32>, 2>(&x, [rows, k]),
        tensor(&w, [k, n]),
        tensor(&b, [n]),
    );
    assert_close(&vals(plain), &exact.0, 1e-6, "linear, inference");
}

/// Fused multi-head attention (heads through strides, one autodiff node) against exact f64
/// values (and burn's ops, which are further off in f32):
/// the context and the gradients of q, k and v, with padded keys in the second text.
#[test]
fn attention_matches_exact_values_and_burn() {
    let (batch, seq, hidden, heads) = (2, 7, 12, 3);
    let shape = [batch, seq, hidden];
    let n = batch * seq * hidden;
    let (q, k, v, w) = (
        rand(n, 31, 2.0),
        rand(n, 32, 2.0),
        rand(n, 33, 1.0),
        rand(n, 34, 1.0),
    );
    let mut bias = vec![0.0; batch * seq];
    bias[seq + 5..].iter_mut().for_each(|b| *b = -1.0e9);
    macro_rules! run {
        ($B:ty) => {{
            let (qt, kt, vt) = (
                tracked::<$B, 3>(&q, shape),
                tracked::<$B, 3>(&k, shape),
                tracked::<$B, 3>(&v, shape),
            );
            let m = tensor::<$B, 4>(&bias, [batch, 1, 1, seq]);
            let y = super::attention(qt.clone(), kt.clone(), vt.clone(), m, heads, 0.0);
            let g = (y.clone() * tensor::<$B, 3>(&w, shape)).sum().backward();
            (vals(y), grad(&qt, &g), grad(&kt, &g), grad(&vt, &g))
        }};
    }
    let (fy, fq, fk, fv) = run!(Fast);
    let (ey, eq, ek, ev) = run!(Exact);
    let (y64, q64, k64, v64) = attention64(&q, &k, &v, &w, &bias, shape, heads);
    // The fused kernel against exact values; burn's composition (the path of every other
    // backend) as a second opinion: its f32 gradients depend on the CPU's matrix kernels
    // (1.07e-4 relative on d q on an AVX2-only EPYC, under 1e-4 with AVX-512), so they are held
    // to 1e-3, which still catches a wrong mask or head layout (errors of order 1e-1).
    assert_close(&fy, &y64, 1e-6, "context");
    assert_close(&fq, &q64, 1e-5, "d q");
    assert_close(&fk, &k64, 1e-5, "d k");
    assert_close(&fv, &v64, 1e-5, "d v");
    assert_close(&ey, &y64, 1e-5, "burn's context");
    assert_close(&eq, &q64, 1e-3, "burn's d q");
    assert_close(&ek, &k64, 1e-3, "burn's d k");
    assert_close(&ev, &v64, 1e-3, "burn's d v");
    // Inference (no autodiff) takes the same kernel.
    let plain = super::attention(
        tensor::<NdArray<f32>, 3>(&q, shape),
        tensor::<NdArray<f32>, 3>(&k, shape),
        tensor::<NdArray<f32>, 3>(&v, shape),
        tensor::<NdArray<f32>, 4>(&bias, [batch, 1, 1, seq]),
        heads,
        0.1,
    );
    assert_close(&vals(plain), &y64, 1e-6, "context without autodiff");
}

/// Multi-head attention and the gradients of `Σ w ⊙ context` in f64: `(context, dq, dk, dv)`.
fn attention64(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    w: &[f64],
    bias: &[f64],
    [batch, seq, hidden]: [usize; 3],
    heads: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let d = hidden / heads;
    let scale = 1.0 / (d as f64).sqrt();
    let n = batch * seq * hidden;
    let (mut y, mut dq, mut dk, mut dv) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let at = |b: usize, i: usize, hd: usize, c: usize| (b * seq + i) * hidden + hd * d + c;
    for b in 0..batch {
        for hd in 0..heads {
            let mut p = vec![vec![0.0f64; seq]; seq];
            for i in 0..seq {
                let s: Vec<f64> = (0..seq)
                    .map(|j| {
                        scale
                            * (0..d)
                                .map(|c| q[at(b, i, hd, c)] * k[at(b, j, hd, c)])
                                .sum::<f64>()
                            + bias[b * seq + j]
                    })
                    .collect();
                let max = s.iter().fold(f64::MIN, |m, &x| m.max(x));
                let z: f64 = s.iter().map(|x| (x - max).exp()).sum();
                p[i] = s.iter().map(|x| (x - max).exp() / z).collect();
            }
            for i in 0..seq {
                for c in 0..d {
                    y[at(b, i, hd, c)] = (0..seq).map(|j| p[i][j] * v[at(b, j, hd, c)]).sum();
                }
                let dp: Vec<f64> = (0..seq)
                    .map(|j| {
                        (0..d)
                            .map(|c| w[at(b, i, hd, c)] * v[at(b, j, hd, c)])
                            .sum()
                    })
                    .collect();
                let dot: f64 = (0..seq).map(|j| dp[j] * p[i][j]).sum();
                for j in 0..seq {
                    let ds = p[i][j] * (dp[j] - dot);
                    for c in 0..d {
                        dv[at(b, j, hd, c)] += p[i][j] * w[at(b, i, hd, c)];
                        dq[at(b, i, hd, c)] += scale * ds * k[at(b, j, hd, c)];
                        dk[at(b, j, hd, c)] += scale * ds * q[at(b, i, hd, c)];
                    }
                }
            }
        }
    }
    (y, dq, dk, dv)
}

/// With dropout: the fused node against the composition of burn's products with the fused
/// softmax + dropout op, both drawing their mask from the same seed (the two number the rows
/// of `[batch, heads, queries, keys]` alike).
#[test]
fn attention_with_dropout_matches_the_composition() {
    let (batch, seq, hidden, heads) = (2, 9, 16, 4);
    let d = hidden / heads;
    let shape = [batch, seq, hidden];
    let n = batch * seq * hidden;
    let (q, k, v, w) = (
        rand(n, 41, 2.0),
        rand(n, 42, 2.0),
        rand(n, 43, 1.0),
        rand(n, 44, 1.0),
    );
    let mut bias = vec![0.0; batch * seq];
    bias[seq + 6..].iter_mut().for_each(|b| *b = -1.0e9);
    let p = 0.2;
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let run = |fused: bool| {
        Fast::seed(&Default::default(), 21);
        let (qt, kt, vt) = (
            tracked::<Fast, 3>(&q, shape),
            tracked::<Fast, 3>(&k, shape),
            tracked::<Fast, 3>(&v, shape),
        );
        let m = tensor::<Fast, 4>(&bias, [batch, 1, 1, seq]);
        let y = if fused {
            super::attention(qt.clone(), kt.clone(), vt.clone(), m, heads, p)
        } else {
            let split = |t: Tensor<Fast, 3>| t.reshape([batch, seq, heads, d]).swap_dims(1, 2);
            let scores = split(qt.clone() * (1.0 / (d as f64).sqrt()))
                .matmul(split(kt.clone()).swap_dims(2, 3));
            super::attention_probs(scores, m, p)
                .matmul(split(vt.clone()))
                .swap_dims(1, 2)
                .reshape(shape)
        };
        let g = (y.clone() * tensor::<Fast, 3>(&w, shape)).sum().backward();
        (vals(y), grad(&qt, &g), grad(&kt, &g), grad(&vt, &g))
    };
    let (fy, fq, fk, fv) = run(true);
    let (cy, cq, ck, cv) = run(false);
    assert_close(&fy, &cy, 1e-6, "context");
    assert_close(&fq, &cq, 1e-5, "d q");
    assert_close(&fk, &ck, 1e-5, "d k");
    assert_close(&fv, &cv, 1e-5, "d v");
    let without = run_without_dropout(&q, &k, &v, &bias, shape, heads);
    assert!(
        fy.iter().zip(&without).any(|(a, b)| (a - b).abs() > 1e-4),
        "dropout changed the context"
    );
}

fn run_without_dropout(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    bias: &[f64],
    shape: [usize; 3],
    heads: usize,
) -> Vec<f64> {
    let m = tensor::<NdArray<f32>, 4>(bias, [shape[0], 1, 1, shape[1]]);
    vals(super::attention(
        tensor::<NdArray<f32>, 3>(q, shape),
        tensor::<NdArray<f32>, 3>(k, shape),
        tensor::<NdArray<f32>, 3>(v, shape),
        m,
        heads,
        0.0,
    ))
}
