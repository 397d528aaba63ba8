//! The metrics of hand-made rankings, computed by hand.

use std::collections::BTreeMap;

use embedtune_eval::{sort_ranking, EvalError, Hit, Metrics, MetricsConfig, Relevance};

use crate::common::hit;

fn relevant(rows: &[(&str, i32)]) -> BTreeMap<String, i32> {
    rows.iter().map(|&(d, g)| (d.to_string(), g)).collect()
}

/// d5 0.9, then d2 and d9 tied at 0.8 (d2 first: ascending id), d1, d7, d3.
fn ranking() -> Vec<Hit> {
    let mut hits = vec![
        hit("d1", 0.5),
        hit("d9", 0.8),
        hit("d3", 0.1),
        hit("d5", 0.9),
        hit("d7", 0.4),
        hit("d2", 0.8),
    ];
    sort_ranking(&mut hits);
    hits
}

fn assert_close(m: &Metrics, key: &str, expected: f64) {
    let got = m.get(key).unwrap_or_else(|| panic!("no {key}"));
    assert!((got - expected).abs() < 1e-12, "{key}: {got} != {expected}");
}

#[test]
fn ranking_is_by_descending_score_then_ascending_id() {
    let ids: Vec<String> = ranking().into_iter().map(|h| h.id).collect();
    assert_eq!(ids, ["d5", "d2", "d9", "d1", "d7", "d3"]);
    // string order, as Python compares ids: "d10" < "d9"; and 0.0 ties with -0.0
    let mut hits = vec![
        hit("d9", 0.5),
        hit("d10", 0.5),
        hit("b", 0.0),
        hit("a", -0.0),
    ];
    sort_ranking(&mut hits);
    let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["d10", "d9", "a", "b"]);
}

#[test]
fn default_keys_follow_sentence_transformers() {
    let config = MetricsConfig::default();
    assert_eq!(
        config.keys(),
        [
            "accuracy@1",
            "accuracy@3",
            "accuracy@5",
            "accuracy@10",
            "precision@1",
            "precision@3",
            "precision@5",
            "precision@10",
            "recall@1",
            "recall@3",
            "recall@5",
            "recall@10",
            "ndcg@10",
            "mrr@10",
            "map@100"
        ]
    );
    assert_eq!(config.max_k(), 100);
}

#[test]
fn binary_metrics_by_hand() {
    // relevant: d9 (rank 3), d7 (rank 5) and d4 (not retrieved)
    let rel = relevant(&[("d9", 1), ("d7", 1), ("d4", 1), ("d1", 0)]);
    let m = MetricsConfig::default()
        .query_metrics(&ranking(), &rel)
        .unwrap();
    assert_eq!(m.len(), 15);
    for (k, v) in [(1, 0.0), (3, 1.0), (5, 1.0), (10, 1.0)] {
        assert_close(&m, &format!("accuracy@{k}"), v);
    }
    for (k, p, r) in [
        (1, 0.0, 0.0),
        (3, 1.0 / 3.0, 1.0 / 3.0),
        (5, 2.0 / 5.0, 2.0 / 3.0),
        (10, 0.2, 2.0 / 3.0),
    ] {
        assert_close(&m, &format!("precision@{k}"), p);
        assert_close(&m, &format!("recall@{k}"), r);
    }
    assert_close(&m, "mrr@10", 1.0 / 3.0);
    let dcg = 1.0 / 4f64.log2() + 1.0 / 6f64.log2();
    let ideal = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
    assert_close(&m, "ndcg@10", dcg / ideal);
    assert_close(&m, "map@100", (1.0 / 3.0 + 2.0 / 5.0) / 3.0);
}

#[test]
fn graded_ndcg_uses_the_grades() {
    let rel = relevant(&[("d9", 2), ("d7", 1), ("d4", 3)]);
    let mut config = MetricsConfig {
        relevance: Relevance::Graded,
        ..MetricsConfig::default()
    };
    let graded = config.query_metrics(&ranking(), &rel).unwrap();
    let dcg = 2.0 / 4f64.log2() + 1.0 / 6f64.log2();
    let ideal = 3.0 + 2.0 / 3f64.log2() + 1.0 / 4f64.log2();
    assert_close(&graded, "ndcg@10", dcg / ideal);
    // everything else stays binary
    config.relevance = Relevance::Binary;
    let binary = config.query_metrics(&ranking(), &rel).unwrap();
    for (key, value) in binary.iter().filter(|(k, _)| !k.starts_with("ndcg")) {
        assert_eq!(graded.get(key), Some(value), "{key}");
    }
    assert!(binary.get("ndcg@10") != graded.get("ndcg@10"));
}

#[test]
fn short_rankings_and_map_denominator() {
    let config = MetricsConfig {
        accuracy_at_k: vec![],
        precision_recall_at_k: vec![10],
        mrr_at_k: vec![],
        ndcg_at_k: vec![10],
        map_at_k: vec![2, 3],
        relevance: Relevance::Binary,
    };
    // fewer hits than k (a corpus smaller than k): precision still divides by k
    let hits = vec![hit("a", 0.9), hit("b", 0.8), hit("x", 0.1)];
    let m = config
        .query_metrics(&hits, &relevant(&[("a", 1), ("b", 1), ("c", 1)]))
        .unwrap();
    assert_close(&m, "precision@10", 0.2);
    assert_close(&m, "recall@10", 2.0 / 3.0);
    // MAP@k divides by min(k, number relevant)
    assert_close(&m, "map@2", (1.0 + 1.0) / 2.0);
    assert_close(&m, "map@3", (1.0 + 1.0) / 3.0);
    // an empty ranking scores 0 everywhere
    let m = config.query_metrics(&[], &relevant(&[("a", 1)])).unwrap();
    assert!(m.iter().all(|(_, v)| v == 0.0));
}

#[test]
fn no_relevant_document_gives_none() {
    let config = MetricsConfig::default();
    assert!(config.query_metrics(&ranking(), &relevant(&[])).is_none());
    assert!(config
        .query_metrics(&ranking(), &relevant(&[("d5", 0), ("d2", -1)]))
        .is_none());
}

#[test]
fn repeated_cutoffs_are_dropped_in_order() {
    let config = MetricsConfig {
        accuracy_at_k: vec![5, 1, 5],
        precision_recall_at_k: vec![],
        mrr_at_k: vec![3],
        ndcg_at_k: vec![],
        map_at_k: vec![],
        relevance: Relevance::Binary,
    };
    assert_eq!(config.keys(), ["accuracy@5", "accuracy@1", "mrr@3"]);
    assert_eq!(config.max_k(), 5);
}

#[test]
fn invalid_configs_are_typed_errors() {
    let zero = MetricsConfig {
        ndcg_at_k: vec![10, 0],
        ..MetricsConfig::default()
    };
    assert!(matches!(
        zero.validate(),
        Err(EvalError::ZeroK { metric: "ndcg" })
    ));
    let none = MetricsConfig {
        accuracy_at_k: vec![],
        precision_recall_at_k: vec![],
        mrr_at_k: vec![],
        ndcg_at_k: vec![],
        map_at_k: vec![],
        relevance: Relevance::Graded,
    };
    assert!(matches!(none.validate(), Err(EvalError::NoMetrics)));
    assert!(MetricsConfig::default().validate().is_ok());
}

#[test]
fn metrics_keep_order_and_round_trip() {
    let mut m: Metrics = [("z@1".to_string(), 0.5), ("a@1".to_string(), 0.25)]
        .into_iter()
        .collect();
    m.insert("z@1", 0.75);
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        r#"{"z@1":0.75,"a@1":0.25}"#
    );
    let back: Metrics = serde_json::from_str(r#"{"z@1":0.75,"a@1":0.25}"#).unwrap();
    assert_eq!(back, m);
    assert!(serde_json::from_str::<Metrics>(r#"{"a": "x"}"#).is_err());
    let mean = Metrics::mean(&["z@1".to_string()], [&m, &Metrics::new()]);
    assert_eq!(mean.get("z@1"), Some(0.375));
}
