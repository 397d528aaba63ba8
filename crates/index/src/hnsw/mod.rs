//! Approximate search: a hierarchical navigable small-world graph from `hnsw_rs`.

mod dump;
mod graph;
mod layout;

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use embedtune_core::Embeddings;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use self::dump::DumpError;
use self::graph::OwnedGraph;
use self::layout::Layout;
use crate::error::IndexError;
use crate::file::{self, IndexFile, Kind};
use crate::ids::IdMap;
use crate::index::VectorIndex;
use crate::topk::{sort_hits, Hit};
use crate::vectors::{
    check_dim, check_search, prepare_batch, prepare_queries, prepare_query, Metric,
};

/// HNSW construction and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node and layer (`M`; layer 0 keeps `2 × M`). 2 ..= 255, default 16.
    pub m: usize,
    /// Candidate list size while inserting: larger builds a better graph, slower. Default 200.
    pub ef_construction: usize,
    /// Default candidate list size while searching (recall against speed), at least 1; can be
    /// overridden per query with [`HnswIndex::search_with_ef`]. A search uses `max(ef, k)`.
    /// Default 64.
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
        }
    }
}

impl HnswParams {
    fn validate(&self) -> Result<(), IndexError> {
        let invalid = |name, value, reason| {
            Err(IndexError::InvalidParameter {
                name,
                value,
                reason,
            })
        };
        // hnsw_rs keeps M in a byte (and exits the process above 256)
        if !(2..=255).contains(&self.m) {
            return invalid("m", self.m, "must be in 2..=255");
        }
        if self.ef_construction == 0 {
            return invalid("ef_construction", 0, "must be at least 1");
        }
        check_ef(self.ef_search)
    }
}

fn check_ef(ef: usize) -> Result<(), IndexError> {
    if ef == 0 {
        return Err(IndexError::InvalidParameter {
            name: "ef_search",
            value: 0,
            reason: "must be at least 1",
        });
    }
    Ok(())
}

/// Byte order and word size of the machine that wrote an `hnsw_rs` dump (its format is native).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Platform {
    little_endian: bool,
    usize_bytes: usize,
}

impl Platform {
    fn host() -> Self {
        Platform {
            little_endian: cfg!(target_endian = "little"),
            usize_bytes: std::mem::size_of::<usize>(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Manifest<'a> {
    dim: usize,
    metric: Metric,
    params: HnswParams,
    /// Ids by slot (`hnsw_rs`'s data id), removed ones included.
    ids: Cow<'a, [String]>,
    /// Removed slots.
    removed: Vec<usize>,
    platform: Platform,
}

/// Approximate nearest-neighbour index: an HNSW graph (`hnsw_rs` 0.3.5) under cosine similarity.
///
/// Vectors are L2-normalised on the way in and compared by inner product (cosine distance
/// `1 − dot`); scores are cosine similarities. Insertion is parallel (rayon); `ef_search` can
/// be set per query. String ids are mapped to dense internal ids ("slots").
///
/// **Removal.** `hnsw_rs` cannot delete nodes, so [`remove`](VectorIndex::remove) leaves a
/// tombstone: the node stays in the graph (searches still walk through it) but is filtered from
/// results, and its id may be added again (as a new node). With tombstones a search goes on
/// until it has `ef` live candidates (as hnswlib's filtered search does), so it is slower, and a
/// graph with many tombstones loses recall; [`rebuild`](HnswIndex::rebuild) builds a fresh
/// graph from the live vectors. With tombstones a search can return fewer than `k` hits.
///
/// **Speed.** `hnsw_rs` builds the graph, saves and reloads it; searches run over a copy of
/// it laid out in flat arrays (vectors by slot, neighbour lists of `u32` slots, a reusable
/// per-thread visited array, prefetching), made by the first search after vectors were added or
/// the index was loaded ([`compact`](HnswIndex::compact) makes it up front). The copy holds the vectors a second
/// time: memory is about `2 × 4 × dim` bytes per vector plus the links. Measurements against hnswlib:
/// `BENCHMARKS.md`.
pub struct HnswIndex {
    dim: usize,
    params: HnswParams,
    ids: IdMap,
    /// Tombstones by slot (derivable from `ids`; kept as a bitmap for the search filter).
    removed: Vec<bool>,
    graph: OwnedGraph,
    /// The graph laid out for searching, made on first use after a change; `None` inside if
    /// `hnsw_rs`'s graph could not be laid out (searches then use `hnsw_rs`'s own).
    layout: OnceLock<Option<Layout>>,
}

impl fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("params", &self.params)
            .field("len", &self.ids.live())
            .field("tombstones", &self.tombstones())
            .finish()
    }
}

impl HnswIndex {
    /// An empty index for vectors of `dim` values.
    pub fn new(dim: usize, params: HnswParams) -> Result<Self, IndexError> {
        if dim == 0 {
            return Err(IndexError::ZeroDimension);
        }
        params.validate()?;
        Ok(HnswIndex {
            dim,
            params,
            ids: IdMap::default(),
            removed: Vec::new(),
            graph: OwnedGraph::empty(&params),
            layout: OnceLock::new(),
        })
    }

    /// The index's parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Sets the default `ef_search` (at least 1).
    pub fn set_ef_search(&mut self, ef: usize) -> Result<(), IndexError> {
        check_ef(ef)?;
        self.params.ef_search = ef;
        Ok(())
    }

    /// Number of removed vectors still in the graph (0 after [`rebuild`](Self::rebuild)).
    pub fn tombstones(&self) -> usize {
        self.ids.slots() - self.ids.live()
    }

    /// The best `k` hits for one query with candidate list size `ef`.
    pub fn search_with_ef(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        check_ef(ef)?;
        check_search(k, self.len())?;
        let query = prepare_query(query, self.dim, Metric::Cosine)?;
        Ok(self.search_prepared(&query, k, ef))
    }

    /// [`search_with_ef`](Self::search_with_ef) for a row-major batch of queries, in parallel.
    pub fn search_batch_with_ef(
        &self,
        queries: &Embeddings,
        k: usize,
        ef: usize,
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        check_dim("queries", queries, self.dim)?;
        check_ef(ef)?;
        check_search(k, self.len())?;
        let queries = prepare_queries(queries.as_slice(), self.dim, Metric::Cosine)?;
        Ok(queries
            .par_chunks(self.dim)
            .map(|q| self.search_prepared(q, k, ef))
            .collect())
    }

    /// The search layout, made now if the graph changed since the last one.
    fn layout(&self) -> Option<&Layout> {
        self.layout
            .get_or_init(|| {
                let layout = self.graph.layout(self.dim)?;
                (layout.len() == self.ids.slots()).then_some(layout)
            })
            .as_ref()
    }

    fn search_prepared(&self, query: &[f32], k: usize, ef: usize) -> Vec<Hit> {
        let removed = (self.tombstones() > 0).then_some(self.removed.as_slice());
        let found = match self.layout() {
            Some(layout) => layout.search(query, k, ef, removed),
            None => {
                let live = |slot: usize| !self.removed.get(slot).copied().unwrap_or(true);
                let filter = removed.map(|_| &live as &dyn Fn(usize) -> bool);
                self.graph.search(query, k, ef, filter)
            }
        };
        let mut hits: Vec<Hit> = found
            .into_iter()
            .map(|(slot, score)| Hit {
                id: self.ids.id(slot).to_owned(),
                score,
            })
            .collect();
        sort_hits(&mut hits);
        hits
    }

    /// Builds a fresh graph from the live vectors, dropping every tombstone. Internal ids are
    /// renumbered; string ids and search results are unaffected (up to HNSW's approximation).
    pub fn rebuild(&mut self) {
        let mut live = self.graph.points();
        live.retain(|(slot, _)| !self.removed[*slot]);
        live.sort_unstable_by_key(|(slot, _)| *slot);
        let ids: Vec<String> = live
            .iter()
            .map(|(slot, _)| self.ids.id(*slot).to_owned())
            .collect();
        let rows: Vec<f32> = live.into_iter().flat_map(|(_, v)| v).collect();
        let graph = OwnedGraph::empty(&self.params);
        graph.insert(&rows, self.dim, 0);
        let mut map = IdMap::default();
        map.push(&ids);
        self.removed = vec![false; ids.len()];
        self.ids = map;
        self.graph = graph;
        self.layout = OnceLock::new();
    }

    /// Lays the graph out for searching now, instead of on the first search after a change
    /// (vectors added, index loaded or rebuilt); its cost is in `BENCHMARKS.md`.
    pub fn compact(&mut self) -> Result<(), IndexError> {
        if self.ids.slots() > 0 {
            self.layout();
        }
        Ok(())
    }

    /// Loads an index saved by [`VectorIndex::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, IndexError> {
        Self::from_file(&IndexFile::read(path.as_ref())?)
    }

    pub(crate) fn from_file(file: &IndexFile) -> Result<Self, IndexError> {
        file.expect_kind(Kind::Hnsw)?;
        let m: Manifest = file.manifest()?;
        let corrupted = |reason: String| file.corrupted(reason);
        if m.dim == 0 || m.metric != Metric::Cosine {
            return Err(corrupted(format!(
                "manifest: dimension {} with metric {}",
                m.dim,
                m.metric.name()
            )));
        }
        m.params
            .validate()
            .map_err(|e| corrupted(format!("manifest: {e}")))?;
        let n = m.ids.len();
        let mut removed = vec![false; n];
        for &slot in &m.removed {
            *removed
                .get_mut(slot)
                .ok_or_else(|| corrupted(format!("manifest: removed slot {slot} of {n}")))? = true;
        }
        let ids = IdMap::from_slots(m.ids.into_owned(), |s| !removed[s])
            .map_err(|e| corrupted(format!("manifest: {e}")))?;
        let (graph_bytes, data_bytes) = (file.section(1), file.section(2));
        let graph = if n == 0 {
            if !graph_bytes.is_empty() || !data_bytes.is_empty() {
                return Err(corrupted(
                    "graph sections of an empty index are not empty".into(),
                ));
            }
            OwnedGraph::empty(&m.params)
        } else {
            if m.platform != Platform::host() {
                return Err(IndexError::UnsupportedPlatform {
                    path: file.path().to_path_buf(),
                    reason: format!("file {:?}, this machine {:?}", m.platform, Platform::host()),
                });
            }
            let expected = dump::Expected {
                dim: m.dim,
                m: m.params.m,
                ef_construction: m.params.ef_construction,
                points: n,
                distance: graph::distance_name(),
            };
            dump::check(graph_bytes, data_bytes, &expected).map_err(|e| match e {
                DumpError::Dimension { manifest, dump } => IndexError::FileDimensionMismatch {
                    path: file.path().to_path_buf(),
                    reason: format!("the manifest says {manifest}, the HNSW dump {dump}"),
                },
                DumpError::Corrupt(reason) => corrupted(reason),
            })?;
            // hnsw_rs reloads only from files: they go to the system's temporary directory,
            // never beside the index (which may be read-only or shared).
            OwnedGraph::from_dump_bytes(&std::env::temp_dir(), graph_bytes, data_bytes)?
        };
        Ok(HnswIndex {
            dim: m.dim,
            params: m.params,
            ids,
            removed,
            graph,
            layout: OnceLock::new(),
        })
    }
}

impl VectorIndex for HnswIndex {
    fn kind(&self) -> &'static str {
        Kind::Hnsw.name()
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        Metric::Cosine
    }

    fn len(&self) -> usize {
        self.ids.live()
    }

    fn add(&mut self, ids: &[String], vectors: &Embeddings) -> Result<(), IndexError> {
        let rows = prepare_batch(ids, vectors, self.dim, Metric::Cosine)?;
        self.ids.check_new(ids)?;
        self.graph.insert(&rows, self.dim, self.ids.slots());
        self.layout = OnceLock::new();
        self.ids.push(ids);
        self.removed.resize(self.ids.slots(), false);
        Ok(())
    }

    fn remove(&mut self, ids: &[String]) -> Result<(), IndexError> {
        for slot in self.ids.slots_of(ids)? {
            self.ids.forget(slot);
            self.removed[slot as usize] = true;
        }
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>, IndexError> {
        self.search_with_ef(query, k, self.params.ef_search)
    }

    fn search_batch(&self, queries: &Embeddings, k: usize) -> Result<Vec<Vec<Hit>>, IndexError> {
        self.search_batch_with_ef(queries, k, self.params.ef_search)
    }

    fn save(&self, path: &Path) -> Result<(), IndexError> {
        let manifest = Manifest {
            dim: self.dim,
            metric: Metric::Cosine,
            params: self.params,
            ids: Cow::Borrowed(self.ids.by_slot()),
            removed: (0..self.removed.len())
                .filter(|&s| self.removed[s])
                .collect(),
            platform: Platform::host(),
        };
        if self.ids.slots() == 0 {
            // hnsw_rs cannot dump a graph without an entry point
            return file::write(path, Kind::Hnsw, &manifest, &[&[], &[]]);
        }
        let (graph, data) = self.graph.dump_bytes(&std::env::temp_dir())?;
        file::write(path, Kind::Hnsw, &manifest, &[&graph, &data])
    }
}
