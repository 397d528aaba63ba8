//! The fine-tuning loop.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use embedtune_data::{BatchSampler, Example};
use embedtune_encoder::{EncodeOptions, SentenceEncoder};
use embedtune_losses::{CachedLoss, EmbeddingLoss, LossError, MultipleNegativesRankingLoss};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Checkpoint, Fingerprints, TrainerState};
use crate::config::{LossConfig, TrainConfig};
use crate::error::{Result, TrainError};
use crate::log::{EvalRecord, RunLog, StepRecord};
use crate::optim::{clip_grad_norm, grad_norm, scale_grads, AdamW, LinearSchedule};
use crate::topics::anchor_topics;

/// Evaluates a model during training (e.g. the eval crate's IR evaluator on a dev split).
pub trait Evaluate<B: Backend> {
    /// Metrics of `model`, by name (`ndcg@10`, `recall@10`, …); higher is better.
    fn evaluate(&mut self, model: &SentenceEncoder<B>) -> Result<BTreeMap<String, f64>>;
}

/// Replaces the training examples between epochs (re-mining hard negatives with the model
/// being trained, ANCE-style): see [`Trainer::with_remining`].
pub trait Remine<B: Backend> {
    /// The examples to train on from epoch `epoch` (0-based) on, given the current `examples`
    /// and the model as it is after the previous epoch. When a run resumes, it is called again
    /// for every re-mining epoch up to the resumed one (with the resumed model): it must then
    /// return what it returned the first time (the job's miner reads back the file it wrote).
    fn remine(
        &mut self,
        model: &SentenceEncoder<B>,
        examples: &[Example],
        epoch: u64,
    ) -> Result<Vec<Example>>;
}

/// The best evaluation seen, and where its model was saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// Optimiser step of the evaluation.
    pub step: u64,
    /// Value of the chosen metric.
    pub value: f64,
    /// The saved model directory.
    pub path: PathBuf,
}

/// What a finished run returns.
pub struct TrainOutcome<B: AutodiffBackend> {
    /// The model after the last step (LoRA adapters still attached when training LoRA).
    pub model: SentenceEncoder<B>,
    /// Optimiser steps taken in total (including those before a resume).
    pub steps: u64,
    /// Every logged step.
    pub history: Vec<StepRecord>,
    /// Every evaluation.
    pub evals: Vec<EvalRecord>,
    /// The best evaluation by `metric_for_best`.
    pub best: Option<Best>,
    /// Seconds spent in this call (training and evaluations).
    pub seconds: f64,
    /// Seconds spent in training steps only.
    pub train_seconds: f64,
    /// Texts embedded per second of training-step time.
    pub texts_per_second: f64,
    /// (trainable, total) parameters.
    pub parameters: (usize, usize),
}

/// What one optimiser step ([`Trainer::step`]) measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// The loss (the mean over accumulated micro-batches).
    pub loss: f64,
    /// The gradients' global L2 norm before clipping.
    pub grad_norm: f64,
    /// Texts embedded.
    pub texts: usize,
}

/// Runs fine-tuning; see [`TrainConfig`] for the settings.
pub struct Trainer<'e, B: AutodiffBackend> {
    config: TrainConfig,
    output_dir: PathBuf,
    evaluator: Option<&'e mut dyn Evaluate<B::InnerBackend>>,
    /// Stop after this many optimiser steps of this call (tests of resuming).
    stop_after: Option<u64>,
    /// A fresh run may remove a previous run's checkpoints, best model and log.
    overwrite: bool,
    /// The guide model of the GIST losses (default: the starting model, frozen).
    guide: Option<SentenceEncoder<B::InnerBackend>>,
    /// Every this many epochs, the examples are replaced by the miner's.
    remining: Option<(u64, &'e mut dyn Remine<B::InnerBackend>)>,
    /// The topic of each anchor for topic-aware batches ([`TrainConfig::topic_clusters`]).
    topics: Option<HashMap<String, u32>>,
}

/// A stable 64-bit mix of several numbers (splitmix64 over each), for derived seeds.
pub(crate) fn mix(values: &[u64]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for v in values {
        h ^= v
            .wrapping_add(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(h << 6)
            .wrapping_add(h >> 2);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h = z ^ (z >> 31);
    }
    h
}

impl<'e, B: AutodiffBackend> Trainer<'e, B> {
    /// A trainer writing checkpoints, logs and the best model under `output_dir`.
    pub fn new(config: TrainConfig, output_dir: impl Into<PathBuf>) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            output_dir: output_dir.into(),
            evaluator: None,
            stop_after: None,
            overwrite: false,
            guide: None,
            remining: None,
            topics: None,
        })
    }

    /// Topic-aware batches with these topics (anchor text → topic) instead of clustering the
    /// anchors with the starting model as [`TrainConfig::topic_clusters`] does. An anchor
    /// missing from the map (one a miner added) is put in a topic of its own kind: all such
    /// anchors share one topic.
    pub fn with_topics(mut self, topics: HashMap<String, u32>) -> Self {
        self.topics = Some(topics);
        self
    }

    /// Before every `every`-th epoch (epochs `every`, `2·every`, …), replaces the training
    /// examples by what `miner` returns for the model trained so far. The number of steps (and
    /// so the learning-rate schedule) is fixed at the start from the first examples; an epoch
    /// of re-mined examples trains the batches the sampler yields for them, and the run stops
    /// at that number of steps.
    pub fn with_remining(mut self, every: u64, miner: &'e mut dyn Remine<B::InnerBackend>) -> Self {
        self.remining = Some((every.max(1), miner));
        self
    }

    /// The guide of the GIST losses ([`LossConfig::Gist`], [`LossConfig::CachedGist`]): it
    /// embeds every batch once, without gradients, and its scores decide which in-batch and
    /// hard negatives are left out. Without it [`Trainer::train`] uses the starting model,
    /// frozen. Its prompts are the training's.
    pub fn with_guide(mut self, guide: SentenceEncoder<B::InnerBackend>) -> Self {
        self.guide = Some(guide);
        self
    }

    /// Lets a fresh run (no `resume`) replace a previous run's checkpoints, best model and log
    /// in the output directory. Without it such a run is refused with
    /// [`TrainError::OutputNotEmpty`], so that nothing of the earlier run is lost or mixed in.
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Evaluates with `evaluator` every `eval_steps` and at the end.
    pub fn with_evaluator(mut self, evaluator: &'e mut dyn Evaluate<B::InnerBackend>) -> Self {
        self.evaluator = Some(evaluator);
        self
    }

    /// Stops after `steps` optimiser steps of this call, as if the process were killed after a
    /// checkpoint (for testing [`Trainer::train`]'s `resume`).
    pub fn stop_after(mut self, steps: u64) -> Self {
        self.stop_after = Some(steps);
        self
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Prepares the examples: every example keeps the same number of hard negatives (the
    /// first `num_negatives`, or as many as the example with the fewest has).
    fn prepare(&self, examples: &[Example]) -> Result<Vec<Example>> {
        if examples.is_empty() {
            return Err(TrainError::Config {
                name: "data",
                reason: "no training examples".into(),
            });
        }
        let fewest = examples
            .iter()
            .map(|e| e.negatives.len())
            .min()
            .unwrap_or(0);
        let k = match self.config.num_negatives {
            None => fewest,
            Some(k) => {
                if let Some(i) = examples.iter().position(|e| e.negatives.len() < k) {
                    return Err(TrainError::Config {
                        name: "num_negatives",
                        reason: format!(
                            "example {i} has {} hard negatives, fewer than the {k} asked for",
                            examples[i].negatives.len()
                        ),
                    });
                }
                k
            }
        };
        if matches!(self.config.loss, LossConfig::Triplet { .. }) && k == 0 {
            return Err(TrainError::Config {
                name: "loss",
                reason: "the triplet loss needs a hard negative for every example".into(),
            });
        }
        for (i, e) in examples.iter().enumerate() {
            if e.anchor.trim().is_empty() || e.positive.trim().is_empty() {
                return Err(TrainError::Config {
                    name: "data",
                    reason: format!("example {i} has an empty anchor or positive"),
                });
            }
        }
        Ok(examples
            .iter()
            .map(|e| Example {
                anchor: e.anchor.clone(),
                positive: e.positive.clone(),
                negatives: e.negatives[..k].to_vec(),
            })
            .collect())
    }

    /// Trains `model` on `examples`. With `resume`, continues the run saved in that checkpoint
    /// directory (same settings and data) and reaches the same weights as an uninterrupted run.
    pub fn train(
        &mut self,
        model: SentenceEncoder<B>,
        examples: &[Example],
        resume: Option<&Path>,
    ) -> Result<TrainOutcome<B>> {
        let started = Instant::now();
        let cfg = self.config.clone();
        let mut examples = self.prepare(examples)?;
        let device = model.device();
        let mut model = model;
        if let Some(n) = cfg.max_seq_len {
            model.set_max_seq_length(n)?;
        }

        if let Some(source) = model.source() {
            check_overlap(&self.output_dir, source)?;
        }
        if cfg.loss.gist().is_some() && self.guide.is_none() {
            // The starting model (before adapters and before any resumed weights), frozen.
            self.guide = Some(model.valid());
        }
        if let (Some(k), None) = (cfg.topic_clusters, &self.topics) {
            // Clustered with the starting model (before adapters and resumed weights), so a
            // resumed run gets the same topics.
            let topics = anchor_topics(
                &model.valid(),
                &examples,
                k,
                mix(&[cfg.seed, 0x70_91c5]),
                cfg.query_prompt.clone(),
            )?;
            let mut sizes = vec![0usize; k];
            topics.values().for_each(|&t| sizes[t as usize] += 1);
            tracing::info!("topic-aware batches: {k} topics of the anchors, sizes {sizes:?}");
            self.topics = Some(topics);
        }
        if resume.is_none() {
            self.claim_output_dir()?;
        }

        let sampler = BatchSampler::new(cfg.batch_size)?
            .seed(cfg.seed)
            .no_duplicates(cfg.no_duplicates);
        let topics = self.topics.clone();
        let epoch_batches = |examples: &[Example], epoch: u64| -> Result<Vec<Vec<usize>>> {
            match &topics {
                Some(t) => {
                    let ids: Vec<u32> = examples
                        .iter()
                        .map(|e| t.get(&e.anchor).copied().unwrap_or(u32::MAX))
                        .collect();
                    Ok(sampler.topic_batches(examples, &ids, epoch)?)
                }
                None => Ok(sampler.batches(examples, epoch)),
            }
        };
        // The trainer follows the batches the sampler really yields in each epoch (the
        // no-duplicates sampler may yield more or fewer than `num_batches`).
        let steps_in = |batches: usize| batches.div_ceil(cfg.grad_accum) as u64;
        let first_epoch = epoch_batches(&examples, 0)?;
        if first_epoch.is_empty() {
            return Err(TrainError::Config {
                name: "batch_size",
                reason: format!(
                    "{} examples give no batch of {}",
                    examples.len(),
                    cfg.batch_size
                ),
            });
        }
        let total_steps = match cfg.max_steps {
            Some(n) => n,
            None => {
                let mut steps = steps_in(first_epoch.len());
                for e in 1..cfg.epochs as u64 {
                    steps += steps_in(epoch_batches(&examples, e)?.len());
                }
                steps
            }
        };
        let schedule = LinearSchedule::with_ratio(cfg.lr, cfg.warmup_ratio, total_steps);
        let fingerprints = Fingerprints::of(&model, &examples);

        let (mut model, mut adam, mut state) = match resume {
            Some(dir) => {
                let ck = Checkpoint::<B>::load(dir, &model, &cfg, &fingerprints, &device)?;
                tracing::info!("resuming from {} at step {}", dir.display(), ck.state.step);
                (ck.model, ck.optimizer, ck.state)
            }
            None => {
                let model = match &cfg.lora {
                    Some(lora) => model.with_lora(lora.clone(), cfg.seed)?,
                    None => model,
                };
                let state = TrainerState::new(&cfg, model.source(), fingerprints);
                (model, AdamW::<B>::new(cfg.adamw), state)
            }
        };
        let mut log = match resume {
            Some(_) => RunLog::resume(&self.output_dir, state.step)?,
            None => RunLog::create(&self.output_dir, true)?,
        };
        let parameters = model.parameter_counts();
        let progress = log.progress_bar(total_steps, state.step, cfg.progress_bar);

        let mut train_seconds = 0.0;
        let mut texts_done = 0usize;
        let mut steps_this_call = 0u64;
        let mut epoch_start = 0u64;
        let mut first_epoch = Some(first_epoch);
        'outer: for epoch in 0u64.. {
            if epoch_start >= total_steps {
                break;
            }
            if let Some((every, miner)) = self.remining.as_mut() {
                if epoch > 0 && epoch % *every == 0 {
                    let valid = model.valid();
                    let mined = progress.suspend(|| miner.remine(&valid, &examples, epoch))?;
                    examples = self.prepare(&mined)?;
                }
            }
            let batches = match first_epoch.take() {
                Some(b) => b,
                None => epoch_batches(&examples, epoch)?,
            };
            let steps_this_epoch = steps_in(batches.len()).max(1);
            if state.step >= epoch_start + steps_this_epoch {
                epoch_start += steps_this_epoch;
                continue; // already done before the resume
            }
            let groups: Vec<&[Vec<usize>]> = batches.chunks(cfg.grad_accum).collect();
            for (i, group) in groups.iter().enumerate() {
                let step = epoch_start + i as u64; // 0-based index of this optimiser step
                if step < state.step {
                    continue;
                }
                if step >= total_steps {
                    break 'outer;
                }
                let t0 = Instant::now();
                let lr = schedule.lr(step);
                let (updated, stats) = match self.step(model, &mut adam, &examples, group, step, lr)
                {
                    Ok(v) => v,
                    Err(e) => {
                        progress.abandon();
                        return Err(e);
                    }
                };
                model = updated;
                let StepStats {
                    loss,
                    grad_norm: norm,
                    texts,
                } = stats;
                let secs = t0.elapsed().as_secs_f64();
                train_seconds += secs;
                texts_done += texts;
                state.step = step + 1;
                steps_this_call += 1;

                let record = StepRecord {
                    step: state.step,
                    epoch: epoch as f64 + (i + 1) as f64 / steps_this_epoch as f64,
                    loss,
                    lr,
                    grad_norm: norm,
                    texts_per_second: texts as f64 / secs.max(1e-9),
                    elapsed_seconds: started.elapsed().as_secs_f64(),
                };
                progress.update(&record);
                if state.step % cfg.logging_steps == 0 || state.step == total_steps {
                    log.step(&record)?;
                    state.history.push(record);
                }

                let last = state.step == total_steps;
                if cfg.eval_steps.is_some_and(|n| state.step % n == 0)
                    || (last && self.evaluator.is_some())
                {
                    self.evaluate(&model, &mut state, &mut log, &progress)?;
                }
                if cfg.save_steps.is_some_and(|n| state.step % n == 0) {
                    let dir = self
                        .output_dir
                        .join("checkpoints")
                        .join(format!("step-{}", state.step));
                    checkpoint::save(&dir, &model, &adam, &state)?;
                    checkpoint::prune(
                        &self.output_dir.join("checkpoints"),
                        cfg.save_total_limit,
                        state.step,
                    )?;
                }
                if self.stop_after.is_some_and(|n| steps_this_call >= n) {
                    break 'outer;
                }
            }
            epoch_start += steps_this_epoch;
        }
        progress.finish();
        Ok(TrainOutcome {
            model,
            steps: state.step,
            history: state.history,
            evals: state.evals,
            best: state.best,
            seconds: started.elapsed().as_secs_f64(),
            train_seconds,
            texts_per_second: texts_done as f64 / train_seconds.max(1e-9),
            parameters,
        })
    }

    /// Makes sure a fresh run will not mix with or prune another run's files in the output
    /// directory: refuses if it holds checkpoints, a best model, final adapters or a log, unless
    /// [`overwrite`](Self::overwrite) allows removing them.
    fn claim_output_dir(&self) -> Result<()> {
        let dir = &self.output_dir;
        let ours = ["checkpoints", "best", "adapter", "train_log.jsonl"];
        let found: Vec<String> = ours
            .iter()
            .filter(|name| {
                let p = dir.join(name);
                // An empty checkpoints folder holds nothing to lose.
                p.is_file() || std::fs::read_dir(&p).is_ok_and(|mut d| d.next().is_some())
            })
            .map(|name| name.to_string())
            .collect();
        if found.is_empty() {
            return Ok(());
        }
        if !self.overwrite {
            return Err(TrainError::OutputNotEmpty {
                path: dir.clone(),
                found,
            });
        }
        for name in &found {
            let p = dir.join(name);
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            removed.map_err(crate::error::io_err(&p))?;
        }
        Ok(())
    }

    /// One optimiser step, as [`Trainer::train`] takes each: the loss and gradients of the
    /// micro-batches in `group` (indices into `examples`; gradients accumulated), global-norm
    /// clipping (`max_grad_norm`), and the AdamW update at learning rate `lr`. `step` (0-based)
    /// seeds dropout. A non-finite loss or gradient norm is an error and leaves no update.
    pub fn step(
        &self,
        model: SentenceEncoder<B>,
        adam: &mut AdamW<B>,
        examples: &[Example],
        group: &[Vec<usize>],
        step: u64,
        lr: f64,
    ) -> Result<(SentenceEncoder<B>, StepStats)> {
        let device = model.device();
        let (loss, mut grads, texts) = self.accumulate(&model, examples, group, step, &device)?;
        if !loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step: step + 1,
                value: loss,
            });
        }
        let norm = if self.config.max_grad_norm > 0.0 {
            clip_grad_norm::<B, _>(&model, &mut grads, self.config.max_grad_norm)
        } else {
            grad_norm::<B, _>(&model, &grads)
        };
        if !norm.is_finite() {
            // As for a non-finite loss: no step, no checkpoint, no log line that could not
            // be read back.
            return Err(TrainError::NonFiniteGradNorm {
                step: step + 1,
                value: norm,
            });
        }
        let model = adam.step(lr, model, grads);
        Ok((
            model,
            StepStats {
                loss,
                grad_norm: norm,
                texts,
            },
        ))
    }

    /// Loss and summed gradients of one optimiser step over its micro-batches, and the number
    /// of texts embedded.
    fn accumulate(
        &self,
        model: &SentenceEncoder<B>,
        examples: &[Example],
        group: &[Vec<usize>],
        step: u64,
        device: &B::Device,
    ) -> Result<(f64, GradientsParams, usize)> {
        let cfg = &self.config;
        let mut acc = GradientsAccumulator::<SentenceEncoder<B>>::new();
        let mut total_loss = 0.0;
        let mut texts = 0;
        let scale = 1.0 / group.len() as f64;
        for (micro, batch) in group.iter().enumerate() {
            let seed = mix(&[cfg.seed, step, micro as u64]);
            let columns = columns(examples, batch);
            texts += columns.iter().map(Vec::len).sum::<usize>();
            let computed = self.loss_and_grads(model, &columns, seed, scale, group.len(), device);
            let (loss, grads) = match computed {
                Ok(v) => v,
                // Non-finite embeddings: report it as a non-finite loss of this step.
                Err(TrainError::Loss(LossError::NonFinite { .. })) => {
                    return Ok((f64::NAN, GradientsParams::new(), texts))
                }
                Err(e) => return Err(e),
            };
            let mut grads = grads;
            if group.len() > 1 && cfg.loss.mini_batch().is_some() {
                scale_grads::<B, _>(model, &mut grads, scale);
            }
            total_loss += loss * scale;
            acc.accumulate(model, grads);
        }
        Ok((total_loss, acc.grads(), texts))
    }

    /// Loss value and parameter gradients of one micro-batch (`scale` weighs it within an
    /// accumulated step of `micro_batches`).
    fn loss_and_grads(
        &self,
        model: &SentenceEncoder<B>,
        columns: &[Vec<&str>],
        seed: u64,
        scale: f64,
        micro_batches: usize,
        device: &B::Device,
    ) -> Result<(f64, GradientsParams)> {
        let cfg = &self.config.loss;
        if let Some(gist) = cfg.gist() {
            let guided = gist.with_guide(self.guide_columns(columns, device)?);
            return match cfg.mini_batch() {
                Some(mb) => self.cached(guided, mb, model, columns, seed, device),
                None => self.plain(&guided, model, columns, seed, scale, micro_batches, device),
            };
        }
        match cfg {
            LossConfig::CachedMnrl {
                scale: s,
                mini_batch,
            } => {
                let mnrl = MultipleNegativesRankingLoss::new().with_scale(*s);
                self.cached(mnrl, *mini_batch, model, columns, seed, device)
            }
            other => {
                let loss_fn = other.build::<B>()?;
                self.plain(
                    loss_fn.as_ref(),
                    model,
                    columns,
                    seed,
                    scale,
                    micro_batches,
                    device,
                )
            }
        }
    }

    /// `loss` over the batch with GradCache, `mini_batch` texts in the graph at a time.
    fn cached<L: EmbeddingLoss<B>>(
        &self,
        loss: L,
        mini_batch: usize,
        model: &SentenceEncoder<B>,
        columns: &[Vec<&str>],
        seed: u64,
        device: &B::Device,
    ) -> Result<(f64, GradientsParams)> {
        let loss = CachedLoss::new(loss, mini_batch)?.with_seed(seed);
        let sizes: Vec<usize> = columns.iter().map(Vec::len).collect();
        let out = loss.forward_backward(model, &sizes, None, |m: &SentenceEncoder<B>, mb| {
            B::seed(device, mb.seed);
            let texts: Vec<&str> = columns[mb.column][mb.range.clone()].to_vec();
            m.embed(&texts, self.prompt(mb.column))
        })?;
        let value: f64 = out.loss.into_scalar().elem();
        Ok((value, out.grads))
    }

    /// `loss` over the batch in one graph.
    #[allow(clippy::too_many_arguments)]
    fn plain(
        &self,
        loss_fn: &dyn EmbeddingLoss<B>,
        model: &SentenceEncoder<B>,
        columns: &[Vec<&str>],
        seed: u64,
        scale: f64,
        micro_batches: usize,
        device: &B::Device,
    ) -> Result<(f64, GradientsParams)> {
        B::seed(device, seed);
        let embeddings = columns
            .iter()
            .enumerate()
            .map(|(c, texts)| model.embed(texts, self.prompt(c)))
            .collect::<std::result::Result<Vec<Tensor<B, 2>>, _>>()?;
        let loss = loss_fn.loss(&embeddings, None)?;
        let value: f64 = loss.clone().into_scalar().elem();
        let loss = if micro_batches > 1 {
            loss.mul_scalar(scale)
        } else {
            loss
        };
        let grads = GradientsParams::from_grads(loss.backward(), model);
        Ok((value, grads))
    }

    /// The guide's embeddings of every column (no gradients), as constants of `B`.
    fn guide_columns(
        &self,
        columns: &[Vec<&str>],
        device: &B::Device,
    ) -> Result<Vec<Tensor<B, 2>>> {
        let Some(guide) = &self.guide else {
            return Err(TrainError::Config {
                name: "loss",
                reason: "GISTEmbed needs a guide model".into(),
            });
        };
        columns
            .iter()
            .enumerate()
            .map(|(c, texts)| {
                let opts = EncodeOptions {
                    batch_size: texts.len().max(1),
                    prompt: self.prompt(c).map(str::to_string),
                    normalize: Some(true),
                };
                let embeddings = guide.encode(texts, &opts)?;
                let (rows, dim) = (embeddings.len(), embeddings.dim());
                let data = TensorData::new(embeddings.into_vec(), [rows, dim]);
                Ok(Tensor::<B, 2>::from_data(data, device))
            })
            .collect()
    }

    fn prompt(&self, column: usize) -> Option<&str> {
        if column == 0 {
            self.config.query_prompt.as_deref()
        } else {
            self.config.passage_prompt.as_deref()
        }
    }

    fn evaluate(
        &mut self,
        model: &SentenceEncoder<B>,
        state: &mut TrainerState,
        log: &mut RunLog,
        progress: &crate::log::Progress,
    ) -> Result<()> {
        let Some(evaluator) = self.evaluator.as_mut() else {
            return Ok(());
        };
        let t0 = Instant::now();
        let valid = model.valid();
        let metrics = progress.suspend(|| evaluator.evaluate(&valid))?;
        let record = EvalRecord {
            step: state.step,
            metrics: metrics.clone(),
            seconds: t0.elapsed().as_secs_f64(),
        };
        log.eval(&record)?;
        state.evals.push(record);
        let metric = &self.config.metric_for_best;
        let value = *metrics.get(metric).ok_or_else(|| TrainError::Config {
            name: "metric_for_best",
            reason: format!(
                "the evaluator reports no {metric:?} (it has {:?})",
                metrics.keys().collect::<Vec<_>>()
            ),
        })?;
        if state.best.as_ref().is_none_or(|b| value > b.value) {
            let path = self.output_dir.join("best");
            let merged = if valid.lora_config().is_some() {
                valid.merge_lora()
            } else {
                valid
            };
            merged.save(&path)?;
            state.best = Some(Best {
                step: state.step,
                value,
                path,
            });
        }
        Ok(())
    }
}

/// `path` made absolute and resolved through the links of its longest existing ancestor (the
/// rest may not exist yet).
fn resolved(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return abs,
        }
    }
    let mut out = existing
        .canonicalize()
        .unwrap_or_else(|_| existing.to_path_buf());
    out.extend(rest.iter().rev());
    out
}

/// Checks an output directory before a job writes anything into it: never the model
/// directory, inside it or around it ([`TrainError::OutputOverlapsModel`]), and, for a fresh
/// run (`resume` false) without `overwrite`, empty or absent ([`TrainError::OutputNotEmpty`],
/// listing what is there).
pub fn check_output_dir(
    output: &Path,
    model: Option<&Path>,
    resume: bool,
    overwrite: bool,
) -> Result<()> {
    if let Some(model) = model {
        check_overlap(output, model)?;
    }
    if resume || overwrite {
        return Ok(());
    }
    let mut found: Vec<String> = match std::fs::read_dir(output) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(crate::error::io_err(output)(e)),
    };
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    if found.len() > 5 {
        let more = found.len() - 4;
        found.truncate(4);
        found.push(format!("{more} more"));
    }
    Err(TrainError::OutputNotEmpty {
        path: output.to_path_buf(),
        found,
    })
}

/// Refuses an output directory equal to, inside, or containing the model directory.
fn check_overlap(output: &Path, model: &Path) -> Result<()> {
    let (o, m) = (resolved(output), resolved(model));
    if o.starts_with(&m) || m.starts_with(&o) {
        return Err(TrainError::OutputOverlapsModel {
            output: output.to_path_buf(),
            model: model.to_path_buf(),
        });
    }
    Ok(())
}

/// The texts of a batch as columns: anchors, positives, then each hard-negative column.
fn columns<'a>(examples: &'a [Example], batch: &[usize]) -> Vec<Vec<&'a str>> {
    let k = batch
        .first()
        .map(|&i| examples[i].negatives.len())
        .unwrap_or(0);
    let mut cols = vec![Vec::with_capacity(batch.len()); 2 + k];
    for &i in batch {
        let e = &examples[i];
        cols[0].push(e.anchor.as_str());
        cols[1].push(e.positive.as_str());
        for (j, n) in e.negatives.iter().enumerate() {
            cols[2 + j].push(n.as_str());
        }
    }
    cols
}
