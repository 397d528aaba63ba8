//! CachedLoss (GradCache) on `Autodiff<NdArray<f32>>` (see `common/cached.rs`).

use crate::common::cached::*;

type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>;

#[test]
fn cached_mnrl_equals_plain_mnrl_f32() {
    cached_equals_plain::<B>(1e-4);
}

#[test]
fn embed_errors_and_bad_shapes_are_reported_f32() {
    embed_errors_and_bad_shapes_are_reported::<B>();
}
