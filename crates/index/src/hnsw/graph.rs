//! The `hnsw_rs` graph behind [`HnswIndex`](super::HnswIndex): its distance, ownership,
//! insertion and search, and the round trip through `hnsw_rs`'s dump files. Everything that
//! touches `hnsw_rs` lives here.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use hnsw_rs::anndists::dist::distances::Distance;
use hnsw_rs::prelude::{AnnT, Hnsw, HnswIo};

use super::dump::LAYERS;
use super::layout::{Layout, NodeLinks};
use super::HnswParams;
use crate::error::IndexError;
use crate::kernels;

/// The first points of a graph are inserted one at a time (see `Graph::insert`).
const SERIAL_FIRST: usize = 256;

/// Cosine distance between unit vectors: `1 − dot`, clamped at 0.
///
/// `hnsw_rs` asserts that distances are never negative; rounding can make the dot product of
/// a unit vector with itself exceed 1 by an ulp, hence the clamp (which also maps a NaN to 0).
/// Same role as `anndists`' `DistDot`, with an FMA kernel that keeps four accumulators in flight
/// (the comparison with `DistDot` is in `BENCHMARKS.md`).
#[derive(Debug, Default, Clone, Copy)]
struct CosineDistance;

impl Distance<f32> for CosineDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - kernels::dot(a, b)).max(0.0)
    }
}

/// The distance's name as `hnsw_rs` records it in a dump (and checks on reload).
pub(super) fn distance_name() -> &'static str {
    std::any::type_name::<CosineDistance>()
}

type Graph<'io> = Hnsw<'io, f32, CosineDistance>;

self_cell::self_cell!(
    /// The graph together with the `HnswIo` it was reloaded from, which its type borrows.
    /// (Nothing is actually borrowed without memory-mapping; a new graph gets a default one.)
    pub(super) struct OwnedGraph {
        owner: HnswIo,
        #[not_covariant]
        dependent: Graph,
    }
);

/// Base name of the dump files (`<base>.hnsw.graph`, `<base>.hnsw.data`).
const DUMP_BASE: &str = "index";

impl OwnedGraph {
    /// An empty graph.
    pub(super) fn empty(params: &HnswParams) -> Self {
        OwnedGraph::new(HnswIo::default(), |_| {
            Hnsw::new(
                params.m,
                1024,
                LAYERS,
                params.ef_construction,
                CosineDistance,
            )
        })
    }

    /// Inserts unit-norm rows as slots `first_slot..`, in parallel.
    pub(super) fn insert(&self, rows: &[f32], dim: usize, first_slot: usize) {
        let items: Vec<(&[f32], usize)> = rows
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, row)| (row, first_slot + i))
            .collect();
        // Parallel insertion races while the graph is small: points inserted while the entry
        // point is being chosen can be left without links (a search from the entry point then
        // misses them). The first points of a graph go in one by one; the rest in parallel.
        let serial = items.len().min(SERIAL_FIRST.saturating_sub(first_slot));
        let (first, rest) = items.split_at(serial);
        self.with_dependent(|_, g| {
            for &item in first {
                g.insert_slice(item);
            }
            if !rest.is_empty() {
                g.parallel_insert_slice(&rest.to_vec());
            }
        });
    }

    /// Up to `k` (slot, cosine similarity) pairs for a unit-norm query; with `live`, only slots
    /// it accepts (`hnsw_rs`'s `search_filter`).
    pub(super) fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        live: Option<&dyn Fn(usize) -> bool>,
    ) -> Vec<(usize, f32)> {
        let found = self.with_dependent(|_, g| match live {
            None => g.search(query, k, ef),
            Some(live) => {
                let filter = |slot: &usize| live(*slot);
                g.search_filter(query, k, ef, Some(&filter))
            }
        });
        found.iter().map(|n| (n.d_id, 1.0 - n.distance)).collect()
    }

    /// Every node's slot and vector.
    pub(super) fn points(&self) -> Vec<(usize, Vec<f32>)> {
        self.with_dependent(|_, g| {
            g.get_point_indexation()
                .into_iter()
                .map(|p| (p.get_origin_id(), p.get_v().to_vec()))
                .collect()
        })
    }

    /// The graph in flat arrays for searching ([`Layout`]); `None` if `hnsw_rs` reports
    /// something other than nodes `0..n` with links among them.
    pub(super) fn layout(&self, dim: usize) -> Option<Layout> {
        self.with_dependent(|_, g| {
            let points = g.get_point_indexation();
            let nodes: Vec<_> = points.into_iter().collect();
            let links = nodes.iter().map(|p| {
                let level = p.get_point_id().0 as usize;
                let mut layers: Vec<Vec<usize>> = p
                    .get_neighborhood_id()
                    .into_iter()
                    .map(|l| l.into_iter().map(|nb| nb.d_id).collect())
                    .collect();
                layers.resize(level + 1, Vec::new());
                NodeLinks {
                    slot: p.get_origin_id(),
                    vector: p.get_v(),
                    layers,
                }
            });
            Layout::new(dim, nodes.len(), links)
        })
    }

    /// The dump's graph and data streams, written through a scratch directory made in `dir`.
    /// The graph must not be empty (`hnsw_rs` cannot dump a graph without an entry point).
    pub(super) fn dump_bytes(&self, dir: &Path) -> Result<(Vec<u8>, Vec<u8>), IndexError> {
        let scratch = scratch_dir(dir)?;
        let base = self.dump(scratch.path())?;
        let (graph, data) = dump_paths(scratch.path(), &base);
        let read = |p: &Path| std::fs::read(p).map_err(|e| IndexError::io(p, e));
        Ok((read(&graph)?, read(&data)?))
    }

    /// Rebuilds a graph from dump streams, which [`check`](super::dump::check) has accepted,
    /// through a scratch directory in `dir`.
    pub(super) fn from_dump_bytes(
        dir: &Path,
        graph: &[u8],
        data: &[u8],
    ) -> Result<Self, IndexError> {
        let scratch = scratch_dir(dir)?;
        let (graph_path, data_path) = dump_paths(scratch.path(), DUMP_BASE);
        std::fs::write(&graph_path, graph).map_err(|e| IndexError::io(&graph_path, e))?;
        std::fs::write(&data_path, data).map_err(|e| IndexError::io(&data_path, e))?;
        Self::reload(scratch.path(), DUMP_BASE)
    }

    /// Dumps into `dir`; returns the dump's base name.
    fn dump(&self, dir: &Path) -> Result<String, IndexError> {
        guarded("dump the graph", || {
            self.with_dependent(|_, g| g.file_dump(dir, DUMP_BASE))
        })
    }

    /// Reloads the dump `<dir>/<base>.hnsw.*`.
    fn reload(dir: &Path, base: &str) -> Result<Self, IndexError> {
        let io = HnswIo::new(dir, base);
        let mut graph = guarded("reload the graph", || {
            OwnedGraph::try_new(io, |io| io.load_hnsw_with_dist(CosineDistance))
        })?;
        // a reloaded hnsw_rs graph extends candidates on insertion; a new one does not
        graph.with_dependent_mut(|_, g| g.set_extend_candidates(false));
        Ok(graph)
    }
}

fn dump_paths(dir: &Path, base: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{base}.hnsw.graph")),
        dir.join(format!("{base}.hnsw.data")),
    )
}

/// A scratch directory in `dir` for dump files (removed when dropped).
fn scratch_dir(dir: &Path) -> Result<tempfile::TempDir, IndexError> {
    tempfile::Builder::new()
        .prefix(".embedtune-hnsw-")
        .tempdir_in(dir)
        .map_err(|e| IndexError::io(dir, e))
}

/// Runs an `hnsw_rs` call that may fail or panic (its file I/O panics on some errors) and turns
/// either into [`IndexError::Hnsw`]. Inputs are validated beforehand; this is the last line.
fn guarded<R, E: fmt::Display>(
    action: &'static str,
    f: impl FnOnce() -> Result<R, E>,
) -> Result<R, IndexError> {
    let message = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => return Ok(r),
        Ok(Err(e)) => e.to_string(),
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into()),
    };
    Err(IndexError::Hnsw { action, message })
}
