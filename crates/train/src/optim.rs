//! AdamW as PyTorch implements it (and transformers' Trainer uses it), global-norm gradient
//! clipping, and the linear warm-up / linear decay schedule.
//!
//! The optimiser state is keyed by parameter path (`bert.layers.0.attention.query.weight`), so
//! it can be saved to and restored from a checkpoint exactly (checkpoints name it by the
//! parameters' Hugging Face names, see [`crate::checkpoint`]).

use std::collections::BTreeMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::CheckpointFault;

/// AdamW hyper-parameters; the defaults are transformers' Trainer defaults as
/// sentence-transformers uses them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε added to the denominator.
    pub eps: f64,
    /// Decoupled weight decay (applied as `p ← p·(1 − lr·wd)`).
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Named flat `f32` tensors, as the optimiser state is exported.
pub type NamedTensors = Vec<(String, Vec<f32>)>;

/// First and second moments of one parameter, flattened.
struct Moments<B: Backend> {
    m: Tensor<B, 1>,
    v: Tensor<B, 1>,
}

/// The AdamW optimiser and its state.
pub struct AdamW<B: AutodiffBackend> {
    config: AdamWConfig,
    step: u64,
    state: BTreeMap<String, Moments<B::InnerBackend>>,
}

impl<B: AutodiffBackend> AdamW<B> {
    /// A fresh optimiser.
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            step: 0,
            state: BTreeMap::new(),
        }
    }

    /// Number of steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Number of parameters with state (those that have received gradients).
    pub fn tracked_parameters(&self) -> usize {
        self.state.len()
    }

    /// Applies one update with learning rate `lr` to every parameter of `module` that has a
    /// gradient in `grads`; parameters without one (frozen) are left untouched and get no state.
    pub fn step<M: AutodiffModule<B>>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        self.step += 1;
        let mut mapper = Updater {
            adam: self,
            grads,
            lr,
            path: Vec::new(),
        };
        module.map(&mut mapper)
    }

    /// The state as named flat tensors (`{path}.exp_avg`, `{path}.exp_avg_sq`) plus the step.
    /// The error is what the checkpoint being written gets (the caller names the file).
    pub fn export(&self) -> Result<(u64, NamedTensors), CheckpointFault> {
        let mut out = Vec::with_capacity(self.state.len() * 2);
        for (name, s) in &self.state {
            out.push((format!("{name}.exp_avg"), values(s.m.clone(), name)?));
            out.push((format!("{name}.exp_avg_sq"), values(s.v.clone(), name)?));
        }
        Ok((self.step, out))
    }

    /// Restores state exported by [`AdamW::export`]. Every `{path}.exp_avg` needs an
    /// `{path}.exp_avg_sq` of its size; the error is the checkpoint's fault (the caller names
    /// the file).
    pub fn import(
        config: AdamWConfig,
        step: u64,
        tensors: BTreeMap<String, Vec<f32>>,
        device: &B::Device,
    ) -> Result<Self, CheckpointFault> {
        let mut state = BTreeMap::new();
        for (name, m) in &tensors {
            let Some(param) = name.strip_suffix(".exp_avg") else {
                continue;
            };
            let partner = format!("{param}.exp_avg_sq");
            let Some(v) = tensors.get(&partner) else {
                return Err(CheckpointFault::UnpairedMoment {
                    tensor: name.clone(),
                    partner,
                });
            };
            if v.len() != m.len() {
                return Err(CheckpointFault::MomentSizes {
                    tensor: name.clone(),
                    values: m.len(),
                    partner,
                    partner_values: v.len(),
                });
            }
            let make =
                |x: &Vec<f32>| Tensor::from_data(TensorData::new(x.clone(), [x.len()]), device);
            state.insert(
                param.to_string(),
                Moments {
                    m: make(m),
                    v: make(v),
                },
            );
        }
        Ok(Self {
            config,
            step,
            state,
        })
    }
}

fn values<B: Backend, const D: usize>(
    t: Tensor<B, D>,
    name: &str,
) -> Result<Vec<f32>, CheckpointFault> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|source| CheckpointFault::TensorValues {
            tensor: name.to_string(),
            source,
        })
}

struct Updater<'a, B: AutodiffBackend> {
    adam: &'a mut AdamW<B>,
    grads: GradientsParams,
    lr: f64,
    path: Vec<String>,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Updater<'_, B> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let cfg = self.adam.config;
        let t = self.adam.step as i32;
        let dims = grad.dims();
        let n: usize = dims.iter().product();
        let g: Tensor<B::InnerBackend, 1> = grad.reshape([n]);
        let key = self.path.join(".");
        let device = g.device();
        let state = self.adam.state.entry(key).or_insert_with(|| Moments {
            m: Tensor::zeros([n], &device),
            v: Tensor::zeros([n], &device),
        });
        state.m = state.m.clone().mul_scalar(cfg.beta1) + g.clone().mul_scalar(1.0 - cfg.beta1);
        state.v =
            state.v.clone().mul_scalar(cfg.beta2) + (g.clone() * g).mul_scalar(1.0 - cfg.beta2);
        let bias1 = 1.0 - cfg.beta1.powi(t);
        let bias2 = 1.0 - cfg.beta2.powi(t);
        let mut p: Tensor<B::InnerBackend, 1> = tensor.inner().reshape([n]);
        if cfg.weight_decay != 0.0 {
            p = p.mul_scalar(1.0 - self.lr * cfg.weight_decay);
        }
        let denom = state
            .v
            .clone()
            .sqrt()
            .div_scalar(bias2.sqrt())
            .add_scalar(cfg.eps);
        let p = p - state.m.clone().div(denom).mul_scalar(self.lr / bias1);
        let updated = Tensor::<B, D>::from_inner(p.reshape(dims)).require_grad();
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// Element counts of `module`'s trainable (gradient-requiring) float parameters, keyed by the
/// path under which [`AdamW`] keeps their state.
pub(crate) fn trainable_sizes<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
) -> BTreeMap<String, usize> {
    struct Sizes {
        path: Vec<String>,
        out: BTreeMap<String, usize>,
    }
    impl<B: Backend> ModuleVisitor<B> for Sizes {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let t = param.val();
            if t.is_require_grad() {
                self.out
                    .insert(self.path.join("."), t.shape().num_elements());
            }
        }
    }
    let mut v = Sizes {
        path: Vec::new(),
        out: BTreeMap::new(),
    };
    module.visit(&mut v);
    v.out
}

/// The global L2 norm of all gradients of `module`'s parameters in `grads`.
pub fn grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> f64 {
    struct Norm<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        sum: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Norm<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let s = (g.clone() * g).sum();
                self.sum = Some(match self.sum.take() {
                    Some(acc) => acc + s,
                    None => s,
                });
            }
        }
    }
    let mut v = Norm::<B> { grads, sum: None };
    module.visit(&mut v);
    match v.sum {
        Some(s) => s.into_scalar().elem::<f64>().sqrt(),
        None => 0.0,
    }
}

/// Clips gradients by their global norm, as `torch.nn.utils.clip_grad_norm_`: when the norm
/// exceeds `max_norm`, every gradient is multiplied by `max_norm / (norm + 1e-6)`. Returns the
/// norm before clipping.
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let norm = grad_norm::<B, M>(module, grads);
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        scale_grads::<B, M>(module, grads, coef);
    }
    norm
}

/// Multiplies every gradient of `module`'s parameters in `grads` by `factor`.
pub fn scale_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    factor: f64,
) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                self.grads
                    .register::<B::InnerBackend, D>(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    module.visit(&mut Scale { grads, factor });
}

/// Linear warm-up from 0 over `warmup_steps`, then linear decay to 0 at `total_steps`
/// (transformers' `get_linear_schedule_with_warmup`). Step `k` (0-based) uses `lr(k)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearSchedule {
    /// Peak learning rate.
    pub base_lr: f64,
    /// Warm-up steps (`ceil(warmup_ratio × total_steps)`).
    pub warmup_steps: u64,
    /// Total optimiser steps.
    pub total_steps: u64,
}

impl LinearSchedule {
    /// The schedule for `total_steps` with a warm-up ratio, as transformers rounds it (up).
    pub fn with_ratio(base_lr: f64, warmup_ratio: f64, total_steps: u64) -> Self {
        Self {
            base_lr,
            warmup_steps: (warmup_ratio * total_steps as f64).ceil() as u64,
            total_steps,
        }
    }

    /// The learning rate of optimiser step `k` (0-based).
    pub fn lr(&self, k: u64) -> f64 {
        let factor = if k < self.warmup_steps {
            k as f64 / self.warmup_steps.max(1) as f64
        } else {
            let left = self.total_steps.saturating_sub(k) as f64;
            (left / self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64).max(0.0)
        };
        self.base_lr * factor
    }
}
