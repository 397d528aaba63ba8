//! The integration tests on `NdArray<f64>`, in one binary: a process of their own, since burn
//! 0.21 fixes one default float dtype per device and `NdArray<f32>` shares the device (see
//! `common` and `main.rs`).

mod common;
mod gist;

mod cached_f64;
mod gradcheck;
mod parity_f64;
