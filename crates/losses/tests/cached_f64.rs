//! CachedLoss (GradCache) on `Autodiff<NdArray<f64>>` (see `common/cached.rs`).

use crate::common::cached::*;

type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>;

#[test]
fn cached_mnrl_equals_plain_mnrl_f64() {
    cached_equals_plain::<B>(1e-10);
}

#[test]
fn cached_wraps_any_loss_matryoshka_and_cosent_f64() {
    cached_wraps_any_loss_matryoshka_and_cosent::<B>();
}

#[test]
fn dropout_needs_the_seed_hook_f64() {
    dropout_needs_the_seed_hook::<B>();
}
