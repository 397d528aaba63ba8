//! Seeded batch sampling: plain or no-duplicates (as sentence-transformers'
//! `NoDuplicatesBatchSampler`), with optional length bucketing.

use std::cmp::Reverse;
use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{DataError, Result};
use crate::types::TextColumns;

/// Extra shuffled passes the no-duplicates sampler may make to reach [`BatchSampler::num_batches`]
/// (as sentence-transformers 6.x).
const MAX_RESAMPLE_PASSES: usize = 2;

/// Splits dataset indices into batches.
///
/// Each epoch's order is a shuffle seeded with `seed + epoch`, so the same seed and epoch give
/// the same batches. With [`no_duplicates`](Self::no_duplicates) it follows
/// sentence-transformers 6.x `NoDuplicatesBatchSampler`: it walks the shuffled indices, adds an
/// example to the batch only if none of its texts (anchor, positive, every negative; labels
/// are not texts) is already in the batch, and leaves a conflicting example where it is, to be
/// tried first for the next batch. A walk that ends before the batch is full yields the partial
/// batch unless `drop_last` (its examples are used up either way). If one pass gives fewer than
/// [`num_batches`](Self::num_batches) batches (possible with `drop_last` and many duplicates),
/// up to two more shuffled passes top it up, as sentence-transformers does.
///
/// ```
/// use embedtune_data::{BatchSampler, Example};
/// let data = vec![
///     Example::pair("a", "x"),
///     Example::pair("b", "x"), // same positive as the first: never in its batch
///     Example::pair("c", "y"),
///     Example::pair("d", "z"),
/// ];
/// let sampler = BatchSampler::new(2).unwrap().seed(7).no_duplicates(true);
/// let batches = sampler.batches(&data, 0);
/// assert_eq!(batches, sampler.batches(&data, 0)); // same seed and epoch, same batches
/// for b in &batches {
///     assert!(!(b.contains(&0) && b.contains(&1)));
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSampler {
    batch_size: usize,
    drop_last: bool,
    shuffle: bool,
    seed: u64,
    no_duplicates: bool,
    length_pool: Option<usize>,
}

impl BatchSampler {
    /// A shuffling sampler of `batch_size` (> 0) with seed 0, keeping the last partial batch.
    pub fn new(batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(DataError::ZeroBatchSize);
        }
        Ok(Self {
            batch_size,
            drop_last: false,
            shuffle: true,
            seed: 0,
            no_duplicates: false,
            length_pool: None,
        })
    }

    /// Drop batches smaller than the batch size.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Shuffle each epoch (default) or keep dataset order.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Seed of the shuffle; epoch `e` uses `seed + e`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Never put the same text twice in a batch (for in-batch-negative losses).
    pub fn no_duplicates(mut self, no_duplicates: bool) -> Self {
        self.no_duplicates = no_duplicates;
        self
    }

    /// Length bucketing to cut padding: the shuffled order is cut into pools of
    /// `pool_batches × batch_size` examples, each pool is sorted by length (total bytes of the
    /// example's texts, longest first), batches are formed, and the batch order is shuffled.
    /// `None` (default) turns it off.
    pub fn length_buckets(mut self, pool_batches: Option<usize>) -> Self {
        self.length_pool = pool_batches.filter(|&p| p > 0);
        self
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Number of batches an epoch over `len` examples is expected to have: `len / batch_size`
    /// with `drop_last`, else rounded up. The no-duplicates sampler may yield more without
    /// `drop_last` (several partial batches), or fewer with it if the data has too few
    /// distinct texts.
    pub fn num_batches(&self, len: usize) -> usize {
        if self.drop_last {
            len / self.batch_size
        } else {
            len.div_ceil(self.batch_size)
        }
    }

    /// The batches (lists of indices into `items`) of one epoch.
    pub fn batches<T: TextColumns>(&self, items: &[T], epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = StdRng::seed_from_u64(self.seed.wrapping_add(epoch));
        let mut batches = if self.no_duplicates {
            let expected = self.num_batches(items.len());
            let mut out =
                self.no_duplicate_pass(items, self.order(items, &mut rng), !self.drop_last);
            let mut passes = 0;
            while out.len() < expected && !out.is_empty() && passes < MAX_RESAMPLE_PASSES {
                passes += 1;
                let more =
                    self.no_duplicate_pass(items, self.order(items, &mut rng), !self.drop_last);
                out.extend(more.into_iter().take(expected - out.len()));
            }
            out
        } else {
            self.order(items, &mut rng)
                .chunks(self.batch_size)
                .filter(|c| !self.drop_last || c.len() == self.batch_size)
                .map(<[usize]>::to_vec)
                .collect()
        };
        if self.length_pool.is_some() {
            batches.shuffle(&mut rng);
        }
        batches
    }

    /// Topic-aware batches (TAS-B, Hofstätter et al. 2021): the batches of one epoch with every
    /// full batch drawn from one topic, so that the in-batch negatives are on the same subject
    /// as the anchor. `topics[i]` is item `i`'s topic (e.g. a cluster of its anchor's
    /// embedding). The epoch's shuffled order is split by topic (keeping the order within each
    /// topic); each topic is batched as [`batches`](Self::batches) would batch it (no
    /// duplicates, buckets), its full batches are kept, the items of its partial batches are
    /// pooled across topics and batched last in shuffled order; then the batch order is
    /// shuffled. Every item is in exactly one batch, except that `drop_last` drops the
    /// pool's partial batch as it does in [`batches`](Self::batches).
    ///
    /// `topics` must have one entry per item.
    ///
    /// ```
    /// use embedtune_data::{BatchSampler, Example};
    /// let data: Vec<Example> = (0..8).map(|i| Example::pair(format!("q{i}"), format!("p{i}"))).collect();
    /// let topics = [0, 1, 0, 1, 0, 1, 0, 1];
    /// let sampler = BatchSampler::new(4).unwrap().seed(3);
    /// for batch in sampler.topic_batches(&data, &topics, 0).unwrap() {
    ///     assert!(batch.iter().all(|&i| topics[i] == topics[batch[0]]));
    /// }
    /// ```
    pub fn topic_batches<T: TextColumns>(
        &self,
        items: &[T],
        topics: &[u32],
        epoch: u64,
    ) -> Result<Vec<Vec<usize>>> {
        if topics.len() != items.len() {
            return Err(DataError::TopicCount {
                items: items.len(),
                topics: topics.len(),
            });
        }
        let mut rng = StdRng::seed_from_u64(self.seed.wrapping_add(epoch));
        let order = self.order(items, &mut rng);
        // Topics in order of first appearance in the shuffled order (deterministic per seed).
        let mut by_topic: Vec<(u32, Vec<usize>)> = Vec::new();
        let mut slot: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
        for &i in &order {
            let s = *slot.entry(topics[i]).or_insert_with(|| {
                by_topic.push((topics[i], Vec::new()));
                by_topic.len() - 1
            });
            by_topic[s].1.push(i);
        }
        let mut batches = Vec::new();
        let mut pool = Vec::new();
        for (_, members) in by_topic {
            let cut = if self.no_duplicates {
                self.no_duplicate_pass(items, members, true)
            } else {
                members
                    .chunks(self.batch_size)
                    .map(<[usize]>::to_vec)
                    .collect()
            };
            for batch in cut {
                if batch.len() == self.batch_size {
                    batches.push(batch);
                } else {
                    pool.extend(batch);
                }
            }
        }
        // The pool keeps the shuffled order, so its batches mix topics at random.
        let rank: std::collections::HashMap<usize, usize> =
            order.iter().enumerate().map(|(r, &i)| (i, r)).collect();
        pool.sort_by_key(|i| rank[i]);
        let rest: Vec<Vec<usize>> = if self.no_duplicates {
            self.no_duplicate_pass(items, pool, true)
        } else {
            pool.chunks(self.batch_size)
                .map(<[usize]>::to_vec)
                .collect()
        };
        batches.extend(
            rest.into_iter()
                .filter(|b| !self.drop_last || b.len() == self.batch_size),
        );
        batches.shuffle(&mut rng);
        Ok(batches)
    }

    /// The (shuffled, length-bucketed) order of one pass.
    fn order<T: TextColumns>(&self, items: &[T], rng: &mut StdRng) -> Vec<usize> {
        let mut order: Vec<usize> = (0..items.len()).collect();
        if self.shuffle {
            order.shuffle(rng);
        }
        if let Some(pool) = self.length_pool {
            let pool = pool.saturating_mul(self.batch_size);
            for chunk in order.chunks_mut(pool) {
                chunk.sort_by_key(|&i| Reverse(text_bytes(&items[i])));
            }
        }
        order
    }

    /// One pass of the no-duplicates walk over `order`; partial batches are yielded only if
    /// `keep_partial`.
    fn no_duplicate_pass<T: TextColumns>(
        &self,
        items: &[T],
        order: Vec<usize>,
        keep_partial: bool,
    ) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        // Examples skipped by earlier walks, in order; all precede order[cursor..].
        let mut deferred: Vec<usize> = Vec::new();
        let mut cursor = 0;
        while !deferred.is_empty() || cursor < order.len() {
            let mut texts: HashSet<&str> = HashSet::new();
            let mut batch = Vec::with_capacity(self.batch_size);
            let mut still_deferred = Vec::new();
            let mut take = |idx: usize, batch: &mut Vec<usize>, still: &mut Vec<usize>| {
                let item = &items[idx];
                if item.columns().any(|(_, t)| texts.contains(t)) {
                    still.push(idx);
                } else {
                    batch.push(idx);
                    texts.extend(item.columns().map(|(_, t)| t));
                }
            };
            let mut d = 0;
            while d < deferred.len() && batch.len() < self.batch_size {
                take(deferred[d], &mut batch, &mut still_deferred);
                d += 1;
            }
            still_deferred.extend_from_slice(&deferred[d..]);
            while cursor < order.len() && batch.len() < self.batch_size {
                take(order[cursor], &mut batch, &mut still_deferred);
                cursor += 1;
            }
            deferred = still_deferred;
            if batch.len() == self.batch_size || keep_partial {
                out.push(batch);
            }
        }
        out
    }
}

fn text_bytes<T: TextColumns>(item: &T) -> usize {
    item.columns().map(|(_, t)| t.len()).sum()
}

/// Batches for encoding (no training): indices sorted by text length, longest first (as
/// sentence-transformers' `encode` does), cut into batches of `batch_size`, so that each batch
/// pads little. Put the embeddings back with the indices.
pub fn length_sorted_batches<T: TextColumns>(
    items: &[T],
    batch_size: usize,
) -> Result<Vec<Vec<usize>>> {
    if batch_size == 0 {
        return Err(DataError::ZeroBatchSize);
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| {
        Reverse(
            items[i]
                .columns()
                .map(|(_, t)| t.chars().count())
                .sum::<usize>(),
        )
    });
    Ok(order.chunks(batch_size).map(<[usize]>::to_vec).collect())
}
