//! Parity with sentence-transformers on `Autodiff<NdArray<f32>>`: loss and gradients within 1e-5
//! relative (see `common/parity.rs`).

#[test]
fn parity_f32() {
    crate::common::parity::check::<burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>>(
        "f32", 1e-5,
    );
}

#[test]
fn gist_parity_f32() {
    crate::gist::check::<burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>>("f32", 1e-5);
}

#[test]
fn gist_errors() {
    crate::gist::errors::<burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>>();
}
