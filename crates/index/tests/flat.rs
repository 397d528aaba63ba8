//! Exact search against brute force, and the input errors every index shares.

use embedtune_index::{
    FlatIndex, HnswIndex, HnswParams, IndexConfig, IndexError, Item, Metric, VectorIndex,
};

use crate::common::{assert_matches_brute_force, brute_force, ids, m, Rng};

#[test]
fn flat_cosine_matches_brute_force() {
    // dimension 37: the kernels' 8-lane body plus a 5-value tail
    let (n, dim) = (3_001, 37);
    let mut rng = Rng::new(1);
    let base = rng.vectors(n, dim);
    let queries = rng.vectors(40, dim);
    let ids = ids(n);
    let mut index = FlatIndex::new(dim, Metric::Cosine).unwrap();
    // added in three batches
    index
        .add(&ids[..1000], &m(&base[..1000 * dim], index.dim()))
        .unwrap();
    index
        .add(
            &ids[1000..1001],
            &m(&base[1000 * dim..1001 * dim], index.dim()),
        )
        .unwrap();
    index
        .add(&ids[1001..], &m(&base[1001 * dim..], index.dim()))
        .unwrap();
    assert_eq!(index.len(), n);
    let batch = index.search_batch(&m(&queries, index.dim()), 10).unwrap();
    for (q, hits) in queries.chunks_exact(dim).zip(&batch) {
        assert_eq!(hits.len(), 10);
        let truth = brute_force(&ids, &base, q, true);
        assert_matches_brute_force(hits, &truth, 1e-6);
        // one query alone gets exactly the hits (and scores) it gets inside the batch
        assert_eq!(&index.search(q, 10).unwrap(), hits);
    }
}

#[test]
fn flat_inner_product_is_exact_with_ties_by_ascending_id() {
    // small-integer vectors: every inner product is exact in f32 and many are equal
    let (n, dim) = (2_000, 9);
    let mut rng = Rng::new(2);
    let base = rng.small_ints(n, dim);
    let queries = rng.small_ints(30, dim);
    // ids in reverse of insertion order, so that tie order is not insertion order
    let ids: Vec<String> = (0..n).map(|i| format!("id{:04}", n - i)).collect();
    let mut index = FlatIndex::new(dim, Metric::InnerProduct).unwrap();
    index.add(&ids, &m(&base, index.dim())).unwrap();
    let mut ties = 0;
    for k in [1, 10, 57] {
        let batch = index.search_batch(&m(&queries, index.dim()), k).unwrap();
        for (q, hits) in queries.chunks_exact(dim).zip(&batch) {
            let truth = brute_force(&ids, &base, q, false);
            let got: Vec<(String, f64)> = hits
                .iter()
                .map(|h| (h.id.clone(), h.score as f64))
                .collect();
            assert_eq!(got, truth[..k].to_vec());
            ties += hits.windows(2).filter(|w| w[0].score == w[1].score).count();
            assert_eq!(&index.search(q, k).unwrap(), hits);
        }
    }
    assert!(
        ties > 100,
        "the test data should exercise tie-breaking ({ties} ties)"
    );
}

#[test]
fn flat_k_larger_than_index_returns_everything_sorted() {
    let mut index = FlatIndex::new(2, Metric::InnerProduct).unwrap();
    let ids = ["b", "a", "c"].map(String::from);
    index
        .add(&ids, &m(&[1.0, 0.0, 1.0, 0.0, 3.0, 0.0], index.dim()))
        .unwrap();
    let hits = index.search(&[1.0, 0.0], 10).unwrap();
    let got: Vec<(&str, f32)> = hits.iter().map(|h| (h.id.as_str(), h.score)).collect();
    assert_eq!(got, [("c", 3.0), ("a", 1.0), ("b", 1.0)]);
}

#[test]
fn flat_remove_then_readd() {
    let (n, dim) = (500, 16);
    let mut rng = Rng::new(3);
    let base = rng.vectors(n, dim);
    let ids = ids(n);
    let mut index = FlatIndex::new(dim, Metric::Cosine).unwrap();
    index.add(&ids, &m(&base, index.dim())).unwrap();
    let gone: Vec<String> = (0..n).step_by(3).map(|i| ids[i].clone()).collect();
    index.remove(&gone).unwrap();
    assert_eq!(index.len(), n - gone.len());
    // the remaining index equals one built from the remaining vectors
    let keep: Vec<usize> = (0..n).filter(|i| i % 3 != 0).collect();
    let keep_ids: Vec<String> = keep.iter().map(|&i| ids[i].clone()).collect();
    let keep_base: Vec<f32> = keep
        .iter()
        .flat_map(|&i| base[i * dim..(i + 1) * dim].to_vec())
        .collect();
    let mut fresh = FlatIndex::new(dim, Metric::Cosine).unwrap();
    fresh.add(&keep_ids, &m(&keep_base, fresh.dim())).unwrap();
    let queries = rng.vectors(20, dim);
    assert_eq!(
        index.search_batch(&m(&queries, index.dim()), 15).unwrap(),
        fresh.search_batch(&m(&queries, fresh.dim()), 15).unwrap()
    );
    // a removed id can come back
    index
        .add(&gone[..1], &m(&base[..dim], index.dim()))
        .unwrap();
    let hit = &index.search(&base[..dim], 1).unwrap()[0];
    assert_eq!(hit.id, gone[0]);
    assert!((hit.score - 1.0).abs() < 1e-6);
}

/// One index of each kind, with two vectors "a" and "b" of dimension 4.
fn small_indexes() -> Vec<Box<dyn VectorIndex>> {
    let configs = [
        IndexConfig::default(),
        IndexConfig::Flat {
            metric: Metric::InnerProduct,
        },
        IndexConfig::Hnsw(HnswParams::default()),
    ];
    configs
        .iter()
        .map(|c| {
            let mut index = c.build(4).unwrap();
            let ids = ["a", "b"].map(String::from);
            index
                .add(
                    &ids,
                    &m(&[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], index.dim()),
                )
                .unwrap();
            index
        })
        .collect()
}

#[test]
fn invalid_input_is_a_typed_error_and_changes_nothing() {
    for mut index in small_indexes() {
        let kind = index.kind();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let ok_vec = [0.5, 0.5, 0.0, 0.0];

        let e = index.add(&s(&["c"]), &m(&[1.0, 2.0, 3.0], 3)).unwrap_err();
        assert!(
            matches!(
                e,
                IndexError::BatchDimension {
                    what: "vectors",
                    expected: 4,
                    found: 3,
                }
            ),
            "{kind}: {e}"
        );
        let e = index.add(&s(&["c", "d"]), &m(&ok_vec, 4)).unwrap_err();
        assert!(
            matches!(e, IndexError::BatchShape { ids: 2, rows: 1 }),
            "{kind}: {e}"
        );

        let e = index
            .add(
                &s(&["c", "d"]),
                &m(&[0.0, 1.0, 0.0, 0.0, 0.0, 1.0, f32::NAN, 0.0], index.dim()),
            )
            .unwrap_err();
        match &e {
            IndexError::NonFinite {
                item, component: 2, ..
            } => {
                assert_eq!(
                    item,
                    &Item::Vector {
                        position: 1,
                        id: "d".into()
                    }
                )
            }
            _ => panic!("{kind}: {e}"),
        }
        assert!(e.to_string().contains("\"d\""), "{e}");

        let e = index
            .add(&s(&["c"]), &m(&[0.0, f32::INFINITY, 0.0, 0.0], index.dim()))
            .unwrap_err();
        assert!(
            matches!(e, IndexError::NonFinite { component: 1, .. }),
            "{kind}: {e}"
        );

        let e = index
            .add(&s(&["c"]), &m(&[3e20, 3e20, 0.0, 0.0], index.dim()))
            .unwrap_err();
        assert!(matches!(e, IndexError::NormOverflow { .. }), "{kind}: {e}");

        let e = index
            .add(&s(&["c", "a"]), &m(&[ok_vec, ok_vec].concat(), index.dim()))
            .unwrap_err();
        assert!(
            matches!(&e, IndexError::DuplicateId { id, position: 1, reason } if id == "a" && reason.contains("already")),
            "{kind}: {e}"
        );
        let e = index
            .add(&s(&["c", "c"]), &m(&[ok_vec, ok_vec].concat(), index.dim()))
            .unwrap_err();
        assert!(
            matches!(&e, IndexError::DuplicateId { position: 1, reason, .. } if reason.contains("repeated")),
            "{kind}: {e}"
        );

        let e = index.remove(&s(&["a", "zz"])).unwrap_err();
        assert!(
            matches!(&e, IndexError::UnknownId { id, position: 1 } if id == "zz"),
            "{kind}: {e}"
        );

        assert_eq!(
            index.len(),
            2,
            "{kind}: failed calls must not change the index"
        );
        assert_eq!(index.search(&ok_vec, 5).unwrap().len(), 2, "{kind}");

        let e = index.search(&[1.0, 0.0, 0.0], 1).unwrap_err();
        assert!(
            matches!(
                e,
                IndexError::DimensionMismatch {
                    expected: 4,
                    found: 3,
                    item: Item::Query { position: 0 }
                }
            ),
            "{kind}: {e}"
        );
        let e = index.search_batch(&m(&[1.0; 7], 7), 1).unwrap_err();
        assert!(
            matches!(
                e,
                IndexError::BatchDimension {
                    what: "queries",
                    expected: 4,
                    found: 7
                }
            ),
            "{kind}: {e}"
        );
        let e = index
            .search_batch(
                &m(
                    &[1.0, 0.0, 0.0, 0.0, 0.0, f32::NEG_INFINITY, 0.0, 0.0],
                    index.dim(),
                ),
                1,
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                IndexError::NonFinite {
                    item: Item::Query { position: 1 },
                    component: 1,
                    ..
                }
            ),
            "{kind}: {e}"
        );
        assert!(
            matches!(index.search(&ok_vec, 0).unwrap_err(), IndexError::ZeroK),
            "{kind}"
        );
        assert!(
            index
                .search_batch(&m(&[], index.dim()), 3)
                .unwrap()
                .is_empty(),
            "{kind}"
        );

        if index.metric() == Metric::Cosine {
            let e = index
                .add(&s(&["c"]), &m(&[0.0; 4], index.dim()))
                .unwrap_err();
            assert!(matches!(e, IndexError::ZeroVector { .. }), "{kind}: {e}");
            let e = index.search(&[0.0; 4], 1).unwrap_err();
            assert!(
                matches!(
                    e,
                    IndexError::ZeroVector {
                        item: Item::Query { position: 0 }
                    }
                ),
                "{kind}: {e}"
            );
        } else {
            // a zero vector has a well-defined inner product
            index.add(&s(&["z"]), &m(&[0.0; 4], index.dim())).unwrap();
            index.remove(&s(&["z"])).unwrap();
        }

        index.remove(&s(&["a", "b"])).unwrap();
        assert!(index.is_empty());
        assert!(
            matches!(
                index.search(&ok_vec, 1).unwrap_err(),
                IndexError::EmptyIndex
            ),
            "{kind}"
        );
        assert!(
            matches!(
                index.search_batch(&m(&ok_vec, index.dim()), 1).unwrap_err(),
                IndexError::EmptyIndex
            ),
            "{kind}"
        );
    }
}

#[test]
fn invalid_construction_parameters() {
    assert!(matches!(
        FlatIndex::new(0, Metric::Cosine),
        Err(IndexError::ZeroDimension)
    ));
    assert!(matches!(
        HnswIndex::new(0, HnswParams::default()),
        Err(IndexError::ZeroDimension)
    ));
    for (m, efc, ef, name) in [
        (1, 200, 10, "m"),
        (256, 200, 10, "m"),
        (16, 0, 10, "ef_construction"),
        (16, 200, 0, "ef_search"),
    ] {
        let params = HnswParams {
            m,
            ef_construction: efc,
            ef_search: ef,
        };
        match HnswIndex::new(8, params) {
            Err(IndexError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{params:?}: {other:?}"),
        }
    }
    let mut index = HnswIndex::new(8, HnswParams::default()).unwrap();
    assert!(index.set_ef_search(0).is_err());
    index.add(&ids(1), &m(&[1.0; 8], index.dim())).unwrap();
    assert!(index.search_with_ef(&[1.0; 8], 1, 0).is_err());
}
