//! The integration tests, in one binary (one link instead of one per file): each
//! former test file is a module beside this one, the shared helpers are `common`.

mod common;

mod bad_input;
mod beir;
mod formats;
mod mixed_script;
mod sampler;
mod stats;
