//! BEIR directories: the committed fixture, and SciFact from `$EMBEDTUNE_SHARED`.

use std::collections::BTreeMap;

use embedtune_data::{BeirDataset, DataError, Example, ReadOptions, UnknownRef};

use crate::common::{fixture, shared};

#[test]
fn fixture_corpus_queries_and_qrels() {
    let ds = BeirDataset::load(fixture("beir"), &ReadOptions::default()).unwrap();
    let corpus: Vec<(&str, &str)> = ds
        .corpus()
        .iter()
        .map(|d| (d.id.as_str(), d.text.as_str()))
        .collect();
    assert_eq!(
        corpus,
        [
            ("d1", "Title One Body one."),
            ("d2", "Body two."),
            ("d3", "Body three, no title."),
            ("4", "Numeric id Body four."),
        ]
    );
    assert_eq!(ds.queries().len(), 3);
    assert_eq!(ds.query_text("q2"), Some("query two"));
    assert_eq!(ds.splits(), ["test", "train"]);

    let train = ds.qrels("train").unwrap();
    let r = train.report();
    assert_eq!(
        (r.rows, r.relevant, r.not_relevant, r.duplicates),
        (7, 3, 1, 1)
    );
    assert_eq!(
        r.unknown_queries,
        [UnknownRef {
            line: 6,
            id: "q9".into()
        }]
    );
    assert_eq!(
        r.unknown_docs,
        [UnknownRef {
            line: 7,
            id: "dX".into()
        }]
    );
    let lines: Vec<usize> = train.judgements().iter().map(|j| j.line).collect();
    assert_eq!(lines, [2, 3, 5]);

    assert_eq!(
        ds.train_pairs("train").unwrap(),
        [
            Example::pair("query one", "Title One Body one."),
            Example::pair("query one", "Body three, no title."),
            Example::pair("query two", "Numeric id Body four."),
        ]
    );

    let split = ds.ir_split("train").unwrap();
    let qids: Vec<&str> = split.queries.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(qids, ["q1", "q2"]);
    assert_eq!(split.corpus.len(), 4);
    let mut want: BTreeMap<String, BTreeMap<String, i32>> = BTreeMap::new();
    want.entry("q1".into()).or_default().insert("d1".into(), 1);
    want.entry("q1".into()).or_default().insert("d3".into(), 2);
    want.entry("q2".into()).or_default().insert("4".into(), 1);
    assert_eq!(split.relevant, want);

    let test = ds.ir_split("test").unwrap();
    assert_eq!(test.queries.len(), 1);
    assert_eq!(test.relevant["q3"]["d2"], 1);

    let err = ds.train_pairs("dev").unwrap_err();
    assert!(
        matches!(&err, DataError::UnknownSplit { split, available } if split == "dev" && available.len() == 2)
    );
}

#[test]
fn load_only_named_splits() {
    let ds = BeirDataset::load_splits(fixture("beir"), &["test"], &ReadOptions::default()).unwrap();
    assert_eq!(ds.splits(), ["test"]);
    assert!(ds.qrels("train").is_err());
}

#[test]
fn scifact_counts() {
    let Some(dir) = shared("data/scifact") else {
        return;
    };
    let ds = BeirDataset::load(&dir, &ReadOptions::default()).unwrap();
    assert_eq!(ds.corpus().len(), 5183);
    assert_eq!(ds.queries().len(), 1109);

    let train = ds.qrels("train").unwrap();
    assert_eq!(train.report().rows, 919);
    assert_eq!(ds.train_pairs("train").unwrap().len(), 919);
    assert_eq!(ds.ir_split("train").unwrap().queries.len(), 809);

    let test = ds.qrels("test").unwrap();
    assert_eq!(test.report().rows, 339);
    assert_eq!(test.judgements().len(), 339);
    let split = ds.ir_split("test").unwrap();
    assert_eq!(split.queries.len(), 300);
    assert_eq!(split.corpus.len(), 5183);
    assert_eq!(split.relevant.values().map(|d| d.len()).sum::<usize>(), 339);
    for r in [train.report(), test.report()] {
        assert!(r.unknown_queries.is_empty() && r.unknown_docs.is_empty() && r.not_relevant == 0);
    }
    // Passages are title + " " + text, trimmed: the first corpus line's title starts the text.
    let first = &ds.corpus()[0];
    assert_eq!(first.id, "4983");
    assert!(first
        .text
        .starts_with("Microstructural development of human newborn cerebral white matter"));
    assert!(first.text.contains(
        "in vivo by diffusion tensor magnetic resonance imaging. Alterations of the architecture"
    ));
}

/// Qrels without a header row (many in the wild) and TREC's four-column layout give the same
/// judgements, and so the same evaluation split, as the BEIR file with its header; the report
/// says which layout was read and where the header was. (The reader used to drop line 1 as the
/// header whatever it held, losing the first judgement of a headerless file.)
#[test]
fn qrels_without_header_and_trec_layout_read_alike() {
    use embedtune_data::QrelsLayout;
    let with_header = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\td3\t1\nq3\t4\t0\n";
    let files = [
        (with_header.to_string(), QrelsLayout::Beir, Some(1)),
        (
            with_header
                .lines()
                .skip(1)
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
            QrelsLayout::Beir,
            None,
        ),
        (
            "q1 0 d1 1\nq1 0 d2 2\r\nq2 Q0 d3 1\nq3 0 4 0\n".to_string(),
            QrelsLayout::Trec,
            None,
        ),
        (
            "q1\t0\td1\t1\nq1\t0\td2\t2\nq2\t0\td3\t1\nq3\t0\t4\t0\n".to_string(),
            QrelsLayout::Trec,
            None,
        ),
    ];
    let mut splits = Vec::new();
    for (text, layout, header_line) in &files {
        let mut ds = BeirDataset::load(fixture("beir"), &ReadOptions::default()).unwrap();
        ds.add_qrels("x", text.as_bytes(), "x.tsv", &ReadOptions::default())
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let qrels = ds.qrels("x").unwrap();
        let r = qrels.report();
        assert_eq!(
            (r.layout, r.header_line),
            (*layout, *header_line),
            "{text:?}"
        );
        assert_eq!((r.rows, r.relevant, r.not_relevant), (4, 3, 1), "{text:?}");
        let judged: Vec<(&str, &str, i32)> = qrels
            .judgements()
            .iter()
            .map(|j| (j.query_id.as_str(), j.doc_id.as_str(), j.score))
            .collect();
        assert_eq!(
            judged,
            [("q1", "d1", 1), ("q1", "d2", 2), ("q2", "d3", 1)],
            "{text:?}"
        );
        splits.push(ds.ir_split("x").unwrap());
    }
    assert!(
        splits.windows(2).all(|w| w[0] == w[1]),
        "evaluation splits differ"
    );
}
