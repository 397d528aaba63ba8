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
#![warn(missing_docs)]

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::AutodiffBackend;

pub mod model_cache;
pub use model_cache::{default_model, ModelError};

/// The CPU backend: burn-ndarray (SIMD, multi-threaded) under autodiff.
pub type CpuBackend = burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>;

/// The CUDA backend under autodiff (with the `cuda` feature).
#[cfg(feature = "cuda")]
pub type CudaBackend = burn_autodiff::Autodiff<burn_cuda::Cuda<f32, i32>>;

/// Where to run (`--device cpu|cuda` on every example).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// burn-ndarray on the CPU.
    Cpu,
    /// burn-cuda on the first GPU (needs the `cuda` feature).
    #[value(alias = "gpu")]
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
        Device::Cuda => {
            Err("this build has no CUDA support: rebuild with `--features cuda`".into())
        }
    }
}

/// mimalloc, re-exported for [`use_mimalloc!`].
pub use mimalloc::MiMalloc;

/// Makes mimalloc the binary's global allocator: the one place the examples and the benches
/// that run the encoder set it up. mimalloc keeps freed tensor buffers for reuse, where the
/// system allocator returns them to the kernel and pays page faults to get them back
/// (BENCHMARKS.md); [`retain_freed_memory`] tells it to keep them longer.
#[macro_export]
macro_rules! use_mimalloc {
    () => {
        #[global_allocator]
        static GLOBAL_ALLOCATOR: $crate::MiMalloc = $crate::MiMalloc;
    };
}

/// mimalloc's index of its `purge_delay` option (the same in its v2 and v3 headers;
/// `libmimalloc-sys` is pinned in Cargo.toml).
const MI_OPTION_PURGE_DELAY: i32 = 15;

/// Tells mimalloc (the examples' and benchmarks' global allocator) to keep the memory the
/// process frees for reuse instead of returning it to the OS 10 ms later, unless the user set
/// `MIMALLOC_PURGE_DELAY` themselves.
///
/// A training step allocates and frees gigabytes of activation buffers; returned memory comes
/// back as fresh pages that the kernel must zero first, which measured 35–40 % of a MiniLM
/// training step on the CPU (BENCHMARKS.md). The cost is that the process's resident memory
/// stays at its peak. Harmless when mimalloc is not the global allocator.
pub fn retain_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets one integer option; called before the examples start their worker threads.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// Prints the libraries' `tracing` events on stderr as plain lines (`warning: ` / `error: `
/// before warnings and errors), at the level `EMBEDTUNE_LOG` names (`error`, `warn`, `info`,
/// `debug`, `trace`; default `info`). Does nothing if a subscriber is already installed.
pub fn init_logging() {
    use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
    use tracing_subscriber::registry::LookupSpan;

    struct Plain;
    impl<S, N> FormatEvent<S, N> for Plain
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, N>,
            mut writer: Writer<'_>,
            event: &tracing::Event<'_>,
        ) -> fmt::Result {
            match *event.metadata().level() {
                tracing::Level::ERROR => write!(writer, "error: ")?,
                tracing::Level::WARN => write!(writer, "warning: ")?,
                _ => {}
            }
            ctx.field_format().format_fields(writer.by_ref(), event)?;
            writeln!(writer)
        }
    }
    let level = std::env::var("EMBEDTUNE_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::level_filters::LevelFilter>().ok())
        .unwrap_or(tracing::level_filters::LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .event_format(Plain)
        .try_init();
}

/// An example's `main`: runs `job` on `device` and turns an error into a message on stderr and
/// a failing exit status (after [`retain_freed_memory`] and [`init_logging`]).
pub fn main_on<J: OnBackend<Output = Result<(), String>>>(
    device: Device,
    job: J,
) -> std::process::ExitCode {
    retain_freed_memory();
    init_logging();
    match run_on(device, job).and_then(|r| r) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The model directory a `--model` flag names, or [`default_model`] without one. A value that
/// is not a local directory (e.g. a Hugging Face id) is an error saying how to get the files:
/// the examples run offline.
pub fn model_dir(arg: Option<&std::path::Path>) -> Result<std::path::PathBuf, String> {
    match arg {
        Some(p) if p.is_dir() => Ok(p.to_path_buf()),
        Some(p) => Err(format!(
            "model {} is not a local directory. Hugging Face model ids are not downloaded by the \
             examples (they run offline): download the model with `huggingface-cli download` or \
             sentence-transformers and pass its directory",
            p.display()
        )),
        None => default_model().map_err(|e| e.to_string()),
    }
}

/// The shared assets folder named by `EMBEDTUNE_SHARED`, if set and present.
pub fn shared_dir() -> Option<std::path::PathBuf> {
    let p = std::path::PathBuf::from(std::env::var_os("EMBEDTUNE_SHARED")?);
    p.is_dir().then_some(p)
}

/// Where the default model (all-MiniLM-L6-v2) is cached: `$EMBEDTUNE_CACHE`, else
/// `$XDG_CACHE_HOME/embedtune`, else `~/.cache/embedtune`.
pub fn cache_dir() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("EMBEDTUNE_CACHE") {
        return p.into();
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return std::path::PathBuf::from(p).join("embedtune");
    }
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| ".".into());
    home.join(".cache").join("embedtune")
}
