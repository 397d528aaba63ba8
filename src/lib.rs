//! `embedtune`: the examples and benchmarks of the workspace, and the small piece they share,
//! choosing a burn backend from a `--device cpu|cuda` flag.
//!
//! The reusable parts live in their own crates: `embedtune-encoder`, `embedtune-losses`,
//! `embedtune-data`, `embedtune-index`, `embedtune-eval` and `embedtune-train`.
//!
//! ```
//! use burn::tensor::backend::AutodiffBackend;
//! use embedtune::{run_on, Device, OnBackend};
//!
//! struct Hello;
//! impl OnBackend for Hello {
//!     type Output = String;
//!     fn run<B: AutodiffBackend>(self, _device: B::Device) -> String {
//!         std::any::type_name::<B>().to_string()
//!     }
//! }
//! let name = run_on(Device::Cpu, Hello).unwrap();
//! assert!(name.contains("NdArray"));
//! ```

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::AutodiffBackend;

/// The CPU backend: burn-ndarray (SIMD, multi-threaded) under autodiff.
pub type CpuBackend = burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>;

/// The CUDA backend under autodiff (with the `cuda` feature).
#[cfg(feature = "cuda")]
pub type CudaBackend = burn_autodiff::Autodiff<burn_cuda::Cuda<f32, i32>>;

/// Where to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// burn-ndarray on the CPU.
    Cpu,
    /// burn-cuda on the first GPU (needs the `cuda` feature).
    Cuda,
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            other => Err(format!("unknown device {other:?}: expected cpu or cuda")),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
        })
    }
}

/// A job generic over the backend; [`run_on`] picks the backend at run time.
pub trait OnBackend {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B` (an autodiff backend; `B::InnerBackend` serves inference).
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output;
}

/// Runs `job` on the backend `device` names. Fails when CUDA is asked for in a build without
/// the `cuda` feature.
pub fn run_on<J: OnBackend>(device: Device, job: J) -> Result<J::Output, String> {
    match device {
        Device::Cpu => Ok(job.run::<CpuBackend>(Default::default())),
        #[cfg(feature = "cuda")]
        Device::Cuda => Ok(job.run::<CudaBackend>(burn_cuda::CudaDevice::default())),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => Err("this build has no CUDA support: rebuild with `--features cuda`".into()),
    }
}

/// The shared assets folder named by `EMBEDTUNE_SHARED`, if set and present.
pub fn shared_dir() -> Option<std::path::PathBuf> {
    let p = std::path::PathBuf::from(std::env::var_os("EMBEDTUNE_SHARED")?);
    p.is_dir().then_some(p)
}
