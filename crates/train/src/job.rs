//! The whole fine-tuning job as one call: load a model directory, read the training data,
//! evaluate the zero-shot model, optionally mine hard negatives, train, evaluate again, and save
//! a directory that sentence-transformers loads unchanged, with `report.json`,
//! `train_log.jsonl` and `train_plot.svg` beside it.
//!
//! ```
//! use burn_autodiff::Autodiff;
//! use burn_ndarray::NdArray;
//! use embedtune_data::Example;
//! use embedtune_encoder::{testing, SentenceEncoder, TransformerConfig};
//! use embedtune_train::{EvalSet, Finetune, TrainConfig, TrainData};
//!
//! type B = Autodiff<NdArray<f32>>;
//! # let tmp = tempfile::tempdir().unwrap();
//! # let model_dir = tmp.path().join("model");
//! # let tokenizer = testing::tiny_tokenizer(48).unwrap();
//! # let config = TransformerConfig::tiny_bert(tokenizer.vocab_size(), 32, 1, 4).unwrap();
//! # SentenceEncoder::<NdArray<f32>>::random(config, tokenizer, &Default::default())
//! #     .unwrap().save(&model_dir).unwrap();
//! # let beir = tmp.path().join("beir");
//! # std::fs::create_dir_all(beir.join("qrels")).unwrap();
//! # let line = |i: usize, what: &str| format!("{{\"_id\": \"{what}{i}\", \"text\": \"{what} number {i}\"}}\n");
//! # std::fs::write(beir.join("corpus.jsonl"), (0..16).map(|i| line(i, "answer")).collect::<String>()).unwrap();
//! # std::fs::write(beir.join("queries.jsonl"), (0..16).map(|i| line(i, "question")).collect::<String>()).unwrap();
//! # std::fs::write(beir.join("qrels/test.tsv"), (0..16).map(|i| format!("question{i}\tanswer{i}\t1\n")).collect::<String>()).unwrap();
//! // A model directory (e.g. e5-large-v2), (query, positive) examples, a BEIR test split.
//! let examples: Vec<Example> = (0..16)
//!     .map(|i| Example::pair(format!("question {i}"), format!("answer number {i}")))
//!     .collect();
//! let report = Finetune::new(&model_dir, TrainData::Examples(examples), tmp.path().join("run"))
//!     .eval(EvalSet::new(&beir, "test"))
//!     .settings(TrainConfig { batch_size: 8, lr: 1e-3, epochs: 2, progress_bar: false, ..Default::default() })
//!     .run::<B>(&Default::default())
//!     .unwrap();
//! assert_eq!(report.steps, 4);
//! let (before, after) = (report.before.unwrap(), report.after.unwrap());
//! assert!(before["recall@10"] >= 0.0 && after["recall@10"] <= 1.0);
//! // The saved directory loads again (as it does in sentence-transformers).
//! SentenceEncoder::<NdArray<f32>>::load(tmp.path().join("run"), &Default::default()).unwrap();
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::collections::{HashMap, VecDeque};

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use embedtune_core::write_file_atomically;
use embedtune_data::{read_examples, BeirDataset, Example, ReadOptions};
use embedtune_encoder::{Prompts, SentenceEncoder};
use embedtune_eval::{EvalConfig, IrEvaluator};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::log::{peak_memory_mib, EvalRecord};
use crate::mining::{mine_hard_negatives, write_grouped_jsonl, MiningConfig, MiningReport};
use crate::trainer::{check_output_dir, Best, Remine, Trainer};
use crate::{plot, IrEvaluation, TrainConfig};

/// Where the training examples come from.
#[derive(Debug, Clone)]
pub enum TrainData {
    /// Examples already in memory.
    Examples(Vec<Example>),
    /// A file in any format [`read_examples`] reads (grouped or flat JSONL, TSV, CSV).
    File(PathBuf),
    /// A BEIR directory: its grouped `{split}.jsonl` when there is one (it carries hard
    /// negatives), else the (query, relevant passage) pairs of `qrels/{split}.tsv`.
    Beir {
        /// The directory.
        dir: PathBuf,
        /// The qrels split to train on.
        split: String,
    },
}

impl TrainData {
    /// A path as a command line gives it: a directory is read as BEIR (split `split`), a file
    /// by its format.
    pub fn from_path(path: impl Into<PathBuf>, split: &str) -> Self {
        let path = path.into();
        if path.is_dir() {
            TrainData::Beir {
                dir: path,
                split: split.to_string(),
            }
        } else {
            TrainData::File(path)
        }
    }

    fn path(&self) -> Option<&Path> {
        match self {
            TrainData::Examples(_) => None,
            TrainData::File(p) | TrainData::Beir { dir: p, .. } => Some(p),
        }
    }

    fn read(self, opts: &ReadOptions) -> Result<Vec<Example>> {
        Ok(match self {
            TrainData::Examples(examples) => examples,
            TrainData::File(path) => read_examples(&path, opts)?.items,
            TrainData::Beir { dir, split } => {
                let grouped = dir.join(format!("{split}.jsonl"));
                if grouped.is_file() {
                    read_examples(&grouped, opts)?.items
                } else {
                    BeirDataset::load(&dir, opts)?.train_pairs(&split)?
                }
            }
        })
    }
}

/// The evaluation set: a BEIR directory and the qrels split to evaluate on.
#[derive(Debug, Clone)]
pub struct EvalSet {
    /// The BEIR directory (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv).
    pub dir: PathBuf,
    /// The split.
    pub split: String,
    /// Texts per forward pass while evaluating (and mining).
    pub batch_size: usize,
    /// Zero-shot metrics from an earlier run's report (the `evaluate` example's `--output`),
    /// instead of evaluating the starting model again; it must be of the same split.
    pub baseline: Option<PathBuf>,
}

impl EvalSet {
    /// Split `split` of the BEIR directory `dir`, 32 texts per forward pass.
    pub fn new(dir: impl Into<PathBuf>, split: &str) -> Self {
        Self {
            dir: dir.into(),
            split: split.to_string(),
            batch_size: 32,
            baseline: None,
        }
    }
}

/// The fine-tuning job; [`Finetune::run`] does it and returns its [`Report`].
#[derive(Debug, Clone)]
pub struct Finetune {
    /// The starting model's directory (sentence-transformers or plain transformers layout).
    pub model: PathBuf,
    /// The training data.
    pub data: TrainData,
    /// Evaluation before and after training (and every `settings.eval_steps`).
    pub eval: Option<EvalSet>,
    /// Where the model, `report.json`, `train_log.jsonl`, `train_plot.svg` and checkpoints go.
    pub output: PathBuf,
    /// Training settings (loss, LoRA, schedule, checkpoints…). Their prompts are replaced by
    /// [`Finetune::prompts`] when those are given, else by the model's own.
    pub settings: TrainConfig,
    /// Query / passage prompts; `None`: the model's own (`config_sentence_transformers.json`).
    pub prompts: Option<Prompts>,
    /// Mine hard negatives with the starting model from the evaluation set's corpus first
    /// (written to `mined_train.jsonl` in the output directory).
    pub mining: Option<MiningConfig>,
    /// Mine again with the model being trained before every this many epochs (needs
    /// `mining`; `Some(0)` is the same as `None`, no re-mining): each pair gets the new
    /// negatives when enough pass the filters, else keeps its previous ones (written to
    /// `mined_epoch{N}.jsonl`).
    pub remine_every: Option<u64>,
    /// The guide model of the GIST losses (default: the starting model, frozen).
    pub guide: Option<PathBuf>,
    /// Continue the run saved in this checkpoint directory.
    pub resume: Option<PathBuf>,
    /// Replace a previous run in the output directory.
    pub overwrite: bool,
    /// The device's name for the report (`cpu`, `cuda`).
    pub device_name: String,
}

/// What a job did, as written to `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The starting model's directory.
    pub model: PathBuf,
    /// The training data's path (`None` for examples given in memory).
    pub data: Option<PathBuf>,
    /// The evaluated split.
    pub eval_split: Option<String>,
    /// The device's name.
    pub device: String,
    /// The settings the run trained with.
    pub settings: TrainConfig,
    /// Training examples (after mining).
    pub examples: usize,
    /// Optimiser steps.
    pub steps: u64,
    /// Parameters trained.
    pub trainable_parameters: usize,
    /// Parameters of the model.
    pub total_parameters: usize,
    /// Metrics of the starting model.
    pub before: Option<BTreeMap<String, f64>>,
    /// Metrics after training.
    pub after: Option<BTreeMap<String, f64>>,
    /// The best evaluation during training, and where its model is.
    pub best: Option<Best>,
    /// What mining found.
    pub mining: Option<MiningReport>,
    /// What each re-mining found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remining: Vec<Remined>,
    /// Seconds in training steps.
    pub train_seconds: f64,
    /// Texts embedded per second of training-step time.
    pub texts_per_second: f64,
    /// Seconds for the whole job.
    pub wall_seconds: f64,
    /// The process's peak resident memory, where the platform reports it.
    pub peak_memory_mib: Option<f64>,
    /// The full evaluation reports before and after (per-query results, timings), for
    /// [`embedtune_eval::compare`]; not written to `report.json`.
    #[serde(skip)]
    pub evaluations: Option<(embedtune_eval::Report, embedtune_eval::Report)>,
}

/// The console summary: the before / after table of every metric (when the job evaluated),
/// then steps, time, throughput, peak memory and parameters trained.
impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some((before, after)) = &self.evaluations {
            writeln!(
                f,
                "retrieval on the {} split ({} queries, {} passages):",
                self.eval_split.as_deref().unwrap_or("evaluation"),
                after.queries,
                after.corpus_size
            )?;
            writeln!(f, "{}", embedtune_eval::compare(before, after))?;
        }
        writeln!(
            f,
            "{} steps in {:.1} s ({:.1} texts/s), wall {:.1} s, peak memory {} MiB, {} of {} parameters trained",
            self.steps,
            self.train_seconds,
            self.texts_per_second,
            self.wall_seconds,
            self.peak_memory_mib.map_or("?".into(), |p| format!("{p:.0}")),
            self.trainable_parameters,
            self.total_parameters
        )
    }
}

/// One re-mining of a run ([`Finetune::remine_every`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remined {
    /// The epoch (0-based) it was done before.
    pub epoch: u64,
    /// Examples whose negatives were replaced.
    pub replaced: usize,
    /// Examples that kept their negatives (too few new ones passed the filters).
    pub kept: usize,
    /// The miner's counts (`None` when a resumed run read the epoch's file back).
    pub report: Option<MiningReport>,
}

/// The job's [`Remine`]: mines the training pairs again from the evaluation corpus.
struct JobMiner {
    corpus: Vec<String>,
    config: MiningConfig,
    output: PathBuf,
    resumed: bool,
    records: Vec<Remined>,
}

impl<B: Backend> Remine<B> for JobMiner {
    fn remine(
        &mut self,
        model: &SentenceEncoder<B>,
        examples: &[Example],
        epoch: u64,
    ) -> Result<Vec<Example>> {
        let path = self.output.join(format!("mined_epoch{epoch}.jsonl"));
        if self.resumed && path.is_file() {
            let back = read_examples(&path, &ReadOptions::default())?.items;
            if back.len() == examples.len() {
                tracing::info!(
                    "re-mined examples of epoch {epoch} read back from {}",
                    path.display()
                );
                return Ok(back);
            }
        }
        let mut pairs: Vec<Example> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for e in examples {
            if seen.insert((e.anchor.as_str(), e.positive.as_str())) {
                pairs.push(Example::pair(e.anchor.clone(), e.positive.clone()));
            }
        }
        let config = MiningConfig {
            drop_short: false,
            seed: crate::trainer::mix(&[self.config.seed, epoch]),
            ..self.config.clone()
        };
        tracing::info!("re-mining hard negatives with the model after epoch {epoch}");
        let (mined, report) = mine_hard_negatives(model, &pairs, &self.corpus, &config)?;
        let mut fresh: HashMap<(&str, &str), VecDeque<&Vec<String>>> = HashMap::new();
        for m in &mined {
            fresh
                .entry((m.anchor.as_str(), m.positive.as_str()))
                .or_default()
                .push_back(&m.negatives);
        }
        let (mut replaced, mut kept) = (0, 0);
        let out: Vec<Example> = examples
            .iter()
            .map(|e| {
                let new = fresh
                    .get_mut(&(e.anchor.as_str(), e.positive.as_str()))
                    .and_then(VecDeque::pop_front)
                    .filter(|n| n.len() == e.negatives.len());
                let negatives = match new {
                    Some(n) => {
                        replaced += 1;
                        n.clone()
                    }
                    None => {
                        kept += 1;
                        e.negatives.clone()
                    }
                };
                Example {
                    anchor: e.anchor.clone(),
                    positive: e.positive.clone(),
                    negatives,
                }
            })
            .collect();
        write_grouped_jsonl(&path, &out)?;
        tracing::info!(
            "re-mined: {replaced} examples got new negatives, {kept} kept theirs; mean positive score {:.3}, mean negative {:.3} → {}",
            report.mean_positive_score, report.mean_negative_score, path.display()
        );
        self.records.push(Remined {
            epoch,
            replaced,
            kept,
            report: Some(report),
        });
        Ok(out)
    }
}

fn metrics(report: &embedtune_eval::Report) -> BTreeMap<String, f64> {
    report
        .metrics
        .iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

impl Finetune {
    /// A job training the model in `model` on `data` into `output`, with the default settings
    /// (MNRL, batch 32, one epoch, lr 2e-5), the model's prompts and no evaluation.
    pub fn new(model: impl Into<PathBuf>, data: TrainData, output: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            data,
            eval: None,
            output: output.into(),
            settings: TrainConfig::default(),
            prompts: None,
            mining: None,
            remine_every: None,
            guide: None,
            resume: None,
            overwrite: false,
            device_name: "cpu".into(),
        }
    }

    /// Evaluates on `eval` before and after training.
    pub fn eval(mut self, eval: EvalSet) -> Self {
        self.eval = Some(eval);
        self
    }

    /// Trains with `settings`.
    pub fn settings(mut self, settings: TrainConfig) -> Self {
        self.settings = settings;
        self
    }

    /// Uses these prompts instead of the model's.
    pub fn prompts(mut self, prompts: Prompts) -> Self {
        self.prompts = Some(prompts);
        self
    }

    /// Mines hard negatives first.
    pub fn mining(mut self, mining: MiningConfig) -> Self {
        self.mining = Some(mining);
        self
    }

    /// Trains with a named recipe's loss, epochs, learning rate (its LoRA rate when the
    /// settings already have LoRA: set them first), mining, re-mining and topic-aware batches
    /// (the other settings stay as they are; the mining seed is the settings' seed).
    pub fn recipe(mut self, recipe: crate::Recipe) -> Self {
        let r = recipe.settings();
        self.settings.lr = r.lr_for(self.settings.lora.is_some());
        self.settings.loss = r.loss;
        self.settings.epochs = r.epochs;
        self.mining = r.mining.map(|m| MiningConfig {
            seed: self.settings.seed,
            ..m
        });
        self.remine_every = r.remine_every;
        self.settings.topic_clusters = r.topic_clusters;
        self
    }

    /// Mines again with the model being trained before every `epochs`-th epoch (with
    /// [`Finetune::mining`]'s settings); 0 turns re-mining off.
    pub fn remine_every(mut self, epochs: u64) -> Self {
        self.remine_every = Some(epochs);
        self
    }

    /// Guides the GIST losses with the model in `dir` instead of the starting model.
    pub fn guide(mut self, dir: impl Into<PathBuf>) -> Self {
        self.guide = Some(dir.into());
        self
    }

    /// Continues the run saved in checkpoint `dir`.
    pub fn resume(mut self, dir: impl Into<PathBuf>) -> Self {
        self.resume = Some(dir.into());
        self
    }

    /// Lets the job replace a previous run in the output directory.
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Runs the job on `device`: checks the output directory before anything is computed
    /// (never the model's directory, never over another run unless allowed), then trains,
    /// saves and reports. With LoRA the adapters are also saved alone, in PEFT's format, in
    /// `adapter/`, and the saved model has them merged.
    pub fn run<B: AutodiffBackend>(self, device: &B::Device) -> Result<Report> {
        let started = Instant::now();
        let Finetune {
            model: model_dir,
            data,
            eval,
            output,
            mut settings,
            prompts,
            mining,
            remine_every,
            guide,
            resume,
            overwrite,
            device_name,
        } = self;
        let remine_every = remine_every.filter(|&n| n > 0);
        if remine_every.is_some() && mining.is_none() {
            return Err(TrainError::Config {
                name: "remine_every",
                reason: "re-mining needs mining settings".into(),
            });
        }
        check_output_dir(&output, Some(&model_dir), resume.is_some(), overwrite)?;
        let data_path = data.path().map(Path::to_path_buf);
        let opts = ReadOptions::default();
        let mut examples = data.read(&opts)?;
        let dataset = match &eval {
            Some(e) => Some(BeirDataset::load(&e.dir, &opts)?),
            None => None,
        };
        tracing::info!(
            "model {} | {} training examples | device {device_name}",
            model_dir.display(),
            examples.len()
        );

        let mut model = SentenceEncoder::<B>::load(&model_dir, device)?;
        let prompts = prompts.unwrap_or_else(|| model.prompts().clone());
        model.set_prompts(prompts.clone());
        if let Some(n) = settings.max_seq_len {
            model.set_max_seq_length(n)?;
        }
        settings.query_prompt = prompts.query.clone();
        settings.passage_prompt = prompts.passage.clone();

        let mut split_size = (0, 0);
        let mut evaluation = match (&eval, &dataset) {
            (Some(e), Some(ds)) => {
                let split = ds.ir_split(&e.split)?;
                split_size = (split.queries.len(), split.corpus.len());
                let config = EvalConfig {
                    batch_size: e.batch_size,
                    show_progress: settings.progress_bar,
                    ..Default::default()
                };
                let evaluator = IrEvaluator::new(split, config)?;
                Some(IrEvaluation::new(evaluator))
            }
            _ => None,
        };
        let before = match (evaluation.as_mut(), &eval) {
            (Some(ev), Some(set)) => Some(match &set.baseline {
                Some(path) => baseline(path, split_size, set)?,
                None => {
                    tracing::info!("evaluating the zero-shot model on the {} split", set.split);
                    ev.report(&model.valid())?
                }
            }),
            _ => None,
        };

        let mut mining_report = None;
        let mut miner = None;
        if let Some(mut cfg) = mining {
            let Some(ds) = &dataset else {
                return Err(TrainError::Config {
                    name: "mining",
                    reason: "mining searches the evaluation set's corpus: give an evaluation set"
                        .into(),
                });
            };
            if cfg.query_prompt.is_none() && cfg.passage_prompt.is_none() {
                cfg.query_prompt = prompts.query.clone();
                cfg.passage_prompt = prompts.passage.clone();
            }
            let corpus: Vec<String> = ds.corpus().iter().map(|d| d.text.clone()).collect();
            let (mined, report) = mine_hard_negatives(&model.valid(), &examples, &corpus, &cfg)?;
            let path = output.join("mined_train.jsonl");
            std::fs::create_dir_all(&output).map_err(crate::error::io_err(&output))?;
            write_grouped_jsonl(&path, &mined)?;
            tracing::info!(
                "mined negatives: {} pairs ({} repeated pairs left out), {} complete, {} short ({}); mean positive score {:.3}, mean negative {:.3} → {}",
                report.pairs, report.duplicate_pairs, report.complete, report.short,
                if cfg.drop_short { "left out" } else { "kept" },
                report.mean_positive_score, report.mean_negative_score,
                path.display()
            );
            examples = mined;
            mining_report = Some(report);
            if remine_every.is_some() {
                miner = Some(JobMiner {
                    corpus,
                    config: cfg,
                    output: output.clone(),
                    resumed: resume.is_some(),
                    records: Vec::new(),
                });
            }
        }

        let mut trainer = Trainer::<B>::new(settings.clone(), &output)?.overwrite(overwrite);
        if let Some(e) = evaluation.as_mut() {
            trainer = trainer.with_evaluator(e);
        }
        if let Some(dir) = &guide {
            let mut guide = SentenceEncoder::<B::InnerBackend>::load(dir, device)?;
            if let Some(n) = settings.max_seq_len {
                guide.set_max_seq_length(n)?;
            }
            trainer = trainer.with_guide(guide);
        }
        if let (Some(every), Some(m)) = (remine_every, miner.as_mut()) {
            trainer = trainer.with_remining(every, m);
        }
        let outcome = trainer.train(model, &examples, resume.as_deref())?;
        drop(trainer);
        let remining = miner.map(|m| m.records).unwrap_or_default();

        let final_model = outcome.model.valid();
        let final_model = if final_model.lora_config().is_some() {
            final_model.save_lora_adapter(output.join("adapter"))?;
            final_model.merge_lora()
        } else {
            final_model
        };
        final_model.save_into(&output)?;
        let after = evaluation
            .as_ref()
            .and_then(|e| e.reports.last().cloned())
            .filter(|_| before.is_some());

        // The plot starts from the zero-shot metrics.
        let mut plotted = outcome.evals.clone();
        if let Some(b) = &before {
            plotted.insert(
                0,
                EvalRecord {
                    step: 0,
                    metrics: metrics(b),
                    seconds: 0.0,
                },
            );
        }
        let svg = plot::render(
            &outcome.history,
            &plotted,
            &settings.metric_for_best,
            "fine-tuning",
        )?;
        write_file_atomically(&output.join("train_plot.svg"), svg.as_bytes())?;

        let (trainable, total) = outcome.parameters;
        let report = Report {
            model: model_dir,
            data: data_path,
            eval_split: eval.as_ref().map(|e| e.split.clone()),
            device: device_name,
            settings,
            examples: examples.len(),
            steps: outcome.steps,
            trainable_parameters: trainable,
            total_parameters: total,
            before: before.as_ref().map(metrics),
            after: after.as_ref().map(metrics),
            best: outcome.best,
            mining: mining_report,
            remining,
            train_seconds: outcome.train_seconds,
            texts_per_second: outcome.texts_per_second,
            wall_seconds: started.elapsed().as_secs_f64(),
            peak_memory_mib: peak_memory_mib(),
            evaluations: before.zip(after),
        };
        let report_path = output.join("report.json");
        let text =
            serde_json::to_string_pretty(&report).map_err(|source| TrainError::Serialize {
                path: report_path.clone(),
                source,
            })? + "\n";
        write_file_atomically(&report_path, text.as_bytes())?;
        Ok(report)
    }
}

/// The zero-shot report of an earlier evaluation, checked to be of the same split.
fn baseline(
    path: &Path,
    expected: (usize, usize),
    set: &EvalSet,
) -> Result<embedtune_eval::Report> {
    let report = embedtune_eval::Report::load(path)?;
    if (report.queries + report.skipped_queries, report.corpus_size) != expected {
        return Err(TrainError::Config {
            name: "baseline",
            reason: format!(
                "{}: it evaluated {} queries against {} passages, the {} split has {} and {}",
                path.display(),
                report.queries + report.skipped_queries,
                report.corpus_size,
                set.split,
                expected.0,
                expected.1
            ),
        });
    }
    tracing::info!("zero-shot metrics from {}", path.display());
    Ok(report)
}
