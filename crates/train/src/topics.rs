//! Topics of the training anchors, for topic-aware batches (TAS-B, Hofstätter et al. 2021):
//! the anchors are embedded once with the starting model and clustered with spherical k-means;
//! the sampler then fills each batch from one cluster
//! ([`embedtune_data::BatchSampler::topic_batches`]), which makes the in-batch negatives
//! harder without mining.

use std::collections::HashMap;

use burn::tensor::backend::Backend;
use embedtune_core::Embeddings;
use embedtune_data::Example;
use embedtune_encoder::{EncodeOptions, SentenceEncoder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Result, TrainError};

/// Lloyd iterations of [`kmeans`] at most (it stops earlier once no point changes cluster).
pub const KMEANS_MAX_ITER: usize = 100;

/// Cosine similarity above which a point counts as sitting on its centroid.
const ON_CENTRE: f32 = 1.0 - 1e-6;

/// Spherical k-means (cosine similarity) of the rows of `vectors` into `k` clusters: seeded
/// k-means++ initialisation (distance `1 − cos`), then Lloyd iterations (each point to its most
/// similar centroid, each centroid the normalised mean of its points) until no assignment
/// changes or [`KMEANS_MAX_ITER`] iterations. A cluster left empty is re-seeded with the point
/// least similar to its own centroid (and stays empty when every point sits on its centroid,
/// as with fewer distinct points than clusters). Returns the cluster of each row.
///
/// Errors: `k` of 0 or above the number of rows, and a row that is not finite or is all zero.
///
/// ```
/// use embedtune_core::Embeddings;
/// use embedtune_train::kmeans;
/// let v = Embeddings::new(vec![1.0, 0.1, 0.9, 0.0, 0.0, 1.0, 0.1, 0.8], 2).unwrap();
/// let labels = kmeans(&v, 2, 7).unwrap();
/// assert_eq!(labels[0], labels[1]);
/// assert_eq!(labels[2], labels[3]);
/// assert_ne!(labels[0], labels[2]);
/// ```
pub fn kmeans(vectors: &Embeddings, k: usize, seed: u64) -> Result<Vec<u32>> {
    let n = vectors.len();
    let dim = vectors.dim();
    if k == 0 || k > n {
        return Err(TrainError::Config {
            name: "topic_clusters",
            reason: format!("{k} clusters asked for {n} vectors (need 1..={n})"),
        });
    }
    let mut points = Vec::with_capacity(n * dim);
    for (i, row) in vectors.iter().enumerate() {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return Err(TrainError::Config {
                name: "topic_clusters",
                reason: format!("vector {i} is not finite or is all zero"),
            });
        }
        points.extend(row.iter().map(|x| x / norm));
    }
    let point = |i: usize| &points[i * dim..(i + 1) * dim];
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();

    // k-means++: each next centre drawn with probability proportional to its distance.
    let mut rng = StdRng::seed_from_u64(seed);
    let mut centroids: Vec<f32> = Vec::with_capacity(k * dim);
    centroids.extend_from_slice(point(rng.random_range(0..n)));
    let mut dist: Vec<f32> = (0..n)
        .map(|i| (1.0 - dot(point(i), &centroids[..dim])).max(0.0))
        .collect();
    for c in 1..k {
        let total: f32 = dist.iter().sum();
        let pick = if total > 0.0 {
            let mut r = rng.random::<f32>() * total;
            let mut pick = n - 1;
            for (i, d) in dist.iter().enumerate() {
                if r < *d {
                    pick = i;
                    break;
                }
                r -= d;
            }
            pick
        } else {
            c % n // every point is on a centre already: any will do
        };
        centroids.extend_from_slice(point(pick));
        let new = &centroids[c * dim..(c + 1) * dim];
        for (i, d) in dist.iter_mut().enumerate() {
            *d = d.min((1.0 - dot(point(i), new)).max(0.0));
        }
    }

    let mut labels = vec![u32::MAX; n];
    for _ in 0..KMEANS_MAX_ITER {
        let mut changed = false;
        let mut sims = vec![0f32; n];
        for (i, label) in labels.iter_mut().enumerate() {
            let (best, sim) = (0..k)
                .map(|c| (c, dot(point(i), &centroids[c * dim..(c + 1) * dim])))
                .fold((0, f32::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
            sims[i] = sim;
            if *label != best as u32 {
                *label = best as u32;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        let mut sums = vec![0f32; k * dim];
        let mut counts = vec![0usize; k];
        for (i, &label) in labels.iter().enumerate() {
            let c = label as usize;
            counts[c] += 1;
            for (s, x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(point(i)) {
                *s += x;
            }
        }
        for c in 0..k {
            let centre = &mut sums[c * dim..(c + 1) * dim];
            if counts[c] == 0 {
                // Re-seed with the point furthest from its centroid (taken out of its cluster);
                // a point already on its centroid would only move a duplicate, so when every
                // point is on one (fewer distinct points than clusters) the cluster stays empty
                // and keeps its centre.
                let far = (0..n)
                    .filter(|&i| counts[labels[i] as usize] > 1 && sims[i] < ON_CENTRE)
                    .min_by(|&a, &b| sims[a].total_cmp(&sims[b]));
                match far {
                    Some(far) => {
                        counts[labels[far] as usize] -= 1;
                        counts[c] = 1;
                        labels[far] = c as u32;
                        sims[far] = 1.0;
                        centre.copy_from_slice(point(far));
                    }
                    None => centre.copy_from_slice(&centroids[c * dim..(c + 1) * dim]),
                }
            }
            let norm = centre.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                centre.iter_mut().for_each(|x| *x /= norm);
            }
        }
        centroids = sums;
    }
    Ok(labels)
}

/// The topic of every distinct anchor of `examples`: the anchors embedded with `model` (with
/// `prompt`, normalised) and clustered into `k` topics by [`kmeans`] seeded with `seed`.
/// Fewer distinct anchors than `k` is an error.
pub fn anchor_topics<B: Backend>(
    model: &SentenceEncoder<B>,
    examples: &[Example],
    k: usize,
    seed: u64,
    prompt: Option<String>,
) -> Result<HashMap<String, u32>> {
    let mut anchors: Vec<&str> = Vec::new();
    let mut seen: HashMap<&str, ()> = HashMap::new();
    for e in examples {
        if seen.insert(e.anchor.as_str(), ()).is_none() {
            anchors.push(e.anchor.as_str());
        }
    }
    let options = EncodeOptions {
        batch_size: 64,
        prompt,
        normalize: Some(true),
    };
    let vectors = model.encode(&anchors, &options)?;
    let labels = kmeans(&vectors, k, seed)?;
    Ok(anchors.into_iter().map(String::from).zip(labels).collect())
}
