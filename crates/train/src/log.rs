//! What a run reports as it goes: a progress bar, a JSON-lines log, and the records kept in
//! the trainer state.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::error::{io_err, Result};

/// One logged optimiser step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Steps done (1-based).
    pub step: u64,
    /// Epochs done, fractional.
    pub epoch: f64,
    /// Loss of the step (mean over its micro-batches).
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Texts embedded per second in this step.
    pub texts_per_second: f64,
    /// Seconds since the run (this call) started.
    pub elapsed_seconds: f64,
}

/// One evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Steps done when it ran.
    pub step: u64,
    /// Metrics by name.
    pub metrics: BTreeMap<String, f64>,
    /// Seconds it took.
    pub seconds: f64,
}

/// The JSON-lines log (`train_log.jsonl` in the output directory).
pub struct RunLog {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl RunLog {
    /// Opens the log: a new file, or appended to when resuming.
    pub fn create(dir: &Path, fresh: bool) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join("train_log.jsonl");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(!fresh)
            .truncate(fresh)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(Self { file, path })
    }

    /// Opens the log of a run resumed at `step`: records of later steps (written before the
    /// run was stopped, after its last checkpoint) and a line cut short by a kill are dropped,
    /// so that the log holds each step once; then appends.
    pub fn resume(dir: &Path, step: u64) -> Result<Self> {
        let path = dir.join("train_log.jsonl");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let kept: String = text
            .lines()
            .filter(|line| {
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get("record")?.get("step")?.as_u64())
                    .is_some_and(|s| s <= step)
            })
            .flat_map(|line| [line, "\n"])
            .collect();
        if kept.len() != text.len() {
            embedtune_core::write_file_atomically(&path, kept.as_bytes())?;
        }
        Self::create(dir, false)
    }

    fn line(&mut self, value: serde_json::Value) -> Result<()> {
        let mut text = value.to_string();
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .map_err(io_err(&self.path))?;
        self.file.flush().map_err(io_err(&self.path))
    }

    /// Appends a step record.
    pub fn step(&mut self, r: &StepRecord) -> Result<()> {
        self.line(serde_json::json!({ "type": "step", "record": r }))
    }

    /// Appends an evaluation record.
    pub fn eval(&mut self, r: &EvalRecord) -> Result<()> {
        self.line(serde_json::json!({ "type": "eval", "record": r }))
    }

    /// A progress bar over `total` steps, starting at `done`.
    pub fn progress_bar(&self, total: u64, done: u64, visible: bool) -> Progress {
        let bar = if visible {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        let style = ProgressStyle::with_template(
            "{spinner} train [{bar:30}] {pos}/{len} steps {msg} [{elapsed_precise} < {eta_precise}]",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_position(done);
        Progress { bar }
    }
}

/// The training progress bar: loss, learning rate, texts/s and ETA.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// Shows a finished step.
    pub fn update(&self, r: &StepRecord) {
        self.bar.set_position(r.step);
        self.bar.set_message(format!(
            "loss {:.4} lr {:.2e} {:.1} texts/s",
            r.loss, r.lr, r.texts_per_second
        ));
    }

    /// Hides the bar while `f` runs (e.g. an evaluation with its own bar).
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        self.bar.suspend(f)
    }

    /// Leaves the bar as it is (on error).
    pub fn abandon(&self) {
        self.bar.abandon();
    }

    /// Completes the bar.
    pub fn finish(&self) {
        self.bar.finish();
    }
}

/// Peak resident memory of this process in MiB (`VmHWM` of `/proc/self/status`), where the
/// platform reports it.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
