//! The evaluator on small fixtures: counts, edge cases, typed errors, reports, comparison, and
//! a tiny random encoder end to end. None of these needs the shared assets.

use burn_ndarray::NdArray;
use embedtune_encoder::{testing, Prompts, SentenceEncoder, TransformerConfig};
use embedtune_eval::{
    compare, EvalConfig, EvalError, HnswParams, IndexConfig, IrEvaluator, MetricsConfig, Relevance,
    Report,
};

use crate::common::{doc, docs, hit, qrels};

fn quiet() -> EvalConfig {
    EvalConfig {
        show_progress: false,
        ..EvalConfig::default()
    }
}

/// Corpus d0..d3 on the unit circle; q0 is relevant to d1, q1 to d2 and d3, q2 has only a
/// grade-0 row, q3 no qrels at all.
fn small() -> IrEvaluator {
    let relevant = qrels(&[
        ("q0", "d1", 1),
        ("q1", "d2", 1),
        ("q1", "d3", 2),
        ("q2", "d0", 0),
    ]);
    IrEvaluator::from_parts(docs("q", 4), docs("d", 4), &relevant, quiet()).unwrap()
}

fn corpus_vectors() -> Vec<Vec<f32>> {
    vec![
        vec![1.0, 0.0],
        vec![0.8, 0.6],
        vec![0.0, 1.0],
        vec![-0.6, 0.8],
    ]
}

#[test]
fn queries_without_relevant_documents_are_skipped_and_counted() {
    let ev = small();
    let ids: Vec<&str> = ev.queries().iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["q0", "q1"]);
    assert_eq!(ev.skipped_queries(), ["q2", "q3"]);
    let report = ev
        .evaluate_embeddings(
            &emb(&[vec![0.8, 0.6], vec![-0.6, 0.8]]),
            &emb(&corpus_vectors()),
        )
        .unwrap();
    assert_eq!(
        (report.queries, report.skipped_queries, report.corpus_size),
        (2, 2, 4)
    );
    assert_eq!(report.per_query.len(), 2);
    assert_eq!(report.per_query[1].relevant, 2);
    // q0 finds d1 first; q1 finds d3 then d2: perfect rankings
    for key in ["accuracy@1", "recall@3", "mrr@10", "ndcg@10", "map@100"] {
        assert_eq!(report.metric(key), Some(1.0), "{key}");
    }
    assert_eq!(
        report.metric("precision@3"),
        Some((1.0 / 3.0 + 2.0 / 3.0) / 2.0)
    );
}

#[test]
fn k_larger_than_the_corpus() {
    // default cut-offs go to 100 against a corpus of 4: every query gets all 4 passages
    let ev = small();
    let report = ev
        .evaluate_embeddings(
            &emb(&[vec![-1.0, 0.0], vec![1.0, 0.0]]),
            &emb(&corpus_vectors()),
        )
        .unwrap();
    // q0 ranks d3, d2, d1, d0 (d1 third); q1 ranks d0, d1, d2, d3 (d2 third)
    assert_eq!(report.metric("mrr@10"), Some(1.0 / 3.0));
    assert_eq!(report.metric("precision@10"), Some((0.1 + 0.2) / 2.0));
    assert_eq!(report.metric("recall@10"), Some(1.0));
    assert_eq!(report.metric("accuracy@1"), Some(0.0));
}

#[test]
fn typed_errors_for_bad_setups() {
    let relevant = qrels(&[("q0", "d0", 1)]);
    let build =
        |queries, corpus, config| IrEvaluator::from_parts(queries, corpus, &relevant, config);
    assert!(matches!(
        build(docs("q", 1), vec![], quiet()),
        Err(EvalError::EmptyCorpus)
    ));
    assert!(matches!(
        build(vec![doc("q9", "x")], docs("d", 2), quiet()),
        Err(EvalError::NoQueries { skipped: 1 })
    ));
    assert!(matches!(
        build(docs("q", 1), vec![doc("d0", "a"), doc("d0", "b")], quiet()),
        Err(EvalError::DuplicateId { what: "corpus", .. })
    ));
    assert!(matches!(
        build(vec![doc("q0", "a"), doc("q0", "b")], docs("d", 1), quiet()),
        Err(EvalError::DuplicateId { what: "query", .. })
    ));
    let zero_k = EvalConfig {
        metrics: MetricsConfig {
            map_at_k: vec![0],
            ..MetricsConfig::default()
        },
        ..quiet()
    };
    assert!(matches!(
        build(docs("q", 1), docs("d", 1), zero_k),
        Err(EvalError::ZeroK { metric: "map" })
    ));
    let zero_batch = EvalConfig {
        batch_size: 0,
        ..quiet()
    };
    assert!(matches!(
        build(docs("q", 1), docs("d", 1), zero_batch),
        Err(EvalError::ZeroBatchSize)
    ));
}

#[test]
fn typed_errors_for_bad_embeddings_and_rankings() {
    let ev = small();
    let q = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
    let err = ev
        .evaluate_embeddings(&emb(&q[..1]), &emb(&corpus_vectors()))
        .unwrap_err();
    assert!(matches!(
        err,
        EvalError::CountMismatch {
            what: "query embeddings",
            expected: 2,
            found: 1
        }
    ));
    let err = ev
        .evaluate_embeddings(&emb(&q), &emb(&corpus_vectors()[..3]))
        .unwrap_err();
    assert!(matches!(
        err,
        EvalError::CountMismatch {
            what: "corpus embeddings",
            ..
        }
    ));
    let err = ev
        .evaluate_embeddings(
            &emb(&[vec![1.0, 0.0, 0.0], vec![1.0, 0.0, 0.0]]),
            &emb(&corpus_vectors()),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        EvalError::DimensionMismatch {
            queries: 3,
            corpus: 2
        }
    ));
    let mut bad_corpus = corpus_vectors();
    bad_corpus[2] = vec![0.0, 0.0];
    assert!(matches!(
        ev.evaluate_embeddings(&emb(&q), &emb(&bad_corpus)),
        Err(EvalError::Index(_))
    ));

    let ok = vec![hit("d1", 0.5)];
    let err = ev
        .evaluate_rankings(vec![ok.clone(), vec![hit("nope", 0.1)]])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"the ranking of query "q1" names "nope", which is not in the corpus"#
    );
    let err = ev
        .evaluate_rankings(vec![ok.clone(), vec![hit("d2", 0.1), hit("d2", 0.3)]])
        .unwrap_err();
    assert!(matches!(err, EvalError::DuplicateHit { .. }));
    let err = ev
        .evaluate_rankings(vec![ok.clone(), vec![hit("d2", f32::NAN)]])
        .unwrap_err();
    assert!(matches!(err, EvalError::NonFiniteScore { .. }));
    let err = ev.evaluate_rankings(vec![ok]).unwrap_err();
    assert!(matches!(
        err,
        EvalError::CountMismatch {
            what: "rankings",
            ..
        }
    ));
}

#[test]
fn rankings_are_sorted_with_ties_by_ascending_id() {
    let ev = small();
    // q1: d2 and d3 tie with d0 at 0.5; d0 sorts first, so the relevant ones are ranks 2 and 3
    let report = ev
        .evaluate_rankings(vec![
            vec![hit("d1", 0.9)],
            vec![hit("d3", 0.5), hit("d2", 0.5), hit("d0", 0.5)],
        ])
        .unwrap();
    assert_eq!(report.per_query[1].metrics.get("mrr@10"), Some(0.5));
    assert_eq!(
        report.per_query[1].metrics.get("map@100"),
        Some((1.0 / 2.0 + 2.0 / 3.0) / 2.0)
    );
    assert!(report.index.is_empty());
}

#[test]
fn graded_relevance_is_an_option() {
    let relevant = qrels(&[("q0", "d1", 1), ("q0", "d2", 3)]);
    let config = |relevance| EvalConfig {
        metrics: MetricsConfig {
            relevance,
            ..MetricsConfig::default()
        },
        ..quiet()
    };
    let rankings = || vec![vec![hit("d1", 0.9), hit("d2", 0.8)]];
    let run = |relevance| {
        IrEvaluator::from_parts(docs("q", 1), docs("d", 3), &relevant, config(relevance))
            .unwrap()
            .evaluate_rankings(rankings())
            .unwrap()
    };
    let binary = run(Relevance::Binary);
    let graded = run(Relevance::Graded);
    assert_eq!(binary.metric("ndcg@10"), Some(1.0));
    let expected = (1.0 + 3.0 / 3f64.log2()) / (3.0 + 1.0 / 3f64.log2());
    assert!((graded.metric("ndcg@10").unwrap() - expected).abs() < 1e-12);
    assert_eq!(graded.relevance, Relevance::Graded);
    assert!(compare(&binary, &graded)
        .warnings
        .iter()
        .any(|w| w.contains("relevance")));
}

#[test]
fn relevant_documents_outside_the_corpus_still_count() {
    let relevant = qrels(&[("q0", "d0", 1), ("q0", "gone", 1)]);
    let ev = IrEvaluator::from_parts(docs("q", 1), docs("d", 2), &relevant, quiet()).unwrap();
    let report = ev.evaluate_rankings(vec![vec![hit("d0", 1.0)]]).unwrap();
    assert_eq!(report.relevant_outside_corpus, 1);
    assert_eq!(report.metric("recall@10"), Some(0.5));
    assert!(report.to_string().contains("not in the corpus"));
}

#[test]
fn hnsw_index_finds_the_same_on_a_small_corpus() {
    let relevant = qrels(&[("q0", "d1", 1), ("q1", "d2", 1), ("q1", "d3", 2)]);
    let config = EvalConfig {
        index: IndexConfig::Hnsw(HnswParams::default()),
        ..quiet()
    };
    let ev = IrEvaluator::from_parts(docs("q", 2), docs("d", 4), &relevant, config).unwrap();
    let q = vec![vec![0.8, 0.6], vec![-0.6, 0.8]];
    let hnsw = ev
        .evaluate_embeddings(&emb(&q), &emb(&corpus_vectors()))
        .unwrap();
    let flat = small()
        .evaluate_embeddings(&emb(&q), &emb(&corpus_vectors()))
        .unwrap();
    assert_eq!(hnsw.index, "hnsw");
    assert_eq!(flat.index, "flat");
    assert_eq!(hnsw.metrics, flat.metrics);
}

#[test]
fn report_json_has_flat_metric_keys_and_round_trips() {
    let report = small()
        .evaluate_embeddings(
            &emb(&[vec![0.8, 0.6], vec![1.0, 0.0]]),
            &emb(&corpus_vectors()),
        )
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let metrics = value["metrics"].as_object().unwrap();
    let keys: Vec<&str> = metrics.keys().map(String::as_str).collect();
    for key in [
        "ndcg@10",
        "recall@10",
        "mrr@10",
        "map@100",
        "accuracy@1",
        "precision@10",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
        assert!(metrics[key].is_f64());
    }
    assert_eq!(value["queries"], 2);
    assert_eq!(value["skipped_queries"], 2);
    assert_eq!(value["corpus_size"], 4);
    assert_eq!(value["index"], "flat");
    assert_eq!(value["relevance"], "binary");
    assert!(value["timings"]["search_s"].is_f64());
    assert_eq!(value["per_query"][0]["query_id"], "q0");
    assert!(value["per_query"][0]["metrics"]["ndcg@10"].is_f64());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.json");
    report.save(&path).unwrap();
    assert_eq!(Report::load(&path).unwrap(), report);
    // other tools' JSON: only a metrics object
    std::fs::write(&path, r#"{"metrics": {"ndcg@10": 0.5}, "note": "x"}"#).unwrap();
    assert_eq!(Report::load(&path).unwrap().metric("ndcg@10"), Some(0.5));
    std::fs::write(&path, r#"{"metrics": [1]}"#).unwrap();
    assert!(matches!(Report::load(&path), Err(EvalError::Json { .. })));
    assert!(matches!(
        Report::load(dir.path().join("absent.json")),
        Err(EvalError::Io { .. })
    ));
}

#[test]
fn console_table_and_comparison() {
    let ev = small();
    let before = ev
        .evaluate_embeddings(
            &emb(&[vec![-1.0, 0.0], vec![1.0, 0.0]]),
            &emb(&corpus_vectors()),
        )
        .unwrap();
    let after = ev
        .evaluate_embeddings(
            &emb(&[vec![0.8, 0.6], vec![-0.6, 0.8]]),
            &emb(&corpus_vectors()),
        )
        .unwrap();
    let table = after.to_string();
    assert!(table.contains("2 queries (2 skipped: no relevant document), 4 passages, flat index"));
    assert!(table
        .lines()
        .any(|l| l.starts_with("ndcg@10") && l.ends_with("1.0000")));

    let mut after_more = after.clone();
    after_more.metrics.insert("recall@100", 1.0);
    let cmp = compare(&before, &after_more);
    assert_eq!(cmp.rows.len(), before.metrics.len() + 1);
    let mrr = cmp.rows.iter().find(|r| r.metric == "mrr@10").unwrap();
    assert!((mrr.delta().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    let text = cmp.to_string();
    assert!(text.starts_with("metric"));
    assert!(text
        .lines()
        .any(|l| l.starts_with("mrr@10") && l.contains("0.3333") && l.ends_with("+0.6667")));
    assert!(text
        .lines()
        .any(|l| l.starts_with("recall@100") && l.contains(" -  ")));
    assert!(cmp.warnings.is_empty());
}

#[test]
fn evaluates_an_encoder_end_to_end() {
    let device = Default::default();
    let tokenizer = testing::tiny_tokenizer(32).unwrap();
    let config = TransformerConfig::tiny_bert(tokenizer.vocab_size(), 32, 2, 4).unwrap();
    let mut model = SentenceEncoder::<NdArray>::random(config, tokenizer, &device).unwrap();
    model.set_prompts(Prompts {
        query: Some("query: ".into()),
        passage: None,
    });
    let corpus = vec![
        doc("a", "rust is a language"),
        doc("b", "bread is baked"),
        doc("c", "paris is in france"),
    ];
    let queries = vec![
        doc("q1", "what is rust"),
        doc("q2", "where is paris"),
        doc("q3", "unjudged"),
    ];
    let relevant = qrels(&[("q1", "a", 1), ("q2", "c", 1)]);
    let config = EvalConfig {
        batch_size: 2,
        passage_prompt: Some("passage: ".into()),
        ..quiet()
    };
    let ev = IrEvaluator::from_parts(queries, corpus, &relevant, config).unwrap();
    let report = ev.evaluate(&model).unwrap();
    assert_eq!(
        (report.queries, report.skipped_queries, report.corpus_size),
        (2, 1, 3)
    );
    // the model's query prompt, the configured passage prompt
    assert_eq!(report.query_prompt.as_deref(), Some("query: "));
    assert_eq!(report.passage_prompt.as_deref(), Some("passage: "));
    assert!(report.timings.encode_corpus_s > 0.0 && report.texts_per_second().is_some());

    // the same as encoding by hand and evaluating the embeddings
    let opts = |prompt: &str| embedtune_encoder::EncodeOptions {
        batch_size: 2,
        prompt: Some(prompt.into()),
        normalize: None,
    };
    let q = model
        .encode(&["what is rust", "where is paris"], &opts("query: "))
        .unwrap();
    let c = model
        .encode(
            &["rust is a language", "bread is baked", "paris is in france"],
            &opts("passage: "),
        )
        .unwrap();
    let by_hand = ev.evaluate_embeddings(&q, &c).unwrap();
    for (key, value) in by_hand.metrics.iter() {
        assert!((report.metric(key).unwrap() - value).abs() < 1e-9, "{key}");
    }

    // an empty configured prompt turns the model's off; progress drawn to a caller's bar
    let config = EvalConfig {
        query_prompt: Some(String::new()),
        ..ev.config().clone()
    };
    let ev = IrEvaluator::from_parts(
        ev.queries().to_vec(),
        ev.corpus().to_vec(),
        &relevant,
        config,
    )
    .unwrap();
    let bar = indicatif::ProgressBar::hidden();
    let report = ev.evaluate_with_progress(&model, &bar).unwrap();
    assert_eq!(report.query_prompt, None);
    assert_eq!(bar.position(), 5);
    assert_eq!(bar.length(), Some(5));
}

/// The rows as an embedding matrix (as wide as the first row).
fn emb(rows: &[Vec<f32>]) -> embedtune_eval::Embeddings {
    embedtune_eval::Embeddings::from_rows(rows, rows.first().map_or(1, Vec::len))
        .expect("equal rows")
}
