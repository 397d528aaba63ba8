//! The HNSW graph laid out for searching: vectors and neighbour lists in flat arrays indexed by
//! slot, and a search over them that allocates nothing per query.
//!
//! `hnsw_rs` builds the graph (and saves and reloads it); its own search pays for its
//! flexibility on every hop: each neighbour is an `Arc<Point>` that must be dereferenced (a cache
//! miss) just to learn its id, the visited set is a `HashMap` of `Arc`s, and every candidate is a
//! fresh `Arc` allocation. Here a node's layer-0 links are `u32` slots in one array, its vector
//! sits in another at `slot × dim`, visited nodes are marked in a per-thread array of epochs, and
//! the vectors of a node's unvisited neighbours are prefetched together before any is scored.

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::kernels;

/// A distance (`−dot`: smaller is closer) with a total order, for the heaps.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Dist(f32);

impl Eq for Dist {}

impl PartialOrd for Dist {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Dist {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// One node as the graph builder reports it: its slot, vector, and neighbour slots per layer
/// (layer 0 first; a node on level `L` has `L + 1` lists).
pub(super) struct NodeLinks<'a> {
    pub slot: usize,
    pub vector: &'a [f32],
    pub layers: Vec<Vec<usize>>,
}

/// The graph in flat arrays.
#[derive(Debug)]
pub(super) struct Layout {
    dim: usize,
    /// Unit vectors, row `slot`.
    vectors: AlignedRows,
    /// Per slot, `stride0` entries: the number of layer-0 links, then the links.
    links0: Vec<u32>,
    stride0: usize,
    /// Per slot, where its upper-layer lists start in `upper` (only meaningful on level ≥ 1).
    upper_start: Vec<usize>,
    /// Layer `l ≥ 1` of a node: `stride_up` entries at `upper_start + (l − 1) × stride_up`,
    /// the number of links then the links.
    upper: Vec<u32>,
    stride_up: usize,
    entry: u32,
    top: usize,
}

impl Layout {
    /// Lays out `n` nodes (slots `0..n`, each reported once). `None` if the nodes do not form
    /// such a graph (a slot missing, repeated or out of range, a link to no node, a vector of
    /// the wrong length), so the caller keeps searching with the builder's own search.
    pub(super) fn new<'a>(
        dim: usize,
        n: usize,
        nodes: impl IntoIterator<Item = NodeLinks<'a>>,
    ) -> Option<Layout> {
        if n == 0 || n > u32::MAX as usize {
            return None;
        }
        let mut vecs: Vec<Option<&[f32]>> = vec![None; n];
        let mut lists: Vec<Vec<Vec<usize>>> = vec![Vec::new(); n];
        let (mut max0, mut max_up, mut top, mut entry) = (0, 0, 0, None);
        for node in nodes {
            let slot = node.slot;
            if slot >= n || vecs[slot].is_some() || node.vector.len() != dim {
                return None;
            }
            if node.layers.is_empty() || node.layers.iter().flatten().any(|&s| s >= n) {
                return None;
            }
            vecs[slot] = Some(node.vector);
            max0 = max0.max(node.layers[0].len());
            for l in &node.layers[1..] {
                max_up = max_up.max(l.len());
            }
            let level = node.layers.len() - 1;
            if entry.is_none() || level > top {
                top = level;
                entry = Some(slot);
            }
            lists[slot] = node.layers;
        }
        let entry = entry?;
        let vecs: Vec<&[f32]> = vecs.into_iter().collect::<Option<_>>()?;
        // a link on layer l must lead to a node that is on layer l (hnsw_rs's lists can hold
        // others); drop any that does not
        let levels: Vec<usize> = lists.iter().map(|l| l.len() - 1).collect();
        for layers in &mut lists {
            for (l, links) in layers.iter_mut().enumerate().skip(1) {
                links.retain(|&s| levels[s] >= l);
            }
        }
        // Nodes stay in slot order. (Renumbering them breadth-first from the entry point, so
        // that neighbours sit together in memory, made no measurable difference on SciFact.)
        let (stride0, stride_up) = (max0 + 1, max_up + 1);
        let mut vectors = AlignedRows::zeroed(n * dim);
        let mut links0 = vec![0u32; n * stride0];
        let mut upper_start = vec![0usize; n];
        let mut upper = Vec::new();
        for (node, layers) in lists.iter().enumerate() {
            vectors.as_mut_slice()[node * dim..(node + 1) * dim].copy_from_slice(vecs[node]);
            let row = &mut links0[node * stride0..(node + 1) * stride0];
            row[0] = layers[0].len() as u32;
            for (dst, &s) in row[1..].iter_mut().zip(&layers[0]) {
                *dst = s as u32;
            }
            upper_start[node] = upper.len();
            for l in &layers[1..] {
                let at = upper.len();
                upper.resize(at + stride_up, 0);
                upper[at] = l.len() as u32;
                for (dst, &s) in upper[at + 1..].iter_mut().zip(l) {
                    *dst = s as u32;
                }
            }
        }
        Some(Layout {
            dim,
            vectors,
            links0,
            stride0,
            upper_start,
            upper,
            stride_up,
            entry: entry as u32,
            top,
        })
    }

    /// Number of nodes.
    pub(super) fn len(&self) -> usize {
        self.upper_start.len()
    }

    fn vector(&self, slot: u32) -> &[f32] {
        let at = slot as usize * self.dim;
        &self.vectors.as_slice()[at..at + self.dim]
    }

    fn dist(&self, query: &[f32], slot: u32) -> f32 {
        -kernels::dot(query, self.vector(slot))
    }

    fn links(&self, slot: u32, layer: usize) -> &[u32] {
        let row = if layer == 0 {
            let at = slot as usize * self.stride0;
            &self.links0[at..at + self.stride0]
        } else {
            let at = self.upper_start[slot as usize] + (layer - 1) * self.stride_up;
            &self.upper[at..at + self.stride_up]
        };
        &row[1..1 + row[0] as usize]
    }

    /// Up to `k` (slot, inner product) pairs for a unit query, best first, from a candidate list
    /// of `ef` (≥ `k`) at layer 0; slots with `removed[slot]` are walked through but not returned.
    pub(super) fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        removed: Option<&[bool]>,
    ) -> Vec<(usize, f32)> {
        let ef = ef.max(k).max(1);
        // greedy descent through the upper layers
        let mut ep = self.entry;
        let mut d = self.dist(query, ep);
        for layer in (1..=self.top).rev() {
            loop {
                let mut moved = false;
                for &nb in self.links(ep, layer) {
                    let dn = self.dist(query, nb);
                    if dn < d {
                        (d, ep, moved) = (dn, nb, true);
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let found = self.search_layer0(&mut s, query, ep, d, ef, removed);
            found
                .into_iter()
                .take(k)
                .map(|(d, slot)| (slot as usize, -d))
                .collect()
        })
    }

    /// The best-first search at layer 0 (the candidate list `ef`), as in the HNSW paper; with
    /// tombstones, the search goes on until `ef` live nodes are found (as hnswlib does).
    fn search_layer0(
        &self,
        s: &mut Scratch,
        query: &[f32],
        ep: u32,
        d_ep: f32,
        ef: usize,
        removed: Option<&[bool]>,
    ) -> Vec<(f32, u32)> {
        let is_live = |slot: u32| removed.is_none_or(|r| !r[slot as usize]);
        s.start(self.len());
        let Scratch {
            visited,
            epoch,
            candidates,
            results,
            fresh,
        } = s;
        let epoch = *epoch;
        visited[ep as usize] = epoch;
        candidates.push(Reverse((Dist(d_ep), ep)));
        if is_live(ep) {
            results.push((Dist(d_ep), ep));
        }
        let mut bound = if results.is_empty() {
            f32::INFINITY
        } else {
            d_ep
        };
        while let Some(Reverse((Dist(dc), c))) = candidates.pop() {
            if dc > bound && (results.len() >= ef || removed.is_none()) {
                break;
            }
            fresh.clear();
            for &nb in self.links(c, 0) {
                let mark = &mut visited[nb as usize];
                if *mark != epoch {
                    *mark = epoch;
                    fresh.push(nb);
                    prefetch(self.vector(nb));
                }
            }
            for &nb in fresh.iter() {
                let dn = self.dist(query, nb);
                if results.len() < ef || dn < bound {
                    candidates.push(Reverse((Dist(dn), nb)));
                    if is_live(nb) {
                        results.push((Dist(dn), nb));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                    if let Some(&(Dist(worst), _)) = results.peek() {
                        bound = worst;
                    }
                }
            }
        }
        let mut out: Vec<(f32, u32)> = results.drain().map(|(Dist(d), s)| (d, s)).collect();
        out.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        out
    }
}

/// `f32` rows whose first element sits on a 64-byte boundary, so that a row of a multiple of
/// 16 values spans whole cache lines.
#[derive(Debug)]
struct AlignedRows {
    buf: Vec<f32>,
    start: usize,
    len: usize,
}

impl AlignedRows {
    fn zeroed(len: usize) -> Self {
        let buf = vec![0f32; len + 16];
        let misalign = (buf.as_ptr() as usize % 64) / 4;
        let start = (16 - misalign) % 16;
        AlignedRows { buf, start, len }
    }

    fn as_slice(&self) -> &[f32] {
        &self.buf[self.start..self.start + self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

/// Per-thread search buffers, reused across queries.
#[derive(Default)]
struct Scratch {
    /// `visited[slot] == epoch` marks a node seen by the current search.
    visited: Vec<u32>,
    epoch: u32,
    /// Nodes to expand, closest first.
    candidates: BinaryHeap<Reverse<(Dist, u32)>>,
    /// The best `ef` live nodes so far, farthest on top.
    results: BinaryHeap<(Dist, u32)>,
    /// A node's unvisited neighbours.
    fresh: Vec<u32>,
}

impl Scratch {
    /// Readies the buffers for a search over `n` nodes.
    fn start(&mut self, n: usize) {
        if self.visited.len() < n {
            self.visited.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.visited.iter_mut().for_each(|v| *v = 0);
            self.epoch = 1;
        }
        self.candidates.clear();
        self.results.clear();
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Asks the CPU to start loading the first cache lines of a vector.
#[inline(always)]
fn prefetch(v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // 64-byte lines; the hardware prefetcher follows on from the first few
        let lines = (v.len() * 4).div_ceil(64).min(4);
        for i in 0..lines {
            // SAFETY: prefetching is a hint that never faults, and the address is inside `v`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(v.as_ptr().add(i * 16).cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1-d "graph": points on a unit circle, each linked to its two neighbours on layer 0
    /// and node 0 alone on layer 1.
    fn ring(n: usize) -> (Vec<f32>, Layout) {
        let vecs: Vec<f32> = (0..n)
            .flat_map(|i| {
                let a = i as f32 / n as f32 * std::f32::consts::TAU;
                [a.cos(), a.sin()]
            })
            .collect();
        let nodes = (0..n).map(|i| NodeLinks {
            slot: i,
            vector: &vecs[i * 2..i * 2 + 2],
            layers: {
                let mut l = vec![vec![(i + 1) % n, (i + n - 1) % n]];
                if i == 0 {
                    l.push(vec![]);
                }
                l
            },
        });
        let layout = Layout::new(2, n, nodes.collect::<Vec<_>>()).expect("valid graph");
        (vecs.clone(), layout)
    }

    #[test]
    fn walks_the_ring_to_the_nearest_points() {
        let (vecs, layout) = ring(64);
        // query at node 40's position
        let q = &vecs[80..82];
        let hits = layout.search(q, 3, 8, None);
        let slots: Vec<usize> = hits.iter().map(|h| h.0).collect();
        assert_eq!(slots[0], 40);
        assert!(slots[1..].contains(&39) && slots[1..].contains(&41));
        assert!((hits[0].1 - 1.0).abs() < 1e-6);
        assert!(hits[0].1 >= hits[1].1 && hits[1].1 >= hits[2].1);
    }

    #[test]
    fn tombstones_are_walked_through_but_not_returned() {
        let (vecs, layout) = ring(64);
        let mut removed = vec![false; 64];
        removed[39..=41].fill(true);
        let hits = layout.search(&vecs[80..82], 2, 4, Some(&removed));
        let mut slots: Vec<usize> = hits.iter().map(|h| h.0).collect();
        slots.sort_unstable();
        assert_eq!(slots, vec![38, 42]);
    }

    #[test]
    fn rejects_inconsistent_graphs() {
        let v = [1.0f32, 0.0];
        let node = |slot, links: Vec<usize>| NodeLinks {
            slot,
            vector: &v,
            layers: vec![links],
        };
        assert!(Layout::new(2, 2, vec![node(0, vec![1]), node(1, vec![0])]).is_some());
        assert!(
            Layout::new(2, 2, vec![node(0, vec![1])]).is_none(),
            "slot 1 missing"
        );
        assert!(Layout::new(2, 2, vec![node(0, vec![1]), node(0, vec![1])]).is_none());
        assert!(Layout::new(2, 2, vec![node(0, vec![5]), node(1, vec![0])]).is_none());
        assert!(Layout::new(3, 2, vec![node(0, vec![1]), node(1, vec![0])]).is_none());
    }
}
