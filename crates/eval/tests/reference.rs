//! Parity with sentence-transformers' `InformationRetrievalEvaluator`, on the reference files
//! of the shared assets (`EMBEDTUNE_SHARED`; each test is skipped, saying so, without it).

use std::path::Path;

use burn_ndarray::NdArray;
use embedtune_data::{BeirDataset, ReadOptions};
use embedtune_encoder::SentenceEncoder;
use embedtune_eval::{Document, EvalConfig, Hit, IrEvaluator, Metrics, MetricsConfig, Report};
use serde_json::Value;

use crate::common::shared_dir;

/// The cut-offs the reference files were made with.
fn reference_metrics() -> MetricsConfig {
    MetricsConfig {
        precision_recall_at_k: vec![1, 3, 5, 10, 100],
        ..MetricsConfig::default()
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Checks every expected metric against `report` within `tolerance`; returns the worst
/// deviation and its key.
fn check(report: &Report, expected: &Metrics, tolerance: f64) -> (f64, String) {
    assert_eq!(report.metrics.len(), expected.len(), "{:?}", report.metrics);
    let mut worst = (0.0, String::new());
    for (key, want) in expected.iter() {
        let got = report
            .metric(key)
            .unwrap_or_else(|| panic!("report lacks {key}"));
        let diff = (got - want).abs();
        eprintln!("{key:<14} {got:.6} reference {want:.6} diff {diff:.2e}");
        assert!(
            diff <= tolerance,
            "{key}: {got} vs reference {want} (diff {diff})"
        );
        if diff >= worst.0 {
            worst = (diff, key.to_string());
        }
    }
    worst
}

#[test]
fn ir_metrics_match_the_python_evaluator() {
    let Some(shared) = shared_dir("ir_metrics_match_the_python_evaluator") else {
        return;
    };
    let reference = read_json(&shared.join("reference/ir_metrics.json"));
    let queries: Vec<Document> = strings(&reference["queries"])
        .into_iter()
        .map(|id| Document {
            text: format!("query {id}"),
            id,
        })
        .collect();
    let mut relevant = std::collections::BTreeMap::new();
    let mut corpus_ids = std::collections::BTreeSet::new();
    for (query, docs) in reference["relevant"].as_object().unwrap() {
        let docs = strings(docs);
        corpus_ids.extend(docs.iter().cloned());
        relevant.insert(query.clone(), docs.into_iter().map(|d| (d, 1)).collect());
    }
    let rankings: Vec<Vec<Hit>> = reference["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hits| {
            hits.as_array()
                .unwrap()
                .iter()
                .map(|h| Hit {
                    id: h["corpus_id"].as_str().unwrap().to_string(),
                    score: h["score"].as_f64().unwrap() as f32,
                })
                .collect()
        })
        .collect();
    corpus_ids.extend(rankings.iter().flatten().map(|h| h.id.clone()));
    let corpus = corpus_ids
        .into_iter()
        .map(|id| Document {
            text: format!("doc {id}"),
            id,
        })
        .collect();
    let config = EvalConfig {
        metrics: reference_metrics(),
        show_progress: false,
        ..EvalConfig::default()
    };
    let evaluator = IrEvaluator::from_parts(queries, corpus, &relevant, config).unwrap();
    let report = evaluator.evaluate_rankings(rankings).unwrap();

    // {"accuracy@k": {"1": 0.083, ...}, ...} → {"accuracy@1": 0.083, ...}
    let expected: Metrics = reference["metrics"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(name, by_k)| {
            by_k.as_object()
                .unwrap()
                .iter()
                .map(move |(k, v)| (name.replace("@k", &format!("@{k}")), v.as_f64().unwrap()))
        })
        .collect();
    let (worst, key) = check(&report, &expected, 1e-9);
    eprintln!("ir_metrics.json: worst deviation {worst:.2e} ({key})");
}

#[test]
fn scifact_subset_matches_the_python_evaluator() {
    let Some(shared) = shared_dir("scifact_subset_matches_the_python_evaluator") else {
        return;
    };
    let reference = read_json(&shared.join("reference/scifact_subset_eval.json"));
    let data = BeirDataset::load_splits(
        shared.join("data/scifact"),
        &["test"],
        &ReadOptions::default(),
    )
    .unwrap();
    let split = data.ir_split("test").unwrap();
    let corpus: Vec<Document> = strings(&reference["corpus_ids"])
        .into_iter()
        .map(|id| Document {
            text: data
                .doc_text(&id)
                .unwrap_or_else(|| panic!("{id} not in corpus.jsonl"))
                .to_string(),
            id,
        })
        .collect();
    assert_eq!(corpus.len(), 1000);
    let config = EvalConfig {
        metrics: reference_metrics(),
        // the reference used no prompts (all-MiniLM-L6-v2 has none anyway)
        query_prompt: Some(String::new()),
        passage_prompt: Some(String::new()),
        show_progress: false,
        ..EvalConfig::default()
    };
    let evaluator =
        IrEvaluator::from_parts(split.queries, corpus, &split.relevant, config).unwrap();
    let model = SentenceEncoder::<NdArray>::load(
        shared.join("models/all-MiniLM-L6-v2"),
        &Default::default(),
    )
    .unwrap();
    let report = evaluator.evaluate(&model).unwrap();
    eprintln!("{report}");
    assert_eq!(
        (report.queries, report.skipped_queries, report.corpus_size),
        (300, 0, 1000)
    );

    let expected: Metrics = serde_json::from_value(reference["metrics"].clone()).unwrap();
    let (worst, key) = check(&report, &expected, 0.002);
    eprintln!("scifact_subset_eval.json: worst deviation {worst:.2e} ({key})");
}
