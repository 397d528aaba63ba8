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
