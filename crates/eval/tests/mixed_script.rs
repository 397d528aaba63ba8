//! Mixed-script ids and texts (issue 15): query and document ids in Chinese, full-width forms,
//! emoji sequences and decomposed accents are matched exactly (no normalisation), tied scores
//! rank by code point as Python's string order does, reports keep the ids byte for byte, and
//! the console tables stay aligned when names are wide characters.

use burn_ndarray::NdArray;
use embedtune_encoder::{EncodeOptions, SentenceEncoder};
use embedtune_eval::{
    compare, sort_ranking, EvalConfig, EvalError, HnswParams, IndexConfig, IrEvaluator, Metrics,
    Report,
};

use crate::common::{doc, hit, qrels, shared_dir};

const FAMILY: &str = "👨\u{200d}👩\u{200d}👧";
const NFC: &str = "café";
const NFD: &str = "cafe\u{301}";

fn quiet() -> EvalConfig {
    EvalConfig {
        show_progress: false,
        ..EvalConfig::default()
    }
}

/// Corpus ids of every kind, with 4-d embeddings that tie on purpose: `café` / `cafe\u{301}`
/// and `ｄｏｃ１` / `🇦🇺` have the same vectors.
fn corpus() -> (Vec<embedtune_eval::Document>, Vec<Vec<f32>>) {
    let rows = [
        ("文档一", "SMSF 的 ESA 在哪里申请？", [1.0, 0.0, 0.0, 0.0]),
        (FAMILY, "家庭账户 family account", [0.0, 1.0, 0.0, 0.0]),
        ("🇦🇺", "澳大利亚 ＳＭＳＦ　１２３", [0.0, 0.0, 1.0, 0.0]),
        ("ｄｏｃ１", "全角，。？", [0.0, 0.0, 1.0, 0.0]),
        ("d1", "ascii", [0.0, 0.0, 0.6, 0.8]),
        (NFC, "precomposed é", [0.0, 0.0, 0.0, 1.0]),
        (NFD, "decomposed e\u{301}", [0.0, 0.0, 0.0, 1.0]),
    ];
    (
        rows.iter().map(|(id, text, _)| doc(id, text)).collect(),
        rows.iter().map(|(.., v)| v.to_vec()).collect(),
    )
}

fn evaluator(config: EvalConfig) -> IrEvaluator {
    let queries = vec![
        doc("问题①", "SMSF 的 ESA 在哪里申请？"),
        doc("q-👍🏽", "café?"),
        doc("ｑ１", "🇦🇺？"),
        doc("❤\u{fe0f}", "no judgement"),
    ];
    let relevant = qrels(&[
        ("问题①", "文档一", 1),
        ("q-👍🏽", NFC, 1),
        ("ｑ１", "🇦🇺", 2),
        // Judged against the decomposed id only: it must not count for `café`.
        ("❤\u{fe0f}", NFD, 0),
    ]);
    IrEvaluator::from_parts(queries, corpus().0, &relevant, config).unwrap()
}

const QUERY_VECTORS: [[f32; 4]; 3] = [
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
    [0.0, 0.0, 1.0, 0.0],
];

/// Ties rank by ascending code point (Rust's byte order of UTF-8 is code point order, which is
/// Python's string order), not by UTF-16 units: `ｄｏｃ１` (U+FF44) before `🇦🇺` (U+1F1E6,
/// surrogate 0xD83C in UTF-16), `cafe\u{301}` (e, U+0065) before `café` (é, U+00E9).
#[test]
fn cjk_and_emoji_ids_are_matched_exactly_and_ties_rank_by_code_point() {
    let mut hits: Vec<_> = ["🇦🇺", "ｄ", "文", "d", NFC, NFD, FAMILY]
        .iter()
        .map(|id| hit(id, 0.5))
        .collect();
    hits.push(hit("低分", 0.25));
    sort_ranking(&mut hits);
    let order: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(order, [NFD, NFC, "d", "文", "ｄ", "🇦🇺", FAMILY, "低分"]);

    let queries: Vec<Vec<f32>> = QUERY_VECTORS.iter().map(|v| v.to_vec()).collect();
    let flat = quiet();
    let hnsw = EvalConfig {
        index: IndexConfig::Hnsw(HnswParams::default()),
        ..quiet()
    };
    for config in [flat, hnsw] {
        let ev = evaluator(config);
        assert_eq!(ev.skipped_queries(), ["❤\u{fe0f}"]);
        let report = ev
            .evaluate_embeddings(&emb(&queries), &emb(&corpus().1))
            .unwrap();
        let per_query: Vec<(&str, f64)> = report
            .per_query
            .iter()
            .map(|q| (q.query_id.as_str(), q.metrics.get("mrr@10").unwrap()))
            .collect();
        // 问题① finds 文档一 first; café comes second after cafe\u{301}; 🇦🇺 second after ｄｏｃ１.
        assert_eq!(
            per_query,
            [("问题①", 1.0), ("q-👍🏽", 0.5), ("ｑ１", 0.5)],
            "{}",
            report.index
        );
        assert_eq!(report.metric("accuracy@1"), Some(1.0 / 3.0));
        assert_eq!(report.skipped_queries, 1);

        // The report keeps the ids byte for byte through JSON (written as UTF-8, not escaped).
        let json = report.to_json();
        assert!(
            json.contains("\"问题①\"") && json.contains("\"q-👍🏽\""),
            "{json}"
        );
        let back = Report::from_json(&json, "r.json".as_ref()).unwrap();
        assert_eq!(back, report);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("报告 ✅.json");
        report.save(&path).unwrap();
        assert_eq!(Report::load(&path).unwrap(), report);
    }

    // Precomputed rankings: ids compared exactly, so an accent composed differently is unknown.
    let ev = evaluator(quiet());
    let ok = vec![
        vec![hit("文档一", 0.9), hit(FAMILY, 0.1)],
        vec![hit(NFC, 0.9), hit(NFD, 0.9)],
        vec![hit("🇦🇺", 0.7), hit("ｄｏｃ１", 0.7)],
    ];
    let report = ev.evaluate_rankings(ok.clone()).unwrap();
    assert_eq!(report.metric("mrr@10"), Some((1.0 + 0.5 + 0.5) / 3.0));
    let mut bad = ok.clone();
    bad[1][1] = hit("cafe\u{300}", 0.9);
    let err = ev.evaluate_rankings(bad).unwrap_err();
    assert!(
        matches!(&err, EvalError::UnknownCorpusId { query_id, id } if query_id == "q-👍🏽" && id == "cafe\u{300}"),
        "{err:?}"
    );
    let mut bad = ok;
    bad[2][1] = hit("🇦🇺", 0.1);
    let err = ev.evaluate_rankings(bad).unwrap_err();
    assert!(
        matches!(&err, EvalError::DuplicateHit { query_id, id } if query_id == "ｑ１" && id == "🇦🇺"),
        "{err:?}"
    );

    // Repeated ids are refused with the id as given.
    let err = IrEvaluator::from_parts(
        vec![doc(FAMILY, "一"), doc(FAMILY, "二")],
        corpus().0,
        &qrels(&[(FAMILY, "文档一", 1)]),
        quiet(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, EvalError::DuplicateId { what: "query", id } if id == FAMILY),
        "{err:?}"
    );
}

/// The table lines of a rendered report or comparison (those after the header line).
fn table(text: &str, header: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with(header))
        .take_while(|l| !l.starts_with("time") && !l.starts_with("warning"))
        .map(str::to_string)
        .collect()
}

/// Metric names read from a report file are the user's text: the name column is padded to its
/// display width (a CJK or full-width character takes two terminal columns, a combining mark
/// none), so that the numbers line up.
#[test]
fn report_tables_align_wide_and_combining_metric_names() {
    let metrics: Metrics = [
        ("accuracy@1", 1.0),
        ("召回率@10", 0.25),
        ("ＭＲＲ@10", 0.5),
        ("cafe\u{301}@1", 0.75),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let report = Report {
        metrics,
        ..Report::default()
    };
    // Through JSON, as a report written by another tool would come in.
    let report = Report::from_json(&report.to_json(), "other.json".as_ref()).unwrap();
    assert_eq!(
        table(&report.to_string(), "metric"),
        [
            "metric         value",
            "accuracy@1    1.0000",
            "召回率@10     0.2500",
            "ＭＲＲ@10     0.5000",
            "cafe\u{301}@1        0.7500",
        ]
    );

    let mut after = report.clone();
    after.metrics.insert("召回率@10", 0.5);
    after.metrics.insert("平均精度@100", 0.125);
    assert_eq!(
        table(&compare(&report, &after).to_string(), "metric"),
        [
            "metric          before     after     delta",
            "accuracy@1      1.0000    1.0000   +0.0000",
            "召回率@10       0.2500    0.5000   +0.2500",
            "ＭＲＲ@10       0.5000    0.5000   +0.0000",
            "cafe\u{301}@1          0.7500    0.7500   +0.0000",
            "平均精度@100         -    0.1250         -",
        ]
    );
}

/// End to end with the shared multilingual model: Chinese, mixed and emoji texts are encoded,
/// retrieved and scored as encoding by hand and scoring the embeddings.
#[test]
fn evaluates_mixed_script_texts_with_the_multilingual_model() {
    let Some(shared) = shared_dir("evaluates_mixed_script_texts_with_the_multilingual_model")
    else {
        return;
    };
    let model = SentenceEncoder::<NdArray>::load(
        shared.join("models/tiny-xlm-roberta-random"),
        &Default::default(),
    )
    .unwrap();
    let (corpus, _) = corpus();
    let ev = evaluator(EvalConfig {
        batch_size: 3,
        ..quiet()
    });
    let report = ev.evaluate(&model).unwrap();
    assert_eq!((report.queries, report.corpus_size), (3, 7));
    // The model's E5 prompts.
    assert_eq!(report.query_prompt.as_deref(), Some("query: "));
    let opts = |prompt: &str| EncodeOptions {
        batch_size: 3,
        prompt: Some(prompt.into()),
        normalize: None,
    };
    let query_texts: Vec<&str> = ev.queries().iter().map(|q| q.text.as_str()).collect();
    let corpus_texts: Vec<&str> = corpus.iter().map(|d| d.text.as_str()).collect();
    let q = model.encode(&query_texts, &opts("query: ")).unwrap();
    let c = model.encode(&corpus_texts, &opts("passage: ")).unwrap();
    let by_hand = ev.evaluate_embeddings(&q, &c).unwrap();
    for (key, value) in by_hand.metrics.iter() {
        assert!((report.metric(key).unwrap() - value).abs() < 1e-9, "{key}");
    }
    let ids: Vec<&str> = report
        .per_query
        .iter()
        .map(|q| q.query_id.as_str())
        .collect();
    assert_eq!(ids, ["问题①", "q-👍🏽", "ｑ１"]);
}

/// The rows as an embedding matrix (as wide as the first row).
fn emb(rows: &[Vec<f32>]) -> embedtune_eval::Embeddings {
    embedtune_eval::Embeddings::from_rows(rows, rows.first().map_or(1, Vec::len))
        .expect("equal rows")
}
