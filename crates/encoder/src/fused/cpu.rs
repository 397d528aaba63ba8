//! The fused blocks on burn's CPU backend: `NdArray<f32>` runs the kernels, and
//! `Autodiff<NdArray<f32>>` records each block as one autodiff node with its own backward.
//!
//! The encoder is generic over `B: Backend`; a block recognises the CPU backend by its type
//! (`TypeId`) and otherwise hands its inputs back for the generic path.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::sync::Arc;

use burn::nn::LayerNorm;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{
    DType, Distribution, Shape, Tensor, TensorData, TensorMetadata, TensorPrimitive,
};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_ndarray::{NdArray, NdArrayTensor};

use super::kernels::{self, Dropout, NormSaved};

type Nd = NdArray<f32>;
type Ad = Autodiff<Nd>;

/// Which CPU backend `B` is, if it is one of the two.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cpu {
    Plain,
    Autodiff,
}

fn cpu<B: Backend>() -> Option<Cpu> {
    let id = TypeId::of::<B>();
    if id == TypeId::of::<Nd>() {
        Some(Cpu::Plain)
    } else if id == TypeId::of::<Ad>() {
        Some(Cpu::Autodiff)
    } else {
        None
    }
}

/// `t` as type `U`, which the caller has checked is `T` itself.
fn same<T: 'static, U: 'static>(t: T) -> U {
    let mut slot = Some(t);
    let any: &mut dyn Any = &mut slot;
    match any.downcast_mut::<Option<U>>().and_then(Option::take) {
        Some(u) => u,
        None => unreachable!("`same` is only called with T == U"),
    }
}

fn is_f32<B: Backend, const D: usize>(t: &Tensor<B, D>) -> bool {
    t.dtype() == DType::F32
}

/// The autodiff primitive of a tensor of `B == Ad`.
fn ad_prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<Ad> {
    same::<_, Tensor<Ad, D>>(t).into_primitive().tensor()
}

fn from_ad<B: Backend, const D: usize>(t: FloatTensor<Ad>) -> Tensor<B, D> {
    same(Tensor::<Ad, D>::from_primitive(TensorPrimitive::Float(t)))
}

/// The NdArray primitive of a tensor of `B == Nd`.
fn nd_prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> NdArrayTensor {
    same::<_, Tensor<Nd, D>>(t).into_primitive().tensor()
}

fn from_nd<B: Backend, const D: usize>(t: NdArrayTensor) -> Tensor<B, D> {
    same(Tensor::<Nd, D>::from_primitive(TensorPrimitive::Float(t)))
}

/// The values of a float tensor in row-major order, as f32 (borrowed when it is a contiguous
/// f32 tensor). The fused ops check that their inputs are f32; an upstream gradient of
/// another float type is converted rather than refused.
fn values(t: &NdArrayTensor) -> Cow<'_, [f32]> {
    match t {
        NdArrayTensor::F32(storage) => {
            let view = storage.view();
            match view.to_slice() {
                Some(slice) => Cow::Borrowed(slice),
                None => {
                    // A strided view (a transposed weight, as loaded): copied row by row, each
                    // row a one-dimensional walk; `view.iter()` steps a dynamic-rank index per
                    // element, which cost more than the matrix product it feeds.
                    let mut out = Vec::with_capacity(view.len());
                    for row in view.rows() {
                        out.extend(row.iter().copied());
                    }
                    Cow::Owned(out)
                }
            }
        }
        NdArrayTensor::F64(storage) => {
            let view = storage.view();
            let mut out = Vec::with_capacity(view.len());
            for row in view.rows() {
                out.extend(row.iter().map(|&v| v as f32));
            }
            Cow::Owned(out)
        }
        // burn-ndarray's float tensors are f32 or f64; other variants hold ints and bools.
        _ => unreachable!("fused CPU ops get float tensors"),
    }
}

fn nd_tensor(values: Vec<f32>, shape: Shape) -> NdArrayTensor {
    NdArrayTensor::from_data(TensorData::new(values, shape))
}

/// A seed for one dropout call, drawn from the backend's generator so that `Backend::seed`
/// makes runs reproducible.
fn dropout_seed() -> u64 {
    let r = Tensor::<Nd, 1>::random([2], Distribution::Uniform(0.0, 1.0), &Default::default());
    let v = r.into_data().to_vec::<f32>().unwrap_or_default();
    let bits = |i: usize| v.get(i).map_or(0, |x| x.to_bits() as u64);
    bits(0) << 32 | bits(1)
}

/// Records `y` as the output of one autodiff node `op` over `inputs`; `state` (what the
/// backward pass needs, given `y`) is only built when some input is tracked.
fn record<Op, B, const N: usize, const D: usize>(
    op: Op,
    inputs: [&FloatTensor<Ad>; N],
    y: NdArrayTensor,
    state: impl FnOnce(&NdArrayTensor) -> Op::State,
) -> Tensor<B, D>
where
    Op: Backward<Nd, N>,
    B: Backend,
{
    let prep = op
        .prepare::<NoCheckpointing>(inputs.map(|t| t.node.clone()))
        .compute_bound()
        .stateful();
    from_ad(match prep {
        OpsKind::Tracked(prep) => {
            let state = state(&y);
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    })
}

// ---------------------------------------------------------------------------------------
// GELU

#[derive(Debug)]
struct GeluBackward;

impl Backward<Nd, 1> for GeluBackward {
    type State = NdArrayTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Nd>(&ops.node);
        let [Some(parent)] = ops.parents else {
            return;
        };
        let dx = kernels::gelu_backward(&values(&ops.state), &values(&dy));
        grads.register::<Nd>(parent.id, nd_tensor(dx, dy.shape()));
    }
}

pub(super) fn gelu<B: Backend, const D: usize>(
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    if !is_f32(&x) {
        return Err(x);
    }
    match cpu::<B>() {
        None => Err(x),
        Some(Cpu::Plain) => {
            let x = nd_prim(x);
            Ok(from_nd(nd_tensor(kernels::gelu(&values(&x)), x.shape())))
        }
        Some(Cpu::Autodiff) => {
            let x = ad_prim(x);
            let y = nd_tensor(kernels::gelu(&values(&x.primitive)), x.primitive.shape());
            Ok(record(GeluBackward, [&x], y, |_| x.primitive.clone()))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Dropout

#[derive(Debug)]
struct DropoutBackward;

impl Backward<Nd, 1> for DropoutBackward {
    type State = (Dropout, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Nd>(&ops.node);
        let [Some(parent)] = ops.parents else {
            return;
        };
        let (drop, width) = ops.state;
        let dx = kernels::dropout(&values(&dy), width, drop);
        grads.register::<Nd>(parent.id, nd_tensor(dx, dy.shape()));
    }
}

/// Only called while training (autodiff) with `p > 0`.
pub(super) fn dropout<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    p: f64,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    if !is_f32(&x) || cpu::<B>() != Some(Cpu::Autodiff) {
        return Err(x);
    }
    let width = x.dims()[D - 1].max(1);
    let x = ad_prim(x);
    let drop = Dropout::new(p, dropout_seed());
    let y = nd_tensor(
        kernels::dropout(&values(&x.primitive), width, drop),
        x.primitive.shape(),
    );
    Ok(record(DropoutBackward, [&x], y, |_| (drop, width)))
}

// ---------------------------------------------------------------------------------------
// Dropout + residual + LayerNorm

#[derive(Debug, Clone)]
struct NormState {
    saved: Arc<NormSaved>,
    gamma: NdArrayTensor,
    drop: Dropout,
    shape: Shape,
}

#[derive(Debug)]
struct NormBackward;

impl Backward<Nd, 4> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Nd>(&ops.node);
        let state = ops.state;
        let gamma = values(&state.gamma);
        let width = gamma.len();
        let (dh, dx, dgamma, dbeta) =
            kernels::residual_norm_backward(&state.saved, &gamma, &values(&dy), state.drop);
        let [ph, px, pg, pb] = ops.parents;
        let dx = nd_tensor(dx, state.shape.clone());
        if let Some(p) = ph {
            let dh = match dh {
                Some(dh) => nd_tensor(dh, state.shape.clone()),
                None => dx.clone(),
            };
            grads.register::<Nd>(p.id, dh);
        }
        if let Some(p) = px {
            grads.register::<Nd>(p.id, dx);
        }
        if let Some(p) = pg {
            grads.register::<Nd>(p.id, nd_tensor(dgamma, Shape::new([width])));
        }
        if let Some(p) = pb {
            grads.register::<Nd>(p.id, nd_tensor(dbeta, Shape::new([width])));
        }
    }
}

type NormInputs<B> = (Tensor<B, 3>, Tensor<B, 3>);

pub(super) fn residual_norm<B: Backend>(
    h: Tensor<B, 3>,
    x: Tensor<B, 3>,
    norm: &LayerNorm<B>,
    eps: f64,
    p: f64,
) -> Result<Tensor<B, 3>, NormInputs<B>> {
    let Some(beta) = &norm.beta else {
        return Err((h, x));
    };
    let (gamma, beta) = (norm.gamma.val(), beta.val());
    let width = gamma.dims()[0];
    let fits = is_f32(&h)
        && is_f32(&x)
        && is_f32(&gamma)
        && is_f32(&beta)
        && h.dims() == x.dims()
        && h.dims()[2] == width
        && beta.dims()[0] == width;
    let Some(kind) = cpu::<B>().filter(|_| fits) else {
        return Err((h, x));
    };
    let shape = Shape::new(h.dims());
    let eps = eps as f32;
    match kind {
        Cpu::Plain => {
            let (h, x, g, b) = (nd_prim(h), nd_prim(x), nd_prim(gamma), nd_prim(beta));
            let (y, _) = kernels::residual_norm(
                &values(&h),
                &values(&x),
                &values(&g),
                &values(&b),
                eps,
                Dropout::none(),
            );
            Ok(from_nd(nd_tensor(y, shape)))
        }
        Cpu::Autodiff => {
            let (h, x, g, b) = (ad_prim(h), ad_prim(x), ad_prim(gamma), ad_prim(beta));
            let drop = if p > 0.0 {
                Dropout::new(p, dropout_seed())
            } else {
                Dropout::none()
            };
            let (y, saved) = kernels::residual_norm(
                &values(&h.primitive),
                &values(&x.primitive),
                &values(&g.primitive),
                &values(&b.primitive),
                eps,
                drop,
            );
            let y = nd_tensor(y, shape.clone());
            let state = |_: &NdArrayTensor| NormState {
                saved: Arc::new(saved),
                gamma: g.primitive.clone(),
                drop,
                shape,
            };
            Ok(record(NormBackward, [&h, &x, &g, &b], y, state))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Mask + softmax + dropout

#[derive(Debug, Clone)]
struct SoftmaxState {
    probs: NdArrayTensor,
    drop: Dropout,
    width: usize,
}

#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Nd, 1> for SoftmaxBackward {
    type State = SoftmaxState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Nd>(&ops.node);
        let [Some(parent)] = ops.parents else {
            return;
        };
        let s = ops.state;
        let dz =
            kernels::softmax_dropout_backward(&values(&s.probs), &values(&dy), s.width, s.drop);
        grads.register::<Nd>(parent.id, nd_tensor(dz, dy.shape()));
    }
}

type ProbInputs<B> = (Tensor<B, 4>, Tensor<B, 4>);

pub(super) fn attention_probs<B: Backend>(
    scores: Tensor<B, 4>,
    mask_bias: Tensor<B, 4>,
    p: f64,
) -> Result<Tensor<B, 4>, ProbInputs<B>> {
    let [batch, heads, queries, keys] = scores.dims();
    let fits = is_f32(&scores) && is_f32(&mask_bias) && mask_bias.dims() == [batch, 1, 1, keys];
    let Some(kind) = cpu::<B>().filter(|_| fits && keys > 0) else {
        return Err((scores, mask_bias));
    };
    let shape = Shape::new([batch, heads, queries, keys]);
    let rows_per_bias = heads * queries;
    match kind {
        Cpu::Plain => {
            let (s, m) = (nd_prim(scores), nd_prim(mask_bias));
            let (y, _) = kernels::softmax_dropout(
                &values(&s),
                &values(&m),
                keys,
                rows_per_bias,
                Dropout::none(),
            );
            Ok(from_nd(nd_tensor(y, shape)))
        }
        Cpu::Autodiff => {
            let (s, m) = (ad_prim(scores), ad_prim(mask_bias));
            let drop = if p > 0.0 {
                Dropout::new(p, dropout_seed())
            } else {
                Dropout::none()
            };
            let (y, probs) = kernels::softmax_dropout(
                &values(&s.primitive),
                &values(&m.primitive),
                keys,
                rows_per_bias,
                drop,
            );
            let y = nd_tensor(y, shape.clone());
            let state = |y: &NdArrayTensor| SoftmaxState {
                probs: match probs {
                    Some(p) => nd_tensor(p, shape),
                    None => y.clone(),
                },
                drop,
                width: keys,
            };
            Ok(record(SoftmaxBackward, [&s], y, state))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Linear layer

#[derive(Debug, Clone)]
struct LinearState {
    x: NdArrayTensor,
    w: NdArrayTensor,
    dims: (usize, usize, usize),
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Nd, 3> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Nd>(&ops.node);
        let s = ops.state;
        let (rows, k, n) = s.dims;
        let [px, pw, pb] = ops.parents;
        let want = (px.is_some(), pw.is_some(), pb.is_some());
        let (dx, dw, db) =
            kernels::linear_backward(&values(&s.x), &values(&s.w), &values(&dy), s.dims, want);
        let parts = [
            (px, dx, vec![rows, k]),
            (pw, dw, vec![k, n]),
            (pb, db, vec![n]),
        ];
        for (parent, grad, shape) in parts {
            if let (Some(p), Some(g)) = (parent, grad) {
                grads.register::<Nd>(p.id, nd_tensor(g, Shape::from(shape)));
            }
        }
    }
}

type LinearInputs<B> = (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 1>);

pub(super) fn linear<B: Backend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
    b: Tensor<B, 1>,
) -> Result<Tensor<B, 2>, LinearInputs<B>> {
    let ([rows, k], [k2, n], [n2]) = (x.dims(), w.dims(), b.dims());
    let fits = is_f32(&x) && is_f32(&w) && is_f32(&b) && k == k2 && n == n2;
    let Some(kind) = cpu::<B>().filter(|_| fits) else {
        return Err((x, w, b));
    };
    let shape = Shape::new([rows, n]);
    match kind {
        Cpu::Plain => {
            let (x, w, b) = (nd_prim(x), nd_prim(w), nd_prim(b));
            let y = kernels::linear(&values(&x), &values(&w), &values(&b), rows, k);
            Ok(from_nd(nd_tensor(y, shape)))
        }
        Cpu::Autodiff => {
            let (x, w, b) = (ad_prim(x), ad_prim(w), ad_prim(b));
            let y = kernels::linear(
                &values(&x.primitive),
                &values(&w.primitive),
                &values(&b.primitive),
                rows,
                k,
            );
            let y = nd_tensor(y, shape);
            let state = |_: &NdArrayTensor| LinearState {
                x: x.primitive.clone(),
                w: w.primitive.clone(),
                dims: (rows, k, n),
            };
            Ok(record(LinearBackward, [&x, &w, &b], y, state))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Inference forward (no autodiff)

use super::infer::{Act, BertView, LayerView, LinearView, Mat, NormView};
use crate::bert::Bert;
use crate::config::Activation;
use crate::dense::Dense;

/// A linear layer's weight (adapter merged) and bias as NdArray tensors.
struct CpuLinear {
    w: NdArrayTensor,
    b: NdArrayTensor,
}

struct CpuNorm {
    gamma: NdArrayTensor,
    beta: NdArrayTensor,
    eps: f32,
}

struct CpuLayer {
    query: CpuLinear,
    key: CpuLinear,
    value: CpuLinear,
    attn_out: CpuLinear,
    attn_norm: CpuNorm,
    inter: CpuLinear,
    out: CpuLinear,
    out_norm: CpuNorm,
}

/// The weights of a [`Bert`] on `NdArray<f32>`, held (shared, not copied) for
/// [`BertView`]: the inference forward of [`super::infer`].
pub(crate) struct CpuBert {
    word: NdArrayTensor,
    position: NdArrayTensor,
    token_type: NdArrayTensor,
    emb_norm: CpuNorm,
    position_pad: Option<usize>,
    layers: Vec<CpuLayer>,
    heads: usize,
    act: Act,
}

/// A 2-D view of an f32 tensor through its strides (`None` for other layouts).
fn mat(t: &NdArrayTensor) -> Option<Mat<'_>> {
    let NdArrayTensor::F32(storage) = t else {
        return None;
    };
    let view = storage.view();
    let (&[rows, cols], &[rs, cs]) = (view.shape(), view.strides()) else {
        return None;
    };
    if rs < 0 || cs < 0 {
        return None;
    }
    let m = Mat {
        data: view.to_slice_memory_order()?,
        rows,
        cols,
        rs: rs as usize,
        cs: cs as usize,
    };
    m.in_bounds().then_some(m)
}

/// The values of a contiguous 1-D f32 tensor.
fn vector(t: &NdArrayTensor) -> Option<&[f32]> {
    let NdArrayTensor::F32(storage) = t else {
        return None;
    };
    let view = storage.view();
    (view.ndim() == 1).then(|| view.to_slice()).flatten()
}

fn cpu_linear<B: Backend>(d: &Dense<B>) -> Option<CpuLinear> {
    let (w, b) = (d.merged_weight(), d.bias.val());
    (is_f32(&w) && is_f32(&b)).then(|| CpuLinear {
        w: nd_prim(w),
        b: nd_prim(b),
    })
}

fn cpu_norm<B: Backend>(norm: &LayerNorm<B>, eps: f64) -> Option<CpuNorm> {
    let (gamma, beta) = (norm.gamma.val(), norm.beta.as_ref()?.val());
    (is_f32(&gamma) && is_f32(&beta)).then(|| CpuNorm {
        gamma: nd_prim(gamma),
        beta: nd_prim(beta),
        eps: eps as f32,
    })
}

impl CpuBert {
    /// The weights of `bert` when `B` is `NdArray<f32>` holding f32 tensors; `None` otherwise
    /// (the caller then runs the generic forward).
    pub(crate) fn new<B: Backend>(bert: &Bert<B>) -> Option<Self> {
        if cpu::<B>() != Some(Cpu::Plain) {
            return None;
        }
        let e = &bert.embeddings;
        let table = |t: Tensor<B, 2>| is_f32(&t).then(|| nd_prim(t));
        let act = match bert.layers.first().map(|l| l.activation) {
            Some(Activation::GeluTanh) => Act::GeluTanh,
            Some(Activation::Relu) => Act::Relu,
            _ => Act::Gelu,
        };
        let mut layers = Vec::with_capacity(bert.layers.len());
        for l in &bert.layers {
            let a = &l.attention;
            if l.activation != bert.layers[0].activation || a.heads == 0 {
                return None;
            }
            layers.push(CpuLayer {
                query: cpu_linear(&a.query)?,
                key: cpu_linear(&a.key)?,
                value: cpu_linear(&a.value)?,
                attn_out: cpu_linear(&a.output)?,
                attn_norm: cpu_norm(&a.norm, a.layer_norm_eps)?,
                inter: cpu_linear(&l.intermediate)?,
                out: cpu_linear(&l.output)?,
                out_norm: cpu_norm(&l.norm, l.layer_norm_eps)?,
            });
        }
        Some(Self {
            word: table(e.word.weight.val())?,
            position: table(e.position.weight.val())?,
            token_type: table(e.token_type.weight.val())?,
            emb_norm: cpu_norm(&e.norm, e.layer_norm_eps)?,
            position_pad: e.position_pad,
            heads: bert.layers.first().map_or(1, |l| l.attention.heads),
            layers,
            act,
        })
    }

    /// Borrowed views of every weight, with their shapes checked against one another; `None`
    /// when a tensor's layout or shape does not fit (the caller then runs the generic forward).
    pub(crate) fn view(&self) -> Option<BertView<'_>> {
        let word = mat(&self.word)?;
        let h = word.cols;
        fn linear(l: &CpuLinear, d_in: usize, d_out: usize) -> Option<LinearView<'_>> {
            let (w, b) = (mat(&l.w)?, vector(&l.b)?);
            (w.rows == d_in && w.cols == d_out && b.len() == d_out).then_some(LinearView { w, b })
        }
        fn norm(n: &CpuNorm, h: usize) -> Option<NormView<'_>> {
            let (gamma, beta) = (vector(&n.gamma)?, vector(&n.beta)?);
            (gamma.len() == h && beta.len() == h).then_some(NormView {
                gamma,
                beta,
                eps: n.eps,
            })
        }
        let mut layers = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let i = mat(&l.inter.w)?.cols;
            layers.push(LayerView {
                query: linear(&l.query, h, h)?,
                key: linear(&l.key, h, h)?,
                value: linear(&l.value, h, h)?,
                attn_out: linear(&l.attn_out, h, h)?,
                attn_norm: norm(&l.attn_norm, h)?,
                inter: linear(&l.inter, h, i)?,
                out: linear(&l.out, i, h)?,
                out_norm: norm(&l.out_norm, h)?,
            });
        }
        let (position, token_type) = (mat(&self.position)?, mat(&self.token_type)?);
        // Embedding rows are read as slices: the tables must be row-major (as loaded).
        let row_major = |m: &Mat<'_>| m.cs == 1 && m.rs == h;
        let fits = position.cols == h
            && token_type.cols == h
            && token_type.rows > 0
            && [&word, &position, &token_type].into_iter().all(row_major)
            && h % self.heads == 0;
        fits.then_some(BertView {
            word,
            position,
            token_type,
            emb_norm: norm(&self.emb_norm, h)?,
            position_pad: self.position_pad,
            layers,
            heads: self.heads,
            act: self.act,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Multi-head attention (training and the generic forward's CPU path)

use super::attention::{self as attn, Dims};

#[derive(Debug, Clone)]
struct AttnState {
    q: NdArrayTensor,
    k: NdArrayTensor,
    v: NdArrayTensor,
    probs: Arc<Vec<f32>>,
    dims: Dims,
    scale: f32,
    drop: Dropout,
}

#[derive(Debug)]
struct AttnBackward;

impl Backward<Nd, 3> for AttnBackward {
    type State = AttnState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Nd>(&ops.node);
        let s = ops.state;
        let shape = dy.shape();
        let (dq, dk, dv) = attn::backward(
            (&values(&s.q), &values(&s.k), &values(&s.v)),
            &s.probs,
            &values(&dy),
            s.dims,
            s.scale,
            s.drop,
        );
        let [pq, pk, pv] = ops.parents;
        for (parent, grad) in [(pq, dq), (pk, dk), (pv, dv)] {
            if let Some(p) = parent {
                grads.register::<Nd>(p.id, nd_tensor(grad, shape.clone()));
            }
        }
    }
}

type AttnInputs<B> = (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 4>);

pub(super) fn attention<B: Backend>(
    (q, k, v): (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>),
    mask_bias: Tensor<B, 4>,
    heads: usize,
    p: f64,
) -> Result<Tensor<B, 3>, AttnInputs<B>> {
    let [batch, seq, hidden] = q.dims();
    let fits = [&q, &k, &v]
        .iter()
        .all(|t| is_f32(t) && t.dims() == [batch, seq, hidden])
        && is_f32(&mask_bias)
        && mask_bias.dims() == [batch, 1, 1, seq]
        && heads > 0
        && hidden % heads == 0
        && seq > 0;
    let Some(kind) = cpu::<B>().filter(|_| fits) else {
        return Err((q, k, v, mask_bias));
    };
    let dims = Dims {
        batch,
        seq,
        heads,
        d: hidden / heads,
    };
    let scale = 1.0 / (dims.d as f32).sqrt();
    let shape = Shape::new([batch, seq, hidden]);
    match kind {
        Cpu::Plain => {
            let (q, k, v, m) = (nd_prim(q), nd_prim(k), nd_prim(v), nd_prim(mask_bias));
            let (ctx, _) = attn::forward(
                (&values(&q), &values(&k), &values(&v)),
                &values(&m),
                dims,
                scale,
                Dropout::none(),
                false,
            );
            Ok(from_nd(nd_tensor(ctx, shape)))
        }
        Cpu::Autodiff => {
            let (q, k, v, m) = (ad_prim(q), ad_prim(k), ad_prim(v), ad_prim(mask_bias));
            let drop = if p > 0.0 {
                Dropout::new(p, dropout_seed())
            } else {
                Dropout::none()
            };
            let (ctx, probs) = attn::forward(
                (
                    &values(&q.primitive),
                    &values(&k.primitive),
                    &values(&v.primitive),
                ),
                &values(&m.primitive),
                dims,
                scale,
                drop,
                true,
            );
            let state = |_: &NdArrayTensor| AttnState {
                q: q.primitive.clone(),
                k: k.primitive.clone(),
                v: v.primitive.clone(),
                probs: Arc::new(probs.unwrap_or_default()),
                dims,
                scale,
                drop,
            };
            Ok(record(
                AttnBackward,
                [&q, &k, &v],
                nd_tensor(ctx, shape),
                state,
            ))
        }
    }
}
