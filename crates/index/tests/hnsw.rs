//! HNSW recall against exact search on real embeddings, and its removal and rebuild.

use embedtune_index::{FlatIndex, HnswIndex, HnswParams, Metric, VectorIndex};

use crate::common::{fixture, ids, m, read_f16, recall, shared_vectors, DIM};

fn build(base: &[f32], ids: &[String]) -> (HnswIndex, FlatIndex) {
    let mut hnsw = HnswIndex::new(DIM, HnswParams::default()).unwrap();
    hnsw.add(ids, &m(base, hnsw.dim())).unwrap();
    let mut flat = FlatIndex::new(DIM, Metric::Cosine).unwrap();
    flat.add(ids, &m(base, flat.dim())).unwrap();
    (hnsw, flat)
}

#[test]
fn hnsw_recall_on_fixture_slice() {
    let (base, queries) = fixture();
    let ids = ids(base.len() / DIM);
    let (hnsw, flat) = build(&base, &ids);
    let truth = flat.search_batch(&m(&queries, flat.dim()), 10).unwrap();
    let r128 = recall(
        &hnsw
            .search_batch_with_ef(&m(&queries, hnsw.dim()), 10, 128)
            .unwrap(),
        &truth,
        10,
    );
    let r16 = recall(
        &hnsw
            .search_batch_with_ef(&m(&queries, hnsw.dim()), 10, 16)
            .unwrap(),
        &truth,
        10,
    );
    eprintln!(
        "fixture (2,000 × 384, 100 queries): recall@10 {r16:.4} at ef 16, {r128:.4} at ef 128"
    );
    assert!(r128 >= 0.99, "recall@10 at ef 128: {r128}");
    assert!(r16 <= r128 + 1e-9, "a wider search cannot lose recall here");
}

#[test]
fn hnsw_recall_on_shared_scifact_vectors() {
    let Some(dir) = shared_vectors() else { return };
    let base = read_f16(&dir.join("scifact_sentences.f16"));
    let queries = read_f16(&dir.join("scifact_queries.f16"));
    assert_eq!((base.len() / DIM, queries.len() / DIM), (45_391, 1_109));
    let ids = ids(base.len() / DIM);
    let (hnsw, flat) = build(&base, &ids);
    let truth = flat.search_batch(&m(&queries, flat.dim()), 10).unwrap();
    let r = recall(
        &hnsw
            .search_batch_with_ef(&m(&queries, hnsw.dim()), 10, 128)
            .unwrap(),
        &truth,
        10,
    );
    eprintln!("SciFact (45,391 × 384, 1,109 queries): recall@10 {r:.4} at ef 128");
    assert!(r >= 0.99, "recall@10 at ef 128: {r}");
}

#[test]
fn hnsw_query_equal_to_an_indexed_vector() {
    // DistDot without simdeez asserts 1 - dot >= 0, which rounding breaks for a vector with
    // itself; the index clamps, and returns the vector itself first with score ~1
    let (base, _) = fixture();
    let ids = ids(500);
    let (hnsw, _) = build(&base[..500 * DIM], &ids);
    for i in (0..500).step_by(7) {
        let v = &base[i * DIM..(i + 1) * DIM];
        let hits = hnsw.search_with_ef(v, 3, 32).unwrap();
        assert_eq!(hits[0].id, ids[i]);
        assert!((hits[0].score - 1.0).abs() < 1e-5, "{}", hits[0].score);
        // a scaled copy is the same direction under cosine
        let scaled: Vec<f32> = v.iter().map(|x| x * 1e6).collect();
        assert_eq!(hnsw.search_with_ef(&scaled, 1, 32).unwrap()[0].id, ids[i]);
    }
}

#[test]
fn hnsw_batch_equals_single_queries() {
    let (base, queries) = fixture();
    let ids = ids(base.len() / DIM);
    let (hnsw, _) = build(&base, &ids);
    let batch = hnsw
        .search_batch_with_ef(&m(&queries, hnsw.dim()), 10, 48)
        .unwrap();
    for (q, hits) in queries.chunks_exact(DIM).zip(&batch) {
        assert_eq!(&hnsw.search_with_ef(q, 10, 48).unwrap(), hits);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }
}

#[test]
fn hnsw_remove_filters_results_and_rebuild_drops_tombstones() {
    let (base, queries) = fixture();
    let n = base.len() / DIM;
    let ids = ids(n);
    let (mut hnsw, mut flat) = build(&base, &ids);
    // remove the current top hit of every query, and every 5th vector
    let mut gone: Vec<String> = flat
        .search_batch(&m(&queries, flat.dim()), 1)
        .unwrap()
        .into_iter()
        .map(|h| h[0].id.clone())
        .chain((0..n).step_by(5).map(|i| ids[i].clone()))
        .collect();
    gone.sort();
    gone.dedup();
    hnsw.remove(&gone).unwrap();
    flat.remove(&gone).unwrap();
    assert_eq!(hnsw.len(), n - gone.len());
    assert_eq!(hnsw.tombstones(), gone.len());

    let truth = flat.search_batch(&m(&queries, flat.dim()), 10).unwrap();
    let found = hnsw
        .search_batch_with_ef(&m(&queries, hnsw.dim()), 10, 128)
        .unwrap();
    for hits in &found {
        assert!(hits.iter().all(|h| gone.binary_search(&h.id).is_err()));
    }
    let before = recall(&found, &truth, 10);

    hnsw.rebuild();
    assert_eq!(hnsw.tombstones(), 0);
    assert_eq!(hnsw.len(), n - gone.len());
    let after = recall(
        &hnsw
            .search_batch_with_ef(&m(&queries, hnsw.dim()), 10, 128)
            .unwrap(),
        &truth,
        10,
    );
    eprintln!(
        "recall@10 at ef 128 with {} tombstones {before:.4}, rebuilt {after:.4}",
        gone.len()
    );
    assert!(before >= 0.97 && after >= 0.99, "{before} {after}");

    // removed ids can be added again, as new nodes
    let i = ids.binary_search(&gone[0]).unwrap();
    hnsw.add(&gone[..1], &m(&base[i * DIM..(i + 1) * DIM], hnsw.dim()))
        .unwrap();
    let hit = &hnsw.search(&base[i * DIM..(i + 1) * DIM], 1).unwrap()[0];
    assert_eq!(hit.id, gone[0]);
}

#[test]
fn hnsw_compact_keeps_results_and_additions_work() {
    let (base, queries) = fixture();
    let ids = ids(base.len() / DIM);
    let (mut hnsw, _) = build(&base[..1500 * DIM], &ids[..1500]);
    let before = hnsw
        .search_batch_with_ef(&m(&queries, hnsw.dim()), 10, 32)
        .unwrap();
    hnsw.compact().unwrap();
    assert_eq!(
        hnsw.search_batch_with_ef(&m(&queries, hnsw.dim()), 10, 32)
            .unwrap(),
        before
    );
    hnsw.add(&ids[1500..], &m(&base[1500 * DIM..], hnsw.dim()))
        .unwrap();
    assert_eq!(hnsw.len(), 2000);
    let v = &base[1999 * DIM..];
    assert_eq!(hnsw.search(v, 1).unwrap()[0].id, ids[1999]);
    HnswIndex::new(DIM, HnswParams::default())
        .unwrap()
        .compact()
        .unwrap();
}

/// Many tiny graphs, built while other threads are busy (as in a loaded CI run): every point
/// must be reachable from the entry point, so a search for k = n returns all n points. Parallel
/// insertion of a graph's first points could leave one without links (an evaluator test on a
/// 4-document corpus once found nothing under load).
#[test]
fn hnsw_tiny_graphs_link_every_point() {
    use rayon::prelude::*;
    let dim = 2;
    (0..400u32).into_par_iter().for_each(|seed| {
        let n = 3 + (seed as usize % 6);
        let base: Vec<f32> = (0..n)
            .flat_map(|i| {
                let a = (seed as f32 * 0.37 + i as f32 * 1.9).sin() * 3.1;
                [a.cos(), a.sin()]
            })
            .collect();
        let ids: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
        let mut hnsw = HnswIndex::new(dim, HnswParams::default()).unwrap();
        hnsw.add(&ids, &m(&base, hnsw.dim())).unwrap();
        for q in base.chunks(dim) {
            let found = hnsw.search(q, n).unwrap();
            assert_eq!(found.len(), n, "seed {seed}: {found:?}");
        }
    });
}
