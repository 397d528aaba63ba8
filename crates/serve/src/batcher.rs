//! Dynamic batching: one thread owns the model; requests queue as token ids and are merged
//! into batches by a token budget.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use burn::tensor::backend::Backend;
use embedtune_core::Embeddings;
use embedtune_encoder::{EncodeOptions, SentenceEncoder};
use tokio::sync::oneshot;

/// One request's texts, tokenised (prompt included), waiting for the model.
pub(crate) struct Job {
    pub ids: Vec<Vec<u32>>,
    pub prompt_len: usize,
    pub tokens: usize,
    pub reply: oneshot::Sender<Result<Embeddings, String>>,
}

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds too many tokens already.
    Full,
    /// The worker has stopped.
    Stopped,
}

/// The queue in front of the worker, bounded in tokens.
pub(crate) struct Batcher {
    sender: mpsc::Sender<Job>,
    queued: Arc<AtomicUsize>,
    max_queue_tokens: usize,
}

/// Counters of the worker, for `/health` and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Batches run.
    pub batches: AtomicUsize,
    /// Requests embedded.
    pub requests: AtomicUsize,
    /// Requests dropped because their client had gone before they ran.
    pub cancelled: AtomicUsize,
    /// Most requests merged into one batch.
    pub largest_batch: AtomicUsize,
}

impl Batcher {
    /// Starts the worker thread owning `model`.
    pub fn start<B: Backend>(
        model: SentenceEncoder<B>,
        batch_size: usize,
        max_batch_tokens: usize,
        max_queue_tokens: usize,
        stats: Arc<Stats>,
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let queued = Arc::new(AtomicUsize::new(0));
        let worker_queued = Arc::clone(&queued);
        let handle = std::thread::Builder::new()
            .name("embedtune-serve-model".into())
            .spawn(move || {
                run(
                    &model,
                    &receiver,
                    batch_size,
                    max_batch_tokens,
                    &worker_queued,
                    &stats,
                )
            })?;
        Ok((
            Self {
                sender,
                queued,
                max_queue_tokens,
            },
            handle,
        ))
    }

    /// Whether the queue is at its bound already (a request can be refused before any work).
    pub fn is_full(&self) -> bool {
        self.queued.load(Ordering::SeqCst) >= self.max_queue_tokens
    }

    /// Queues `job` unless the queue's token bound would be passed.
    pub fn submit(&self, job: Job) -> Result<(), Refused> {
        let tokens = job.tokens;
        let before = self.queued.fetch_add(tokens, Ordering::SeqCst);
        // an empty queue takes any one request that passed the request limits
        if before > 0 && before + tokens > self.max_queue_tokens {
            self.queued.fetch_sub(tokens, Ordering::SeqCst);
            return Err(Refused::Full);
        }
        self.sender.send(job).map_err(|_| {
            self.queued.fetch_sub(tokens, Ordering::SeqCst);
            Refused::Stopped
        })
    }

    /// Tokens waiting in the queue now.
    pub fn queued_tokens(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

/// The worker: takes the oldest job, adds waiting jobs while the batch stays within
/// `max_batch_tokens`, drops the jobs whose client has gone, runs each prompt's jobs as one
/// `embed_token_ids` call and answers each job with its rows. Ends when every sender is gone.
fn run<B: Backend>(
    model: &SentenceEncoder<B>,
    receiver: &mpsc::Receiver<Job>,
    batch_size: usize,
    max_batch_tokens: usize,
    queued: &AtomicUsize,
    stats: &Stats,
) {
    let options = EncodeOptions {
        batch_size,
        prompt: None,
        normalize: None,
    };
    let mut carry: Option<Job> = None;
    loop {
        // A job leaves the queue's count when it leaves the channel (a carried job already has).
        let first = match carry.take() {
            Some(job) => job,
            None => match receiver.recv() {
                Ok(job) => {
                    queued.fetch_sub(job.tokens, Ordering::SeqCst);
                    job
                }
                Err(_) => return,
            },
        };
        let mut tokens = first.tokens;
        let mut batch = vec![first];
        while let Ok(job) = receiver.try_recv() {
            queued.fetch_sub(job.tokens, Ordering::SeqCst);
            if tokens + job.tokens > max_batch_tokens {
                carry = Some(job);
                break;
            }
            tokens += job.tokens;
            batch.push(job);
        }
        let before = batch.len();
        batch.retain(|job| !job.reply.is_closed());
        stats
            .cancelled
            .fetch_add(before - batch.len(), Ordering::Relaxed);
        if batch.is_empty() {
            continue;
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.requests.fetch_add(batch.len(), Ordering::Relaxed);
        stats
            .largest_batch
            .fetch_max(batch.len(), Ordering::Relaxed);
        let mut prompt_lens: Vec<usize> = batch.iter().map(|j| j.prompt_len).collect();
        prompt_lens.sort_unstable();
        prompt_lens.dedup();
        for prompt_len in prompt_lens {
            let (group, rest): (Vec<Job>, Vec<Job>) =
                batch.into_iter().partition(|j| j.prompt_len == prompt_len);
            batch = rest;
            embed_group(model, group, prompt_len, &options);
        }
    }
}

/// Embeds the jobs of one prompt together and answers each.
fn embed_group<B: Backend>(
    model: &SentenceEncoder<B>,
    mut group: Vec<Job>,
    prompt_len: usize,
    options: &EncodeOptions,
) {
    let mut ids = Vec::with_capacity(group.iter().map(|j| j.ids.len()).sum());
    let mut counts = Vec::with_capacity(group.len());
    for job in &mut group {
        counts.push(job.ids.len());
        ids.append(&mut job.ids);
    }
    match model.embed_token_ids(&ids, prompt_len, options, |_| {}) {
        Ok(vectors) => {
            let mut start = 0;
            for (job, count) in group.into_iter().zip(counts) {
                let rows: Vec<usize> = (start..start + count).collect();
                start += count;
                let part = vectors
                    .select(&rows)
                    .ok_or_else(|| "the model returned too few embeddings".to_string());
                let _ = job.reply.send(part);
            }
        }
        Err(e) => {
            let message = e.to_string();
            for job in group {
                let _ = job.reply.send(Err(message.clone()));
            }
        }
    }
}
