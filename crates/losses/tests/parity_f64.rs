//! Parity with sentence-transformers on `Autodiff<NdArray<f64>>`: loss and gradients within 1e-12
//! relative (see `common/parity.rs`).

#[test]
fn parity_f64() {
    crate::common::parity::check::<burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>>(
        "f64", 1e-12,
    );
}

#[test]
fn gist_parity_f64() {
    crate::gist::check::<burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>>("f64", 1e-12);
}

#[test]
fn gist_errors_f64() {
    crate::gist::errors::<burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>>();
}
