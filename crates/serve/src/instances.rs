//! The server instantiated for burn's CPU backend, for faster debug builds of the crates that
//! use it (feature `cpu-instances`, debug builds only; see `embedtune-encoder`'s module of the
//! same name). Nothing here runs; [`cpu`] exists to be compiled.

use burn_ndarray::NdArray;
use embedtune_encoder::SentenceEncoder;

use crate::{ServeConfig, ServeError, Server};

/// Compiles the instances (never called).
#[doc(hidden)]
pub fn cpu(
    model: SentenceEncoder<NdArray<f32>>,
    config: ServeConfig,
) -> Result<Server, ServeError> {
    Server::new(model, config)
}
