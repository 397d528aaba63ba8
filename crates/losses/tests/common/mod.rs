//! Helpers shared by the integration tests.
//!
//! burn 0.21 keeps one default float dtype per device type, and `NdArray<f32>` and `NdArray<f64>`
//! share theirs: the first backend to touch the CPU device in a process fixes it. So every test
//! binary uses only one of them (hence the `_f32` / `_f64` pairs).
#![allow(dead_code)]

pub mod cached;
pub mod parity;

use burn::tensor::{backend::Backend, Tensor, TensorData};

/// Builds a `[rows, cols]` tensor from row-major values.
pub fn tensor2<B: Backend>(
    values: &[f64],
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [rows, cols]), device)
}

/// Builds a `[n]` tensor.
pub fn tensor1<B: Backend>(values: &[f64], device: &B::Device) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

/// All values of a tensor as f64, row-major.
pub fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// `max |a - b| / max |b|`: the error relative to the largest reference entry (for a scalar,
/// the usual relative error).
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    if scale == 0.0 {
        diff
    } else {
        diff / scale
    }
}

/// Deterministic standard-normal-ish values (SplitMix64 + Box-Muller), so tests do not depend on
/// a backend's RNG.
pub fn randn(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let u1 = next().max(1e-300);
            let u2 = next();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect()
}
