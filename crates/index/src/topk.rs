//! Search results and the bounded heap that keeps the best `k` of a stream of scores.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One search result: an id and its similarity score (higher is more similar).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The id given when the vector was added.
    pub id: String,
    /// Cosine similarity or inner product, per the index's [`Metric`](crate::Metric).
    pub score: f32,
}

/// The result order: higher score first, ties by ascending id. `Less` means `a` ranks first.
fn rank(a_score: f32, a_id: &str, b_score: f32, b_id: &str) -> Ordering {
    b_score.total_cmp(&a_score).then_with(|| a_id.cmp(b_id))
}

/// Sorts hits into result order.
pub(crate) fn sort_hits(hits: &mut [Hit]) {
    hits.sort_by(|a, b| rank(a.score, &a.id, b.score, &b.id));
}

/// A candidate; in a max-heap of these the root is the candidate that ranks last.
#[derive(Debug, Clone, Copy)]
struct Candidate<'a> {
    score: f32,
    id: &'a str,
}

impl Ord for Candidate<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        rank(self.score, self.id, other.score, other.id)
    }
}

impl PartialOrd for Candidate<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate<'_> {}

/// The best `k` candidates seen so far, in a bounded heap whose root is the one to evict next.
pub(crate) struct TopK<'a> {
    k: usize,
    heap: BinaryHeap<Candidate<'a>>,
    /// Score of the root once the heap is full: anything below it cannot enter.
    floor: f32,
}

impl<'a> TopK<'a> {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)),
            floor: f32::NEG_INFINITY,
        }
    }

    /// Offers `scores[i]` for `ids[i]`. The common case, a score below the floor, costs one
    /// comparison.
    pub(crate) fn scan(&mut self, scores: &[f32], ids: &'a [String]) {
        for (&score, id) in scores.iter().zip(ids) {
            if score >= self.floor {
                self.offer(score, id);
            }
        }
    }

    fn offer(&mut self, score: f32, id: &'a str) {
        // `+ 0.0` turns -0.0 into 0.0, so that equal scores compare equal under `total_cmp`.
        let candidate = Candidate {
            score: score + 0.0,
            id,
        };
        if self.heap.len() < self.k {
            self.heap.push(candidate);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if candidate < *worst {
                *worst = candidate;
            }
        }
        if self.heap.len() == self.k {
            if let Some(worst) = self.heap.peek() {
                self.floor = worst.score;
            }
        }
    }

    /// Adds everything `other` kept.
    pub(crate) fn merge(&mut self, other: TopK<'a>) {
        for c in other.heap {
            self.offer(c.score, c.id);
        }
    }

    /// The kept candidates, best first.
    pub(crate) fn into_hits(self) -> Vec<Hit> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| Hit {
                id: c.id.to_owned(),
                score: c.score,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_k_with_ties_by_ascending_id() {
        let ids: Vec<String> = ["e", "b", "d", "a", "c", "f"].map(String::from).into();
        let scores = [0.5, 0.9, 0.5, 0.5, -0.0, 0.9];
        let mut top = TopK::new(4);
        top.scan(&scores, &ids);
        let hits = top.into_hits();
        let got: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(got, ["b", "f", "a", "d"]);
    }

    #[test]
    fn merge_equals_one_scan() {
        let ids: Vec<String> = (0..50).map(|i| format!("{i:02}")).collect();
        let scores: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32).collect();
        let mut whole = TopK::new(7);
        whole.scan(&scores, &ids);
        let (mut a, mut b) = (TopK::new(7), TopK::new(7));
        a.scan(&scores[..20], &ids[..20]);
        b.scan(&scores[20..], &ids[20..]);
        a.merge(b);
        assert_eq!(a.into_hits(), whole.into_hits());
    }

    #[test]
    fn zero_signs_tie() {
        let ids: Vec<String> = ["b", "a"].map(String::from).into();
        let mut top = TopK::new(1);
        top.scan(&[0.0, -0.0], &ids);
        assert_eq!(top.into_hits()[0].id, "a");
    }
}
