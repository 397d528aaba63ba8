//! GradCache: a loss over a large batch with only one mini-batch in the autodiff graph at a time.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{backend::AutodiffBackend, backend::Backend, Bool, Int, Tensor};

use crate::{EmbeddingLoss, LossError, MultipleNegativesRankingLoss};

/// [`CachedLoss`] around [`MultipleNegativesRankingLoss`]: sentence-transformers'
/// `CachedMultipleNegativesRankingLoss` (GradCache, Gao et al. 2021).
pub type CachedMultipleNegativesRankingLoss = CachedLoss<MultipleNegativesRankingLoss>;

/// Which of the two embedding passes of [`CachedLoss::forward_backward`] a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// First pass: the module given to the embedding function does not require gradients
    /// ([`Module::no_grad`](burn::module::Module::no_grad)) and its output is detached, so no
    /// activation is kept.
    Cache,
    /// Second pass: the module is the caller's, with gradients; the output is back-propagated
    /// before the next mini-batch is embedded.
    Replay,
}

/// One mini-batch the embedding function of [`CachedLoss::forward_backward`] must embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiniBatch {
    /// Input column: 0 = anchors, 1 = positives, 2.. = negatives.
    pub column: usize,
    /// Index of the mini-batch within its column.
    pub index: usize,
    /// The rows (texts) of the column to embed.
    pub range: Range<usize>,
    /// A seed for this mini-batch, the same in both passes of one call and different between
    /// mini-batches and calls. Reseed the backend with it (`B::seed(&device, mb.seed)`) before
    /// the forward when the encoder uses dropout, so that both passes draw the same masks.
    pub seed: u64,
    /// Which pass this call is for.
    pub pass: Pass,
}

/// What [`CachedLoss::forward_backward`] returns.
#[derive(Debug)]
pub struct CachedOutput<B: AutodiffBackend> {
    /// The loss value, the same as the inner loss on the whole batch.
    pub loss: Tensor<B::InnerBackend, 1>,
    /// d(loss)/d(parameters) of the module, summed over the mini-batches; pass it to
    /// `optimizer.step(lr, module, grads)`.
    pub grads: GradientsParams,
}

/// GradCache (Gao et al. 2021) around any [`EmbeddingLoss`]: the loss and the parameter
/// gradients of the whole batch, while the encoder's autodiff graph never holds more than
/// `mini_batch_size` texts.
///
/// [`forward_backward`](Self::forward_backward) works in three steps:
/// 1. embeds every mini-batch of every column with a gradient-free copy of the module and keeps
///    only the (detached) embeddings;
/// 2. computes the inner loss on the whole batch of cached embeddings and back-propagates it to
///    them: d(loss)/d(embeddings);
/// 3. re-embeds each mini-batch with the module's graph and back-propagates
///    `sum(embeddings * cached_gradient)`, one mini-batch at a time, summing the parameter
///    gradients.
///
/// The gradients equal those of the inner loss computed in one graph, as long as the embedding
/// function returns the same embeddings in both passes: it must be deterministic per mini-batch.
/// With dropout, reseed the backend RNG with [`MiniBatch::seed`] before each forward (what
/// sentence-transformers' `RandContext` does). Peak memory is that of one mini-batch forward and
/// backward plus the `[batch, dim]` embeddings and their gradients.
///
/// The inner loss sees the whole batch at once; its own memory (`[n, n·(1+k)]` logits for MNRL)
/// is not split.
#[derive(Debug)]
pub struct CachedLoss<L> {
    inner: L,
    mini_batch_size: usize,
    seed: u64,
    calls: AtomicU64,
}

impl<L: Clone> Clone for CachedLoss<L> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            mini_batch_size: self.mini_batch_size,
            seed: self.seed,
            calls: AtomicU64::new(self.calls.load(Ordering::Relaxed)),
        }
    }
}

impl<L> CachedLoss<L> {
    /// Wraps `inner`, embedding at most `mini_batch_size` texts per forward
    /// (sentence-transformers' default is 32). Errors if `mini_batch_size` is 0.
    pub fn new(inner: L, mini_batch_size: usize) -> Result<Self, LossError> {
        if mini_batch_size == 0 {
            return Err(LossError::invalid("mini_batch_size", 0, "must be > 0"));
        }
        Ok(Self {
            inner,
            mini_batch_size,
            seed: 0,
            calls: AtomicU64::new(0),
        })
    }

    /// Sets the base of the per-mini-batch seeds ([`MiniBatch::seed`]); default 0.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The wrapped loss.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// The maximum number of texts embedded per forward.
    pub fn mini_batch_size(&self) -> usize {
        self.mini_batch_size
    }

    /// The mini-batches of columns with the given numbers of rows, in embedding order, for the
    /// given pass of call number `call`.
    fn mini_batches(&self, column_sizes: &[usize], call: u64, pass: Pass) -> Vec<MiniBatch> {
        let mut out = Vec::new();
        for (column, &size) in column_sizes.iter().enumerate() {
            for (index, start) in (0..size).step_by(self.mini_batch_size).enumerate() {
                out.push(MiniBatch {
                    column,
                    index,
                    range: start..(start + self.mini_batch_size).min(size),
                    seed: mix(&[self.seed, call, column as u64, index as u64]),
                    pass,
                });
            }
        }
        out
    }

    /// Computes the loss of a batch and d(loss)/d(parameters of `module`) with GradCache.
    ///
    /// * `module`: the encoder being trained; gradients are collected for its parameters.
    /// * `column_sizes`: the number of texts in each input column (anchors, positives,
    ///   negatives…).
    /// * `labels`: passed to the inner loss (e.g. CoSENT scores); `None` for MNRL.
    /// * `embed(module, mini_batch)`: embeds rows `mini_batch.range` of column
    ///   `mini_batch.column` with the given module and returns `[range.len(), dim]`. Use the module
    ///   it receives (not a captured one), so that the first pass builds no graph.
    ///
    /// Returns the loss value and the accumulated parameter gradients. Errors if the embedding
    /// function fails or returns a wrong shape, if a column is empty, or if the inner loss
    /// rejects the embeddings.
    ///
    /// One training step (here the "encoder" is a linear layer over precomputed features; with
    /// a real encoder, `embed` tokenizes and encodes `mb.range` of the column's texts):
    ///
    /// ```
    /// use burn::nn::{Linear, LinearConfig};
    /// use burn::optim::{Optimizer, SgdConfig};
    /// use burn::tensor::{backend::Backend, Distribution, Tensor};
    /// use burn_autodiff::Autodiff;
    /// use burn_ndarray::NdArray;
    /// use embedtune_losses::{
    ///     CachedMultipleNegativesRankingLoss, LossError, MiniBatch, MultipleNegativesRankingLoss,
    /// };
    ///
    /// type B = Autodiff<NdArray<f32>>;
    /// let device = Default::default();
    /// let mut encoder: Linear<B> = LinearConfig::new(16, 8).init(&device);
    /// let mut optimizer = SgdConfig::new().init::<B, Linear<B>>();
    /// // 64 (query, passage) pairs, embedded 8 texts at a time.
    /// let texts = [0, 1].map(|_| Tensor::<B, 2>::random([64, 16], Distribution::Default, &device));
    /// let loss = CachedMultipleNegativesRankingLoss::new(MultipleNegativesRankingLoss::default(), 8)?;
    ///
    /// let out = loss.forward_backward(&encoder, &[64, 64], None, |enc: &Linear<B>, mb: &MiniBatch| {
    ///     B::seed(&device, mb.seed); // same dropout masks in both passes (if the encoder has dropout)
    ///     let rows = texts[mb.column].clone().narrow(0, mb.range.start, mb.range.len());
    ///     Ok::<_, std::convert::Infallible>(enc.forward(rows))
    /// })?;
    /// println!("loss {}", out.loss.into_scalar());
    /// encoder = optimizer.step(1e-2, encoder, out.grads);
    /// # Ok::<(), LossError>(())
    /// ```
    pub fn forward_backward<B, M, F, E>(
        &self,
        module: &M,
        column_sizes: &[usize],
        labels: Option<Tensor<B, 1>>,
        mut embed: F,
    ) -> Result<CachedOutput<B>, LossError>
    where
        B: AutodiffBackend,
        L: EmbeddingLoss<B>,
        M: AutodiffModule<B>,
        F: FnMut(&M, &MiniBatch) -> Result<Tensor<B, 2>, E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some(column) = column_sizes.iter().position(|&n| n == 0) {
            return Err(LossError::Empty {
                input: format!("column {column}"),
                shape: vec![0],
            });
        }
        let call = self.calls.fetch_add(1, Ordering::Relaxed);

        // 1. Embed everything without a graph. burn initialises parameters lazily and a clone of
        // an uninitialised parameter initialises on its own (with other random values), so the
        // module is initialised before the gradient-free copy is made.
        module.visit(&mut InitParams);
        let frozen = module.clone().no_grad();
        let mut cached: Vec<Vec<Tensor<B::InnerBackend, 2>>> = vec![Vec::new(); column_sizes.len()];
        let mut dims: Vec<Option<usize>> = vec![None; column_sizes.len()];
        for mb in self.mini_batches(column_sizes, call, Pass::Cache) {
            let emb = call_embed(&mut embed, &frozen, &mb, &mut dims[mb.column])?;
            cached[mb.column].push(emb.inner());
        }

        // 2. The loss on the cached embeddings and its gradient w.r.t. them.
        let columns: Vec<Tensor<B, 2>> = cached
            .into_iter()
            .map(|parts| Tensor::<B, 2>::from_inner(Tensor::cat(parts, 0)).require_grad())
            .collect();
        let loss = self.inner.loss(&columns, labels.as_ref())?;
        let loss_grads = loss.backward();
        let column_grads: Vec<Tensor<B::InnerBackend, 2>> = columns
            .iter()
            .map(|c| {
                c.grad(&loss_grads)
                    .unwrap_or_else(|| c.clone().inner().zeros_like())
            })
            .collect();
        drop(loss_grads);
        drop(columns);

        // 3. Replay each mini-batch with a graph and back-propagate the cached gradient.
        let mut accumulator = GradientsAccumulator::<M>::new();
        for mb in self.mini_batches(column_sizes, call, Pass::Replay) {
            let emb = call_embed(&mut embed, module, &mb, &mut dims[mb.column])?;
            let grad = column_grads[mb.column]
                .clone()
                .narrow(0, mb.range.start, mb.range.len());
            let surrogate = (emb * Tensor::<B, 2>::from_inner(grad)).sum();
            let grads = GradientsParams::from_grads::<B, M>(surrogate.backward(), module);
            accumulator.accumulate::<B>(module, grads);
        }

        Ok(CachedOutput {
            loss: loss.inner(),
            grads: accumulator.grads(),
        })
    }
}

/// Calls the embedding function and checks the shape of what it returns: `range.len()` rows,
/// and the dimension of the column's first mini-batch.
fn call_embed<B, M, F, E>(
    embed: &mut F,
    module: &M,
    mb: &MiniBatch,
    dim: &mut Option<usize>,
) -> Result<Tensor<B, 2>, LossError>
where
    B: AutodiffBackend,
    F: FnMut(&M, &MiniBatch) -> Result<Tensor<B, 2>, E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let emb = embed(module, mb).map_err(|e| LossError::Embed {
        column: mb.column,
        range: mb.range.clone(),
        source: e.into(),
    })?;
    let [rows, d] = emb.dims();
    let expected_dim = *dim.get_or_insert(d);
    if rows != mb.range.len() || d != expected_dim {
        return Err(LossError::EmbedShape {
            column: mb.column,
            range: mb.range.clone(),
            shape: vec![rows, d],
            expected_rows: mb.range.len(),
            expected_dim,
        });
    }
    Ok(match mb.pass {
        Pass::Cache => emb.detach(),
        Pass::Replay => emb,
    })
}

/// Forces the lazy initialisation of every parameter it visits.
struct InitParams;

impl<B: Backend> ModuleVisitor<B> for InitParams {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
        let _ = param.val();
    }
    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<B, D, Bool>>) {
        let _ = param.val();
    }
}

/// SplitMix64 over a few words: a well-spread seed per (base, call, column, mini-batch).
fn mix(words: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for &w in words {
        h ^= w;
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}
