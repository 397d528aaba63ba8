//! The integration tests on `NdArray<f32>`, in one binary (one link against burn instead of one
//! per file): each former test file is a module beside this one, the shared helpers are `common`.
//!
//! burn 0.21 fixes one default float dtype per device type in a process, and `NdArray<f32>` and
//! `NdArray<f64>` share their device (see `common`): the f64 tests are the `f64` binary, and
//! `cached_memory` (a counting global allocator, nothing else may allocate meanwhile) is its own.

mod common;
mod gist;

mod cached_f32;
mod errors;
mod parity_f32;
