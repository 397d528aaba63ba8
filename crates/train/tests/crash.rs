//! Crash test: a small fine-tuning job runs as a child process (this test binary, re-run on
//! [`crash_child`]) and is killed with SIGKILL at random moments, saves included; each time the
//! next child resumes from the newest checkpoint. After every kill the starting model and every
//! completed checkpoint must be intact (byte-identical to an uninterrupted run's) and loadable,
//! and the run that finally completes must end with weights bit-identical to the
//! uninterrupted run's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use burn::module::AutodiffModule;
use embedtune_encoder::SentenceEncoder;
use embedtune_train::checkpoint::{self, Checkpoint, Fingerprints};
use embedtune_train::{TrainConfig, Trainer};

use super::{examples, serial, tiny_model, AD};

const CHILD_ENV: &str = "EMBEDTUNE_CRASH_CHILD";
/// Kill points to try in all; each round (a fresh output directory) lasts until a child
/// completes the run, and rounds go on until this many kills were made.
const KILLS: usize = 30;
const MAX_ROUNDS: usize = 60;

fn config() -> TrainConfig {
    TrainConfig {
        batch_size: 8,
        lr: 1e-3,
        epochs: 3,
        save_steps: Some(1),
        save_total_limit: 1000, // keep every checkpoint, to compare them all
        progress_bar: false,
        ..Default::default()
    }
}

/// The job the child runs: resume from the newest checkpoint in `output` if there is one,
/// train to the end, save the final model into `output` (beside the log, as `finetune_e5`
/// does) and into `output/final`, then write `output/done`.
fn job(base: &Path, output: &Path) {
    let model = SentenceEncoder::<AD>::load(base, &Default::default()).expect("base loads");
    let latest = checkpoint::latest(&output.join("checkpoints"));
    let outcome = Trainer::<AD>::new(config(), output)
        .expect("trainer")
        .overwrite(latest.is_none())
        .train(model, &examples(), latest.as_deref())
        .expect("train");
    let valid = outcome.model.valid();
    valid.save_into(output).expect("save into the output");
    valid.save(output.join("final")).expect("save final");
    embedtune_core::write_file_atomically(&output.join("done"), b"done").expect("done");
}

/// Runs [`job`] when started by [`crash_test`] (and does nothing in a normal test run).
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (base, output) = spec.split_once('\n').expect("base\\noutput");
    job(Path::new(base), Path::new(output));
}

fn spawn(base: &Path, output: &Path, log: &Path) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("child log");
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["crash::crash_child", "--exact", "--test-threads", "1"])
        .env(
            CHILD_ENV,
            format!("{}\n{}", base.display(), output.display()),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn the child")
}

/// Every file under `dir` with its bytes, by relative path.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("ls") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under dir").to_path_buf();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

/// Names of interrupted-save leftovers (`.{name}.tmp-…` / `.{name}.old-…`) under `dir`.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && (name.contains(".tmp-") || name.contains(".old-")) {
                out.push(e.path().display().to_string());
            } else if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

fn step_dirs(output: &Path) -> Vec<(u64, PathBuf)> {
    checkpoint::steps(&output.join("checkpoints")).unwrap_or_default()
}

/// A small deterministic generator for the kill moments (xorshift64*).
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn killed_at_random_moments_a_resumed_run_loses_nothing_and_ends_bit_identical() {
    let _serial = serial();
    let root = tempfile::tempdir().expect("tmp");
    let base = root.path().join("base");
    tiny_model().valid().save(&base).expect("base");
    let base_files = tree(&base);
    let fingerprints = Fingerprints::of(
        &SentenceEncoder::<AD>::load(&base, &Default::default()).expect("load"),
        &examples(),
    );
    let child_log = root.path().join("children.log");
    let failure = |what: String| -> ! {
        let log = std::fs::read_to_string(&child_log).unwrap_or_default();
        let tail: String = log
            .chars()
            .rev()
            .take(4000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!("{what}\n--- children's stderr (tail) ---\n{tail}");
    };

    // The uninterrupted run.
    let reference = root.path().join("reference");
    let t0 = Instant::now();
    let status = spawn(&base, &reference, &child_log).wait().expect("wait");
    let full_time = t0.elapsed();
    if !status.success() || !reference.join("done").is_file() {
        failure(format!("the uninterrupted child failed: {status}"));
    }
    let reference_steps = step_dirs(&reference);
    let reference_final = tree(&reference.join("final"));
    let reference_log = std::fs::read_to_string(reference.join("train_log.jsonl")).expect("log");
    assert!(reference_steps.len() >= 9, "{reference_steps:?}");

    let mut rng = Rng(0x5eed_c0ff_ee15_900d);
    let (mut kills, mut during_save, mut resumes) = (0usize, 0usize, 0usize);
    let total = reference_steps.len() as f64;
    let mut rounds = 0;
    while kills < KILLS && rounds < MAX_ROUNDS {
        let round = rounds;
        rounds += 1;
        let output = root.path().join(format!("run-{round}"));
        let mut final_saved = false;
        loop {
            let before = leftovers(&output);
            let mut child = spawn(&base, &output, &child_log);
            resumes += 1;
            let finished = {
                // Anywhere in about 120 % of the time the rest of the run would take (start-up
                // included), so that kills land all along the run, saves included.
                let done = step_dirs(&output).last().map_or(0, |(s, _)| *s) as f64;
                let remaining = 0.15 + 0.85 * (1.0 - done / total);
                let wait = full_time.mul_f64(1.2 * remaining * rng.unit());
                std::thread::sleep(wait);
                match child.try_wait().expect("try_wait") {
                    Some(status) => Some(status),
                    None => {
                        child.kill().expect("SIGKILL");
                        child.wait().expect("reap");
                        kills += 1;
                        None
                    }
                }
            };
            // After every kill or exit: the starting model untouched, every completed
            // checkpoint identical to the uninterrupted run's and loadable.
            if tree(&base) != base_files {
                failure(format!("round {round}: the starting model changed"));
            }
            if finished.is_none() && leftovers(&output).iter().any(|l| !before.contains(l)) {
                during_save += 1; // this kill interrupted a save
            }
            for (step, dir) in step_dirs(&output) {
                let want = reference_steps
                    .iter()
                    .find(|(s, _)| *s == step)
                    .unwrap_or_else(|| failure(format!("unexpected checkpoint step-{step}")));
                let (got, want_tree) = (tree(&dir), tree(&want.1));
                // trainer_state.json holds timings; every other file must match byte for byte.
                let strip = |t: Vec<(PathBuf, Vec<u8>)>| -> Vec<(PathBuf, Vec<u8>)> {
                    t.into_iter()
                        .filter(|(p, _)| !p.ends_with("trainer_state.json"))
                        .collect()
                };
                if strip(got) != strip(want_tree) {
                    failure(format!(
                        "round {round}: step-{step} differs from the uninterrupted run's"
                    ));
                }
                let model = SentenceEncoder::<AD>::load(&base, &Default::default()).expect("base");
                if let Err(e) = Checkpoint::<AD>::load(
                    &dir,
                    &model,
                    &config(),
                    &fingerprints,
                    &Default::default(),
                ) {
                    failure(format!("round {round}: step-{step} does not load: {e}"));
                }
            }
            // A saved model is never lost: once `final` existed it stays, whole. The model
            // saved into the output directory (beside the log) loads — an interrupted save is
            // completed first — with the uninterrupted run's files.
            if output.join("final").exists() {
                final_saved = true;
                if tree(&output.join("final")) != reference_final {
                    failure(format!("round {round}: final/ differs after a kill"));
                }
            } else if final_saved {
                failure(format!("round {round}: a kill lost the saved final/ model"));
            }
            if output.join("model.safetensors").exists() {
                SentenceEncoder::<AD>::load(&output, &Default::default())
                    .unwrap_or_else(|e| failure(format!("round {round}: output model: {e}")));
                for name in ["model.safetensors", "config.json", "modules.json"] {
                    let read = |d: &Path| std::fs::read(d.join(name)).ok();
                    if read(&output) != read(&reference) {
                        failure(format!("round {round}: output {name} differs after a kill"));
                    }
                }
            }
            match finished {
                Some(status) if status.success() => break,
                Some(status) => failure(format!("round {round}: a child failed: {status}")),
                None => continue,
            }
        }
        assert!(output.join("done").is_file());
        assert_eq!(
            tree(&output.join("final")),
            reference_final,
            "round {round}: the final model differs from the uninterrupted run's"
        );
        let model_file = |d: &Path| std::fs::read(d.join("model.safetensors")).expect("model");
        assert_eq!(model_file(&output), model_file(&reference));
        // The log holds each step once (timings aside).
        let steps = |log: &str| -> Vec<u64> {
            log.lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).expect("json")["record"]["step"]
                        .as_u64()
                        .expect("step")
                })
                .collect()
        };
        let log = std::fs::read_to_string(output.join("train_log.jsonl")).expect("log");
        assert_eq!(steps(&log), steps(&reference_log), "round {round}");
        assert_eq!(leftovers(&output), Vec::<String>::new(), "round {round}");
    }
    eprintln!(
        "crash test: {kills} kills at random moments ({during_save} interrupted a save), \
         {resumes} child runs, {rounds} runs completed bit-identical; an uninterrupted run \
         takes {:.2} s",
        full_time.as_secs_f64()
    );
    assert!(kills >= KILLS, "only {kills} kills in {rounds} rounds");
}
