//! What every embedtune crate shares, with no deep-learning dependency: the [`Embeddings`]
//! matrix (the encoder's output, the index's and evaluator's input) and atomic, crash-safe
//! writes of files and directories (models, checkpoints, indexes, reports).
//!
//! ```
//! use embedtune_core::{write_dir_atomically, write_file_atomically, Embeddings, FsError};
//!
//! let dir = tempfile::tempdir()?;
//! let vectors = Embeddings::from_rows(&[[0.6f32, 0.8], [1.0, 0.0]], 2)?;
//! let bytes: Vec<u8> = vectors.as_slice().iter().flat_map(|x| x.to_le_bytes()).collect();
//! // Readers see the old file or the new one, never half of one.
//! write_file_atomically(&dir.path().join("vectors.f32"), &bytes)?;
//! // A directory is replaced in one step, or not at all if `fill` fails.
//! write_dir_atomically(&dir.path().join("model"), |w| {
//!     w.bytes("weights.bin", &bytes)?;
//!     w.json("config.json", &serde_json::json!({ "dim": vectors.dim() }))
//! })?;
//! assert_eq!(std::fs::read(dir.path().join("model/weights.bin"))?, bytes);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod embeddings;
mod fs;

pub use embeddings::{Embeddings, ShapeError};
pub use fs::{
    recover_interrupted, sync_dir, write_dir_atomically, write_file_atomically, write_file_with,
    write_into_dir, DirWriter, FsError,
};
