//! The integration tests, in one binary (one link against burn instead of one per file): each
//! former test file is a module beside this one, the shared helpers are `common`.

mod common;

mod evaluator;
mod metrics;
mod mixed_script;
mod reference;
